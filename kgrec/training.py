"""Training of :class:`kgrec.model.KGRecModel`: ``fit(train_kg, features, config) -> FitResult``.

Full-graph training (every step propagates over the whole graph, as LightGCN does) with
Adam, in steps of ``batch_size`` training rows that take each user's rows in runs of up to
``rows_per_user`` (16; :func:`user_batches`: fewer users per step, so fewer softmax normalisers
to compute); loss ``'softmax'`` (sampled softmax over ``num_negatives`` items shared by the
batch, on cosine scores divided by ``temperature``; the user's training positives are never used
as negatives) or ``'bpr'``; optional KG loss; ID-embedding dropout; and cold-start views (the
batch's items and users also scored through the inductive path, from text and knowledge edges
alone) so that new nodes are placed well: by default (``cold_views='during'``) in every
``cold_view_every``-th (12th) warm step and then in ``inductive_epochs`` that train only that path
against the final warm model; with ``'after'`` only in those epochs, the path starting from the
trained warm path (new items placed somewhat worse on Last.fm, see ``benchmarks/cold_start.py``).
Every 12th step instead of every step: warm epochs shorter (Last.fm: 1.22x PyG LightGCN's instead
of 1.30x at every 6th step, the two alternated in one process), with the cold-start benchmark's new
items and new users placed as well (every 1st, 3rd, 6th and 12th step measured: within one seed's
noise of each other). The warm model does not depend on how often they train, except through the
random numbers each step draws.
Validation and the model kept use the exponential moving average of the weights over about
``ema_epochs`` (10) epochs (:mod:`kgrec.weight_average`); training steps update the raw weights.
Test Recall@20 with and without it (``Recommender().fit`` on ``benchmarks/accuracy.py``'s splits,
seed 0): ML-100K 0.3752 / 0.3694, HetRec Last.fm 0.2843 / 0.2783 (seeds 1 and 2: 0.2860 / 0.2794,
0.2861 / 0.2783), ML-100K seed 1 0.3740 / 0.3710, MovieLens latest-small 0.2502 / 0.2441, KGAT
Amazon-book after 32 epochs on all of train (``valid_fraction=0``) 0.1482 / 0.1459. The average
does not change the epoch time.
(Those Last.fm runs predate its users' tagged artists, which the loader now gives as user-item
triples that train beside the listens: with them, 0.3084, and 0.3096 / 0.3080 at seeds 1 and 2.)
Device ``'auto'`` (CUDA when present, with bf16 autocast), seeded and reproducible on CPU, early
stopping on a validation split with :func:`kgrec.evaluation.evaluate`, checkpoints (best and last
good), a progress bar, and a clear :class:`kgrec.errors.TrainingDivergedError` when the loss stops
being finite.

    result = fit(train_kg, features, TrainConfig(epochs=30), valid_kg=valid_kg)
    users, items = result.final_embeddings()         # [U, d], [I, d]; score = users @ items.T
    new = result.embed_new_nodes(items=NewNodeBatch(ids, features), triples=triples_df)
    state = result.state(); same = FitResult.from_state(state)
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Iterator, Literal, Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from .config import resolve_device
from .errors import ModelError, TrainingDivergedError
from .graph_index import ITEM_TO_USER, GraphIndex, GraphTensors, build_graph, co_edge_types
from .inductive import NewEmbeddings, NewNodeBatch, NodeStates, embed_new_nodes
from .knowledge_graph import KnowledgeGraph
from .model import KGRecModel
from .optim import adam
from .sampled_softmax import masked_logsumexp, masked_logsumexp_pair, softmax_loss
from .weight_average import WeightAverage

STATE_VERSION = 3  # 3: users and items hear their knowledge edges in the first layer only (kgrec.model):
                   # the weights of a version-2 model would score differently under it


@dataclass
class TrainConfig:
    """Hyper-parameters. The defaults are one configuration meant for any data set (they are
    not tuned per data set)."""

    dim: int = 64                      # embedding size
    layers: int = 3                    # propagation layers
    epochs: int = 60                   # passes over the training interactions (upper bound with early stopping)
    lr: float = 1e-2                   # Adam learning rate
    batch_size: int = 4096             # interactions per step
    rows_per_user: int = 16            # a step takes its users' rows in runs of up to this many
                                       # (user_batches: fewer users per step; 1 = random rows)
    loss: Literal["softmax", "bpr"] = "softmax"
    num_negatives: int = 1024          # softmax: items sampled per step, shared by the batch (all items if fewer)
    temperature: float | None = None   # softmax: scores are cosines / temperature (None: 1.5 / ln(items),
                                       # see softmax_temperature: 0.20 on ML-100K, 0.15 on Amazon-book)
    item_bias: bool = True             # a learned bias per item in the score (a popularity prior)
    weight_decay: float = 0.0          # Adam weight decay
    id_dropout: float = 0.2            # probability of dropping a node's ID embedding in a step
    text_rank: int | None = None       # text features enter through their top text_rank directions (None: dim)
    cold_item_weight: float = 1.0      # weight of the cold-item view loss (trains the inductive path only)
    cold_user_weight: float = 1.0      # weight of the cold-user view loss (attributes + 0..3 clicks)
    cold_views: Literal["during", "after"] = "during"  # when the cold views train: in warm steps
                                       # and the inductive epochs, or only in the inductive epochs
    cold_view_every: int = 12          # with 'during': the cold views train in every k-th warm step
    inductive_epochs: int | None = None  # after training: epochs that train only the inductive path
                                       # (0 = off; None: 10 with cold_views 'during', 20 with 'after')
    inductive_lr: float | None = None  # Adam learning rate of those epochs (None: lr, or 10 x lr with 'after')
    item_neighbors: int = 0            # join each item to its k most co-interacted items (0 = off)
    user_item_triples: Literal["interactions", "knowledge"] = "interactions"  # knowledge triples between a
                                       # user and an item (a second behaviour: tagged, viewed): train and
                                       # propagate as interactions (never excluded when ranking), or stay
                                       # knowledge edges (relation-modulated, layer 0 only)
    ema_epochs: float = 10.0           # validate and keep the exponential moving average (EMA) of the weights
                                       # over about this many epochs (kgrec.weight_average; 0 = raw weights)
    kg_loss_weight: float = 0.0        # weight of a KG completion loss on layer 0 (0 = off; see _kg_loss)
    use_text: bool = True
    use_kg: bool = True
    use_id: bool = True
    patience: int = 10                 # evaluations without improvement before stopping (needs valid_kg);
                                       # Last.fm's validation Recall@20 dips after epoch 14 and rises until ~40
    eval_every: int = 1                # epochs between validation evaluations
    valid_metric: str = "recall@20"
    seed: int = 0
    checkpoint_dir: str | None = None  # best.pt / last_good.pt written here when set
    amp: bool = True                   # bf16 autocast on CUDA (CPU always float32)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def inductive_schedule(self) -> tuple[int, float]:
        """``(epochs, lr)`` of the inductive phase: the set values, else 10 epochs at ``lr`` when
        the cold views also train during warm training, 20 at ``10 * lr`` when they train only
        after it (measured on ML-100K cold users: 10 epochs at ``lr`` left the path under-trained)."""
        after = self.cold_views == "after"
        epochs = self.inductive_epochs if self.inductive_epochs is not None else (20 if after else 10)
        lr = self.inductive_lr if self.inductive_lr is not None else (10 * self.lr if after else self.lr)
        return epochs, lr

    def softmax_temperature(self, num_items: int) -> float:
        r"""``temperature`` when set, else :math:`\tau = 1.5 / \ln N` for a catalogue of
        :math:`N` items (at least 2).

        Scores are cosines, so a logit gap between two items is at most :math:`2 / \tau`. For a
        softmax over :math:`C` classes on cosines scaled by :math:`s = 1/\tau` to give the right
        class probability :math:`P`, :math:`s \ge \frac{C-1}{C} \ln \frac{(C-1) P}{1-P}` (NormFace,
        Wang et al. 2017): the scale a ranking over :math:`N` items needs grows with :math:`\ln N`.
        The constant keeps ML-100K (1,682 items) at 0.20, the value chosen there; it gives 0.153 on
        HetRec Last.fm (17,632 items), 0.163 on MovieLens latest-small (9,742) and 0.148 on KGAT
        Amazon-book (24,915). Test Recall@20 against a fixed 0.2 (``benchmarks/accuracy.py``'s
        splits, seed 0, ``Recommender().fit``): Last.fm 0.3084 -> 0.3395, ML-100K 0.3752 -> 0.3751;
        Amazon-book on all of train 0.1438 -> 0.1588 after 8 epochs and 0.1471 -> 0.1627 after 16
        (60 epochs at 0.2 reached only 0.1483); MovieLens latest-small 0.2502 -> 0.2526."""
        if self.temperature is not None:
            return self.temperature
        return 1.5 / math.log(max(num_items, 2))

    @property
    def user_item_triples_as_interactions(self) -> bool:
        """Whether user-item triples train and propagate as interactions (``use_kg`` and
        ``user_item_triples='interactions'``), as :func:`kgrec.graph_index.build_graph` builds them."""
        return self.use_kg and self.user_item_triples == "interactions"

    @property
    def trains_cold_views(self) -> bool:
        """Whether any cold-start view trains: the softmax loss and a view weighted above 0."""
        return self.loss == "softmax" and (self.cold_item_weight > 0 or self.cold_user_weight > 0)

    def cold_views_in_step(self, step: int) -> bool:
        """Whether warm step ``step`` (counted from 0 over all epochs) also trains the cold-start
        views: with ``cold_views='during'`` and :attr:`trains_cold_views`, in every
        ``cold_view_every``-th step."""
        return self.cold_views == "during" and self.trains_cold_views and step % self.cold_view_every == 0

    def validate(self) -> None:
        if self.loss not in ("softmax", "bpr"):
            raise ValueError(f"loss must be 'softmax' or 'bpr' (got {self.loss!r})")
        if self.user_item_triples not in ("interactions", "knowledge"):
            raise ValueError(f"user_item_triples must be 'interactions' or 'knowledge' "
                             f"(got {self.user_item_triples!r})")
        if self.cold_views not in ("after", "during"):
            raise ValueError(f"cold_views must be 'after' or 'during' (got {self.cold_views!r})")
        for name in ("dim", "epochs", "batch_size", "num_negatives", "eval_every", "cold_view_every", "rows_per_user"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive (got {getattr(self, name)})")
        if self.inductive_lr is not None and self.inductive_lr <= 0:
            raise ValueError(f"inductive_lr must be positive (got {self.inductive_lr})")
        if self.inductive_epochs is not None and self.inductive_epochs < 0:
            raise ValueError(f"inductive_epochs must be >= 0 (got {self.inductive_epochs})")
        if self.ema_epochs < 0:
            raise ValueError(f"ema_epochs must be >= 0 (got {self.ema_epochs})")
        if self.layers < 0:
            raise ValueError(f"layers must be >= 0 (got {self.layers})")
        if not 0.0 <= self.id_dropout < 1.0:
            raise ValueError(f"id_dropout must be in [0, 1) (got {self.id_dropout})")
        if self.temperature is not None and self.temperature <= 0:
            raise ValueError(f"temperature must be positive (got {self.temperature})")
        if not (self.use_text or self.use_id):
            raise ValueError("use_text and use_id cannot both be off: nodes need an input")


class FitResult:
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

    def _forward(self) -> tuple[Tensor, list[Tensor]]:
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
        z, _ = self._forward()
        return z[self.index.num_users + self.index.num_items:]

    def score(self, user_positions: Tensor) -> Tensor:
        """Scores ``[b, I]`` of users (positions) for every item: the scorer
        :func:`kgrec.evaluation.evaluate` takes."""
        users, items = self.final_embeddings()
        return users[user_positions.to(users.device)] @ items.T

    def set_graph(self, kg: KnowledgeGraph, features: dict[str, np.ndarray] | None = None) -> "FitResult":
        """Propagate over ``kg``'s interactions from now on (e.g. training + validation
        interactions once training is done). ``kg`` must have the same users, items, entities
        and relations as the training graph. Returns ``self``."""
        features = features if features is not None else kg.features
        index, graph = build_graph(kg, features if self.model.use_text else None, use_kg=self.config.use_kg,
                                   item_neighbors=self.config.item_neighbors,
                                   user_item_triples=self.config.user_item_triples)
        if self.model.use_text:
            graph.x = self.model.reduce_all(graph.x.to(self.device)).detach()
        for name in ("user_ids", "item_ids", "entity_ids", "relations"):
            if not getattr(index, name).equals(getattr(self.index, name)):
                raise ModelError(f"set_graph: the graph's {name} differ from the training graph's. Fix: pass a "
                                 "graph with the same nodes (e.g. train.with_interactions(...)), or add new "
                                 "nodes with embed_new_nodes")
        self.graph = graph.to(self.device)
        self._cache = None
        return self

    # ------------------------------------------------------------------ cold start
    def embed_new_nodes(self, items: NewNodeBatch | None = None, users: NewNodeBatch | None = None,
                        entities: NewNodeBatch | None = None, triples: pd.DataFrame | None = None,
                        interactions: pd.DataFrame | None = None, *,
                        added: Mapping[str, NodeStates] | None = None) -> NewEmbeddings:
        """Representations of nodes unseen in training; see :func:`kgrec.inductive.embed_new_nodes`."""
        return embed_new_nodes(self, items, users, entities, triples, interactions, added=added)

    # ------------------------------------------------------------------ save / load
    def state(self) -> dict[str, Any]:
        """Everything needed to rebuild this result, as plain tensors, numbers, strings and
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
    def from_state(cls, state: dict[str, Any], device: str | torch.device = "auto") -> "FitResult":
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
                             gd["edge_norm"], gd["deg"], co_edge_types(index))
        res = cls(model.to(device), index, graph.to(device), config, state.get("history", []), device)
        res.best_epoch = state.get("best_epoch")
        return res


