"""The Neo4j graph store's own behaviour, against the real Neo4j 5.26 test server: relationship
types from relations, model summaries mended or added, batched and parallel writes, the plan
cache, credentials and connection options, constraints and indexes, servers without dynamic
types, retried batches and transactions the server ends. The checks it shares with the embedded
store (ML-100K round trip with 384-d embeddings, the reviewer's counts, read-only queries,
writes per model) are in test_store_contract.py.

The tests here write a 60-user subgraph of ML-100K with 8-d features."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pyarrow as pa
import pytest

import kgrec
from kgrec.errors import StoreError
from kgrec.graph_schema import neo4j_ddl
from kgrec.store.neo4j_params import column_params, grouped_edge_params, neo4j_type, neo4j_types, supports_dynamic_types
from kgrec.store.neo4j_store import DEFAULT_RETRY_DELAY
from support import store_support as sup


@pytest.fixture(scope="module")
def kg(ml100k_dir: Path) -> kgrec.KnowledgeGraph:
    return sup.ml100k(ml100k_dir)


@pytest.fixture(scope="module")
def small(kg) -> kgrec.KnowledgeGraph:
    """60 users and 8-d features (the 384-d round trip is in test_store_contract.py)."""
    g = sup.subgraph(kg, 60)
    g.features = {k: v[:, :8].copy() for k, v in g.features.items()}
    return g


@pytest.fixture()
def store(clean_neo4j: str):
    with kgrec.open_store(clean_neo4j) as s:
        yield s


def test_relations_are_relationship_types_and_properties(store, small, ml100k_dir: Path) -> None:
    """A knowledge edge's relation is its relationship type (sanitised) and its ``relation``
    property. ``small`` keeps every item and entity of ML-100K, so all its genre edges."""
    store.write_graph(small)
    q = store.query
    n_genre_flags = sup.genre_flags(ml100k_dir)
    assert q("MATCH (:Item)-[r:HAS_GENRE]->(g:Entity) RETURN count(r) AS n")["n"].iloc[0] == n_genre_flags
    assert q("MATCH (i:Item)-[r]->(g:Entity) WHERE g.kind = 'genre' RETURN count(r) AS n")["n"].iloc[0] \
        == n_genre_flags
    types = q("MATCH (:Item)-[r]->(:Entity) RETURN DISTINCT type(r) AS t, r.relation AS rel ORDER BY t")
    assert types["t"].tolist() == types["rel"].map(neo4j_type).tolist()
    item_edges = small.triples[(small.triples["head_type"] == "item") & (small.triples["tail_type"] == "entity")]
    assert len(types) == item_edges["relation"].nunique() > 1  # HAS_GENRE and RELEASED_IN


def test_write_graph_mends_summaries_left_stale_by_an_interrupted_write(clean_neo4j: str, neo4j_driver,
                                                                        small) -> None:
    recs = sup.recommendations(small, k=5, users=30)
    gone = str(recs["user_id"].iloc[0])
    with kgrec.open_store(clean_neo4j) as store:
        store.write_graph(small)
        store.write_recommendations(recs, "m")
        # what a write_graph without that user does before it reaches the summaries
        with neo4j_driver.session() as session:
            session.run("MATCH (u:User {id: $u}) DETACH DELETE u", u=gone).consume()
        store.write_graph(small)  # the user comes back, without recommendations
        sup.assert_model_summaries(store, {"m": recs[recs["user_id"] != gone]})


def test_only_the_users_own_queries_log_server_notifications(neo4j_private_server, small, caplog) -> None:
    """On a new server no property of a model summary exists before the first one is written:
    kgrec's own statements must not make the driver log 'property does not exist' warnings."""
    recs = sup.recommendations(small, k=5, users=30)
    with caplog.at_level(logging.INFO, logger="neo4j.notifications"):
        with kgrec.open_store(neo4j_private_server.uri) as store:
            store.write_graph(small)
            store.write_recommendations(recs, "m")
            store.write_graph(sup.subgraph(small, 50))
            store.read_graph()
            store.counts()
            assert not [r.getMessage() for r in caplog.records if r.name == "neo4j.notifications"]
            store.query("MATCH (n:User) RETURN n.no_such_property AS x LIMIT 1")
    assert any("no_such_property" in r.getMessage() for r in caplog.records if r.name == "neo4j.notifications")


