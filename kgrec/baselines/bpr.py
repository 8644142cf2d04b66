"""Embedding baselines trained with BPR: matrix factorisation (:class:`MFBPR`) and PyG's
LightGCN (:class:`LightGCNBaseline`), tuned as fairly as kgrec.

``MFBPR``: ``s(u, i) = p_u . q_i``. ``LightGCNBaseline``: PyG's
:class:`torch_geometric.nn.models.LightGCN` on the user-item graph,
``E^(l+1) = D^-1/2 A D^-1/2 E^(l)``, ``e = mean_l E^(l)`` (l = 0..L), ``s(u, i) = e_u . e_i``,
trained with its ``recommendation_loss`` (BPR + L2 on the batch's layer-0 embeddings).

BPR training (the LightGCN paper's recipe): one epoch is one pass over the training pairs
``(u, i)`` in shuffled mini-batches of ``batch_size`` (2048); each pair gets one negative ``j``
drawn uniformly from the items that are *not* among ``u``'s training positives; the loss is
``-mean ln sigma(s(u,i) - s(u,j)) + lambda * ||E0[batch nodes]||^2 / batch`` (PyG's
``BPRLoss``); Adam. Paper settings: dim 64, 3 layers, lr 1e-3, lambda 1e-4.

Tuned fairly: with ``grid`` set (default ``{"lr": [1e-3, 5e-3], "reg": [1e-4, 1e-3]}``), ``fit``
carves a validation split out of the *training* interactions (``valid_fraction`` per user,
seed fixed), trains every grid point with early stopping on validation Recall@20 (checked every
``eval_every`` epochs, ``patience`` checks without improvement, at most ``epochs``), then refits
on the full training set with the best point for its best number of epochs. The test split is
never seen. ``tuning_`` keeps every grid point's result, ``best_params_`` the winner. kgrec gets
the same treatment (early stopping on a split carved from train, then a refit on all of it for
the best number of epochs), so the comparison is like for like. ``grid=None`` trains the given
``lr`` / ``reg`` for exactly ``epochs``.

``user_item_triples=True`` trains on the interactions joined by the graph's user-item knowledge
triples (a second behaviour, e.g. HetRec Last.fm's tagged artists), as kgrec does
(:func:`kgrec.graph.tensors.with_user_item_triples`): the same training pairs, so the two
compare like for like on a graph that has them. Seen items, which ranking excludes, stay the
interactions alone.

Seeded (``seed``), device ``"auto"`` (CUDA when present). ``train_seconds_`` is the wall time of
the final fit (tuning excluded, ``tune_seconds_`` holds that), ``seconds_per_epoch_`` the mean
time of a training epoch without evaluation, ``epochs_`` the number of epochs of the final fit.
"""

from __future__ import annotations

import copy
import itertools
import time
import warnings
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..errors import ModelError
from ..graph.pyg import BPRLoss, LightGCN
from ..knowledge_graph import KnowledgeGraph
from ..nn.sparse import symmetric_spmm
from ..settings import resolve_device
from ..train.optim import adam
from .base import Baseline

DEFAULT_GRID: dict[str, list[float]] = {"lr": [1e-3, 5e-3], "reg": [1e-4, 1e-3]}


class _MF(torch.nn.Module):
    def __init__(self, num_nodes: int, dim: int):
        super().__init__()
        self.embedding = torch.nn.Embedding(num_nodes, dim)
        torch.nn.init.xavier_uniform_(self.embedding.weight)

    def get_embedding(self, adj: Tensor | None = None) -> Tensor:
        return self.embedding.weight


class NegativeSampler:
    """Uniform negatives that are never one of the user's training positives."""

    def __init__(self, users: np.ndarray, items: np.ndarray, num_items: int, generator: torch.Generator):
        self.num_items = num_items
        self.keys = torch.as_tensor(np.sort(users * num_items + items))
        self.gen = generator

    def __call__(self, users: Tensor) -> Tensor:
        neg = torch.randint(self.num_items, (len(users),), generator=self.gen)
        for _ in range(200):
            keys = users * self.num_items + neg
            pos = torch.searchsorted(self.keys, keys).clamp(max=len(self.keys) - 1)
            bad = self.keys[pos] == keys
            if not bad.any():
                break
            neg[bad] = torch.randint(self.num_items, (int(bad.sum()),), generator=self.gen)
        return neg


