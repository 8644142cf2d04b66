"""Data-parallel training on the CPU: one process beside N gloo processes, same data, same settings.

    python benchmarks/distributed.py                     # ML-100K, random 80/20 (seed 0), 1 vs 2 processes
    python benchmarks/distributed.py --world 2 --epochs 10 --threads 2

Both runs call ``kgrec.Recommender(device="cpu").fit(train)`` with the defaults (early stopping on a
10% hold-out of train, then the refit), as ``kgrec train`` does; the N-process run is a gloo job
(``torch.multiprocessing.spawn``, as ``torchrun`` would start it) in which every rank calls ``fit`` and
rank 0 evaluates. Every rank propagates over the whole graph and computes its slice of each batch, so
on one machine the N processes share its cores: the wall times show the cost of the collectives and
the repeated propagation, not a speed-up (that needs a device per rank). ``--threads`` is the total
number of torch threads, split evenly between the ranks (at least one each).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _run(rank: int, world: int, port: int, out: str, epochs: int | None, threads: int) -> None:
    """One rank: load ML-100K, split, fit, and (rank 0) write the test metrics to ``out``."""
    import kgrec
    from kgrec.settings import data_dir

    torch.set_num_threads(threads)
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        kg = kgrec.loaders.movielens(data_dir() / "ml-100k")
        train, test = kg.split("random", test=0.2, seed=0)
        t0 = time.perf_counter()
        rec = kgrec.Recommender(device="cpu", progress=False, **({"epochs": epochs} if epochs else {})).fit(train)
        seconds = time.perf_counter() - t0
        if rank == 0:
            metrics = rec.evaluate(test, k=(20,))
            stop = rec.early_stopping_ or {}
            Path(out).write_text(json.dumps({"recall@20": float(metrics["recall@20"]),
                                             "ndcg@20": float(metrics["ndcg@20"]), "seconds": seconds,
                                             "best_epoch": stop.get("best_epoch"),
                                             "epochs_run": len(stop.get("history", []))}))
    finally:
        if world > 1:
            dist.destroy_process_group()


def measure(world: int, epochs: int | None, threads: int, folder: Path) -> dict:
    """The metrics of one run of ``world`` processes (1: no process group)."""
    out = folder / f"world-{world}.json"
    port = _free_port()
    mp.spawn(_run, args=(world, port, str(out), epochs, max(1, threads // world)), nprocs=world, join=True)
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--world", type=int, default=2, help="processes of the data-parallel run")
    parser.add_argument("--epochs", type=int, default=None, help="epochs at most (default: the model's)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads in all (at least one per process)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        one = measure(1, args.epochs, args.threads, Path(tmp))
        many = measure(args.world, args.epochs, args.threads, Path(tmp))
    print(f"ML-100K, random 80/20 (seed 0), Recommender defaults{'' if not args.epochs else f', epochs {args.epochs}'},"
          f" CPU, {args.threads} threads in all")
    print("| processes | Recall@20 | NDCG@20 | best epoch / run | fit s |")
    print("|---|---|---|---|---|")
    for n, r in ((1, one), (args.world, many)):
        print(f"| {n} | {r['recall@20']:.4f} | {r['ndcg@20']:.4f} | {r['best_epoch']} / {r['epochs_run']} "
              f"| {r['seconds']:.1f} |")
    print(f"| ratio {args.world}/1 | {many['recall@20'] / one['recall@20']:.4f} | "
          f"{many['ndcg@20'] / one['ndcg@20']:.4f} | | {many['seconds'] / one['seconds']:.2f} |")


if __name__ == "__main__":
    main()
