"""kgrec.evaluation against hand-computed examples, and against itself on real data."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from kgrec.evaluation import evaluate, metrics_from_topk
from kgrec.graph.csr import csr_indptr, gather_rows, rows_csr

ITEMS = pd.Index(["a", "b", "c", "d", "e"])
USERS = pd.Index(["u1", "u2", "u3"])
#                    a  b  c  d  e
SCORES = torch.tensor([[5, 4, 3, 2, 1],   # u1: train a -> ranking b c d e
                       [1, 5, 4, 3, 2],   # u2: train b c -> ranking d e a
                       [1, 2, 3, 4, 5]], dtype=torch.float)
TRAIN = pd.DataFrame({"user_id": ["u1", "u2", "u2", "u3"], "item_id": ["a", "b", "c", "a"]})
TEST = pd.DataFrame({"user_id": ["u1", "u1", "u2", "zz", "u1"], "item_id": ["b", "d", "a", "a", "q"]})


def scorer(users: torch.Tensor) -> torch.Tensor:
    return SCORES[users]


def L(j: int) -> float:  # discount of rank j
    return 1 / math.log2(j + 1)


def test_hand_computed_metrics() -> None:
    m = evaluate(scorer, TRAIN, TEST, USERS, ITEMS, k=(2, 3))
    # u1: T={b,d}, top2 = b c, top3 = b c d.   u2: T={a}, top2 = d e, top3 = d e a.  u3: no test.
    ndcg_u1_2 = L(1) / (L(1) + L(2))
    ndcg_u1_3 = (L(1) + L(3)) / (L(1) + L(2))
    ndcg_u2_3 = L(3) / L(1)
    expected = {
        "recall@2": (1 / 2 + 0) / 2, "precision@2": (1 / 2 + 0) / 2, "hit_rate@2": 0.5, "mrr@2": 0.5,
        "ndcg@2": ndcg_u1_2 / 2, "coverage@2": 4 / 5,
        "recall@3": (1 + 1) / 2, "precision@3": (2 / 3 + 1 / 3) / 2, "hit_rate@3": 1.0,
        "mrr@3": (1 + 1 / 3) / 2, "ndcg@3": (ndcg_u1_3 + ndcg_u2_3) / 2, "coverage@3": 1.0,
    }
    for key, value in expected.items():
        assert m[key] == pytest.approx(value, abs=1e-6), key
    assert m["users_evaluated"] == 2
    assert m["users_skipped_unknown"] == 1          # zz
    assert m["test_interactions_skipped_unknown_item"] == 1  # (u1, q)
    assert m["test_interactions"] == 3


def test_recall_denominator_is_test_size_and_idcg_is_truncated_at_k() -> None:
    # one user, 4 test items, k=2, both top-2 are hits
    items = pd.Index(list("abcdef"))
    scores = torch.tensor([[6, 5, 4, 3, 2, 1]], dtype=torch.float)
    test = pd.DataFrame({"user_id": ["u"] * 4, "item_id": list("abcd")})
    train = pd.DataFrame({"user_id": ["u"], "item_id": ["f"]})
    m = evaluate(lambda u: scores[u], train, test, pd.Index(["u"]), items, k=2)
    assert m["recall@2"] == pytest.approx(2 / 4)   # |T| = 4, not min(|T|, k) = 2
    assert m["ndcg@2"] == pytest.approx(1.0)       # IDCG over min(|T|, k) = 2 positions
    assert m["precision@2"] == pytest.approx(1.0)


def test_train_items_never_ranked_and_short_lists_are_padded() -> None:
    # 3 items, the user trained on 2: only one can be recommended even at k=5
    items = pd.Index(["x", "y", "z"])
    scores = torch.tensor([[9.0, 8.0, 1.0]])
    train = pd.DataFrame({"user_id": ["u", "u"], "item_id": ["x", "y"]})
    test = pd.DataFrame({"user_id": ["u"], "item_id": ["z"]})
    m = evaluate(lambda u: scores[u], train, test, pd.Index(["u"]), items, k=5)
    assert m["recall@5"] == 1.0 and m["precision@5"] == pytest.approx(1 / 5) and m["mrr@5"] == 1.0
    assert m["coverage@5"] == pytest.approx(1 / 3)  # only z was ever listed


def test_test_pair_also_in_train_is_dropped_and_counted() -> None:
    train = pd.DataFrame({"user_id": ["u1"], "item_id": ["a"]})
    test = pd.DataFrame({"user_id": ["u1", "u1"], "item_id": ["a", "b"]})
    m = evaluate(scorer, train, test, USERS, ITEMS, k=1)
    assert m["test_interactions_skipped_in_train"] == 1
    assert m["recall@1"] == 1.0  # b is u1's best remaining item


def test_candidates_restrict_the_ranking() -> None:
    # u1 ranks among {d, e} only: d first. u2's test item a is not a candidate -> dropped.
    m = evaluate(scorer, TRAIN, TEST, USERS, ITEMS, k=1, candidates=["d", "e"])
    assert m["test_interactions_skipped_not_candidate"] == 2  # (u1, b) and (u2, a)
    assert m["users_evaluated"] == 1
    assert m["recall@1"] == 1.0 and m["hit_rate@1"] == 1.0
    assert m["coverage@1"] == pytest.approx(1 / 2)
    # the same candidates as positions in item_ids
    by_pos = evaluate(scorer, TRAIN, TEST, USERS, ITEMS, k=1, candidates=np.array([3, 4]))
    assert by_pos == m
    assert evaluate(scorer, TRAIN, TEST, USERS, ITEMS, k=1, candidates=torch.tensor([3, 4])) == m
    with pytest.raises(ValueError, match="positions"):
        evaluate(scorer, TRAIN, TEST, USERS, ITEMS, k=1, candidates=np.array([-1, 4]))
    with pytest.raises(ValueError, match="not known items"):
        evaluate(scorer, TRAIN, TEST, USERS, ITEMS, k=1, candidates=["nope"])


def test_bad_scorer_output_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"expected \(2, 5\)"):
        evaluate(lambda u: SCORES[u][:, :3], TRAIN, TEST, USERS, ITEMS)
    with pytest.raises(ValueError, match="NaN"):
        evaluate(lambda u: torch.full((len(u), 5), float("nan")), TRAIN, TEST, USERS, ITEMS)
    with pytest.raises(ValueError, match="positive"):
        evaluate(scorer, TRAIN, TEST, USERS, ITEMS, k=0)


def test_metrics_from_topk_hand_example() -> None:
    topk = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u2"], "item_id": ["b", "c", "d", "e"],
                         "rank": [1, 2, 1, 2]})
    test = TEST[TEST["user_id"].isin(["u1", "u2"]) & (TEST["item_id"] != "q")]
    m = metrics_from_topk(topk, test, k=2, num_items=5)
    assert m["recall@2"] == pytest.approx(0.25)
    assert m["ndcg@2"] == pytest.approx(L(1) / (L(1) + L(2)) / 2)
    assert m["coverage@2"] == pytest.approx(4 / 5)
    # a user absent from topk counts with an empty list
    m3 = metrics_from_topk(topk, pd.concat([test, pd.DataFrame({"user_id": ["u9"], "item_id": ["a"]})]), k=2)
    assert m3["users_evaluated"] == 3 and m3["recall@2"] == pytest.approx(0.25 * 2 / 3)


def _ml100k(root: Path) -> pd.DataFrame:
    df = pd.read_csv(root / "u.data", sep="\t", names=["user_id", "item_id", "rating", "ts"], dtype=str)
    return df[["user_id", "item_id"]]


def test_real_data_chunking_and_topk_cross_check(ml100k_dir: Path) -> None:
    """ML-100K, a popularity scorer: chunk size does not change the result, and the same
    metrics recomputed from the top-k lists agree."""
    inter = _ml100k(ml100k_dir)
    rng = np.random.default_rng(0)
    is_test = rng.random(len(inter)) < 0.2
    train, test = inter[~is_test], inter[is_test]
    users = pd.Index(sorted(inter["user_id"].unique()))
    items = pd.Index(sorted(inter["item_id"].unique()))
    pop = torch.zeros(len(items))
    pop.index_add_(0, torch.as_tensor(items.get_indexer(train["item_id"])), torch.ones(len(train)))
    pop += torch.linspace(0, 0.5, len(items))  # break ties (steps well above float32 resolution)

    def pop_scorer(u: torch.Tensor) -> torch.Tensor:
        return pop.expand(len(u), -1)

    full = evaluate(pop_scorer, train, test, users, items, k=(10, 20), batch_size=4096)
    chunked = evaluate(pop_scorer, train, test, users, items, k=(10, 20), batch_size=100)
    assert full == pytest.approx(chunked)
    assert full["users_evaluated"] == test["user_id"].nunique()
    assert 0.05 < full["recall@20"] < 0.5  # popularity is a real but weak baseline on ML-100K

    # top-20 lists by hand from the same scores
    order = np.argsort(-pop.numpy(), kind="stable")  # item positions, best first
    seen = train.assign(pos=items.get_indexer(train["item_id"])).groupby("user_id")["pos"].agg(list)
    rows = []
    for u in test["user_id"].unique():
        mask = np.zeros(len(items), dtype=bool)
        mask[seen.get(u, [])] = True
        rec = items[order[~mask[order]][:20]]
        rows += [(u, i, r + 1) for r, i in enumerate(rec)]
    topk = pd.DataFrame(rows, columns=["user_id", "item_id", "rank"])
    cross = metrics_from_topk(topk, test, k=(10, 20), num_items=len(items))
    for key in ("recall@10", "ndcg@10", "precision@20", "recall@20", "ndcg@20", "hit_rate@20", "mrr@20",
                "coverage@20"):
        assert cross[key] == pytest.approx(full[key], abs=1e-6), key


def test_rows_csr_and_gather_rows_against_hand_built_rows() -> None:
    rows, cols = torch.tensor([2, 0, 2, 0, 3]), torch.tensor([7, 1, 5, 4, 9])
    indptr, indices = rows_csr(rows, cols, 5)
    assert indptr.tolist() == [0, 2, 2, 4, 5, 5]          # row 1 and row 4 are empty
    assert torch.equal(csr_indptr(rows, 5), indptr)
    assert indices.tolist() == [1, 4, 7, 5, 9]            # each row's columns in input order
    local, entry = gather_rows(indptr, torch.tensor([2, 1, 0]))
    assert local.tolist() == [0, 0, 2, 2] and indices[entry].tolist() == [7, 5, 1, 4]
    empty_local, empty_entry = gather_rows(indptr, torch.tensor([1, 4]))
    assert len(empty_local) == 0 and len(empty_entry) == 0