class BPRBaseline(Baseline):
    """Embedding models trained with BPR (see the module docstring for the recipe and tuning)."""

    def __init__(
        self,
        dim: int = 64,
        lr: float = 1e-3,
        reg: float = 1e-4,
        batch_size: int = 2048,
        epochs: int = 300,
        grid: dict[str, list[float]] | None = DEFAULT_GRID,
        valid_fraction: float = 0.1,
        eval_every: int = 5,
        patience: int = 5,
        seed: int = 0,
        device: str = "auto",
        verbose: bool = False,
        user_item_triples: bool = False,
    ):
        if dim <= 0 or batch_size <= 0 or epochs <= 0 or eval_every <= 0 or patience <= 0:
            raise ValueError("dim, batch_size, epochs, eval_every and patience must be positive")
        if grid is not None and (not grid or set(grid) - {"lr", "reg"}):
            raise ValueError(f"grid may only tune 'lr' and 'reg' (got {sorted(grid)})")
        self.dim = dim
        self.lr = lr
        self.reg = reg
        self.batch_size = batch_size
        self.epochs = epochs
        self.grid = grid
        self.valid_fraction = valid_fraction
        self.eval_every = eval_every
        self.patience = patience
        self.seed = seed
        self.device = device
        self.verbose = verbose
        self.user_item_triples = user_item_triples

    # subclasses build the module and its propagation matrix
    def _module(self, num_users: int, num_items: int) -> torch.nn.Module:
        raise NotImplementedError

    def _adjacency(self, u: np.ndarray, i: np.ndarray, num_users: int, num_items: int,
                   device: torch.device) -> Tensor | None:
        return None

    def fit(self, train: KnowledgeGraph) -> "BPRBaseline":
        """Tune on a validation split carved from ``train`` (if ``grid``), then train on all of it."""
        self._check_train(train)
        t_tune = time.perf_counter()
        self.tuning_: list[dict[str, float]] = []
        lr, reg, epochs = self.lr, self.reg, self.epochs
        if self.grid is not None:
            fit_part, valid_part = train.split("random", test=self.valid_fraction, seed=self.seed)
            best: tuple[float, float, float, int] | None = None
            for g_lr, g_reg in itertools.product(self.grid.get("lr", [self.lr]), self.grid.get("reg", [self.reg])):
                trial = copy.copy(self)
                trial.grid, trial.lr, trial.reg = None, g_lr, g_reg
                trial._train(fit_part, valid=valid_part)
                row = {"lr": g_lr, "reg": g_reg, "valid_recall@20": trial.best_valid_, "best_epoch": trial.best_epoch_,
                       "seconds": trial.train_seconds_}
                self.tuning_.append(row)
                if self.verbose:
                    print(f"[{type(self).__name__}] tune {row}", flush=True)
                if best is None or trial.best_valid_ > best[0]:
                    best = (trial.best_valid_, g_lr, g_reg, trial.best_epoch_)
            assert best is not None
            _, lr, reg, epochs = best
            epochs = max(1, epochs)
        self.best_params_ = {"lr": lr, "reg": reg, "epochs": epochs}
        self.tune_seconds_ = time.perf_counter() - t_tune if self.grid is not None else 0.0
        final = copy.copy(self)
        final.lr, final.reg, final.epochs = lr, reg, epochs
        final._train(train, valid=None)
        self._set_index(final.user_index_, final.item_index_, final.graph_)
        for key in ("module_", "user_emb_", "item_emb_", "train_seconds_",
                    "seconds_per_epoch_", "epochs_", "loss_history_"):
            setattr(self, key, getattr(final, key))
        return self

    def _train(self, train: KnowledgeGraph, valid: KnowledgeGraph | None) -> None:
        """Train for ``self.epochs`` with ``self.lr`` / ``self.reg``; with ``valid``, early-stop on its
        Recall@20 and keep the best embeddings (``best_valid_``, ``best_epoch_``)."""
        t0 = time.perf_counter()
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        device = resolve_device(self.device)
        u, i = self._prepare(train)
        n_u, n_i = len(self.user_index_), len(self.item_index_)
        module = self._module(n_u, n_i).to(device)
        adj = self._adjacency(u, i, n_u, n_i, device)
        sampler = NegativeSampler(u, i, n_i, gen)
        opt = adam(module.parameters(), lr=self.lr)
        loss_fn = BPRLoss(self.reg)
        tu, ti = torch.as_tensor(u), torch.as_tensor(i)
        self.best_valid_, self.best_epoch_ = -1.0, 0
        best_state: dict[str, Tensor] | None = None
        bad_checks = 0
        epoch_time = 0.0
        self.loss_history_: list[float] = []
        epoch = 0
        for epoch in range(1, self.epochs + 1):
            te = time.perf_counter()
            module.train()
            perm = torch.randperm(len(tu), generator=gen)
            total = 0.0
            for s in range(0, len(perm), self.batch_size):
                idx = perm[s:s + self.batch_size]
                bu, bi = tu[idx], ti[idx]
                bj = sampler(bu)
                bu, bi, bj = bu.to(device), (bi + n_u).to(device), (bj + n_u).to(device)
                emb = module.get_embedding(adj)
                pos = (emb[bu] * emb[bi]).sum(-1)
                neg = (emb[bu] * emb[bj]).sum(-1)
                nodes = torch.cat([bu, bi, bj]).unique()
                loss = loss_fn(pos, neg, module.embedding.weight[nodes])
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(idx)
            epoch_time += time.perf_counter() - te
            mean_loss = total / len(perm)
            self.loss_history_.append(mean_loss)
            if not np.isfinite(mean_loss):
                raise ModelError(f"{type(self).__name__}: the BPR loss became {mean_loss} at epoch {epoch} "
                                 f"(lr={self.lr}); lower the learning rate")
            if valid is not None and (epoch % self.eval_every == 0 or epoch == self.epochs):
                self._finish(module, adj)
                recall = self.evaluate(valid, k=20)["recall@20"]
                if self.verbose:
                    print(f"[{type(self).__name__} lr={self.lr} reg={self.reg}] epoch {epoch} loss {mean_loss:.4f} "
                          f"valid recall@20 {recall:.4f}", flush=True)
                if recall > self.best_valid_:
                    self.best_valid_, self.best_epoch_ = recall, epoch
                    best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
                    bad_checks = 0
                else:
                    bad_checks += 1
                    if bad_checks >= self.patience:
                        break
        if best_state is not None:
            module.load_state_dict(best_state)
        self._finish(module, adj)
        self.module_ = module
        self.epochs_ = epoch
        self.seconds_per_epoch_ = epoch_time / max(1, epoch)
        self.train_seconds_ = time.perf_counter() - t0

    @torch.no_grad()
    def _finish(self, module: torch.nn.Module, adj: Tensor | None) -> None:
        module.eval()
        emb = module.get_embedding(adj)
        n_u = len(self.user_index_)
        self.user_emb_, self.item_emb_ = emb[:n_u].detach(), emb[n_u:].detach()

    def scorer(self, user_positions: Tensor) -> Tensor:
        self._check_fitted()
        return self.user_emb_[user_positions.to(self.user_emb_.device)] @ self.item_emb_.T


