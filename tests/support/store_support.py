"""Helpers shared by the graph-store tests (not a test module): the ML-100K graph with 384-d
embeddings, recommendation/explanation frames, exact comparisons of graphs, and the store
contract's checks (``check_*``), which ``tests/test_store_contract.py`` runs on both stores."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

import kgrec
from kgrec import KnowledgeGraph
from support.neo4j_server import clear_database

EMBEDDING_DIM = 384


def ml100k(path: Path) -> KnowledgeGraph:
    """ML-100K through the loader, with random float32 384-d features for every node."""
    kg = kgrec.loaders.movielens(path)
    rng = np.random.default_rng(7)
    kg.features = {nt: rng.standard_normal((len(getattr(kg, table)), EMBEDDING_DIM)).astype(np.float32)
                   for nt, table in (("user", "users"), ("item", "items"), ("entity", "entities"))}
    return kg


@contextmanager
def published_on_neo4j(uri: str, driver, kg: KnowledgeGraph) -> Iterator:
    """The shared Neo4j server emptied, then holding ``kg``: the store, open until the block ends."""
    clear_database(driver)
    with kgrec.open_store(uri) as store:
        store.write_graph(kg)
        yield store


def source_counts(kg: KnowledgeGraph) -> dict[str, int]:
    """What ``store.counts()`` must say after ``write_graph(kg)``."""
    return {"users": len(kg.users), "items": len(kg.items), "entities": len(kg.entities),
            "interactions": len(kg.interactions), "knowledge_edges": len(kg.triples)}


def graph_counts(counts: dict[str, int]) -> dict[str, int]:
    return {k: counts[k] for k in ("users", "items", "entities", "interactions", "knowledge_edges")}


def recommendations(kg: KnowledgeGraph, k: int = 10, seed: int = 0, users: int | None = None) -> pd.DataFrame:
    """Random top-k recommendations (distinct items per user) for the first ``users`` users."""
    rng = np.random.default_rng(seed)
    items = kg.items["item_id"].astype(str).to_numpy()
    rows = []
    for u in kg.users["user_id"].astype(str).tolist()[:users]:
        picked = rng.choice(items, k, replace=False)
        for r, i in enumerate(picked, start=1):
            rows.append((u, i, float(1.0 - r / 100), r))
    return pd.DataFrame(rows, columns=["user_id", "item_id", "score", "rank"])


def explanations(recs: pd.DataFrame, kg: KnowledgeGraph) -> pd.DataFrame:
    """Two explanation paths per recommendation: via a genre entity, and via a similar user."""
    genre = kg.entities.loc[kg.entities["kind"] == "genre", "entity_id"].astype(str).tolist()[1]
    other = kg.users["user_id"].astype(str).tolist()[-1]
    rows = []
    for rec in recs.itertuples(index=False):
        p1 = f"user:{rec.user_id} -> item:{rec.item_id} -> {genre}"
        p2 = f"user:{rec.user_id} -> user:{other} -> item:{rec.item_id}"
        rows += [(rec.user_id, rec.item_id, rec.rank, p1, 0.7, "entity", genre),
                 (rec.user_id, rec.item_id, rec.rank, p1, 0.7, "item", rec.item_id),
                 (rec.user_id, rec.item_id, rec.rank, p2, 0.3, "user", other),
                 (rec.user_id, rec.item_id, rec.rank, p2, 0.3, "item", rec.item_id)]
    return pd.DataFrame(rows, columns=["user_id", "item_id", "rank", "path", "weight", "node_type", "node_id"])


def canonical(kg: KnowledgeGraph) -> dict[str, pd.DataFrame]:
    """``kg``'s tables sorted as a store returns them, with features as DataFrame columns."""
    out = {}
    for nt, table, key in (("user", "users", "user_id"), ("item", "items", "item_id"),
                           ("entity", "entities", "entity_id")):
        df = getattr(kg, table).copy()
        if kg.features and nt in kg.features:
            df["embedding"] = list(np.asarray(kg.features[nt], dtype=np.float32))
        out[table] = df.sort_values(key, kind="stable").reset_index(drop=True)
    out["interactions"] = kg.interactions.sort_values(["user_id", "item_id"], kind="stable").reset_index(drop=True)
    out["triples"] = kg.triples.sort_values(list(kg.triples.columns), kind="stable").reset_index(drop=True)
    return out


