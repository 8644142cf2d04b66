"""Inductive embedding of nodes unseen in training (cold start), with a trained model frozen.

A new node starts from its projected text features (no ID embedding) and receives, layer by
layer, messages from the frozen layer representations of the existing nodes it is linked to; it
sends none, so no existing representation changes (see :meth:`kgrec.model.KGRecModel.inductive`).

    new = embed_new_nodes(fit_result, items=NewNodeBatch(ids, features), triples=triples_df)
    new.items    # [n, dim], rows in ids order; score = user embeddings @ new.items.T
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .graph_index import ITEM_TO_USER, USER_TO_ITEM

if TYPE_CHECKING:
    from .training import FitResult

@dataclass
class NewNodeBatch:
    """New nodes of one type for :func:`embed_new_nodes`: their ids and text
    features ``[n, F]`` (rows in ``ids`` order; ``None`` when the model has no text input)."""

    ids: list[str]
    features: np.ndarray | Tensor | None = None


@dataclass
class NewEmbeddings:
    """Output of :func:`embed_new_nodes`: final (L2-normalised) representations of the
    new items / users, in the order of their ids, and counts of edges that could not be used."""

    item_ids: list[str]
    items: Tensor
    user_ids: list[str]
    users: Tensor
    report: dict[str, int] = field(default_factory=dict)


def embed_new_nodes(result: "FitResult", items: NewNodeBatch | None = None, users: NewNodeBatch | None = None,
                    entities: NewNodeBatch | None = None, triples: pd.DataFrame | None = None,
                    interactions: pd.DataFrame | None = None) -> NewEmbeddings:
    """Representations of nodes unseen in training, computed inductively: each new node
    starts from its projected text features (no ID embedding) and receives, layer by layer,
    messages from the frozen representations of the existing nodes it is linked to (by
    ``triples``: ``head_type, head, relation, tail_type, tail``, and ``interactions``:
    ``user_id, item_id``); it sends none, so no existing representation changes.

    New ``entities`` (attribute values never seen) are embedded first, from their text and
    their links to existing nodes, and then pass messages to new items and users; new items
    are embedded before new users, so a new user's interactions may name new items.
    Edges to unknown nodes or unknown relations are skipped and counted in ``report``.
    Works in one batched pass: thousands of nodes at once.
    """
    model, idx = result.model, result.index
    _, layers = result._forward()
    device = layers[0].device
    deg = result.graph.deg
    report: dict[str, int] = {"edges_used": 0, "edges_unknown_node": 0, "edges_unknown_relation": 0}
    triples = triples if triples is not None else pd.DataFrame(columns=["head_type", "head", "relation",
                                                                         "tail_type", "tail"])
    interactions = interactions if interactions is not None else pd.DataFrame(columns=["user_id", "item_id"])
    if not result.config.use_kg:
        triples = triples.iloc[0:0]
    # node lookup: (type, id) -> ("old", homogeneous position) or ("new", type, row)
    new_pos: dict[str, pd.Index] = {}
    batches = {"entity": entities, "item": items, "user": users}
    for nt, b in batches.items():
        if b is not None:
            new_pos[nt] = pd.Index([str(i) for i in b.ids], dtype=object)
    # per-layer representations of new nodes, filled in order entity -> item -> user
    new_layers: dict[str, list[Tensor]] = {}
    new_deg: dict[str, Tensor] = {}
    final: dict[str, Tensor] = {}
    rel_index = idx.relations
    tri = triples.astype({c: str for c in ("head_type", "head", "relation", "tail_type", "tail")}) \
        if len(triples) else triples
    for nt in ("entity", "item", "user"):
        b = batches[nt]
        if b is None or len(b.ids) == 0:
            final[nt] = torch.zeros(0, model.dim, device=device)
            continue
        n = len(b.ids)
        rows, nbr_old, types_old = [], [], []          # messages from existing nodes
        rows_new, nbr_new, types_new, nbr_new_type = [], [], [], []   # from new nodes embedded before
        # knowledge edges where the new node is head or tail
        for end, other, other_type_col, reverse in (("head", "tail", "tail_type", True),
                                                    ("tail", "head", "head_type", False)):
            if len(tri) == 0:
                break
            sel = tri[f"{end}_type"] == nt
            sub = tri[sel]
            if sub.empty:
                continue
            r = new_pos[nt].get_indexer(sub[end])
            sub, r = sub[r >= 0], r[r >= 0]
            if sub.empty:
                continue
            rel = rel_index.get_indexer(sub["relation"])
            report["edges_unknown_relation"] += int((rel < 0).sum())
            ok = rel >= 0
            sub, r, rel = sub[ok], r[ok], rel[ok]
            # the message travels other -> new node: forward when the new node is the tail
            et = 2 + 2 * rel + (1 if reverse else 0)
            for ot in ("user", "item", "entity"):
                m = (sub[other_type_col] == ot).to_numpy()
                if not m.any():
                    continue
                oid = sub[other].to_numpy()[m]
                old = idx.ids(ot).get_indexer(oid)
                is_old = old >= 0
                rows.append(r[m][is_old]); nbr_old.append(old[is_old] + idx.offset(ot)); types_old.append(et[m][is_old])
                rest = ~is_old
                if ot in new_layers and rest.any():
                    nw = new_pos[ot].get_indexer(oid[rest])
                    okn = nw >= 0
                    rows_new.append(r[m][rest][okn]); nbr_new.append(nw[okn]); types_new.append(et[m][rest][okn])
                    nbr_new_type += [ot] * int(okn.sum())
                    report["edges_unknown_node"] += int((~okn).sum())
                elif rest.any() and not (ot in new_pos and ot not in new_layers):
                    report["edges_unknown_node"] += int(rest.sum())
        # interactions
        if nt in ("item", "user") and len(interactions):
            mine, other, ot = ("item_id", "user_id", "user") if nt == "item" else ("user_id", "item_id", "item")
            r = new_pos[nt].get_indexer(interactions[mine].astype(str))
            sub = interactions[r >= 0]
            r = r[r >= 0]
            oid = sub[other].astype(str).to_numpy()
            old = idx.ids(ot).get_indexer(oid)
            et_val = USER_TO_ITEM if nt == "item" else ITEM_TO_USER
            is_old = old >= 0
            rows.append(r[is_old]); nbr_old.append(old[is_old] + idx.offset(ot))
            types_old.append(np.full(int(is_old.sum()), et_val))
            rest = ~is_old
            if ot in new_layers and rest.any():
                nw = new_pos[ot].get_indexer(oid[rest])
                okn = nw >= 0
                rows_new.append(r[rest][okn]); nbr_new.append(nw[okn]); types_new.append(np.full(int(okn.sum()), et_val))
                nbr_new_type += [ot] * int(okn.sum())
                report["edges_unknown_node"] += int((~okn).sum())
            elif rest.any():
                report["edges_unknown_node"] += int(rest.sum())

        def cat(parts: list) -> Tensor:
            return torch.as_tensor(np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64),
                                   dtype=torch.long, device=device)

        r_old, n_old, t_old = cat(rows), cat(nbr_old), cat(types_old)
        r_new, n_new, t_new = cat(rows_new), cat(nbr_new), cat(types_new)
        report["edges_used"] += int(len(r_old) + len(r_new))
        x = None
        if model.use_text:
            if b.features is None:
                raise ValueError(f"new {nt}s need text features: this model uses text (use_text=True)")
            x = torch.as_tensor(np.asarray(b.features) if not isinstance(b.features, Tensor) else b.features,
                                dtype=torch.float32).to(device)
            if x.shape != (n, model.feature_dim):
                raise ValueError(f"features of the new {nt}s have shape {tuple(x.shape)}; expected "
                                 f"({n}, {model.feature_dim})")
            if not torch.isfinite(x).all():
                row = int((~torch.isfinite(x).all(1)).nonzero()[0])
                raise ValueError(f"features of new {nt} '{b.ids[row]}' hold NaN or inf; re-encode its text")
            x = model.reduce_features(x, nt)
        # neighbour layers: existing nodes' frozen layers, then new nodes' (concatenated behind)
        nbr_layers = layers
        nbr_deg = deg
        nbr = n_old
        types = torch.cat([t_old, t_new])
        rows_all = torch.cat([r_old, r_new])
        if len(n_new):
            base = result.graph.num_nodes
            offs, start = {}, base
            for ot in ("entity", "item"):
                if ot in new_layers:
                    offs[ot] = start
                    start += new_layers[ot][0].shape[0]
            nbr_layers = [torch.cat([layers[l]] + [new_layers[ot][l] for ot in offs], 0)
                          for l in range(len(layers))]
            nbr_deg = torch.cat([deg] + [new_deg[ot] for ot in offs])
            shift = torch.as_tensor([offs[t] for t in nbr_new_type], dtype=torch.long, device=device)
            nbr = torch.cat([n_old, n_new + shift])
        with torch.no_grad():
            per_layer = model.inductive_layers(nbr_layers, x, nt, n, rows_all, nbr, types, nbr_deg[nbr])
        new_layers[nt] = per_layer
        new_deg[nt] = torch.bincount(rows_all, minlength=n).float()
        final[nt] = model.combine(per_layer)
    return NewEmbeddings(list(new_pos.get("item", [])), final["item"], list(new_pos.get("user", [])),
                         final["user"], report)