def test_a_database_written_before_model_summaries_gets_them_at_the_next_write(clean_neo4j: str, neo4j_driver,
                                                                                small) -> None:
    recs = sup.recommendations(small, k=5, users=30)
    with kgrec.open_store(clean_neo4j) as store:
        store.write_graph(small)
        store.write_recommendations(recs, "m")
    with neo4j_driver.session() as session:  # what an earlier kgrec left: no summary, no constraint for it
        session.run("MATCH (m:Model) DETACH DELETE m").consume()
        session.run("DROP CONSTRAINT model_id_unique").consume()
    with kgrec.open_store(clean_neo4j) as store:
        assert store.models() == []
        other = sup.recommendations(small, k=2, seed=4, users=10)
        store.write_recommendations(other, "n")
        assert store.models() == ["m", "n"]
        sup.assert_model_summaries(store, {"m": recs, "n": other})


def test_batches_smaller_than_the_graph(clean_neo4j: str, small) -> None:
    """Many small transactions give the same graph as few big ones, written by one transaction
    at a time or by several at once."""
    for parallel in (1, 3):
        with kgrec.open_store(clean_neo4j, batch_size=997, parallel_writes=parallel) as s:
            s.write_graph(small)
            assert sup.graph_counts(s.counts()) == sup.source_counts(small)
            sup.assert_same_graph(s.read_graph(), small)
    with kgrec.open_store(clean_neo4j, batch_size=997, atomic_rows=50) as s:
        s.write_graph(small)
        assert sup.graph_counts(s.counts()) == sup.source_counts(small)
        recs = sup.recommendations(small, k=3, users=40)
        s.write_recommendations(recs, "m")  # 120 rows > atomic_rows: batched path
        s.write_recommendations(recs.head(60), "m")
        assert s.counts()["recommendations"] == 60
        sup.assert_same_graph(s.read_graph(), small)


def _cached_plans_dropped(driver) -> int:
    """Clear the server's query-plan cache and return how many plans it held."""
    message = driver.execute_query("CALL db.clearQueryCaches()").records[0][0]
    if "already empty" in message:
        return 0
    return int(re.search(r"cleared of (\d+) quer", message).group(1))


def test_writes_leave_no_cached_plans(clean_neo4j: str, neo4j_driver, small) -> None:
    """Every write ends with an empty plan cache, so the next inspection query is planned on the
    data just written, not on a plan cached while the database held other data."""
    recs = sup.recommendations(small, k=3, users=20)
    with kgrec.open_store(clean_neo4j) as s:
        for write in (lambda: s.write_graph(small), lambda: s.write_recommendations(recs, "m")):
            s.query("MATCH (u:User {id: $user})-[:INTERACTED]->(i:Item) RETURN count(i) AS n", user="1")
            assert _cached_plans_dropped(neo4j_driver) > 0  # the check sees a cached plan
            s.query("MATCH (u:User {id: $user})-[:INTERACTED]->(i:Item) RETURN count(i) AS n", user="1")
            write()
            assert _cached_plans_dropped(neo4j_driver) == 0


