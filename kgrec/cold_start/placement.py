"""Placing new items, users and entities (cold start): their vectors from a frozen trained model.

A new node starts from its projected text features (no ID embedding) and receives, layer by
layer, messages from the frozen layer representations of the nodes it is linked to; it sends
none, so no existing representation changes (see :meth:`kgrec.nn.model.KGRecModel.inductive`). How a new item's vector is finished
(content map, calibration) and a new user's (the blend with their clicked items) is
:meth:`kgrec.nn.model.KGRecModel.inductive_output`.

    new = embed_new_nodes(trained, items=NewNodeInputs(ids, features), triples=triples_df)
    new.items    # [n, dim], rows in ids order; score = user embeddings @ new.items.T

The nodes a batch may link to are the training graph's and, through ``added=``, the nodes
embedded by earlier batches (:class:`FrozenLayers`, returned as ``new.states``), so an entity or
item created by one batch is a neighbour like any other for the next.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..graph.tensors import ITEM_TO_USER, USER_TO_ITEM, relation_type
from ..knowledge_graph import NODE_TYPES

if TYPE_CHECKING:
    from ..train.trained import TrainedModel

EMBED_ORDER = ("entity", "item", "user")  # new entities feed new items, new items feed new users


@dataclass
class NewNodeInputs:
    """New nodes of one type for :func:`embed_new_nodes`: their ids and text
    features ``[n, F]`` (rows in ``ids`` order; ``None`` when the model has no text input)."""

    ids: list[str]
    features: np.ndarray | Tensor | None = None


@dataclass
class FrozenLayers:
    """Frozen per-layer representations of nodes of one type, as neighbours for new nodes:
    ``ids`` (``pandas.Index`` of str), ``layers`` (``L + 1`` tensors ``[n, dim]``, rows in ``ids``
    order) and ``deg`` (``[n]`` float, the number of edges each node received)."""

    ids: pd.Index
    layers: list[Tensor]
    deg: Tensor

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls, num_layers: int, dim: int, device: torch.device | str = "cpu") -> "FrozenLayers":
        """No nodes; ``num_layers`` propagation layers (so ``num_layers + 1`` tensors)."""
        return cls(pd.Index([], dtype=object), [torch.zeros(0, dim, device=device) for _ in range(num_layers + 1)],
                   torch.zeros(0, device=device))

    def merged(self, newer: "FrozenLayers") -> "FrozenLayers":
        """These nodes updated by ``newer``: a node in both keeps ``newer``'s row (moved to the
        end); the others keep theirs. Neither input changes."""
        keep = torch.as_tensor(np.flatnonzero(~self.ids.isin(newer.ids)), dtype=torch.long, device=self.deg.device)
        return FrozenLayers(self.ids[keep.cpu().numpy()].append(newer.ids),
                          [torch.cat([old.index_select(0, keep), new.to(old.device)])
                           for old, new in zip(self.layers, newer.layers)],
                          torch.cat([self.deg.index_select(0, keep), newer.deg.to(self.deg.device)]))

    def state(self) -> dict[str, Any]:
        """Plain lists and CPU tensors (for saving); :meth:`from_state` reads it back."""
        return {"ids": [str(i) for i in self.ids], "layers": torch.stack([h.cpu() for h in self.layers]),
                "deg": self.deg.cpu()}

    @classmethod
    def from_state(cls, state: Mapping[str, Any], device: torch.device | str = "cpu") -> "FrozenLayers":
        return cls(pd.Index(list(state["ids"]), dtype=object), [h.to(device) for h in state["layers"].unbind(0)],
                   state["deg"].to(device))


@dataclass
class NewNodeEmbeddings:
    """Output of :func:`embed_new_nodes`: final representations of the new items / users, in
    the order of their ids (L2-normalised; items then times the model's calibration factor,
    :meth:`KGRecModel.cold_item_scale`); ``states``: every embedded node type's
    :class:`FrozenLayers` (entities too), to pass to later batches as ``added``; ``report``:
    counts of edges used and of edges that could not be used."""

    item_ids: list[str]
    items: Tensor
    user_ids: list[str]
    users: Tensor
    states: dict[str, FrozenLayers] = field(default_factory=dict)
    report: dict[str, int] = field(default_factory=dict)


@dataclass
class _Messages:
    """Directed messages ``src -> dst`` implied by a batch's triples and interactions, as
    integer codes computed once: node types index :data:`NODE_TYPES` (-1: another type), ids
    are codes into ``vocab`` (every id of the batch, factorised together), ``etype`` is the edge
    type of the message's direction (-1: a relation the model does not know)."""

    dst_type: np.ndarray
    dst: np.ndarray
    src_type: np.ndarray
    src: np.ndarray
    etype: np.ndarray
    vocab: pd.Index

    @classmethod
    def build(cls, triples: pd.DataFrame | None, interactions: pd.DataFrame | None,
              relations: pd.Index, user_item_as_interactions: bool = True) -> "_Messages":
        # edges as (first end, second end): triples (head, tail), interactions (user, item);
        # each carries a message to its second end (forward) and one to its first (reverse)
        firsts, seconds, first_t, second_t, fwd, rev = [], [], [], [], [], []
        if triples is not None and len(triples):
            rel_codes, rel_names = pd.factorize(triples["relation"].astype(str))
            rel = relations.get_indexer(pd.Index(rel_names, dtype=object))[rel_codes]
            firsts.append(triples["head"])
            seconds.append(triples["tail"])
            head_t, tail_t = _type_codes(triples["head_type"]), _type_codes(triples["tail_type"])
            first_t.append(head_t)
            second_t.append(tail_t)
            # a user-item triple is a second behaviour and propagates as an interaction does
            # (kgrec.graph.tensors.with_user_item_triples), whatever its relation
            user, item = NODE_TYPES.index("user"), NODE_TYPES.index("item")
            to_item = (head_t == user) & (tail_t == item) & user_item_as_interactions
            to_user = (head_t == item) & (tail_t == user) & user_item_as_interactions
            fwd.append(np.select([to_item, to_user, rel >= 0],
                                 [USER_TO_ITEM, ITEM_TO_USER, relation_type(0) + 2 * rel], -1))
            rev.append(np.select([to_item, to_user, rel >= 0],
                                 [ITEM_TO_USER, USER_TO_ITEM, relation_type(0, reverse=True) + 2 * rel], -1))
        if interactions is not None and len(interactions):
            n = len(interactions)
            firsts.append(interactions["user_id"])
            seconds.append(interactions["item_id"])
            first_t.append(np.full(n, NODE_TYPES.index("user")))
            second_t.append(np.full(n, NODE_TYPES.index("item")))
            fwd.append(np.full(n, USER_TO_ITEM))
            rev.append(np.full(n, ITEM_TO_USER))
        if not firsts:
            none = np.zeros(0, dtype=np.int64)
            return cls(none, none, none, none, none, pd.Index([], dtype=object))
        ends = firsts + seconds
        codes, vocab = pd.factorize(pd.concat([e.astype(str) for e in ends], ignore_index=True))
        bounds = np.cumsum([0] + [len(e) for e in ends])
        k = len(firsts)
        first_c = [codes[bounds[j]:bounds[j + 1]] for j in range(k)]
        second_c = [codes[bounds[k + j]:bounds[k + j + 1]] for j in range(k)]
        return cls(dst_type=np.concatenate(second_t + first_t), dst=np.concatenate(second_c + first_c),
                   src_type=np.concatenate(first_t + second_t), src=np.concatenate(first_c + second_c),
                   etype=np.concatenate(fwd + rev), vocab=pd.Index(vocab, dtype=object))


