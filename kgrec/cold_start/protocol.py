"""The cold-start evaluation protocol: hold nodes out of a graph, bring them back as new ones,
and measure how they rank (``benchmarks/cold_start.py`` runs it; the tests check its pieces).

- :func:`remove_nodes` takes items or users out of a graph without a trace (their rows,
  interactions, triples, features and the entities only they named); :func:`node_triples` is
  what such a node brings back;
- :func:`first_interactions` splits each user's interactions into their first ``n`` (given to a
  new user) and the rest (the targets);
- :func:`both_modes` scores held-out items (a) among all unseen items, with the share of top-K
  slots they take (:func:`cold_share`), and (b) among the held-out items only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..evaluation import evaluate
from ..knowledge_graph import KnowledgeGraph

K = 20  # the protocol's cut-off: Recall@20, NDCG@20, top-20 slots


def touching(triples: pd.DataFrame, node_type: str, ids: set[str]) -> np.ndarray:
    """Boolean mask of the triples whose head or tail is one of ``ids`` of ``node_type``."""
    head = (triples["head_type"] == node_type).to_numpy() & triples["head"].isin(ids).to_numpy()
    tail = (triples["tail_type"] == node_type).to_numpy() & triples["tail"].isin(ids).to_numpy()
    return head | tail


def node_triples(kg: KnowledgeGraph, node_type: str, ids: set[str] | list[str]) -> pd.DataFrame:
    """Every triple of ``kg`` that names one of ``ids`` (head or tail): what a new node brings."""
    ids = set(map(str, ids))
    return kg.triples[touching(kg.triples, node_type, ids)].reset_index(drop=True)


def remove_nodes(kg: KnowledgeGraph, node_type: str, ids: set[str] | list[str]) -> KnowledgeGraph:
    """``kg`` without the ``node_type`` nodes ``ids``: their rows, every interaction and triple
    that names them, their feature rows, and the entities that lost their last edge with them
    (entities no triple named before are kept). The result has no trace of those nodes."""
    if node_type not in ("item", "user"):
        raise ValueError("node_type must be 'item' or 'user'")
    ids = set(map(str, ids))
    key = f"{node_type}_id"
    table = kg.items if node_type == "item" else kg.users
    keep_rows = ~table[key].isin(ids).to_numpy()
    inter = kg.interactions[~kg.interactions[key].isin(ids).to_numpy()]
    t = kg.triples
    trip = t[~touching(t, node_type, ids)].reset_index(drop=True)

    def entity_refs(tr: pd.DataFrame) -> set[str]:
        return set(tr.loc[tr["head_type"] == "entity", "head"]) | set(tr.loc[tr["tail_type"] == "entity", "tail"])

    orphaned = entity_refs(t) - entity_refs(trip)
    keep_ents = ~kg.entities["entity_id"].isin(orphaned).to_numpy()
    feats = None
    if kg.features is not None:
        feats = dict(kg.features)
        feats[node_type] = np.asarray(feats[node_type])[keep_rows]
        feats["entity"] = np.asarray(feats["entity"])[keep_ents]
    changes: dict[str, Any] = {"items" if node_type == "item" else "users": table[keep_rows].reset_index(drop=True),
                               "entities": kg.entities[keep_ents].reset_index(drop=True),
                               "triples": trip, "features": feats,
                               "cold_items": frozenset(), "cold_users": frozenset()}
    return kg.with_interactions(inter, **changes)


def first_interactions(inter: pd.DataFrame, n: int = 3) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Split each user's interactions into their first ``n`` and the rest: by timestamp when
    every row has one (ties in table order), else in table (file) order. Returns
    ``(first, rest, order_used)``."""
    df = inter.reset_index(drop=True)
    has_ts = "timestamp" in df.columns and len(df) > 0 and df["timestamp"].notna().all()
    order_key = df["timestamp"].astype("int64").to_numpy() if has_ts else np.zeros(len(df), dtype=np.int64)
    order = np.lexsort((np.arange(len(df)), order_key, pd.factorize(df["user_id"])[0]))
    ranked = df.iloc[order]
    pos = ranked.groupby("user_id", sort=False).cumcount().to_numpy()
    first = ranked[pos < n].reset_index(drop=True)
    rest = ranked[pos >= n].reset_index(drop=True)
    return first, rest, ("timestamp" if has_ts else "file order")


