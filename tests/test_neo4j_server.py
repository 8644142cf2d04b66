"""The Neo4j test server itself: it answers Cypher over Bolt, enforces constraints, and a
private server keeps its store across a clean stop, a SIGKILL and a restart."""

from __future__ import annotations

import neo4j
import pytest
from neo4j.exceptions import ConstraintError, ServiceUnavailable, SessionExpired

from support.neo4j_server import clear_database

pytestmark = pytest.mark.neo4j


def test_server_is_neo4j_5_26_community(neo4j_driver):
    records, _, _ = neo4j_driver.execute_query(
        "CALL dbms.components() YIELD name, versions, edition RETURN name, versions[0] AS version, edition")
    assert records[0]["name"] == "Neo4j Kernel"
    assert records[0]["version"].startswith("5.26.")
    assert records[0]["edition"] == "community"


def test_create_and_read_nodes_with_parameters(neo4j_driver, clean_neo4j):
    rows = [{"id": str(i), "text": f"item {i}", "embedding": [i / 10, 1.0, -0.5]} for i in range(100)]
    neo4j_driver.execute_query(
        "UNWIND $rows AS row CREATE (i:Item {id: row.id, text: row.text, embedding: row.embedding})", rows=rows)
    neo4j_driver.execute_query(
        "MATCH (a:Item {id: '1'}), (b:Item {id: '2'}) CREATE (a)-[:SIMILAR {weight: 0.5}]->(b)")

    records, _, _ = neo4j_driver.execute_query(
        "MATCH (i:Item) WHERE i.id IN $ids RETURN i.id AS id, i.text AS text, i.embedding AS e ORDER BY id",
        ids=["3", "7"])
    assert [(r["id"], r["text"], r["e"]) for r in records] == [
        ("3", "item 3", [0.3, 1.0, -0.5]), ("7", "item 7", [0.7, 1.0, -0.5])]
    records, _, _ = neo4j_driver.execute_query(
        "MATCH (:Item {id: $a})-[r:SIMILAR]->(b:Item) RETURN b.id AS id, r.weight AS w", a="1")
    assert [(r["id"], r["w"]) for r in records] == [("2", 0.5)]


def test_uniqueness_constraint_is_enforced(neo4j_driver, clean_neo4j):
    neo4j_driver.execute_query("CREATE CONSTRAINT user_id IF NOT EXISTS FOR (u:User) REQUIRE u.id IS UNIQUE")
    neo4j_driver.execute_query("CREATE (:User {id: '42'})")
    with pytest.raises(ConstraintError):
        neo4j_driver.execute_query("CREATE (:User {id: '42'})")
    neo4j_driver.execute_query("MERGE (:User {id: '42'})")  # MERGE on the unique id is the way
    records, _, _ = neo4j_driver.execute_query("MATCH (u:User) RETURN count(u) AS n")
    assert records[0]["n"] == 1


def test_clean_neo4j_empties_nodes_constraints_and_indexes(neo4j_driver, clean_neo4j):
    neo4j_driver.execute_query("CREATE CONSTRAINT item_id IF NOT EXISTS FOR (i:Item) REQUIRE i.id IS UNIQUE")
    neo4j_driver.execute_query("CREATE INDEX item_text IF NOT EXISTS FOR (i:Item) ON (i.text)")
    neo4j_driver.execute_query("CREATE (:Item {id: '1'})-[:HAS_GENRE]->(:Attribute {id: 'genre:Drama'})")

    clear_database(neo4j_driver)

    counts, _, _ = neo4j_driver.execute_query(
        "MATCH (n) OPTIONAL MATCH (n)-[r]-() RETURN count(DISTINCT n) AS nodes, count(r) AS rels")
    assert (counts[0]["nodes"], counts[0]["rels"]) == (0, 0)
    constraints, _, _ = neo4j_driver.execute_query("SHOW CONSTRAINTS YIELD name RETURN name")
    assert constraints == []
    indexes, _, _ = neo4j_driver.execute_query("SHOW INDEXES YIELD type RETURN type")
    assert {r["type"] for r in indexes} <= {"LOOKUP"}


def _count_items(driver) -> int:
    records, _, _ = driver.execute_query("MATCH (i:Item) RETURN count(i) AS n")
    return records[0]["n"]


def test_private_server_keeps_data_across_restart_and_kill(neo4j_private_server):
    server = neo4j_private_server
    uri = server.uri
    with neo4j.GraphDatabase.driver(uri, auth=None) as driver:
        driver.execute_query("CREATE CONSTRAINT item_id FOR (i:Item) REQUIRE i.id IS UNIQUE")
        driver.execute_query("UNWIND range(1, 500) AS k CREATE (:Item {id: toString(k)})")
        assert _count_items(driver) == 500

        # clean stop (SIGTERM) and start on the same port and store: same URI, data, constraint
        first_pid = server.pid
        server.restart()
        assert server.is_running() and server.pid != first_pid and server.uri == uri
        assert _count_items(driver) == 500
        with pytest.raises(ConstraintError):
            driver.execute_query("CREATE (:Item {id: '1'})")

        # SIGKILL in the middle of an open write transaction: nothing answers until the next
        # start, which recovers the committed data and drops the uncommitted write
        driver.execute_query("CREATE (:Item {id: 'committed'})")
        session = driver.session()
        tx = session.begin_transaction()
        tx.run("UNWIND range(1, 1000) AS k CREATE (:Item {id: 'open-' + toString(k)})").consume()
        assert server.kill() == -9
        assert not server.is_running()
        with pytest.raises((ServiceUnavailable, SessionExpired)):
            tx.commit()
        session.close()
        with pytest.raises(ServiceUnavailable):
            driver.verify_connectivity()

        server.start()
        assert _count_items(driver) == 501
        records, _, _ = driver.execute_query("MATCH (i:Item) WHERE i.id STARTS WITH 'open-' RETURN count(i) AS n")
        assert records[0]["n"] == 0

    assert server.stop() in (0, 143)  # 143: the JVM's exit status after SIGTERM
