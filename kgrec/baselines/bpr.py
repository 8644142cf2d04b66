"""Baselines in the same harness as kgrec: fit on a training KnowledgeGraph, score every item for
a batch of users, evaluate with :func:`kgrec.evaluation.evaluate` on the same split.

Every baseline has ``fit(train_kg) -> self``, ``user_ids`` / ``item_ids`` (``pandas.Index`` of
the caller's ids, sorted as in :func:`kgrec.to_heterodata`), ``scorer(user_positions) ->
Tensor[b, num_items]`` and ``evaluate(test, k)``.

``Popularity``
    ``s(u, i) = |{v : (v, i) in train}|``, the same list for everyone (seen items excluded).
``MFBPR``
    Matrix factorisation ``s(u, i) = p_u . q_i`` trained with BPR.
``LightGCNBaseline``
    PyG's :class:`torch_geometric.nn.models.LightGCN` on the user-item graph:
    ``E^(l+1) = D^-1/2 A D^-1/2 E^(l)``, ``e = mean_l E^(l)`` (l = 0..L), ``s(u, i) = e_u . e_i``,
    trained with its ``recommendation_loss`` (BPR + L2 on the batch's layer-0 embeddings).
``EASE``
    Steck's EASE^R (WWW 2019), a linear item-item model in closed form: with ``X`` the binary
    user-item training matrix, ``P = (X^T X + lambda I)^-1`` and ``B = I - P diag(1/diag(P))``
    (the minimiser of ``||X - X B||^2 + lambda ||B||^2`` subject to ``diag(B) = 0``),
    ``s(u, i) = (X_u B)_i``. A strong baseline on dense data; it needs a dense items x items
    matrix (``max_items``), and ``lambda`` is tuned like the BPR models' grid (below).
``TextKNN``
    Content only, the cold-start baseline: ``s(u, i) = cos(mean_{j in N(u)} t_j, t_i)``, ``t``
    the items' LM text embeddings (:mod:`kgrec.text_features`); a user with no training item
    falls back to their own text embedding.

BPR training (MF and LightGCN, the LightGCN paper's recipe): one epoch is one pass over the
training pairs ``(u, i)`` in shuffled mini-batches of ``batch_size`` (2048); each pair gets one
negative ``j`` drawn uniformly from the items that are *not* among ``u``'s training positives;
the loss is ``-mean ln sigma(s(u,i) - s(u,j)) + lambda * ||E0[batch nodes]||^2 / batch`` (PyG's
``BPRLoss``); Adam. Paper settings: dim 64, 3 layers, lr 1e-3, lambda 1e-4.

Tuned fairly: with ``grid`` set (default ``{"lr": [1e-3, 5e-3], "reg": [1e-4, 1e-3]}``), ``fit``
carves a validation split out of the *training* interactions (``valid_fraction`` per user,
seed fixed), trains every grid point with early stopping on validation Recall@20 (checked every
``eval_every`` epochs, ``patience`` checks without improvement, at most ``epochs``), then refits
on the full training set with the best point for its best number of epochs. The test split is
never seen. ``tuning_`` keeps every grid point's result, ``best_params_`` the winner.
kgrec gets the same treatment (early stopping on a split carved from train, then a refit on all
of it for the best number of epochs), so the comparison is like for like. ``grid=None`` trains
the given ``lr`` / ``reg`` for exactly ``epochs``. EASE is tuned the same way over
``l2_grid`` (its one parameter, no epochs).

``user_item_triples=True`` trains MF and LightGCN on the interactions joined by the graph's
user-item knowledge triples (a second behaviour, e.g. HetRec Last.fm's tagged artists), as
kgrec does (:func:`kgrec.graph_index.with_user_item_triples`): the same training pairs, so the
two compare like for like on a graph that has them. Seen items, which ranking excludes, stay
the interactions alone.

Seeded (``seed``), device ``"auto"`` (CUDA when present). ``train_seconds_`` is the wall time of
the final fit (tuning excluded, ``tune_seconds_`` holds that), ``seconds_per_epoch_`` the mean
time of a training epoch without evaluation, ``epochs_`` the number of epochs of the final fit.
"""

from __future__ import annotations

