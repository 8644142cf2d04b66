"""Knowledge-graph paths (why_kg_paths_1/2/3): on a small hand-made graph with paths of every
length, in both edge directions, through entity-entity, item-item and user-item edges, with two
relations between one pair of nodes and an entity whose id is the target item's id, both stores
return exactly the paths that a brute-force walk over the knowledge edges finds (the node after
the user's item is never a user)."""

from __future__ import annotations

from itertools import product

import pandas as pd
import pytest

import kgrec
from kgrec import inspection as ins
from support import store_support as sup

USER, TARGET = "u1", "i5"
# (head type, head, relation, tail type, tail)
TRIPLES = [
    ("item", "i1", "HAS_TAG", "entity", "e1"),
    ("item", "i1", "MENTIONS", "entity", "e1"),       # a second relation between the same two nodes
    ("item", "i5", "HAS_TAG", "entity", "e1"),        # i1 -e1- i5: 2 hops, twice
    ("item", "i2", "HAS_TAG", "entity", "e3"),
    ("entity", "e3", "SIMILAR_TO", "entity", "e4"),
    ("item", "i5", "HAS_TAG", "entity", "e4"),        # i2 -e3-e4- i5: 3 hops through an entity-entity edge
    ("entity", "e6", "FEATURES", "item", "i5"),       # 3 hops with each edge pointing the other way:
    ("entity", "e3", "BROADER", "entity", "e6"),      #   i2 -e3-e6- i5 (last edge into i5)
    ("entity", "e7", "SIMILAR_TO", "entity", "e3"),   #   i2 -e3-e7- i5 (middle edge towards e3)
    ("item", "i5", "HAS_TAG", "entity", "e7"),
    ("entity", "e8", "FEATURES", "item", "i2"),       #   i2 -e8-e4- i5 (first edge into i2)
    ("entity", "e8", "SIMILAR_TO", "entity", "e4"),
    ("item", "i3", "SEQUEL_OF", "item", "i5"),        # i3 - i5: 1 hop, item to item
    ("item", "i5", "REMAKE_OF", "item", "i7"),        # i7 - i5: 1 hop, the other direction
    ("entity", "e5", "FEATURES", "item", "i5"),       # an entity -> item edge
    ("item", "i7", "HAS_TAG", "entity", "e5"),        # i7 -e5- i5
    ("item", "i7", "HAS_TAG", "entity", "i5"),        # an entity with the target's id: not the target
    ("entity", "i5", "SIMILAR_TO", "entity", "e4"),   # i7 -[entity i5]-e4- i5: 3 hops
    ("item", "i4", "HAS_TAG", "entity", "e3"),        # i4 is not the user's: no path starts there
    ("item", "i6", "HAS_TAG", "entity", "e1"),        # i1 -e1- i6 -?- i5: no edge from i6 to i5
    ("user", "u1", "HAS_AGE", "entity", "age:25"),    # user attributes are knowledge edges too
    ("user", "u2", "HAS_AGE", "entity", "age:25"),
    ("user", "u1", "FRIEND_OF", "user", "u2"),
    ("user", "u3", "CREATED", "item", "i5"),          # a user next to the target: i2 -e3-u3- i5 counts,
    ("user", "u3", "FOLLOWS", "entity", "e3"),
    ("item", "i3", "MADE_BY", "user", "u3"),          # a user next to the start does not: i3 -u3- i5
    ("user", "u3", "FOLLOWS", "entity", "e4"),        #   nor i3 -u3-e4- i5
]
INTERACTIONS = [("u1", "i1"), ("u1", "i2"), ("u1", "i3"), ("u1", "i7"), ("u2", "i4"), ("u2", "i5"), ("u2", "i1"),
                ("u3", "i6")]


def _graph() -> kgrec.KnowledgeGraph:
    trip = pd.DataFrame(TRIPLES, columns=["head_type", "head", "relation", "tail_type", "tail"])
    inter = pd.DataFrame(INTERACTIONS, columns=["user_id", "item_id"])
    items = pd.DataFrame({"item_id": [f"i{k}" for k in range(1, 8)], "title": [f"Item {k}" for k in range(1, 8)]})
    return kgrec.from_tables(inter, items=items, triples=trip, item_text="title", name="paths")


