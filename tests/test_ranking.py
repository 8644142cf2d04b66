"""kgrec.ranking: chunked top-k with seen-item masking and candidate pools, checked against a
dense brute-force ranking."""

from __future__ import annotations

import numpy as np
import pytest
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


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (runs on a GPU machine)")
def test_topk_on_cuda_scores_equals_the_cpu_ranking():
    """A scorer that computes on the GPU: masking and top-k run there, in chunks, and the result
    (on the CPU) is the CPU ranking's."""
    g = torch.Generator().manual_seed(2)
    U, I = torch.randn(300, 16, generator=g), torch.randn(500, 16, generator=g)
    rng = np.random.default_rng(2)
    up = rng.integers(0, 300, size=3000)
    ip = rng.integers(0, 500, size=3000)
    keep = np.unique(up * 500 + ip)
    seen = SeenItems(keep // 500, keep % 500, 300)
    Ug, Ig = U.cuda(), I.cuda()
    users = torch.tensor(rng.permutation(300))
    cands = torch.tensor(np.sort(rng.choice(500, size=120, replace=False)))
    for candidates, pool, pool_g in ((None, I, Ig), (cands, I[cands], Ig[cands.cuda()])):
        s, i = topk(lambda u: U[u] @ pool.T, users, 20, 500, seen=seen, candidates=candidates, batch_size=64)
        sg, ig = topk(lambda u: Ug[u.cuda()] @ pool_g.T, users, 20, 500, seen=seen, candidates=candidates,
                      batch_size=64)
        assert sg.device.type == "cpu" and ig.device.type == "cpu"
        assert torch.equal(ig, i)
        assert torch.allclose(sg, s, atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (runs on a GPU machine)")
def test_recommender_on_cuda_ranks_and_evaluates_as_on_cpu(ml100k_dir, tmp_path):
    """A model loaded on a GPU ranks (recommend, evaluate) there, with the CPU's results."""
    import kgrec
    from support.model_fixtures import small_movielens, train_small

    train, test = small_movielens(ml100k_dir, users=100).split("random", test=0.2, seed=0)
    rec = train_small(train, device="cpu")
    gpu = kgrec.Recommender.load(rec.save(tmp_path / "model"), device="cuda", progress=False)
    assert gpu._ranking_embeddings()[0].device.type == "cuda"
    a = rec.recommend(rec.user_ids(), k=20, batch_size=32)
    b = gpu.recommend(gpu.user_ids(), k=20, batch_size=32)
    assert a["user_id"].tolist() == b["user_id"].tolist() and a["rank"].tolist() == b["rank"].tolist()
    np.testing.assert_allclose(b["score"].to_numpy(), a["score"].to_numpy(), atol=1e-5)
    differ = a["item_id"].to_numpy() != b["item_id"].to_numpy()
    # an item may only trade places with one of (float-)equal score
    assert differ.mean() < 0.01
    ma, mb = rec.evaluate(test, k=(10, 20)), gpu.evaluate(test, k=(10, 20))
    assert mb["users_evaluated"] == ma["users_evaluated"] > 0
    assert mb["recall@20"] == pytest.approx(ma["recall@20"], abs=0.01)