def test_credentials_from_arguments_or_environment(neo4j_uri: str, monkeypatch) -> None:
    """Auth is off on the test server: no credentials works; the env variables are read."""
    monkeypatch.delenv("NEO4J_USER", raising=False)
    monkeypatch.delenv("NEO4J_PASSWORD", raising=False)
    with kgrec.open_store(neo4j_uri) as s:
        assert s.query("RETURN 1 AS one")["one"].tolist() == [1]
    monkeypatch.setenv("NEO4J_USER", "neo4j")
    monkeypatch.setenv("NEO4J_PASSWORD", "whatever")  # an auth-off server accepts any
    with kgrec.open_store(neo4j_uri) as s:
        assert s.query("RETURN 1 AS one")["one"].tolist() == [1]
    with kgrec.open_store(neo4j_uri, user="neo4j", password="x", database="neo4j") as s:
        assert s.database == "neo4j"
        assert s.query("RETURN 2 AS two")["two"].tolist() == [2]
    with pytest.raises(StoreError, match="nosuchdb"):
        kgrec.open_store(neo4j_uri, database="nosuchdb")


def test_relation_types_are_sanitised() -> None:
    assert neo4j_type("music.artist.origin") == "MUSIC_ARTIST_ORIGIN"
    assert neo4j_type("x`]->() DETACH DELETE n //") == "X_DETACH_DELETE_N"
    assert neo4j_type("interacted") == "RELATED"  # never one of the fixed types
    assert neo4j_type("9lives") == "R_9LIVES"
    rows = ["film.film.genre", "9lives", "has genre", "film.film.genre", "INTERACTED", "has genre"]
    for relations in (pa.array(rows), pa.chunked_array([rows[:2], rows[2:]])):
        assert neo4j_types(relations).to_pylist() == [neo4j_type(r) for r in rows]


def test_schema_created_where_missing(clean_neo4j: str, neo4j_driver, small) -> None:
    """The first write creates every constraint and index; a later store recreates one dropped."""
    def names() -> set[str]:
        return {r[0] for q in ("SHOW CONSTRAINTS YIELD name", "SHOW INDEXES YIELD name")
                for r in neo4j_driver.execute_query(q).records}
    wanted = {re.search(r"(?:CONSTRAINT|INDEX) (\w+)", stmt)[1] for stmt in neo4j_ddl()}
    assert not wanted & names()
    with kgrec.open_store(clean_neo4j) as s:
        s.write_graph(small)
    assert wanted <= names()
    neo4j_driver.execute_query("DROP INDEX entity_kind")
    with kgrec.open_store(clean_neo4j) as s:
        s.write_graph(small)
        assert sup.graph_counts(s.counts()) == sup.source_counts(small)
    assert wanted <= names()


def test_knowledge_edges_on_servers_without_dynamic_types(clean_neo4j: str, small) -> None:
    """Before Neo4j 5.26 a relationship type cannot be a parameter: one query per type gives the
    same graph, and either way of writing replaces the other's edges."""
    with kgrec.open_store(clean_neo4j) as s:
        assert s.dynamic_types  # the 5.26 test server
        s.dynamic_types = False
        s.write_graph(small)
        assert sup.graph_counts(s.counts()) == sup.source_counts(small)
        sup.assert_same_graph(s.read_graph(), small)
        s.dynamic_types = True
        s.write_graph(small)
        assert sup.graph_counts(s.counts()) == sup.source_counts(small)
        sup.assert_same_graph(s.read_graph(), small)


def test_dynamic_types_from_the_server_version() -> None:
    assert supports_dynamic_types("Neo4j/5.26.0") and supports_dynamic_types("Neo4j/2025.01.0")
    assert not supports_dynamic_types("Neo4j/5.25.1") and not supports_dynamic_types("Neo4j/4.4.30")
    assert not supports_dynamic_types("Memgraph/2.1") and not supports_dynamic_types("")


def test_edge_parameters_grouped_by_target() -> None:
    """Edges sorted by target: each distinct target once, with the range of its edges."""
    edges = pa.table({"from": list("abcdef"), "to": ["i1", "i1", "i2", "i3", "i3", "i3"],
                      "rating": [1.0, 2.0, 3.0, 4.0, 5.0, 1.5]})
    p = grouped_edge_params(edges)
    assert p["group"] == ["i1", "i2", "i3"] and p["start"] == [0, 2, 3, 6]
    assert p["from"] == list("abcdef") and p["rating"] == [1.0, 2.0, 3.0, 4.0, 5.0, 1.5]
    assert "to" not in p
    for g, target in enumerate(p["group"]):
        assert {edges["from"][k].as_py() for k in range(p["start"][g], p["start"][g + 1])} == \
            {f for f, t in zip(edges["from"].to_pylist(), edges["to"].to_pylist()) if t == target}
    empty = grouped_edge_params(edges.slice(0, 0))
    assert empty["group"] == [] and empty["start"] == [0]