def _type_codes(types: pd.Series) -> np.ndarray:
    """Node type names -> positions in :data:`NODE_TYPES` (-1 for anything else)."""
    codes, names = pd.factorize(types.astype(str))
    lookup = np.array([NODE_TYPES.index(t) if t in NODE_TYPES else -1 for t in names], dtype=np.int64)
    return lookup[codes] if len(codes) else np.zeros(0, dtype=np.int64)


class _Neighbours:
    """Where a message's source node lives: blocks of frozen :class:`FrozenLayers`, looked up
    most recent first (this call's new nodes, then earlier batches', then the training graph)."""

    def __init__(self) -> None:
        self.blocks: list[tuple[str, FrozenLayers]] = []

    def add(self, node_type: str, states: FrozenLayers) -> None:
        """Put ``states`` in front of the blocks already there (it shadows them for equal ids)."""
        if len(states):
            self.blocks.insert(0, (node_type, states))

    def gather(self, src_type: np.ndarray, src: np.ndarray, vocab: pd.Index, device: torch.device
               ) -> tuple[np.ndarray, list[Tensor], Tensor]:
        """``(neighbour, layers, deg)``: for each message, its row in ``layers`` / ``deg`` (the
        distinct source nodes' states, gathered), or -1 when the source is unknown."""
        key = np.full(len(src), -1, dtype=np.int64)
        base = 0
        for nt, states in self.blocks:
            open_ = (key < 0) & (src_type == NODE_TYPES.index(nt))
            if open_.any():
                codes = np.unique(src[open_])
                pos = np.full(len(vocab), -1, dtype=np.int64)
                pos[codes] = states.ids.get_indexer(vocab[codes])
                found = pos[src[open_]]
                key[np.flatnonzero(open_)[found >= 0]] = base + found[found >= 0]
            base += len(states)
        uniq, inverse = np.unique(key[key >= 0], return_inverse=True)
        neighbour = np.full(len(src), -1, dtype=np.int64)
        neighbour[key >= 0] = inverse
        take, base = [], 0
        for _, states in self.blocks:
            sel = uniq[(uniq >= base) & (uniq < base + len(states))] - base
            take.append((states, torch.as_tensor(sel, dtype=torch.long, device=states.deg.device)))
            base += len(states)
        num_layers = len(self.blocks[0][1].layers) if self.blocks else 0
        layers = [torch.cat([s.layers[l].index_select(0, t).to(device) for s, t in take]) for l in range(num_layers)]
        deg = torch.cat([s.deg.index_select(0, t).to(device) for s, t in take]) if take else torch.zeros(0, device=device)
        return neighbour, layers, deg


