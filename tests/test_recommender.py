"""kgrec.Recommender on real data: ranking contract, candidates, unknown ids, save/load,
explanations that decompose the score, and batch cold start."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

import kgrec
from kgrec.errors import DataError, ModelError, UnknownIdError
from kgrec.evaluation import metrics_from_topk
from support.model_fixtures import small_movielens, train_small


@pytest.fixture(scope="module")
def split(ml100k_dir):
    kg = small_movielens(ml100k_dir)
    return kg.split("random", test=0.2, seed=0)


@pytest.fixture(scope="module")
def rec(split):
    return train_small(split[0])


def test_recommend_contract(rec, split):
    train, _ = split
    users = ["1", "2", "3"]
    top = rec.recommend(users, k=20)
    assert list(top.columns) == ["user_id", "item_id", "score", "rank"]
    assert top.groupby("user_id").size().to_dict() == {u: 20 for u in users}
    for u, grp in top.groupby("user_id"):
        assert grp["rank"].tolist() == list(range(1, 21))
        assert grp["score"].is_monotonic_decreasing
        seen = set(train.interactions.loc[train.interactions["user_id"] == u, "item_id"])
        assert not seen & set(grp["item_id"]), "seen items must be excluded"
    with_seen = rec.recommend(["1"], k=20, exclude_seen=False)
    assert set(with_seen["item_id"]) & set(train.interactions.loc[train.interactions["user_id"] == "1", "item_id"])


def test_scores_are_dot_products_and_match_score(rec):
    top = rec.recommend(["5"], k=5)
    direct = rec.score("5", top["item_id"].tolist())
    assert np.allclose(direct["score"].to_numpy(), top["score"].to_numpy(), atol=1e-6)


def test_candidates_restrict_ranking(rec):
    cands = ["1", "50", "100", "181", "258"]
    top = rec.recommend(["7", "8"], k=3, candidates=cands)
    assert set(top["item_id"]) <= set(cands)
    assert (top.groupby("user_id").size() <= 3).all()


def test_evaluate_on_unknown_users_only_is_an_error_not_zeros(rec):
    test = pd.DataFrame({"user_id": ["stranger-1", "stranger-2"], "item_id": ["1", "2"]})
    with pytest.raises(UnknownIdError, match="none of the test set's 2 users"):
        rec.evaluate(test)


def test_unknown_user_points_to_add_users(rec):
    with pytest.raises(UnknownIdError, match="add_users"):
        rec.recommend(["no-such-user"], k=5)
    with pytest.raises(UnknownIdError, match="add_items"):
        rec.recommend(["1"], k=5, candidates=["no-such-item"])


def test_evaluate_agrees_with_own_metrics_from_topk(rec, split):
    _, test = split
    m = rec.evaluate(test, k=(10, 20))
    users = sorted(set(test.interactions["user_id"]))
    top = rec.recommend(users, k=20)
    mine = metrics_from_topk(top, test.interactions, k=(20,))
    assert m["users_evaluated"] == len(users)
    assert m["recall@20"] == pytest.approx(mine["recall@20"], abs=1e-6)
    assert m["ndcg@20"] == pytest.approx(mine["ndcg@20"], abs=1e-6)
    assert 0 < m["recall@20"] <= 1


def test_fit_refits_on_all_interactions_for_the_best_epoch(split, tmp_path):
    """Early stopping on a hold-out carved from train, then the kept model is a fresh training on
    all of train for the best number of epochs: the same weights as training that directly."""
    train, _ = split
    rec = train_small(train, valid_fraction=0.1, epochs=3)
    stop = rec.early_stopping_
    values = [h["recall@20"] for h in stop["history"]]
    assert stop["metric"] == "recall@20" and len(values) == 3 and stop["seconds"] > 0 and stop["refit"] is True
    assert stop["best"] == max(values) and values[stop["best_epoch"] - 1] == max(values)
    assert len(rec.trained_.history) == stop["best_epoch"]
    assert len(rec.trained_.graph.inter_user) == len(train.interactions)
    direct = train_small(train, epochs=stop["best_epoch"])  # valid_fraction 0: every interaction, no validation
    weights = rec.trained_.model.state_dict()
    for name, value in direct.trained_.model.state_dict().items():
        assert torch.equal(value, weights[name]), name
    loaded = kgrec.Recommender.load(rec.save(tmp_path / "model"))
    assert loaded.refit is True and loaded.early_stopping_ == stop

    # lr 0: no improvement after the first evaluation, so one epoch is refitted
    flat = train_small(train, valid_fraction=0.1, epochs=4, lr=0.0, patience=1)
    assert flat.early_stopping_["stopped_early"] and len(flat.early_stopping_["history"]) == 2
    assert flat.early_stopping_["best_epoch"] == 1 and len(flat.trained_.history) == 1


def test_fit_without_refit_keeps_the_early_stopped_model(split):
    train, _ = split
    kept = train_small(train, valid_fraction=0.1, epochs=3, refit=False)
    refitted = train_small(train, valid_fraction=0.1, epochs=3)
    assert kept.trained_.history is kept.early_stopping_["history"] and len(kept.trained_.history) == 3
    assert kept.early_stopping_["refit"] is False
    assert [h["recall@20"] for h in kept.trained_.history] == [h["recall@20"] for h in refitted.early_stopping_["history"]]
    # it ranks over every training interaction: the hold-out is folded into the graph, not trained on
    assert len(kept.trained_.graph.inter_user) == len(train.interactions)
    assert not torch.equal(kept.trained_.model.relation, refitted.trained_.model.relation)


def test_user_item_triples_are_trained_on_but_never_excluded(rec, split):
    """User -> item knowledge triples (a second behaviour such as a tagged artist) are training
    positives beside the interactions, so they rise in the user's ranking, yet ranking excludes
    only the interactions."""
    train, _ = split
    seen = set(train.interactions.loc[train.interactions["user_id"] == "1", "item_id"])
    before = rec.recommend(["1"], k=train.num_items)
    tagged = before["item_id"][~before["item_id"].isin(seen)].tail(5).tolist()  # the 5 the model ranks last
    extra = pd.DataFrame({"head_type": "user", "head": "1", "relation": "TAGGED", "tail_type": "item", "tail": tagged})
    kg = train.with_interactions(train.interactions, triples=pd.concat([train.triples, extra.astype("string")],
                                                                     ignore_index=True))
    kg.features = train.features
    tagged_rec = train_small(kg, valid_fraction=0.1)
    assert len(tagged_rec.trained_.graph.inter_user) == len(train.interactions) + 5
    after = tagged_rec.recommend(["1"], k=train.num_items)
    assert set(tagged) <= set(after["item_id"])  # not excluded
    control = train_small(train, valid_fraction=0.1).recommend(["1"], k=train.num_items)  # the same, untagged
    rank_control = control.set_index("item_id").loc[tagged, "rank"]
    rank_after = after.set_index("item_id").loc[tagged, "rank"]
    assert (rank_after < rank_control).all(), (rank_after.tolist(), rank_control.tolist())
    # explain() names the user's own triple as the path it enters the item through
    ex = tagged_rec.explain("1", tagged[0], top=100000)
    contrib, _, score = tagged_rec.score_contributions("1", tagged[0])
    own = contrib[(contrib["node_type"] == "user") & (contrib["node_id"] == "1")]
    row = ex[ex["kind"] == "user_item_triple"]
    assert len(own) == 1 and len(row) == 1
    assert row["weight"].item() == pytest.approx(own["weight"].item(), abs=1e-6)
    name = train.items.set_index("item_id").loc[tagged[0], "name"]
    assert row["path"].item() == f"user 1 -TAGGED-> {name}"
    assert ex["weight"].sum() == pytest.approx(score, abs=1e-4)
    paths = ex[~ex["kind"].str.startswith("other_") & ~ex["kind"].str.startswith("item_")]
    assert paths["kind"].iloc[0] == "user_item_triple", paths.head(3)  # the strongest path a tagged item has
    assert tagged_rec.reason("1", tagged[0]) == "linked to you by TAGGED"
    assert rec.explain("1", tagged[0], top=100000)["kind"].ne("user_item_triple").all()  # no triple, no path


def test_save_load_round_trip_and_corruption(rec, tmp_path):
    path = rec.save(tmp_path / "model")
    loaded = kgrec.Recommender.load(path)
    a = rec.recommend(["1", "2"], k=10)
    b = loaded.recommend(["1", "2"], k=10)
    pd.testing.assert_frame_equal(a, b)
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["kgrec_version"] == kgrec.__version__ and cfg["params"]["text_model"]
    # weights of an older model state -> refused, naming the file
    tensors = torch.load(path / "weights.pt", weights_only=True)
    tensors["fit"]["version"] = 2
    torch.save(tensors, path / "weights.pt")
    with pytest.raises(ModelError, match=r"weights\.pt: model state version 2 is not supported.*Fix: retrain"):
        kgrec.Recommender.load(path)
    # corrupt weights -> clear error
    (path / "weights.pt").write_bytes(b"not a torch file")
    with pytest.raises(ModelError, match="weights.pt: corrupt"):
        kgrec.Recommender.load(path)
    with pytest.raises(ModelError, match="no such model directory"):
        kgrec.Recommender.load(tmp_path / "missing")
    (tmp_path / "notamodel").mkdir()
    with pytest.raises(ModelError, match="config.json is missing"):
        kgrec.Recommender.load(tmp_path / "notamodel")


def test_saved_model_is_readable_by_the_team_and_dot_is_a_clear_error(rec, tmp_path, monkeypatch):
    """A model directory gets the modes the umask gives a new folder and file (mkdtemp's 0700
    kept teammates out); saving over the current, non-empty folder is a ModelError that says so."""
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = rec.save(tmp_path / "shared-model")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    assert stat.S_IMODE((path / "weights.pt").stat().st_mode) == 0o644
    assert stat.S_IMODE((path / "tables").stat().st_mode) == 0o755
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path / "work")
    with pytest.raises(ModelError, match="is not a kgrec model directory"):
        rec.save(".")
    assert (tmp_path / "work" / "notes.txt").read_text() == "mine"


def test_interrupted_save_keeps_previous_model(rec, tmp_path, monkeypatch):
    path = rec.save(tmp_path / "model")
    before = (path / "weights.pt").read_bytes()

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        rec.save(path)
    assert (path / "weights.pt").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"], "no temporary directory may remain"


def test_explain_decomposes_the_score(rec):
    top = rec.recommend(["1"], k=1)
    item = top["item_id"].iloc[0]
    ex = rec.explain("1", item, top=100000)
    assert ex["weight"].sum() == pytest.approx(top["score"].iloc[0], abs=1e-4)
    assert ex["weight"].is_monotonic_decreasing
    assert {"similar_users", "item_itself", "item_popularity"} <= set(ex["kind"])
    bias = float(rec.item_emb_[rec.item_index_.get_loc(item), -1])  # the score's tau * b_i
    assert ex.loc[ex["kind"] == "item_popularity", "weight"].item() == pytest.approx(bias, abs=1e-6) and bias != 0
    assert isinstance(rec.reason("1", item), str)


@pytest.fixture()
def fresh(rec, tmp_path):
    """An independent copy of the trained model (through save / load)."""
    return kgrec.Recommender.load(rec.save(tmp_path / "copy"), progress=False)


def test_add_items_cold_start_leaves_warm_ranking(rec, fresh, tmp_path):
    before = rec.recommend(["1", "2", "3"], k=20)
    new = pd.DataFrame({"item_id": ["new-1", "new-2"], "title": ["Space Robots (2030)", "Toy Story 7 (2031)"],
                        "genres": ["Sci-Fi|Action", "Animation|Children's|Comedy"]})
    r = fresh
    r.add_items(new, attributes={"genres": "genre"})
    assert r.added_items_ == ["new-1", "new-2"]
    after = r.recommend(["1", "2", "3"], k=20)
    warm_after = after[~after["item_id"].isin(["new-1", "new-2"])]
    for u in ["1", "2", "3"]:
        b = before[before["user_id"] == u]["item_id"].tolist()
        a = warm_after[warm_after["user_id"] == u]["item_id"].tolist()
        assert a == b[:len(a)], "warm items keep their order; only new items may enter"
    # old scores unchanged bit for bit
    s0 = rec.score("1", before["item_id"].tolist()[:5])["score"].to_numpy()
    s1 = r.score("1", before["item_id"].tolist()[:5])["score"].to_numpy()
    assert np.array_equal(s0, s1)
    only_new = r.recommend(["1"], k=5, candidates=["new-1", "new-2"])
    assert set(only_new["item_id"]) == {"new-1", "new-2"}
    # the cold items' nearest warm items carry their genres: Animation for one, Sci-Fi/Action for the other
    t = r.graph_.triples
    genre_of = t[t["relation"] == "HAS_GENRE"].groupby("head")["tail"].agg(set)
    warm = r.item_emb_[:len(rec.item_ids())]

    def neighbours_with(item: str, genre: str) -> int:
        sims = warm @ r.item_emb_[r.item_index_.get_loc(item)]
        nearest = [rec.item_ids()[j] for j in torch.topk(sims, 20).indices.tolist()]
        return sum(genre in genre_of.get(i, set()) for i in nearest)

    assert neighbours_with("new-2", "genre:Animation") > neighbours_with("new-1", "genre:Animation")
    assert neighbours_with("new-1", "genre:Sci-Fi") > neighbours_with("new-2", "genre:Sci-Fi")
    # survives save / load
    r.save(tmp_path / "m")
    r2 = kgrec.Recommender.load(tmp_path / "m")
    pd.testing.assert_frame_equal(r2.score("1", ["new-1", "new-2"]), r.score("1", ["new-1", "new-2"]))


def test_bad_cold_start_batch_adds_nothing(fresh):
    r = fresh
    n_items = len(r.item_ids())
    bad = pd.DataFrame({"item_id": ["ok-1", "1"], "title": ["Fine", "Clash"]})
    with pytest.raises(DataError, match="already exists"):
        r.add_items(bad)
    assert len(r.item_ids()) == n_items
    assert "ok-1" not in set(r.graph_.items["item_id"])


def test_add_users_with_attributes_and_clicks(fresh):
    r = fresh
    users = pd.DataFrame({"user_id": ["nu-1", "nu-2"], "occupation": ["writer", "programmer"]})
    clicks = pd.DataFrame({"user_id": ["nu-1", "nu-1"], "item_id": ["50", "181"]})
    r.add_users(users, interactions=clicks, attributes={"occupation": "occupation"})
    top = r.recommend(["nu-1", "nu-2"], k=10)
    assert top.groupby("user_id").size().to_dict() == {"nu-1": 10, "nu-2": 10}
    assert not {"50", "181"} & set(top.loc[top["user_id"] == "nu-1", "item_id"]), "given clicks count as seen"
    # a user who clicked Star Wars and Return of the Jedi is closer to Empire Strikes Back than a random film
    s = r.score("nu-1", ["172", "1500"])["score"].to_numpy()
    assert s[0] > s[1]


def test_unfitted_recommender_says_fit_first():
    with pytest.raises(ModelError, match="fit"):
        kgrec.Recommender().recommend(["1"])
    with pytest.raises(TypeError, match="epochz"):
        kgrec.Recommender(epochz=3)


def test_parameters_follow_scikit_learn():
    """Every training setting is a keyword argument with TrainConfig's default; get_params /
    set_params / sklearn.base.clone work, and a clone is unfitted with the same parameters."""
    from dataclasses import fields

    from sklearn.base import clone

    from kgrec.train import TrainConfig

    rec = kgrec.Recommender(epochs=3, dim=32)
    params = rec.get_params()
    defaults = TrainConfig()
    for f in fields(TrainConfig):
        expected = {"epochs": 3, "dim": 32}.get(f.name, getattr(defaults, f.name))
        assert params[f.name] == expected, f.name
    assert rec.train_config() == TrainConfig(**{**vars(defaults), "epochs": 3, "dim": 32})
    copy = clone(rec)
    assert copy is not rec and copy.get_params() == params
    assert copy.set_params(lr=0.05, seed=2) is copy and copy.lr == 0.05 and copy.train_config().seed == 2
    with pytest.raises(ValueError, match="no parameter.*'epochz'"):
        copy.set_params(epochz=3)
    assert repr(rec) == "Recommender(dim=32, epochs=3)"


def test_later_batches_link_to_entities_and_items_added_earlier(fresh):
    """An entity (new attribute value) or item created by one add_* call is a neighbour like
    any other for later calls: the result equals embedding everything in one pass."""
    from kgrec.cold_start.placement import NewNodeInputs, embed_new_nodes

    r = fresh
    first = pd.DataFrame({"item_id": ["mc-1"], "title": ["Quiet Talk (2031)"], "genres": ["Mumblecore"]})
    second = pd.DataFrame({"item_id": ["mc-2"], "title": ["Quiet Talk (2031)"], "genres": ["Mumblecore"]})
    r.add_items(first, attributes={"genres": "genre"})
    r.add_items(second, attributes={"genres": "genre"})
    # same text, same new genre (created by the first call): the same representation
    e1, e2 = r.item_emb_[torch.as_tensor(r.item_index_.get_indexer(["mc-1", "mc-2"]))]
    assert torch.equal(e1, e2)
    assert r.graph_.report["added_edges_unknown_node"] == 0

    fan = pd.DataFrame({"user_id": ["mc-fan"], "occupation": ["writer"]})
    clicks = pd.DataFrame({"user_id": ["mc-fan"], "item_id": ["mc-1"]})
    r.add_users(fan, interactions=clicks, attributes={"occupation": "occupation"})
    assert r.graph_.report["added_edges_unknown_node"] == 0
    # reference: the genre, the item and the user embedded in one pass
    g, feats = r.graph_, r.graph_.features

    def rows(table: pd.DataFrame, col: str, ids: list[str]) -> np.ndarray:
        return np.flatnonzero(table[col].isin(ids).to_numpy())

    t = g.triples[g.triples["head"].isin(["mc-1", "mc-fan"])]
    ref = embed_new_nodes(
        r.trained_, entities=NewNodeInputs(["genre:Mumblecore"], feats["entity"][rows(g.entities, "entity_id", ["genre:Mumblecore"])]),
        items=NewNodeInputs(["mc-1"], feats["item"][rows(g.items, "item_id", ["mc-1"])]),
        users=NewNodeInputs(["mc-fan"], feats["user"][rows(g.users, "user_id", ["mc-fan"])]),
        triples=t, interactions=clicks)
    assert torch.allclose(ref.items[0].cpu(), e1, atol=1e-6)
    assert torch.allclose(ref.users[0].cpu(), r.user_emb_[r.user_index_.get_loc("mc-fan")], atol=1e-6)


def test_update_replaces_the_nodes_edges_and_interactions(fresh):
    r = fresh
    # an item known from training ("1", Toy Story), with interactions and genre / year edges
    assert (r.graph_.interactions["item_id"] == "1").any()
    r.add_items(pd.DataFrame({"item_id": ["1"], "title": ["Toy Story (1995)"], "genres": ["Drama"]}),
                attributes={"genres": "genre"}, update=True)
    t = r.graph_.triples
    names = t[((t["head_type"] == "item") & (t["head"] == "1")) | ((t["tail_type"] == "item") & (t["tail"] == "1"))]
    assert set(zip(names["head"], names["relation"], names["tail"])) == {("1", "HAS_GENRE", "genre:Drama")}
    assert not (r.graph_.interactions["item_id"] == "1").any(), "the replaced item's old interactions are gone"
    assert r.graph_.items["item_id"].tolist().count("1") == 1

    # an added item named as the tail of a KG edge, then replaced: the old edge goes with it
    from kgrec.errors import UnknownEntityWarning

    with pytest.warns(UnknownEntityWarning, match="person:Ann"):  # a new entity, said so
        r.add_items(pd.DataFrame({"item_id": ["kg-1"], "title": ["Night Train (2031)"]}),
                    triples=pd.DataFrame({"head_type": ["entity"], "head": ["person:Ann"], "relation": ["DIRECTED"],
                                          "tail_type": ["item"], "tail": ["kg-1"]}))
    before = r.item_emb_[r.item_index_.get_loc("kg-1")].clone()
    r.add_items(pd.DataFrame({"item_id": ["kg-1"], "title": ["Night Train (2031)"], "genres": ["Drama"]}),
                attributes={"genres": "genre"}, update=True)
    t = r.graph_.triples
    assert not ((t["tail"] == "kg-1") | (t["head"] == "kg-1") & (t["relation"] != "HAS_GENRE")).any()
    assert not torch.equal(before, r.item_emb_[r.item_index_.get_loc("kg-1")])

    # a user replaced with new clicks keeps only those
    r.add_users(pd.DataFrame({"user_id": ["2"], "occupation": ["writer"]}), attributes={"occupation": "occupation"},
                interactions=pd.DataFrame({"user_id": ["2", "2"], "item_id": ["50", "181"]}), update=True)
    assert sorted(r.graph_.interactions.loc[r.graph_.interactions["user_id"] == "2", "item_id"]) == ["181", "50"]
    assert not {"50", "181"} & set(r.recommend(["2"], k=50)["item_id"])


def test_update_with_the_same_rows_changes_nothing(fresh):
    r = fresh
    new = pd.DataFrame({"item_id": ["same-1", "same-2"], "title": ["Glass Harbour (2032)", "Salt Roads (2032)"],
                        "genres": ["Mumblecore|Drama", "Sea Shanty"]})
    r.add_items(new, attributes={"genres": "genre"})
    pos = torch.as_tensor(r.item_index_.get_indexer(["same-1", "same-2"]))
    first = r.item_emb_[pos].clone()
    warm = r.item_emb_[:pos.min()].clone()
    r.add_items(new, attributes={"genres": "genre"}, update=True)
    assert torch.equal(r.item_emb_[torch.as_tensor(r.item_index_.get_indexer(["same-1", "same-2"]))], first)
    assert torch.equal(r.item_emb_[:pos.min()], warm)
    assert len(r.graph_.triples[r.graph_.triples["head"].isin(["same-1", "same-2"])]) == 3


def test_publish_points_a_direct_user_item_triple_path_at_the_item(tmp_path):
    """An explanation path with inner nodes gets one ``EXPLAINS`` edge per inner node; the user's
    own triple to the item (a direct path, no inner node) gets one edge to the item itself."""
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"{'ab'[u % 2]}{i}") for u in range(20) for i in rng.choice(8, size=5, replace=False)]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id"])
    seen = set(inter.loc[inter["user_id"] == "u0", "item_id"])
    tagged = next(f"b{i}" for i in range(8) if f"b{i}" not in seen)  # u0 is in cluster a: an item it never had
    triples = pd.DataFrame({"head_type": ["user"], "head": ["u0"], "relation": ["TAGGED"],
                            "tail_type": ["item"], "tail": [tagged]})
    items = pd.DataFrame({"item_id": [f"{c}{i}" for c in "ab" for i in range(8)]})
    items["shelf"] = items["item_id"].str[1].astype(int).map(lambda i: f"shelf{i % 3}")
    kg = kgrec.from_tables(interactions=inter, items=items, triples=triples, item_attributes=["shelf"])
    rec = kgrec.Recommender(use_text=False, epochs=5, valid_fraction=0.0, device="cpu", progress=False).fit(kg)
    ex = rec.explain("u0", tagged, top=1000)
    direct = ex[ex["kind"] == "user_item_triple"]
    assert direct["path"].tolist() == [f"user u0 -TAGGED-> {tagged}"]
    with kgrec.open_store(tmp_path / "kgrec.db") as store:
        # every item in every user's list explained, with all its paths
        counts = rec.publish(store, k=16, explain_top=16, explanations=1000)
        got = store.query("MATCH (u:User {id: 'u0'})-[x:EXPLAINS]->(n) WHERE x.item = $item "
                          "RETURN x.path AS path, n.id AS node, x.rank AS rank", item=tagged)
        total = store.query("MATCH ()-[x:EXPLAINS]->() RETURN count(x) AS n")["n"].item()
    assert counts["explains"] == total > 0
    own = got[got["path"] == direct["path"].item()]
    assert own["node"].tolist() == [tagged]                            # one edge, at the item
    others = got[got["path"] != direct["path"].item()]
    assert len(others) > 0 and not others["node"].eq(tagged).any()   # item -shelf- item paths: inner nodes
    paths = ex[ex["nodes"].map(len) > 1]
    assert set(got["path"]) == set(paths["path"])                       # every path of the pair


def test_a_graph_read_back_from_the_store_trains(ml100k_dir, tmp_path):
    """The graph store is one place a KnowledgeGraph comes from: a published graph read back
    (with its features) fits and ranks the same users and items."""
    kg = small_movielens(ml100k_dir, users=60)
    opts = dict(epochs=1, dim=16, layers=1, valid_fraction=0.0, progress=False, use_text=False)
    rec = kgrec.Recommender(**opts).fit(kg)
    with kgrec.open_store(tmp_path / "kgrec.db") as store:
        rec.publish(store, explanations=0)
        graph = store.read_graph()
    again = kgrec.Recommender(**opts).fit(graph)
    assert sorted(again.user_ids()) == sorted(rec.user_ids()) and sorted(again.item_ids()) == sorted(rec.item_ids())
    assert len(again.recommend(["1"], k=5)) == 5