def assert_same_graph(read: KnowledgeGraph, source: KnowledgeGraph) -> None:
    """Same nodes, properties, edges and (bit-identical float32) embeddings."""
    a, b = canonical(read), canonical(source)
    for name in ("users", "items", "entities", "interactions", "triples"):
        left, right = a[name], b[name]
        emb_l = left.pop("embedding") if "embedding" in left else None
        emb_r = right.pop("embedding") if "embedding" in right else None
        pd.testing.assert_frame_equal(left, right, check_dtype=True, obj=name)
        assert (emb_l is None) == (emb_r is None), f"{name}: embeddings present on one side only"
        if emb_l is not None:
            ml, mr = np.stack(emb_l.to_list()), np.stack(emb_r.to_list())
            assert ml.dtype == np.float32 and mr.dtype == np.float32
            assert np.array_equal(ml, mr), f"{name}: embeddings differ"


def assert_same_heterodata(read: KnowledgeGraph, source: KnowledgeGraph) -> None:
    """``to_heterodata`` of both graphs has the same node ids, features and edge tensors."""
    import torch  # imported here so that child processes using this module start without torch

    from kgrec.graph.heterodata import to_heterodata
    x, y = to_heterodata(read), to_heterodata(source)
    assert sorted(x.node_types) == sorted(y.node_types)
    assert sorted(x.edge_types) == sorted(y.edge_types)
    assert x.relations == y.relations
    for nt in y.node_types:
        assert x[nt].node_id == y[nt].node_id, nt
        assert x[nt].num_nodes == y[nt].num_nodes, nt
        assert ("x" in x[nt]) == ("x" in y[nt]), nt
        if "x" in y[nt]:
            assert x[nt].x.dtype == torch.float32 and torch.equal(x[nt].x, y[nt].x), nt
    for et in y.edge_types:
        assert sorted(x[et].keys()) == sorted(y[et].keys()), et
        for key in y[et].keys():
            assert torch.equal(x[et][key], y[et][key]), (et, key)


# ------------------------------------------------------------------ contract checks both stores pass
def check_round_trip(store, kg: KnowledgeGraph, write: bool = True) -> None:
    """Write ``kg`` with its 384-d features (unless already written), read it back: same graph,
    same HeteroData."""
    if write:
        store.write_graph(kg)
    assert graph_counts(store.counts()) == source_counts(kg)
    back = store.read_graph()
    assert back.features is not None and set(back.features) == {"user", "item", "entity"}
    assert all(f.shape[1] == EMBEDDING_DIM and f.dtype == np.float32 for f in back.features.values())
    assert_same_graph(back, kg)
    assert_same_heterodata(back, kg)


def genre_flags(ml100k_dir: Path) -> int:
    """How many (movie, genre) flags ML-100K's ``u.item`` sets: its item -> genre edges."""
    return sum(int(f) for line in open(ml100k_dir / "u.item", encoding="latin-1")
               for f in line.rstrip("\n").split("|")[5:])


def check_counts_match_the_source_files(store, kg: KnowledgeGraph, ml100k_dir: Path) -> None:
    """The reviewer's check on a store holding ML-100K (``kg``, from ``ml100k_dir``): users, items,
    interactions and genre edges, counted with Cypher, as the raw files say; ``counts()`` agrees."""
    def lines(name: str) -> int:
        return sum(1 for _ in open(ml100k_dir / name, encoding="latin-1"))

    q = store.query
    assert q("MATCH (u:User) RETURN count(u) AS n")["n"].iloc[0] == lines("u.user") == 943
    assert q("MATCH (i:Item) RETURN count(i) AS n")["n"].iloc[0] == lines("u.item") == 1682
    assert q("MATCH (:User)-[r:INTERACTED]->(:Item) RETURN count(r) AS n")["n"].iloc[0] == lines("u.data") == 100_000
    genre = q("MATCH (i:Item)-[r]->(g:Entity) WHERE g.kind = 'genre' RETURN count(r) AS n")["n"].iloc[0]
    assert genre == genre_flags(ml100k_dir)
    assert set(store.counts().items()) >= set(source_counts(kg).items())


def assert_model_summaries(store, recs: dict[str, pd.DataFrame]) -> None:
    """The store's model summaries (Model nodes, RECOMMENDS edges) are exactly those of ``recs``
    (model -> its recommendations), aggregated here with pandas."""
    models = store.query("MATCH (m:Model) RETURN m.id AS model, m.recommendations AS recommendations, "
                         "m.users AS users, m.items AS items ORDER BY model")
    want = pd.DataFrame([(m, len(r), r["user_id"].nunique(), r["item_id"].nunique()) for m, r in sorted(recs.items())],
                        columns=["model", "recommendations", "users", "items"])
    assert models.astype(str).values.tolist() == want.astype(str).values.tolist()
    got = store.query("MATCH (m:Model)-[s:RECOMMENDS]->(i:Item) RETURN m.id AS model, i.id AS item_id, "
                      "s.users AS users, s.mean_score AS mean_score, s.mean_rank AS mean_rank")
    got = got.sort_values(["model", "item_id"]).reset_index(drop=True)
    want = pd.concat([r.groupby("item_id").agg(users=("user_id", "size"), mean_score=("score", "mean"),
                                               mean_rank=("rank", "mean")).reset_index().assign(model=m)
                      for m, r in recs.items()], ignore_index=True)
    want = want.sort_values(["model", "item_id"]).reset_index(drop=True)
    assert got[["model", "item_id"]].values.tolist() == want[["model", "item_id"]].values.tolist()
    assert got["users"].astype(int).tolist() == want["users"].astype(int).tolist()
    means = ["mean_score", "mean_rank"]
    assert np.allclose(got[means].to_numpy(float), want[means].to_numpy(float))


