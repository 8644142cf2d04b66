"""Checking a batch of new items or users (cold start) before anything is added.

New items / users come with text and attributes (and, for users, optionally a few
interactions); the whole batch is checked *before* anything is added, so a bad batch changes
nothing.

Policies (each counted in the returned ``report``):
- a new item / user id that already exists is an error unless ``update=True`` (then its
  text, attributes and representation are replaced);
- a node with no text is allowed when it has attributes or triples; one with neither is an
  error naming its row;
- an attribute or triple tail never seen in training becomes a new entity node
  (``new_entities``); it has a text embedding but no learned ID embedding.
"""

from __future__ import annotations

import difflib
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..errors import DataError, UnknownEntityWarning
from ..knowledge_graph import (ENTITY_COLUMNS, ITEM_COLUMNS, TRIPLE_COLUMNS, USER_COLUMNS, KnowledgeGraph, isin,
                              typed_frame)
from ..tables import attribute_edges, node_frame, read_table, to_number
from .placement import NewNodeInputs

TableLike = pd.DataFrame | str | os.PathLike


@dataclass
class ValidatedBatch:
    """A validated batch: node rows, their knowledge edges, new entities, new interactions."""

    node_type: str                      # "item" or "user"
    nodes: pd.DataFrame                 # typed like KnowledgeGraph.items / .users, text filled
    triples: pd.DataFrame               # knowledge edges whose head (or tail) is a new node
    entities: pd.DataFrame              # entity nodes not in the graph before
    interactions: pd.DataFrame          # user batches only: their few known interactions
    replaced: list[str] = field(default_factory=list)
    report: dict[str, int] = field(default_factory=dict)

    @property
    def ids(self) -> list[str]:
        key = "item_id" if self.node_type == "item" else "user_id"
        return self.nodes[key].astype(str).tolist()

    def inputs(self, encoder: Any | None) -> tuple[NewNodeInputs, NewNodeInputs | None]:
        """What :func:`kgrec.cold_start.placement.embed_new_nodes` takes for this batch: its
        nodes and its new entities (``None`` without any), each with the text features
        ``encoder`` (a :class:`kgrec.text_features.TextEncoder`) gives their texts; without an
        encoder (a model that reads no text), no features."""
        key = f"{self.node_type}_id"
        texts_nodes = self.nodes["text"].fillna(self.nodes[key]).astype(str).tolist()
        texts_ents = self.entities["text"].fillna(self.entities["entity_id"]).astype(str).tolist()
        x_nodes = encoder.encode(texts_nodes) if encoder is not None else None
        x_ents = encoder.encode(texts_ents) if (encoder is not None and len(texts_ents)) else None
        entities = NewNodeInputs(self.entities["entity_id"].astype(str).tolist(), x_ents) if len(self.entities) else None
        return NewNodeInputs(self.ids, x_nodes), entities

    def merged_into(self, graph: KnowledgeGraph, nodes: NewNodeInputs, entities: NewNodeInputs | None
                    ) -> KnowledgeGraph:
        """``graph`` with this batch added: its node rows, knowledge edges, new entities and
        interactions, and the text features of ``nodes`` and ``entities`` (from :meth:`inputs`)
        appended to ``graph.features``. A replaced node (``update=True``) loses its old row,
        text features, knowledge edges (as head or tail) and interactions; the batch's take
        their place. ``graph`` itself does not change."""
        nt, key = self.node_type, f"{self.node_type}_id"
        table = graph.items if nt == "item" else graph.users
        trip, inter = graph.triples, graph.interactions
        old_rows = np.ones(len(table), dtype=bool)
        if self.replaced:
            old_rows = ~isin(table[key], self.replaced).to_numpy()
            table = table[old_rows]
            stale = ((trip["head_type"] == nt) & isin(trip["head"], self.replaced)) | \
                ((trip["tail_type"] == nt) & isin(trip["tail"], self.replaced))
            trip = trip[~stale.to_numpy()]
            inter = inter[~isin(inter[key], self.replaced).to_numpy()]
        table = pd.concat([table, self.nodes], ignore_index=True)
        trip = pd.concat([trip, self.triples], ignore_index=True)
        ents = pd.concat([graph.entities, self.entities], ignore_index=True)
        if len(self.interactions):
            inter = pd.concat([inter, self.interactions], ignore_index=True)
        feats = dict(graph.features or {})
        if nodes.features is not None:
            feats[nt] = np.concatenate([feats[nt][old_rows], nodes.features])
            if entities is not None and entities.features is not None:
                feats["entity"] = np.concatenate([feats["entity"], entities.features])
        return graph.with_interactions(inter.reset_index(drop=True), users=table if nt == "user" else graph.users,
                                       items=table if nt == "item" else graph.items, entities=ents,
                                       triples=trip, features=feats or None)


