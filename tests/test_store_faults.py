"""Faults, for real: an embedded write killed with SIGKILL, a second writer, an unreachable
Neo4j, and a Neo4j server stopped and restarted in the middle of a publish."""

from __future__ import annotations

import re
import signal
import time
from pathlib import Path

import numpy as np
import pytest

import kgrec
from kgrec.errors import StoreError
from support import store_support as sup
from support.child_process import child, kill_at_random, read_until

# A child process that publishes graph A then graph B, again and again, saying "begin A" /
# "done A" around each write, until it is killed.
PUBLISHER = r"""
import sys
import numpy as np
import kgrec
sys.path.insert(0, sys.argv[3])
from support import store_support as sup
kg_a = sup.ml100k(sys.argv[2])
kg_b = kg_a.with_interactions(kg_a.interactions.iloc[: len(kg_a.interactions) * 4 // 5])
kg_b.features = {k: v + 1 for k, v in kg_a.features.items()}
with kgrec.open_store(sys.argv[1], timeout=30) as store:
    print("open", flush=True)
    while True:
        for name, kg in (("A", kg_a), ("B", kg_b)):
            print("begin", name, flush=True)
            store.write_graph(kg)
            print("done", name, flush=True)
"""

HOLDER = r"""
import sys, time
import kgrec
store = kgrec.open_store(sys.argv[1])
print("holding", flush=True)
time.sleep(120)
"""


# ------------------------------------------------------------------ embedded store
def test_embedded_write_killed_with_sigkill_reopens_consistent(tmp_path: Path, ml100k_dir: Path) -> None:
    kg_a = sup.ml100k(ml100k_dir)
    kg_b = kg_a.with_interactions(kg_a.interactions.iloc[: len(kg_a.interactions) * 4 // 5])
    kg_b.features = {k: v + 1 for k, v in kg_a.features.items()}
    path = tmp_path / "kgrec.db"
    with kgrec.open_store(path) as store:
        store.write_graph(kg_a)
    tests_dir = str(Path(__file__).parent)
    rng = np.random.default_rng(0)
    killed_mid_write = 0
    for _ in range(3):
        proc = child(PUBLISHER, str(path), str(ml100k_dir), tests_dir)
        killed_mid_write += kill_at_random(proc, rng, max_delay=0.8)  # after one full write committed
        assert proc.returncode == -signal.SIGKILL
        with kgrec.open_store(path) as store:  # replays the WAL; the killed write left no trace
            counts = sup.graph_counts(store.counts())
            assert counts in (sup.source_counts(kg_a), sup.source_counts(kg_b)), counts
            back = store.read_graph()
            expect = kg_a if counts == sup.source_counts(kg_a) else kg_b
            sup.assert_same_graph(back, expect)
    assert killed_mid_write >= 1, "no kill landed inside a write; the test proved nothing"
    with kgrec.open_store(path) as store:  # publishing again gives the clean result
        store.write_graph(kg_a)
        assert sup.graph_counts(store.counts()) == sup.source_counts(kg_a)


def test_second_writer_process_gets_the_holders_pid(tmp_path: Path) -> None:
    path = tmp_path / "kgrec.db"
    kgrec.open_store(path).close()
    proc = child(HOLDER, str(path))
    try:
        read_until(proc, "holding", timeout=60)
        start = time.monotonic()
        with pytest.raises(StoreError, match=rf"kgrec\.db is locked by process {proc.pid}\b"):
            kgrec.open_store(path)
        with pytest.raises(StoreError, match=rf"locked by process {proc.pid}\b"):
            kgrec.open_store(path, timeout=1.0)  # waits a bounded time, then gives up
        assert time.monotonic() - start < 10
        with kgrec.open_store(path, read_only=True) as ro:  # a reader may open beside the writer
            assert ro.counts()["users"] == 0
    finally:
        proc.kill()
        proc.wait(10)
    with kgrec.open_store(path, timeout=10) as store:  # the lock died with its process
        assert store.counts()["users"] == 0


# ------------------------------------------------------------------ Neo4j
def test_neo4j_unreachable_names_the_uri_within_seconds() -> None:
    from support.neo4j_server import free_port
    port = free_port()  # nothing listens there
    for uri in (f"bolt://127.0.0.1:{port}", f"neo4j://127.0.0.1:{port}"):
        start = time.monotonic()
        with pytest.raises(StoreError, match=re.escape(uri)) as info:
            kgrec.open_store(uri)
        assert time.monotonic() - start < 10, f"{uri}: took {time.monotonic() - start:.1f} s"
        assert "cannot reach" in str(info.value)
    start = time.monotonic()  # a host that never answers: bounded by timeout=
    with pytest.raises(StoreError, match=r"bolt://10\.255\.255\.1:7687"):
        kgrec.open_store("bolt://10.255.255.1:7687", timeout=2)
    assert time.monotonic() - start < 10


def test_neo4j_server_restarted_mid_publish_then_republish_is_clean(neo4j_private_server, ml100k_dir: Path) -> None:
    import threading

    server = neo4j_private_server
    kg = sup.subgraph(sup.ml100k(ml100k_dir), 400)
    kg.features = {k: v[:, :16].copy() for k, v in kg.features.items()}
    failures: list[BaseException] = []

    def publish() -> None:
        try:
            with kgrec.open_store(server.uri, max_retry_time=3.0, batch_size=2000) as store:
                store.write_graph(kg)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            failures.append(exc)

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    with kgrec.open_store(server.uri) as watcher:  # wait until interactions are being written
        deadline = time.monotonic() + 120
        while watcher.counts()["interactions"] == 0:
            assert thread.is_alive(), f"publish ended before the interactions: {failures}"
            assert time.monotonic() < deadline, "publish never reached the interactions"
            time.sleep(0.2)
    server.stop()
    thread.join(90)
    assert not thread.is_alive(), "publish hangs after the server went away"
    assert len(failures) == 1 and isinstance(failures[0], StoreError), failures
    assert server.uri in str(failures[0]) and "run the same write again" in str(failures[0])

    server.start()  # same port, same store
    with kgrec.open_store(server.uri) as store:
        partial = sup.graph_counts(store.counts())
        assert partial != sup.source_counts(kg), "the stop came too late to interrupt anything"
        store.write_graph(kg)  # publish again
        assert sup.graph_counts(store.counts()) == sup.source_counts(kg)
        sup.assert_same_graph(store.read_graph(), kg)