import copy
import itertools
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor
from torch_geometric.nn.models import LightGCN
from torch_geometric.nn.models.lightgcn import BPRLoss

from .config import resolve_device
from .errors import ModelError
from .evaluation import evaluate, gather_rows, rows_csr
from .knowledge_graph import KnowledgeGraph
from .optim import adam

DEFAULT_GRID: dict[str, list[float]] = {"lr": [1e-3, 5e-3], "reg": [1e-4, 1e-3]}


def _canonical(kg: KnowledgeGraph) -> tuple[pd.Index, pd.Index]:
    users = pd.Index(np.sort(kg.users["user_id"].astype(str).to_numpy()))
    items = pd.Index(np.sort(kg.items["item_id"].astype(str).to_numpy()))
    return users, items


def _edges(kg: KnowledgeGraph, users: pd.Index, items: pd.Index,
           user_item_triples: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) positions of ``kg``'s interactions, joined, with
    ``user_item_triples``, by its user-item knowledge triples (either way round)."""
    inter = kg.interactions[["user_id", "item_id"]]
    if user_item_triples:
        inter = pd.concat([inter, kg.user_item_triples()[["user_id", "item_id"]]], ignore_index=True)
    u = users.get_indexer(inter["user_id"].astype(str))
    i = items.get_indexer(inter["item_id"].astype(str))
    ok = (u >= 0) & (i >= 0)
    pairs = np.unique(u[ok].astype(np.int64) * len(items) + i[ok])
    return pairs // len(items), pairs % len(items)


class Baseline:
    """Shared plumbing: id spaces, the stored training split, ``evaluate`` and ``recommend``."""

    user_ids: pd.Index
    item_ids: pd.Index
    train_: KnowledgeGraph
    user_item_triples: bool = False

    @staticmethod
    def _check_train(train: object) -> None:
        if not isinstance(train, KnowledgeGraph):
            raise TypeError(f"fit() takes a KnowledgeGraph (got {type(train).__name__}); build one with "
                            "kgrec.from_tables(...) or a loader")

    def _prepare(self, train: KnowledgeGraph) -> tuple[np.ndarray, np.ndarray]:
        self._check_train(train)
        self.user_ids, self.item_ids = _canonical(train)
        self.train_ = train
        u, i = _edges(train, self.user_ids, self.item_ids, self.user_item_triples)
        if len(u) == 0:
            raise ValueError("the training graph has no interactions between its users and items")
        return u, i

    def _check_fitted(self) -> None:
        if not hasattr(self, "train_"):
            raise ModelError(f"{type(self).__name__} is not fitted; call fit(train) first")

    def scorer(self, user_positions: Tensor) -> Tensor:
        """Scores ``[b, len(item_ids)]`` for users at ``user_positions`` in ``user_ids``."""
        raise NotImplementedError

    def evaluate(self, test: KnowledgeGraph, k: int | Sequence[int] = (10, 20),
                 batch_size: int = 1024) -> dict[str, float]:
        """Full-ranking metrics on ``test`` (training items of the fitted split excluded)."""
        self._check_fitted()
        return evaluate(self.scorer, self.train_, test, self.user_ids, self.item_ids, k=k, batch_size=batch_size)

    def recommend(self, users: Sequence[str], k: int = 20) -> pd.DataFrame:
        """Top-``k`` unseen items per user: DataFrame user_id, item_id, score, rank."""
        self._check_fitted()
        pos = self.user_ids.get_indexer(pd.Index([str(u) for u in users]))
        if (pos < 0).any():
            raise KeyError(f"unknown users: {[u for u, p in zip(users, pos) if p < 0][:5]}")
        scores = self.scorer(torch.as_tensor(pos, dtype=torch.long)).float().cpu().clone()
        tu, ti = _edges(self.train_, self.user_ids, self.item_ids)
        row = {p: r for r, p in enumerate(pos)}
        sel = np.isin(tu, pos)
        scores[[row[p] for p in tu[sel]], torch.as_tensor(ti[sel])] = -torch.inf
        top_s, top_i = torch.topk(scores, min(k, scores.shape[1]), dim=1)
        out = []
        for r, u in enumerate(users):
            ok = top_s[r] > -torch.inf
            items = self.item_ids[top_i[r][ok].numpy()]
            out.append(pd.DataFrame({"user_id": str(u), "item_id": items, "score": top_s[r][ok].numpy(),
                                     "rank": np.arange(1, int(ok.sum()) + 1)}))
        return pd.concat(out, ignore_index=True)


class Popularity(Baseline):
    """Most-popular: ``s(u, i)`` = number of training users of ``i``."""

    def fit(self, train: KnowledgeGraph) -> "Popularity":
        t0 = time.perf_counter()
        _, i = self._prepare(train)
        self.popularity_ = torch.bincount(torch.as_tensor(i), minlength=len(self.item_ids)).float()
        self.train_seconds_ = time.perf_counter() - t0
        self.epochs_ = 0
        self.seconds_per_epoch_ = float("nan")
        return self

    def scorer(self, user_positions: Tensor) -> Tensor:
        self._check_fitted()
        return self.popularity_.expand(len(user_positions), -1)


# ---------------------------------------------------------------------- BPR models
class _MF(torch.nn.Module):
    def __init__(self, num_nodes: int, dim: int):
        super().__init__()
        self.embedding = torch.nn.Embedding(num_nodes, dim)
        torch.nn.init.xavier_uniform_(self.embedding.weight)

    def get_embedding(self, adj: Tensor | None = None) -> Tensor:
        return self.embedding.weight


class _NegativeSampler:
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

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("dim", "lr", "reg", "batch_size", "epochs", "grid", "valid_fraction",
                                              "eval_every", "patience", "seed", "device", "verbose",
                                              "user_item_triples")}

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
        for key in ("user_ids", "item_ids", "train_", "module_", "user_emb_", "item_emb_", "train_seconds_",
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
        n_u, n_i = len(self.user_ids), len(self.item_ids)
        module = self._module(n_u, n_i).to(device)
        adj = self._adjacency(u, i, n_u, n_i, device)
        sampler = _NegativeSampler(u, i, n_i, gen)
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
        n_u = len(self.user_ids)
        self.user_emb_, self.item_emb_ = emb[:n_u].detach(), emb[n_u:].detach()

    def scorer(self, user_positions: Tensor) -> Tensor:
        self._check_fitted()
        return self.user_emb_[user_positions.to(self.user_emb_.device)] @ self.item_emb_.T


class MFBPR(BPRBaseline):
    """Matrix factorisation ``s(u, i) = p_u . q_i`` with BPR (module docstring: recipe, tuning)."""

    def _module(self, num_users: int, num_items: int) -> torch.nn.Module:
        return _MF(num_users + num_items, self.dim)


class _SymmetricSpMM(torch.autograd.Function):
    """``A @ x`` for a *symmetric* sparse CSR ``A``; the backward ``A^T @ g`` reuses ``A`` itself
    (torch's generic CSR backward transposes the matrix on every call, ~50x slower on CPU)."""

    @staticmethod
    def forward(ctx: Any, adj: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.adj = adj
        return torch.sparse.mm(adj, x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor]:  # type: ignore[override]
        return None, torch.sparse.mm(ctx.adj, grad)


class _LightGCN(LightGCN):
    """PyG's LightGCN; with a precomputed symmetric ``D^-1/2 A D^-1/2`` (sparse CSR) as
    ``edge_index`` the layers run as :class:`_SymmetricSpMM`, which is what ``LGConv`` computes
    (``x' = D^-1/2 A D^-1/2 x``), with a cheap backward. Any other ``edge_index`` goes to PyG."""

    def get_embedding(self, edge_index: Any, edge_weight: Tensor | None = None) -> Tensor:
        if isinstance(edge_index, Tensor) and edge_index.layout == torch.sparse_csr and edge_weight is None:
            x = self.embedding.weight
            out = x * self.alpha[0]
            for layer in range(self.num_layers):
                x = _SymmetricSpMM.apply(edge_index, x)
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

    def get_params(self) -> dict[str, Any]:
        return {**super().get_params(), "num_layers": self.num_layers}

    def _module(self, num_users: int, num_items: int) -> torch.nn.Module:
        return _LightGCN(num_users + num_items, self.dim, self.num_layers)

    def _adjacency(self, u: np.ndarray, i: np.ndarray, num_users: int, num_items: int,
                   device: torch.device) -> Tensor:
        return normalized_adjacency(u, i, num_users, num_items).to(device)


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
        self.train_seconds_ = time.perf_counter() - t1
        self.epochs_ = 0
        self.seconds_per_epoch_ = float("nan")
        return self

    def _gram(self, train: KnowledgeGraph) -> Tensor:
        """``X^T X`` of ``train`` on the device; keeps each user's training items (``row_starts_``,
        ``row_items_``: CSR rows of ``X``) for scoring."""
        u, i = self._prepare(train)
        n_i = len(self.item_ids)
        if n_i > self.max_items:
            raise ModelError(f"EASE needs dense {n_i:,} x {n_i:,} item matrices (about {4 * n_i * n_i / 2**30:.1f} GiB "
                             f"each) and catalogues up to max_items={self.max_items:,}; raise max_items if the "
                             "memory is there, or use LightGCNBaseline / MFBPR")
        self.row_starts_, self.row_items_ = rows_csr(u, i, len(self.user_ids))
        x = torch.sparse_coo_tensor(torch.as_tensor(np.stack([u, i])), torch.ones(len(u)),
                                    (len(self.user_ids), n_i), check_invariants=True).coalesce()
        return torch.sparse.mm(x.t().coalesce(), x).to_dense().to(resolve_device(self.device))

    def scorer(self, user_positions: Tensor) -> Tensor:
        self._check_fitted()
        rows, items = gather_rows(self.row_starts_, self.row_items_, user_positions.cpu().numpy())
        history = torch.zeros(len(user_positions), len(self.item_ids), device=self.weights_.device)
        history[torch.as_tensor(rows), torch.as_tensor(items)] = 1.0
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


class TextKNN(Baseline):
    """Content-based: user profile = mean LM embedding of their training items, score = cosine.

    ``s(u, i) = cos(p_u, t_i)``, ``p_u = mean_{j in N(u)} t_j`` (``t`` L2-normalised item text
    embeddings); a user with no training items uses their own text embedding ``t_u`` as ``p_u``.
    Text features come from ``train.features`` when present, else from ``encoder`` (a
    :class:`kgrec.text_features.TextEncoder`, default model, cached)."""

    def __init__(self, encoder: Any | None = None, device: str = "auto"):
        self.encoder = encoder
        self.device = device

    def fit(self, train: KnowledgeGraph) -> "TextKNN":
        t0 = time.perf_counter()
        u, i = self._prepare(train)
        feats = train.features
        if feats is None or feats.get("item") is None or feats.get("user") is None:
            from .text_features import TextEncoder, encode_graph

            feats = encode_graph(train, self.encoder or TextEncoder())
        device = resolve_device(self.device)
        item_rows = pd.Index(train.items["item_id"].astype(str)).get_indexer(self.item_ids)
        user_rows = pd.Index(train.users["user_id"].astype(str)).get_indexer(self.user_ids)
        items = torch.nn.functional.normalize(torch.as_tensor(np.asarray(feats["item"])[item_rows]).float(), dim=1)
        users = torch.as_tensor(np.asarray(feats["user"])[user_rows]).float()
        prof = torch.zeros(len(self.user_ids), items.shape[1])
        prof.index_add_(0, torch.as_tensor(u), items[torch.as_tensor(i)])
        has = torch.bincount(torch.as_tensor(u), minlength=len(self.user_ids)) > 0
        prof[~has] = users[~has]
        self.user_emb_ = torch.nn.functional.normalize(prof, dim=1).to(device)
        self.item_emb_ = items.to(device)
        self.train_seconds_ = time.perf_counter() - t0
        self.epochs_ = 0
        self.seconds_per_epoch_ = float("nan")
        return self

    def scorer(self, user_positions: Tensor) -> Tensor:
        self._check_fitted()
        return self.user_emb_[user_positions.to(self.user_emb_.device)] @ self.item_emb_.T


BASELINES: dict[str, Callable[..., Baseline]] = {
    "popularity": Popularity, "mf-bpr": MFBPR, "lightgcn": LightGCNBaseline, "ease": EASE,
    "text-knn": TextKNN,
}