# ---------------------------------------------------------------------- training
class _PositiveLookup:
    """Which (user, item) pairs are training positives: each user's items (CSR, for
    :meth:`mask`) and, for single pairs (:meth:`contains`), the sorted pair keys ``u * I + i``
    and a binary search."""

    def __init__(self, graph: GraphTensors) -> None:
        self.num_items = graph.num_items
        self.indptr, self.items = graph.user_positives_csr()
        self.keys = torch.sort(graph.inter_user.long() * self.num_items + graph.inter_item.long()).values

    def contains(self, keys: Tensor) -> Tensor:
        """Boolean tensor shaped like ``keys`` (``u * I + i``): is the pair a training positive?"""
        pos = torch.searchsorted(self.keys, keys).clamp_(max=len(self.keys) - 1)
        return self.keys[pos] == keys

    def positions(self, users: Tensor, candidates: Tensor) -> tuple[Tensor, Tensor]:
        """``(rows, cols)``: the entries ``[b, c]`` where ``candidates[c]`` (distinct items) is a
        training positive of ``users[b]``. Built from the users' positives (CSR), in time linear
        in their number: a column gather of the dense table costs ``U x C`` whatever the batch
        (33 ms against 5.5 ms per step on Last.fm's 1,892 x 17,632 table with 1,024 candidates)."""
        device = candidates.device
        slot = torch.full((self.num_items,), -1, dtype=torch.long, device=device)
        slot[candidates] = torch.arange(len(candidates), device=device)
        start = self.indptr[users]
        count = self.indptr[users + 1] - start
        row = torch.repeat_interleave(torch.arange(len(users), device=device), count)
        first = torch.repeat_interleave(start - (torch.cumsum(count, 0) - count), count)
        col = slot[self.items[torch.arange(len(row), device=device) + first]]
        hit = col >= 0
        return row[hit], col[hit]

    def mask(self, users: Tensor, candidates: Tensor) -> Tensor:
        """``[B, C]`` bool: True where ``candidates[c]`` is a training positive of ``users[b]``."""
        out = torch.zeros(len(users), len(candidates), dtype=torch.bool, device=candidates.device)
        out[self.positions(users, candidates)] = True
        return out

    def negative_weights(self, users: Tensor, candidates: Tensor) -> Tensor:
        """``[B, C]`` float: 0 where ``candidates[c]`` is a training positive of ``users[b]``, 1
        elsewhere (the ``keep`` argument of :func:`kgrec.sampled_softmax.masked_logsumexp`)."""
        out = torch.ones(len(users), len(candidates), device=candidates.device)
        out[self.positions(users, candidates)] = 0.0
        return out