def prepare_new_nodes(graph: KnowledgeGraph, node_type: str, table: TableLike, *,
                      triples: TableLike | None = None, interactions: TableLike | None = None,
                      text: str | Sequence[str] | None = None,
                      attributes: Mapping[str, str] | Sequence[str] | None = None,
                      id_col: str | None = None, update: bool = False, multi_value_sep: str = "|",
                      strict: bool = False) -> ValidatedBatch:
    """Validate a batch of new ``item`` or ``user`` rows against ``graph`` (see module doc).

    Without ``text`` / ``attributes``, the columns that built the trained nodes' texts and
    attributes (``graph.text_recipe``, from :func:`kgrec.from_tables`) are used when the batch
    has them all, so that new nodes are described as the trained ones were. Triple tails naming
    no known entity raise :class:`kgrec.errors.UnknownEntityWarning` with the closest known ids
    (with ``strict``, a :class:`DataError` at the row)."""
    key = "item_id" if node_type == "item" else "user_id"
    id_col = id_col or key
    df, src = read_table(table, required=[id_col])
    recipe = graph.text_recipe.get(node_type, {})
    if text is None and recipe.get("text") and set(recipe["text"]) <= set(df.columns):
        text = list(recipe["text"])
    if attributes is None and recipe.get("attributes") and set(recipe["attributes"]) <= set(df.columns):
        attributes = dict(recipe["attributes"])
    if df.empty:
        raise DataError(src, None, f"no {node_type}s in the table", f"give at least one {node_type} row")
    ids = df[id_col].astype("string").str.strip()
    empty = ids.isna() | (ids == "")
    if empty.any():
        r = int(np.flatnonzero(empty.to_numpy())[0])
        raise DataError(src, _row(src, r), f"{id_col} is empty", f"give every new {node_type} an id")
    dup = ids.duplicated()
    if dup.any():
        r = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(src, _row(src, r), f"{node_type} '{ids.iloc[r]}' appears twice in this batch",
                        "keep one row per id")
    clash = isin(ids, (graph.items if node_type == "item" else graph.users)[key])
    if clash.any() and not update:
        r = int(np.flatnonzero(clash.to_numpy())[0])
        raise DataError(src, _row(src, r), f"{node_type} '{ids.iloc[r]}' already exists "
                        f"({int(clash.sum())} such rows)", "pass update=True to replace them, or use new ids")
    template_text = text is None and "text" not in df.columns  # name + attributes, as at training
    if text is None:
        text = [c for c in ("text", "title", "name") if c in df.columns][:1] or None
    nodes = node_frame(df.assign(**{id_col: ids}), id_col, key, text, src)
    if template_text:
        nodes["text"] = pd.NA
    name_col = next((c for c in ("name", "title") if c in df.columns), None)
    nodes["name"] = df[name_col].astype("string").to_numpy() if name_col else nodes.get("name", pd.NA)
    cols = USER_COLUMNS if node_type == "user" else ITEM_COLUMNS
    nodes = typed_frame(nodes, cols, src)

    attr_ents, attr_edges = attribute_edges(df.assign(**{id_col: ids}), id_col, node_type, attributes,
                                             multi_value_sep, src)
    edge_parts = [attr_edges]
    src_t = None
    if triples is not None:
        tr, src_t = read_table(triples, required=["head", "relation", "tail"])
        tf = pd.DataFrame({
            "head_type": tr["head_type"].astype("string") if "head_type" in tr.columns else node_type,
            "head": tr["head"].astype("string").str.strip(),
            "relation": tr["relation"].astype("string").str.strip(),
            "tail_type": tr["tail_type"].astype("string") if "tail_type" in tr.columns else "entity",
            "tail": tr["tail"].astype("string").str.strip(),
        })
        blank = tf[["head", "relation", "tail"]].isna().any(axis=1) | (tf[["head", "relation", "tail"]] == "").any(axis=1)
        if blank.any():
            r = int(np.flatnonzero(blank.to_numpy())[0])
            raise DataError(src_t, _row(src_t, r), "head, relation or tail is empty", "fill them in or drop the row")
        touches = isin(tf["head"], ids) | isin(tf["tail"], ids)
        if not touches.all():
            r = int(np.flatnonzero(~touches.to_numpy())[0])
            raise DataError(src_t, _row(src_t, r), f"triple ({tf['head'].iloc[r]}, {tf['relation'].iloc[r]}, "
                            f"{tf['tail'].iloc[r]}) names none of the new {node_type}s",
                            f"only give triples of the {node_type}s being added")
        edge_parts.append(tf)
    trip = typed_frame(pd.concat(edge_parts, ignore_index=True), TRIPLE_COLUMNS, src_t or src)

    known = {"user": graph.users["user_id"], "item": graph.items["item_id"], "entity": graph.entities["entity_id"]}
    known[node_type] = pd.concat([known[node_type], ids], ignore_index=True)
    for end in ("head", "tail"):
        for t in ("user", "item"):
            sel = (trip[f"{end}_type"] == t).to_numpy()
            bad = sel & ~isin(trip[end], known[t]).to_numpy()
            if bad.any():
                r = int(np.flatnonzero(bad)[0])
                raise DataError(src_t or src, _row(src_t or src, r), f"{end} '{trip[end].iloc[r]}' is an unknown {t}",
                                f"add the {t} first or drop the triple")
    ent_refs = pd.concat([trip.loc[trip["head_type"] == "entity", "head"], trip.loc[trip["tail_type"] == "entity", "tail"]])
    new_ent_ids = pd.unique(ent_refs[~isin(ent_refs, known["entity"]).to_numpy()])
    if triples is not None:
        _check_triple_entities(trip.iloc[len(attr_edges):], known["entity"], src_t or src, strict)
    # attribute values keep their kind and name; other new tails are KG entities named by their id
    ents = pd.DataFrame({"entity_id": pd.Series(new_ent_ids, dtype="string")})
    if len(attr_ents):
        named = typed_frame(attr_ents, ENTITY_COLUMNS, "entities").drop_duplicates("entity_id")
        ents = ents.merge(named[["entity_id", "kind", "name"]], on="entity_id", how="left")
    else:
        ents = ents.assign(kind=pd.NA, name=pd.NA)
    ents["kind"] = ents["kind"].fillna("kg")
    ents["name"] = ents["name"].fillna(ents["entity_id"])
    entities = typed_frame(ents, ENTITY_COLUMNS, "entities")

    has_text = (nodes["text"].notna() & (nodes["text"].str.strip() != "")) | (
        nodes["name"].notna() & (nodes["name"].str.strip() != ""))
    linked = [trip.loc[trip["head_type"] == node_type, "head"], trip.loc[trip["tail_type"] == node_type, "tail"]]
    inter = pd.DataFrame(columns=["user_id", "item_id", "rating", "weight", "timestamp"])
    if interactions is not None:
        if node_type != "user":
            raise ValueError("interactions can only be given for new users")
        it, src_i = read_table(interactions, required=["user_id", "item_id"])
        it = it.assign(user_id=it["user_id"].astype("string").str.strip(), item_id=it["item_id"].astype("string").str.strip())
        unknown_u = ~isin(it["user_id"], ids)
        if unknown_u.any():
            r = int(np.flatnonzero(unknown_u.to_numpy())[0])
            raise DataError(src_i, _row(src_i, r), f"user '{it['user_id'].iloc[r]}' is not in the new users table",
                            "list the user in --users / users= too")
        unknown_i = ~isin(it["item_id"], known["item"])
        if unknown_i.any():
            r = int(np.flatnonzero(unknown_i.to_numpy())[0])
            raise DataError(src_i, _row(src_i, r), f"item '{it['item_id'].iloc[r]}' is unknown to the model",
                            "add new items with add_items first, or drop the row")
        if "rating" in it.columns:
            it["rating"] = to_number(it["rating"], src_i, "rating", allow_missing=True)
        inter = typed_frame(it, {"user_id": "string", "item_id": "string", "rating": "float64",
                                 "weight": "float64", "timestamp": "Int64"}, src_i)
        linked.append(inter["user_id"])
    neither = ~has_text & ~isin(nodes[key], pd.concat(linked, ignore_index=True))
    if neither.any():
        r = int(np.flatnonzero(neither.to_numpy())[0])
        raise DataError(src, _row(src, r), f"{node_type} '{nodes[key].iloc[r]}' has neither text nor attributes",
                        "give it a text/title column value or at least one attribute or triple")

    # fill texts from the schema template with the new + known entity names
    tmp = KnowledgeGraph(users=nodes if node_type == "user" else graph.users.iloc[:0],
                         items=nodes if node_type == "item" else graph.items.iloc[:0],
                         entities=pd.concat([graph.entities, entities], ignore_index=True),
                         interactions=inter, triples=trip)
    tmp.fill_texts()
    nodes = tmp.items if node_type == "item" else tmp.users
    entities = tmp.entities.iloc[len(graph.entities):].reset_index(drop=True)
    report = {f"new_{node_type}s": int((~clash).sum()), f"updated_{node_type}s": int(clash.sum()),
              "new_entities": len(entities), "new_knowledge_edges": len(trip), "new_interactions": len(inter)}
    return ValidatedBatch(node_type, nodes.reset_index(drop=True), trip, entities, inter,
                    replaced=ids[clash].tolist(), report=report)


