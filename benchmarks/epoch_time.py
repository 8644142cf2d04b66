"""Seconds per training epoch: kgrec beside PyG LightGCN at the same embedding size, alternated
in one process (issue 4's target: kgrec <= 1.5 x LightGCN).

    python benchmarks/epoch_time.py                                  # ML-100K + Last.fm, 3 repeats
    python benchmarks/epoch_time.py --datasets lastfm --epochs 4 --repeats 5 --threads 1
    python benchmarks/epoch_time.py --ablations --threads 1            # + kgrec without KG edges / cold views

An epoch is one pass over the same training pairs for both models: the data set's whole
training split (``benchmarks/accuracy.py``'s splits), no validation carve-out, joined by its
user-item knowledge triples, which kgrec trains on as a second behaviour (HetRec Last.fm's 70,297
tagged artists make 128,032 pairs of its 74,266 listens; ML-100K has none), and so LightGCN too
(``user_item_triples=True``). kgrec:
``kgrec.Recommender`` defaults (dim 64, 3 layers, batch 4096 taking users' rows in runs of 16,
sampled softmax, knowledge edges, the cold-start views in every twelfth step) with
``valid_fraction=0`` and ``inductive_epochs=0`` (the inductive phase comes after the epochs and is
not part of them); its seconds are
``trained_.history``'s, the training loop only. LightGCN: :class:`kgrec.baselines.LightGCNBaseline`
(PyG ``LightGCN``, dim 64, 3 layers, batch 2048, BPR, the paper's lr and L2, no tuning), its
``seconds_per_epoch_``. Both are the mean over ``--epochs`` epochs.

The two fits alternate ``--repeats`` times, so that a machine whose speed drifts (shared CPUs)
slows both alike. The table gives each model's median seconds per epoch, the ratio of the
medians, and the smallest and largest ratio within one repeat. ``--ablations`` adds kgrec without
its knowledge edges (``use_kg=False``), without its cold-start views (both view weights 0), and
without both, each in the same alternation: where kgrec's extra time goes.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

import kgrec  # noqa: E402
from kgrec.baselines import LightGCNBaseline  # noqa: E402
from kgrec.settings import data_dir  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy import DATASETS, attach_text_features  # noqa: E402

TARGET = 1.5


# --ablations: kgrec without a part, each beside the same LightGCN runs (where the time goes)
ABLATIONS: dict[str, dict[str, object]] = {
    "kgrec no KG edges": {"use_kg": False},
    "kgrec no cold views": {"cold_item_weight": 0.0, "cold_user_weight": 0.0},
    "kgrec neither": {"use_kg": False, "cold_item_weight": 0.0, "cold_user_weight": 0.0},
}


def kgrec_epoch_seconds(train: kgrec.KnowledgeGraph, epochs: int, device: str, **options: object) -> float:
    rec = kgrec.Recommender(epochs=epochs, valid_fraction=0.0, inductive_epochs=0, device=device,
                            progress=False, **options).fit(train)
    return statistics.fmean(h["seconds"] for h in rec.trained_.history)


def lightgcn_epoch_seconds(train: kgrec.KnowledgeGraph, epochs: int, device: str) -> float:
    model = LightGCNBaseline(epochs=epochs, grid=None, device=device, user_item_triples=True).fit(train)
    return float(model.seconds_per_epoch_)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--datasets", nargs="+", default=["ml-100k", "lastfm"], choices=list(DATASETS))
    ap.add_argument("--epochs", type=int, default=3, help="epochs per fit (default 3)")
    ap.add_argument("--repeats", type=int, default=3, help="alternated fits per model (default 3)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (1 on a small shared CPU)")
    ap.add_argument("--data", type=Path, default=None, help="data folder (default: kgrec.settings.data_dir())")
    ap.add_argument("--ablations", action="store_true",
                    help="also time kgrec without its knowledge edges, without its cold-start views, and without both")
    args = ap.parse_args(argv)
    if args.epochs <= 0 or args.repeats <= 0:
        ap.error("--epochs and --repeats must be positive")
    if args.threads:
        torch.set_num_threads(args.threads)
    root = args.data or data_dir()
    print(f"# kgrec {kgrec.__version__}, torch {torch.__version__}, {platform.machine()}, "
          f"threads {torch.get_num_threads()}, device {args.device}; {args.epochs} epochs per fit, "
          f"{args.repeats} alternated repeats", flush=True)
    variants: dict[str, dict[str, object]] = {"kgrec": {}, **(ABLATIONS if args.ablations else {})}
    rows = []
    for name in args.datasets:
        train, test = DATASETS[name].load(root)
        if not train.features:
            attach_text_features(train, test, progress=False)
        runs: dict[str, list[float]] = {v: [] for v in [*variants, "LightGCN"]}
        for r in range(args.repeats):
            for v, options in variants.items():
                runs[v].append(kgrec_epoch_seconds(train, args.epochs, args.device, **options))
            runs["LightGCN"].append(lightgcn_epoch_seconds(train, args.epochs, args.device))
            print(f"# {name} repeat {r + 1}: " + ", ".join(f"{v} {t[-1]:.3f}" for v, t in runs.items())
                  + " s/epoch", flush=True)
        med_g = statistics.median(runs["LightGCN"])
        for v in variants:
            paired = [k / g for k, g in zip(runs[v], runs["LightGCN"])]
            med_k = statistics.median(runs[v])
            rows.append((name, v, len(train.interactions), med_k, med_g, med_k / med_g, min(paired), max(paired)))
    print()
    head = f"{'dataset':<14} {'model':<20} {'interactions':>12} {'s/epoch':>8} {'LightGCN s/ep':>13} {'ratio':>6} " \
           f"{'min':>5} {'max':>5}  target <= {TARGET}"
    print(head)
    print("-" * len(head))
    for name, v, n, k, g, ratio, lo, hi in rows:
        verdict = ("PASS" if ratio <= TARGET else "MISS") if v == "kgrec" else "(ablation)"
        print(f"{name:<14} {v:<20} {n:>12,} {k:>8.3f} {g:>13.3f} {ratio:>6.2f} {lo:>5.2f} {hi:>5.2f}  {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
