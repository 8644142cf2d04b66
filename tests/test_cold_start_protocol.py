"""The cold-start protocol's helpers (kgrec.cold_start.protocol, run by benchmarks/cold_start.py) on real ML-100K and
HetRec Last.fm data: held-out nodes leave no trace in the training graph, the first-n split
follows timestamps (or file order), and the ranking helper scores what it should. No training."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import kgrec
from kgrec.cold_start import protocol


def _with_row_features(kg):
    """Fake features whose first column is the row number, so slicing can be checked."""
    kg.features = {t: np.arange(len(tab), dtype=np.float32)[:, None].repeat(3, 1)
                   for t, tab in (("user", kg.users), ("item", kg.items), ("entity", kg.entities))}
    return kg


@pytest.fixture(scope="module")
def ml(data_root):
    return _with_row_features(kgrec.loaders.movielens(data_root / "ml-100k"))


def _assert_gone(kg, node_type, ids):
    key = f"{node_type}_id"
    table = kg.items if node_type == "item" else kg.users
    assert not table[key].isin(ids).any()
    assert not kg.interactions[key].isin(ids).any()
    t = kg.triples
    for end in ("head", "tail"):
        assert not ((t[f"{end}_type"] == node_type) & t[end].isin(ids)).any()
    kg.validate()  # every remaining edge names an existing node


@pytest.mark.parametrize("node_type", ["item", "user"])
def test_remove_nodes_leaves_no_trace(ml, node_type):
    train, test = ml.split(f"cold_{node_type}s", test=0.2, seed=0)
    held = set(train.cold_items if node_type == "item" else train.cold_users)
    g = protocol.remove_nodes(train, node_type, held)
    _assert_gone(g, node_type, held)
    assert g.cold_items == frozenset() and g.cold_users == frozenset()
    assert len(g.interactions) == len(train.interactions)  # the held-out nodes had none left in train
    # features follow the kept rows
    for t, tab, orig in (("user", g.users, ml.users), ("item", g.items, ml.items), ("entity", g.entities, ml.entities)):
        key = f"{t}_id" if t != "entity" else "entity_id"
        assert len(g.features[t]) == len(tab)
        rows = pd.Index(orig[key]).get_indexer(tab[key])
        np.testing.assert_array_equal(g.features[t][:, 0], rows.astype(np.float32))
    # an entity goes exactly when no remaining triple names it and a removed one did
    gone = set(ml.entities["entity_id"]) - set(g.entities["entity_id"])
    brought = protocol.node_triples(ml, node_type, held)
    assert gone <= set(brought["tail"]) | set(brought["head"])
    t = g.triples
    still = set(t.loc[t["tail_type"] == "entity", "tail"]) | set(t.loc[t["head_type"] == "entity", "head"])
    assert not gone & still
    if node_type == "user":  # some zip codes are only held-out users'
        assert any(e.startswith("zip:") for e in gone)


def test_node_triples_are_what_the_nodes_bring_back(ml):
    ids = {"1", "2", "50"}
    t = protocol.node_triples(ml, "item", ids)
    assert set(t["head"]) == ids
    assert set(t["relation"]) == {"HAS_GENRE", "RELEASED_IN"}
    rest = protocol.remove_nodes(ml, "item", ids).triples
    assert len(t) + len(rest) == len(ml.triples)


def test_lastfm_user_removal_drops_friend_links_both_ways(data_root):
    kg = kgrec.loaders.hetrec_lastfm(data_root / "hetrec2011-lastfm-2k")
    train, _ = kg.split("cold_users", test=0.2, seed=0)
    held = set(train.cold_users)
    g = protocol.remove_nodes(train, "user", held)
    _assert_gone(g, "user", held)
    brought = protocol.node_triples(kg, "user", held)
    assert len(brought) > 0 and set(brought["relation"]) == {"FRIEND_OF", "TAGGED"}


def test_first_interactions_by_timestamp_then_file_order():
    inter = pd.DataFrame({"user_id": ["a", "a", "a", "a", "b", "b", "c"],
                          "item_id": ["1", "2", "3", "4", "1", "2", "9"],
                          "timestamp": pd.array([40, 10, 10, 30, 5, 1, 7], dtype="Int64")})
    first, rest, by = protocol.first_interactions(inter, 3)
    assert by == "timestamp"
    assert first[first.user_id == "a"].item_id.tolist() == ["2", "3", "4"]  # 10, 10 (file order), 30
    assert rest.item_id.tolist() == ["1"]
    assert first[first.user_id == "b"].item_id.tolist() == ["2", "1"]
    assert len(first) + len(rest) == len(inter)
    no_ts = inter.assign(timestamp=pd.array([None] * len(inter), dtype="Int64"))
    first, rest, by = protocol.first_interactions(no_ts, 2)
    assert by == "file order"
    assert first[first.user_id == "a"].item_id.tolist() == ["1", "2"]
    assert sorted(rest.item_id.tolist()) == ["3", "4"]


def test_first_interactions_on_movielens(ml):
    first, rest, _ = protocol.first_interactions(ml.interactions, 3)
    assert (first.groupby("user_id").size() == 3).all()  # every ML-100K user has >= 20 ratings
    last_given = first.groupby("user_id")["timestamp"].max()
    first_rest = rest.groupby("user_id")["timestamp"].min()
    assert (last_given.reindex(first_rest.index) <= first_rest).all()


def test_ranking_helper_modes_and_random_popularity():
    users = pd.Index(["u0", "u1"])
    items = pd.Index([f"i{j}" for j in range(30)])
    train = pd.DataFrame({"user_id": ["u0", "u1"], "item_id": ["i0", "i1"]})
    test = pd.DataFrame({"user_id": ["u0", "u1"], "item_id": ["i25", "i26"]})
    cold = [f"i{j}" for j in range(25, 30)]
    # an oracle: each user's test item scores highest -> perfect in both modes
    ue = torch.eye(2, 30)
    ie = torch.zeros(30, 30)
    ie[25, 0] = ie[26, 1] = 1.0
    out = protocol.both_modes(ue, ie, users, items, train, test, cold)
    assert out["all"]["recall@20"] == 1.0 and out["cold"]["recall@20"] == 1.0
    assert out["all"]["users_evaluated"] == 2
    # popularity with all-zero counts is a random order: different seeds, different rankings
    a = protocol.popularity_scorer(np.zeros(30), seed=0)(torch.arange(1))
    b = protocol.popularity_scorer(np.zeros(30), seed=1)(torch.arange(1))
    assert not torch.equal(a.argsort(), b.argsort())
    counts = np.zeros(30)
    counts[3] = 2
    assert int(protocol.popularity_scorer(counts)(torch.arange(2)).argmax(1)[0]) == 3
