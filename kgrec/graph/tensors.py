"""The tensors a model propagates over: ids to positions, edges, degrees, text features.

The model is :class:`kgrec.nn.model.KGRecModel`.

A :class:`GraphIndex` maps the caller's ids to positions (``pandas.Index`` per node type, in
the canonical order of :func:`kgrec.graph.heterodata.to_heterodata`) and names the relations. A
:class:`GraphTensors` holds one homogeneous node space -- users ``[0, U)``, items
``[U, U + I)``, entities ``[U + I, N)`` -- with

- ``x``: the LM text features ``[N, F]`` (or ``None``),
- the training pairs (``inter_user``, ``inter_item`` positions within their type): the
  interactions and the knowledge triples between a user and an item (:func:`with_user_item_triples`),
- every propagation edge as ``edge_index [2, E]`` (source, target; both directions of every
  interaction and knowledge edge) with ``edge_type [E]`` and its symmetric normalisation
  ``edge_norm [E] = 1 / sqrt(deg(source) deg(target))``,
- ``deg [N]``: node degrees in that edge set (what the inductive path normalises with).

Edge types: ``0`` user->item interaction, ``1`` item->user, ``2 + 2r`` knowledge relation ``r``
from head to tail, ``3 + 2r`` the same relation from tail to head (see :func:`relation_type`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..knowledge_graph import NODE_TYPES, KnowledgeGraph
from .csr import csr_indptr, gather_rows, relation_pairs, sparse_csr
from .heterodata import to_heterodata
from .pyg import HeteroData

USER_TO_ITEM = 0
ITEM_TO_USER = 1


def relation_type(relation: int, reverse: bool = False) -> int:
    """Edge type of knowledge relation ``relation`` (index into ``GraphIndex.relations``)
    read from head to tail, or from tail to head when ``reverse``."""
    return 2 + 2 * relation + int(reverse)


@dataclass
class GraphIndex:
    """Caller ids <-> positions. ``user_ids``, ``item_ids``, ``entity_ids``: ``pandas.Index`` of
    string ids in position order; ``relations``: knowledge relation names (index = relation id)."""

    user_ids: pd.Index
    item_ids: pd.Index
    entity_ids: pd.Index
    relations: pd.Index

    @property
    def num_users(self) -> int:
        return len(self.user_ids)

    @property
    def num_items(self) -> int:
        return len(self.item_ids)

    @property
    def num_entities(self) -> int:
        return len(self.entity_ids)

    @property
    def num_nodes(self) -> int:
        return self.num_users + self.num_items + self.num_entities

    @property
    def num_edge_types(self) -> int:
        return 2 + 2 * len(self.relations)

    def ids(self, node_type: str) -> pd.Index:
        return {"user": self.user_ids, "item": self.item_ids, "entity": self.entity_ids}[node_type]

    def offset(self, node_type: str) -> int:
        """Where ``node_type``'s positions start in the homogeneous node space."""
        return {"user": 0, "item": self.num_users, "entity": self.num_users + self.num_items}[node_type]

    def to_dict(self) -> dict:
        """Plain lists (for saving)."""
        return {"user_ids": self.user_ids.tolist(), "item_ids": self.item_ids.tolist(),
                "entity_ids": self.entity_ids.tolist(), "relations": self.relations.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> "GraphIndex":
        return cls(*(pd.Index([str(v) for v in d[k]], dtype=object)
                     for k in ("user_ids", "item_ids", "entity_ids", "relations")))


@dataclass
class GraphTensors:
    """Tensors of one training graph (see module doc). Move with :meth:`to`."""

    num_users: int
    num_items: int
    num_entities: int
    num_edge_types: int
    x: Tensor | None                 # [N, F] float32 text features, or None
    inter_user: Tensor               # [M] user positions of training positives (sorted by user, item): the
                                     # interactions and the user-item triples (with_user_item_triples)
    inter_item: Tensor               # [M] item positions (within items)
    edge_index: Tensor               # [2, E] homogeneous (source, target)
    edge_type: Tensor                # [E]
    edge_norm: Tensor                # [E] 1/sqrt(deg(src) deg(dst))
    deg: Tensor                      # [N] float degrees
    inter_weight: Tensor | None = None  # [M] loss weight of each training pair (None: all equal)

    @property
    def num_nodes(self) -> int:
        return self.num_users + self.num_items + self.num_entities

    def interaction_adjacency(self) -> Tensor:
        """The normalised interaction edges as a sparse CSR ``[U + I, U + I]`` matrix over users
        and items (symmetric: both directions, weight ``edge_norm``; entities have none). Cached."""
        cache = self.__dict__.get("_adj")
        if cache is None:
            m = self.edge_type < 2
            ui = self.num_users + self.num_items
            # rows = targets: (A h)_v sums over the sources of v
            cache = sparse_csr(self.edge_index[:, m].flip(0), self.edge_norm[m], (ui, ui))
            self.__dict__["_adj"] = cache
        return cache

    def knowledge_edges(self) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(src, dst, edge_type, edge_norm)`` of the knowledge edges (types >= 2). Cached."""
        cache = self.__dict__.get("_kg")
        if cache is None:
            m = self.edge_type >= 2
            cache = (self.edge_index[0, m], self.edge_index[1, m], self.edge_type[m], self.edge_norm[m])
            self.__dict__["_kg"] = cache
        return cache

    def knowledge_pairs(self, into: Literal["users_items", "entities"]) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """The knowledge edges into users and items (``A`` is ``[U + I, P]``), or into entities
        (``A`` is ``[num_entities, P]``, row 0 the first entity), as :func:`relation_pairs`. Cached."""
        key = f"_kg_pairs_{into}"
        cache = self.__dict__.get(key)
        if cache is None:
            if into not in ("users_items", "entities"):
                raise ValueError(f"into must be 'users_items' or 'entities' (got {into!r})")
            src, dst, etype, norm = self.knowledge_edges()
            ui = self.num_users + self.num_items
            m = dst < ui if into == "users_items" else dst >= ui
            first, rows = (0, ui) if into == "users_items" else (ui, self.num_entities)
            cache = relation_pairs(src[m], etype[m], dst[m] - first, norm[m], rows, self.num_edge_types)
            self.__dict__[key] = cache
        return cache

    def knowledge_edges_into(self, nodes: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(row, source, edge_type)`` of the knowledge edges into ``nodes`` (homogeneous
        positions): edge ``k`` goes from ``source[k]`` into ``nodes[row[k]]``. These are the edges
        a node has from its content alone, what a new node brings (the cold-start views)."""
        indptr, src, etype = self._incoming_index()
        row, entry = gather_rows(indptr, nodes)
        return row, src[entry], etype[entry]

    def _incoming_index(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(indptr [N + 1], source, edge_type)``: the knowledge edges grouped by target (CSR). Cached."""
        cache = self.__dict__.get("_kg_in")
        if cache is None:
            src, dst, etype, _ = self.knowledge_edges()  # sorted by target
            cache = (csr_indptr(dst, self.num_nodes), src, etype)
            self.__dict__["_kg_in"] = cache
        return cache

    def prepare(self) -> "GraphTensors":
        """Build the cached sparse structures (:meth:`interaction_adjacency`, both
        :meth:`knowledge_pairs`, the index behind :meth:`knowledge_edges_into`) now, so that
        training builds them before its first epoch rather than in its first steps (where a
        short timing would spread their cost over every epoch)."""
        self.interaction_adjacency()
        for into in ("users_items", "entities"):
            self.knowledge_pairs(into)  # type: ignore[arg-type]
        self._incoming_index()
        return self

    def to(self, device: torch.device | str) -> "GraphTensors":
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        for k, v in kw.items():
            if isinstance(v, Tensor):
                kw[k] = v.to(device)
        return GraphTensors(**kw)

    def user_positives_csr(self) -> tuple[Tensor, Tensor]:
        """``(indptr [U+1], items [M])``: each user's training items, sorted (the training pairs
        are sorted by user, then item)."""
        return csr_indptr(self.inter_user, self.num_users), self.inter_item


def build_graph(kg: KnowledgeGraph, features: dict[str, np.ndarray] | None = None, *,
                use_kg: bool = True,
                user_item_triples: Literal["interactions", "knowledge"] = "interactions",
                pair_weights: bool = False) -> tuple[GraphIndex, GraphTensors]:
    """Index and tensors of ``kg``. ``features`` (node type -> ``[N, F]`` rows in table order;
    default ``kg.features``) are checked to be finite. ``use_kg=False`` keeps only the
    interaction edges (entities stay as isolated nodes). Knowledge triples between a user and an item join the
    interactions (:func:`with_user_item_triples`), or with ``user_item_triples="knowledge"``
    stay knowledge edges like the others. With ``pair_weights``, ``inter_weight`` holds each
    training pair's weight: its rating, else its weight, else 1 (a user-item triple's pair: 1)."""
    as_interactions = use_kg and user_item_triples == "interactions"
    features = features if features is not None else kg.features
    if features is not None:
        for nt in NODE_TYPES:
            if nt not in features or features[nt] is None:
                raise ValueError(f"features lack node type '{nt}': give one matrix per node type "
                                 f"(kgrec.text_features.encode_graph(kg, encoder) returns all three)")
            arr = np.asarray(features[nt])
            bad = ~np.isfinite(arr).all(axis=1) if arr.ndim == 2 else None
            if bad is not None and bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise ValueError(f"features['{nt}'] row {row} (the {row}th {nt} in table order) holds NaN or "
                                 f"inf ({int(bad.sum())} such rows); re-encode those nodes' text")
    data = to_heterodata(kg, features)
    relations = list(data.relations)
    index = GraphIndex(pd.Index(data["user"].node_id, dtype=object), pd.Index(data["item"].node_id, dtype=object),
                       pd.Index(data["entity"].node_id, dtype=object), pd.Index(relations, dtype=object))
    U, I, N = index.num_users, index.num_items, index.num_nodes
    off = {nt: index.offset(nt) for nt in NODE_TYPES}

    store = data["user", "interacted", "item"]
    ui, weight = store.edge_index, store.edge_weight
    if as_interactions:
        merged = with_user_item_triples(ui, data, I)
        if pair_weights and merged.shape[1] != ui.shape[1]:  # pairs of triples only weigh 1
            at = torch.searchsorted(merged[0] * I + merged[1], ui[0] * I + ui[1])
            weight = torch.ones(merged.shape[1]).index_copy_(0, at, weight)
        ui = merged
    src = [ui[0], ui[1] + U]
    dst = [ui[1] + U, ui[0]]
    typ = [torch.full((ui.size(1),), USER_TO_ITEM), torch.full((ui.size(1),), ITEM_TO_USER)]
    if use_kg:
        for (h, rel, t) in data.edge_types:
            if rel != "kg" or (as_interactions and {h, t} == {"user", "item"}):
                continue
            store = data[h, rel, t]
            ei, r = store.edge_index, store.edge_relation
            src += [ei[0] + off[h], ei[1] + off[t]]
            dst += [ei[1] + off[t], ei[0] + off[h]]
            typ += [2 + 2 * r, 3 + 2 * r]
    edge_index = torch.stack([torch.cat(src), torch.cat(dst)]).long()
    edge_type = torch.cat(typ).long()
    # self-loops (item->item triples on the same node) would double-count; drop them
    keep = edge_index[0] != edge_index[1]
    edge_index, edge_type = edge_index[:, keep], edge_type[keep]
    # sort by target then source: deterministic order and good locality for scatter
    order = torch.as_tensor(np.lexsort((edge_index[0].numpy(), edge_index[1].numpy())))
    edge_index, edge_type = edge_index[:, order], edge_type[order]
    deg = torch.bincount(edge_index[1], minlength=N).float()
    inv = deg.clamp(min=1).rsqrt()
    edge_norm = inv[edge_index[0]] * inv[edge_index[1]]

    x = None
    if features is not None:
        x = torch.cat([data[nt].x for nt in NODE_TYPES], 0).float()
    gt = GraphTensors(U, I, index.num_entities, index.num_edge_types, x, ui[0].long(), ui[1].long(),
                      edge_index, edge_type, edge_norm, deg,
                      inter_weight=_checked_weights(weight, kg) if pair_weights else None)
    return index, gt


def _checked_weights(weight: Tensor, kg: KnowledgeGraph) -> Tensor:
    """Pair weights as float32, each positive (a loss weight of 0 or less means nothing)."""
    weight = weight.float()
    bad = ~(weight > 0)
    if bad.any():
        raise ValueError(f"{int(bad.sum())} training interactions of {kg.name or 'the graph'} have a rating or "
                         f"weight of 0 or less (e.g. {float(weight[bad][0]):g}), which cannot weigh the loss. Fix: "
                         "drop them with min_rating (from_tables, KnowledgeGraph.with_min_rating) or train with "
                         "interaction_weight='none'")
    return weight


def with_user_item_triples(ui: Tensor, data: HeteroData, num_items: int) -> Tensor:
    """The interaction pairs ``ui`` ``[2, M]`` (user, item positions) joined by the pairs of every
    knowledge triple between a user and an item (either way round), without duplicates and
    sorted by user, then item.

    Such triples are a second behaviour of users towards items (an artist the user tagged, a
    product they viewed): they train and propagate as interactions do, but stay out of the
    seen items that ranking excludes, which are the interaction table's alone."""
    pairs = [ui]
    for (h, rel, t) in data.edge_types:
        if rel == "kg" and {h, t} == {"user", "item"}:
            ei = data[h, rel, t].edge_index
            pairs.append(ei if h == "user" else ei.flip(0))
    if len(pairs) == 1:
        return ui
    both = torch.cat(pairs, 1).long()
    keys = torch.unique(both[0] * num_items + both[1])
    return torch.stack([keys // num_items, keys % num_items])
