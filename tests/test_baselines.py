"""Baselines on real data (ML-100K) and small real-text graphs; short trainings only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch_geometric.nn.models import LightGCN

import kgrec
from kgrec.baselines import (
    EASE,
    LightGCNBaseline,
    MFBPR,
    Popularity,
    TextKNN,
    normalized_adjacency,
)
from kgrec.baselines.base import training_pairs
from kgrec.baselines.bpr import NegativeSampler
from kgrec.graph.heterodata import canonical_ids
from kgrec.errors import ModelError
from kgrec.evaluation import evaluate, metrics_from_topk


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The CI box has 2 cores shared with other jobs; two intra-op threads then thrash."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ml_split(ml100k_dir: Path) -> tuple[kgrec.KnowledgeGraph, kgrec.KnowledgeGraph]:
    kg = kgrec.loaders.movielens(ml100k_dir)
    return kg.split("random", test=0.2, seed=0)


@pytest.fixture(scope="module")
def popularity(ml_split) -> tuple[Popularity, dict[str, float]]:
    train, test = ml_split
    pop = Popularity().fit(train)
    return pop, pop.evaluate(test, k=20)


def test_popularity_scores_are_training_counts(ml_split, popularity) -> None:
    train, test = ml_split
    pop, metrics = popularity
    counts = train.interactions["item_id"].value_counts()
    top_item = pop.item_index_[int(pop.scorer(torch.tensor([0]))[0].argmax())]
    assert top_item == counts.index[0]
    assert 0.1 < metrics["recall@20"] < 0.3 and metrics["users_evaluated"] == 943
    # recommend() and metrics_from_topk agree with evaluate()
    users = sorted(test.interactions["user_id"].unique())
    top = pop.recommend(users, k=20)
    seen = set(zip(train.interactions["user_id"], train.interactions["item_id"]))
    assert not any((u, i) in seen for u, i in zip(top["user_id"], top["item_id"]))
    cross = metrics_from_topk(top, test, k=20)
    assert cross["precision@20"] == pytest.approx(metrics["precision@20"], abs=2e-3)  # ties may order differently


def test_lightgcn_propagation_is_pygs(ml_split) -> None:
    """The precomputed-adjacency path equals PyG's LightGCN on edge_index, values and gradients."""
    train, _ = ml_split
    users, items = canonical_ids(train, "user"), canonical_ids(train, "item")
    u, i = training_pairs(train, users, items)
    n_u = len(users)
    ours = LightGCNBaseline(grid=None)._module(n_u, len(items))
    ref = LightGCN(n_u + len(items), 64, 3)
    ref.load_state_dict(ours.state_dict())
    adj = normalized_adjacency(u, i, n_u, len(items))
    edge_index = torch.as_tensor(np.stack([np.concatenate([u, i + n_u]), np.concatenate([i + n_u, u])]))
    a, b = ours.get_embedding(adj), ref.get_embedding(edge_index)
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    ga = torch.autograd.grad(a.pow(2).sum(), ours.embedding.weight)[0]
    gb = torch.autograd.grad(b.pow(2).sum(), ref.embedding.weight)[0]
    torch.testing.assert_close(ga, gb, atol=1e-6, rtol=1e-5)


def test_negatives_are_never_positives(ml_split) -> None:
    train, _ = ml_split
    users, items = canonical_ids(train, "user"), canonical_ids(train, "item")
    u, i = training_pairs(train, users, items)
    sampler = NegativeSampler(u, i, len(items), torch.Generator().manual_seed(0))
    heavy = np.bincount(u).argmax()  # the user with the most positives
    batch = torch.full((20000,), int(heavy))
    neg = sampler(batch).numpy()
    assert not np.isin(neg, i[u == heavy]).any()
    # uniform over the non-positives: every allowed item shows up about equally often
    allowed = len(items) - int((u == heavy).sum())
    assert len(np.unique(neg)) > 0.95 * allowed


@pytest.mark.parametrize("cls", [MFBPR, LightGCNBaseline])
def test_bpr_models_learn_beyond_popularity(cls, ml_split, popularity) -> None:
    train, test = ml_split
    model = cls(grid=None, epochs=4, lr=1e-2, seed=0).fit(train)
    metrics = model.evaluate(test, k=20)
    assert metrics["recall@20"] > popularity[1]["recall@20"]
    assert model.epochs_ == 4 and len(model.loss_history_) == 4
    assert model.loss_history_[-1] < model.loss_history_[0] < np.log(2) + 0.01  # BPR starts at ln 2
    assert model.seconds_per_epoch_ > 0 and model.train_seconds_ >= 4 * model.seconds_per_epoch_


def _small_graph(n_users: int = 60, n_items: int = 40, seed: int = 0) -> kgrec.KnowledgeGraph:
    rng = np.random.default_rng(seed)
    rows = [(f"u{u}", f"i{(u % 4) * 10 + j}") for u in range(n_users) for j in rng.choice(10, 6, replace=False)]
    return kgrec.from_tables(interactions=pd.DataFrame(rows, columns=["user_id", "item_id"]),
                             items=pd.DataFrame({"item_id": [f"i{k}" for k in range(n_items)]}))


