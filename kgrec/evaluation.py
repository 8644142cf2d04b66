"""Full-ranking evaluation of a recommender: Recall, NDCG, Precision, HitRate, MRR @k and
catalogue coverage.

Protocol (the one of NGCF / LightGCN / KGAT): for every test user, *every* item is scored, the
user's training items are removed from the ranking (score set to ``-inf``), and the top ``k``
of what remains is compared with the user's test items. Only users with at least one test
interaction count; metrics are averaged over those users. Work is done in chunks of
``batch_size`` users so that memory stays at ``batch_size x num_items`` scores.

Definitions, for a user ``u`` with test items ``T_u`` (binary relevance) and ranked list
``r_1..r_k`` (``hit_j = 1`` if ``r_j`` is in ``T_u``)::

    Recall@k    = sum_j hit_j / |T_u|                       (denominator |T_u|, not min(|T_u|, k))
    Precision@k = sum_j hit_j / k
    HitRate@k   = 1 if sum_j hit_j > 0 else 0
    MRR@k       = 1 / (first j with hit_j = 1), 0 if none
    NDCG@k      = DCG / IDCG,  DCG = sum_j hit_j / log2(j + 1),
                  IDCG = sum_{j=1..min(|T_u|, k)} 1 / log2(j + 1)
    Coverage@k  = |union over evaluated users of their top-k| / number of rankable items

These are the definitions of the LightGCN and KGAT reference code (``recall = hits / |test|``,
NDCG with binary relevance and the ideal list truncated at ``min(|test|, k)``), and they are
exactly what PyG 2.8's ``torch_geometric.metrics`` compute in their unweighted form
(``LinkPredRecall`` divides by the label count, ``LinkPredNDCG`` indexes its IDCG table by
``min(label_count, k)``), so the per-user metrics come from PyG. Coverage is computed here
(one ``unique``) because rows shorter than ``k`` are padded and PyG's ``LinkPredCoverage``
would count the padding; its definition is the same.

Result keys: ``recall@k``, ``ndcg@k``, ``precision@k``, ``hit_rate@k``, ``mrr@k``,
``coverage@k`` for each ``k``, and the bookkeeping counts ``users_evaluated``,
``users_skipped_unknown`` (test users not in ``user_ids``), ``test_interactions``
(the test pairs used), ``test_interactions_skipped_unknown_item`` (item not in ``item_ids``),
``test_interactions_skipped_not_candidate`` and ``test_interactions_skipped_in_train``
(a test pair that is also a training pair can never be ranked, so it is dropped and counted).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from .graph.csr import gather_rows, rows_csr
from .graph.pyg import (LinkPredHitRatio, LinkPredMetricCollection, LinkPredMRR, LinkPredNDCG, LinkPredPrecision,
                        LinkPredRecall)
from .knowledge_graph import KnowledgeGraph

Scorer = Callable[[Tensor], Tensor]
"""``scorer(user_positions: LongTensor[b]) -> Tensor[b, len(item_ids)]``: scores, in
``item_ids`` order, for users given by their positions in ``user_ids``."""

METRIC_NAMES = ("recall", "ndcg", "precision", "hit_rate", "mrr", "coverage")
_PYG_METRICS = {"recall": LinkPredRecall, "ndcg": LinkPredNDCG, "precision": LinkPredPrecision,
                "hit_rate": LinkPredHitRatio, "mrr": LinkPredMRR}


def _ks(k: int | Iterable[int]) -> tuple[int, ...]:
    ks = (int(k),) if isinstance(k, (int, np.integer)) else tuple(int(x) for x in k)
    if not ks or any(x <= 0 for x in ks):
        raise ValueError(f"k must be a positive integer or a non-empty list of them (got {k!r})")
    return tuple(sorted(set(ks)))


def _pairs(table: KnowledgeGraph | pd.DataFrame, what: str) -> pd.DataFrame:
    df = table.interactions if isinstance(table, KnowledgeGraph) else table
    missing = [c for c in ("user_id", "item_id") if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: columns {missing} are missing (columns: {list(df.columns)})")
    return pd.DataFrame({"user_id": df["user_id"].astype(str).to_numpy(),
                         "item_id": df["item_id"].astype(str).to_numpy()}).drop_duplicates()


class _Accumulator:
    """PyG link-prediction metrics over padded top-k index matrices, plus coverage."""

    def __init__(self, ks: tuple[int, ...], num_items: int, device: torch.device):
        self.ks = ks
        self.num_items = num_items
        self.collection = LinkPredMetricCollection(
            {f"{name}@{k}": cls(k) for k in ks for name, cls in _PYG_METRICS.items()}).to(device)
        self.seen = {k: torch.zeros(num_items + 1, dtype=torch.bool, device=device) for k in ks}

    def update(self, topk: Tensor, label_index: Tensor) -> None:
        """``topk`` [b, max k] item indices, ``num_items`` marks padding; ``label_index`` [2, n]
        (row within the chunk, item index)."""
        self.collection.update(topk, label_index)
        for k in self.ks:
            self.seen[k][topk[:, :k].reshape(-1)] = True

    def compute(self) -> dict[str, float]:
        out = {name: float(v) for name, v in self.collection.compute().items()}
        for k in self.ks:
            out[f"coverage@{k}"] = float(self.seen[k][: self.num_items].sum()) / max(1, self.num_items)
        return {f"{m}@{k}": out[f"{m}@{k}"] for k in self.ks for m in METRIC_NAMES}


@torch.no_grad()
def evaluate(
    scorer: Scorer,
    train: KnowledgeGraph | pd.DataFrame,
    test: KnowledgeGraph | pd.DataFrame,
    user_ids: pd.Index,
    item_ids: pd.Index,
    k: int | Sequence[int] = (10, 20),
    batch_size: int = 1024,
    candidates: Sequence[str] | np.ndarray | Tensor | None = None,
) -> dict[str, float]:
    """Full-ranking metrics of ``scorer`` on ``test`` (definitions in the module docstring).

    Args:
        scorer: ``scorer(user_positions: LongTensor[b]) -> Tensor[b, len(item_ids)]``; positions
            index ``user_ids``; columns follow ``item_ids``. Higher is better. The returned
            tensor may be on any device; the ranking runs there.
        train: the training interactions (a KnowledgeGraph or a DataFrame with user_id, item_id);
            each user's training items are excluded from their ranking.
        test: the held-out interactions to find.
        user_ids, item_ids: the scorer's id spaces (the caller's string ids).
        k: one cut-off or several.
        batch_size: users scored per chunk (memory is ``batch_size x len(item_ids)`` floats).
        candidates: if given, rank only among these items (others are excluded like training
            items); test pairs whose item is not a candidate are dropped and counted, and
            coverage is relative to the candidates. Item ids (a list of strings), or positions
            in ``item_ids`` as an integer ``numpy`` array or ``LongTensor``.

    Returns:
        ``{'recall@10': ..., 'ndcg@10': ..., 'precision@10': ..., 'hit_rate@10': ...,
        'mrr@10': ..., 'coverage@10': ..., ..., 'users_evaluated': n, ...}``.

    Raises:
        ValueError: on a scorer output of the wrong shape, or NaN scores.
    """
    ks = _ks(k)
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive (got {batch_size})")
    user_ids = pd.Index(user_ids.astype(str))
    item_ids = pd.Index(item_ids.astype(str))
    if not user_ids.is_unique or not item_ids.is_unique:
        raise ValueError("user_ids and item_ids must be unique")
    n_users, n_items = len(user_ids), len(item_ids)
    max_k = max(ks)

    test_df = _pairs(test, "test")
    train_df = _pairs(train, "train")
    counts: dict[str, float] = {}

    tu = user_ids.get_indexer(test_df["user_id"])
    ti = item_ids.get_indexer(test_df["item_id"])
    unknown_user = tu < 0
    unknown_item = (ti < 0) & ~unknown_user
    counts["users_skipped_unknown"] = int(test_df.loc[unknown_user, "user_id"].nunique())
    counts["test_interactions_skipped_unknown_item"] = int(unknown_item.sum())
    keep = ~unknown_user & ~unknown_item

    cand_mask: np.ndarray | None = None
    if candidates is not None:
        as_positions = isinstance(candidates, Tensor) or (
            isinstance(candidates, np.ndarray) and np.issubdtype(candidates.dtype, np.integer))
        if as_positions:
            cand_pos = np.asarray(candidates.cpu() if isinstance(candidates, Tensor) else candidates, dtype=np.int64)
            if ((cand_pos < 0) | (cand_pos >= n_items)).any():
                raise ValueError(f"candidate positions must lie in [0, {n_items}) (got "
                                 f"{cand_pos[(cand_pos < 0) | (cand_pos >= n_items)][:5].tolist()}); "
                                 "pass item ids the model was fitted on")
        else:
            cand_pos = item_ids.get_indexer(pd.Index([str(c) for c in candidates]))
            if (cand_pos < 0).any():
                bad = [str(c) for c, p in zip(candidates, cand_pos) if p < 0][:5]
                raise ValueError(f"{int((cand_pos < 0).sum())} candidates are not known items (e.g. {bad}); "
                                 "pass item ids the model was fitted on")
        cand_mask = np.zeros(n_items, dtype=bool)
        cand_mask[cand_pos] = True
        not_cand = keep & ~cand_mask[np.where(ti < 0, 0, ti)]
        counts["test_interactions_skipped_not_candidate"] = int(not_cand.sum())
        keep &= ~not_cand
    else:
        counts["test_interactions_skipped_not_candidate"] = 0

    ru = user_ids.get_indexer(train_df["user_id"])
    ri = item_ids.get_indexer(train_df["item_id"])
    known = (ru >= 0) & (ri >= 0)
    ru, ri = ru[known], ri[known]
    # a test pair that is also a training pair is masked out of the ranking: drop it, count it
    train_keys = pd.Index(ru.astype(np.int64) * n_items + ri)
    test_keys = tu.astype(np.int64) * n_items + ti
    in_train = keep & pd.Index(test_keys).isin(train_keys)
    counts["test_interactions_skipped_in_train"] = int(in_train.sum())
    keep &= ~in_train
    tu, ti = tu[keep], ti[keep]
    counts["test_interactions"] = int(len(tu))

    eval_users = np.unique(tu)
    counts["users_evaluated"] = int(len(eval_users))
    n_rankable = int(cand_mask.sum()) if cand_mask is not None else n_items
    if len(eval_users) == 0:
        return {**{f"{m}@{k_}": 0.0 for k_ in ks for m in METRIC_NAMES}, **counts}

    train_ptr, train_idx = rows_csr(torch.as_tensor(ru), torch.as_tensor(ri), n_users)
    test_ptr, test_idx = rows_csr(torch.as_tensor(tu), torch.as_tensor(ti), n_users)
    acc: _Accumulator | None = None
    excluded_extra = torch.as_tensor(~cand_mask) if cand_mask is not None else None

    for start in range(0, len(eval_users), batch_size):
        users = eval_users[start:start + batch_size]
        scores = scorer(torch.as_tensor(users, dtype=torch.long))
        if not isinstance(scores, Tensor) or scores.shape != (len(users), n_items):
            shape = tuple(scores.shape) if isinstance(scores, Tensor) else type(scores).__name__
            raise ValueError(f"scorer returned {shape} for {len(users)} users; expected "
                             f"({len(users)}, {n_items}) scores in item_ids order")
        device = scores.device
        if acc is None:
            acc = _Accumulator(ks, n_items, device)
            if excluded_extra is not None:
                excluded_extra = excluded_extra.to(device)
        keep_dtype = scores.dtype in (torch.float32, torch.float64)
        scores = scores.detach().clone() if keep_dtype else scores.detach().float()
        if torch.isnan(scores).any():
            raise ValueError("scorer returned NaN scores; the model has diverged or was not fitted")
        rows, entry = gather_rows(train_ptr, torch.as_tensor(users))
        if len(rows):
            scores[rows.to(device), train_idx[entry].to(device)] = -torch.inf
        if excluded_extra is not None:
            scores[:, excluded_extra] = -torch.inf
        kk = min(max_k, n_items)
        top_scores, top = torch.topk(scores, kk, dim=1)
        top = top.masked_fill(top_scores == -torch.inf, n_items)  # excluded items pad the list
        if kk < max_k:
            top = torch.cat([top, top.new_full((len(users), max_k - kk), n_items)], 1)
        lrows, lentry = gather_rows(test_ptr, torch.as_tensor(users))
        label = torch.stack([lrows, test_idx[lentry]]).to(device)
        acc.update(top, label)

    assert acc is not None
    out = acc.compute()
    if cand_mask is not None:
        for k_ in ks:  # coverage relative to the candidates
            out[f"coverage@{k_}"] = out[f"coverage@{k_}"] * n_items / max(1, n_rankable)
    return {**out, **counts}


def metrics_from_topk(
    topk: pd.DataFrame,
    test: KnowledgeGraph | pd.DataFrame,
    k: int | Sequence[int] = 20,
    num_items: int | None = None,
) -> dict[str, float]:
    """The same metrics from a ``recommend()`` output (columns user_id, item_id, rank; rank 1 is
    the best) and the test interactions. Cross-checks :func:`evaluate` from the outside.

    Every user with a test interaction is evaluated; a user missing from ``topk`` (or with
    fewer than ``k`` rows) counts with an empty (short) list. Coverage needs ``num_items``
    (the catalogue size) and is NaN without it. ``topk`` rows with ``rank > k`` are ignored.
    """
    ks = _ks(k)
    max_k = max(ks)
    for col in ("user_id", "item_id", "rank"):
        if col not in topk.columns:
            raise ValueError(f"topk: column '{col}' is missing (columns: {list(topk.columns)})")
    test_df = _pairs(test, "test")
    users = pd.Index(pd.unique(test_df["user_id"]))
    rec = topk[["user_id", "item_id", "rank"]].copy()
    rec["user_id"] = rec["user_id"].astype(str)
    rec["item_id"] = rec["item_id"].astype(str)
    rank = pd.to_numeric(rec["rank"], errors="coerce")
    if rank.isna().any() or (rank < 1).any() or (rank % 1 != 0).any():
        raise ValueError("topk: rank must be an integer >= 1 (rank 1 is the best item)")
    rec["rank"] = rank.astype(np.int64)
    rec = rec[rec["user_id"].isin(users) & (rec["rank"] <= max_k)]
    if rec.duplicated(["user_id", "item_id"]).any() or rec.duplicated(["user_id", "rank"]).any():
        raise ValueError("topk lists an item (or a rank) twice for the same user")
    items = pd.Index(pd.unique(pd.concat([test_df["item_id"], rec["item_id"]], ignore_index=True)))
    pad = len(items)
    top = np.full((len(users), max_k), pad, dtype=np.int64)
    row = users.get_indexer(rec["user_id"])
    col = rec["rank"].to_numpy() - 1
    top[row, col] = items.get_indexer(rec["item_id"])
    label = np.stack([users.get_indexer(test_df["user_id"]), items.get_indexer(test_df["item_id"])])
    acc = _Accumulator(ks, pad, torch.device("cpu"))
    acc.update(torch.as_tensor(top), torch.as_tensor(label, dtype=torch.long))
    out = acc.compute()
    for k_ in ks:
        n_rec = rec.loc[rec["rank"] <= k_, "item_id"].nunique()
        out[f"coverage@{k_}"] = n_rec / num_items if num_items else float("nan")
    out["users_evaluated"] = int(len(users))
    out["test_interactions"] = int(len(test_df))
    return out
