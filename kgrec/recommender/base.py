"""What every recommender of kgrec shares: ids, ranking, evaluation, parameters and errors.

:class:`RecommenderBase` is the base of :class:`kgrec.Recommender` and of every baseline in
:mod:`kgrec.baselines`, so they answer the same calls the same way:

- ``recommend(users, k, candidates=None, exclude_seen=True)``: top-``k`` per user as a
  DataFrame ``user_id, item_id, score, rank``, in the caller's ids, each user's training items
  excluded (:func:`kgrec.ranking.topk`);
- ``evaluate(test, k)``: full-ranking metrics (:func:`kgrec.evaluation.evaluate`);
- ``score(users, items)``: the scores of given pairs;
- ``user_ids()`` / ``item_ids()``; an unknown id raises :class:`kgrec.errors.UnknownIdError`,
  an unfitted model :class:`kgrec.errors.ModelError`;
- ``get_params()`` / ``set_params(**params)`` in scikit-learn's convention (the keyword
  arguments of ``__init__``), so ``sklearn.base.clone`` and grid searches work.

A subclass's ``fit`` sets ``user_index_`` and ``item_index_`` (``pandas.Index`` of string ids,
positions in order) and ``graph_`` (the training graph: its interactions are the seen items)
through :meth:`RecommenderBase._set_index`, and implements :meth:`RecommenderBase.scorer`.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch
from torch import Tensor

from ..errors import ModelError, UnknownIdError
from ..knowledge_graph import KnowledgeGraph
from ..ranking import SeenItems, topk

_STR = pd.Series([""], dtype=str).dtype  # the dtype pandas gives strings (Arrow-backed ``str`` in pandas 3)


class RecommenderBase:
    """Shared ranking, evaluation and parameter handling (see the module docstring)."""

    user_index_: pd.Index
    item_index_: pd.Index
    graph_: KnowledgeGraph
    holdout_: pd.DataFrame | None = None

    # ------------------------------------------------------------------ parameters
    @classmethod
    def _init_parameters(cls) -> dict[str, inspect.Parameter]:
        """The keyword arguments of ``__init__`` (and of the parents it passes ``**kwargs`` to),
        by name."""
        found: dict[str, inspect.Parameter] = {}
        for klass in cls.__mro__:
            init = klass.__dict__.get("__init__")
            if init is None:
                continue
            params = list(inspect.signature(init).parameters.values())[1:]
            for p in params:
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                    found.setdefault(p.name, p)
            if not any(p.kind == p.VAR_KEYWORD for p in params):
                break
        return found

    @classmethod
    def _param_names(cls) -> list[str]:
        return sorted(cls._init_parameters())

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's keyword arguments as set on this object (scikit-learn convention)."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> "RecommenderBase":
        """Set constructor arguments by name (scikit-learn convention); an unknown name is an
        error that lists the known ones. Takes effect at the next ``fit``. Returns ``self``."""
        known = set(self._param_names())
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"{type(self).__name__} has no parameter(s) {unknown}; known: {sorted(known)}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {n: p.default for n, p in self._init_parameters().items()}
        changed = [f"{n}={v!r}" for n, v in self.get_params().items() if defaults[n] != v]
        return f"{type(self).__name__}({', '.join(changed)})"

    # ------------------------------------------------------------------ ids
    def _check_fitted(self) -> None:
        if not hasattr(self, "item_index_"):
            raise ModelError(f"this {type(self).__name__} is not fitted yet. Fix: call fit(train) first")

    def user_ids(self) -> list[str]:
        """The users the model can rank for, in position order."""
        self._check_fitted()
        return self.user_index_.tolist()

    def item_ids(self) -> list[str]:
        """The items the model ranks, in position order."""
        self._check_fitted()
        return self.item_index_.tolist()

    def _user_positions(self, users: Sequence[Any] | str | int) -> tuple[list[str], Tensor]:
        if isinstance(users, (str, int, np.integer)):
            users = [users]
        ids = [str(u) for u in users]
        if self._user_lookup is None:  # a dict: far cheaper than Index.get_indexer for a few ids
            self._user_lookup = {u: i for i, u in enumerate(self.user_index_.tolist())}
        lookup = self._user_lookup
        pos = np.fromiter((lookup.get(u, -1) for u in ids), dtype=np.int64, count=len(ids))
        if (pos < 0).any():
            missing = [ids[j] for j in np.flatnonzero(pos < 0)[:5]]
            raise UnknownIdError(f"unknown user id(s) {missing} ({int((pos < 0).sum())} in all). "
                                 "Fix: add new users with rec.add_users(users=..., interactions=...) first")
        return ids, torch.as_tensor(pos, dtype=torch.long)

    def _item_positions(self, items: Sequence[Any], what: str = "item") -> Tensor:
        ids = [str(i) for i in items]
        pos = self.item_index_.get_indexer(ids)
        if (pos < 0).any():
            missing = [ids[j] for j in np.flatnonzero(pos < 0)[:5]]
            raise UnknownIdError(f"unknown {what} id(s) {missing} ({int((pos < 0).sum())} in all). "
                                 "Fix: add new items with rec.add_items(items=...) first")
        return torch.as_tensor(pos, dtype=torch.long)

    def _set_index(self, user_index: pd.Index, item_index: pd.Index, graph: KnowledgeGraph) -> None:
        """Set the id spaces and the training graph, dropping what was cached from the old ones."""
        self.user_index_, self.item_index_, self.graph_ = user_index, item_index, graph
        self.seen_: SeenItems | None = None
        self._item_ids_arrow: pa.Array | None = None
        self._user_lookup: dict[str, int] | None = None

    def seen_items(self) -> SeenItems:
        """Each user's items in ``graph_``'s interactions (the seen items ranking excludes)."""
        seen = self.seen_
        if seen is None:
            inter = self.graph_.interactions
            u = self.user_index_.get_indexer(inter["user_id"].astype(str))
            i = self.item_index_.get_indexer(inter["item_id"].astype(str))
            ok = (u >= 0) & (i >= 0)
            seen = self.seen_ = SeenItems(u[ok], i[ok], len(self.user_index_))
        return seen

    # ------------------------------------------------------------------ scoring
    def scorer(self, user_positions: Tensor) -> Tensor:
        """Scores ``[b, len(item_ids)]`` of the users at ``user_positions`` for every item, in
        ``item_index_`` order (the scorer :func:`kgrec.evaluation.evaluate` takes)."""
        raise NotImplementedError

    def _ranking_scorer(self):
        """The scorer :meth:`evaluate` ranks with (subclasses may score on a GPU there)."""
        return self.scorer

    def _block_scorer(self, candidates: Tensor | None):
        """``f(user_positions) -> [b, C]``: scores against ``candidates`` (item positions), or
        every item. Subclasses with embeddings multiply by a cached item matrix here."""
        if candidates is None:
            return lambda u: self.scorer(u).float().cpu().clone(memory_format=torch.contiguous_format)
        return lambda u: self.scorer(u).float().cpu()[:, candidates]

    def recommend(self, users: Sequence[Any] | str | int, k: int = 20, candidates: Sequence[Any] | None = None,
                  exclude_seen: bool = True, batch_size: int = 2048) -> pd.DataFrame:
        """Top-``k`` items per user: DataFrame ``user_id, item_id, score, rank`` (rank 1 =
        best) in the caller's ids. ``candidates`` restricts the ranking to those items;
        ``exclude_seen`` drops items the user interacted with in training. Users are ranked in
        chunks of ``batch_size``, so memory is ``batch_size x items`` scores at a time."""
        self._check_fitted()
        if k <= 0:
            raise ValueError(f"k must be positive (got {k})")
        ids, pos = self._user_positions(users)
        cand = None
        if candidates is not None:
            cand = self._item_positions(list(dict.fromkeys(str(c) for c in candidates)), "candidate item")
            if len(cand) == 0:
                raise ValueError("candidates is empty; pass at least one item id")
        scores, items = topk(self._block_scorer(cand), pos, k, len(self.item_index_),
                             seen=self.seen_items() if exclude_seen else None, candidates=cand, batch_size=batch_size)
        kk = scores.shape[1]
        flat_scores = scores.reshape(-1).numpy()
        item_pos = items.reshape(-1).numpy()
        user_row = np.repeat(np.arange(len(ids)), kk)
        rank = np.tile(np.arange(1, kk + 1), len(ids))
        keep = np.isfinite(flat_scores)
        if not keep.all():
            flat_scores, item_pos, user_row, rank = flat_scores[keep], item_pos[keep], user_row[keep], rank[keep]
        # ids gathered as Arrow strings: no Python object per row
        user_col = pa.array(ids, type=pa.string()).take(pa.array(user_row))
        item_col = self._item_id_arrow().take(pa.array(item_pos))
        return pd.DataFrame({"user_id": pd.array(user_col, dtype=_STR), "item_id": pd.array(item_col, dtype=_STR),
                             "score": flat_scores.astype(np.float64), "rank": rank})

    def _item_id_arrow(self) -> pa.Array:
        if self._item_ids_arrow is None:
            self._item_ids_arrow = pa.array(self.item_index_.to_numpy(dtype=object), type=pa.string())
        return self._item_ids_arrow

    def score(self, users: Sequence[Any] | str, items: Sequence[Any] | str) -> pd.DataFrame:
        """Scores of given (user, item) pairs: ``users`` and ``items`` of equal length, or one
        user with many items. Returns ``user_id, item_id, score``."""
        self._check_fitted()
        users = [users] if isinstance(users, (str, int)) else list(users)
        items = [items] if isinstance(items, (str, int)) else list(items)
        if len(users) == 1 and len(items) > 1:
            users = users * len(items)
        if len(users) != len(items):
            raise ValueError(f"score() needs as many users as items (got {len(users)} and {len(items)}), "
                             "or one user")
        _, upos = self._user_positions(users)
        ipos = self._item_positions(items)
        s = self._pair_scores(upos, ipos)
        return pd.DataFrame({"user_id": [str(u) for u in users], "item_id": [str(i) for i in items],
                             "score": s.numpy().astype(np.float64)})

    def _pair_scores(self, upos: Tensor, ipos: Tensor) -> Tensor:
        """Scores ``[n]`` of the pairs ``(upos[j], ipos[j])``."""
        return self.scorer(upos).float().cpu().gather(1, ipos.unsqueeze(1)).squeeze(1)

    def evaluate(self, test: KnowledgeGraph | pd.DataFrame | None, k: int | Sequence[int] = (10, 20),
                 candidates: Sequence[Any] | None = None, batch_size: int = 1024) -> dict[str, float]:
        """Full-ranking Recall / NDCG / Precision / HitRate / MRR / Coverage @k on ``test``
        (a KnowledgeGraph from ``split`` or a ``user_id, item_id`` table), each user's training
        items excluded (:func:`kgrec.evaluation.evaluate`). ``None`` uses the hold-out
        remembered by ``kgrec train`` and ``kgrec quickstart``. A test set none of whose users the
        model knows raises :class:`kgrec.errors.UnknownIdError` (its metrics would all be 0)."""
        from ..evaluation import evaluate as eval_ranking

        self._check_fitted()
        if test is None:
            if self.holdout_ is None:
                raise ModelError("no test set given and none was held out at training. Fix: pass test")
            test = self.holdout_
        cand = None if candidates is None else self.item_index_.get_indexer([str(c) for c in candidates])
        out = eval_ranking(self._ranking_scorer(), self.graph_, test, self.user_index_, self.item_index_, k=k,
                           candidates=cand, batch_size=batch_size)
        if out["users_evaluated"] == 0 and out["users_skipped_unknown"] > 0:
            raise UnknownIdError(f"none of the test set's {out['users_skipped_unknown']} users is known to the model, "
                                 "so there is nothing to evaluate. Fix: evaluate on interactions of the users it "
                                 "was trained on (add new users with add_users first)")
        return out