def test_seeded_runs_are_identical_and_tuning_uses_only_train() -> None:
    train, test = _small_graph().split("random", test=0.2, seed=0)
    a = LightGCNBaseline(grid=None, epochs=3, batch_size=64, seed=3).fit(train)
    b = LightGCNBaseline(grid=None, epochs=3, batch_size=64, seed=3).fit(train)
    torch.testing.assert_close(a.item_emb_, b.item_emb_, rtol=0, atol=0)
    tuned = MFBPR(grid={"lr": [1e-3, 3e-2]}, epochs=30, eval_every=5, patience=2, batch_size=64).fit(train)
    assert [row["lr"] for row in tuned.tuning_] == [1e-3, 3e-2]
    best = max(tuned.tuning_, key=lambda r: r["valid_recall@20"])
    assert tuned.best_params_ == {"lr": best["lr"], "reg": 1e-4, "epochs": best["best_epoch"]}
    assert tuned.epochs_ == best["best_epoch"] and tuned.tune_seconds_ > 0
    # the clustered graph (users of a block like its 10 items) is easy once trained
    assert tuned.evaluate(test, k=10)["recall@10"] > 0.5


def test_user_item_triples_join_the_training_pairs_not_the_seen_items() -> None:
    """``user_item_triples=True``: the triples' pairs (either way round, once each) train beside
    the interactions; ``recommend`` still excludes only the interactions."""
    kg = _small_graph()
    extra = pd.DataFrame({"head_type": ["user", "user", "item"], "head": ["u0", "u0", "i39"],
                          "relation": ["TAGGED", "TAGGED", "SHOWN_TO"], "tail_type": ["item", "item", "user"],
                          "tail": ["i38", "i38", "u1"]}).astype("string")
    kg.triples = pd.concat([kg.triples, extra], ignore_index=True)
    users, items = canonical_ids(kg, "user"), canonical_ids(kg, "item")
    plain = set(zip(*training_pairs(kg, users, items)))
    joined = set(zip(*training_pairs(kg, users, items, user_item_triples=True)))
    new = {(users.get_loc("u0"), items.get_loc("i38")), (users.get_loc("u1"), items.get_loc("i39"))}
    assert joined == plain | new and not new & plain
    model = LightGCNBaseline(grid=None, epochs=30, batch_size=64, lr=1e-2, user_item_triples=True).fit(kg)
    top = model.recommend(["u0"], k=len(items))
    seen = set(kg.interactions.loc[kg.interactions["user_id"] == "u0", "item_id"])
    assert "i38" in set(top["item_id"]) and not seen & set(top["item_id"])
    control = LightGCNBaseline(grid=None, epochs=30, batch_size=64, lr=1e-2).fit(kg).recommend(["u0"], k=len(items))
    rank = {name: df.set_index("item_id").loc["i38", "rank"] for name, df in (("with", top), ("without", control))}
    assert rank["with"] < rank["without"]


def test_unfitted_and_bad_input_errors() -> None:
    with pytest.raises(ModelError, match="not fitted"):
        MFBPR().scorer(torch.tensor([0]))
    with pytest.raises(TypeError, match="KnowledgeGraph"):
        MFBPR().fit(pd.DataFrame({"user_id": ["a"], "item_id": ["b"]}))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="grid"):
        MFBPR(grid={"dim": [32]})


def test_text_knn_recommends_by_content(tmp_path: Path) -> None:
    """Real LM embeddings: a user who watched animated films gets the unseen animated film first;
    a user with no history is served from their own text."""
    from kgrec.text_features import TextEncoder

    items = pd.DataFrame({
        "item_id": [f"m{k}" for k in range(8)],
        "title": ["Toy Story", "The Lion King", "Aladdin", "Finding Nemo",
                  "Schindler's List", "Saving Private Ryan", "Platoon", "Apocalypse Now"],
        "genres": ["Animation|Children's|Comedy", "Animation|Children's|Musical", "Animation|Children's|Comedy",
                   "Animation|Children's|Adventure", "Drama|War", "Action|Drama|War", "Drama|War", "Drama|War"],
    })
    inter = pd.DataFrame({"user_id": ["kid"] * 3 + ["vet"] * 3,
                          "item_id": ["m0", "m1", "m2", "m4", "m5", "m6"]})
    users = pd.DataFrame({"user_id": ["kid", "vet", "new"], "likes": ["", "", "war films, Vietnam, drama"]})
    kg = kgrec.from_tables(interactions=inter, items=items, users=users, item_text=("title", "genres"),
                           user_text="likes")
    model = TextKNN(encoder=TextEncoder(cache_dir=tmp_path, progress=False, device="cpu")).fit(kg)
    top = model.recommend(["kid", "vet", "new"], k=1).set_index("user_id")["item_id"]
    assert top["kid"] == "m3" and top["vet"] == "m7"
    assert top["new"] in {"m4", "m5", "m6", "m7"}
    test = kg.with_interactions(pd.DataFrame({"user_id": ["kid", "vet"], "item_id": ["m3", "m7"]}))
    m = evaluate(model.scorer, kg, test, model.user_index_, model.item_index_, k=1)
    assert m["recall@1"] == 1.0