def check_idempotent_and_replacing(store, kg: KnowledgeGraph) -> None:
    """Same graph twice -> same counts; a smaller graph replaces it, keeping the recommendations
    and explanations whose nodes remain, and the model summaries count only those."""
    store.write_graph(kg)
    store.write_graph(kg)
    assert graph_counts(store.counts()) == source_counts(kg)
    recs = recommendations(kg, k=5, users=20)
    store.write_recommendations(recs, "m")
    ex = explanations(recs.head(10), kg)  # some paths run through the last user
    store.write_explanations(ex, "m")
    last = set(kg.users["user_id"].astype(str).tolist()[-15:])
    tail = recommendations(kg, k=4, seed=9)
    tail = tail[tail["user_id"].isin(last)]  # 10 of its 15 users are about to go
    store.write_recommendations(tail, "tail")
    assert_model_summaries(store, {"m": recs, "tail": tail})

    small = subgraph(kg, len(kg.users) - 10)  # the last 10 users go
    keep_users = set(small.users["user_id"].astype(str))
    store.write_graph(small)
    counts = store.counts()
    assert graph_counts(counts) == source_counts(small)
    tail_kept = tail[tail["user_id"].isin(keep_users)]
    assert 0 < len(tail_kept) < len(tail)
    assert counts["recommendations"] == int(recs["user_id"].isin(keep_users).sum()) + len(tail_kept) \
        == len(recs) + len(tail_kept)
    assert_model_summaries(store, {"m": recs, "tail": tail_kept})
    gone = (ex["node_type"] == "user") & ~ex["node_id"].isin(keep_users)
    assert gone.any() and counts["explanations"] == int((~gone).sum())  # edges to removed nodes went with them
    assert_same_graph(store.read_graph(), small)
    store.write_graph(kg)
    assert graph_counts(store.counts()) == source_counts(kg)


def check_recommendations(store, kg: KnowledgeGraph) -> None:
    """A model's edges are replaced; another model's stay; bad input is refused before writing."""
    store.write_graph(kg)
    a = recommendations(kg, k=10, seed=1)
    b = recommendations(kg, k=5, seed=2, users=100)
    assert store.write_recommendations(a, "model-a") == len(a)
    assert store.write_recommendations(b, "model-b") == len(b)
    assert store.counts()["recommendations"] == len(a) + len(b)
    a2 = recommendations(kg, k=3, seed=3, users=50)
    store.write_recommendations(a2, "model-a")
    assert store.counts()["recommendations"] == len(a2) + len(b)
    assert store.models() == ["model-a", "model-b"]
    assert_model_summaries(store, {"model-a": a2, "model-b": b})
    got = store.query("MATCH (u:User {id: $u})-[r:RECOMMENDED]->(i:Item) WHERE r.model = $m "
                      "RETURN i.id AS item, r.score AS score, r.rank AS rank ORDER BY rank", u="1", m="model-a")
    want = a2[a2["user_id"] == "1"].sort_values("rank")
    assert got["item"].tolist() == want["item_id"].tolist()
    assert got["rank"].tolist() == want["rank"].tolist()
    assert np.allclose(got["score"].to_numpy(float), want["score"].to_numpy(float))

    from kgrec.errors import DataError, StoreError
    bad = a2.copy()
    bad.loc[0, "item_id"] = "no-such-item"
    try:
        store.write_recommendations(bad, "model-a")
        raise AssertionError("an unknown item was accepted")
    except StoreError as exc:
        assert "no-such-item" in str(exc) and store.uri in str(exc)
    try:
        store.write_recommendations(a2.drop(columns=["rank"]), "model-a")
        raise AssertionError("a frame without rank was accepted")
    except DataError as exc:
        assert "rank" in str(exc)
    assert store.counts()["recommendations"] == len(a2) + len(b)  # nothing changed
    assert_model_summaries(store, {"model-a": a2, "model-b": b})
    assert store.write_recommendations(b.iloc[:0], "model-b") == 0  # no recommendations: the model goes
    assert store.models() == ["model-a"]
    assert_model_summaries(store, {"model-a": a2})