def test_retry_delay_reaches_the_driver(neo4j_uri: str) -> None:
    """A batch that meets a deadlock is retried after retry_delay, not after the driver's 1 s."""
    with kgrec.open_store(neo4j_uri, retry_delay=0.05) as s, s._session() as session:
        assert session._config.initial_retry_delay == 0.05
    with kgrec.open_store(neo4j_uri) as s, s._session() as session:
        assert session._config.initial_retry_delay == DEFAULT_RETRY_DELAY < 1.0
    for bad in (-0.1, "0.1", None, float("nan")):
        with pytest.raises(ValueError, match="retry_delay"):
            kgrec.open_store(neo4j_uri, retry_delay=bad)


def test_column_parameters_have_a_short_repr() -> None:
    """The driver reprs every parameter for its debug log before checking the level: a batch's
    columns must not cost a repr of every value."""
    p = column_params(pa.table({"from": [str(i) for i in range(10_000)], "w": [0.5] * 10_000}))
    assert p["from"] == [str(i) for i in range(10_000)] and isinstance(p["from"], list)
    assert len(repr(p)) < 100


def test_a_retried_batch_does_not_duplicate_edges(clean_neo4j: str, small, monkeypatch) -> None:
    """The driver retries a transaction whose commit it could not confirm; the first attempt may
    have committed. Replay every write batch a second time, as such a retry would: the graph
    must come out exactly once."""
    with kgrec.open_store(clean_neo4j, batch_size=3000) as s:
        real = s._run_write

        def commit_then_retry(work, what):
            with s._session() as session:
                session.execute_write(work)  # attempt 1 commits, "the acknowledgement is lost"
            return real(work, what)  # the driver's retry runs the same work again

        monkeypatch.setattr(s, "_run_write", commit_then_retry)
        s.write_graph(small)
        monkeypatch.setattr(s, "_run_write", real)
        assert sup.graph_counts(s.counts()) == sup.source_counts(small)
        sup.assert_same_graph(s.read_graph(), small)


def test_a_write_the_server_ends_says_to_run_it_again(store, neo4j_driver) -> None:
    """A write transaction that the server ends (TERMINATE TRANSACTIONS from another session here;
    a server shutting down ends open ones the same way) is a StoreError that names the URI and
    says to run the write again, and nothing of it is committed."""
    import threading

    opened, ended = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def work(tx) -> None:
        tx.run("CREATE (:TerminateProbe {id: 1})").consume()
        opened.set()
        ended.wait(30)
        tx.run("CREATE (:TerminateProbe {id: 2})").consume()

    def write() -> None:
        try:
            store._run_write(work, "writing probes")
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    assert opened.wait(30), "the probe transaction never started"
    ids = [r["transactionId"] for r in neo4j_driver.execute_query(
        "SHOW TRANSACTIONS YIELD transactionId, currentQuery "
        "WHERE NOT coalesce(currentQuery, '') STARTS WITH 'SHOW TRANSACTIONS' RETURN transactionId").records]
    assert len(ids) == 1, ids
    neo4j_driver.execute_query("TERMINATE TRANSACTIONS $ids", ids=ids)
    ended.set()
    thread.join(30)
    assert not thread.is_alive() and len(errors) == 1 and isinstance(errors[0], StoreError), errors
    message = str(errors[0])
    assert store.uri in message and "ended the transaction while writing probes" in message
    assert "run the same write again" in message
    assert neo4j_driver.execute_query("MATCH (n:TerminateProbe) RETURN count(n) AS n").records[0]["n"] == 0
