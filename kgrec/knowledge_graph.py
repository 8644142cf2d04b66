"""The KnowledgeGraph: typed node and edge tables that every other part of kgrec reads.

Nodes
    ``users``     user_id, name, text
    ``items``     item_id, name, text
    ``entities``  entity_id, kind, name, text   (attributes such as genre:Action and KG entities)
Edges
    ``interactions``  user_id, item_id, rating (float, NaN = none), weight (float), timestamp (Int64)
    ``triples``       head_type, head, relation, tail_type, tail   (knowledge edges; a type is
                      ``user``, ``item`` or ``entity``; item->attribute, user->attribute,
                      entity->entity and item->item edges all live here)

Ids are strings, in the caller's id space. ``features`` (optional) holds one embedding matrix
per node type ('user', 'item', 'entity') whose rows follow the node table's order. ``report`` counts every row that a documented policy
changed (merged duplicates, dropped dangling rows...) so nothing is dropped silently; those
counts show in :meth:`summary`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from .errors import DataError, SchemaError
from .graph_schema import text_template

NODE_TYPES = ("user", "item", "entity")
USER_COLUMNS = {"user_id": "string", "name": "string", "text": "string"}
ITEM_COLUMNS = {"item_id": "string", "name": "string", "text": "string"}
ENTITY_COLUMNS = {"entity_id": "string", "kind": "string", "name": "string", "text": "string"}
INTERACTION_COLUMNS = {"user_id": "string", "item_id": "string", "rating": "float64",
                       "weight": "float64", "timestamp": "Int64"}
TRIPLE_COLUMNS = {"head_type": "string", "head": "string", "relation": "string",
                  "tail_type": "string", "tail": "string"}
MAX_ATTRIBUTES_PER_KIND_IN_TEXT = 8

SplitKind = Literal["random", "temporal", "cold_items", "cold_users"]


def typed_frame(df: pd.DataFrame | None, columns: dict[str, str], table: str) -> pd.DataFrame:
    """``df`` restricted to ``columns`` with their dtypes; optional columns are added empty.

    The id column (the first) is required."""
    if df is None:
        df = pd.DataFrame({c: pd.Series(dtype=t) for c, t in columns.items()})
    first = next(iter(columns))
    if first not in df.columns:
        raise SchemaError(f"{table}: required column '{first}' is missing (columns: {list(df.columns)})")
    out = {}
    for col, dtype in columns.items():
        if col in df.columns:
            s = df[col]
            if dtype == "string":
                s = s.astype("string")
            else:
                num = pd.to_numeric(s, errors="coerce")
                bad = num.isna() & s.notna()
                if dtype == "Int64":
                    bad |= num.notna() & (np.floor(num.fillna(0)) != num.fillna(0))
                if bad.any():
                    row = int(np.flatnonzero(bad.to_numpy())[0])
                    raise SchemaError(f"{table} row {row}: column '{col}' holds '{s.iloc[row]}', not "
                                      f"{'an integer' if dtype == 'Int64' else 'a number'}. Fix: convert '{col}' "
                                      f"to {dtype} (pd.to_numeric) or load the table with kgrec.from_tables")
                s = num.astype(dtype)
            out[col] = s.reset_index(drop=True)
        else:
            out[col] = pd.Series(pd.NA if dtype != "float64" else np.nan, index=range(len(df)), dtype=dtype)
    return pd.DataFrame(out)


def isin(values: pd.Series, known: object) -> pd.Series:
    """``values.isin(known)`` (a boolean Series on ``values``' index), computed by pyarrow.

    pandas' Arrow-backed string ``isin`` turns the value set into Python objects one by one,
    which dominated loading; ``pyarrow.compute.is_in`` does the same test far faster
    (``docs/results.md``). Falls back to pandas for anything that is not strings."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        vs = known.array if isinstance(known, (pd.Series, pd.Index)) else list(known)
        value_set = pa.array(vs, type=pa.string(), from_pandas=True)
        if isinstance(value_set, pa.ChunkedArray):
            value_set = value_set.combine_chunks()
        arr = pa.array(values.array, type=pa.string(), from_pandas=True)
        hit = pc.fill_null(pc.is_in(arr, value_set=value_set), False)
        return pd.Series(hit.to_numpy(zero_copy_only=False), index=values.index, dtype=bool)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
        return values.isin(known if isinstance(known, (pd.Series, pd.Index)) else list(known))


@dataclass
class GraphSummary:
    """Counts that describe a KnowledgeGraph; ``str()`` prints a table."""

    name: str
    counts: dict[str, int]
    entity_kinds: dict[str, int]
    relations: dict[str, int]
    density: float
    report: dict[str, int]
    ratings: str = ""  # what kgrec does with the interactions' ratings, in a sentence

    def to_dict(self) -> dict:
        return {"name": self.name, **self.counts, "entity_kinds": dict(self.entity_kinds),
                "relations": dict(self.relations), "density": self.density, "report": dict(self.report),
                "ratings": self.ratings}

    def __getitem__(self, key: str) -> int:
        return self.counts[key]

    def __str__(self) -> str:
        lines = [f"KnowledgeGraph {self.name}".rstrip()]
        for k, v in self.counts.items():
            lines.append(f"  {k:<28}{v:>12,}")
        lines.append(f"  {'density':<28}{self.density:>12.6f}")
        if self.entity_kinds:
            lines.append("  entities by kind:")
            lines += [f"    {k:<26}{v:>12,}" for k, v in self.entity_kinds.items()]
        if self.relations:
            lines.append("  knowledge edges by relation:")
            shown = list(self.relations.items())
            lines += [f"    {k[:26]:<26}{v:>12,}" for k, v in shown[:25]]
            if len(shown) > 25:
                lines.append(f"    ... {len(shown) - 25} more relations")
        if self.ratings:
            lines.append(f"  ratings: {self.ratings}")
        if self.report:
            lines.append("  input policies applied (rows):")
            lines += [f"    {k:<40}{v:>10,}" for k, v in self.report.items()]
        return "\n".join(lines)

    __repr__ = __str__


@dataclass
class KnowledgeGraph:
    """Users, items and entities with their interaction and knowledge edges (see module doc)."""

    users: pd.DataFrame
    items: pd.DataFrame
    entities: pd.DataFrame
    interactions: pd.DataFrame
    triples: pd.DataFrame
    name: str = ""
    report: dict[str, int] = field(default_factory=dict)
    cold_items: frozenset[str] = frozenset()
    cold_users: frozenset[str] = frozenset()
    features: dict[str, np.ndarray] | None = None  # node type -> [num nodes, d], rows in table order
    text_recipe: dict[str, dict] = field(default_factory=dict)  # node type -> {"text": [columns],
    # "attributes": {column: kind}}: how from_tables built the nodes, which add_items / add_users reuse

    @classmethod
    def build(
        cls,
        *,
        interactions: pd.DataFrame,
        users: pd.DataFrame | None = None,
        items: pd.DataFrame | None = None,
        entities: pd.DataFrame | None = None,
        triples: pd.DataFrame | None = None,
        name: str = "",
        report: dict[str, int] | None = None,
        sources: dict[str, str] | None = None,
    ) -> "KnowledgeGraph":
        """Type the tables, add nodes that edges name but tables lack, fill node texts from
        the schema templates, and validate. ``sources`` maps a table name to the file it came
        from, so errors can name it."""
        sources = sources or {}
        report = dict(report or {})
        inter = typed_frame(interactions, INTERACTION_COLUMNS, sources.get("interactions", "interactions"))
        users_t = typed_frame(users, USER_COLUMNS, sources.get("users", "users"))
        items_t = typed_frame(items, ITEM_COLUMNS, sources.get("items", "items"))
        ents = typed_frame(entities, ENTITY_COLUMNS, sources.get("entities", "entities"))
        trip = typed_frame(triples, TRIPLE_COLUMNS, sources.get("triples", "triples"))
        _check_ids(inter, ["user_id", "item_id"], sources.get("interactions", "interactions"))
        _check_ids(trip, ["head", "relation", "tail"], sources.get("triples", "triples"))

        # users only named by interactions become nodes (users rarely come with a table)
        known_users = set(users_t["user_id"].tolist())
        extra_users = pd.unique(inter["user_id"][~isin(inter["user_id"], known_users)])
        if len(extra_users):
            users_t = pd.concat([users_t, typed_frame(pd.DataFrame({"user_id": extra_users}), USER_COLUMNS, "users")],
                                ignore_index=True)
        if items is None:
            items_t = typed_frame(pd.DataFrame({"item_id": pd.unique(inter["item_id"])}), ITEM_COLUMNS, "items")
        # entities only named by triples become nodes of kind 'kg'
        ent_refs = pd.concat([trip.loc[trip["head_type"] == "entity", "head"],
                              trip.loc[trip["tail_type"] == "entity", "tail"]])
        missing_ents = pd.unique(ent_refs[~isin(ent_refs, ents["entity_id"])])
        if len(missing_ents):
            extra = pd.DataFrame({"entity_id": missing_ents, "kind": "kg", "name": missing_ents})
            ents = pd.concat([ents, typed_frame(extra, ENTITY_COLUMNS, "entities")], ignore_index=True)
        kg = cls(users_t, items_t, ents, inter, trip, name=name, report=report)
        kg.validate(sources)
        kg.fill_texts()
        return kg

    # ------------------------------------------------------------------ validation
    def validate(self, sources: dict[str, str] | None = None) -> "KnowledgeGraph":
        """Raise :class:`DataError` on the first broken reference; merge duplicate
        interactions (latest row wins; counted in ``report``)."""
        sources = sources or {}
        src_i = sources.get("interactions", "interactions")
        for table, col, nodes in (("users", "user_id", self.users), ("items", "item_id", self.items),
                                  ("entities", "entity_id", self.entities)):
            dup = nodes[col].duplicated()
            if dup.any():
                row = int(np.flatnonzero(dup.to_numpy())[0])
                raise DataError(sources.get(table, table), _row(sources, table, row),
                                f"{col} '{nodes[col].iloc[row]}' appears twice", f"make {col} unique")
        if len(self.interactions) == 0:
            raise DataError(src_i, None, "the interaction table is empty",
                            "give at least one (user, item) interaction")
        item_set = set(self.items["item_id"].tolist())
        bad = ~isin(self.interactions["item_id"], item_set)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(src_i, _row(sources, "interactions", row),
                            f"item_id '{self.interactions['item_id'].iloc[row]}' is not in the items table "
                            f"({int(bad.sum())} such rows)", "add the item to the items table or drop these rows")
        rating = self.interactions["rating"]
        if np.isinf(rating.to_numpy(dtype=float, na_value=np.nan)).any():
            row = int(np.flatnonzero(np.isinf(rating.to_numpy(dtype=float, na_value=np.nan)))[0])
            raise DataError(src_i, _row(sources, "interactions", row), "rating is infinite", "use a finite number")
        ids = {"user": set(self.users["user_id"].tolist()), "item": item_set,
               "entity": set(self.entities["entity_id"].tolist())}
        src_t = sources.get("triples", "triples")
        for end in ("head", "tail"):
            types = self.triples[f"{end}_type"]
            bad_type = ~types.isin(NODE_TYPES)
            if bad_type.any():
                row = int(np.flatnonzero(bad_type.to_numpy())[0])
                raise DataError(src_t, _row(sources, "triples", row), f"{end}_type '{types.iloc[row]}' is not one of "
                                f"{NODE_TYPES}", "use user, item or entity")
            for t in NODE_TYPES:
                sel = (types == t).to_numpy()
                if not sel.any():
                    continue
                vals = self.triples[end][sel]
                miss = ~isin(vals, ids[t])
                if miss.any():
                    row = int(np.flatnonzero(sel)[np.flatnonzero(miss.to_numpy())[0]])
                    value = self.triples[end].iloc[row]
                    raise DataError(src_t, _row(sources, "triples", row),
                                    f"{end} '{value}' names an unknown {t} ({int(miss.sum())} such rows)",
                                    f"add the {t} to its table; if '{value}' is a knowledge-graph entity (or "
                                    f"another kind of node), give the triples a {end}_type column saying so per "
                                    f"row (user, item or entity: entity-to-entity triples are {end}_type entity); "
                                    f"or drop these triples")
        dup = self.interactions.duplicated(["user_id", "item_id"], keep="last")
        if dup.any():
            self.report["duplicate_interactions_merged"] = self.report.get("duplicate_interactions_merged", 0) + int(dup.sum())
            self.interactions = self.interactions[~dup.to_numpy()].reset_index(drop=True)
        tdup = self.triples.duplicated()
        if tdup.any():
            self.report["duplicate_triples_dropped"] = self.report.get("duplicate_triples_dropped", 0) + int(tdup.sum())
            self.triples = self.triples[~tdup.to_numpy()].reset_index(drop=True)
        return self

    # ------------------------------------------------------------------ text
    def fill_texts(self) -> "KnowledgeGraph":
        """Fill empty ``text`` cells from the schema templates: an item reads
        ``"{name}. Genre: Action, Comedy; Year: 1995"``, a user ``"User. Age: 25-34; Occupation: writer"``,
        an entity ``"genre: Action"``. Up to 8 attributes per kind, in edge order."""
        ents = self.entities.set_index("entity_id")
        for label, table, key, typ in (("Item", "items", "item_id", "item"), ("User", "users", "user_id", "user")):
            df = getattr(self, table)
            need = df["text"].isna() | (df["text"] == "")
            if not need.any():
                continue
            attrs = self._attribute_text(typ, ents)
            names = df["name"].fillna(df[key])
            tmpl = text_template(label)
            text = [tmpl.format(name=n, attributes=attrs.get(i, "")).strip().rstrip(".").strip() or str(n)
                    for i, n in zip(df[key].tolist(), names.tolist())]
            df = df.copy()
            df.loc[need.to_numpy(), "text"] = pd.Series(text, dtype="string")[need.to_numpy()].to_numpy()
            setattr(self, table, df)
        need = self.entities["text"].isna() | (self.entities["text"] == "")
        if need.any():
            e = self.entities.copy()
            text = e["kind"].fillna("entity") + ": " + e["name"].fillna(e["entity_id"])
            e.loc[need, "text"] = text[need]
            self.entities = e
        return self

    def _attribute_text(self, node_type: str, ents: pd.DataFrame) -> dict[str, str]:
        t = self.triples
        t = t[(t["head_type"] == node_type) & (t["tail_type"] == "entity")]
        if t.empty:
            return {}
        kinds = ents["kind"].reindex(t["tail"]).fillna("kg").to_numpy()
        names = ents["name"].reindex(t["tail"]).fillna("").to_numpy()
        # a plain loop: pandas' groupby(...).agg(", ".join) runs Python per group and is slower
        per_head: dict[str, dict[str, list[str]]] = {}
        for head, kind, name in zip(t["head"].tolist(), kinds.tolist(), names.tolist()):
            if kind == "kg":  # opaque KG entity ids carry no words
                continue
            vals = per_head.setdefault(head, {}).setdefault(kind, [])
            if len(vals) < MAX_ATTRIBUTES_PER_KIND_IN_TEXT:
                vals.append(str(name))
        return {head: "; ".join(f"{kind.capitalize()}: {', '.join(vals)}" for kind, vals in by_kind.items())
                for head, by_kind in per_head.items()}

    # ------------------------------------------------------------------ views
    @property
    def num_users(self) -> int:
        return len(self.users)

    @property
    def num_items(self) -> int:
        return len(self.items)

    def user_item_triples(self) -> pd.DataFrame:
        """``user_id, item_id, relation`` of every knowledge triple between a user and an item,
        either way round, one row per triple: a second behaviour that kgrec trains on beside the
        interactions (:func:`kgrec.graph.tensors.with_user_item_triples`)."""
        t = self.triples
        parts = []
        for head, tail in (("user", "item"), ("item", "user")):
            m = ((t["head_type"] == head) & (t["tail_type"] == tail)).to_numpy()
            ends = {head: t["head"][m], tail: t["tail"][m]}
            parts.append(pd.DataFrame({"user_id": ends["user"].to_numpy(), "item_id": ends["item"].to_numpy(),
                                       "relation": t["relation"][m].to_numpy()}))
        return pd.concat(parts, ignore_index=True).astype("string")

    def with_interactions(self, interactions: pd.DataFrame, **changes) -> "KnowledgeGraph":
        """The same nodes and knowledge edges with another interaction table."""
        return replace(self, interactions=interactions.reset_index(drop=True), report=dict(self.report), **changes)

    def summary(self) -> GraphSummary:
        """Counts per node and edge type, density, cold nodes and the input-policy report."""
        inter = self.interactions
        users_with = inter["user_id"].nunique()
        items_with = inter["item_id"].nunique()
        kinds = self.entities["kind"].fillna("kg").value_counts().to_dict()
        rel = self.triples["relation"].value_counts().to_dict()
        counts = {
            "users": self.num_users,
            "items": self.num_items,
            "entities": len(self.entities),
            "interactions": len(inter),
            "knowledge_edges": len(self.triples),
            "item_attribute_edges": int(((self.triples["head_type"] == "item") & (self.triples["tail_type"] == "entity")).sum()),
            "user_attribute_edges": int(((self.triples["head_type"] == "user") & (self.triples["tail_type"] == "entity")).sum()),
            "cold_users (no interactions)": self.num_users - users_with,
            "cold_items (no interactions)": self.num_items - items_with,
        }
        density = len(inter) / max(1, self.num_users * self.num_items)
        return GraphSummary(self.name, counts, {str(k): int(v) for k, v in kinds.items()},
                            {str(k): int(v) for k, v in rel.items()}, density, dict(self.report),
                            self._ratings_policy())

    def _ratings_policy(self) -> str:
        """A sentence on the ratings: their range, and that every interaction is a positive."""
        rated = self.interactions["rating"].dropna()
        if rated.empty:
            return ""
        dropped = self.report.get("interactions_below_min_rating_dropped", 0)
        kept = (f"{dropped:,} rated below the min_rating threshold were dropped; " if dropped else "")
        return (f"{len(rated):,} rated from {rated.min():g} to {rated.max():g}; {kept}every interaction kept is "
                "a positive (min_rating= drops low ones; Recommender(interaction_weight='rating') weighs the "
                "loss by them)")

    def with_min_rating(self, min_rating: float | None) -> "KnowledgeGraph":
        """The graph without the interactions rated below ``min_rating`` (those without a rating
        stay): what counts as a positive. The dropped rows are counted in the report
        (``interactions_below_min_rating_dropped``); users and items stay nodes. ``None`` keeps all."""
        if min_rating is None:
            return self
        rating = self.interactions["rating"].to_numpy(dtype=float, na_value=np.nan)
        low = rating < float(min_rating)
        out = self.with_interactions(self.interactions[~low])
        out.report["interactions_below_min_rating_dropped"] = (
            self.report.get("interactions_below_min_rating_dropped", 0) + int(low.sum()))
        return out

    # ------------------------------------------------------------------ splits
    def split(self, kind: SplitKind = "random", test: float = 0.2, valid: float = 0.0,
              seed: int = 0) -> tuple["KnowledgeGraph", ...]:
        """Split the interactions; nodes and knowledge edges stay in every part.

        - ``random``: per user, a random ``test`` (and ``valid``) fraction of their interactions;
          every user keeps at least one training interaction.
        - ``temporal``: per user, their latest interactions by timestamp.
        - ``cold_items`` / ``cold_users``: a ``test`` fraction of the items (users) that have
          interactions is held out with *all* their interactions; their text and attributes
          stay in the graph. ``valid`` holds out a further set the same way.

        Deterministic for a given ``seed``. Returns ``(train, test)`` or, with ``valid > 0``,
        ``(train, valid, test)`` (:func:`kgrec.splits.split_graph`).
        """
        from .splits import split_graph

        return split_graph(self, kind, test, valid, seed)


def _check_ids(df: pd.DataFrame, cols: list[str], source: str) -> None:
    for col in cols:
        s = df[col]
        bad = s.isna() | (s.str.strip() == "")
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(source, _file_row(source, row), f"{col} is empty ({int(bad.sum())} such rows)",
                            f"fill in {col} or drop those rows")


def _file_row(source: str, index: int) -> int:
    """1-based line number in a file with one header line, else the DataFrame index."""
    return index + 2 if "." in source.rsplit("/", 1)[-1] else index


def _row(sources: dict[str, str], table: str, index: int) -> int:
    return _file_row(sources.get(table, table), index)
