"""kgrec.ranking: chunked top-k with seen-item masking and candidate pools, checked against a
dense brute-force ranking."""

from __future__ import annotations

import numpy as np
import torch

from kgrec.ranking import SeenItems, topk


def _brute(user_emb, item_emb, users, k, seen_pairs, candidates=None):
    scores = user_emb[users] @ item_emb.T
    for row, u in enumerate(users.tolist()):
        for i in seen_pairs.get(u, ()):
            scores[row, i] = float("-inf")
    if candidates is not None:
        mask = torch.full_like(scores, float("-inf"))
        mask[:, candidates] = 0
        scores = scores + mask
    return torch.topk(scores, k, dim=1)


def test_topk_matches_brute_force_with_seen_masking_and_chunks():
    g = torch.Generator().manual_seed(0)
    U, I = torch.randn(37, 8, generator=g), torch.randn(50, 8, generator=g)
    rng = np.random.default_rng(0)
    pairs = {u: sorted(set(rng.integers(0, 50, size=rng.integers(0, 12)).tolist())) for u in range(37)}
    up = np.array([u for u, items in pairs.items() for _ in items], dtype=np.int64)
    ip = np.array([i for items in pairs.values() for i in items], dtype=np.int64)
    seen = SeenItems(up, ip, 37)
    users = torch.arange(37)
    s, i = topk(lambda u: U[u] @ I.T, users, 10, len(I), seen=seen, batch_size=7)  # several chunks
    bs, bi = _brute(U, I, users, 10, pairs)
    assert torch.equal(i, bi)
    assert torch.allclose(s, bs)
    for u in range(37):
        assert not set(i[u].tolist()) & set(pairs[u])


def test_topk_candidates_only_and_seen_candidates_dropped():
    g = torch.Generator().manual_seed(1)
    U, I = torch.randn(5, 4, generator=g), torch.randn(20, 4, generator=g)
    cands = torch.tensor([3, 7, 11, 19])
    seen = SeenItems(np.array([0, 0]), np.array([7, 2]), 5)
    s, i = topk(lambda u: U[u] @ I[cands].T, torch.arange(5), 10, len(I), seen=seen, candidates=cands)
    assert s.shape == (5, 4)  # k is capped at the candidate count
    assert set(i[1].tolist()) == {3, 7, 11, 19}
    row0 = [int(x) for x, sc in zip(i[0], s[0]) if torch.isfinite(sc)]
    assert sorted(row0) == [3, 11, 19]  # 7 is seen by user 0 and masked; 2 is no candidate anyway


def test_seen_items_of_users_in_any_order_and_without_items():
    seen = SeenItems(np.array([0, 1, 1, 3]), np.array([2, 0, 1, 4]), 4)
    rows, cols = seen.mask_coords(torch.tensor([1, 3, 2]))  # not a run: the general gather
    assert rows.tolist() == [0, 0, 1] and cols.tolist() == [0, 1, 4]
    rows, cols = seen.mask_coords(torch.tensor([1, 2, 3]))  # a run of consecutive users: one slice
    assert rows.tolist() == [0, 0, 2] and cols.tolist() == [0, 1, 4]
