"""The Arrow tables a store writes and reads back: a KnowledgeGraph to tables and back.

:func:`graph_tables` turns a KnowledgeGraph and its node features into :class:`GraphTables` (one
table per node label, the interactions, the knowledge edges per node-label pair; columns in the
graph schema's order); :func:`assemble_graph` builds a KnowledgeGraph, in canonical order, from
what a store read back. Both stores use them, so both store and return the same graph.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import DataError, StoreError
from ..graph_schema import schema
from ..knowledge_graph import (ENTITY_COLUMNS, INTERACTION_COLUMNS, ITEM_COLUMNS, KnowledgeGraph, TRIPLE_COLUMNS,
                               USER_COLUMNS, typed_frame)
from .base import NODE_TABLES, knowledge_pairs

EMBEDDING_TYPE = pa.list_(pa.float32())
#: the longest node name, node text and explanation path (in characters) a store keeps: longer
#: ones are cut there and end in "…" (LM features are computed from the full text before that)
MAX_NAME_CHARS = 256
MAX_TEXT_CHARS = 4096
MAX_PATH_CHARS = 1024


def cap_text(values: pa.Array, limit: int) -> tuple[pa.Array, int]:
    """``values`` (strings; nulls kept) with each longer than ``limit`` characters cut to
    ``limit`` (its last character "…"), and how many were cut."""
    too_long = pc.greater(pc.utf8_length(values), limit)
    cut = int(pc.sum(too_long).as_py() or 0)
    if cut == 0:
        return values, 0
    short = pc.binary_join_element_wise(pc.utf8_slice_codeunits(values, 0, limit - 1),
                                        pa.scalar("…", values.type), pa.scalar("", values.type))
    return pc.if_else(too_long, short, values), cut


@dataclass
class GraphTables:
    """A KnowledgeGraph as the Arrow tables a store writes (columns in the schema's order).

    ``nodes``      label -> table (``id``, ``name``, ``text`` [, ``kind``], ``embedding``)
    ``interactions``  ``from``, ``to``, ``rating``, ``weight``, ``timestamp`` (null = none)
    ``knowledge``  (head label, tail label) -> ``from``, ``to``, ``relation``
    ``texts_cut``  how many names and texts were longer than :data:`MAX_NAME_CHARS` /
                   :data:`MAX_TEXT_CHARS` and were cut
    """

    nodes: dict[str, pa.Table]
    interactions: pa.Table
    knowledge: dict[tuple[str, str], pa.Table] = field(default_factory=dict)
    texts_cut: int = 0

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
    texts_cut = 0
    for nt, (label, table, key) in NODE_TABLES.items():
        df = getattr(kg, table)
        cols: dict[str, pa.Array] = {"id": _strings(df[key])}
        if nt == "entity":
            cols["kind"] = _strings(df["kind"])
        cols["name"], names_cut = cap_text(_strings(df["name"]), MAX_NAME_CHARS)
        cols["text"], text_cut = cap_text(_strings(df["text"]), MAX_TEXT_CHARS)
        texts_cut += names_cut + text_cut
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
    return GraphTables(nodes, interactions, knowledge, texts_cut)


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


def frame_from_records(keys: list[str], rows: list[list[Any]]) -> pd.DataFrame:
    """A DataFrame from query rows, one column per returned key (kept even with no rows)."""
    if not rows:
        return pd.DataFrame({k: pd.Series(dtype=object) for k in keys})
    return pd.DataFrame(rows, columns=keys)


def finite_or_none(x: Any) -> Any:
    """``None`` for NaN / NA, else the value (for drivers that would store NaN)."""
    if x is None or x is pd.NA:
        return None
    if isinstance(x, float) and math.isnan(x):
        return None
    return x
