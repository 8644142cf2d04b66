"""Serving speed of kgrec.Recommender (issue: Recommender API).

Prints one table:
- ``recommend`` for one user (p50 / p95 over many calls) on a ~4k-item catalogue
  (MovieLens latest-small restricted to its 4,000 most-rated movies), beside the bare
  matmul + topk for one user on the same embeddings;
- top-20 for all users through ``recommend`` (seen items masked, DataFrame built) beside a bare
  ``torch.topk(U @ I.T, 20)`` over the same final embeddings, in the same process;
- optionally (``--quickstart``) the wall time of ``kgrec quickstart`` on ML-100K end to end.

    python benchmarks/recommend.py [--epochs 1] [--calls 300] [--repeats 21] [--threads 1] [--quickstart]

kgrec and bare timings alternate call by call, so load from other processes falls on both; the
header prints the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import torch

import kgrec
from kgrec.settings import data_dir


def four_k_catalogue() -> kgrec.KnowledgeGraph:
    kg = kgrec.loaders.movielens(data_dir() / "ml-latest-small")
    top = kg.interactions["item_id"].value_counts().index[:4000]
    inter = kg.interactions[kg.interactions["item_id"].isin(set(top))]
    items = kg.items[kg.items["item_id"].isin(set(top))].reset_index(drop=True)
    t = kg.triples
    trip = t[(t["head_type"] != "item") | t["head"].isin(set(top))].reset_index(drop=True)
    return kg.with_interactions(inter, items=items, triples=trip)


def timeit_pair(fn_a: Callable[[], object], fn_b: Callable[[], object], repeat: int) -> tuple[list[float], list[float]]:
    """Wall times of ``fn_a`` and ``fn_b`` run alternately ``repeat`` times each, so that load
    from other processes on a shared machine falls on both sides of a ratio alike."""
    a, b = [], []
    for _ in range(repeat):
        for fn, out in ((fn_a, a), (fn_b, b)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return a, b


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=1, help="training epochs (speed does not depend on them)")
    ap.add_argument("--calls", type=int, default=300, help="one-user calls timed")
    ap.add_argument("--repeats", type=int, default=21, help="all-users rankings timed (median)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    ap.add_argument("--quickstart", action="store_true", help="also time `kgrec quickstart` end to end")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    kg = four_k_catalogue()
    rec = kgrec.Recommender(epochs=args.epochs, progress=False, valid_fraction=0.0).fit(kg)
    users = rec.user_ids()
    U, I = rec.user_emb_, rec.item_emb_
    IT = I.T.contiguous()  # the bare baseline gets the same fast layout the Recommender caches
    rows = []

    it = iter(users[i % len(users)] for i in range(args.calls))
    it2 = iter(range(args.calls))
    api, bare = timeit_pair(lambda: rec.recommend([next(it)], k=20),
                            lambda: torch.topk(U[[next(it2) % len(users)]] @ IT, 20, dim=1), args.calls)
    rows.append(("recommend(1 user, k=20)", f"{len(I):,} items", pct(api, 0.5) * 1e3, pct(api, 0.95) * 1e3,
                 pct(bare, 0.5) * 1e3, pct(api, 0.5) / pct(bare, 0.5)))

    rec.recommend(users, k=20)  # warm-up
    api_all, bare_all = timeit_pair(lambda: rec.recommend(users, k=20), lambda: torch.topk(U @ IT, 20, dim=1),
                                    args.repeats)
    rows.append((f"top-20 for all {len(users):,} users", f"{len(I):,} items", statistics.median(api_all) * 1e3,
                 max(api_all) * 1e3, statistics.median(bare_all) * 1e3,
                 statistics.median(api_all) / statistics.median(bare_all)))

    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"kgrec {kgrec.__version__} · torch {torch.__version__} · {torch.get_num_threads()} threads · CPU · "
          f"{os.cpu_count()} cores, load average {load}")
    print(f"{'operation':<32}{'catalogue':>14}{'kgrec p50 ms':>14}{'p95/max ms':>12}{'bare ms':>10}{'ratio':>8}")
    for r in rows:
        print(f"{r[0]:<32}{r[1]:>14}{r[2]:>14.3f}{r[3]:>12.3f}{r[4]:>10.3f}{r[5]:>8.2f}")
    print("bare = torch.topk over U @ I.T (I.T contiguous) on the same final embeddings: no id lookup, "
          "no seen-item masking, no DataFrame")

    if args.quickstart:
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            res = subprocess.run([sys.executable, "-m", "kgrec", "quickstart", "--data", str(data_dir() / "ml-100k"),
                                  "--store", f"{tmp}/kgrec.db", "--model-dir", f"{tmp}/model"],
                                 capture_output=True, text=True)
            wall = time.perf_counter() - t0
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        if res.returncode != 0:
            print(f"kgrec quickstart FAILED rc={res.returncode} after {wall:.1f} s: {res.stderr[-500:]}")
        else:
            verdict = "met" if wall < 180 else "MISSED"
            print(f"kgrec quickstart (ML-100K, defaults) end to end: {wall:.1f} s, target < 180 s {verdict} "
                  f"(load average after {load})")


if __name__ == "__main__":
    main()
