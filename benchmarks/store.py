"""Graph-store throughput and inspection latency, beside a pandas -> Parquet -> back baseline.

    python benchmarks/store.py [--data ../shared/data] [--stores embedded,neo4j]
                               [--datasets ml-100k,amazon-book] [--neo4j-uri bolt://...] [--repeat 30]

Publish: ``store.write_graph(kg)`` into an empty store, timed end to end (for the embedded
store: building the file, its checkpoint and the rename; for Neo4j: constraints, batched
transactions), after untimed warm-up publishes of the first data set until the time is steady:
at least 6, until the median of the last three is no more than 1.1x faster than the median of the
three before (at most 15). A new Neo4j server's JIT keeps speeding the write path up for about
ten publishes of ML-100K (12.3, 5.7, 3.6, 2.8, 3.2, 2.8, 2.4, then 1.7-2.2 s; a single noisy
publish stopped the earlier rule, one publish no more than 1.1x faster than the one before). Then
``--publish-runs`` timed publishes per store and data set (default 3; the baseline too):
``seconds`` is their median, ``min s`` / ``max s`` their spread, ``nodes/s`` and ``edges/s`` the
graph's node and edge counts divided by the median (edges = interactions + knowledge edges).
``client cpu s`` is this process's CPU time per publish (median run)
(ladybug's threads included), ``server cpu s`` the Neo4j JVM's when the benchmark started it:
on a machine shared with other work, wall time / CPU time says how much of the wait was waiting
for a CPU. ML-100K carries random float32 384-d
embeddings on every node; KGAT Amazon-book (846,434 interactions; its KG file is not in the
data set) is published without embeddings. The baseline writes the same Arrow tables
(embeddings included) to Parquet files and reads them back.

Inspection: p50 / p95 over ``--repeat`` runs of every query in ``kgrec/queries`` on ML-100K
with 20 recommendations per user and two explanation paths for each user's top item, over
varying users and items, after one untimed pass over the same parameters; the baseline answers the same question with pandas on in-memory
DataFrames (``-`` where there is no one-line pandas equivalent). ``top_recommended`` and
``recommendation_coverage`` read the model summary that ``write_recommendations`` keeps (``Model``
node, ``RECOMMENDS`` edges; its cost is in that write, which is not timed here), while pandas
aggregates the recommendation frame at every run.

Neo4j: ``--neo4j-uri`` / ``$KGREC_NEO4J_URI`` (the database is cleared first!), else a server
of its own via ``scripts/neo4j-test-server.sh start`` on a free port, stopped at the end. The
machine's load average is printed: on shared CPUs every number moves with it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

import kgrec
from kgrec import inspection as ins
from kgrec.settings import REPO_ROOT, data_dir
from kgrec.store.tables import graph_tables

EMBEDDING_DIM = 384


# ------------------------------------------------------------------ data
def ml100k(root: Path) -> kgrec.KnowledgeGraph:
    kg = kgrec.loaders.movielens(root / "ml-100k")
    rng = np.random.default_rng(0)
    kg.features = {nt: rng.standard_normal((len(getattr(kg, t)), EMBEDDING_DIM)).astype(np.float32)
                   for nt, t in (("user", "users"), ("item", "items"), ("entity", "entities"))}
    return kg


def amazon_book(root: Path) -> kgrec.KnowledgeGraph:
    return kgrec.loaders.kgat(root / "kgat" / "amazon-book")


DATASETS: dict[str, Callable[[Path], kgrec.KnowledgeGraph]] = {"ml-100k": ml100k, "amazon-book": amazon_book}


def sizes(kg: kgrec.KnowledgeGraph) -> tuple[int, int]:
    return len(kg.users) + len(kg.items) + len(kg.entities), len(kg.interactions) + len(kg.triples)


# ------------------------------------------------------------------ stores
#: the benchmark's own server runs as a Neo4j 5 installation does: a fixed heap (initial = max, as
#: Neo4j's memory guide advises) and the JVM options of its neo4j.conf; the test-server script's
#: default (C1 JIT only, serial GC) favours start-up time. Against ``-Xms1g -Xmx2g`` on two new
#: servers, ML-100K publishes alternated: 2.01 vs 2.16 s (medians of publishes 11-30), 1.99 vs
#: 2.44 s (publishes 6-10).
NEO4J_JAVA_OPTS = ("-Xms2g -Xmx2g -XX:+UseG1GC -XX:-OmitStackTraceInFastThrow -XX:+AlwaysPreTouch "
                   "-XX:+UnlockExperimentalVMOptions -XX:+TrustFinalNonStaticFields -XX:+DisableExplicitGC")


class Neo4jServer:
    """The Neo4j to benchmark: a given URI, or one started with the test-server script."""

    def __init__(self, uri: str | None) -> None:
        self.uri = uri
        self.run_dir: Path | None = None
        self.java_opts = os.environ.get("KGREC_NEO4J_JAVA_OPTS", NEO4J_JAVA_OPTS)

    @property
    def pid(self) -> int | None:
        """The JVM's process id when this benchmark started the server (for its CPU time)."""
        try:
            return int((self.run_dir / "run" / "neo4j.pid").read_text().strip()) if self.run_dir else None
        except (OSError, ValueError):
            return None

    def __enter__(self) -> str:
        if self.uri:
            return self.uri
        self.run_dir = Path(tempfile.mkdtemp(prefix="kgrec-bench-neo4j-"))
        env = {**os.environ, "KGREC_NEO4J_RUN_DIR": str(self.run_dir / "run"),
               "KGREC_NEO4J_JAVA_OPTS": self.java_opts}
        out = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "neo4j-test-server.sh"), "start", "0",
                              str(self.run_dir / "data")], env=env, capture_output=True, text=True, timeout=600)
        if out.returncode != 0:
            raise SystemExit(f"could not start the Neo4j test server:\n{out.stderr[-3000:]}")
        self.uri = out.stdout.strip().rsplit("=", 1)[-1]
        self._env = env
        return self.uri

    def __exit__(self, *exc: object) -> None:
        if self.run_dir is not None:
            subprocess.run(["bash", str(REPO_ROOT / "scripts" / "neo4j-test-server.sh"), "stop"], env=self._env,
                           capture_output=True, text=True, timeout=120)
            shutil.rmtree(self.run_dir, ignore_errors=True)


