"""How the cost of a training epoch grows with the data: kgrec beside PyG LightGCN on synthetic
power-law graphs of growing size (issue 34's target: 8x the data costs at most 10x the seconds per
epoch, and a 10M-interaction graph trains within 24 GiB).

    python benchmarks/scale.py                                   # 50k interactions x 1, 2, 4, 8
    python benchmarks/scale.py --base 100000 --scales 1 8 --threads 1
    python benchmarks/scale.py --base 1000000 --scales 10 --models kgrec --device cuda

The graphs (seeded) grow users, items, entities, interactions and knowledge edges together, by
the same factor: ``base`` interactions on ``base / 20`` users and ``base / 40`` items, users'
activity and items' popularity drawn from Zipf laws (exponent 1.1, as rating data has), each item
with 1 to 3 attributes among ``base / 200`` entities (also Zipf-popular). Node features are
seeded random 64-d vectors standing in for LM text embeddings (encoding millions of texts is the
text encoder's benchmark, not this one's).

Each (size, model) runs in a subprocess of its own, so that its peak resident memory (RSS;
``torch.cuda.max_memory_allocated`` on CUDA) is its own. kgrec: ``Recommender`` defaults with
``valid_fraction=0`` and ``inductive_epochs=0``, its training loop's seconds per epoch;
``kgrec-subgraph`` the same with ``training_mode="subgraph"`` (memory bounded by the batch);
``kgrec-64-steps`` with ``batch_size=None`` (every epoch 64 steps; the default's steps grow with the
data up to 64 x 4,096 pairs).
LightGCN: ``LightGCNBaseline`` (dim 64, 3 layers, BPR, no tuning), its ``seconds_per_epoch_``. All
over ``--epochs`` epochs. ``--huge-pages both`` runs every model twice, with PyTorch's CPU tensors on
transparent huge pages (``THP_MEM_ALLOC_ENABLE=1``, what kgrec asks for when imported before torch)
and without (``/4k`` rows). The ``growth`` column is seconds per epoch divided by the smallest
size's, beside the data's own factor.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import kgrec  # noqa: E402  (before torch: its huge-page default must precede torch's first allocation)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from kgrec.baselines import LightGCNBaseline  # noqa: E402

FEATURE_DIM = 64
ZIPF = 1.1


def zipf_weights(n: int, rng: np.random.Generator) -> np.ndarray:
    """Probabilities of ``n`` ranks under a Zipf law, the ranks in a seeded random order."""
    w = 1.0 / np.arange(1, n + 1) ** ZIPF
    return rng.permutation(w / w.sum())


def synthetic_graph(interactions: int, seed: int = 0) -> kgrec.KnowledgeGraph:
    """A power-law graph with ``interactions`` distinct user-item pairs (see the module docstring)."""
    rng = np.random.default_rng(seed)
    n_users, n_items, n_ent = max(50, interactions // 20), max(50, interactions // 40), max(10, interactions // 200)
    pairs = np.zeros(0, dtype=np.int64)
    p_user, p_item = zipf_weights(n_users, rng), zipf_weights(n_items, rng)
    while len(pairs) < interactions:  # draw, drop repeats, draw again for the rest
        need = int((interactions - len(pairs)) * 1.2) + 10
        u = rng.choice(n_users, size=need, p=p_user)
        i = rng.choice(n_items, size=need, p=p_item)
        pairs = np.unique(np.concatenate([pairs, u.astype(np.int64) * n_items + i]))
    pairs = rng.permutation(pairs)[:interactions]
    inter = pd.DataFrame({"user_id": (pairs // n_items).astype(str), "item_id": (pairs % n_items).astype(str)})
    per_item = rng.integers(1, 4, size=n_items)
    heads = np.repeat(np.arange(n_items), per_item)
    tails = rng.choice(n_ent, size=len(heads), p=zipf_weights(n_ent, rng))
    triples = pd.DataFrame({"head": heads.astype(str), "relation": "HAS_ATTRIBUTE",
                            "tail": pd.Series(tails).map(lambda t: f"attr:{t}")}).drop_duplicates()
    items = pd.DataFrame({"item_id": np.arange(n_items).astype(str), "title": [f"item {k}" for k in range(n_items)]})
    kg = kgrec.from_tables(inter, items=items, triples=triples, item_text="title", name=f"synthetic-{interactions}")
    kg.features = {nt: rng.standard_normal((len(getattr(kg, table)), FEATURE_DIM)).astype(np.float32)
                   for nt, table in (("user", "users"), ("item", "items"), ("entity", "entities"))}
    return kg


def run_one(interactions: int, model: str, epochs: int, device: str) -> dict[str, float]:
    """Seconds per epoch and peak memory of one model on one size (in this process)."""
    kg = synthetic_graph(interactions)
    if model.startswith("kgrec"):
        mode = "subgraph" if model == "kgrec-subgraph" else "auto"
        sizes = {"batch_size": None} if model == "kgrec-64-steps" else {}
        rec = kgrec.Recommender(epochs=epochs, valid_fraction=0.0, inductive_epochs=0, device=device,
                                training_mode=mode, progress=False, **sizes).fit(kg)
        secs = float(np.mean([h["seconds"] for h in rec.trained_.history]))
    else:
        base = LightGCNBaseline(grid=None, epochs=epochs, device=device).fit(kg)
        secs = float(base.seconds_per_epoch_)
    out = {"users": kg.num_users, "items": kg.num_items, "entities": len(kg.entities),
           "interactions": len(kg.interactions), "knowledge_edges": len(kg.triples), "s_per_epoch": secs,
           "peak_rss_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20}
    if torch.cuda.is_available() and device != "cpu":
        out["cuda_max_allocated_gib"] = torch.cuda.max_memory_allocated() / 2 ** 30
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--base", type=int, default=50_000, help="interactions of the smallest graph")
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 2, 4, 8], help="size factors over --base")
    ap.add_argument("--models", nargs="+", default=["kgrec", "lightgcn"], choices=["kgrec", "kgrec-subgraph", "kgrec-64-steps", "lightgcn"])
    ap.add_argument("--huge-pages", choices=["on", "off", "both"], default="on",
                    help="CPU tensors on transparent huge pages (THP_MEM_ALLOC_ENABLE) in the runs")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads in each run")
    ap.add_argument("--json", default=None, help="also write the rows here")
    ap.add_argument("--worker", nargs=2, metavar=("INTERACTIONS", "MODEL"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.worker:
        print(json.dumps(run_one(int(args.worker[0]), args.worker[1], args.epochs, args.device)))
        return 0
    print(f"# kgrec {kgrec.__version__}, torch {torch.__version__}, {platform.machine()}, device {args.device}, "
          f"threads {args.threads or torch.get_num_threads()}; {args.epochs} epochs per fit", flush=True)
    pages = {"on": ["1"], "off": ["0"], "both": ["1", "0"]}[args.huge_pages]
    variants = [(m, thp, m + ("/4k" if thp == "0" and args.huge_pages == "both" else ""))
                for m in args.models for thp in pages]
    rows = []
    for scale in args.scales:
        for model, thp, label in variants:
            t0 = time.perf_counter()
            cmd = [sys.executable, __file__, "--worker", str(args.base * scale), model, "--epochs", str(args.epochs),
                   "--device", args.device] + (["--threads", str(args.threads)] if args.threads else [])
            res = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "THP_MEM_ALLOC_ENABLE": thp})
            if res.returncode != 0:
                print(f"# {label} x{scale} failed: {res.stderr.strip().splitlines()[-1:]}", flush=True)
                continue
            row = {"scale": scale, "model": label, **json.loads(res.stdout.strip().splitlines()[-1]),
                   "wall_s": time.perf_counter() - t0}
            rows.append(row)
            print(f"# {label} x{scale}: {row['s_per_epoch']:.2f} s/epoch, peak RSS {row['peak_rss_gib']:.2f} GiB",
                  flush=True)
    print()
    w = max(9, *(len(label) for *_, label in variants))
    head = (f"{'model':<{w}} {'scale':>5} {'users':>9} {'items':>8} {'inter.':>10} {'KG edges':>9} "
            f"{'s/epoch':>8} {'growth':>7} {'peak GiB':>9}")
    print(head)
    print("-" * len(head))
    for *_, label in variants:
        mine = [r for r in rows if r["model"] == label]
        for r in mine:
            growth = r["s_per_epoch"] / mine[0]["s_per_epoch"] if mine else float("nan")
            print(f"{label:<{w}} {r['scale']:>4}x {r['users']:>9,} {r['items']:>8,} {r['interactions']:>10,} "
                  f"{r['knowledge_edges']:>9,} {r['s_per_epoch']:>8.2f} {growth:>6.1f}x {r['peak_rss_gib']:>9.2f}")
    print("growth: seconds per epoch over the smallest size's; the data grows by the scale factor "
          "(target: 8x the data at most 10x the seconds)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
