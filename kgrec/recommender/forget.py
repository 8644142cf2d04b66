"""Erasing users from a fitted Recommender and from its model directory.

The trained model propagates over a graph held as tensors (:class:`kgrec.graph.tensors.
GraphTensors`): users at positions ``[0, U)``, then items and entities. Forgetting users removes
their positions everywhere (text features, ID embeddings, training pairs, propagation edges), shifts
the positions after them down, and normalises the remaining edges again by the degrees without
them, exactly as :func:`kgrec.graph.tensors.build_graph` would for the graph without them. The
trained weights stay: they keep the forgotten users' past influence until the next training
(``docs/privacy.md``).
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..errors import UnknownUserWarning
from ..graph.tensors import GraphIndex, GraphTensors
from ..privacy import without_users
from ..train import TrainedModel

if TYPE_CHECKING:
    from .estimator import Recommender


def trained_without(trained: TrainedModel, users: Sequence[str]) -> TrainedModel:
    """A copy of ``trained`` without ``users`` (ids of trained users): their rows of the text
    features and ID embeddings, their training pairs and propagation edges removed; every
    remaining edge's norm recomputed as :math:`1/\\sqrt{\\deg(s)\\deg(t)}` over the remaining
    edges. ``trained`` itself does not change."""
    idx, g = trained.index, trained.graph
    U = idx.num_users
    drop = torch.as_tensor(idx.user_ids.get_indexer(list(users)), dtype=torch.long)
    keep = torch.ones(idx.num_nodes, dtype=torch.bool)
    keep[drop] = False
    new_pos = torch.cumsum(keep.long(), 0) - 1  # old homogeneous position -> new one (kept nodes)
    dev = g.edge_index.device
    keep_d, new_d = keep.to(dev), new_pos.to(dev)
    pairs = keep_d[g.inter_user]
    edges = keep_d[g.edge_index[0]] & keep_d[g.edge_index[1]]
    edge_index = new_d[g.edge_index[:, edges]]
    num_users = U - len(drop)
    num_nodes = idx.num_nodes - len(drop)
    deg = torch.bincount(edge_index[1], minlength=num_nodes).float()
    inv = deg.clamp(min=1).rsqrt()
    graph = GraphTensors(num_users, g.num_items, g.num_entities, g.num_edge_types,
                         None if g.x is None else g.x[keep_d], new_d[g.inter_user[pairs]], g.inter_item[pairs],
                         edge_index, g.edge_type[edges], inv[edge_index[0]] * inv[edge_index[1]], deg,
                         inter_weight=None if g.inter_weight is None else g.inter_weight[pairs])
    model = copy.deepcopy(trained.model)
    if model.use_id:
        weight = model.id_embedding.weight.detach()[keep.to(model.id_embedding.weight.device)]
        model.id_embedding = nn.Embedding.from_pretrained(weight.clone(), freeze=False)
    model.num_users = num_users
    index = GraphIndex(idx.user_ids[keep[:U].numpy()], idx.item_ids, idx.entity_ids, idx.relations)
    out = TrainedModel(model, index, graph.to(trained.device).prepare(), trained.config, trained.history,
                       trained.device)
    out.best_epoch, out.stopped_early = trained.best_epoch, trained.stopped_early
    return out


def forget_users(rec: "Recommender", ids: Sequence[Any]) -> list[str]:
    """Remove ``ids`` from ``rec`` (see :meth:`kgrec.Recommender.forget_users`): trained users
    from the trained model (:func:`trained_without`), added users from the nodes added after
    training, both from the graph, the text features and the remembered hold-out. Ids ``rec``
    does not know are skipped with a :class:`kgrec.errors.UnknownUserWarning`. Everything is
    computed before ``rec`` changes. Returns the ids removed."""
    rec._check_fitted()
    wanted = list(dict.fromkeys(str(i) for i in ids))
    known = set(rec.user_index_.tolist())
    gone = [u for u in wanted if u in known]
    missing = [u for u in wanted if u not in known]
    if missing:
        warnings.warn(UnknownUserWarning(f"{len(missing)} user id(s) to forget are not in the model, skipped: "
                                         f"{missing[:5]}"), stacklevel=3)
    if not gone:
        return []
    trained_ids = set(rec.trained_.user_ids.tolist())
    in_training = [u for u in gone if u in trained_ids]
    trained = trained_without(rec.trained_, in_training) if in_training else rec.trained_
    graph = without_users(rec.graph_, gone)
    added_ids, added_emb = rec._added["user"]
    keep = ~added_ids.isin(gone)
    added = {**rec._added, "user": (added_ids[keep], added_emb[torch.as_tensor(np.flatnonzero(keep), dtype=torch.long)])}
    layers = dict(rec._added_layers)
    frozen = layers["user"]
    rows = torch.as_tensor(np.flatnonzero(~frozen.ids.isin(gone)), dtype=torch.long, device=frozen.deg.device)
    layers["user"] = type(frozen)(frozen.ids[rows.cpu().numpy()], [h.index_select(0, rows) for h in frozen.layers],
                                  frozen.deg.index_select(0, rows))
    holdout = rec.holdout_
    if holdout is not None and "user_id" in holdout:
        holdout = holdout[~holdout["user_id"].astype(str).isin(gone)].reset_index(drop=True)
    rec.trained_, rec.graph_, rec.holdout_, rec._added, rec._added_layers = trained, graph, holdout, added, layers
    rec._refresh()
    return gone


def read_user_ids(source: str | os.PathLike | pd.DataFrame) -> list[str]:
    """The ``user_id`` column of a table (CSV/TSV/Parquet path or DataFrame, read by
    :func:`kgrec.tables.read_table`), empty cells left out."""
    from ..tables import read_table

    df, _ = read_table(source, required=["user_id"])
    return [str(u).strip() for u in df["user_id"].dropna().tolist() if str(u).strip()]


def forget_in_model_dir(path: str | os.PathLike, ids: Sequence[Any]) -> tuple[Path, list[str]]:
    """Load the model directory at ``path``, forget ``ids`` and save it over itself (the save
    writes a new directory and swaps it in: an error leaves the old one whole). Returns the
    directory and the ids removed."""
    from .estimator import Recommender

    rec = Recommender.load(path, device="cpu", progress=False)
    gone = forget_users(rec, ids)
    return (rec.save(path) if gone else Path(path)), gone
