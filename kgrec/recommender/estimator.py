"""``kgrec.Recommender``: the estimator users call, with its hyper-parameters and ``fit``.

scikit-learn style: hyper-parameters are keyword arguments of ``__init__`` (``get_params`` /
``set_params``, so ``sklearn.base.clone`` works), ``fit`` returns ``self``, learned state ends
in ``_``.

    rec = Recommender().fit(train_kg)
    rec.recommend(users=["1"], k=20)            # user_id, item_id, score, rank (caller's ids)
    rec.evaluate(test_kg, k=(10, 20))
    rec.add_items(items=new_items, triples=new_triples)   # cold start, no retraining
    rec.save("model_dir"); Recommender.load("model_dir")
    rec.publish(store); rec.explain(user, item)

Scores are dot products of the GNN's final user and item vectors, so ranking all items for a
user is one matrix product. Adding nodes lives in :mod:`kgrec.recommender.add_nodes`,
explanations in :mod:`kgrec.recommender.explanations`, writing to a store in
:mod:`kgrec.recommender.publish` and model directories in :mod:`kgrec.recommender.persistence`.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import fields, replace
from pathlib import Path
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import torch

from ..cold_start.placement import FrozenLayers
from ..errors import ModelError
from ..knowledge_graph import KnowledgeGraph
from ..settings import resolve_device
from ..text_features import DEFAULT_TEXT_MODEL, TextEncoder, encode_graph
from ..train import TrainConfig, TrainedModel, fit as fit_model
from ..train.distributed import is_main, main_first
from ..train.loop import VALID_METRIC
from .add_nodes import AddNodesMixin
from .base import RecommenderBase
from .explanations import ExplanationsMixin

if TYPE_CHECKING:
    from ..privacy import KeySource

_D = TrainConfig()  # the training defaults, which the keyword arguments below repeat by reference


class Recommender(AddNodesMixin, ExplanationsMixin, RecommenderBase):
    """Knowledge-graph GNN recommender over LM text features.

    How it runs:
        device: ``"auto"`` trains and ranks on CUDA when present, else the CPU.
        text_model: any Hugging Face model id or local path (default: the packaged
            all-MiniLM-L6-v2, which loads offline).
        progress: progress bars on long work.
        valid_fraction, refit: how :meth:`fit` stops (see there): early stopping on a
            ``valid_fraction`` per-user hold-out of the training pairs, then with ``refit`` a
            second training on all of them for the best number of epochs found.

    The model (see :mod:`kgrec.nn.model` for the math):
        dim: embedding size. layers: propagation layers.
        use_text, use_kg, use_id: the three signals (LM text features, knowledge edges, ID
            embeddings); switch one off for an ablation.
        item_bias: a learned bias per item in the score (a popularity prior).
        user_item_triples: knowledge triples between a user and an item (a second behaviour:
            tagged, viewed) train and propagate as interactions (``"interactions"``; they are
            never excluded from recommendations), or stay knowledge edges (``"knowledge"``).

    Training (:mod:`kgrec.train`):
        epochs: passes over the training pairs (an upper bound with early stopping).
        lr: Adam's learning rate.
        batch_size: training pairs per step. ``None``: in full-graph training the training
            pairs over ``max_steps_per_epoch`` (at least 256), so that every epoch takes the same
            number of whole-graph propagations; in subgraph training 4,096
            (:meth:`kgrec.train.TrainConfig.step_batch`).
        max_steps_per_epoch: an epoch takes at most this many steps; on larger data the batch
            grows past ``batch_size`` so that an epoch's time grows linearly with the data
            (``None``: always ``batch_size``).
        training_mode: ``"full_graph"`` (every step propagates the whole graph), ``"subgraph"``
            (a step propagates over its batch's neighbourhood, sampled with ``fanout``
            neighbours per node and layer: memory bounded by the batch, for graphs beyond the
            device's memory; :mod:`kgrec.train.subgraph`) or ``"auto"`` (full graph while its
            estimated memory fits half the device's free memory).
        rows_per_user: a step takes its users' pairs in runs of up to this many (fewer users
            per step, fewer softmax normalisers; 1 gives random pairs).
        num_negatives: items sampled per step as the softmax's negatives.
        temperature: scores are cosines divided by it; ``None`` follows the catalogue,
            :math:`1.5 / \\ln(\\text{items})` (:meth:`kgrec.train.TrainConfig.softmax_temperature`).
        id_dropout: probability of dropping a node's ID embedding in a step (trains the model
            to rank from text and edges too).
        interaction_weight: ``"none"`` (every training pair weighs the same) or ``"rating"``
            (each pair weighs the loss by its rating, else its weight column: ratings as
            confidence). Which interactions count at all is the data's choice:
            ``from_tables(min_rating=...)`` / ``KnowledgeGraph.with_min_rating`` drop low ones.
        ema_epochs: validate and keep the exponential moving average of the weights over about
            this many epochs (0 keeps the raw weights).
        patience: epochs without a better validation Recall@20 before stopping.
        seed: every random draw of training. checkpoint_dir: ``best.pt`` / ``last_good.pt``
            written there when set.

    Cold start (:mod:`kgrec.train.cold_views`, :mod:`kgrec.cold_start`):
        cold_item_weight, cold_user_weight: weights of the cold-item and cold-user views,
            which train the inductive path that places new items and users (0 switches a
            view off).
        cold_views: ``"during"`` trains them in every ``cold_view_every``-th warm step and
            in the inductive epochs after; ``"after"`` only in those epochs.
        inductive_epochs, inductive_lr: the epochs after warm training that train only the
            inductive path, and their learning rate (``None``: 10 epochs at ``lr`` with
            ``"during"``, 20 at ``10 x lr`` with ``"after"``; 0 epochs switches them off).

    What the defaults were chosen on, and their measured effects: ``docs/results.md``.
    """

    def __init__(self, *, device: str = "auto", text_model: str = DEFAULT_TEXT_MODEL, progress: bool = True,
                 valid_fraction: float = 0.1, refit: bool = True,
                 dim: int = _D.dim, layers: int = _D.layers, use_text: bool = _D.use_text, use_kg: bool = _D.use_kg,
                 use_id: bool = _D.use_id, item_bias: bool = _D.item_bias,
                 user_item_triples: Literal["interactions", "knowledge"] = _D.user_item_triples,
                 epochs: int = _D.epochs, lr: float = _D.lr, batch_size: int | None = _D.batch_size,
                 max_steps_per_epoch: int | None = _D.max_steps_per_epoch,
                 training_mode: Literal["auto", "full_graph", "subgraph"] = _D.training_mode,
                 fanout: int = _D.fanout, rows_per_user: int = _D.rows_per_user, num_negatives: int = _D.num_negatives,
                 temperature: float | None = _D.temperature, id_dropout: float = _D.id_dropout,
                 interaction_weight: Literal["none", "rating"] = _D.interaction_weight,
                 ema_epochs: float = _D.ema_epochs, patience: int = _D.patience, seed: int = _D.seed,
                 checkpoint_dir: str | None = _D.checkpoint_dir,
                 cold_item_weight: float = _D.cold_item_weight, cold_user_weight: float = _D.cold_user_weight,
                 cold_views: Literal["during", "after"] = _D.cold_views, cold_view_every: int = _D.cold_view_every,
                 inductive_epochs: int | None = _D.inductive_epochs, inductive_lr: float | None = _D.inductive_lr):
        self.device = device
        self.text_model = text_model
        self.progress = progress
        self.valid_fraction = valid_fraction
        self.refit = refit
        self.dim = dim
        self.layers = layers
        self.use_text = use_text
        self.use_kg = use_kg
        self.use_id = use_id
        self.item_bias = item_bias
        self.user_item_triples = user_item_triples
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.max_steps_per_epoch = max_steps_per_epoch
        self.training_mode = training_mode
        self.fanout = fanout
        self.rows_per_user = rows_per_user
        self.num_negatives = num_negatives
        self.temperature = temperature
        self.id_dropout = id_dropout
        self.interaction_weight = interaction_weight
        self.ema_epochs = ema_epochs
        self.patience = patience
        self.seed = seed
        self.checkpoint_dir = checkpoint_dir
        self.cold_item_weight = cold_item_weight
        self.cold_user_weight = cold_user_weight
        self.cold_views = cold_views
        self.cold_view_every = cold_view_every
        self.inductive_epochs = inductive_epochs
        self.inductive_lr = inductive_lr

    def train_config(self) -> TrainConfig:
        """The :class:`kgrec.train.TrainConfig` of this recommender's training parameters."""
        return TrainConfig(**{f.name: getattr(self, f.name) for f in fields(TrainConfig)})

    # ------------------------------------------------------------------ training
    def fit(self, train: KnowledgeGraph, valid: KnowledgeGraph | None = None) -> "Recommender":
        """Encode node texts, train the GNN on ``train``'s interactions and cache the final
        embeddings.

        How training stops:

        - ``valid`` given: early stopping on its Recall@20 (``patience`` epochs without
          improvement), keeping the best epoch's weights.
        - otherwise, with ``valid_fraction > 0`` (and at least 50 interactions): early stopping
          on a ``valid_fraction`` per-user hold-out of ``train``; then, with ``refit`` (default),
          a second training from the start on *all* of ``train`` for that run's best number of
          epochs, which is the model kept (the baselines of :mod:`kgrec.baselines` refit the same
          way). Without ``refit``, the early-stopped model is kept and ranks with every
          interaction of ``train`` (the hold-out is folded back into the graph it propagates
          over, not trained on).
        - ``valid_fraction=0``: exactly ``epochs`` epochs on all of ``train``.

        ``early_stopping_`` keeps the early-stopped run's ``best_epoch``, its best validation
        value, ``stopped_early``, per-epoch ``history``, wall ``seconds`` and whether a ``refit``
        followed (``None`` without validation; saved with the model); ``trained_.history`` is the
        kept model's. With a ``checkpoint_dir``, the refit writes its ``last_good.pt`` over the
        early-stopped run's; ``best.pt`` stays that run's.

        Inside a ``torch.distributed`` job (``torchrun``) every rank calls ``fit`` alike: training is
        data-parallel (:func:`kgrec.train.fit`), rank 0 encodes the texts first (the others then
        read its cache) and every rank ends with the same model."""
        if not isinstance(train, KnowledgeGraph):
            raise TypeError("fit() takes a KnowledgeGraph; build one with kgrec.from_tables(...) or a loader")
        config = self.train_config()
        config.validate()
        with main_first():  # one rank fills the text-embedding cache, the others read it
            features = self._features(train)
        fit_graph, valid_graph = train, valid
        if valid_graph is None and self.valid_fraction > 0 and len(train.interactions) >= 50:
            fit_graph, valid_graph = train.split("random", test=self.valid_fraction, seed=config.seed)
        device = resolve_device(self.device)
        started = time.perf_counter()
        trained = fit_model(fit_graph, features, config, valid_kg=valid_graph, device=device, progress=self.progress)
        self.early_stopping_: dict[str, Any] | None = None
        refit = self.refit and fit_graph is not train
        if valid_graph is not None:
            history = trained.history
            self.early_stopping_ = {
                "metric": VALID_METRIC, "best_epoch": trained.best_epoch,
                "best": max((h[VALID_METRIC] for h in history if VALID_METRIC in h), default=None),
                "stopped_early": trained.stopped_early, "history": history,
                "seconds": time.perf_counter() - started, "refit": refit}
        if fit_graph is not train:
            if refit:
                epochs = max(1, trained.best_epoch or len(trained.history))
                if self.progress and is_main():
                    stop = self.early_stopping_ or {}
                    how = "stopped early" if trained.stopped_early else "ran all its epochs"
                    print(f"kgrec fit: validation {how} ({len(trained.history)} epochs); best {VALID_METRIC} "
                          f"{stop.get('best') or float('nan'):.4f} at epoch {epochs}. Training again on all of train "
                          f"for {epochs} epochs (refit=False keeps the early-stopped model).", file=sys.stderr,
                          flush=True)
                trained = fit_model(train, features, replace(config, epochs=epochs), valid_kg=None, device=device,
                                    progress=self.progress)
            else:  # rank with every training interaction, not only the fitted part
                trained.set_graph(train, features)
        graph = train.with_interactions(train.interactions)
        graph.features = features
        self._set_trained(trained, graph)
        return self

    def _set_trained(self, trained: TrainedModel, graph: KnowledgeGraph, holdout: pd.DataFrame | None = None) -> None:
        """Take ``trained`` and its ``graph`` as the fitted state, with no nodes added yet."""
        self.trained_ = trained
        self.graph_ = graph
        self.holdout_ = holdout
        width = trained.model.output_dim
        self._added = {"item": (pd.Index([], dtype=object), torch.zeros(0, width)),
                       "user": (pd.Index([], dtype=object), torch.zeros(0, width))}
        self._added_layers = self._no_added_layers()
        self.added_items_: list[str] = []
        self.added_users_: list[str] = []
        self._refresh()

    def _no_added_layers(self) -> dict[str, FrozenLayers]:
        """Empty frozen layers of added users, items and entities (see :meth:`_add`)."""
        m = self.trained_.model
        return {nt: FrozenLayers.empty(m.num_layers, m.dim, self.trained_.device) for nt in ("user", "item", "entity")}

    def _features(self, kg: KnowledgeGraph) -> dict[str, np.ndarray]:
        if kg.features is not None and all(t in kg.features for t in ("user", "item", "entity")):
            return kg.features
        return encode_graph(kg, self._encoder())

    def _encoder(self) -> TextEncoder:
        if self.__dict__.get("_text_encoder") is None:
            self._text_encoder = TextEncoder(self.text_model, device=self.device, progress=self.progress)
        return self._text_encoder

    def _refresh(self) -> None:
        """Cache final embeddings and id indexes after fit / load / adding nodes."""
        users, items = self.trained_.final_embeddings()
        users, items = users.detach().float().cpu(), items.detach().float().cpu()
        user_index = pd.Index(self.trained_.user_ids.astype(str), dtype=object)
        item_index = pd.Index(self.trained_.item_ids.astype(str), dtype=object)
        # nodes added after training (cold start): replace rows of updated ids, append new ones
        for nt in ("user", "item"):
            ids, emb = self._added[nt]
            if len(ids) == 0:
                continue
            index, base = (user_index, users) if nt == "user" else (item_index, items)
            pos = index.get_indexer(ids)
            old = pos >= 0
            base = base.clone()
            base[torch.as_tensor(pos[old], dtype=torch.long)] = emb[torch.as_tensor(np.flatnonzero(old))]
            base = torch.cat([base, emb[torch.as_tensor(np.flatnonzero(~old), dtype=torch.long)]])
            index = index.append(pd.Index(ids[~old], dtype=object))
            if nt == "user":
                user_index, users = index, base
            else:
                item_index, items = index, base
        self.user_emb_, self.item_emb_ = users, items
        self._item_emb_t = items.T.contiguous()
        self._ranking_emb: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self._set_index(user_index, item_index, self.graph_)
        self._item_names: dict[str, Any] | None = None  # built by item_names() on first use
        self._drop_explanation_caches()

    # ------------------------------------------------------------------ scoring
    def scorer(self, user_positions: torch.Tensor) -> torch.Tensor:
        return self.user_emb_[user_positions] @ self.item_emb_.T

    def _ranking_embeddings(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(user_emb_, item_emb_, item_emb_.T)`` where all-user ranking (``recommend``,
        ``evaluate``, ``publish``) runs: on the model's device when that is CUDA (copied there
        once), else these CPU tensors themselves."""
        if self._ranking_emb is None:
            device = self.trained_.device
            if device.type == "cuda":
                self._ranking_emb = (self.user_emb_.to(device), self.item_emb_.to(device), self._item_emb_t.to(device))
            else:
                self._ranking_emb = (self.user_emb_, self.item_emb_, self._item_emb_t)
        return self._ranking_emb

    def _block_scorer(self, candidates: torch.Tensor | None):
        users, items, items_t = self._ranking_embeddings()
        pool_t = items_t if candidates is None else items[candidates.to(items.device)].T.contiguous()
        return lambda u: users[u.to(users.device)] @ pool_t

    def _ranking_scorer(self):
        users, _, items_t = self._ranking_embeddings()
        return lambda u: users[u.to(users.device)] @ items_t

    def _pair_scores(self, upos: torch.Tensor, ipos: torch.Tensor) -> torch.Tensor:
        return (self.user_emb_[upos] * self.item_emb_[ipos]).sum(1)

    def item_names(self, items: list[Any]) -> list[str]:
        """Display names (title / artist) of items, falling back to the id (unknown ids and
        items without a name)."""
        self._check_fitted()
        if self._item_names is None:
            table = self.graph_.items
            self._item_names = dict(zip(table["item_id"].tolist(), table["name"].tolist()))
        names = self._item_names
        out = []
        for i in items:
            name = names.get(str(i))
            out.append(str(i) if name is None or pd.isna(name) else str(name))
        return out

    # ------------------------------------------------------------------ publishing and persistence
    def publish(self, store: Any, k: int = 20, model_id: str = "kgrec", explanations: int = 3,
                explain_top: int = 3, batch_size: int = 2048, pseudonymize: "KeySource | None" = None,
                keep_user_text: bool = False, keep_demographics: bool = False,
                keep_timestamps: bool = False) -> dict[str, int]:
        """Write the graph with its LM features, every user's top-``k`` as ``RECOMMENDED`` edges
        (this model's old ones replaced), and the top ``explanations`` paths of each user's
        first ``explain_top`` recommendations as ``EXPLAINS`` edges; see
        :func:`kgrec.recommender.publish.publish`. ``pseudonymize=KEYFILE`` publishes user ids as
        keyed pseudonyms without user text, demographics or timestamps (``docs/privacy.md``).
        Returns counts. In a ``torch.distributed`` job only rank 0 writes; the other ranks
        return ``{}``."""
        from .publish import publish

        if not is_main():
            return {}
        return publish(self, store, k=k, model_id=model_id, explanations=explanations, explain_top=explain_top,
                       batch_size=batch_size, pseudonymize=pseudonymize, keep_user_text=keep_user_text,
                       keep_demographics=keep_demographics, keep_timestamps=keep_timestamps)

    def forget_users(self, ids: "Sequence[Any]") -> "Recommender":
        """Remove users from the fitted model: their node, interactions, knowledge edges, text
        features, scoring vectors, remembered hold-out rows and (added users) frozen layers;
        everyone else is ranked, evaluated, explained and saved as before, over the graph without
        them. The trained weights keep the forgotten users' past influence until the next
        training (``docs/privacy.md``). Ids the model does not know are skipped with a
        :class:`kgrec.errors.UnknownUserWarning` (forgetting twice is forgetting once). Returns
        ``self``."""
        from .forget import forget_users

        forget_users(self, ids)
        return self

    def save(self, path: str | os.PathLike) -> Path:
        """Write a model directory (parameters, weights, id maps, graph tables, text-model name,
        kgrec version) atomically: an interrupted save leaves the previous directory intact. In a
        ``torch.distributed`` job only rank 0 writes (every rank holds the same model); the others
        return the path without touching it."""
        from .persistence import SavedRecommender, save_recommender

        self._check_fitted()
        if not is_main():
            return Path(path)
        counts = {"users": len(self.user_index_), "items": len(self.item_index_)}
        return save_recommender(path, SavedRecommender(self.get_params(), self.trained_, self.graph_,
                                                       self.early_stopping_, self.holdout_, self.added_state(), counts))

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "auto", progress: bool = True) -> "Recommender":
        """Read a directory written by :meth:`save`; a missing, corrupt or mismatched one raises
        :class:`kgrec.errors.ModelError` that says so."""
        from .persistence import load_recommender

        saved = load_recommender(path, device=device)
        known = set(cls._param_names())
        rec = cls(device=device, progress=progress, **{k: v for k, v in saved.params.items() if k in known})
        rec.early_stopping_ = saved.early_stopping
        rec._set_trained(saved.trained, saved.graph, saved.holdout)
        rec._restore_added(saved.added)
        expected = saved.counts
        if expected and (expected.get("users") != len(rec.user_index_) or expected.get("items") != len(rec.item_index_)):
            raise ModelError(f"{path}: the weights and id maps disagree ({len(rec.user_index_)} users / "
                             f"{len(rec.item_index_)} items, config says {expected}). Fix: train and save again")
        return rec