def rust_packstream() -> bool:
    """Whether the Neo4j driver packs parameters with its optional Rust extension."""
    return importlib.util.find_spec("neo4j._rust") is not None


def clear_neo4j(uri: str) -> None:
    import neo4j
    with neo4j.GraphDatabase.driver(uri, auth=_auth()) as driver, driver.session() as session:
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()


def _auth() -> tuple[str, str] | None:
    user, password = os.environ.get("NEO4J_USER"), os.environ.get("NEO4J_PASSWORD")
    return None if user is None and password is None else (user or "neo4j", password or "")


def open_fresh(kind: str, workdir: Path, uri: str | None, name: str) -> kgrec.store.GraphStore:
    if kind == "embedded":
        path = workdir / f"{name}.db"
        for p in workdir.glob(f"{name}.db*"):
            p.unlink()
        return kgrec.open_store(path)
    clear_neo4j(uri)
    return kgrec.open_store(uri)


# ------------------------------------------------------------------ publish
def baseline_parquet(kg: kgrec.KnowledgeGraph, workdir: Path) -> float:
    """pandas/Arrow tables of the same graph -> Parquet files -> read back."""
    start = time.perf_counter()
    tables = graph_tables(kg)
    out = workdir / "parquet"
    out.mkdir(exist_ok=True)
    named = {**{f"node_{k}": t for k, t in tables.nodes.items()}, "interactions": tables.interactions,
             **{f"kg_{a}_{b}": t for (a, b), t in tables.knowledge.items()}}
    for name, table in named.items():
        pq.write_table(table, out / f"{name}.parquet")
    back = {name: pq.read_table(out / f"{name}.parquet") for name in named}
    assert sum(t.num_rows for t in back.values()) == sum(t.num_rows for t in named.values())
    return time.perf_counter() - start


def cpu_seconds(kind: str, server_pid: int | None) -> dict[str, float]:
    """CPU seconds used so far by this process (with ladybug's threads) and by the Neo4j JVM."""
    out = {"client": time.process_time()}
    if kind == "neo4j" and server_pid:
        try:
            fields = Path(f"/proc/{server_pid}/stat").read_text().rsplit(")", 1)[1].split()
            out["server"] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return out


