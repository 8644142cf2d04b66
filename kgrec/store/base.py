"""The graph-store interface that the embedded store and Neo4j both implement.

A store holds one graph: the KnowledgeGraph's users, items and entities as ``User``/``Item``/
``Entity`` nodes (``id``, ``name``, ``text``, ``kind`` for entities, and the node's LM
``embedding``), interactions as ``INTERACTED`` edges (``rating``, ``weight``, ``timestamp``) and
knowledge triples as edges with a ``relation`` property (``RELATED`` in the embedded store; in
Neo4j the relation's name as the relationship type, see :func:`kgrec.graph_schema.relation_type`).
Published results sit beside it: ``RECOMMENDED`` edges (``score``, ``rank``, ``model``) and
``EXPLAINS`` edges (one per recommendation and node on an explanation path: ``model``, ``item``,
``path``, ``weight``, ``rank``). Each model with recommendations also has a summary, which the
store rebuilds from its ``RECOMMENDED`` edges whenever they change (:data:`MODEL_SUMMARY`): a
``Model`` node (``id``, ``recommendations``, ``users``, ``items``) with one ``RECOMMENDS`` edge
per recommended item (``users``, ``mean_score``, ``mean_rank``), so that "what does a model
recommend most" reads a few thousand summary edges instead of every recommendation.

This module holds what both stores share: the abstract interface, the validation of what is
written (so both stores refuse the same input with the same message), the conversion of a
KnowledgeGraph into Arrow tables and back, and the read-only query contract.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DataError, StoreError
from ..graph_schema import schema
from ..knowledge_graph import (ENTITY_COLUMNS, INTERACTION_COLUMNS, ITEM_COLUMNS, KnowledgeGraph, TRIPLE_COLUMNS,
                               USER_COLUMNS, typed_frame)

#: node type (as KnowledgeGraph names it) -> store label, KnowledgeGraph table, id column
NODE_TABLES: dict[str, tuple[str, str, str]] = {
    "user": ("User", "users", "user_id"),
    "item": ("Item", "items", "item_id"),
    "entity": ("Entity", "entities", "entity_id"),
}
LABEL_TO_TYPE = {label: nt for nt, (label, _, _) in NODE_TABLES.items()}
#: relationship types with a fixed meaning; a knowledge relation never takes one of these names
RESERVED_TYPES = ("INTERACTED", "RECOMMENDED", "EXPLAINS", "RECOMMENDS")

#: Cypher, run in this order with ``$model``, that rebuilds model ``$model``'s summary from its
#: ``RECOMMENDED`` edges: the ``Model`` node goes (with its ``RECOMMENDS`` edges); if the model
#: has recommendations, it comes back with their count, the users served and the distinct items,
#: and one ``RECOMMENDS`` edge per item: ``users`` = the number of users it is recommended to,
#: ``mean_score`` and ``mean_rank`` their means. Both stores run the same text.
MODEL_SUMMARY = (
    "MATCH (m:Model {id: $model}) DETACH DELETE m",
    "MATCH (u:User)-[r:RECOMMENDED]->(i:Item) WHERE r.model = $model "
    "WITH count(r) AS recommendations, count(DISTINCT u) AS users, count(DISTINCT i) AS items "
    "WHERE recommendations > 0 "
    "CREATE (:Model {id: $model, recommendations: recommendations, users: users, items: items})",
    "MATCH (m:Model {id: $model}) MATCH (:User)-[r:RECOMMENDED]->(i:Item) WHERE r.model = $model "
    "WITH m, i, count(r) AS users, avg(r.score) AS mean_score, avg(r.rank) AS mean_rank "
    "CREATE (m)-[:RECOMMENDS {users: users, mean_score: mean_score, mean_rank: mean_rank}]->(i)",
)
#: the models that have RECOMMENDED edges, read straight from the edges (column ``model``): what a
#: store written before model summaries is summarised from
RECOMMENDED_MODELS = "MATCH ()-[r:RECOMMENDED]->() RETURN DISTINCT r.model AS model"

RECOMMENDATION_COLUMNS = ("user_id", "item_id", "score", "rank")
EXPLANATION_COLUMNS = ("user_id", "item_id", "rank", "path", "weight")
EMBEDDING_TYPE = pa.list_(pa.float32())


def knowledge_pairs() -> list[tuple[str, str]]:
    """(head label, tail label) pairs a knowledge edge may join, from the graph schema."""
    spec = schema()["relationships"]["RELATED"]
    return [(a, b) for a in spec["from"] for b in spec["to"]]


def explains_targets() -> list[str]:
    """Labels an ``EXPLAINS`` edge may point at, from the graph schema."""
    return list(schema()["relationships"]["EXPLAINS"]["to"])


@dataclass
class GraphTables:
    """A KnowledgeGraph as the Arrow tables a store writes (columns in the schema's order).

    ``nodes``      label -> table (``id``, ``name``, ``text`` [, ``kind``], ``embedding``)
    ``interactions``  ``from``, ``to``, ``rating``, ``weight``, ``timestamp`` (null = none)
    ``knowledge``  (head label, tail label) -> ``from``, ``to``, ``relation``
    """

    nodes: dict[str, pa.Table]
    interactions: pa.Table
    knowledge: dict[tuple[str, str], pa.Table] = field(default_factory=dict)

    @property
    def num_nodes(self) -> int:
        return sum(t.num_rows for t in self.nodes.values())

    @property
    def num_edges(self) -> int:
        return self.interactions.num_rows + sum(t.num_rows for t in self.knowledge.values())


def _strings(s: pd.Series) -> pa.Array:
    """``s`` as an Arrow ``string`` array (NA -> null), converted column-wise by Arrow, never row by row."""
    arr = pa.array(s.astype("string"), from_pandas=True)
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.string())


def _embedding_array(matrix: np.ndarray | None, n: int) -> pa.Array:
    if matrix is None:
        return pa.nulls(n, type=EMBEDDING_TYPE)
    flat = pa.array(np.ascontiguousarray(matrix, dtype=np.float32).reshape(-1), type=pa.float32())
    return pa.FixedSizeListArray.from_arrays(flat, matrix.shape[1]).cast(EMBEDDING_TYPE)


def check_features(kg: KnowledgeGraph, features: Mapping[str, Any] | None) -> dict[str, np.ndarray]:
    """``features`` as float32 matrices, checked against ``kg``: known node types, one row per
    node in table order, two dimensions, finite values. Raises :class:`DataError`."""
    out: dict[str, np.ndarray] = {}
    for nt, value in (features or {}).items():
        if value is None:
            continue
        if nt not in NODE_TABLES:
            raise DataError(f"features['{nt}']", None, f"'{nt}' is not a node type",
                            "use the keys 'user', 'item' and 'entity'")
        arr = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
        if arr.ndim != 2:
            raise DataError(f"features['{nt}']", None, f"has shape {arr.shape}, expected [num nodes, dim]",
                            "pass one embedding row per node")
        table = getattr(kg, NODE_TABLES[nt][1])
        if arr.shape[0] != len(table):
            raise DataError(f"features['{nt}']", None, f"has {arr.shape[0]} rows but the graph has "
                            f"{len(table)} {nt} nodes", "give one row per node, in the node table's order")
        arr = np.ascontiguousarray(arr, dtype=np.float32)
        bad = ~np.isfinite(arr).all(axis=1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataError(f"features['{nt}']", row, f"embedding is not finite ({int(bad.sum())} such rows)",
                            "recompute the embeddings; NaN or inf cannot be stored")
        out[nt] = arr
    return out


def graph_tables(kg: KnowledgeGraph, features: Mapping[str, Any] | None = None) -> GraphTables:
    """Convert ``kg`` (and ``features``, default ``kg.features``) into :class:`GraphTables`.

    Raises :class:`DataError` for features that do not fit the graph and for knowledge triples
    whose (head type, tail type) pair the graph schema does not allow."""
    feats = check_features(kg, kg.features if features is None else features)
    nodes: dict[str, pa.Table] = {}
    for nt, (label, table, key) in NODE_TABLES.items():
        df = getattr(kg, table)
        cols: dict[str, pa.Array] = {"id": _strings(df[key])}
        if nt == "entity":
            cols["kind"] = _strings(df["kind"])
        cols["name"] = _strings(df["name"])
        cols["text"] = _strings(df["text"])
        # the schema's property order (Entity: id, kind, name, text, embedding)
        order = list(schema()["nodes"][label]["properties"])
        cols["embedding"] = _embedding_array(feats.get(nt), len(df))
        nodes[label] = pa.table({c: cols[c] for c in order})

    inter = kg.interactions
    interactions = pa.table({
        "from": _strings(inter["user_id"]),
        "to": _strings(inter["item_id"]),
        "rating": pa.array(inter["rating"].to_numpy(dtype=np.float64, na_value=np.nan), from_pandas=True),
        "weight": pa.array(inter["weight"].to_numpy(dtype=np.float64, na_value=np.nan), from_pandas=True),
        "timestamp": pa.array(inter["timestamp"].astype("Int64"), type=pa.int64(), from_pandas=True),
    })

    allowed = set(knowledge_pairs())
    knowledge: dict[tuple[str, str], pa.Table] = {}
    trip = kg.triples
    if len(trip):
        for (ht, tt), grp in trip.groupby(["head_type", "tail_type"], sort=True):
            pair = (NODE_TABLES[str(ht)][0], NODE_TABLES[str(tt)][0])
            if pair not in allowed:
                row = int(grp.index[0])
                raise DataError("triples", row, f"a {ht} -> {tt} knowledge edge is not in the graph schema "
                                f"(allowed: {', '.join(f'{a}->{b}' for a, b in sorted(allowed))})",
                                "reverse the triple or model the edge in graph_schema/schema.json")
            knowledge[pair] = pa.table({"from": _strings(grp["head"]), "to": _strings(grp["tail"]),
                                        "relation": _strings(grp["relation"])})
    return GraphTables(nodes, interactions, knowledge)


def embeddings_to_matrix(column: pa.ChunkedArray | pa.Array, label: str) -> np.ndarray | None:
    """A column of ``list<float>`` embeddings as an [N, d] float32 matrix, or ``None`` when
    no node has one. Raises :class:`StoreError` when only some nodes have one or lengths differ."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks else pa.array([], type=EMBEDDING_TYPE)
    n = len(column)
    nulls = column.null_count
    if n == 0 or nulls == n:
        return None
    if nulls:
        raise StoreError(f"{nulls} of {n} {label} nodes have no embedding while the others have one; "
                         "write the graph again with features for every node of the type")
    column = column.cast(EMBEDDING_TYPE)
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    if lengths.min() != lengths.max():
        raise StoreError(f"{label} embeddings have different lengths ({lengths.min()}..{lengths.max()}); "
                         "write the graph again with one embedding matrix per node type")
    flat = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    return flat.reshape(n, int(lengths[0]))


def assemble_graph(nodes: dict[str, pa.Table], interactions: pd.DataFrame, triples: pd.DataFrame,
                   name: str = "") -> KnowledgeGraph:
    """Build a KnowledgeGraph from what a store read back, in canonical order: nodes by id,
    interactions by (user, item), triples by (head type, head, relation, tail type, tail).
    ``nodes`` maps a label to a table with ``id``, ``name``, ``text`` (``kind``) and ``embedding``."""
    tables: dict[str, pd.DataFrame] = {}
    features: dict[str, np.ndarray] = {}
    columns = {"user": USER_COLUMNS, "item": ITEM_COLUMNS, "entity": ENTITY_COLUMNS}
    for nt, (label, table, key) in NODE_TABLES.items():
        t = nodes[label]
        ids = t.column("id").to_pandas().astype(str).to_numpy()
        order = np.argsort(ids, kind="stable")
        frame = {key: ids[order]}
        for col in columns[nt]:
            if col != key:
                frame[col] = t.column(col).to_pandas().to_numpy(dtype=object)[order]
        tables[table] = typed_frame(pd.DataFrame(frame), columns[nt], table)
        emb = embeddings_to_matrix(t.column("embedding"), label)
        if emb is not None:
            features[nt] = emb[order]
    inter = typed_frame(interactions, INTERACTION_COLUMNS, "interactions")
    inter = inter.sort_values(["user_id", "item_id"], kind="stable").reset_index(drop=True)
    trip = typed_frame(triples, TRIPLE_COLUMNS, "triples")
    trip = trip.sort_values(list(TRIPLE_COLUMNS), kind="stable").reset_index(drop=True)
    return KnowledgeGraph(tables["users"], tables["items"], tables["entities"], inter, trip, name=name,
                          features=features or None)


def recommendation_table(df: pd.DataFrame, model_id: str) -> pa.Table:
    """Check a recommendation frame and return ``from``, ``to``, ``score``, ``rank``, ``model``.

    Raises :class:`DataError` naming the first bad row: a missing column, an empty id, a score
    that is not a finite number, a rank that is not a positive integer, or a (user, item) pair
    listed twice."""
    model_id = check_model_id(model_id)
    src = f"recommendations of model '{model_id}'"
    missing = [c for c in RECOMMENDATION_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(src, None, f"required column(s) {missing} not found (columns: {list(df.columns)})",
                        "pass the DataFrame that Recommender.recommend returns: user_id, item_id, score, rank")
    users = _id_column(df["user_id"], src, "user_id")
    items = _id_column(df["item_id"], src, "item_id")
    score = _number_column(df["score"], src, "score")
    rank = _rank_column(df["rank"], src)
    dup = pd.DataFrame({"u": users, "i": items}).duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(src, row, f"user '{users[row]}' and item '{items[row]}' appear twice",
                        "keep one row per (user_id, item_id)")
    return pa.table({"from": pa.array(users, pa.string()), "to": pa.array(items, pa.string()),
                     "score": pa.array(score, pa.float64()), "rank": pa.array(rank, pa.int64()),
                     "model": pa.array([model_id] * len(df), pa.string())})


def explanation_table(df: pd.DataFrame, model_id: str) -> pa.Table:
    """Check an explanation frame and return ``from`` (user), ``to`` (path node), ``to_label``,
    ``model``, ``item``, ``path``, ``weight``, ``rank``.

    ``df`` has one row per (recommendation, path node): ``user_id``, ``item_id``, ``rank``, ``path``
    (the path as text), ``weight`` and the node on the path as ``node_type`` (user / item /
    entity) and ``node_id``. Without ``node_type``/``node_id`` (or where they are empty) the row
    stands for the whole path and points at the recommended item. A node listed twice for the same
    (user, item, path) is kept once."""
    model_id = check_model_id(model_id)
    src = f"explanations of model '{model_id}'"
    missing = [c for c in EXPLANATION_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(src, None, f"required column(s) {missing} not found (columns: {list(df.columns)})",
                        "give user_id, item_id, rank, path, weight and optionally node_type, node_id")
    users = _id_column(df["user_id"], src, "user_id")
    items = _id_column(df["item_id"], src, "item_id")
    rank = _rank_column(df["rank"], src)
    weight = _number_column(df["weight"], src, "weight")
    paths = df["path"].astype("string")
    if paths.isna().any():
        row = int(np.flatnonzero(paths.isna().to_numpy())[0])
        raise DataError(src, row, "path is empty", "describe the path as text, e.g. 'user:1 -> item:50 -> genre:Drama'")
    if "node_id" in df.columns:
        node_id = df["node_id"].astype("string")
        node_type = (df["node_type"].astype("string") if "node_type" in df.columns
                     else pd.Series(pd.NA, index=df.index, dtype="string"))
        whole = node_id.isna() | (node_id.str.strip() == "")
        node_id = node_id.where(~whole, pd.Series(items, index=df.index, dtype="string"))
        node_type = node_type.where(~whole, "item").str.strip().str.lower()
    else:
        node_id = pd.Series(items, index=df.index, dtype="string")
        node_type = pd.Series("item", index=df.index, dtype="string")
    bad = ~node_type.isin(list(NODE_TABLES))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(src, row, f"node_type '{node_type.iloc[row]}' is not one of {list(NODE_TABLES)}",
                        "use user, item or entity")
    labels = node_type.map(lambda t: NODE_TABLES[t][0]).astype(str)
    allowed = explains_targets()
    bad = ~labels.isin(allowed)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(src, row, f"an explanation cannot point at a {labels.iloc[row]} node (schema allows "
                        f"{allowed})", "name a node of an allowed type")
    table = pa.table({"from": pa.array(users, pa.string()), "to": pa.array(node_id.astype(str).tolist(), pa.string()),
                      "to_label": pa.array(labels.tolist(), pa.string()),
                     "model": pa.array([model_id] * len(df), pa.string()),
                      "item": pa.array(items, pa.string()), "path": pa.array(paths.astype(str).tolist(), pa.string()),
                      "weight": pa.array(weight, pa.float64()), "rank": pa.array(rank, pa.int64())})
    # a node met twice on one path is one edge: (user, node, item, path) identifies an EXPLAINS edge
    first = ~table.select(["from", "to", "to_label", "item", "path"]).to_pandas().duplicated().to_numpy()
    return table if first.all() else table.filter(pa.array(first))


def check_model_id(model_id: str) -> str:
    if not isinstance(model_id, str) or not model_id.strip():
        raise DataError("model_id", None, f"{model_id!r} is not a model name", "pass a non-empty string")
    return model_id


def _id_column(s: pd.Series, src: str, col: str) -> list[str]:
    ids = s.astype("string").str.strip()
    bad = ids.isna() | (ids == "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(src, row, f"{col} is empty ({int(bad.sum())} such rows)", f"fill in {col}")
    return ids.astype(str).tolist()


def _number_column(s: pd.Series, src: str, col: str) -> np.ndarray:
    num = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(num)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(src, row, f"{col} '{s.iloc[row]}' is not a finite number", f"give every row a numeric {col}")
    return num


def _rank_column(s: pd.Series, src: str) -> np.ndarray:
    num = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(num) | (num < 1) | (num != np.round(num))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(src, row, f"rank '{s.iloc[row]}' is not a positive integer", "rank recommendations 1, 2, 3...")
    return num.astype(np.int64)


def check_known_ids(ids: list[str] | pa.Array, known: set[str], what: str, where: str, uri: str) -> None:
    """Raise :class:`StoreError` when ``ids`` name nodes that ``known`` lacks."""
    values = ids.to_pylist() if isinstance(ids, (pa.Array, pa.ChunkedArray)) else ids
    missing = [v for v in dict.fromkeys(values) if v not in known]
    if missing:
        raise StoreError(f"{where}: {len(missing)} {what} id(s) are not in the graph at {uri} "
                         f"(first: '{missing[0]}'). Fix: write the graph that the model was trained on first "
                         "(store.write_graph(kg)), then its recommendations")


def frame_from_records(keys: list[str], rows: list[list[Any]]) -> pd.DataFrame:
    """A DataFrame from query rows, one column per returned key (kept even with no rows)."""
    if not rows:
        return pd.DataFrame({k: pd.Series(dtype=object) for k in keys})
    return pd.DataFrame(rows, columns=keys)


class GraphStore(ABC):
    """One graph and its published recommendations, behind Cypher.

    Open one with :func:`kgrec.open_store`. A store is a context manager; ``close()`` is
    idempotent. A store object is meant for one thread at a time.
    """

    #: where the store lives: the file path or the server URI
    uri: str
    #: opened for reading only: every write method raises StoreError
    read_only: bool

    # ---------------------------------------------------------------- writing
    @abstractmethod
    def write_graph(self, kg: KnowledgeGraph, features: Mapping[str, Any] | None = None) -> dict[str, int]:
        """Make the store hold ``kg``: its nodes with their properties and embeddings
        (``features``, node type -> [N, d] rows in table order; default ``kg.features``),
        interactions and knowledge edges. Nodes and edges not in ``kg`` are removed;
        recommendations and explanations between nodes that remain are kept, and the models'
        summaries (:data:`MODEL_SUMMARY`) count only those.

        Idempotent: writing the same graph twice leaves the same contents. Returns the
        number of nodes and edges written (``{"nodes": ..., "edges": ...}``)."""

    @abstractmethod
    def read_graph(self) -> KnowledgeGraph:
        """The stored graph as a KnowledgeGraph in canonical order (nodes by id, interactions
        by (user, item), triples by all columns), with ``features`` for every node type whose
        nodes carry embeddings (float32, exactly as written)."""

    @abstractmethod
    def write_recommendations(self, df: pd.DataFrame, model_id: str) -> int:
        """Replace model ``model_id``'s ``RECOMMENDED`` edges with ``df`` (columns ``user_id``,
        ``item_id``, ``score``, ``rank``) and rebuild its summary (:data:`MODEL_SUMMARY`; an
        empty ``df`` removes the model); other models' edges stay. Every user and item must be
        in the stored graph. Returns the number of edges written."""

    @abstractmethod
    def write_explanations(self, df: pd.DataFrame, model_id: str) -> int:
        """Replace model ``model_id``'s explanations with ``df``: one ``EXPLAINS`` edge from the
        user to each node on a recommendation's explanation path, carrying ``model``, ``item``
        (the recommended item), ``path`` (text), ``weight`` and ``rank``. Columns ``user_id``,
        ``item_id``, ``rank``, ``path``, ``weight``, and ``node_type`` + ``node_id`` for the path
        node (absent: the row points at the item). Returns the number of edges written.

        Show a recommendation's paths with::

            MATCH (u:User {id: $user})-[x:EXPLAINS]->(n)
            WHERE x.item = $item RETURN x.path, x.weight, n.id ORDER BY x.weight DESC
        """

    # ---------------------------------------------------------------- reading
    @abstractmethod
    def query(self, cypher: str, **params: Any) -> pd.DataFrame:
        """Run one Cypher statement in a read-only transaction and return its rows (one column
        per returned name). Every value comes in as a ``$parameter``. A statement that writes
        is refused by the store engine itself and raises :class:`ReadOnlyQueryError`; any other
        failure raises :class:`StoreError` naming the store."""

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """Node and edge counts: ``users``, ``items``, ``entities``, ``interactions``,
        ``knowledge_edges``, ``recommendations``, ``explanations``."""

    @abstractmethod
    def close(self) -> None:
        """Release the store (file lock / driver). Idempotent."""

    # ---------------------------------------------------------------- helpers
    def models(self) -> list[str]:
        """Names of the models whose recommendations are stored."""
        df = self.query("MATCH (m:Model) RETURN m.id AS model ORDER BY model")
        return [str(m) for m in df["model"].tolist()]

    def __enter__(self) -> "GraphStore":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = ", read_only" if self.read_only else ""
        return f"{type(self).__name__}('{self.uri}'{mode})"

    def _check_writable(self) -> None:
        if self.read_only:
            raise StoreError(f"{self.uri} was opened read-only; open it with open_store('{self.uri}') to write")


def finite_or_none(x: Any) -> Any:
    """``None`` for NaN / NA, else the value (for drivers that would store NaN)."""
    if x is None or x is pd.NA:
        return None
    if isinstance(x, float) and math.isnan(x):
        return None
    return x
