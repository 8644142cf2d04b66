"""Private publishing and erasure (kgrec.privacy, Recommender.forget_users, GraphStore.forget_users,
``kgrec keygen / publish --pseudonymize / cypher --key / forget``): after a pseudonymised publish
and after a forget, no raw user id, user text, demographic value or timestamp is left in the
store's query results, its file's bytes or the model directory.

The graph is written here with ids and values that cannot occur by chance in a store file
(``alice-7f3c07``, occupation ``zeppelin-pilot``), so that finding none of them in the bytes means
something; each scan is first shown to find them where they are (a raw publish, the model
directory before the forget)."""

from __future__ import annotations

import hashlib
import hmac
import stat
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import kgrec
from kgrec import inspection
from kgrec.errors import DataError, UnknownIdError, UnknownUserWarning
from kgrec.privacy import private_explanations, pseudonym, read_key, without_users, write_key_file
from kgrec.recommender.forget import trained_without
from kgrec.train.setup import training_graph
from support.neo4j_server import clear_database
from test_cli import kgrec as run_kgrec, one_line_error

USERS = [f"alice-7f3c{i:02d}" for i in range(24)]
OCCUPATIONS = ["zeppelin-pilot", "yodel-coach"]
ZIPS = ["Q0Z9", "Q1Z9", "Q2Z9"]
NAMES = [f"Zelda Quux{i:02d}" for i in range(24)]
FORGOTTEN = USERS[:2]
KEY = b"a-test-key-of-32-bytes-0123456789"


def private_kg() -> kgrec.KnowledgeGraph:
    """24 users with names, occupations and zip prefixes, 30 items in 3 genres, 8 timed ratings each."""
    rng = np.random.default_rng(3)
    items = [f"m{i:03d}" for i in range(30)]
    rows = [(u, it, float(rng.integers(1, 6)), 1_700_000_000 + int(rng.integers(0, 10**6)))
            for u in USERS for it in rng.choice(items, 8, replace=False)]
    kg = kgrec.from_tables(
        pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]),
        items=pd.DataFrame({"item_id": items, "title": [f"Film {i}" for i in range(30)],
                            "genres": [("Zorbic", "Quillish", "Mantra")[i % 3] for i in range(30)]}),
        users=pd.DataFrame({"user_id": USERS, "name": NAMES, "occupation": [OCCUPATIONS[i % 2] for i in range(24)],
                            "zip": [ZIPS[i % 3] for i in range(24)]}),
        item_text=("title", "genres"), item_attributes={"genres": "genre"},
        user_attributes={"occupation": "occupation", "zip": "zip"})
    kg.features = {nt: rng.standard_normal((len(getattr(kg, t)), 16)).astype(np.float32)
                   for nt, t in (("user", "users"), ("item", "items"), ("entity", "entities"))}
    return kg


def secrets_of(kg: kgrec.KnowledgeGraph, users: list[str]) -> list[str]:
    """What must not be found about ``users``: ids, names, texts, demographic values."""
    u = kg.users[kg.users["user_id"].isin(users)]
    return [*users, *u["name"].tolist(), *u["text"].tolist(), *OCCUPATIONS, *ZIPS]


@pytest.fixture(scope="module")
def trained() -> kgrec.Recommender:
    return kgrec.Recommender(epochs=2, dim=16, layers=2, progress=False, valid_fraction=0.0).fit(private_kg())


@pytest.fixture(scope="module")
def model_dir(trained, tmp_path_factory) -> Path:
    return trained.save(tmp_path_factory.mktemp("privacy") / "model")


@pytest.fixture
def keyfile(tmp_path: Path) -> Path:
    path = tmp_path / "kgrec.key"
    path.write_bytes(KEY + b"\n")
    return path


@pytest.fixture(params=["embedded", "neo4j"])
def store_uri(request, tmp_path: Path) -> str:
    if request.param == "embedded":
        return str(tmp_path / "kgrec.db")
    clear_database(request.getfixturevalue("neo4j_driver"))
    return request.getfixturevalue("neo4j_uri")


