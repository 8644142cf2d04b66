"""The graph-store contract, run once per store: the embedded (ladybug) store on tmp_path and the
Neo4j store on the shared Neo4j 5.26 test server each get the same checks (``support.store_support``'s
``check_*``): the ML-100K round trip with 384-d embeddings, the reviewer's counts, read-only
parameterised queries, idempotent and replacing writes, recommendations and explanations per model.

What only one store does (opening rules, locks, Neo4j's DDL, credentials, retries) is tested in
test_store_embedded.py and test_store_neo4j.py.

ML-100K is written once per store for the checks that only read it (about 30 s on Neo4j on 2
shared cores). The checks that write again and again write all of ML-100K to the embedded store
and a 60-user subgraph with 8-d features to Neo4j."""

from __future__ import annotations

from pathlib import Path

import pytest

import kgrec
from kgrec.store.embedded import EmbeddedStore
from kgrec.store.neo4j_store import Neo4jStore
from support import store_support as sup
from support.neo4j_server import clear_database

# The Neo4j cases are marked here: conftest marks tests by the Neo4j fixtures they name, and these
# reach the server through request.getfixturevalue, only for their own parameter.
STORES = ["embedded", pytest.param("neo4j", marks=pytest.mark.neo4j)]
STORE_CLASS = {"embedded": EmbeddedStore, "neo4j": Neo4jStore}


@pytest.fixture(scope="module", params=STORES)
def store_kind(request) -> str:
    """Which store the contract runs on; module-scoped, so that pytest runs all of one store's
    checks, then all of the other's (the published ML-100K is written once per store)."""
    return request.param


@pytest.fixture(scope="module")
def kg(ml100k_dir: Path) -> kgrec.KnowledgeGraph:
    return sup.ml100k(ml100k_dir)


@pytest.fixture(scope="module")
def graph(store_kind: str, kg) -> kgrec.KnowledgeGraph:
    """The graph the writing checks write again and again: all of ML-100K with 384-d features on
    the embedded store; 60 users and 8-d features on Neo4j (the 384-d round trip is
    test_round_trip_ml100k_with_embeddings)."""
    if store_kind == "embedded":
        return kg
    g = sup.subgraph(kg, 60)
    g.features = {k: v[:, :8].copy() for k, v in g.features.items()}
    return g


@pytest.fixture(scope="module")
def _published_store(store_kind: str, kg, tmp_path_factory, request):
    """The store holding ML-100K, written once per store for the checks that only read it."""
    if store_kind == "embedded":
        with kgrec.open_store(tmp_path_factory.mktemp("published") / "kgrec.db") as store:
            store.write_graph(kg)
            yield store
    else:
        with sup.published_on_neo4j(request.getfixturevalue("neo4j_uri"), request.getfixturevalue("neo4j_driver"),
                                    kg) as store:
            yield store


@pytest.fixture()
def published(_published_store, store_kind: str, kg, request):
    """The published store, written again if a test on the clean server emptied it in between
    (the reading checks come first in this file, so that happens only when tests are reordered)."""
    if sup.graph_counts(_published_store.counts()) != sup.source_counts(kg):
        if store_kind == "neo4j":
            clear_database(request.getfixturevalue("neo4j_driver"))
        _published_store.write_graph(kg)
    return _published_store


@pytest.fixture()
def store(store_kind: str, tmp_path: Path, request):
    """An empty open store: a new embedded database on tmp_path, or the emptied shared Neo4j server."""
    location = tmp_path / "kgrec.db" if store_kind == "embedded" else request.getfixturevalue("clean_neo4j")
    with kgrec.open_store(location) as s:
        yield s


# ------------------------------------------------------------------ on the published ML-100K (read only)
def test_round_trip_ml100k_with_embeddings(published, store_kind: str, kg) -> None:
    assert isinstance(published, STORE_CLASS[store_kind])
    sup.check_round_trip(published, kg, write=False)
    # the graph read back is named after the store: its file, or the server's URI
    assert published.read_graph().name == ("kgrec.db" if store_kind == "embedded" else published.uri)


def test_counts_match_the_source_files(published, kg, ml100k_dir: Path) -> None:
    sup.check_counts_match_the_source_files(published, kg, ml100k_dir)


def test_query_is_read_only_and_parameterised(published, kg) -> None:
    sup.check_read_only_queries(published, kg, write=False)


# ------------------------------------------------------------------ on an empty store (writes)
def test_publish_twice_and_replace_with_a_smaller_graph(store, graph) -> None:
    sup.check_idempotent_and_replacing(store, graph)


def test_recommendations_replace_only_their_model(store, graph) -> None:
    sup.check_recommendations(store, graph)


def test_explanations_per_model(store, graph) -> None:
    sup.check_explanations(store, graph)
