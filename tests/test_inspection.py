"""Inspection queries: the same .cypher runs unchanged on the embedded store and on Neo4j, gives
the same rows on both, and the rows agree with the same facts computed with pandas."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

import kgrec
from kgrec import inspection as ins
from support import store_support as sup
from support.neo4j_server import clear_database

USER = "1"


@pytest.fixture(scope="module")
def kg(ml100k_dir: Path) -> kgrec.KnowledgeGraph:
    g = sup.subgraph(kgrec.loaders.movielens(ml100k_dir), 120)
    g.features = None
    # a second behaviour of USER's: TAGGED edges to items with even ids, and the other way round
    # (item -TAGGED_BY-> user) from items with ids divisible by 3
    items = g.items["item_id"].astype(str)
    ids = items.astype(int)
    tagged = pd.DataFrame({"head_type": "user", "head": USER, "relation": "TAGGED", "tail_type": "item",
                           "tail": items[ids % 2 == 0]})
    tagged_by = pd.DataFrame({"head_type": "item", "head": items[ids % 3 == 0], "relation": "TAGGED_BY",
                              "tail_type": "user", "tail": USER})
    g.triples = pd.concat([g.triples, tagged.astype("string"), tagged_by.astype("string")], ignore_index=True)
    return g


@pytest.fixture(scope="module")
def recs(kg) -> pd.DataFrame:
    return sup.recommendations(kg, k=10, seed=5)


@pytest.fixture(scope="module")
def item(kg, recs) -> str:
    """USER's recommended item that most other users interacted with (so every reason shows)."""
    mine = recs.loc[recs["user_id"] == USER, "item_id"]
    fans = kg.interactions[kg.interactions["item_id"].isin(set(mine))]["item_id"].value_counts()
    return str(fans.index[0])


def _publish(store, kg, recs) -> None:
    store.write_graph(kg)
    store.write_recommendations(recs, "m")
    store.write_recommendations(recs[recs["rank"] <= 3], "other")
    store.write_explanations(sup.explanations(recs[recs["rank"] <= 2], kg), "m")


@pytest.fixture(scope="module")
def embedded(tmp_path_factory, kg, recs):
    with kgrec.open_store(tmp_path_factory.mktemp("inspect") / "kgrec.db") as store:
        _publish(store, kg, recs)
        yield store


@pytest.fixture(scope="module")
def neo4j(neo4j_uri: str, neo4j_driver, kg, recs):
    clear_database(neo4j_driver)
    with kgrec.open_store(neo4j_uri) as store:
        _publish(store, kg, recs)
        yield store


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    a, b = a.reset_index(drop=True), b.reset_index(drop=True)
    assert list(a.columns) == list(b.columns)
    if "nodes" in a.columns:  # lists do not compare inside assert_frame_equal on object columns
        assert a["nodes"].map(tuple).tolist() == b["nodes"].map(tuple).tolist()
        a, b = a.drop(columns=["nodes"]), b.drop(columns=["nodes"])
    pd.testing.assert_frame_equal(a, b, check_dtype=False)


def test_queries_ship_with_the_package() -> None:
    files = {p.name for p in resources.files("kgrec").joinpath("queries").iterdir() if p.name.endswith(".cypher")}
    assert files == {f"{n}.cypher" for n in ins.QUERY_NAMES}
    for name in ins.QUERY_NAMES:
        text = ins.load_query(name)
        assert text.lstrip().startswith("//"), f"{name}: no comment saying what it answers"
        assert "MATCH" in text and "RETURN" in text
        assert "'" not in "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("//")) \
            .replace("''", ""), f"{name}: a literal value instead of a $parameter"


def test_every_query_gives_the_same_rows_on_both_stores(embedded, neo4j, item) -> None:
    for name in ins.QUERY_NAMES:
        params = {"user": USER, "item": item, "model": "m", "k": 5, "limit": 10}
        a = ins.run_query(embedded, name, **params)
        b = ins.run_query(neo4j, name, **params)
        _same(a, b)


def test_functions_give_the_same_frames_on_both_stores(embedded, neo4j, item) -> None:
    calls = [lambda s: ins.user_recommendations(s, USER, k=5),
             lambda s: ins.user_recommendations(s, USER, model="other"),
             lambda s: ins.shared_attributes(s, USER, item),
             lambda s: ins.similar_users(s, USER, item),
             lambda s: ins.kg_paths(s, USER, item, limit=5),
             lambda s: ins.why_recommended(s, USER, item),
             lambda s: ins.why_recommended(s, USER, "6"),
             lambda s: ins.explanation_paths(s, USER, item),
             lambda s: ins.top_recommended(s, "m", limit=10),
             lambda s: ins.recommendation_coverage(s, "m"),
             lambda s: ins.recommendation_coverage(s, "no-such-model")]
    for call in calls:
        _same(call(embedded), call(neo4j))


