"""What a Recommender's model directory holds, and the Recommender read back from it.

The directory's format (``config.json``, ``weights.pt``, ``tables/``) and its atomic write are
:mod:`kgrec.recommender.model_dir`'s. Here: the parameters, the trained model's state
(:meth:`kgrec.train.TrainedModel.state`), the graph tables with their text features, the
nodes added after training and the remembered hold-out.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from ..errors import ModelError
from ..knowledge_graph import (ENTITY_COLUMNS, INTERACTION_COLUMNS, ITEM_COLUMNS, TRIPLE_COLUMNS, USER_COLUMNS,
                               KnowledgeGraph, typed_frame)
from ..settings import resolve_device
from ..train import TrainedModel
from .model_dir import WEIGHTS, load_model_dir, save_model_dir

GRAPH_TABLES = ("users", "items", "entities", "interactions", "triples")
LOAD_TIME_PARAMS = ("device", "progress")  # chosen when loading, not saved


@dataclass
class SavedRecommender:
    """The contents of a model directory: ``params`` (the Recommender's constructor arguments
    but ``device`` and ``progress``), ``trained`` (the model), ``graph`` (with its text
    features), ``early_stopping`` (``Recommender.early_stopping_``), ``holdout`` (a remembered
    test table or ``None``), ``added`` (tensors of the nodes added after training; see
    ``Recommender.added_state``) and ``counts`` (users and items, for a consistency check)."""

    params: dict[str, Any]
    trained: TrainedModel
    graph: KnowledgeGraph
    early_stopping: dict[str, Any] | None = None
    holdout: pd.DataFrame | None = None
    added: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def save_recommender(path: str | os.PathLike, saved: SavedRecommender) -> Path:
    """Write ``saved`` as a model directory at ``path`` (atomically)."""
    g = saved.graph
    tensors: dict[str, Any] = {"fit": saved.trained.state(), **saved.added}
    for nt, arr in (g.features or {}).items():
        tensors[f"features_{nt}"] = torch.as_tensor(np.asarray(arr, dtype=np.float32))
    params = {k: v for k, v in saved.params.items() if k not in LOAD_TIME_PARAMS}
    config = {"params": params, "early_stopping": saved.early_stopping, "graph_name": g.name, "report": g.report,
              "text_recipe": g.text_recipe, "counts": saved.counts}
    tables = {name: getattr(g, name) for name in GRAPH_TABLES}
    if saved.holdout is not None:
        tables["holdout"] = saved.holdout.astype(str)
    return save_model_dir(path, config, tensors, tables)


def load_recommender(path: str | os.PathLike, device: str = "auto") -> SavedRecommender:
    """Read a model directory written by :func:`save_recommender` (or by an earlier kgrec, whose
    ``config.json`` kept the training settings as ``train_options``); a missing, corrupt or
    incomplete one raises :class:`kgrec.errors.ModelError` that says so."""
    config, tensors, tables = load_model_dir(path)
    if not set(GRAPH_TABLES) <= set(tables) or "fit" not in tensors:
        raise ModelError(f"{path}: incomplete model directory (tables {sorted(tables)}). Fix: train and save again")
    params = config.get("params")
    if params is None:  # written before the parameters were saved as one dict
        params = {"text_model": config.get("text_model"), "valid_fraction": config.get("valid_fraction", 0.1),
                  "refit": config.get("refit", False), **config.get("train_options", {})}
        params = {k: v for k, v in params.items() if v is not None}
    try:
        trained = TrainedModel.from_state(tensors["fit"], device=resolve_device(device))
    except ModelError as exc:
        raise ModelError(f"{Path(path) / WEIGHTS}: {exc}") from None
    features = {nt: tensors[f"features_{nt}"].numpy() for nt in ("user", "item", "entity")
                if f"features_{nt}" in tensors} or None
    columns = {"users": USER_COLUMNS, "items": ITEM_COLUMNS, "entities": ENTITY_COLUMNS,
               "interactions": INTERACTION_COLUMNS, "triples": TRIPLE_COLUMNS}
    graph = KnowledgeGraph(**{name: typed_frame(tables[name], columns[name], name) for name in GRAPH_TABLES},
                           name=config.get("graph_name", ""), report=config.get("report", {}), features=features,
                           text_recipe=config.get("text_recipe", {}))
    added = {k: v for k, v in tensors.items() if k.startswith(("extra_", "added_"))}
    return SavedRecommender(params, trained, graph, config.get("early_stopping"), tables.get("holdout"), added,
                            config.get("counts", {}))
