r"""EASE (Steck, WWW 2019): a linear item-item model in closed form, strong on dense data.

With :math:`\mathbf{X}` the binary user-item training matrix,
:math:`\mathbf{P} = (\mathbf{X}^\top\mathbf{X} + \lambda\mathbf{I})^{-1}` and
:math:`\mathbf{B} = \mathbf{I} - \mathbf{P}\,\mathrm{diag}(1/\mathrm{diag}(\mathbf{P}))`, the
minimiser of :math:`\lVert \mathbf{X} - \mathbf{X}\mathbf{B} \rVert^2 + \lambda \lVert
\mathbf{B} \rVert^2` subject to :math:`\mathrm{diag}(\mathbf{B}) = 0`, the score is
:math:`s(u, i) = (\mathbf{X}_u \mathbf{B})_i`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from ..errors import ModelError
from ..graph.csr import gather_rows, rows_csr
from ..knowledge_graph import KnowledgeGraph
from ..settings import resolve_device
from .base import Baseline

DEFAULT_EASE_GRID: tuple[float, ...] = (50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0)


class EASE(Baseline):
    """EASE^R (Steck 2019): ``s(u, .) = X_u B`` with ``B = I - P diag(1/diag(P))``,
    ``P = (X^T X + l2 I)^-1``, so that ``diag(B) = 0`` (module docstring).

    With ``l2_grid`` set, ``fit`` carves ``valid_fraction`` of each user's training items
    (seed ``seed``), solves for every ``l2`` in it, keeps the one with the best validation
    Recall@20 (``tuning_``, ``best_params_``) and solves again on all of ``train``; the test
    split is never seen. ``l2_grid=None`` uses ``l2``. One solve is a Cholesky factorisation
    and inverse of an items x items matrix: :math:`O(I^3)` time and a few :math:`I^2` floats of
    memory, so catalogues over ``max_items`` are refused."""

    def __init__(self, l2: float = 500.0, l2_grid: Sequence[float] | None = DEFAULT_EASE_GRID,
                 valid_fraction: float = 0.1, seed: int = 0, device: str = "auto", max_items: int = 30_000,
                 user_item_triples: bool = False, verbose: bool = False):
        if l2 <= 0 or (l2_grid is not None and (not len(l2_grid) or min(l2_grid) <= 0)):
            raise ValueError(f"l2 and every l2_grid value must be positive (got l2={l2}, l2_grid={l2_grid})")
        self.l2 = l2
        self.l2_grid = None if l2_grid is None else tuple(float(v) for v in l2_grid)
        self.valid_fraction = valid_fraction
        self.seed = seed
        self.device = device
        self.max_items = max_items
        self.user_item_triples = user_item_triples
        self.verbose = verbose

    def fit(self, train: KnowledgeGraph) -> "EASE":
        """Tune ``l2`` on a split carved from ``train`` (if ``l2_grid``), then solve on all of it."""
        self._check_train(train)
        t0 = time.perf_counter()
        self.tuning_: list[dict[str, float]] = []
        l2 = self.l2
        if self.l2_grid is not None:
            fit_part, valid_part = train.split("random", test=self.valid_fraction, seed=self.seed)
            trial = copy.copy(self)
            gram = trial._gram(fit_part)
            for value in self.l2_grid:
                trial.weights_ = _ease_weights(gram, value)
                row = {"l2": value, "valid_recall@20": trial.evaluate(valid_part, k=20)["recall@20"]}
                self.tuning_.append(row)
                if self.verbose:
                    print(f"[EASE] tune {row}", flush=True)
            l2 = max(self.tuning_, key=lambda r: r["valid_recall@20"])["l2"]
        self.best_params_ = {"l2": l2}
        self.tune_seconds_ = time.perf_counter() - t0 if self.l2_grid is not None else 0.0
        t1 = time.perf_counter()
        self.weights_ = _ease_weights(self._gram(train), l2)
        self._record_closed_form_fit(time.perf_counter() - t1)
        return self

    def _gram(self, train: KnowledgeGraph) -> Tensor:
        """``X^T X`` of ``train`` on the device; keeps each user's training items (``row_starts_``,
        ``row_items_``: CSR rows of ``X``) for scoring."""
        u, i = self._prepare(train)
        n_i = len(self.item_index_)
        if n_i > self.max_items:
            raise ModelError(f"EASE needs dense {n_i:,} x {n_i:,} item matrices (about {4 * n_i * n_i / 2**30:.1f} GiB "
                             f"each) and catalogues up to max_items={self.max_items:,}; raise max_items if the "
                             "memory is there, or use LightGCNBaseline / MFBPR")
        self.row_starts_, self.row_items_ = rows_csr(torch.as_tensor(u), torch.as_tensor(i), len(self.user_index_))
        x = torch.sparse_coo_tensor(torch.as_tensor(np.stack([u, i])), torch.ones(len(u)),
                                    (len(self.user_index_), n_i), check_invariants=True).coalesce()
        return torch.sparse.mm(x.t().coalesce(), x).to_dense().to(resolve_device(self.device))

    def scorer(self, user_positions: Tensor) -> Tensor:
        self._check_fitted()
        rows, entry = gather_rows(self.row_starts_, user_positions.cpu())
        history = torch.zeros(len(user_positions), len(self.item_index_), device=self.weights_.device)
        history[rows, self.row_items_[entry]] = 1.0
        return history @ self.weights_


def _ease_weights(gram: Tensor, l2: float) -> Tensor:
    """``B = I - P diag(1/diag(P))``, ``P = (gram + l2 I)^-1`` (zero diagonal); Cholesky solve."""
    g = gram.clone()
    g.diagonal().add_(l2)
    weights = torch.cholesky_inverse(torch.linalg.cholesky(g))
    del g
    weights.div_(-weights.diagonal().clone())  # column j divided by -P_jj
    weights.diagonal().zero_()
    return weights
