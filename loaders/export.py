"""A KnowledgeGraph as a ``networkx.MultiDiGraph``, for analysis and plotting."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pandas as pd

from kgrec.knowledge_graph import KnowledgeGraph


def node_key(node_type: str, node_id: str) -> str:
    """The networkx node of a KnowledgeGraph node: ``"user:1"``, ``"item:50"``,
    ``"entity:genre:Action"`` (types prefix the id since users and items may share ids)."""
    return f"{node_type}:{node_id}"


def to_networkx(kg: KnowledgeGraph, *, interactions: bool = True) -> nx.MultiDiGraph:
    """``kg`` as a ``MultiDiGraph``.

    Nodes are :func:`node_key` strings with attributes ``type`` (user / item / entity), ``id``,
    ``name``, ``text`` and, for entities, ``kind`` (missing values are left out). Interaction
    edges go user -> item with ``relation="INTERACTED"`` and ``rating`` / ``weight`` /
    ``timestamp`` where the data has them; knowledge edges go head -> tail with ``relation``
    set to the source relation name. The edge key is the relation."""
    g = nx.MultiDiGraph(name=kg.name)
    for typ, table, key in (("user", kg.users, "user_id"), ("item", kg.items, "item_id"),
                            ("entity", kg.entities, "entity_id")):
        cols = ["name", "text"] + (["kind"] if typ == "entity" else [])
        vals = {c: table[c].tolist() for c in cols}
        ids = table[key].tolist()
        g.add_nodes_from(
            (node_key(typ, i), {"type": typ, "id": i,
                                **{c: vals[c][n] for c in cols if not _missing(vals[c][n])}})
            for n, i in enumerate(ids))
    if interactions:
        inter = kg.interactions
        cols = {"rating": inter["rating"].to_numpy(dtype=float, na_value=np.nan),
                "weight": inter["weight"].to_numpy(dtype=float, na_value=np.nan)}
        ts = inter["timestamp"].to_numpy(dtype=float, na_value=np.nan)
        g.add_edges_from(
            (node_key("user", u), node_key("item", i), "INTERACTED",
             {"relation": "INTERACTED",
              **{c: float(v[n]) for c, v in cols.items() if not math.isnan(v[n])},
              **({"timestamp": int(ts[n])} if not math.isnan(ts[n]) else {})})
            for n, (u, i) in enumerate(zip(inter["user_id"].tolist(), inter["item_id"].tolist())))
    g.add_edges_from(
        (node_key(ht, h), node_key(tt, t), rel, {"relation": rel})
        for ht, h, rel, tt, t in kg.triples.itertuples(index=False, name=None))
    return g


def _missing(v: object) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
