"""Splitting a graph's interactions into train / valid / test: random, temporal, cold items, cold users.

Every part keeps all nodes and knowledge edges; only the interactions are divided
(:meth:`kgrec.KnowledgeGraph.split` calls :func:`split_graph`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .errors import DataError
from .knowledge_graph import KnowledgeGraph, SplitKind, isin


def split_graph(kg: KnowledgeGraph, kind: SplitKind = "random", test: float = 0.2, valid: float = 0.0,
                seed: int = 0) -> tuple[KnowledgeGraph, ...]:
    """``(train, test)`` or, with ``valid > 0``, ``(train, valid, test)`` of ``kg``: see
    :meth:`kgrec.KnowledgeGraph.split` for the kinds. Deterministic for a given ``seed``."""
    if kind not in ("random", "temporal", "cold_items", "cold_users"):
        raise DataError("KnowledgeGraph.split", None, f"unknown split kind '{kind}'",
                        "use 'random', 'temporal', 'cold_items' or 'cold_users'")
    if not 0.0 < test < 1.0 or not 0.0 <= valid < 1.0 or test + valid >= 1.0:
        raise DataError("KnowledgeGraph.split", None, f"split fractions test={test}, valid={valid} are out of range",
                        "use 0 < test < 1, 0 <= valid < 1 and test + valid < 1 (e.g. test=0.2)")
    inter = kg.interactions
    rng = np.random.default_rng(seed)
    n = len(inter)
    part = np.zeros(n, dtype=np.int8)  # 0 train, 1 valid, 2 test
    if kind in ("random", "temporal"):
        if kind == "temporal":
            ts = inter["timestamp"]
            if ts.isna().any():
                raise DataError("interactions", int(np.flatnonzero(ts.isna().to_numpy())[0]),
                                f"the temporal split needs a timestamp on every interaction "
                                f"({int(ts.isna().sum())} are missing)",
                                "give every interaction a timestamp, or use split('random')")
            order_key = ts.to_numpy(dtype=np.int64).astype(np.float64) + rng.random(n) * 1e-3
            order_key = -order_key  # latest first
        else:
            order_key = rng.random(n)
        users = inter["user_id"].to_numpy()
        codes, _ = pd.factorize(users)
        order = np.lexsort((order_key, codes))
        sizes = np.bincount(codes)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n) - np.repeat(starts, sizes)
        size_of = sizes[codes]
        n_test = np.minimum(np.floor(size_of * test + 0.5).astype(np.int64), size_of - 1)
        n_valid = np.minimum(np.floor(size_of * valid + 0.5).astype(np.int64), size_of - 1 - n_test)
        part[rank < n_test] = 2
        part[(rank >= n_test) & (rank < n_test + n_valid)] = 1
        held_items: frozenset[str] = frozenset()
        held_users: frozenset[str] = frozenset()
    elif kind in ("cold_items", "cold_users"):
        col = "item_id" if kind == "cold_items" else "user_id"
        ids = np.sort(pd.unique(inter[col].to_numpy()).astype(str))
        perm = rng.permutation(len(ids))
        n_test = int(round(len(ids) * test))
        n_valid = int(round(len(ids) * valid))
        test_ids = set(ids[perm[:n_test]].tolist())
        valid_ids = set(ids[perm[n_test:n_test + n_valid]].tolist())
        vals = inter[col]
        part[isin(vals, test_ids).to_numpy()] = 2
        part[isin(vals, valid_ids).to_numpy()] = 1
        held = frozenset(test_ids | valid_ids)
        held_items = held if kind == "cold_items" else frozenset()
        held_users = held if kind == "cold_users" else frozenset()
    else:  # pragma: no cover - checked above
        raise AssertionError(kind)
    extra = {"cold_items": held_items | kg.cold_items, "cold_users": held_users | kg.cold_users}
    train = kg.with_interactions(inter[part == 0], **extra)
    test_kg = kg.with_interactions(inter[part == 2], **extra)
    if valid > 0:
        return train, kg.with_interactions(inter[part == 1], **extra), test_kg
    return train, test_kg