@pytest.mark.parametrize("which", ["embedded", "neo4j"])
def test_answers_match_pandas(which, request, kg, recs, item) -> None:
    store = request.getfixturevalue(which)
    # a user's recommendations, best first, per model
    got = ins.user_recommendations(store, USER, model="m", k=4)
    want = recs[recs["user_id"] == USER].sort_values("rank").head(4)
    assert got["item_id"].tolist() == want["item_id"].tolist()
    assert got["rank"].tolist() == [1, 2, 3, 4]
    both = ins.user_recommendations(store, USER, k=2)
    assert both["model"].tolist() == ["m", "m", "other", "other"]

    # shared attributes: entities of `item` also on items the user interacted with
    seen = set(kg.interactions.loc[kg.interactions["user_id"] == USER, "item_id"]) - {item}
    item_edges = kg.triples[(kg.triples["head_type"] == "item") & (kg.triples["tail_type"] == "entity")]
    attrs = set(item_edges.loc[item_edges["head"] == item, "tail"])
    shared = item_edges[item_edges["head"].isin(seen) & item_edges["tail"].isin(attrs)]
    want = shared.groupby("tail")["head"].nunique()
    got = ins.shared_attributes(store, USER, item, limit=50)
    assert dict(zip(got["entity_id"], got["items"])) == want.to_dict()
    assert got["items"].is_monotonic_decreasing

    # similar users: users who interacted with `item`, by items shared with USER
    inter = kg.interactions
    fans = set(inter.loc[inter["item_id"] == item, "user_id"]) - {USER}
    overlap = inter[inter["user_id"].isin(fans) & inter["item_id"].isin(seen)].groupby("user_id")["item_id"].nunique()
    got = ins.similar_users(store, USER, item, limit=500)
    assert dict(zip(got["user_id"], got["shared_items"])) == overlap.to_dict()

    # 2-hop KG paths: (an item the user interacted with, an attribute it shares with `item`)
    pairs = shared[["head", "tail"]].drop_duplicates()
    assert len(pairs) > 0
    got = ins.kg_paths(store, USER, item, max_hops=2, limit=10_000)
    two = got[got["hops"] == 2]
    assert sorted(zip(two["start_item"], two["nodes"].str[0])) == sorted(zip(pairs["head"], pairs["tail"]))

    # the user's own knowledge edges to an item, either way round
    t = kg.triples
    out = (t["head_type"] == "user") & (t["head"] == USER) & (t["tail_type"] == "item")
    into = (t["tail_type"] == "user") & (t["tail"] == USER) & (t["head_type"] == "item")
    own = pd.concat([t[out].assign(item=t["tail"]), t[into].assign(item=t["head"])])
    for x in (item, "6", "4", "3", "1"):
        mine = own.loc[own["item"] == x, "relation"].value_counts().sort_index()
        got = ins.user_item_triples(store, USER, x)
        assert dict(zip(got["relation"], got["edges"])) == mine.to_dict(), x
    assert ins.user_item_triples(store, USER, "6")["relation"].tolist() == ["TAGGED", "TAGGED_BY"]
    assert ins.user_item_triples(store, USER, "1").empty
    why6 = ins.why_recommended(store, USER, "6")
    assert why6.loc[why6["reason"] == "user_item_triple", "path"].tolist() == \
        [f"user:{USER} -TAGGED- item:6", f"user:{USER} -TAGGED_BY- item:6"]

    # why: every reason is there, with readable paths
    why = ins.why_recommended(store, USER, item)
    assert set(why["reason"]) >= {"shared_attribute", "similar_user"}
    assert why["path"].str.startswith(f"user:{USER} ").all() and why["path"].str.endswith(f"item:{item}").all()

    # what the model recommends most
    top = ins.top_recommended(store, "m", limit=5)
    counts = recs["item_id"].value_counts()
    assert top["recommendations"].tolist() == counts.sort_values(ascending=False).head(5).tolist()
    assert abs(top["share"].iloc[0] - counts.max() / len(recs)) < 1e-12
    cov = ins.recommendation_coverage(store, "m").iloc[0]
    assert (cov["recommendations"], cov["users"], cov["items"], cov["catalog_items"]) == \
        (len(recs), recs["user_id"].nunique(), recs["item_id"].nunique(), len(kg.items))

    # published explanation paths
    paths = ins.explanation_paths(store, USER, item)
    explained = set(recs.loc[(recs["user_id"] == USER) & (recs["rank"] <= 2), "item_id"])
    assert len(paths) == (2 if item in explained else 0)
    first = recs.loc[(recs["user_id"] == USER) & (recs["rank"] == 1), "item_id"].iloc[0]
    paths = ins.explanation_paths(store, USER, first, model="m")
    assert paths["weight"].tolist() == [0.7, 0.3] and paths["rank"].tolist() == [1, 1]
    assert all(len(n) == 2 for n in paths["nodes"])
    assert ins.explanation_paths(store, USER, first, model="other").empty


def test_bad_arguments_are_refused_before_querying(embedded) -> None:
    with pytest.raises(ValueError, match="user id is empty"):
        ins.user_recommendations(embedded, " ")
    with pytest.raises(ValueError, match="k must be at least 1"):
        ins.user_recommendations(embedded, USER, k=0)
    with pytest.raises(ValueError, match="max_hops"):
        ins.kg_paths(embedded, USER, "1", max_hops=4)
    with pytest.raises(KeyError, match="no query named"):
        ins.load_query("drop_everything")