def store_strings(store) -> list[str]:
    """Every node and relationship the store returns (labels, properties, vectors) as text."""
    return [str(v) for q in ("MATCH (n) RETURN n AS v", "MATCH ()-[r]->() RETURN r AS v")
            for v in store.query(q)["v"].tolist()]


def found(texts: list[str], needles: list[str]) -> list[str]:
    return [n for n in needles if any(n in t for t in texts)]


def file_bytes(uri: str) -> bytes:
    """The embedded store's file and any file beside it (WAL) as bytes; nothing for Neo4j."""
    if uri.startswith("bolt://"):
        return b""
    return b"".join(p.read_bytes() for p in Path(uri).parent.glob(Path(uri).name + "*") if p.is_file())


# --------------------------------------------------------------------- keys and pseudonyms
def test_pseudonym_is_the_keyed_hmac() -> None:
    expected = "u_" + hmac.new(KEY, b"alice-7f3c00", hashlib.sha256).hexdigest()[:32]
    assert pseudonym("alice-7f3c00", KEY) == expected
    assert pseudonym("alice-7f3c00", KEY + b"x") != expected
    assert len({pseudonym(u, KEY) for u in USERS}) == len(USERS)


def test_key_files_are_checked(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"missing\.key: key file not found.*kgrec keygen"):
        read_key(tmp_path / "missing.key")
    (tmp_path / "empty.key").write_bytes(b"\n")
    with pytest.raises(DataError, match=r"empty\.key: the key is empty"):
        read_key(tmp_path / "empty.key")
    (tmp_path / "short.key").write_bytes(b"0123456789\n")
    with pytest.raises(DataError, match=r"short\.key: the key has 10 bytes, fewer than 16"):
        read_key(tmp_path / "short.key")
    made = write_key_file(tmp_path / "new.key")
    assert stat.S_IMODE(made.stat().st_mode) == 0o600
    assert len(read_key(made)) == 64 and read_key(made) != read_key(write_key_file(tmp_path / "other.key"))
    with pytest.raises(DataError, match="already exists"):
        write_key_file(made)


def test_similar_user_paths_become_counts() -> None:
    kg = private_kg()
    rows = pd.DataFrame([
        ("alice-7f3c00", "m001", 1, "user alice-7f3c00 -> Film 2 <- user alice-7f3c05 -> Film 1", 0.5, "item", "m002"),
        ("alice-7f3c00", "m001", 1, "user alice-7f3c00 -> Film 2 <- user alice-7f3c05 -> Film 1", 0.5, "user",
         "alice-7f3c05"),
        ("alice-7f3c00", "m001", 2, "user alice-7f3c00 -> Film 3 <- 4 users -> Film 1", 0.2, "item", "m003"),
        ("alice-7f3c00", "m001", 2, "user alice-7f3c00 -> Film 3 <- 4 users -> Film 1", 0.2, "user", "alice-7f3c09"),
        ("alice-7f3c00", "m001", 3, "user alice-7f3c00 -> Film 2 -> genre: Mantra <- Film 1", 0.1, "entity",
         "genre:Mantra")],
        columns=["user_id", "item_id", "rank", "path", "weight", "node_type", "node_id"])
    out = private_explanations(rows, kg, KEY)
    p = pseudonym("alice-7f3c00", KEY)
    assert out["path"].tolist() == [f"user {p} -> Film 2 <- 1 user -> Film 1", f"user {p} -> Film 3 <- 4 users -> Film 1",
                                    f"user {p} -> Film 2 -> genre: Mantra <- Film 1"]
    assert out["node_type"].tolist() == ["item", "item", "entity"] and set(out["user_id"]) == {p}


