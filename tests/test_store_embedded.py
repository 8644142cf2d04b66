"""The embedded (ladybug) graph store's own rules, on ML-100K with 384-d embeddings: opening and
closing, read-only stores, one writer at a time, the features argument, LIMIT written into the
statement, prepared queries, model summaries added to an older store. The checks it shares with
the Neo4j store (round trip, counts, queries, writes per model) are in test_store_contract.py."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import kgrec
from kgrec.errors import DataError, StoreError
from kgrec.store.embedded import EmbeddedStore, literal_final_limit
from support import store_support as sup


@pytest.fixture(scope="module")
def kg(ml100k_dir: Path) -> kgrec.KnowledgeGraph:
    return sup.ml100k(ml100k_dir)


@pytest.fixture()
def store(tmp_path: Path):
    with kgrec.open_store(tmp_path / "kgrec.db") as s:
        yield s


def test_open_store_gives_the_embedded_store(tmp_path: Path) -> None:
    with kgrec.open_store(str(tmp_path / "a.db")) as s:
        assert isinstance(s, EmbeddedStore)
        assert s.counts() == {"users": 0, "items": 0, "entities": 0, "interactions": 0, "knowledge_edges": 0,
                              "recommendations": 0, "explanations": 0}
    assert s.closed
    s.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        s.counts()
    with kgrec.open_store(f"file://{tmp_path / 'b.db'}") as s:
        assert isinstance(s, EmbeddedStore)


def test_features_argument_overrides_and_is_checked(store, kg) -> None:
    plain = kg.with_interactions(kg.interactions)
    plain.features = None
    store.write_graph(plain)
    assert store.read_graph().features is None
    items_only = {"item": np.ones((len(kg.items), 8), dtype=np.float32)}
    store.write_graph(plain, features=items_only)
    back = store.read_graph()
    assert set(back.features) == {"item"} and back.features["item"].shape == (len(kg.items), 8)
    with pytest.raises(DataError, match=r"features\['item'\]: has 3 rows"):
        store.write_graph(plain, features={"item": np.zeros((3, 8), dtype=np.float32)})
    bad = np.zeros((len(kg.items), 8), dtype=np.float32)
    bad[5, 2] = np.nan
    with pytest.raises(DataError, match="row 5"):
        store.write_graph(plain, features={"item": bad})
    assert set(store.read_graph().features) == {"item"}  # the refused writes changed nothing


def test_read_only_store(tmp_path: Path, kg) -> None:
    path = tmp_path / "ro.db"
    with pytest.raises(StoreError, match="no store there"):
        kgrec.open_store(path, read_only=True)
    with kgrec.open_store(path) as s:
        s.write_graph(kg)
    with kgrec.open_store(path, read_only=True) as ro:
        assert sup.graph_counts(ro.counts()) == sup.source_counts(kg)
        with pytest.raises(StoreError, match="read-only"):
            ro.write_graph(kg)
        with pytest.raises(StoreError, match="read-only"):
            ro.write_recommendations(sup.recommendations(kg, users=2), "m")


def test_second_writer_in_this_process_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "one.db"
    with kgrec.open_store(path):
        with pytest.raises(StoreError, match=r"one\.db is locked by process \d+"):
            kgrec.open_store(path)
    with kgrec.open_store(path):  # released on close
        pass


def test_open_errors_name_the_location(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        kgrec.open_store(tmp_path)
    with pytest.raises(StoreError, match="does not exist"):
        kgrec.open_store(tmp_path / "missing" / "kgrec.db")
    with pytest.raises(StoreError, match="unsupported scheme 'http://'"):
        kgrec.open_store("http://example.org/db")
    with pytest.raises(StoreError, match="Neo4j settings"):
        kgrec.open_store(tmp_path / "x.db", user="neo4j")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not a database" * 1000)
    with pytest.raises(StoreError, match="junk.db cannot be opened"):
        kgrec.open_store(junk)


def test_only_a_final_integer_limit_is_written_into_the_statement() -> None:
    """ladybug plans a parameterised LIMIT again at every run: a final LIMIT $n with an int n >= 0
    becomes a literal; any other value, or a LIMIT before the last clause, stays a parameter."""
    q = "MATCH (i:Item) RETURN i.id AS item ORDER BY item LIMIT $n"
    assert literal_final_limit(q, {"n": 20}) == "MATCH (i:Item) RETURN i.id AS item ORDER BY item LIMIT 20"
    assert literal_final_limit(q + " ;\n", {"n": 0}).endswith("LIMIT 0")
    assert literal_final_limit(q.replace("LIMIT", "limit"), {"n": 3}).endswith("LIMIT 3")
    for value in (True, -1, 2.0, "5", "5; MATCH (n) DETACH DELETE n", None, [1]):
        assert literal_final_limit(q, {"n": value}) == q
    assert literal_final_limit(q, {}) == q
    inner = "MATCH (i:Item) WITH i LIMIT $n RETURN i.id AS item"
    assert literal_final_limit(inner, {"n": 2}) == inner
    quoted = "RETURN 'LIMIT $n' AS text"
    assert literal_final_limit(quoted, {"n": 2}) == quoted


def test_prepared_queries_follow_parameter_types_and_new_graphs(tmp_path: Path) -> None:
    # query() keeps statements prepared: a parameter of another type, a new graph (write_graph
    # swaps the database file) and new recommendations must still give fresh, right answers
    def graph(items: list[str]) -> kgrec.KnowledgeGraph:
        inter = pd.DataFrame({"user_id": ["u1"] * len(items), "item_id": items})
        return kgrec.from_tables(inter, name="tiny")

    by_id = "MATCH (u:User)-[:INTERACTED]->(i:Item) WHERE i.id = $item RETURN u.id AS user"
    limited = "MATCH (i:Item) RETURN i.id AS item ORDER BY item LIMIT $n"
    with kgrec.open_store(tmp_path / "p.db") as s:
        s.write_graph(graph(["a", "b"]))
        assert s.query(by_id, item="a")["user"].tolist() == ["u1"]
        assert s.query(by_id, item="z").empty
        assert s.query(limited, n=1)["item"].tolist() == ["a"]
        with pytest.raises(StoreError):
            s.query(limited, n="one")    # a string LIMIT is refused, not cast by an earlier plan
        assert s.query(limited, n=2)["item"].tolist() == ["a", "b"]
        echo = "RETURN $v AS v"
        assert s.query(echo, v=3)["v"].tolist() == [3]
        assert s.query(echo, v="three")["v"].tolist() == ["three"]
        assert s.query(echo, v=["a", "b"])["v"].tolist() == [["a", "b"]]
        assert s.query(echo, v=[1.5])["v"].tolist() == [[1.5]]
        s.write_graph(graph(["c"]))
        assert s.query(by_id, item="a").empty
        assert s.query(by_id, item="c")["user"].tolist() == ["u1"]
        assert s.query(limited, n=5)["item"].tolist() == ["c"]
        s.write_recommendations(pd.DataFrame({"user_id": ["u1"], "item_id": ["c"], "score": [0.5], "rank": [1]}), "m")
        recs = "MATCH (:User)-[r:RECOMMENDED]->(i:Item) WHERE r.model = $m RETURN i.id AS item"
        assert s.query(recs, m="m")["item"].tolist() == ["c"]
        s.write_recommendations(pd.DataFrame({"user_id": [], "item_id": [], "score": [], "rank": []}), "m")
        assert s.query(recs, m="m").empty


def test_a_store_written_before_model_summaries_gets_them_when_opened(tmp_path: Path, kg) -> None:
    path = tmp_path / "old.db"
    recs = sup.recommendations(kg, k=5, users=30)
    with kgrec.open_store(path) as store:
        store.write_graph(kg)
        store.write_recommendations(recs, "m")
    import ladybug
    db = ladybug.Database(str(path))  # the tables an earlier kgrec did not create
    conn = ladybug.Connection(db)
    conn.execute("DROP TABLE RECOMMENDS")
    conn.execute("DROP TABLE Model")
    conn.close()
    db.close()
    with kgrec.open_store(path, read_only=True) as store:
        assert store.query("CALL show_tables() RETURN name")["name"].isin(["Model", "RECOMMENDS"]).sum() == 0
    with kgrec.open_store(path) as store:
        assert store.models() == ["m"]
        sup.assert_model_summaries(store, {"m": recs})