def user_batches(owner: Tensor, indptr: Tensor, batch_size: int, rows_per_user: int,
                 generator: torch.Generator) -> list[Tensor]:
    """One epoch's batches of training rows (``owner`` ``[M]``: each row's user, rows sorted by
    user, user ``u`` holding rows ``indptr[u]:indptr[u + 1]``): each user's rows in a random order
    are cut into runs of ``rows_per_user``, the runs of all users shuffled and laid end to end, and
    that sequence split every ``batch_size`` rows. Every row is in exactly one batch; ``1`` gives
    plain random rows.

    The sampled softmax computes a normaliser per distinct user of a step (``users x negatives``
    scores). Random rows bring nearly every user into every step (CoLaKG's Last.fm split: about
    1,600 of its 1,859 users in a step of 4,096 rows); runs of 16 bring about ``batch_size / 16``.
    The loss is the same sum over rows, every row once an epoch. ``benchmarks/epoch_time.py``,
    runs of 16 against random rows: CoLaKG's split 1.26x PyG LightGCN's epoch (1.51-1.80x),
    ML-100K 0.74x (1.02x), Last.fm 0.92x (1.25x), at test Recall@20 from -0.6% to +1.5% (README)."""
    M = len(owner)
    if M == 0:
        return []
    device = owner.device
    perm = torch.randperm(M, generator=generator).to(device)
    rows = perm[torch.sort(owner[perm], stable=True).indices]        # grouped by user, random within
    user = owner[rows]
    position = torch.arange(M, device=device) - indptr[user]          # within the user's rows
    runs = (indptr[1:] - indptr[:-1] + rows_per_user - 1) // rows_per_user
    first_run = torch.cumsum(runs, 0) - runs
    run = first_run[user] + position // rows_per_user
    num_runs = int(runs.sum())
    slot = torch.empty(num_runs, dtype=torch.long, device=device)     # each run's place in the epoch
    slot[torch.randperm(num_runs, generator=generator).to(device)] = torch.arange(num_runs, device=device)
    rows = rows[torch.sort(slot[run], stable=True).indices]
    return list(rows.split(batch_size))


