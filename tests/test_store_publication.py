"""A publication (graph + a model's recommendations + its explanations) is one write: killed at
random moments, raced by a second writer and read during the write, a store shows the previous
publication or the new one, never a mix, and opens read-only without a repair step."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

import kgrec
from kgrec.errors import DataError
from kgrec.store.result_tables import STAGING_PREFIX
from support import store_support as sup
from support.child_process import child, kill_at_random, read_until

# Two publications of model "m" that differ in everything a reader sees: the graph (B has 4/5 of
# A's interactions), the recommendations (A: 10 per user with scores < 1; B: 5 per user, scores
# >= 1) and the explanations (one path per recommendation, weights 0.7 / 0.3 per state).
DATA = r"""
from support import store_support as sup

def publications(data_dir):
    kg_a = sup.ml100k(data_dir)
    kg_b = kg_a.with_interactions(kg_a.interactions.iloc[: len(kg_a.interactions) * 4 // 5])
    kg_b.features = {k: v + 1 for k, v in kg_a.features.items()}
    recs_a = sup.recommendations(kg_a, k=10, seed=1)
    recs_b = sup.recommendations(kg_b, k=5, seed=2).assign(score=lambda d: d["score"] + 1.0)
    expl_a = sup.explanations(recs_a, kg_a)
    expl_b = sup.explanations(recs_b, kg_b)
    return {"A": (kg_a, recs_a, expl_a[expl_a["weight"] > 0.5]), "B": (kg_b, recs_b, expl_b[expl_b["weight"] < 0.5])}
"""
SETUP = "import sys\nsys.path.insert(0, sys.argv[3])\n" + DATA  # a child finds tests/support via argv[3]

# publishes A then B, again and again, saying "begin X" / "done X" around each, until killed
PUBLISHER = SETUP + r"""
import kgrec
pubs = publications(sys.argv[2])
with kgrec.open_store(sys.argv[1], timeout=60) as store:
    while True:
        for name in "AB":
            print("begin", name, flush=True)
            store.publish_model(*pubs[name][:3], "m")
            print("done", name, flush=True)
"""

# one publication of the state named in argv[4], with the writer lock waited for up to 120 s
ONE_PUBLISH = SETUP + r"""
import time
import kgrec
pubs = publications(sys.argv[2])
with kgrec.open_store(sys.argv[1], timeout=120) as store:
    print("open", time.monotonic(), flush=True)
    store.publish_model(*pubs[sys.argv[4]][:3], "m")
    print("done", time.monotonic(), flush=True)
"""


def _publications(ml100k_dir: Path) -> dict:
    namespace: dict = {}
    exec(DATA, namespace)  # the children's data, built the same way here
    return namespace["publications"](ml100k_dir)


def _expected(pub: tuple) -> tuple:
    kg, recs, expl = pub
    return (len(kg.interactions), len(recs), len(expl))


def _state(store) -> tuple:
    """(interactions, recommendations, explanations) and whether every score and weight agrees
    with the state those counts name."""
    c = store.counts()
    scores = store.query("MATCH ()-[r:RECOMMENDED]->() RETURN min(r.score) AS lo, max(r.score) AS hi")
    weights = store.query("MATCH ()-[x:EXPLAINS]->() RETURN min(x.weight) AS lo, max(x.weight) AS hi")
    return (c["interactions"], c["recommendations"], c["explanations"]), (
        float(scores["lo"][0]), float(scores["hi"][0]), float(weights["lo"][0]), float(weights["hi"][0]))


def _consistent(state: tuple, expected: dict) -> str | None:
    counts, (s_lo, s_hi, w_lo, w_hi) = state
    if counts == expected["A"] and s_hi < 1 and w_lo > 0.5:
        return "A"
    if counts == expected["B"] and s_lo >= 1 and w_hi < 0.5:
        return "B"
    return None


def _store_holding_a(tmp_path: Path, ml100k_dir: Path) -> tuple[dict, Path]:
    """``(expected, path)``: each publication's expected state, and a store at ``path`` holding
    publication A of model ``m``."""
    pubs = _publications(ml100k_dir)
    path = tmp_path / "kgrec.db"
    with kgrec.open_store(path) as store:
        store.publish_model(*pubs["A"], "m")
    return {name: _expected(pub) for name, pub in pubs.items()}, path


def test_publication_killed_at_random_moments_leaves_one_whole_state(tmp_path: Path, ml100k_dir: Path) -> None:
    expected, path = _store_holding_a(tmp_path, ml100k_dir)
    tests_dir = str(Path(__file__).parent)
    rng = np.random.default_rng(0)
    killed_mid_publish = 0
    for _ in range(4):
        proc = child(PUBLISHER, str(path), str(ml100k_dir), tests_dir)
        # after one committed publication (the child is in its loop)
        killed_mid_publish += kill_at_random(proc, rng, max_delay=2.0, timeout=300)
        with kgrec.open_store(path, read_only=True) as store:  # no writer opened it since the kill
            state = _state(store)
        assert _consistent(state, expected) is not None, state
    assert killed_mid_publish >= 1, "no kill landed inside a publication; the test proved nothing"


def test_readers_during_publications_never_fail_and_never_see_a_mix(tmp_path: Path, ml100k_dir: Path) -> None:
    expected, path = _store_holding_a(tmp_path, ml100k_dir)
    proc = child(PUBLISHER, str(path), str(ml100k_dir), str(Path(__file__).parent))
    seen: dict[str | None, int] = {}
    try:
        read_until(proc, "begin", timeout=300)
        deadline = time.monotonic() + 45
        while time.monotonic() < deadline:
            with kgrec.open_store(path, read_only=True) as store:  # must not raise
                name = _consistent(_state(store), expected)
            seen[name] = seen.get(name, 0) + 1
            time.sleep(0.03)
    finally:
        proc.kill()
        proc.wait(10)
    assert None not in seen, seen
    assert set(seen) == {"A", "B"}, f"the reader never saw a swap: {seen}"


def test_two_writers_take_turns_and_the_last_publication_stays(tmp_path: Path, ml100k_dir: Path) -> None:
    path = tmp_path / "kgrec.db"
    kgrec.open_store(path).close()
    tests_dir = str(Path(__file__).parent)
    first = child(ONE_PUBLISH, str(path), str(ml100k_dir), tests_dir, "A")
    second = child(ONE_PUBLISH, str(path), str(ml100k_dir), tests_dir, "B")
    times = {}
    for name, proc in (("A", first), ("B", second)):
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]
        lines = dict(line.split() for line in out.split("\n") if line.strip())
        times[name] = (float(lines["open"]), float(lines["done"]))
    (a_open, a_done), (b_open, b_done) = times["A"], times["B"]
    assert a_done <= b_open or b_done <= a_open, f"the writers overlapped: {times}"
    last = "A" if a_done > b_done else "B"
    pubs = _publications(ml100k_dir)
    with kgrec.open_store(path, read_only=True) as store:
        assert _consistent(_state(store), {n: _expected(p) for n, p in pubs.items()}) == last


def test_publish_without_explanations_removes_the_models_old_ones_only(tmp_path: Path, ml100k_dir: Path) -> None:
    kg = sup.subgraph(sup.ml100k(ml100k_dir), 50)
    recs = sup.recommendations(kg, k=3)
    expl = sup.explanations(recs, kg)
    with kgrec.open_store(tmp_path / "kgrec.db") as store:
        store.publish_model(kg, recs, expl, "m")
        store.publish_model(kg, recs, expl, "other")
        assert store.publish_model(kg, recs, None, "m")["explains"] == 0
        by_model = store.query("MATCH ()-[x:EXPLAINS]->() RETURN x.model AS model, count(*) AS n")
        assert by_model.set_index("model")["n"].to_dict() == {"other": len(expl)}
        assert store.counts()["recommendations"] == 2 * len(recs)


def test_publication_is_checked_before_anything_is_written(tmp_path: Path, ml100k_dir: Path) -> None:
    kg = sup.subgraph(sup.ml100k(ml100k_dir), 50)
    recs = sup.recommendations(kg, k=3)
    with kgrec.open_store(tmp_path / "kgrec.db") as store:
        store.publish_model(kg, recs, None, "m")
        before = store.counts()
        bad = recs.copy()
        bad.loc[4, "item_id"] = "no-such-item"
        with pytest.raises(kgrec.errors.StoreError, match="no-such-item"):
            store.publish_model(kg, bad, None, "m")
        with pytest.raises(DataError, match="rank"):
            store.publish_model(kg, recs.assign(rank=0), None, "m")
        with pytest.raises(DataError, match=STAGING_PREFIX):
            store.publish_model(kg, recs, None, STAGING_PREFIX + "m")
        assert store.counts() == before


@pytest.mark.parametrize("atomic_rows", [10**9, 100])  # one transaction / staged, then switched
def test_neo4j_publication_switches_a_models_results_at_once(neo4j_uri: str, clean_neo4j, ml100k_dir: Path,
                                                             atomic_rows: int) -> None:
    kg = sup.subgraph(sup.ml100k(ml100k_dir), 60)
    kg.features = None
    recs_a, recs_b = sup.recommendations(kg, k=4, seed=1), sup.recommendations(kg, k=2, seed=2)
    with kgrec.open_store(neo4j_uri, atomic_rows=atomic_rows, batch_size=50) as store:
        store.publish_model(kg, recs_a, sup.explanations(recs_a, kg), "m")
        written = store.publish_model(kg, recs_b, sup.explanations(recs_b, kg), "m")
        assert written["recommended"] == len(recs_b)
        c = store.counts()
        assert (c["recommendations"], c["explanations"]) == (len(recs_b), len(sup.explanations(recs_b, kg)))
        staged = store.query("MATCH ()-[r]->() WHERE r.model STARTS WITH $p RETURN count(r) AS n", p=STAGING_PREFIX)
        assert int(staged["n"][0]) == 0
        got = store.query("MATCH (u:User)-[r:RECOMMENDED]->(i:Item) RETURN u.id AS user_id, i.id AS item_id")
        assert set(map(tuple, got.to_numpy().tolist())) == set(map(tuple, recs_b[["user_id", "item_id"]].to_numpy()))


def test_neo4j_staged_publication_interrupted_by_a_restart_keeps_the_old_results(neo4j_private_server,
                                                                                 ml100k_dir: Path) -> None:
    import threading

    server = neo4j_private_server
    kg = sup.subgraph(sup.ml100k(ml100k_dir), 300)
    kg.features = None
    recs_a, recs_b = sup.recommendations(kg, k=5, seed=1), sup.recommendations(kg, k=20, seed=2)
    expl_b = sup.explanations(recs_b, kg)
    with kgrec.open_store(server.uri) as store:
        store.publish_model(kg, recs_a, None, "m")
    failures: list[BaseException] = []

    def publish() -> None:
        try:
            with kgrec.open_store(server.uri, atomic_rows=100, batch_size=200, max_retry_time=3.0) as store:
                store.publish_model(kg, recs_b, expl_b, "m")
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            failures.append(exc)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    with kgrec.open_store(server.uri) as watcher:  # wait until staged edges are being written
        deadline = time.monotonic() + 120
        query = "MATCH ()-[r:EXPLAINS]->() WHERE r.model STARTS WITH $p RETURN count(r) AS n"
        while int(watcher.query(query, p=STAGING_PREFIX)["n"][0]) == 0:
            assert thread.is_alive(), f"publish ended before staging explanations: {failures}"
            assert time.monotonic() < deadline, "publish never staged explanations"
            time.sleep(0.05)
        visible = watcher.query("MATCH ()-[r:RECOMMENDED]->() WHERE r.model = 'm' RETURN count(r) AS n")
        assert int(visible["n"][0]) == len(recs_a)  # the model still shows its old results
    server.kill()
    thread.join(90)
    assert not thread.is_alive() and failures, "the publish was not interrupted"
    server.start()
    with kgrec.open_store(server.uri) as store:
        recs_seen = store.query("MATCH ()-[r:RECOMMENDED]->() WHERE r.model = 'm' RETURN count(r) AS n")
        assert int(recs_seen["n"][0]) == len(recs_a)
        shown = store.query("MATCH ()-[x:EXPLAINS]->() WHERE x.model = 'm' RETURN count(x) AS n")
        assert int(shown["n"][0]) == 0  # the old publication had no explanations
        store.atomic_rows, store.batch_size = 100, 200
        store.publish_model(kg, recs_b, expl_b, "m")  # run again: converges
        c = store.counts()
        assert (c["recommendations"], c["explanations"]) == (len(recs_b), len(expl_b))
        staged = store.query("MATCH ()-[r]->() WHERE r.model STARTS WITH $p RETURN count(r) AS n", p=STAGING_PREFIX)
        assert int(staged["n"][0]) == 0


def test_long_names_texts_and_paths_are_cut_and_counted(tmp_path: Path, ml100k_dir: Path) -> None:
    from kgrec.store.tables import MAX_NAME_CHARS, MAX_PATH_CHARS, MAX_TEXT_CHARS

    kg = sup.subgraph(sup.ml100k(ml100k_dir), 30)
    kg.features = None
    items = kg.items.copy()
    items.loc[0, "name"] = "T" * 1_000_000  # a 1 MB title
    items.loc[1, "text"] = "x" * (MAX_TEXT_CHARS + 1)
    kg = kg.with_interactions(kg.interactions, items=items)
    recs = sup.recommendations(kg, k=3)
    expl = sup.explanations(recs, kg)
    expl.loc[0, "path"] = "p" * (MAX_PATH_CHARS * 3)
    with kgrec.open_store(tmp_path / "kgrec.db") as store:
        written = store.publish_model(kg, recs, expl, "m")
        assert written["texts_cut"] == 3
        longest = store.query("MATCH (i:Item) RETURN max(size(i.name)) AS name, max(size(i.text)) AS text")
        assert (int(longest["name"][0]), int(longest["text"][0])) == (MAX_NAME_CHARS, MAX_TEXT_CHARS)
        title = store.query("MATCH (i:Item {id: $id}) RETURN i.name AS name", id=str(items.loc[0, "item_id"]))
        assert title["name"][0] == "T" * (MAX_NAME_CHARS - 1) + "…"
        paths = store.query("MATCH ()-[x:EXPLAINS]->() RETURN max(size(x.path)) AS n")
        assert int(paths["n"][0]) == MAX_PATH_CHARS
    assert (tmp_path / "kgrec.db").stat().st_size < 50 * 2**20
