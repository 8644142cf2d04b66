"""HetRec Last.fm (with the KGCN knowledge graph) publishes to both stores and reads back the
same: its user -> user FRIEND_OF edges and item -> item knowledge edges included."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import kgrec
from support import store_support as sup
from support.neo4j_server import clear_database


@pytest.fixture(scope="module")
def lastfm(data_root: Path) -> kgrec.KnowledgeGraph:
    full = kgrec.loaders.hetrec_lastfm(data_root / "hetrec2011-lastfm-2k", kg_dir=data_root / "lastfm-kgcn")
    kg = _items_of_users(sup.subgraph(full, 60))
    rng = np.random.default_rng(3)
    kg.features = {nt: rng.standard_normal((len(getattr(kg, table)), sup.EMBEDDING_DIM)).astype(np.float32)
                   for nt, table in (("user", "users"), ("item", "items"), ("entity", "entities"))}
    pairs = set(zip(kg.triples["head_type"], kg.triples["tail_type"]))
    assert {("user", "user"), ("item", "item"), ("item", "entity")} <= pairs
    return kg


def _items_of_users(kg: kgrec.KnowledgeGraph) -> kgrec.KnowledgeGraph:
    """Only the items the users interacted with, the knowledge edges among the kept nodes and
    the entities those edges reach (keeps the Neo4j write to a few seconds)."""
    items = set(kg.interactions["item_id"])
    trip = kg.triples
    keep = ((trip["head_type"] != "item") | trip["head"].isin(items)) & \
        ((trip["tail_type"] != "item") | trip["tail"].isin(items))
    trip = trip[keep]
    entities = set(trip.loc[trip["head_type"] == "entity", "head"]) | \
        set(trip.loc[trip["tail_type"] == "entity", "tail"])
    kg.items = kg.items[kg.items["item_id"].isin(items)].reset_index(drop=True)
    kg.entities = kg.entities[kg.entities["entity_id"].isin(entities)].reset_index(drop=True)
    kg.triples = trip.reset_index(drop=True)
    return kg


def test_round_trip_embedded(tmp_path: Path, lastfm) -> None:
    with kgrec.open_store(tmp_path / "lastfm.db") as store:
        sup.check_round_trip(store, lastfm)


def test_round_trip_neo4j(neo4j_uri: str, neo4j_driver, lastfm) -> None:
    clear_database(neo4j_driver)
    with kgrec.open_store(neo4j_uri) as store:
        sup.check_round_trip(store, lastfm)
        friends = store.query("MATCH (:User)-[r:FRIEND_OF]->(:User) RETURN count(r) AS n")["n"].iloc[0]
    want = ((lastfm.triples["head_type"] == "user") & (lastfm.triples["tail_type"] == "user")).sum()
    assert friends == want > 0