# --------------------------------------------------------------------- private publishing
def test_a_pseudonymised_publish_holds_no_raw_user_data(trained, keyfile: Path, store_uri: str) -> None:
    kg = trained.graph_
    with kgrec.open_store(store_uri) as store:
        trained.publish(store, k=5, pseudonymize=keyfile)
        texts = store_strings(store)
        assert found(texts, secrets_of(kg, USERS)) == []
        assert found(texts, [KEY.decode(), KEY.hex()]) == []
        stored = store.query("MATCH (u:User) RETURN u.id AS id, u.text AS text, u.embedding AS e")
        assert sorted(stored["id"]) == sorted(pseudonym(u, KEY) for u in USERS)
        assert stored["text"].isna().all() and stored["e"].isna().all()
        stamps = store.query("MATCH ()-[r:INTERACTED]->() RETURN count(r) AS n, count(r.timestamp) AS stamped")
        assert stamps["n"][0] == len(kg.interactions) and stamps["stamped"][0] == 0
        assert store.query("MATCH (:User)-[:EXPLAINS]->(v:User) RETURN count(v) AS n")["n"][0] == 0
        assert store.query("MATCH (:User)-[x:EXPLAINS]->() RETURN count(x) AS n")["n"][0] > 0
        # looked up by raw id + key: the model's own recommendations for that user
        user = USERS[5]
        got = inspection.user_recommendations(store, user, k=5, key=keyfile)
        assert got["item_id"].tolist() == trained.recommend([user], k=5)["item_id"].tolist()
        paths = inspection.explanation_paths(store, user, got["item_id"][0], key=keyfile)
        assert len(paths) > 0 and paths["path"].str.startswith(f"user {pseudonym(user, KEY)} ").all()
    raw = file_bytes(store_uri)
    assert [s for s in secrets_of(kg, USERS) + [KEY.decode()] if s.encode() in raw] == []


def test_the_byte_scan_finds_a_raw_publish(trained, tmp_path: Path) -> None:
    """The control of the test above: the same scans find the users in a store published raw."""
    uri = str(tmp_path / "raw.db")
    with kgrec.open_store(uri) as store:
        trained.publish(store, k=5)
        assert set(found(store_strings(store), secrets_of(trained.graph_, USERS))) == set(secrets_of(trained.graph_,
                                                                                                     USERS))
    raw = file_bytes(uri)
    assert all(u.encode() in raw for u in USERS + NAMES[:3] + OCCUPATIONS)


def test_cli_publish_pseudonymised_and_look_up(model_dir: Path, keyfile: Path, tmp_path: Path) -> None:
    db = tmp_path / "cli.db"
    res = run_kgrec("publish", model_dir, "--store", db, "--k", "3", "--explanations", "1", "--pseudonymize", keyfile)
    assert res.returncode == 0, res.stderr
    res = run_kgrec("cypher", "--query", "user_recommendations", "-p", f"user={USERS[3]}", "--key", keyfile,
                    "--store", db, "--out", tmp_path / "recs.csv")
    assert res.returncode == 0, res.stderr
    assert len(pd.read_csv(tmp_path / "recs.csv")) == 3
    res = run_kgrec("cypher", "MATCH (u:User {id: $user})-[r:RECOMMENDED]->(i) RETURN i.id", "-p",
                    f"user={USERS[3]}", "--key", keyfile, "--store", db, "--out", tmp_path / "raw.csv")
    assert res.returncode == 0 and len(pd.read_csv(tmp_path / "raw.csv")) == 3
    assert USERS[3].encode() not in db.read_bytes()


def test_a_bad_key_publishes_nothing(model_dir: Path, tmp_path: Path) -> None:
    db = tmp_path / "bad.db"
    one_line_error(run_kgrec("publish", model_dir, "--store", db, "--pseudonymize", tmp_path / "nokey"),
                   "nokey: key file not found", "kgrec keygen")
    assert not db.exists() or kgrec.open_store(db, read_only=True).counts()["users"] == 0


