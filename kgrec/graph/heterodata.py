"""The graph as a PyG ``HeteroData`` in canonical order: the compute view of a KnowledgeGraph.

Canonical, so that the same graph gives the same object whatever it was read from (tables or a
graph store): nodes of each type are ordered by id (string order), edges by (source, target,
relation).

Node types ``user``, ``item``, ``entity``; each has ``node_id`` (list of the caller's ids, index
order), ``num_nodes`` and, when features are given, ``x`` ([N, d] float32).

Edge types
    ``('user', 'interacted', 'item')``  with ``edge_weight`` (rating, else weight, else 1) and
    ``('item', 'rev_interacted', 'user')`` its reverse;
    ``(h, 'kg', t)`` for each (head type, tail type) pair among the knowledge triples, with
    ``edge_relation`` (index into ``data.relations``) and ``(t, 'rev_kg', h)`` its reverse
    (for entity->entity and item->item the reverse edges join the ``'rev_kg'`` type of the same pair).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..knowledge_graph import KnowledgeGraph
from .pyg import HeteroData

NODE_KEYS = {"user": ("users", "user_id"), "item": ("items", "item_id"), "entity": ("entities", "entity_id")}


def node_order(kg: KnowledgeGraph, node_type: str) -> np.ndarray:
    """Positions of ``kg``'s table rows in canonical (id-sorted) order."""
    table, key = NODE_KEYS[node_type]
    ids = getattr(kg, table)[key].astype(str).to_numpy()
    return np.argsort(ids, kind="stable")


def canonical_ids(kg: KnowledgeGraph, node_type: str) -> pd.Index:
    """The ids of ``kg``'s ``node_type`` nodes (strings) in canonical order: the positions every
    model of kgrec and every baseline uses."""
    table, key = NODE_KEYS[node_type]
    ids = getattr(kg, table)[key].astype(str).to_numpy()
    return pd.Index(ids[node_order(kg, node_type)], dtype=object)


def to_heterodata(kg: KnowledgeGraph, features: dict[str, np.ndarray | torch.Tensor] | None = None) -> HeteroData:
    """Build the canonical ``HeteroData`` of ``kg``; ``features`` defaults to ``kg.features``
    (rows in table order, as a KnowledgeGraph keeps them)."""
    features = features if features is not None else (kg.features or {})
    data = HeteroData()
    index: dict[str, pd.Index] = {}
    for nt, (table, key) in NODE_KEYS.items():
        order = node_order(kg, nt)
        ids = getattr(kg, table)[key].astype(str).to_numpy()[order]
        index[nt] = pd.Index(ids)
        data[nt].node_id = ids.tolist()
        data[nt].num_nodes = len(ids)
        if nt in features and features[nt] is not None:
            x = torch.as_tensor(np.asarray(features[nt]), dtype=torch.float32)
            if x.shape[0] != len(ids):
                raise ValueError(f"features['{nt}'] has {x.shape[0]} rows but the graph has {len(ids)} {nt} nodes")
            data[nt].x = x[torch.as_tensor(order)]

    inter = kg.interactions
    src = index["user"].get_indexer(inter["user_id"].astype(str))
    dst = index["item"].get_indexer(inter["item_id"].astype(str))
    weight = inter["rating"].to_numpy(dtype=np.float32, na_value=np.nan)
    alt = inter["weight"].to_numpy(dtype=np.float32, na_value=np.nan)
    weight = np.where(np.isnan(weight), alt, weight)
    weight = np.where(np.isnan(weight), 1.0, weight).astype(np.float32)
    order = np.lexsort((dst, src))
    ei = torch.as_tensor(np.stack([src[order], dst[order]]), dtype=torch.long)
    data["user", "interacted", "item"].edge_index = ei
    data["user", "interacted", "item"].edge_weight = torch.as_tensor(weight[order])
    data["item", "rev_interacted", "user"].edge_index = ei.flip(0)
    data["item", "rev_interacted", "user"].edge_weight = torch.as_tensor(weight[order])

    trip = kg.triples
    relations = sorted(trip["relation"].astype(str).unique().tolist())
    data.relations = relations
    rel_index = pd.Index(relations)
    rev: dict[tuple[str, str, str], list[torch.Tensor]] = {}
    for (ht, tt), grp in trip.groupby(["head_type", "tail_type"], sort=True):
        h = index[ht].get_indexer(grp["head"].astype(str))
        t = index[tt].get_indexer(grp["tail"].astype(str))
        r = rel_index.get_indexer(grp["relation"].astype(str))
        o = np.lexsort((r, t, h))
        fwd = torch.as_tensor(np.stack([h[o], t[o]]), dtype=torch.long)
        rel = torch.as_tensor(r[o], dtype=torch.long)
        key = (str(ht), "kg", str(tt))
        if key in data.edge_types:  # cannot happen: groupby keys are unique
            raise AssertionError(key)
        data[key].edge_index = fwd
        data[key].edge_relation = rel
        rev.setdefault((str(tt), "rev_kg", str(ht)), []).append(torch.cat([fwd.flip(0), rel[None]], 0))
    for key, parts in rev.items():
        cat = torch.cat(parts, 1)
        data[key].edge_index = cat[:2]
        data[key].edge_relation = cat[2]
    return data