def embed_new_nodes(result: "TrainedModel", items: NewNodeInputs | None = None, users: NewNodeInputs | None = None,
                    entities: NewNodeInputs | None = None, triples: pd.DataFrame | None = None,
                    interactions: pd.DataFrame | None = None, *,
                    added: Mapping[str, FrozenLayers] | None = None) -> NewNodeEmbeddings:
    """Representations of nodes unseen in training, computed inductively: each new node
    starts from its projected text features (no ID embedding) and receives, layer by layer,
    messages from the frozen representations of the nodes it is linked to (by ``triples``:
    ``head_type, head, relation, tail_type, tail``, and ``interactions``: ``user_id,
    item_id``); it sends none, so no existing representation changes.

    Neighbours are the training graph's nodes and ``added`` (per node type, the
    :class:`FrozenLayers` of nodes embedded by earlier calls, which shadow training nodes of the
    same id). New ``entities`` are embedded first, then items, then users, each type becoming
    a neighbour of the next, so a new user's interactions may name new items. Edges to nodes
    of the call's own not-yet-embedded batches (e.g. item -> item inside one batch) are
    skipped and counted as ``edges_within_batch``; edges to unknown nodes or relations are
    skipped and counted in ``report``. One vectorised pass per node type: thousands of nodes
    at once.
    """
    model, idx = result.model, result.index
    _, layers = result.propagated()
    device = layers[0].device
    report = {"edges_used": 0, "edges_unknown_node": 0, "edges_unknown_relation": 0, "edges_within_batch": 0}
    msgs = _Messages.build(triples if result.config.use_kg else None, interactions, idx.relations,
                           result.config.user_item_triples_as_interactions)
    neighbours = _Neighbours()
    deg = result.graph.deg
    for nt in NODE_TYPES:
        off, n = idx.offset(nt), len(idx.ids(nt))
        neighbours.add(nt, FrozenLayers(idx.ids(nt), [h[off:off + n] for h in layers], deg[off:off + n]))
    for nt, states in (added or {}).items():
        neighbours.add(nt, states)

    batches = {"entity": entities, "item": items, "user": users}
    batch_ids = {nt: pd.Index([str(i) for i in b.ids], dtype=object) for nt, b in batches.items() if b is not None}
    # codes of each batch's ids in the message vocabulary (-1: not in the batch)
    in_batch = {nt: ids.get_indexer(msgs.vocab) for nt, ids in batch_ids.items()}
    states_out: dict[str, FrozenLayers] = {}
    final: dict[str, Tensor] = {}
    for nt in EMBED_ORDER:
        b = batches[nt]
        if b is None or len(b.ids) == 0:
            final[nt] = torch.zeros(0, model.dim if nt == "entity" else model.output_dim, device=device)
            continue
        n = len(b.ids)
        t = NODE_TYPES.index(nt)
        sel = np.flatnonzero(msgs.dst_type == t)
        rows = in_batch[nt][msgs.dst[sel]]
        sel, rows = sel[rows >= 0], rows[rows >= 0]
        known_rel = msgs.etype[sel] >= 0
        report["edges_unknown_relation"] += int((~known_rel).sum())
        sel, rows = sel[known_rel], rows[known_rel]
        # sources in a batch of this call not embedded yet (this type's included) send nothing
        pending = np.zeros(len(sel), dtype=bool)
        for ot in EMBED_ORDER[EMBED_ORDER.index(nt):]:
            if ot in in_batch:
                pending |= (msgs.src_type[sel] == NODE_TYPES.index(ot)) & (in_batch[ot][msgs.src[sel]] >= 0)
        report["edges_within_batch"] += int(pending.sum())
        sel, rows = sel[~pending], rows[~pending]
        nbr, nbr_layers, nbr_deg = neighbours.gather(msgs.src_type[sel], msgs.src[sel], msgs.vocab, device)
        ok = nbr >= 0
        report["edges_unknown_node"] += int((~ok).sum())
        report["edges_used"] += int(ok.sum())
        rows_t = torch.as_tensor(rows[ok], dtype=torch.long, device=device)
        nbr_t = torch.as_tensor(nbr[ok], dtype=torch.long, device=device)
        types_t = torch.as_tensor(msgs.etype[sel][ok], dtype=torch.long, device=device)
        x_raw = _checked_features(model, b, nt, n, device)
        x = None if x_raw is None else model.reduce_features(x_raw, nt)
        with torch.no_grad():
            per_layer = model.inductive_layers(nbr_layers or [h[:0] for h in layers], x, nt, n, rows_t, nbr_t,
                                               types_t, nbr_deg.index_select(0, nbr_t))
        states_out[nt] = FrozenLayers(batch_ids[nt], per_layer, torch.bincount(rows_t, minlength=n).float())
        neighbours.add(nt, states_out[nt])
        clicked = None
        if nt == "user":
            click = types_t == ITEM_TO_USER
            clicked = model.clicked_items_mean([h.index_select(0, nbr_t[click]) for h in nbr_layers],
                                               rows_t[click], n) if nbr_layers else None
        final[nt] = model.inductive_output(per_layer, nt, x_raw, clicked)
    return NewNodeEmbeddings(list(batch_ids.get("item", [])), final["item"], list(batch_ids.get("user", [])),
                         final["user"], states_out, report)


def _checked_features(model: Any, batch: NewNodeInputs, node_type: str, n: int, device: torch.device) -> Tensor | None:
    """The batch's raw text features, checked (shape, finite), on ``device``; ``None`` when the
    model reads no text."""
    if not model.use_text:
        return None
    if batch.features is None:
        raise ValueError(f"new {node_type}s need text features: this model uses text (use_text=True)")
    x = torch.as_tensor(batch.features, dtype=torch.float32).to(device)
    if x.shape != (n, model.feature_dim):
        raise ValueError(f"features of the new {node_type}s have shape {tuple(x.shape)}; expected "
                         f"({n}, {model.feature_dim})")
    if not torch.isfinite(x).all():
        row = int((~torch.isfinite(x).all(1)).nonzero()[0])
        raise ValueError(f"features of new {node_type} '{batch.ids[row]}' hold NaN or inf; re-encode its text")
    return x
