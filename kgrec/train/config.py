"""Training hyper-parameters: :class:`TrainConfig`, one configuration meant for any data set.

Every field is also a keyword argument of :class:`kgrec.Recommender` (with the same default), so
users set them there; measured effects of the defaults are in ``docs/results.md``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

MIN_BATCH = 256         # the smallest full-graph batch with batch_size=None (tiny data takes fewer steps)
SUBGRAPH_BATCH = 4096   # training_mode="subgraph": pairs per step with batch_size=None


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`kgrec.train.fit`. The defaults are not tuned per data set."""

    dim: int = 64                      # embedding size
    layers: int = 3                    # propagation layers
    epochs: int = 60                   # passes over the training pairs (an upper bound with early stopping)
    lr: float = 1e-2                   # Adam learning rate
    batch_size: int | None = 4096      # training pairs per step (at least; see max_steps_per_epoch). None:
                                       # full graph: pairs / max_steps_per_epoch (at least MIN_BATCH), the same
                                       # steps every epoch; subgraph: SUBGRAPH_BATCH (TrainConfig.step_batch)
    max_steps_per_epoch: int | None = 64  # full graph: an epoch takes at most this many steps: with more than
                                       # max_steps_per_epoch x batch_size pairs the batch grows with the data,
                                       # so an epoch costs time linear in it (None: batch_size always)
    training_mode: Literal["auto", "full_graph", "subgraph"] = "auto"  # 'full_graph': every step
                                       # propagates the whole graph; 'subgraph': over its batch's sampled
                                       # neighbourhood (memory bounded by the batch, kgrec.train.subgraph);
                                       # 'auto': full_graph while it fits the device's free memory
    fanout: int = 10                   # 'subgraph': neighbours sampled per node and layer
    rows_per_user: int = 16            # a step takes its users' pairs in runs of up to this many
                                       # (kgrec.train.sampling.user_batches; 1 = random pairs)
    num_negatives: int = 1024          # items sampled per step as the softmax's negatives, shared by the
                                       # step's users (all items when the catalogue is smaller)
    temperature: float | None = None   # scores are cosines / temperature (None: softmax_temperature's rule)
    item_bias: bool = True             # a learned bias per item in the score (a popularity prior)
    id_dropout: float = 0.2            # probability of dropping a node's ID embedding in a step
    cold_item_weight: float = 1.0      # weight of the cold-item view loss (trains the inductive path only)
    cold_user_weight: float = 1.0      # weight of the cold-user view loss (attributes + 0..3 clicks)
    cold_views: Literal["during", "after"] = "during"  # when the cold views train: in warm steps
                                       # and the inductive epochs, or only in the inductive epochs
    cold_view_every: int = 12          # with 'during': the cold views train in every k-th warm step
    inductive_epochs: int | None = None  # after training: epochs that train only the inductive path
                                       # (0 = off; None: 10 with cold_views 'during', 20 with 'after')
    inductive_lr: float | None = None  # Adam learning rate of those epochs (None: lr, or 10 x lr with 'after')
    user_item_triples: Literal["interactions", "knowledge"] = "interactions"  # knowledge triples between a
                                       # user and an item (a second behaviour: tagged, viewed): train and
                                       # propagate as interactions (never excluded when ranking), or stay
                                       # knowledge edges (relation-modulated, layer 0 only)
    interaction_weight: Literal["none", "rating"] = "none"  # 'rating': each training pair weighs the loss by its
                                       # rating (else its weight column), as a confidence; 'none': all equal
    ema_epochs: float = 10.0           # validate and keep the exponential moving average of the weights
                                       # over about this many epochs (kgrec.train.weight_average; 0 = raw)
    use_text: bool = True              # LM text features as node input
    use_kg: bool = True                # knowledge edges (attributes, entities, friends)
    use_id: bool = True                # learned ID embeddings
    patience: int = 10                 # epochs without a better validation Recall@20 before stopping
    seed: int = 0
    checkpoint_dir: str | None = None  # best.pt / last_good.pt written here when set

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """The config of ``d``'s known fields (a saved model's settings that no longer exist are
        dropped)."""
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def inductive_schedule(self) -> tuple[int, float]:
        """``(epochs, lr)`` of the inductive phase: the set values, else 10 epochs at ``lr`` when
        the cold views also train during warm training, 20 at ``10 * lr`` when they train only
        after it (10 epochs at ``lr`` leave the path under-trained then)."""
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
        The constant 1.5 gives 0.20 on 1,682 items and 0.15 on 25,000."""
        if self.temperature is not None:
            return self.temperature
        return 1.5 / math.log(max(num_items, 2))

    @property
    def user_item_triples_as_interactions(self) -> bool:
        """Whether user-item triples train and propagate as interactions (``use_kg`` and
        ``user_item_triples='interactions'``), as :func:`kgrec.graph.tensors.build_graph` builds them."""
        return self.use_kg and self.user_item_triples == "interactions"

    @property
    def trains_cold_views(self) -> bool:
        """Whether any cold-start view trains (a view weighted above 0)."""
        return self.cold_item_weight > 0 or self.cold_user_weight > 0

    def cold_views_in_step(self, step: int) -> bool:
        """Whether warm step ``step`` (counted from 0 over all epochs) also trains the cold-start
        views: with ``cold_views='during'`` and :attr:`trains_cold_views`, in every
        ``cold_view_every``-th step."""
        return self.cold_views == "during" and self.trains_cold_views and step % self.cold_view_every == 0

    def step_batch(self, pairs: int, subgraph: bool = False) -> int:
        """Training pairs per step for ``pairs`` training pairs an epoch.

        Full graph (``subgraph=False``): every step propagates the whole graph (cost ~ edges), so
        an epoch of :math:`S` steps costs ~ :math:`S` x edges + pairs (the losses). ``batch_size``
        (4,096) is kept while an epoch stays within ``max_steps_per_epoch`` steps and grows beyond
        (``max_steps_per_epoch=None``: kept always): an epoch costs ~ pairs x edges /
        ``batch_size`` up to ``max_steps_per_epoch x batch_size`` pairs and ~
        ``max_steps_per_epoch`` x edges + pairs, linear in the data, above. With
        ``batch_size=None`` the batch is ``ceil(pairs / max_steps_per_epoch)``, at least
        :data:`MIN_BATCH`: every epoch on more than ``max_steps_per_epoch x MIN_BATCH`` pairs takes
        ``max_steps_per_epoch`` steps (linear from there; small data then fits more slowly,
        ``docs/results.md`` section 3.9).

        Subgraph: a step's cost is bounded by its batch's sampled neighbourhood, so the batch is
        fixed: ``batch_size``, else :data:`SUBGRAPH_BATCH`."""
        if subgraph:
            return self.batch_size if self.batch_size is not None else SUBGRAPH_BATCH
        if self.batch_size is None:
            assert self.max_steps_per_epoch is not None, "validate() refuses both unset"
            return max(MIN_BATCH, math.ceil(pairs / self.max_steps_per_epoch))
        if self.max_steps_per_epoch is None:
            return self.batch_size
        return max(self.batch_size, math.ceil(pairs / self.max_steps_per_epoch))

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first setting out of its range."""
        if self.user_item_triples not in ("interactions", "knowledge"):
            raise ValueError(f"user_item_triples must be 'interactions' or 'knowledge' "
                             f"(got {self.user_item_triples!r})")
        if self.interaction_weight not in ("none", "rating"):
            raise ValueError(f"interaction_weight must be 'none' or 'rating' (got {self.interaction_weight!r})")
        if self.training_mode not in ("auto", "full_graph", "subgraph"):
            raise ValueError(f"training_mode must be 'auto', 'full_graph' or 'subgraph' (got {self.training_mode!r})")
        if self.cold_views not in ("after", "during"):
            raise ValueError(f"cold_views must be 'after' or 'during' (got {self.cold_views!r})")
        for name in ("dim", "epochs", "num_negatives", "cold_view_every", "rows_per_user", "fanout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive (got {getattr(self, name)})")
        for name in ("batch_size", "max_steps_per_epoch"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive or None (got {getattr(self, name)})")
        if self.batch_size is None and self.max_steps_per_epoch is None:
            raise ValueError("batch_size and max_steps_per_epoch are both None: an epoch would have no step "
                             "size. Fix: set batch_size (pairs per step) or max_steps_per_epoch (steps per epoch)")
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
