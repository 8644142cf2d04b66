"""Publishing speed: ``rec.publish(store, k=20, explanations=3)`` of an ML-100K model into a fresh
embedded store, beside the per-recommendation ``explain()`` loop publish used before (issue 34).

Prints one table, every row timed in this process with the baseline beside it:
- the EXPLAINS rows alone (``kgrec.recommender.explanation_rows``) for half the users and for all
  of them (linear growth), against the former loop (one ``rec.explain`` per recommendation);
- the whole publish (graph, features, RECOMMENDED and EXPLAINS edges) into a fresh embedded store,
  against the same publish with the former loop writing the EXPLAINS rows.
Both sides produce the same rows (checked here too). The header prints the load average: the
machine may be shared, and load falls on both sides of a ratio alike only roughly.

    python benchmarks/publish.py [--epochs 1] [--model DIR] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import kgrec
from kgrec.recommender.explanation_rows import explanation_rows
from kgrec.settings import data_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from support.explain_loop import loop_rows  # noqa: E402  (the former loop: the baseline)


def batched_rows(rec: kgrec.Recommender, recs: pd.DataFrame) -> pd.DataFrame:
    return pd.concat(list(explanation_rows(rec, recs, explanations=3, explain_top=3)), ignore_index=True)


def old_publish(rec: kgrec.Recommender, store, k: int = 20) -> dict[str, int]:
    """``publish`` as it was: the same writes, the EXPLAINS rows from :func:`loop_rows`."""
    recs = rec.recommend(rec.user_ids(), k=k)
    store.write_graph(rec.graph_, features=rec.graph_.features)
    n_recs = store.write_recommendations(recs, "kgrec")
    return {"recommended": n_recs, "explains": store.write_explanations(loop_rows(rec, recs), "kgrec")}


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def fresh_caches(rec: kgrec.Recommender) -> None:
    """Both sides start without explanation caches (layer sums, edge CSR, path index)."""
    rec._drop_explanation_caches()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=1, help="training epochs (speed does not depend on them)")
    ap.add_argument("--model", type=Path, default=None, help="a saved model directory to load (fit and saved "
                    "there when missing)")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model is not None and args.model.exists():
        rec = kgrec.Recommender.load(args.model, progress=False)
    else:
        kg = kgrec.loaders.movielens(data_dir() / "ml-100k")
        rec = kgrec.Recommender(epochs=args.epochs, progress=False, valid_fraction=0.0).fit(kg)
        if args.model is not None:
            rec.save(args.model)
    rec.progress = False
    users = rec.user_ids()
    print(f"ML-100K: {len(users)} users, {len(rec.item_ids())} items; k=20, 3 explanations of the top 3; "
          f"torch threads {torch.get_num_threads()}; load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs")
    table = []
    for label, some in (("half the users", users[: len(users) // 2]), ("all users", users)):
        recs = rec.recommend(some, k=20)
        fresh_caches(rec)
        t_new, new = timed(batched_rows, rec, recs)
        fresh_caches(rec)
        t_old, old = timed(loop_rows, rec, recs)
        same = len(new) == len(old) and (new[["path", "node_id"]].to_numpy() == old[["path", "node_id"]].to_numpy()).all() \
            and np.allclose(new["weight"], old["weight"], rtol=1e-5, atol=1e-7)
        table.append((f"EXPLAINS rows, {label} ({len(some)})", t_old, t_new, f"{len(new)} rows, equal: {same}"))
    with tempfile.TemporaryDirectory() as tmp:
        with kgrec.open_store(Path(tmp) / "new.db") as store:
            fresh_caches(rec)
            t_new, counts_new = timed(rec.publish, store)
        with kgrec.open_store(Path(tmp) / "old.db") as store:
            fresh_caches(rec)
            t_old, counts_old = timed(old_publish, rec, store)
    table.append(("publish, all users, fresh embedded store", t_old, t_new,
                  f"{counts_new} (former: {counts_old})"))
    print(f"{'what':<44} {'former loop s':>13} {'batched s':>10} {'speed-up':>9}  notes")
    for what, old_s, new_s, note in table:
        print(f"{what:<44} {old_s:>13.2f} {new_s:>10.2f} {old_s / new_s:>8.1f}x  {note}")


if __name__ == "__main__":
    main()