# --------------------------------------------------------------------- erasure
def test_forget_equals_the_graph_built_without_them(trained) -> None:
    """The trained model without two users propagates over exactly the tensors that the graph
    without them builds, with the kept nodes' trained ID embeddings."""
    before = trained.trained_
    after = trained_without(before, FORGOTTEN)
    kept = without_users(trained.graph_, FORGOTTEN)
    index, graph = training_graph(kept, kept.features, before.config, before.device)
    graph.x = after.model.reduce_all(graph.x)
    assert index.user_ids.equals(after.index.user_ids) and len(index.user_ids) == len(USERS) - 2
    for name in ("edge_index", "edge_type", "inter_user", "inter_item", "deg"):
        assert torch.equal(getattr(graph, name), getattr(after.graph, name)), name
    assert torch.allclose(graph.edge_norm, after.graph.edge_norm) and torch.allclose(graph.x, after.graph.x)
    kept = before.index.user_ids.get_indexer(index.user_ids)
    old = before.model.id_embedding.weight.detach()
    U = before.index.num_users
    assert torch.equal(after.model.id_embedding.weight.detach(), torch.cat([old[kept], old[U:]]))
    assert before.index.num_users == len(USERS)  # the original is unchanged


def test_forget_users_keeps_everyone_else_working(model_dir: Path, tmp_path: Path) -> None:
    rec = kgrec.Recommender.load(model_dir, progress=False)
    rec.forget_users(FORGOTTEN)
    assert not set(FORGOTTEN) & set(rec.user_ids()) and len(rec.user_ids()) == len(USERS) - 2
    with pytest.raises(UnknownIdError):
        rec.recommend([FORGOTTEN[0]])
    assert not rec.graph_.interactions["user_id"].isin(FORGOTTEN).any()
    assert not rec.graph_.triples["head"].isin(FORGOTTEN).any()
    top = rec.recommend(USERS[2:], k=5)
    seen = set(zip(rec.graph_.interactions["user_id"], rec.graph_.interactions["item_id"]))
    assert len(top) == 5 * 22 and not any((u, i) in seen for u, i in zip(top["user_id"], top["item_id"]))
    user, item = USERS[4], top["item_id"][top["user_id"] == USERS[4]].iloc[0]
    ex = rec.explain(user, item, top=1000)
    assert ex["weight"].sum() == pytest.approx(float(rec.score([user], [item])["score"][0]), abs=1e-4)
    assert not any(f in str(v) for f in FORGOTTEN for v in ex["path"].tolist() + ex["via_id"].tolist())
    held = rec.graph_.interactions.groupby("user_id").head(1)[["user_id", "item_id"]]
    assert set(rec.evaluate(held, k=(5,))) >= {"recall@5", "ndcg@5"}
    loaded = kgrec.Recommender.load(rec.save(tmp_path / "forgot"), progress=False)
    pd.testing.assert_frame_equal(loaded.recommend(USERS[2:], k=5), top)


def test_forget_command_leaves_no_trace_in_the_model_directory(model_dir: Path, tmp_path: Path) -> None:
    import shutil

    work = Path(shutil.copytree(model_dir, tmp_path / "model"))
    forgotten = FORGOTTEN + NAMES[:2]

    def traces() -> list[str]:
        raw = b"".join(p.read_bytes() for p in work.rglob("*") if p.is_file())
        decoded = [str(pd.read_parquet(p).to_dict("list")) for p in (work / "tables").glob("*.parquet")]
        decoded.append(str(torch.load(work / "weights.pt", weights_only=True)["fit"]["index"]["user_ids"]))
        decoded.append((work / "config.json").read_text())
        return [f for f in forgotten if f.encode() in raw or any(f in d for d in decoded)]

    assert traces() == forgotten  # the scan finds them before the forget
    pd.DataFrame({"user_id": FORGOTTEN + ["nobody-here"]}).to_csv(tmp_path / "gone.csv", index=False)
    res = run_kgrec("forget", work, "--users", tmp_path / "gone.csv")
    assert res.returncode == 0, res.stderr
    assert "forgot 2 of 3 user(s)" in res.stdout and "nobody-here" in res.stderr
    assert traces() == []
    state = torch.load(work / "weights.pt", weights_only=True)["fit"]
    inter = pd.read_parquet(work / "tables" / "interactions.parquet")
    assert len(state["graph"]["inter_user"]) == len(inter) == 8 * (len(USERS) - 2)
    assert not [p.name for p in work.parent.iterdir() if p.name.startswith(".model")]  # no old copy left