def sample_negatives(lookup: _PositiveLookup, users: Tensor, num: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Shared negatives for a batch: ``(candidates [C], keep [B, C])``. ``num`` distinct
    items drawn uniformly (all items when there are fewer); ``keep`` is 0 where the candidate
    is one of the user's training positives, 1 elsewhere: the zeros are masked out of the
    loss, so positives are never used as negatives."""
    n_items = lookup.num_items
    if num >= n_items:
        cand = torch.arange(n_items)
    else:
        cand = torch.randperm(n_items, generator=generator)[:num]
    cand = cand.to(users.device)
    return cand, lookup.negative_weights(users, cand)


def _bpr_negatives(lookup: _PositiveLookup, users: Tensor, generator: torch.Generator, tries: int = 20) -> Tensor:
    """One uniformly drawn non-positive item per user (positives redrawn, up to ``tries`` times;
    a user who has every item keeps a positive, which adds no gradient beyond a constant)."""
    n = len(users)
    neg = torch.randint(lookup.num_items, (n,), generator=generator).to(users.device)
    for _ in range(tries):
        clash = lookup.contains(users.long() * lookup.num_items + neg)
        if not clash.any():
            break
        fresh = torch.randint(lookup.num_items, (n,), generator=generator).to(users.device)
        neg = torch.where(clash, fresh, neg)
    return neg


def _autocast(device: torch.device, enabled: bool):
    if device.type == "cuda" and enabled:
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.autocast("cuda", dtype=dtype)
    return torch.autocast(device.type, enabled=False)


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc="kgrec fit", unit="epoch", leave=True)


def fit(train_kg: KnowledgeGraph, features: dict[str, np.ndarray] | None, config: TrainConfig | None = None,
        valid_kg: KnowledgeGraph | None = None, device: str | torch.device = "auto",
        progress: bool = True) -> FitResult:
    """Train a :class:`KGRecModel` on ``train_kg``'s interactions and knowledge edges.

    ``features``: text features per node type, rows in table order (default
    ``train_kg.features``; see :func:`kgrec.text_features.encode_graph`). With ``valid_kg``,
    ``config.valid_metric`` is evaluated every ``eval_every`` epochs, the best weights are
    kept and training stops after ``patience`` evaluations without improvement.

    Raises :class:`TrainingDivergedError` when the loss becomes NaN/inf; the error's
    ``result`` holds the model with the last good weights (also in
    ``checkpoint_dir/last_good.pt`` when set).
    """
    config = config or TrainConfig()
    config.validate()
    device = resolve_device(device)
    with _deterministic(device.type == "cpu"):
        return _fit(train_kg, features, config, valid_kg, device, progress)


@contextlib.contextmanager
def _deterministic(enabled: bool) -> Iterator[None]:
    """``torch.use_deterministic_algorithms`` for the duration (restored afterwards): without
    it, CPU scatter-adds sum in thread order and two runs with one seed differ in the last bits.
    Its debugging aid, filling every new uninitialised tensor with NaN
    (``torch.utils.deterministic.fill_uninitialized_memory``), stays off meanwhile: it changes no
    result and cost 15-20% of a training step on ML-100K (a ``fill_`` per allocation)."""
    before, before_warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    before_fill = torch.utils.deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
    if enabled:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=before_warn)
        torch.utils.deterministic.fill_uninitialized_memory = before_fill  # type: ignore[attr-defined]


def _fit(train_kg: KnowledgeGraph, features: dict[str, np.ndarray] | None, config: TrainConfig,
         valid_kg: KnowledgeGraph | None, device: torch.device, progress: bool) -> FitResult:
    features = features if features is not None else train_kg.features
    if config.use_text and features is None:
        raise ValueError("use_text=True needs text features: pass features=kgrec.text_features.encode_graph(kg) "
                         "or set use_text=False")
    index, graph = build_graph(train_kg, features if config.use_text else None, use_kg=config.use_kg,
                               item_neighbors=config.item_neighbors,
                               user_item_triples=config.user_item_triples)
    if len(graph.inter_user) == 0:
        raise ValueError("the training graph has no interactions")
    graph = graph.to(device).prepare()
    config = replace(config, temperature=config.softmax_temperature(index.num_items))

    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    model = KGRecModel(index.num_users, index.num_items, index.num_entities, index.num_edge_types,
                       graph.x.shape[1] if graph.x is not None else 0, config.dim, config.layers,
                       use_text=config.use_text, use_id=config.use_id, use_kg=config.use_kg,
                       id_dropout=config.id_dropout, text_rank=config.text_rank, item_bias=config.item_bias,
                       temperature=config.temperature).to(device)
    raw_items: Tensor | None = None  # items' raw text features, for the content map
    if model.use_text:
        model.fit_text_basis({t: graph.x[s] for t, s in model.type_slices().items()})
        raw_items = graph.x[index.num_users:index.num_users + index.num_items].clone()
        graph.x = model.reduce_all(graph.x)
    opt = adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    result = FitResult(model, index, graph, config, [], device)
    lookup = _PositiveLookup(graph)
    held = calibration_items(graph.num_items, config.seed).to(device)
    ckpt_dir = Path(config.checkpoint_dir) if config.checkpoint_dir else None
    if ckpt_dir:
        ckpt_dir.mkdir(parents=True, exist_ok=True)

    M = len(graph.inter_user)
    steps = math.ceil(M / config.batch_size)
    last_good = copy.deepcopy(model.state_dict())
    best_state, best_value, bad_evals = None, -math.inf, 0
    average = WeightAverage(model.parameters(), max(1.0, config.ema_epochs * steps)) if config.ema_epochs > 0 else None
    bar = _progress(config.epochs, progress)
    try:
        for epoch in range(1, config.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            batches = user_batches(graph.inter_user, lookup.indptr, config.batch_size, config.rows_per_user, gen)
            total, cold_steps = 0.0, 0
            for s, idx in enumerate(batches):
                users, items = graph.inter_user[idx], graph.inter_item[idx]
                id_mask = model.sample_id_mask(gen, device)
                cold = config.cold_views_in_step((epoch - 1) * steps + s)
                with _autocast(device, config.amp):
                    z, layers = model(graph, id_mask, entity_layers=False)  # the loss reads users and items
                    loss = _loss(model, config, graph, lookup, z, layers, users, items, gen, held, cold)
                if not torch.isfinite(loss):
                    model.load_state_dict(last_good)
                    result.invalidate()
                    if ckpt_dir:
                        torch.save({"model": last_good, "config": config.to_dict(), "epoch": epoch - 1},
                                   ckpt_dir / "last_good.pt")
                    err = TrainingDivergedError(
                        f"training diverged: the loss became {loss.item()} at epoch {epoch}, step {s + 1}/{steps}. "
                        f"The model keeps the last good weights (end of epoch {epoch - 1}"
                        + (f", saved in {ckpt_dir / 'last_good.pt'}" if ckpt_dir else "") +
                        f"). Fix: lower lr (now {config.lr:g}) or check the features for extreme values")
                    err.result = result  # type: ignore[attr-defined]
                    raise err
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if average is not None:
                    average.update()
                total += loss.item()
                cold_steps += cold
            # end of epoch: weights are good if they are finite
            if all(torch.isfinite(p).all() for p in model.parameters()):
                last_good = copy.deepcopy(model.state_dict())
            rec: dict[str, Any] = {"epoch": epoch, "loss": total / steps, "seconds": time.perf_counter() - t0,
                                   "steps": steps, "cold_steps": cold_steps}
            result.invalidate()
            if valid_kg is not None and (epoch % config.eval_every == 0 or epoch == config.epochs):
                with _averaged_weights(average, result):
                    value = _validate(result, train_kg, valid_kg, config.valid_metric)
                    improved = value > best_value
                    if improved:
                        best_state = copy.deepcopy(model.state_dict())
                rec[config.valid_metric] = value
                if improved:
                    best_value, bad_evals = value, 0
                    result.best_epoch = epoch
                    if ckpt_dir:
                        torch.save({"model": best_state, "config": config.to_dict(), "epoch": epoch,
                                    config.valid_metric: value}, ckpt_dir / "best.pt")
                else:
                    bad_evals += 1
            result.history.append(rec)
            if ckpt_dir:
                torch.save({"model": last_good, "config": config.to_dict(), "epoch": epoch},
                           ckpt_dir / "last_good.pt")
            if bar is not None:
                post = {"loss": f"{rec['loss']:.4f}"}
                if config.valid_metric in rec:
                    post[config.valid_metric] = f"{rec[config.valid_metric]:.4f}"
                bar.set_postfix(post)
                bar.update(1)
            if valid_kg is not None and bad_evals >= config.patience:
                result.stopped_early = True
                break
    finally:
        if bar is not None:
            bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        if average is not None:
            average.copy_to_params()
        if valid_kg is None:
            result.best_epoch = len(result.history)
    if config.cold_views == "after":
        model.start_inductive_path()
    if config.inductive_schedule()[0] > 0 and config.trains_cold_views:
        _fit_inductive(model, config, graph, lookup, gen, held)
    model.eval()
    with torch.no_grad():
        z, layers = model(graph)  # the final warm model, for the content map and the calibration
    if raw_items is not None:
        model.fit_content_map(raw_items[~held], z[graph.num_users:graph.num_users + graph.num_items][~held])
    calibrate_cold_items(model, graph, lookup, held, z, layers, raw_items, config.seed)
    result.invalidate()
    return result


@contextlib.contextmanager
def _averaged_weights(average: WeightAverage | None, result: FitResult) -> Iterator[None]:
    """The model holds ``average``'s weights inside the block (the raw ones without an average),
    with ``result``'s cached embeddings recomputed on each side of it."""
    if average is None:
        yield
        return
    with average.applied():
        result.invalidate()
        yield
    result.invalidate()


def _fit_inductive(model: KGRecModel, config: TrainConfig, graph: GraphTensors, lookup: _PositiveLookup,
                   gen: torch.Generator, held: Tensor) -> None:
    """Train only the inductive path (:meth:`KGRecModel.inductive_parameters`) for the
    epochs of :meth:`TrainConfig.inductive_schedule` (cold views) against the *final* warm model: its
    layers are computed once, in eval mode (no ID dropout), as :meth:`FitResult.embed_new_nodes`
    will see them, and stay fixed, so a step costs no propagation and the warm model cannot
    change. A non-finite loss ends the phase and restores the inductive parameters it started
    from."""
    model.eval()
    with torch.no_grad():
        z, layers = model(graph)
    params = model.inductive_parameters()
    start = [p.detach().clone() for p in params]
    epochs, lr = config.inductive_schedule()
    opt = adam(params, lr=lr)
    M = len(graph.inter_user)
    for _ in range(epochs):
        perm = torch.randperm(M, generator=gen).to(z.device)
        for s in range(0, M, config.batch_size):
            idx = perm[s:s + config.batch_size]
            loss = _softmax_losses(model, config, graph, lookup, z, layers, graph.inter_user[idx],
                                   graph.inter_item[idx], gen, held, warm=False)
            if not torch.isfinite(loss):
                with torch.no_grad():
                    for p, p0 in zip(params, start):
                        p.copy_(p0)
                return
            if not loss.requires_grad:  # it reached no inductive parameter: no text, content edge or click
                continue
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


CALIBRATION_USERS = 2048      # users whose top-k the cold-item calibration compares, at most
CALIBRATION_CELLS = 1 << 24   # and fewer when users x items would pass this many scores
CALIBRATION_ITEM_SHARE = 0.1  # share of the training items held out of the cold view for it
CALIBRATION_K = 20


def calibration_items(num_items: int, seed: int) -> Tensor:
    """``[I]`` bool: the items :func:`calibrate_cold_items` measures on, a seeded random
    ``CALIBRATION_ITEM_SHARE`` of them (none in a catalogue of fewer than 10 items). The
    cold-item view of training never sees them, so their inductive representations are as out
    of sample as a new item's."""
    held = torch.zeros(num_items, dtype=torch.bool)
    n = int(num_items * CALIBRATION_ITEM_SHARE)
    if n >= 1:
        held[torch.randperm(num_items, generator=torch.Generator().manual_seed(seed))[:n]] = True
    return held


@torch.no_grad()
def calibrate_cold_items(model: KGRecModel, graph: GraphTensors, lookup: _PositiveLookup, held: Tensor,
                         z: Tensor, layers: list[Tensor], raw_items: Tensor | None = None, seed: int = 0) -> float:
    r"""Set the factor :math:`s` on new items' representations (``model.cold_item_log_scale``)
    so that items seen through the inductive path take as many top-k slots as the same items
    seen warm, and return :math:`s`. ``z``, ``layers``: the trained model's final and per-layer
    representations (``model(graph)`` in eval mode).

    The ``held`` items (``[I]`` bool, :func:`calibration_items`; neither the cold-item view of
    training nor the content map saw them) are scored two ways for a seeded sample of
    ``CALIBRATION_USERS`` users (fewer in a large catalogue; their training items excluded):
    warm, :math:`\mathbf{z}_u^\top \mathbf{z}_i + \beta_i`, and as if new, :math:`s\,\mathbf{z}_u^\top
    \mathbf{c}_i + \beta_{new}` with :math:`\mathbf{c}_i` the item's inductive representation from
    its text and knowledge edges (with ``raw_items``, ``[I, F]`` raw text features: blended with
    the content map, as at add time) and :math:`\beta_{new}` the held items' mean bias, which
    becomes every new item's (``model.cold_item_bias``; 0 without ``item_bias``). :math:`s` is
    found by bisection on :math:`\log s \in [-3, 3]` so that the held items' share of the
    top-``CALIBRATION_K`` slots of the mixed ranking equals their warm share. Inductive cosines
    come out on a scale of their own (lower when text and attributes say less than interactions),
    so without it new items take too few or too many slots beside the catalogue. A positive
    factor changes no ranking among new items and no ranking of existing items. With fewer than
    one held item, :math:`s = 1`."""
    model.cold_item_log_scale.zero_()
    model.cold_item_bias.zero_()
    U, I = graph.num_users, graph.num_items
    k = min(CALIBRATION_K, I - 1)
    if int(held.sum()) < 1 or k < 1:
        return 1.0
    device = z.device
    held = held.to(device)
    sel = torch.nonzero(held).squeeze(1)
    if model.item_bias is not None:
        model.cold_item_bias.fill_(float(model.item_bias[sel].mean()))
    beta_new = model.temperature * float(model.cold_item_bias)
    n_users = min(CALIBRATION_USERS, max(64, CALIBRATION_CELLS // I))
    users = torch.randperm(U, generator=torch.Generator().manual_seed(seed))[:n_users].to(device)
    seen = lookup.mask(users, torch.arange(I, device=device))
    zu = z[users]
    warm = (model.user_output(zu) @ model.item_output(z[U:U + I]).T).float().masked_fill_(seen, -torch.inf)
    raw = None if raw_items is None else raw_items[sel]
    cold_vectors = _cold_items(model, graph, layers, sel, raw)[:, :model.dim]
    cold = (zu @ cold_vectors.T).float().masked_fill_(seen[:, sel], -torch.inf)

    def share(scores: Tensor) -> float:
        return float(held[scores.topk(k, dim=1).indices].float().mean())

    target = share(warm)
    lo, hi = -3.0, 3.0
    for _ in range(25):
        mid = (lo + hi) / 2
        mixed = warm.clone()
        mixed[:, sel] = cold * math.exp(mid) + beta_new
        lo, hi = (mid, hi) if share(mixed) < target else (lo, mid)
    model.cold_item_log_scale.fill_((lo + hi) / 2)
    return math.exp((lo + hi) / 2)


def _loss(model: KGRecModel, config: TrainConfig, graph: GraphTensors, lookup: _PositiveLookup, z: Tensor,
          layers: list[Tensor], users: Tensor, items: Tensor, gen: torch.Generator, held: Tensor,
          cold: bool) -> Tensor:
    """The step's loss: ``config.loss`` on the batch's (user, item) rows, with ``cold`` the
    cold-start views (softmax only), and the optional KG loss."""
    U = graph.num_users
    zi = z[U + items]
    z_items = z[U:U + graph.num_items]
    if config.loss == "bpr":
        zu = z[users]
        neg = _bpr_negatives(lookup, users, gen)
        diff = ((zu * zi).sum(-1) - (zu * z_items[neg]).sum(-1)) / config.temperature
        if model.item_bias is not None:
            diff = diff + model.item_bias[items] - model.item_bias[neg]
        loss = F.softplus(-diff).mean()
    else:
        loss = _softmax_losses(model, config, graph, lookup, z, layers, users, items, gen, held, cold=cold)
    if config.kg_loss_weight > 0:
        loss = loss + config.kg_loss_weight * _kg_loss(model, graph, layers[0], len(users), config.temperature, gen)
    return loss.float()


def _softmax_losses(model: KGRecModel, config: TrainConfig, graph: GraphTensors, lookup: _PositiveLookup,
                    z: Tensor, layers: list[Tensor], users: Tensor, items: Tensor, gen: torch.Generator,
                    held: Tensor, cold: bool = True, warm: bool = True) -> Tensor:
    """Sampled softmax of the warm model (logits: cosines / temperature + the items' biases
    :math:`b_i`; without ``warm``, left out: the inductive phase, whose warm model is fixed)
    plus, with ``cold``, the cold-item and cold-user views (``held``: [I] bool, the
    calibration items, which the cold-item view never sees). The cold views compare cosines only:
    a new item has no bias of its own (:func:`calibrate_cold_items` gives it one)."""
    U = graph.num_users
    zi = z[U + items]
    z_items = z[U:U + graph.num_items]
    # rows of the same user share the negatives, so their normaliser is computed once per user
    uniq, inv = torch.unique(users, return_inverse=True)
    cand, keep = sample_negatives(lookup, uniq, config.num_negatives, gen)
    zu = z[uniq] / config.temperature
    scores = (zu @ z_items[cand].T).float()
    bias = model.item_bias
    cold = cold and config.trains_cold_views
    if not warm:
        loss = scores.new_zeros(())
        with torch.no_grad():
            lse_plain = masked_logsumexp(scores, keep)
    else:
        offset = None if bias is None else bias[cand]
        if cold and offset is not None:  # the cold views compare cosines: they also need the sum without the bias
            lse_neg, lse_plain = masked_logsumexp_pair(scores, keep, offset)
        else:
            lse_neg = lse_plain = masked_logsumexp(scores, keep, offset)
        loss = softmax_loss(zu[inv], zi, lse_neg[inv], None if bias is None else bias[items])
    if cold:
        frozen = model.frozen_layers(layers, graph)
        zu = zu.detach()
        if config.cold_item_weight > 0:
            loss = loss + config.cold_item_weight * _cold_item_loss(model, graph, frozen, zu, inv,
                                                                     lse_plain.detach(), zi.detach(), items,
                                                                     cand, keep, config.temperature, held)
        if config.cold_user_weight > 0:
            n_rows = min(len(users), COLD_USER_ROWS)  # spread over the batch, whose users come in runs
            rows = torch.arange(n_rows, device=users.device) * len(users) // n_rows
            cold_u = _cold_users(model, graph, frozen, lookup, users[rows], items[rows], gen) / config.temperature
            lse_u = masked_logsumexp((cold_u @ z_items[cand].detach().T).float(), keep[inv[rows]])
            loss = loss + config.cold_user_weight * (
                softmax_loss(cold_u, zi[rows].detach(), lse_u)
                + _alignment(cold_u, z[users[rows]].detach()))
    return loss


def _kg_loss(model: KGRecModel, graph: GraphTensors, h0: Tensor, num: int, temperature: float,
             gen: torch.Generator) -> Tensor:
    """KG completion on layer 0: for ``num`` sampled knowledge edges ``(u, rho, v)``, the
    relation-modulated head :math:`\\mathbf{r}_\\rho \\odot \\mathbf{h}_u` should be closer (cosine
    / temperature) to the true tail :math:`\\mathbf{h}_v` than to a random node of the tail's type
    (BPR)."""
    src, dst, etype, _ = graph.knowledge_edges()
    if len(src) == 0:
        return h0.new_zeros(())
    pick = torch.randint(len(src), (num,), generator=gen).to(src.device)
    s, d, r = src[pick], dst[pick], etype[pick]
    bounds = torch.tensor([0, graph.num_users, graph.num_users + graph.num_items, graph.num_nodes], device=d.device)
    kind = torch.bucketize(d, bounds[1:], right=True)         # 0 user, 1 item, 2 entity
    lo, size = bounds[kind], bounds[kind + 1] - bounds[kind]
    corrupt = lo + (torch.rand(num, generator=gen).to(d.device) * size).long().clamp(max=size - 1)
    head = F.normalize(model.relation[r] * h0[s], dim=-1)
    pos = (head * F.normalize(h0[d], dim=-1)).sum(-1)
    neg = (head * F.normalize(h0[corrupt], dim=-1)).sum(-1)
    return F.softplus(-(pos - neg) / temperature).mean()


COLD_USER_ROWS = 512      # batch rows that also train the cold-user view
COLD_USER_CLICKS = 3      # a cold user in training sees 0..3 of their own interactions


def _cold_item_loss(model: KGRecModel, graph: GraphTensors, frozen: list[Tensor], zu: Tensor, inv: Tensor,
                    lse_warm: Tensor, z_pos: Tensor, items: Tensor, cand: Tensor, keep: Tensor,
                    temperature: float, held: Tensor) -> Tensor:
    """Loss of the cold-item view (trains only the inductive path: everything warm is detached).

    Each batch item ``i`` and each shared negative ``j`` is embedded as if new (:func:`_cold_items`).
    Terms, one per way a new item is used:

    - new items compete with the catalogue: every negative appears in both views (warm and
      cold), and both the cold and the warm view of the positive must beat all of them. The
      warm-positive half is what keeps new items in proportion: without it the cold view can
      score high for everyone (a direction close to all users) and new items fill every top-k
      (measured on ML-100K: 90% of the top-20 slots for 19% of the interactions; 21% with it);
    - new items ranked among themselves: the cold positive against the cold negatives;
    - an alignment ``1 - cos(cold_i, z_i)`` that keeps the cold view where the warm model put
      the item.

    The ``held`` items (``[I]`` bool, :func:`calibrate_cold_items`'s) are never seen as
    new: not as positives, not as negatives, so that their cold views stay out of sample.

    Per distinct batch user (row ``inv[b]`` for batch row ``b``):
    ``zu`` ``[u, dim]`` carries ``1 / temperature``, ``lse_warm`` ``[u]`` is the log-sum-exp of
    the warm negative scores, ``keep`` ``[u, C]`` is 0 at training positives among ``cand``, 1 elsewhere."""
    not_held = ~held[items]
    items, z_pos_kept, rows = items[not_held], z_pos[not_held], inv[not_held]
    nodes, where = torch.unique(torch.cat([items, cand]), return_inverse=True)
    cold = _cold_items(model, graph, frozen, nodes)
    cold_pos, cold_neg = cold[where[:len(items)]], cold[where[len(items):]]
    lse_cold = masked_logsumexp((zu @ cold_neg.T).float(), keep * (~held[cand]).to(keep.dtype))
    lse_both = torch.logaddexp(lse_warm, lse_cold)
    loss = softmax_loss(zu[inv], z_pos, lse_both[inv])
    if len(items):  # a batch of held items only has no cold positive
        zu_rows = zu[rows]
        loss = loss + (softmax_loss(zu_rows, cold_pos, lse_both[rows])
                       + softmax_loss(zu_rows, cold_pos, lse_cold[rows]) + _alignment(cold_pos, z_pos_kept))
    return loss


def _alignment(a: Tensor, b: Tensor) -> Tensor:
    """Mean ``1 - cos(a_k, b_k)`` over rows."""
    return (1 - F.cosine_similarity(a.float(), b.float(), dim=-1)).mean()


def _cold_users(model: KGRecModel, graph: GraphTensors, layers: list[Tensor], lookup: _PositiveLookup,
                users: Tensor, items: Tensor, gen: torch.Generator) -> Tensor:
    """Batch users as if they were new: embedded through the inductive path from their text,
    their knowledge edges (attributes, friends) and 0..``COLD_USER_CLICKS`` of their training
    items drawn at random, never the row's target ``items``. ``[R, dim]`` in ``users`` order."""
    R, k, device = len(users), COLD_USER_CLICKS, users.device
    row_kg, src_kg, et_kg = graph.content_edges_into(users)
    indptr, pos_items = lookup.indptr, lookup.items
    start = indptr[users]
    count = indptr[users + 1] - start
    n = torch.randint(0, k + 1, (R,), generator=gen).to(device)
    offs = (torch.rand(R, k, generator=gen).to(device) * count.unsqueeze(1)).long()
    pick = pos_items[start.unsqueeze(1) + offs]
    keep = (torch.arange(k, device=device).unsqueeze(0) < n.unsqueeze(1)) & (pick != items.unsqueeze(1))
    row_i = torch.arange(R, device=device).unsqueeze(1).expand(R, k)[keep]
    src_i = pick[keep] + graph.num_users
    row, src = torch.cat([row_kg, row_i]), torch.cat([src_kg, src_i])
    etype = torch.cat([et_kg, torch.full_like(src_i, ITEM_TO_USER)])
    x = graph.x[users] if model.use_text else None
    return model.inductive(layers, x, "user", R, row, src, etype, graph.deg[src])


def _cold_items(model: KGRecModel, graph: GraphTensors, layers: list[Tensor], items: Tensor,
                raw: Tensor | None = None) -> Tensor:
    """``items`` (item positions) as if they were new: embedded through the inductive path from
    their text and knowledge edges only (no ID, no interactions). ``[n, dim]`` in ``items`` order.
    Without ``raw``: the inductive path's own output (:meth:`KGRecModel.combine`, what training
    fits); with ``raw`` (the items' raw text features ``[n, F]``): what a new item gets
    (:meth:`KGRecModel.inductive_output`: content map and calibration factor)."""
    nodes = items + graph.num_users
    row, src, etype = graph.content_edges_into(nodes)
    x = graph.x[nodes] if model.use_text else None
    per_layer = model.inductive_layers(layers, x, "item", len(items), row, src, etype, graph.deg[src])
    return model.combine(per_layer) if raw is None else model.inductive_output(per_layer, "item", raw)


def _validate(result: FitResult, train_kg: KnowledgeGraph, valid_kg: KnowledgeGraph, metric: str) -> float:
    from .evaluation import evaluate

    k = int(metric.split("@")[1]) if "@" in metric else 20
    out = evaluate(result.score, train_kg, valid_kg, result.user_ids, result.item_ids, k=(k,))
    if metric not in out:
        raise ValueError(f"valid_metric {metric!r} is not one evaluate() reports ({sorted(out)})")
    return float(out[metric])