def test_ease_solves_the_zero_diagonal_ridge_regression() -> None:
    """B minimises ||X - XB||^2 + l2 ||B||^2 subject to diag(B) = 0: diag(B) = 0 and the
    gradient (X^T X + l2 I) B - X^T X vanishes off the diagonal (the Lagrange multipliers
    live on it); scores are X_u B with X built here from the interactions."""
    kg = _small_graph()
    model = EASE(l2=7.0, l2_grid=None).fit(kg)
    users, items = model.user_index_, model.item_index_
    x = np.zeros((len(users), len(items)))
    x[users.get_indexer(kg.interactions["user_id"]), items.get_indexer(kg.interactions["item_id"])] = 1.0
    b = model.weights_.double().numpy()
    np.testing.assert_allclose(np.diag(b), 0.0)
    grad = (x.T @ x + 7.0 * np.eye(len(items))) @ b - x.T @ x
    np.testing.assert_allclose(grad - np.diag(np.diag(grad)), 0.0, atol=1e-3)
    assert np.abs(b).max() > 0.05  # not the trivial solution
    picked = torch.tensor([0, 5, 59])
    np.testing.assert_allclose(model.scorer(picked).numpy(), x[picked.numpy()] @ b, atol=1e-4)


def test_ease_tunes_l2_on_train_only_and_beats_popularity(ml_split, popularity) -> None:
    train, test = ml_split
    model = EASE(l2_grid=(20.0, 300.0, 5000.0)).fit(train)
    assert [row["l2"] for row in model.tuning_] == [20.0, 300.0, 5000.0]
    best = max(model.tuning_, key=lambda r: r["valid_recall@20"])
    assert model.best_params_ == {"l2": best["l2"]} and model.tune_seconds_ > 0
    metrics = model.evaluate(test, k=20)
    assert metrics["users_evaluated"] == 943
    assert metrics["recall@20"] > 1.3 * popularity[1]["recall@20"]
    top = model.recommend(["1"], k=20)
    seen = set(train.interactions.loc[train.interactions["user_id"] == "1", "item_id"])
    assert len(top) == 20 and not seen & set(top["item_id"])


def test_ease_refuses_a_catalogue_too_big_for_dense_matrices_and_bad_l2() -> None:
    with pytest.raises(ModelError, match="max_items=30"):
        EASE(l2_grid=None, max_items=30).fit(_small_graph())
    with pytest.raises(ValueError, match="positive"):
        EASE(l2=0.0)
    with pytest.raises(ValueError, match="positive"):
        EASE(l2_grid=(100.0, -1.0))
    with pytest.raises(ModelError, match="not fitted"):
        EASE().scorer(torch.tensor([0]))


def test_baselines_share_the_recommenders_contract() -> None:
    """Baselines rank, name ids, raise and expose parameters as kgrec.Recommender does: an
    unknown user is an UnknownIdError that says how to fix it, recommend() takes candidates and
    excludes seen items, and sklearn's clone copies a baseline's parameters (those LightGCN passes
    on to the BPR trainer too)."""
    from sklearn.base import clone

    from kgrec.errors import UnknownIdError
    from kgrec.recommender import RecommenderBase

    kg = _small_graph()
    pop = Popularity().fit(kg)
    assert isinstance(pop, RecommenderBase) and pop.user_ids() == sorted(kg.users["user_id"].astype(str))
    with pytest.raises(UnknownIdError, match="add_users"):
        pop.recommend(["no-such-user"])
    user = pop.user_ids()[0]
    seen = set(kg.interactions.loc[kg.interactions["user_id"] == user, "item_id"].astype(str))
    unseen = [i for i in pop.item_ids() if i not in seen][:3]
    top = pop.recommend([user], k=10, candidates=unseen + sorted(seen)[:1])
    assert set(top["item_id"]) == set(unseen) and list(top["rank"]) == [1, 2, 3]
    scores = pop.score(user, unseen)["score"].to_numpy()
    np.testing.assert_allclose(np.sort(scores)[::-1], top["score"].to_numpy())
    lightgcn = LightGCNBaseline(epochs=5, num_layers=2, lr=0.01)
    params = clone(lightgcn).get_params()
    assert params["epochs"] == 5 and params["num_layers"] == 2 and params["lr"] == 0.01
    assert repr(lightgcn) == "LightGCNBaseline(epochs=5, lr=0.01, num_layers=2)"