def pairs(df: pd.DataFrame) -> pd.DataFrame:
    """The ``user_id, item_id`` columns of ``df`` as strings."""
    return pd.DataFrame({"user_id": df["user_id"].astype(str).to_numpy(), "item_id": df["item_id"].astype(str).to_numpy()})


def ranking_metrics(user_emb: Tensor | None, item_emb: Tensor | None, user_ids: pd.Index,
                    item_ids: pd.Index, train: pd.DataFrame, test: pd.DataFrame,
                    candidates: list[str] | None = None, scorer: Callable[[Tensor], Tensor] | None = None) -> dict[str, float]:
    """Recall/NDCG@20 (and the rest of :func:`evaluate`'s keys) of dot-product scores (or a
    ``scorer``), each user's ``train`` items excluded, optionally among ``candidates`` only."""
    if scorer is None:
        scorer = lambda u: user_emb[u] @ item_emb.T  # noqa: E731
    return evaluate(scorer, pairs(train), pairs(test), pd.Index(user_ids), pd.Index(item_ids), k=(K,),
                    candidates=candidates)


def cold_share(user_emb: Tensor | None, item_emb: Tensor | None, user_ids: Sequence[str], item_ids: Sequence[str],
               train: pd.DataFrame, users: Sequence[str], cold: Sequence[str],
               scorer: Callable[[Tensor], Tensor] | None = None) -> float:
    """Share of the top-20 slots (mode a: all unseen items) that cold items take, over ``users``.
    For reference: the share of cold items among all items, and of held-out interactions."""
    if scorer is None:
        scorer = lambda u: user_emb[u] @ item_emb.T  # noqa: E731
    user_ids, item_ids = pd.Index(user_ids), pd.Index(item_ids)
    upos = user_ids.get_indexer(pd.Index(users))
    upos = upos[upos >= 0]
    is_cold = torch.as_tensor(item_ids.isin(set(cold)))
    tr = pairs(train)
    tu, ti = user_ids.get_indexer(tr["user_id"]), item_ids.get_indexer(tr["item_id"])
    ok = (tu >= 0) & (ti >= 0)
    row_of = np.full(len(user_ids), -1)
    taken, total = 0, 0
    for start in range(0, len(upos), 1024):
        chunk = upos[start:start + 1024]
        scores = scorer(torch.as_tensor(chunk, dtype=torch.long)).float().clone()
        row_of[chunk] = np.arange(len(chunk))
        sel = ok & np.isin(tu, chunk)
        scores[torch.as_tensor(row_of[tu[sel]]), torch.as_tensor(ti[sel])] = -torch.inf
        row_of[chunk] = -1
        top = torch.topk(scores, min(K, scores.shape[1]), dim=1).indices
        taken += int(is_cold[top].sum())
        total += top.numel()
    return taken / max(1, total)


def both_modes(user_emb: Tensor | None, item_emb: Tensor | None, user_ids: Sequence[str], item_ids: Sequence[str],
               train: pd.DataFrame, test: pd.DataFrame, cold: Sequence[str],
               scorer: Callable[[Tensor], Tensor] | None = None) -> dict[str, dict]:
    """Metrics in mode (a) all unseen items and (b) cold items only; (a) also reports the share
    of top-20 slots that cold items take (``cold_share@20``)."""
    out = {"all": ranking_metrics(user_emb, item_emb, user_ids, item_ids, train, test, scorer=scorer),
           "cold": ranking_metrics(user_emb, item_emb, user_ids, item_ids, train, test, candidates=cold,
                                   scorer=scorer)}
    users = sorted(set(test["user_id"].astype(str)))
    out["all"]["cold_share@20"] = cold_share(user_emb, item_emb, user_ids, item_ids, train, users, cold, scorer)
    return out




def popularity_scorer(counts: np.ndarray, seed: int = 0) -> Callable[[Tensor], Tensor]:
    """Interaction counts plus a seeded random tie-break below 1 (a random order among equals)."""
    rng = np.random.default_rng(seed)
    s = torch.as_tensor(counts + rng.random(len(counts)) * 0.5, dtype=torch.float32)
    return lambda u: s.unsqueeze(0).expand(len(u), -1)


def item_counts(item_ids: pd.Index, inter: pd.DataFrame) -> np.ndarray:
    """Training interactions per item of ``item_ids`` (float)."""
    pos = item_ids.get_indexer(inter["item_id"].astype(str))
    return np.bincount(pos[pos >= 0], minlength=len(item_ids)).astype(np.float64)