def check_explanations(store, kg: KnowledgeGraph) -> None:
    """Explanations replace per model and show as paths with Cypher."""
    store.write_graph(kg)
    recs = recommendations(kg, k=3, users=5)
    store.write_recommendations(recs, "m")
    ex = explanations(recs, kg)
    assert store.write_explanations(ex, "m") == len(ex)
    assert store.write_explanations(ex.head(8), "other") == 8
    store.write_explanations(ex.head(4), "m")
    assert store.counts()["explanations"] == 12
    user, item = ex["user_id"].iloc[0], ex["item_id"].iloc[0]
    got = store.query("MATCH (u:User {id: $user})-[x:EXPLAINS]->(n) WHERE x.item = $item AND x.model = $m "
                      "RETURN x.path AS path, x.weight AS weight, n.id AS node ORDER BY weight DESC, node",
                      user=user, item=item, m="m")
    assert sorted(set(got["path"])) == sorted(set(ex["path"].head(4)))
    assert set(got["node"]) == set(ex["node_id"].head(4))
    # a row per path (no node columns) points at the item
    per_path = ex.drop(columns=["node_type", "node_id"]).drop_duplicates(["user_id", "item_id", "path"])
    store.write_explanations(per_path, "per-path")
    got = store.query("MATCH (u:User)-[x:EXPLAINS]->(i:Item) WHERE x.model = $m RETURN count(*) AS n", m="per-path")
    assert int(got["n"].iloc[0]) == len(per_path)


def check_read_only_queries(store, kg: KnowledgeGraph, write: bool = True) -> None:
    """query() refuses every kind of write through the engine; parameters stay parameters."""
    from kgrec.errors import ReadOnlyQueryError, StoreError
    if write:
        store.write_graph(kg)
    before = store.counts()
    writes = ["CREATE (:User {id: 'intruder'})",
              "MATCH (u:User {id: $u}) SET u.name = 'changed'",
              "MATCH (u:User {id: $u}) DETACH DELETE u",
              "MATCH (u:User {id: $u})-[r:INTERACTED]->() DELETE r",
              "MERGE (:Item {id: 'intruder'})"]
    for cypher in writes:
        try:
            store.query(cypher, **({"u": "1"} if "$u" in cypher else {}))
            raise AssertionError(f"write accepted: {cypher}")
        except ReadOnlyQueryError as exc:
            assert store.uri in str(exc)
    try:  # a second statement must not sneak past the read-only transaction
        store.query("MATCH (u:User) RETURN count(u); CREATE (:User {id: 'intruder'})")
        raise AssertionError("two statements accepted")
    except StoreError:
        pass
    assert store.counts() == before
    assert store.query("MATCH (u:User {id: $u}) RETURN u.name AS name", u="1")["name"].isna().all()
    # hostile values are data, not Cypher
    for value in ["1' OR 1=1 //", "1\"}) DETACH DELETE u //", "'; MATCH (n) DETACH DELETE n; //"]:
        df = store.query("MATCH (u:User) WHERE u.id = $u RETURN u.id AS id", u=value)
        assert len(df) == 0
    assert store.counts() == before
    df = store.query("MATCH (u:User {id: $u})-[r:INTERACTED]->(i:Item) RETURN i.id AS item, r.rating AS rating "
                     "ORDER BY item LIMIT $n", u="1", n=3)
    want = kg.interactions[kg.interactions["user_id"] == "1"].sort_values("item_id").head(3)
    assert df["item"].tolist() == want["item_id"].tolist()
    assert df["rating"].tolist() == want["rating"].tolist()
    # the same Cypher reads knowledge edges on both stores
    rel = store.query("MATCH (i:Item)-[r]->(e:Entity) WHERE e.kind = $k RETURN r.relation AS relation, "
                      "count(*) AS n", k="genre")
    assert rel["relation"].tolist() == ["HAS_GENRE"]
    assert int(rel["n"].iloc[0]) == int((kg.triples["relation"] == "HAS_GENRE").sum())


def subgraph(kg: KnowledgeGraph, users: int) -> KnowledgeGraph:
    """The first ``users`` users with their interactions, attribute edges and edges between them;
    every item and entity stays. Features follow the kept rows."""
    keep = kg.users["user_id"].astype(str).head(users)
    mask = kg.users["user_id"].isin(set(keep)).to_numpy()
    small = kg.with_interactions(kg.interactions[kg.interactions["user_id"].isin(set(keep))])
    small.users = kg.users[mask].reset_index(drop=True)
    trip = kg.triples
    kept = ((trip["head_type"] != "user") | trip["head"].isin(set(keep))) & \
        ((trip["tail_type"] != "user") | trip["tail"].isin(set(keep)))
    small.triples = trip[kept].reset_index(drop=True)
    if kg.features:
        small.features = {**kg.features, "user": kg.features["user"][mask]}
    return small