WARM_UP_MIN, WARM_UP_MAX = 6, 15  # untimed publishes per store
WARM_UP_STEADY = 1.1   # warm once the last three are no more than this many times faster than the three before


def warmed_up(times: list[float]) -> bool:
    """Whether publish times ``times`` (oldest first) have settled (see the module docstring)."""
    if len(times) >= WARM_UP_MAX:
        return True
    if len(times) < WARM_UP_MIN:
        return False
    return float(np.median(times[-3:])) * WARM_UP_STEADY >= float(np.median(times[-6:-3]))


def warm_up(kg: kgrec.KnowledgeGraph, stores: list[str], uri: str | None, workdir: Path) -> None:
    """Untimed publishes of the whole of ``kg`` per store until the time is steady (see the module
    docstring), so that no timing pays for a cold JVM or first query plans."""
    for kind in stores:
        times: list[float] = []
        while not warmed_up(times):
            with open_fresh(kind, workdir, uri, "warmup") as store:
                start = time.perf_counter()
                store.write_graph(kg)
                times.append(time.perf_counter() - start)
                store.query("MATCH (u:User {id: $u})-[r:INTERACTED]->(i:Item) RETURN count(i) AS n", u="1")
        print(f"  warm-up publishes to {kind}: " + ", ".join(f"{t:.2f}" for t in times) + " s",
              file=sys.stderr, flush=True)


