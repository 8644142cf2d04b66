"""kgrec.recommender.explanation_rows against the per-recommendation loop it replaces in publish:
the same EXPLAINS rows (paths, ranks, nodes, order; weights to float rounding), on a real model
of ML-100K and on a small graph with every kind of path, a pair with none and a cold item."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import kgrec
from kgrec.recommender.explanation_rows import COLUMNS, explanation_rows
from support.explain_loop import loop_rows
from support.model_fixtures import small_movielens, train_small


def batched_rows(rec: kgrec.Recommender, recs: pd.DataFrame, explanations: int, explain_top: int,
                 batch_users: int) -> pd.DataFrame:
    parts = list(explanation_rows(rec, recs, explanations=explanations, explain_top=explain_top,
                                  batch_users=batch_users))
    assert all(list(p.columns) == COLUMNS for p in parts)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)


def assert_same_rows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert len(got) == len(want)
    text = ["user_id", "item_id", "path", "node_type", "node_id"]
    pd.testing.assert_frame_equal(got[text].astype(str).reset_index(drop=True),
                                  want[text].astype(str).reset_index(drop=True))
    assert got["rank"].tolist() == want["rank"].astype(int).tolist()
    np.testing.assert_allclose(got["weight"].to_numpy(float), want["weight"].to_numpy(float), rtol=1e-5, atol=1e-7)


@pytest.fixture(scope="module")
def ml_rec(ml100k_dir):
    return train_small(small_movielens(ml100k_dir))


def test_ml100k_rows_equal_the_per_recommendation_loop(ml_rec):
    recs = ml_rec.recommend(ml_rec.user_ids(), k=20)
    want = loop_rows(ml_rec, recs, explanations=3, explain_top=3)
    got = batched_rows(ml_rec, recs, explanations=3, explain_top=3, batch_users=128)   # several batches
    assert_same_rows(got, want)
    assert want["user_id"].nunique() == len(ml_rec.user_ids())
    # the rows cover similar-user paths (a user node) and attribute paths (an entity node)
    assert {"user", "item", "entity"} <= set(want["node_type"])
    assert want["path"].str.contains(" <- ").any()


def test_ml100k_deeper_lists_and_batch_size_do_not_change_the_rows(ml_rec):
    users = ml_rec.user_ids()[:40]
    recs = ml_rec.recommend(users, k=10)
    want = loop_rows(ml_rec, recs, explanations=12, explain_top=6)
    assert_same_rows(batched_rows(ml_rec, recs, explanations=12, explain_top=6, batch_users=7), want)
    assert_same_rows(batched_rows(ml_rec, recs, explanations=12, explain_top=6, batch_users=1000), want)
    assert want["rank"].max() == 12


@pytest.fixture(scope="module")
def kg_rec():
    """Two clusters of users and items on shelves; shelves linked in a small knowledge graph (KG
    paths); two users' own TAGGED triples to items (direct paths); an item with no attribute
    whose only fan has nothing else (no path at all); and an item added after training."""
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"{'ab'[u % 2]}{i}") for u in range(19) for i in rng.choice(8, size=5, replace=False)]
    inter = pd.DataFrame(rows + [("u19", "lonely")], columns=["user_id", "item_id"])
    items = pd.DataFrame({"item_id": [f"{c}{i}" for c in "ab" for i in range(8)] + ["lonely"]})
    items["shelf"] = items["item_id"].map(lambda i: None if i == "lonely" else f"shelf{int(i[1]) % 3}")
    items["title"] = items["item_id"].map(lambda i: f"Title of {i}")
    seen = {u: set(inter.loc[inter["user_id"] == u, "item_id"]) for u in ("u0", "u1")}
    tagged = [("u0", next(f"b{i}" for i in range(8) if f"b{i}" not in seen["u0"])),
              ("u1", next(f"a{i}" for i in range(8) if f"a{i}" not in seen["u1"]))]
    triples = pd.DataFrame(
        [("user", u, "TAGGED", "item", i) for u, i in tagged]
        + [("entity", "shelf:shelf0", "NEXT_TO", "entity", "shelf:shelf1"),
           ("entity", "shelf:shelf1", "NEXT_TO", "entity", "shelf:shelf2"),
           ("entity", "shelf:shelf2", "IN", "entity", "hall")],
        columns=["head_type", "head", "relation", "tail_type", "tail"])
    kg = kgrec.from_tables(interactions=inter, items=items, triples=triples, item_attributes=["shelf"],
                           item_text=("title",))
    rec = kgrec.Recommender(use_text=False, epochs=5, valid_fraction=0.0, device="cpu", progress=False).fit(kg)
    rec.add_items(pd.DataFrame({"item_id": ["new"], "title": ["Title of new"], "shelf": ["shelf1"]}),
                  attributes={"shelf": "shelf"})
    return rec


def test_every_kind_of_path_and_the_pairs_without_one(kg_rec):
    recs = kg_rec.recommend(kg_rec.user_ids(), k=kg_rec.graph_.num_items)
    assert "new" in set(recs["item_id"]) and "lonely" in set(recs["item_id"])
    want = loop_rows(kg_rec, recs, explanations=1000, explain_top=1000)
    got = batched_rows(kg_rec, recs, explanations=1000, explain_top=1000, batch_users=6)
    assert_same_rows(got, want)
    paths = want["path"]
    assert paths.str.contains(" -TAGGED-> ").any()             # the user's own triple
    assert paths.str.contains(" - ").any()                      # a KG path: item -> shelf - shelf <- item
    assert paths.str.contains(r" \.\.\. ").any()                # an attribute with no link to the user
    assert (want["node_type"] == "user").any()                  # similar users
    assert not want["item_id"].isin(["new"]).any()              # an added item has no trained neighbourhood
    lonely = recs[(recs["item_id"] == "lonely") & (recs["user_id"] != "u19")]
    assert len(lonely) > 0 and not want["item_id"].eq("lonely").any()   # no path reaches it
    # fewer paths per recommendation: the strongest ones, in the loop's order
    want3 = loop_rows(kg_rec, recs, explanations=2, explain_top=3)
    assert_same_rows(batched_rows(kg_rec, recs, explanations=2, explain_top=3, batch_users=1024), want3)


def test_nothing_to_explain_gives_no_rows(kg_rec):
    recs = kg_rec.recommend(["u2"], k=5)
    assert list(explanation_rows(kg_rec, recs, explanations=0)) == []
    assert list(explanation_rows(kg_rec, recs, explain_top=0)) == []
    with pytest.raises(ValueError, match="batch_users"):
        list(explanation_rows(kg_rec, recs, batch_users=0))
