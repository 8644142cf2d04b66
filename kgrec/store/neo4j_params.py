"""Kgrec's tables as Bolt parameters and Neo4j names: column lists, relationship types, labels.

Every value reaches Neo4j as a ``$parameter``: a batch of rows travels as one list parameter per
column (:func:`column_params`; :func:`grouped_edge_params` for edges grouped by target), which a
query reads row by row with :data:`ROWS` / :data:`GROUPED_EDGES`. Only labels and relationship
types are written into the Cypher text, each checked by :func:`safe`; a knowledge edge's type is
its relation's name (:func:`neo4j_type`). :class:`NodeIds` maps stored node ids to element ids,
and :func:`plain` turns the driver's values into plain Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import StoreError
from ..graph_schema import relation_type
from .base import RESERVED_TYPES

#: the labels and relationship types that :func:`safe` lets into Cypher text
SAFE_NAME = re.compile(r"^[A-Z][A-Za-z0-9_]*$")
#: a batch of edges arrives as one list parameter per column; row k of the batch is $column[k]
ROWS = "UNWIND range(0, size($from) - 1) AS k"
#: a batch of edges grouped by target (see grouped_edge_params): one tail lookup per target, not per edge
GROUPED_EDGES = "UNWIND range(0, size($group) - 1) AS g"


def neo4j_type(relation: str) -> str:
    """The Neo4j relationship type of a knowledge edge with source relation ``relation``."""
    name = relation_type(relation)
    return "RELATED" if name in RESERVED_TYPES else name


def neo4j_types(relations: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """:func:`neo4j_type` of every row of ``relations``, computed once per distinct relation
    (per row it cost far more client time at Last.fm's size: measured in docs/results.md)."""
    relations = relations if isinstance(relations, pa.ChunkedArray) else pa.chunked_array([relations])
    distinct = pc.unique(relations)
    names = pa.array([neo4j_type(r) for r in distinct.to_pylist()], pa.string())
    return pc.take(names, pc.index_in(relations, value_set=distinct))


def safe(name: str) -> str:
    """A label or relationship type that may be written into Cypher text (defence in depth)."""
    if not SAFE_NAME.match(name):
        raise StoreError(f"refusing to put '{name}' into Cypher text: labels and types must match "
                         f"{SAFE_NAME.pattern}")
    return name


def plain(value: Any) -> Any:
    """Driver values as plain Python: nodes and relationships become dicts of their properties
    plus ``_label`` (as the embedded store returns them), paths ``{"_nodes", "_rels"}``."""
    from neo4j.graph import Node, Path, Relationship
    if isinstance(value, Node):
        return {"_label": next(iter(value.labels), None), **dict(value)}
    if isinstance(value, Relationship):
        return {"_label": value.type, **dict(value)}
    if isinstance(value, Path):
        return {"_nodes": [plain(n) for n in value.nodes], "_rels": [plain(r) for r in value.relationships]}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class NodeIds:
    """The stored nodes of one label: their ``id`` and, at the same position, their element id."""

    ids: pa.Array
    eids: pa.Array

    def element_ids(self, ids: pa.ChunkedArray | pa.Array) -> pa.Array:
        """The element ids of the nodes with ``ids``; raises :class:`StoreError` for an id that
        no stored node has (a node written moments ago and deleted by another client since)."""
        pos = pc.index_in(ids, value_set=self.ids)
        if pos.null_count:
            missing = pc.filter(ids, pc.is_null(pos))[0].as_py()
            raise StoreError(f"node '{missing}' disappeared from the store while its edges were written "
                             "(another client deleting nodes?). Fix: write the graph again")
        return pc.take(self.eids, pos)


class Column(list):
    """A column of query parameters whose ``repr`` is its length.

    The driver formats every ``RUN``'s parameters for its debug log, ``repr`` of every value,
    before the logger checks its level: for a batch of 10,000 rows or of embedded nodes that
    took longer than packing them (most of a publish's client CPU: measured in docs/results.md)."""

    def __repr__(self) -> str:
        return f"<{len(self)} values>"


def column_params(table: pa.Table) -> dict[str, list]:
    """``table``'s columns as list parameters named after the columns (``$from``, ``$to``...)."""
    return {name: Column(table.column(name).to_pylist()) for name in table.column_names}


def grouped_edge_params(table: pa.Table) -> dict[str, list]:
    """A slice of edges sorted by ``to`` as parameters for :data:`GROUPED_EDGES`: ``$group`` the
    distinct targets in order, edges ``$start[g]`` to ``$start[g + 1] - 1`` end at ``$group[g]``,
    and every other column (``$from``, properties) per edge."""
    targets = table.column("to").to_numpy(zero_copy_only=False)
    first = np.flatnonzero(np.r_[True, targets[1:] != targets[:-1]]) if len(targets) else np.zeros(0, np.int64)
    params = column_params(table.drop_columns(["to"]))
    params["group"] = Column(targets[first].tolist())
    params["start"] = Column(np.r_[first, len(targets)].tolist())
    return params


def supports_dynamic_types(agent: str) -> bool:
    """Whether a server (its Bolt agent string, e.g. ``Neo4j/5.26.0``) creates relationships whose
    type is an expression, ``CREATE (a)-[:$($type)]->(b)``: Neo4j 5.26 and later (2025.x too)."""
    version = re.match(r"Neo4j/(\d+)\.(\d+)", agent or "")
    return version is not None and (int(version[1]), int(version[2])) >= (5, 26)


def by_target(table: pa.Table) -> pa.Table:
    """``table``'s edges sorted by ``to``, then ``from`` (the order :func:`grouped_edge_params` takes)."""
    return table.sort_by([("to", "ascending"), ("from", "ascending")]) if table.num_rows else table