def brute_force_paths(hops: int) -> set[tuple]:
    """Every walk of ``hops`` knowledge edges (either direction) from an item USER interacted
    with to the item TARGET through distinct nodes, the node after the start not a user, as
    ``(start_item, relation_1, node_1, ..., relation_hops)``."""
    adjacent: dict[tuple[str, str], list[tuple[str, tuple[str, str]]]] = {}
    for ht, h, rel, tt, t in TRIPLES:
        adjacent.setdefault((ht, h), []).append((rel, (tt, t)))
        adjacent.setdefault((tt, t), []).append((rel, (ht, h)))
    starts = [("item", i) for u, i in INTERACTIONS if u == USER]
    found = set()

    def walk(path: list[tuple[str, str]], rels: list[str]) -> None:
        if len(rels) == hops:
            if path[-1] == ("item", TARGET):
                row = [path[0][1]]
                for k, rel in enumerate(rels):
                    row.append(rel)
                    if k + 1 < hops:
                        row.append(path[k + 1][1])
                found.add(tuple(row))
            return
        for rel, node in adjacent.get(path[-1], []):
            last = len(rels) + 1 == hops
            if node in path or (last != (node == ("item", TARGET))) or (len(path) == 1 and node[0] == "user"):
                continue
            walk(path + [node], rels + [rel])

    for start in starts:
        if start != ("item", TARGET):
            walk([start], [])
    return found


def _store_paths(store, hops: int) -> set[tuple]:
    df = ins.run_query(store, f"why_kg_paths_{hops}", user=USER, item=TARGET, limit=1000)
    cols = ["start_item"] + [c for h in range(1, hops + 1)
                             for c in ([f"relation_{h}"] + ([f"node_{h}"] if h < hops else []))]
    rows = [tuple(r) for r in df[cols].itertuples(index=False)]
    assert len(rows) == len(set(rows)), f"{hops}-hop paths repeated: {rows}"
    return set(rows)


def test_the_brute_force_finds_paths_of_every_length() -> None:
    # the expectations below are not empty, and catch the cases named in the module docstring
    assert brute_force_paths(1) == {("i3", "SEQUEL_OF"), ("i7", "REMAKE_OF")}
    two = brute_force_paths(2)
    assert {("i1", "HAS_TAG", "e1", "HAS_TAG"), ("i1", "MENTIONS", "e1", "HAS_TAG"),
            ("i7", "HAS_TAG", "e5", "FEATURES")} == two
    three = brute_force_paths(3)
    assert {("i2", "HAS_TAG", "e3", "SIMILAR_TO", "e4", "HAS_TAG"),
            ("i2", "HAS_TAG", "e3", "BROADER", "e6", "FEATURES"),
            ("i2", "HAS_TAG", "e3", "SIMILAR_TO", "e7", "HAS_TAG"),
            ("i2", "FEATURES", "e8", "SIMILAR_TO", "e4", "HAS_TAG"),
            ("i2", "HAS_TAG", "e3", "FOLLOWS", "u3", "CREATED")} <= three
    assert ("i3", "MADE_BY", "u3", "CREATED") not in two
    assert ("i3", "MADE_BY", "u3", "FOLLOWS", "e4", "HAS_TAG") not in three
    assert ("i7", "HAS_TAG", "i5", "SIMILAR_TO", "e4", "HAS_TAG") in three
    assert all(p[0] != "i4" for p in three)


@pytest.fixture(scope="module")
def graph() -> kgrec.KnowledgeGraph:
    return _graph()


@pytest.fixture(scope="module")
def embedded(tmp_path_factory, graph):
    with kgrec.open_store(tmp_path_factory.mktemp("paths") / "kgrec.db") as store:
        store.write_graph(graph)
        yield store


@pytest.fixture(scope="module")
def neo4j(neo4j_uri: str, neo4j_driver, graph):
    with sup.published_on_neo4j(neo4j_uri, neo4j_driver, graph) as store:
        yield store


@pytest.mark.parametrize("which, hops", list(product(["embedded", "neo4j"], [1, 2, 3])))
def test_paths_are_exactly_the_brute_force_walks(which, hops, request) -> None:
    store = request.getfixturevalue(which)
    assert _store_paths(store, hops) == brute_force_paths(hops)


@pytest.mark.parametrize("which", ["embedded", "neo4j"])
def test_kg_paths_reads_every_length_and_keeps_the_limit(which, request) -> None:
    store = request.getfixturevalue(which)
    got = ins.kg_paths(store, USER, TARGET)
    want = {h: brute_force_paths(h) for h in (1, 2, 3)}
    assert got.groupby("hops").size().to_dict() == {h: len(p) for h, p in want.items()}
    assert got["path"].str.endswith(f"item:{TARGET}").all()
    one = ins.kg_paths(store, USER, TARGET, limit=1)
    assert one.groupby("hops").size().to_dict() == {1: 1, 2: 1, 3: 1}
