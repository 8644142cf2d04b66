"""The trained model: :class:`TrainedModel`, what :func:`kgrec.train.fit` returns.

It holds the model, the graph it propagates over and the ids of its nodes; it gives the final
user and item vectors that ranking multiplies, and it saves to and loads from plain tensors
(:meth:`TrainedModel.state`, :meth:`TrainedModel.from_state`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..errors import ModelError
from ..graph.tensors import GraphIndex, GraphTensors
from ..knowledge_graph import KnowledgeGraph
from ..nn.model import KGRecModel
from ..settings import resolve_device
from .config import TrainConfig
from .setup import training_graph

STATE_VERSION = 3  # 3: users and items hear their knowledge edges in the first layer only (kgrec.nn.model):
                   # the weights of a version-2 model would score differently under it


class TrainedModel:
    """A trained model with everything needed to rank and to embed new nodes.

    Attributes: ``model`` (:class:`KGRecModel`), ``index`` (:class:`GraphIndex`; also
    ``user_ids``, ``item_ids``, ``entity_ids`` as ``pandas.Index``), ``graph``
    (:class:`GraphTensors` it propagates over), ``config`` (:class:`TrainConfig`), ``history``
    (one dict per epoch: ``epoch``, ``loss``, ``seconds`` and the validation metric when
    evaluated), ``best_epoch``, ``stopped_early``, ``device``.
    """

    def __init__(self, model: KGRecModel, index: GraphIndex, graph: GraphTensors, config: TrainConfig,
                 history: list[dict] | None = None, device: torch.device | str = "cpu") -> None:
        self.model = model
        self.index = index
        self.graph = graph
        self.config = config
        self.history = history or []
        self.device = torch.device(device)
        self.best_epoch: int | None = None
        self.stopped_early = False
        self._cache: tuple[Tensor, list[Tensor], tuple[Tensor, Tensor]] | None = None  # z, layers, scoring

    # ------------------------------------------------------------------ ids
    @property
    def user_ids(self) -> pd.Index:
        return self.index.user_ids

    @property
    def item_ids(self) -> pd.Index:
        return self.index.item_ids

    @property
    def entity_ids(self) -> pd.Index:
        return self.index.entity_ids

    # ------------------------------------------------------------------ inference
    def _computed(self) -> tuple[Tensor, list[Tensor], tuple[Tensor, Tensor]]:
        """``(z, layers, final_embeddings())`` of the model over ``graph``, until :meth:`invalidate`."""
        if self._cache is None:
            self.model.eval()
            with torch.no_grad():
                z, layers = self.model(self.graph)
                U, I = self.index.num_users, self.index.num_items
                self._cache = (z, layers, (self.model.user_output(z[:U]), self.model.item_output(z[U:U + I])))
        return self._cache

    def propagated(self) -> tuple[Tensor, list[Tensor]]:
        """``(z, layers)``: the final representations ``[N, dim]`` of every node and the
        per-layer ones (what new nodes hear from, :mod:`kgrec.cold_start.placement`), in eval
        mode over ``graph``. Cached until :meth:`invalidate`."""
        z, layers, _ = self._computed()
        return z, layers

    def invalidate(self) -> None:
        """Drop the cached embeddings (after changing ``model`` or ``graph`` by hand)."""
        self._cache = None

    def final_embeddings(self) -> tuple[Tensor, Tensor]:
        """``(users [U, d], items [I, d])``: scoring vectors in position order (``user_ids`` /
        ``item_ids``), the L2-normalised final representations, with the item bias appended
        (``d = dim + 1``, see :meth:`KGRecModel.item_output`) unless ``item_bias`` is off; the
        score is their dot product. Cached."""
        return self._computed()[2]

    def entity_embeddings(self) -> Tensor:
        z, _ = self.propagated()
        return z[self.index.num_users + self.index.num_items:]

    def score(self, user_positions: Tensor) -> Tensor:
        """Scores ``[b, I]`` of users (positions) for every item: the scorer
        :func:`kgrec.evaluation.evaluate` takes."""
        users, items = self.final_embeddings()
        return users[user_positions.to(users.device)] @ items.T

    def set_graph(self, kg: KnowledgeGraph, features: dict[str, np.ndarray] | None = None) -> "TrainedModel":
        """Propagate over ``kg``'s interactions from now on (e.g. training + validation
        interactions once training is done). ``kg`` must have the same users, items, entities
        and relations as the training graph. Returns ``self``."""
        features = features if features is not None else kg.features
        index, graph = training_graph(kg, features, self.config, self.device)
        if self.model.use_text:
            graph.x = self.model.reduce_all(graph.x).detach()
        for name in ("user_ids", "item_ids", "entity_ids", "relations"):
            if not getattr(index, name).equals(getattr(self.index, name)):
                raise ModelError(f"set_graph: the graph's {name} differ from the training graph's. Fix: pass a "
                                 "graph with the same nodes (e.g. train.with_interactions(...)), or add new "
                                 "nodes with kgrec.cold_start.placement.embed_new_nodes")
        self.graph = graph.to(self.device)
        self._cache = None
        return self

    # ------------------------------------------------------------------ save / load
    def state(self) -> dict[str, Any]:
        """Everything needed to rebuild this trained model, as plain tensors, numbers, strings and
        lists (``torch.load(..., weights_only=True)`` reads it)."""
        g = self.graph
        return {
            "version": STATE_VERSION,
            "config": self.config.to_dict(),
            "index": self.index.to_dict(),
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "model_args": self._model_args(),
            "graph": {"x": None if g.x is None else g.x.cpu(), "inter_user": g.inter_user.cpu(),
                      "inter_item": g.inter_item.cpu(), "edge_index": g.edge_index.cpu(),
                      "edge_type": g.edge_type.cpu(), "edge_norm": g.edge_norm.cpu(), "deg": g.deg.cpu()},
            "history": [dict(h) for h in self.history],
            "best_epoch": self.best_epoch,
        }

    def _model_args(self) -> dict[str, Any]:
        m = self.model
        return {"num_users": m.num_users, "num_items": m.num_items, "num_entities": m.num_entities,
                "num_edge_types": m.num_edge_types, "feature_dim": m.feature_dim, "dim": m.dim,
                "num_layers": m.num_layers, "use_text": m.use_text, "use_id": m.use_id, "use_kg": m.use_kg,
                "id_dropout": m.id_dropout, "text_rank": m.text_rank or None,
                "item_bias": m.item_bias is not None, "temperature": m.temperature}

    @classmethod
    def from_state(cls, state: dict[str, Any], device: str | torch.device = "auto") -> "TrainedModel":
        """Inverse of :meth:`state`."""
        if state.get("version") != STATE_VERSION:
            raise ModelError(f"model state version {state.get('version')} is not supported (this kgrec reads "
                             f"{STATE_VERSION}; a model of another version computes its embeddings differently). "
                             "Fix: retrain with this kgrec version")
        device = resolve_device(device)
        config = TrainConfig.from_dict(state["config"])
        index = GraphIndex.from_dict(state["index"])
        a = state["model_args"]
        model = KGRecModel(**a)
        weights = dict(state["model"])
        for name, value in model.state_dict().items():
            if name in ("cold_item_log_scale", "cold_item_map", "cold_item_bias"):  # saved before they existed
                weights.setdefault(name, torch.zeros_like(value))
        model.load_state_dict(weights)
        gd = state["graph"]
        graph = GraphTensors(index.num_users, index.num_items, index.num_entities, index.num_edge_types,
                             gd["x"], gd["inter_user"], gd["inter_item"], gd["edge_index"], gd["edge_type"],
                             gd["edge_norm"], gd["deg"])
        res = cls(model.to(device), index, graph.to(device), config, state.get("history", []), device)
        res.best_epoch = state.get("best_epoch")
        return res