def test_store_forget_removes_users_edges_and_paths_through_them(trained, store_uri: str) -> None:
    kg = trained.graph_
    with kgrec.open_store(store_uri) as store:
        trained.publish(store, k=5)
        through = "user alice-7f3c05 -> Film 2 <- user alice-7f3c00 -> Film 1"
        other = "user alice-7f3c05 -> Film 2 -> genre: Mantra <- Film 1"
        store.write_explanations(pd.DataFrame(
            [("alice-7f3c05", "m001", 1, through, 0.5, "item", "m002"),
             ("alice-7f3c05", "m001", 1, through, 0.5, "user", "alice-7f3c00"),
             ("alice-7f3c05", "m001", 2, other, 0.1, "entity", "genre:Mantra")],
            columns=["user_id", "item_id", "rank", "path", "weight", "node_type", "node_id"]), "handmade")
        before = store.counts()
        removed = store.forget_users(FORGOTTEN)
        n_inter = int(kg.interactions["user_id"].isin(FORGOTTEN).sum())
        assert removed["users"] == 2 and removed["interactions"] == n_inter and removed["recommendations"] == 10
        assert removed["knowledge_edges"] == 4  # an occupation and a zip each
        assert store.counts()["users"] == before["users"] - 2
        texts = store_strings(store)
        assert found(texts, FORGOTTEN + NAMES[:2]) == []
        handmade = store.query("MATCH (:User)-[x:EXPLAINS]->() WHERE x.model = 'handmade' RETURN x.path AS p")
        assert handmade["p"].tolist() == [other]
        summary = store.query("MATCH (m:Model {id: 'kgrec'}) RETURN m.recommendations AS n, m.users AS u")
        assert (summary["n"][0], summary["u"][0]) == (5 * 22, 22)
        with pytest.warns(UnknownUserWarning, match="alice-7f3c00"):
            assert store.forget_users([FORGOTTEN[0]]) == dict.fromkeys(removed, 0)
    raw = file_bytes(store_uri)
    assert [f for f in FORGOTTEN + NAMES[:2] if f.encode() in raw] == []


def test_forget_a_pseudonymised_store_with_the_key(model_dir: Path, keyfile: Path, tmp_path: Path) -> None:
    import shutil

    work = Path(shutil.copytree(model_dir, tmp_path / "model"))
    db = tmp_path / "private.db"
    assert run_kgrec("publish", work, "--store", db, "--k", "3", "--pseudonymize", keyfile).returncode == 0
    gone = [pseudonym(u, KEY) for u in FORGOTTEN]
    assert all(g.encode() in db.read_bytes() for g in gone)
    pd.DataFrame({"user_id": FORGOTTEN}).to_csv(tmp_path / "gone.csv", index=False)
    res = run_kgrec("forget", work, "--users", tmp_path / "gone.csv", "--store", db, "--key", keyfile)
    assert res.returncode == 0, res.stderr
    with kgrec.open_store(db, read_only=True) as store:
        assert store.counts()["users"] == len(USERS) - 2
        assert found(store_strings(store), gone + FORGOTTEN) == []
    assert [g for g in gone if g.encode() in db.read_bytes()] == []


def test_forgetting_an_unknown_user_warns_and_changes_nothing(trained) -> None:
    with pytest.warns(UnknownUserWarning, match="nobody-1"):
        trained.forget_users(["nobody-1"])
    assert len(trained.user_ids()) == len(USERS)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert trained.forget_users([]) is trained