def _check_triple_entities(trip: pd.DataFrame, known: pd.Series, src: str, strict: bool) -> None:
    """Warn (or with ``strict`` raise at the first row) about triple ends typed ``entity`` that
    name no known entity, listing the closest known ids of each (at most five shown)."""
    unknown_rows = np.zeros(len(trip), dtype=bool)
    values: list[str] = []
    for end in ("head", "tail"):
        sel = (trip[f"{end}_type"] == "entity").to_numpy() & ~isin(trip[end], known).to_numpy()
        unknown_rows |= sel
        values += trip[end][sel].astype(str).tolist()
    if not unknown_rows.any():
        return
    names = list(dict.fromkeys(values))
    known_ids = known.astype(str).tolist()
    hints = [f"'{v}' (closest known: {', '.join(_closest(v, known_ids)) or 'none'})" for v in names[:5]]
    problem = (f"{len(names)} entit{'y' if len(names) == 1 else 'ies'} named by the triples "
               f"{'is' if len(names) == 1 else 'are'} not in the trained graph: {'; '.join(hints)}"
               + (" ..." if len(names) > 5 else ""))
    fix = "name the known entity (ids as in the trained graph, e.g. genre:Sci-Fi), or keep them as new nodes"
    if strict:
        raise DataError(src, _row(src, int(np.flatnonzero(unknown_rows)[0])), problem, fix)
    warnings.warn(f"{src}: {problem}. They become new nodes with text but no trained ID. Fix: {fix} "
                  "(strict=True makes this an error)", UnknownEntityWarning, stacklevel=4)


def _closest(value: str, known: list[str], n: int = 3) -> list[str]:
    """Known ids that end with ``:value`` (the same name under its kind), then difflib's closest."""
    same_name = [k for k in known if k.endswith(":" + value)][:n]
    return list(dict.fromkeys(same_name + difflib.get_close_matches(value, known, n=n, cutoff=0.6)))[:n]


def _row(src: str, index: int) -> int:
    return index if src == "<DataFrame>" else index + 2