def _median_run(runs: list[dict]) -> dict:
    """The run with the median ``seconds`` (the upper one of an even count), with ``min s`` and
    ``max s`` of all runs added."""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    return {**ordered[len(ordered) // 2], "min s": ordered[0]["seconds"], "max s": ordered[-1]["seconds"]}


def publish_rows(datasets: dict[str, kgrec.KnowledgeGraph], stores: list[str], uri: str | None,
                 workdir: Path, server_pid: int | None = None, runs: int = 3) -> list[dict]:
    warm_up(next(iter(datasets.values())), stores, uri, workdir)
    rows = []
    for name, kg in datasets.items():
        n_nodes, n_edges = sizes(kg)
        emb = "384-d" if kg.features else "none"
        base = []
        for _ in range(runs):
            c = time.process_time()
            t = baseline_parquet(kg, workdir)
            base.append({"seconds": t, "client cpu s": time.process_time() - c})
        rows.append({"dataset": name, "store": "baseline: Parquet", "embeddings": emb, "nodes": n_nodes,
                     "edges": n_edges, **_median_run(base)})
        for kind in stores:
            timed = []
            for _ in range(runs):
                with open_fresh(kind, workdir, uri, name) as store:
                    cpu = cpu_seconds(kind, server_pid)
                    start = time.perf_counter()
                    store.write_graph(kg)
                    t = time.perf_counter() - start
                    cpu = {k: cpu_seconds(kind, server_pid)[k] - v for k, v in cpu.items()}
                    counts = store.counts()
                assert counts["interactions"] == len(kg.interactions), counts
                timed.append({"seconds": t, "client cpu s": cpu["client"], "server cpu s": cpu.get("server")})
                print(f"  published {name} to {kind} in {t:.2f} s", file=sys.stderr, flush=True)
            rows.append({"dataset": name, "store": kind, "embeddings": emb, "nodes": n_nodes, "edges": n_edges,
                         **_median_run(timed)})
    for r in rows:
        r["nodes/s"] = r["nodes"] / r["seconds"]
        r["edges/s"] = r["edges"] / r["seconds"]
    return rows


# ------------------------------------------------------------------ inspection
def published_results(kg: kgrec.KnowledgeGraph) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(1)
    items = kg.items["item_id"].astype(str).to_numpy()
    users = kg.users["user_id"].astype(str).to_numpy()
    picked = np.stack([rng.choice(len(items), 20, replace=False) for _ in users])
    recs = pd.DataFrame({"user_id": np.repeat(users, 20), "item_id": items[picked.ravel()],
                         "score": np.tile(np.linspace(1, 0.5, 20), len(users)), "rank": np.tile(np.arange(1, 21), len(users))})
    top = recs[recs["rank"] == 1]
    genre = kg.entities.loc[kg.entities["kind"] == "genre", "entity_id"].astype(str).iloc[0]
    expl = pd.concat([
        pd.DataFrame({"user_id": top["user_id"], "item_id": top["item_id"], "rank": 1, "path": "via genre",
                      "weight": 0.6, "node_type": "entity", "node_id": genre}),
        pd.DataFrame({"user_id": top["user_id"], "item_id": top["item_id"], "rank": 1, "path": "via genre",
                      "weight": 0.6, "node_type": "item", "node_id": top["item_id"]}),
        pd.DataFrame({"user_id": top["user_id"], "item_id": top["item_id"], "rank": 1, "path": "direct",
                      "weight": 0.4, "node_type": "item", "node_id": top["item_id"]})], ignore_index=True)
    return recs, expl


def pandas_answers(kg: kgrec.KnowledgeGraph, recs: pd.DataFrame) -> dict[str, Callable[[dict], object]]:
    inter = kg.interactions
    item_attr = kg.triples[(kg.triples["head_type"] == "item") & (kg.triples["tail_type"] == "entity")]

    def shared(p: dict) -> object:
        seen = inter.loc[inter["user_id"] == p["user"], ["item_id"]]
        attrs = item_attr.loc[item_attr["head"] == p["item"], ["tail"]]
        j = item_attr.merge(seen, left_on="head", right_on="item_id").merge(attrs, on="tail")
        return j.groupby("tail")["head"].nunique().nlargest(p["limit"])

    def similar(p: dict) -> object:
        seen = inter.loc[inter["user_id"] == p["user"], ["item_id"]]
        fans = inter.loc[(inter["item_id"] == p["item"]) & (inter["user_id"] != p["user"]), ["user_id"]]
        j = inter.merge(fans, on="user_id").merge(seen, on="item_id")
        return j.groupby("user_id")["item_id"].nunique().nlargest(p["limit"])

    return {
        "user_recommendations": lambda p: recs[(recs["user_id"] == p["user"]) & (recs["rank"] <= p["k"])]
        .sort_values("rank"),
        "why_shared_attributes": shared,
        "why_similar_users": similar,
        "top_recommended": lambda p: recs["item_id"].value_counts().head(p["limit"]),
        "recommendation_coverage": lambda p: (len(recs), recs["user_id"].nunique(), recs["item_id"].nunique()),
    }


def percentiles(times: list[float]) -> tuple[float, float]:
    arr = np.asarray(times) * 1000
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


def inspection_rows(kg: kgrec.KnowledgeGraph, stores: list[str], uri: str | None, workdir: Path,
                    repeat: int) -> list[dict]:
    recs, expl = published_results(kg)
    rng = np.random.default_rng(2)
    picks = [recs.iloc[int(i)] for i in rng.integers(0, len(recs[recs["rank"] == 1]), repeat) * 20]
    params = [{"user": str(r["user_id"]), "item": str(r["item_id"]), "model": "bench", "k": 20, "limit": 20}
              for r in picks]
    results: dict[tuple[str, str], tuple[float, float]] = {}
    for kind in stores:
        with open_fresh(kind, workdir, uri, "inspect") as store:
            store.write_graph(kg)
            store.write_recommendations(recs, "bench")
            store.write_explanations(expl, "bench")
            for name in ins.QUERY_NAMES:
                for p in params:  # one untimed pass: plan caches, pages, and Neo4j's JIT on a fresh JVM
                    ins.run_query(store, name, **p)
                times = []
                for p in params:
                    start = time.perf_counter()
                    ins.run_query(store, name, **p)
                    times.append(time.perf_counter() - start)
                results[(name, kind)] = percentiles(times)
    base = pandas_answers(kg, recs)
    rows = []
    for name in ins.QUERY_NAMES:
        row: dict[str, object] = {"query": name}
        for kind in stores:
            p50, p95 = results[(name, kind)]
            row[f"{kind} p50"], row[f"{kind} p95"] = p50, p95
        if name in base:
            times = []
            for p in params:
                start = time.perf_counter()
                base[name](p)
                times.append(time.perf_counter() - start)
            row["pandas p50"], row["pandas p95"] = percentiles(times)
        rows.append(row)
    return rows


# ------------------------------------------------------------------ output
def table(rows: list[dict], columns: list[str], formats: dict[str, str]) -> str:
    cells = [[formats.get(c, "{}").format(r[c]) if c in r and r[c] is not None else "-" for c in columns]
             for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    line = "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(columns, widths)))
    out = [line, "-" * len(line)]
    for row in cells:
        out.append("  ".join(v.rjust(w) if i else v.ljust(w) for i, (v, w) in enumerate(zip(row, widths))))
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=None, help="folder with ml-100k/ and kgat/ (default: KGREC_DATA_DIR)")
    ap.add_argument("--stores", default="embedded,neo4j")
    ap.add_argument("--datasets", default="ml-100k,amazon-book")
    ap.add_argument("--neo4j-uri", default=os.environ.get("KGREC_NEO4J_URI"),
                    help="a Neo4j to use (it is cleared!); default: start one with scripts/neo4j-test-server.sh")
    ap.add_argument("--repeat", type=int, default=30, help="runs per inspection query")
    ap.add_argument("--publish-runs", type=int, default=3, help="timed publishes per store and data set (median)")
    args = ap.parse_args(argv)
    if args.publish_runs < 1:
        ap.error("--publish-runs must be at least 1")
    root = args.data or data_dir()
    stores = [s for s in args.stores.split(",") if s]
    names = [d for d in args.datasets.split(",") if d]
    print(f"kgrec {kgrec.__version__} store benchmark | python {platform.python_version()} | "
          f"{os.cpu_count()} CPUs | load average {os.getloadavg()[0]:.1f} at start", flush=True)
    if "neo4j" in stores:
        print(f"neo4j driver {importlib.metadata.version('neo4j')}, packstream in "
              f"{'Rust (neo4j-rust-ext)' if rust_packstream() else 'pure Python (no neo4j-rust-ext)'}", flush=True)
    datasets = {}
    for name in names:
        start = time.perf_counter()
        datasets[name] = DATASETS[name](root)
        print(f"  loaded {name} in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    server = Neo4jServer(args.neo4j_uri) if "neo4j" in stores else _Null()
    with tempfile.TemporaryDirectory(prefix="kgrec-bench-") as tmp, server as uri:
        workdir = Path(tmp)
        if uri:
            started = isinstance(server, Neo4jServer) and server.run_dir is not None
            print(f"Neo4j: {uri}" + (f" (started here, JVM options: {server.java_opts})" if started else ""),
                  flush=True)
        pid = server.pid if isinstance(server, Neo4jServer) else None
        pub = publish_rows(datasets, stores, uri, workdir, pid, args.publish_runs)
        print(f"\nPublish (write_graph into an empty store after warm-up publishes; median of {args.publish_runs} "
              "runs each)")
        print(table(pub, ["dataset", "store", "embeddings", "nodes", "edges", "seconds", "min s", "max s", "nodes/s",
                          "edges/s", "client cpu s", "server cpu s"],
                    {"nodes": "{:,}", "edges": "{:,}", "seconds": "{:.2f}", "min s": "{:.2f}", "max s": "{:.2f}",
                     "nodes/s": "{:,.0f}", "edges/s": "{:,.0f}", "client cpu s": "{:.2f}", "server cpu s": "{:.2f}"}))
        if "ml-100k" in datasets:
            rows = inspection_rows(datasets["ml-100k"], stores, uri, workdir, args.repeat)
            cols = ["query"] + [f"{k} {p}" for k in stores for p in ("p50", "p95")] + ["pandas p50", "pandas p95"]
            print(f"\nInspection queries on ML-100K, ms over {args.repeat} runs (kgrec/queries/*.cypher via store.query)")
            print(table(rows, cols, {c: "{:.1f}" for c in cols[1:]}))
    print(f"\ntargets: embedded >= 500,000 edges/s, Neo4j >= 50,000 edges/s, inspection p50 <= 20 ms | "
          f"load average {os.getloadavg()[0]:.1f} at end")


class _Null:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


if __name__ == "__main__":
    main()