class MFBPR(BPRBaseline):
    """Matrix factorisation ``s(u, i) = p_u . q_i`` with BPR (module docstring: recipe, tuning)."""

    def _module(self, num_users: int, num_items: int) -> torch.nn.Module:
        return _MF(num_users + num_items, self.dim)


class _LightGCN(LightGCN):
    """PyG's LightGCN; with a precomputed symmetric ``D^-1/2 A D^-1/2`` (sparse CSR) as
    ``edge_index`` the layers run as :func:`kgrec.nn.sparse.symmetric_spmm`, which is what ``LGConv`` computes
    (``x' = D^-1/2 A D^-1/2 x``), with a cheap backward. Any other ``edge_index`` goes to PyG."""

    def get_embedding(self, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        if isinstance(edge_index, Tensor) and edge_index.layout == torch.sparse_csr and edge_weight is None:
            x = self.embedding.weight
            out = x * self.alpha[0]
            for layer in range(self.num_layers):
                x = symmetric_spmm(edge_index, x)
                out = out + x * self.alpha[layer + 1]
            return out
        return super().get_embedding(edge_index, edge_weight)


def normalized_adjacency(u: np.ndarray, i: np.ndarray, num_users: int, num_items: int) -> Tensor:
    """``D^-1/2 A D^-1/2`` of the bipartite graph (users first, then items) as a sparse CSR
    matrix; isolated nodes get zero rows."""
    n = num_users + num_items
    row = torch.as_tensor(np.concatenate([u, i + num_users]))
    col = torch.as_tensor(np.concatenate([i + num_users, u]))
    deg = torch.bincount(row, minlength=n).float()
    dinv = deg.pow(-0.5).masked_fill(deg == 0, 0.0)
    adj = torch.sparse_coo_tensor(torch.stack([row, col]), dinv[row] * dinv[col], (n, n),
                                  check_invariants=False).coalesce()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return adj.to_sparse_csr()


class LightGCNBaseline(BPRBaseline):
    """PyG's LightGCN (``num_layers`` LGConv layers, layer mean) with BPR; see the module docstring.

    The symmetric normalisation ``D^-1/2 A D^-1/2`` of the user-item graph is computed once as
    a sparse matrix and each layer multiplies by it (with a backward that reuses the symmetric
    matrix): the same propagation PyG's ``LGConv`` computes from ``edge_index`` on every call
    (the tests check the two agree), at a fraction of the CPU cost."""

    def __init__(self, dim: int = 64, num_layers: int = 3, **kwargs: Any):
        super().__init__(dim=dim, **kwargs)
        if num_layers < 0:
            raise ValueError("num_layers must be >= 0")
        self.num_layers = num_layers

    def _module(self, num_users: int, num_items: int) -> torch.nn.Module:
        return _LightGCN(num_users + num_items, self.dim, self.num_layers)

    def _adjacency(self, u: np.ndarray, i: np.ndarray, num_users: int, num_items: int,
                   device: torch.device) -> Tensor:
        return normalized_adjacency(u, i, num_users, num_items).to(device)
