"""Accuracy and training speed of kgrec beside the baselines, on the same splits, in one run.

    python benchmarks/accuracy.py                                   # ML-100K + Last.fm, everything
    python benchmarks/accuracy.py --datasets ml-100k --models lightgcn mf-bpr --threads 1
    python benchmarks/accuracy.py --datasets amazon-book --epochs 20 --no-tune
    python benchmarks/accuracy.py --quick                           # a few epochs, no tuning: smoke run

Data sets (from ``kgrec.settings.data_dir()``):
    ``ml-100k``      MovieLens 100K with genres, years and user demographics; random 80/20 per user, seed 0
    ``lastfm``       HetRec 2011 Last.fm (listen counts, tags, friends) + the KGCN music KG; random 80/20
    ``ml-latest-small``  MovieLens latest-small (genres, years, free-text tags); random 80/20 per user,
                     seed 0. Not in the default run: a check that the defaults carry over to data
                     they were not chosen on.
    ``ml-100k-temporal``  ML-100K with each user's latest 20% by timestamp as test (ties broken at
                     random, seed 0): next-interactions rather than missing ones; not in the default run.
    ``colakg-lastfm``  CoLaKG's Last.fm train/test (Cui et al., SIGIR 2025) on the HetRec graph with
                     the KGCN KG, without tagged artists: a split the defaults were not chosen on;
                     not in the default run.
    ``amazon-book``  KGAT's Amazon-book with its own train/test (this copy has no KG: kg_final.txt is
                     missing upstream, so kgrec runs on interactions + texts only). Too big to tune on 2
                     CPU cores: the baselines run the LightGCN paper's settings for ``--epochs`` epochs.

Models: ``kgrec`` (``kgrec.Recommender(...).fit(train)``, its ``evaluate``) and the ablations
``kgrec-no-text`` / ``kgrec-no-kg`` / ``kgrec-no-id`` / ``kgrec-no-bias`` (``use_text`` / ``use_kg`` /
``use_id`` / ``item_bias`` off) and
``kgrec-cold-after`` (``cold_views='after'``: the cold-start views train only after the warm model),
``kgrec-rating-weight`` (``interaction_weight='rating'``: ratings weigh the loss as confidences),
``kgrec-subgraph`` (``training_mode='subgraph'``: sampled neighbourhoods, ``docs/large_graphs.md``),
``kgrec-64-steps`` (``batch_size=None``: every epoch 64 steps, however small the data),
and the baselines of :mod:`kgrec.baselines`: ``lightgcn`` (PyG), ``ease`` (Steck's linear
item-item model, strong on dense data), ``mf-bpr``, ``popularity``, ``text-knn``, and, on data
with user-item knowledge triples (Last.fm's tagged artists), which kgrec trains on as a second
behaviour, ``lightgcn-user-item-triples``: LightGCN on the same training pairs.
The BPR baselines are tuned on a validation split carved from train (a grid over lr and
L2, early stopping; see :mod:`kgrec.baselines`), EASE likewise over its L2, unless
``--no-tune``; kgrec early-stops on its own validation split carved from train. The test split
is used once, for the table.

Every model is evaluated by the same :func:`kgrec.evaluation.evaluate` (full ranking, training items
excluded; Recall = hits / |test items|, NDCG with binary relevance). Columns: Recall@20, NDCG@20,
``train s`` (wall time of ``fit``; for tuned baselines and kgrec the final refit on all of train,
the early-stopped runs on the carved split in ``tune s``), ``s/epoch`` (training loop only, of
the final fit; ``benchmarks/epoch_time.py`` compares epoch times alternated in one process),
``epochs`` and ``vs LightGCN`` = Recall@20 / LightGCN's Recall@20 on the same data set. Text
encoding is done once per data set (cached on disk) and reported apart.

Ratings: ``--min-rating 4`` trains every model on the interactions rated 4 or more only;
``--test-min-rating 4`` scores only the test interactions rated 4 or more (what users liked);
``kgrec-rating-weight`` keeps every interaction and weighs each by its rating.

Threads: on a small shared CPU, PyTorch's default of one intra-op thread per core can thrash;
``--threads 1`` is the setting of the numbers we quote for the 2-core CI box. Results go to stdout
and, with ``--json``, to a file.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

import kgrec  # noqa: E402
from kgrec import baselines as B  # noqa: E402
from kgrec.settings import data_dir, resolve_device  # noqa: E402
from kgrec.knowledge_graph import KnowledgeGraph  # noqa: E402

K = (10, 20)
ABLATIONS = {"kgrec-no-text": {"use_text": False}, "kgrec-no-kg": {"use_kg": False},
             "kgrec-no-id": {"use_id": False}, "kgrec-no-bias": {"item_bias": False},
             "kgrec-cold-after": {"cold_views": "after"}, "kgrec-rating-weight": {"interaction_weight": "rating"},
             "kgrec-subgraph": {"training_mode": "subgraph"},
             "kgrec-64-steps": {"batch_size": None}}
ALL_MODELS = ["kgrec", *ABLATIONS, "lightgcn", "lightgcn-user-item-triples", "ease", "mf-bpr", "popularity", "text-knn"]


@dataclass
class Dataset:
    name: str
    load: Callable[[Path], tuple[KnowledgeGraph, KnowledgeGraph]]
    tune: bool          # tune the BPR baselines by default
    epochs: int | None  # default max epochs (None: the model's default)
    note: str


def _random_split(kg: KnowledgeGraph) -> tuple[KnowledgeGraph, KnowledgeGraph]:
    train, test = kg.split("random", test=0.2, seed=0)
    return train, test


def _colakg_lastfm(root: Path) -> tuple[KnowledgeGraph, KnowledgeGraph]:
    """CoLaKG's Last.fm split (Cui et al., SIGIR 2025; ``colakg/lastfm``: 1,859 users, 2,813
    artists, its own train/test in KGAT's one-line-per-user format, ids remapped by
    user_map.txt / item_map.txt) on the HetRec graph with the KGCN KG, cut to those users and
    artists: their knowledge edges, tags and friendships among them. Without the users' tagged
    artists (a second behaviour that kgrec would train on), so that kgrec and the baselines
    learn from the same pairs. The LLM-written texts of that folder are not used; node texts
    are HetRec's."""
    full = kgrec.loaders.hetrec_lastfm(root / "hetrec2011-lastfm-2k", kg_dir=root / "lastfm-kgcn",
                                       tagged_artists=False)
    folder = root / "colakg" / "lastfm"
    missing = [n for n in ("train.txt", "test.txt", "user_map.txt", "item_map.txt") if not (folder / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{folder} lacks {', '.join(missing)}: the CoLaKG split comes from "
                                "github.com/ziqiangcui/CoLaKG (data/lastfm/); put it there or pass --data")

    def original_ids(name: str) -> np.ndarray:
        """``orig remap`` lines -> the original ids in remap order."""
        table = pd.read_csv(folder / name, sep=" ", header=None, names=["orig", "remap"], dtype=str)
        return table["orig"].to_numpy()[np.argsort(table["remap"].astype(np.int64).to_numpy())]

    user_of, item_of = original_ids("user_map.txt"), original_ids("item_map.txt")

    def pairs(name: str) -> pd.DataFrame:
        table = kgrec.loaders.kgat_interactions(folder / name, len(user_of), len(item_of))
        return pd.DataFrame({"user_id": user_of[table["user"]], "item_id": item_of[table["item"]]})

    users, items = set(user_of), set(item_of)
    t = full.triples
    outside = pd.Series(False, index=t.index)
    for end in ("head", "tail"):
        outside |= ((t[f"{end}_type"] == "user") & ~t[end].isin(users)) | \
                    ((t[f"{end}_type"] == "item") & ~t[end].isin(items))
    triples = t[~outside]
    used = set(triples.loc[triples["head_type"] == "entity", "head"]) | \
        set(triples.loc[triples["tail_type"] == "entity", "tail"])
    train = KnowledgeGraph.build(interactions=pairs("train.txt"), users=full.users[full.users["user_id"].isin(users)],
                                 items=full.items[full.items["item_id"].isin(items)],
                                 entities=full.entities[full.entities["entity_id"].isin(used)], triples=triples,
                                 name="colakg-lastfm")
    return train, train.with_interactions(pairs("test.txt"))


DATASETS: dict[str, Dataset] = {
    "ml-100k": Dataset("ml-100k", lambda root: _random_split(kgrec.loaders.movielens(root / "ml-100k")),
                       True, None, "random 80/20 per user, seed 0"),
    "lastfm": Dataset("lastfm", lambda root: _random_split(kgrec.loaders.hetrec_lastfm(
        root / "hetrec2011-lastfm-2k", kg_dir=root / "lastfm-kgcn")), True, None,
        "HetRec Last.fm + KGCN KG, random 80/20 per user, seed 0"),
    "ml-100k-temporal": Dataset("ml-100k-temporal", lambda root: kgrec.loaders.movielens(root / "ml-100k").split(
        "temporal", test=0.2, seed=0), True, None, "each user's latest 20% as test"),
    "ml-latest-small": Dataset("ml-latest-small", lambda root: _random_split(kgrec.loaders.movielens(
        root / "ml-latest-small")), True, None, "random 80/20 per user, seed 0"),
    "colakg-lastfm": Dataset("colakg-lastfm", _colakg_lastfm, True, None,
                             "CoLaKG's Last.fm train/test on the HetRec graph + KGCN KG"),
    "amazon-book": Dataset("amazon-book", lambda root: kgrec.loaders.kgat_split(root / "kgat" / "amazon-book"),
                           False, 20, "KGAT train/test; no KG in this copy; paper settings, fixed epochs"),
}


def attach_text_features(train: KnowledgeGraph, test: KnowledgeGraph, progress: bool) -> float:
    """Encode every node's text once (disk-cached) and attach it to both splits; returns seconds."""
    from kgrec.text_features import TextEncoder, encode_graph

    t0 = time.perf_counter()
    feats = encode_graph(train, TextEncoder(progress=progress))
    train.features = feats
    test.features = feats
    return time.perf_counter() - t0


def _fit_stats(rec: Any) -> tuple[float, float]:
    """(epochs, seconds per training epoch) of a fitted kgrec.Recommender, from its
    ``trained_.history`` (one dict per epoch with ``seconds``, validation excluded)."""
    history = getattr(getattr(rec, "trained_", None), "history", None) or []
    secs = [h["seconds"] for h in history if isinstance(h, dict) and "seconds" in h]
    if not secs:
        return float("nan"), float("nan")
    return float(len(history)), float(sum(secs) / len(secs))


def run_kgrec(train: KnowledgeGraph, test: KnowledgeGraph, flags: dict[str, Any], epochs: int | None,
              device: str, progress: bool) -> dict[str, Any]:
    from kgrec.recommender import Recommender  # imported late: the baselines run without it

    opts = dict(flags)
    if epochs is not None:
        opts["epochs"] = epochs
    t0 = time.perf_counter()
    rec = Recommender(device=device, progress=progress, **opts).fit(train)
    fit_s = time.perf_counter() - t0
    metrics = rec.evaluate(test, k=K)
    n_epochs, spe = _fit_stats(rec)
    stopping = getattr(rec, "early_stopping_", None)
    # like the tuned baselines: the early-stopped run is the tuning, the refit on all of train the fit
    tune_s = stopping["seconds"] if stopping and stopping["refit"] else 0.0
    best = stopping["best_epoch"] if stopping else getattr(getattr(rec, "trained_", None), "best_epoch", None)
    return {"metrics": metrics, "train_s": fit_s - tune_s, "tune_s": tune_s, "epochs": n_epochs, "s_per_epoch": spe,
            "params": {**opts, "best_epoch": best}}


def run_baseline(name: str, train: KnowledgeGraph, test: KnowledgeGraph, tune: bool, epochs: int | None,
                 device: str, verbose: bool) -> dict[str, Any]:
    if name == "popularity":
        model: B.Baseline = B.Popularity()
    elif name == "text-knn":
        model = B.TextKNN(device=device)
    elif name == "ease":
        model = B.EASE(device=device, verbose=verbose, **({} if tune else {"l2_grid": None}))
    else:
        cls = B.LightGCNBaseline if name.startswith("lightgcn") else B.MFBPR
        kw: dict[str, Any] = {"device": device, "verbose": verbose,
                              "user_item_triples": name == "lightgcn-user-item-triples"}
        if epochs is not None:
            kw["epochs"] = epochs
        if not tune:
            kw["grid"] = None
        model = cls(**kw)
    t0 = time.perf_counter()
    model.fit(train)
    wall = time.perf_counter() - t0
    metrics = model.evaluate(test, k=K)
    params = getattr(model, "best_params_", {})
    return {"metrics": metrics, "train_s": getattr(model, "train_seconds_", wall),
            "tune_s": getattr(model, "tune_seconds_", 0.0), "epochs": float(getattr(model, "epochs_", 0)),
            "s_per_epoch": float(getattr(model, "seconds_per_epoch_", float("nan"))), "params": params,
            "tuning": getattr(model, "tuning_", [])}


def _fmt(v: float | None, spec: str) -> str:
    width = int(spec.split(".")[0])
    return "-".rjust(width) if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def print_table(rows: list[dict[str, Any]]) -> None:
    w = max([15] + [len(r["model"]) for r in rows])
    head = f"{'dataset':<12} {'model':<{w}} {'Recall@20':>9} {'NDCG@20':>8} {'train s':>8} {'tune s':>7} " \
           f"{'s/epoch':>8} {'epochs':>6} {'vs LightGCN':>11}"
    print(head)
    print("-" * len(head))
    for r in rows:
        if "error" in r:
            print(f"{r['dataset']:<12} {r['model']:<{w}} failed: {r['error']}")
            continue
        m = r["metrics"]
        print(f"{r['dataset']:<12} {r['model']:<{w}} {m['recall@20']:>9.4f} {m['ndcg@20']:>8.4f} "
              f"{_fmt(r['train_s'], '8.1f')} {_fmt(r['tune_s'], '7.0f')} {_fmt(r['s_per_epoch'], '8.3f')} "
              f"{_fmt(r['epochs'], '6.0f')} {_fmt(r.get('vs_lightgcn', float('nan')), '11.3f')}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--datasets", nargs="+", default=["ml-100k", "lastfm"], choices=list(DATASETS))
    ap.add_argument("--models", nargs="+", default=ALL_MODELS, choices=ALL_MODELS)
    ap.add_argument("--epochs", type=int, default=None,
                    help="max epochs for kgrec and the BPR baselines (default: per data set / model default)")
    ap.add_argument("--no-tune", action="store_true", help="train the BPR baselines at the paper's lr/L2, no grid")
    ap.add_argument("--quick", action="store_true", help="smoke run: 5 epochs, no tuning")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (1 on a small shared CPU)")
    ap.add_argument("--data", type=Path, default=None, help="data folder (default: kgrec.settings.data_dir())")
    ap.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    ap.add_argument("--verbose", action="store_true", help="print validation metrics while tuning")
    ap.add_argument("--min-rating", type=float, default=None,
                    help="train every model on the interactions rated at least this (KnowledgeGraph.with_min_rating)")
    ap.add_argument("--test-min-rating", type=float, default=None,
                    help="score only the test interactions rated at least this (what users liked)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.epochs, args.no_tune = args.epochs or 5, True
    root = args.data or data_dir()
    print(f"# kgrec {kgrec.__version__}, torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"threads {torch.get_num_threads()}, device {resolve_device(args.device)}"
          + (f" ({torch.cuda.get_device_name()})" if resolve_device(args.device).type == "cuda" else ""),
          flush=True)

    rows: list[dict[str, Any]] = []
    for ds_name in args.datasets:
        ds = DATASETS[ds_name]
        t0 = time.perf_counter()
        train, test = ds.load(root)
        train, test = train.with_min_rating(args.min_rating), test.with_min_rating(args.test_min_rating)
        print(f"# {ds_name}: {ds.note}; {len(train.interactions):,} train / {len(test.interactions):,} test "
              f"interactions, {train.num_users:,} users, {train.num_items:,} items, "
              f"{len(train.triples):,} knowledge edges (loaded in {time.perf_counter() - t0:.1f}s)", flush=True)
        needs_text = any(m.startswith("kgrec") or m == "text-knn" for m in args.models)
        if needs_text:
            enc_s = attach_text_features(train, test, progress=sys.stderr.isatty())
            print(f"# {ds_name}: text features in {enc_s:.1f}s (disk-cached after the first run)", flush=True)
        tune = ds.tune and not args.no_tune
        epochs = args.epochs if args.epochs is not None else ds.epochs
        ds_rows = []
        user_item = len(train.user_item_triples())
        if user_item:
            print(f"# {ds_name}: {user_item:,} user-item knowledge triples, which kgrec trains on beside the "
                  f"interactions (lightgcn-user-item-triples: LightGCN on the same pairs)", flush=True)
        for model in args.models:
            if model == "lightgcn-user-item-triples" and not user_item:
                continue  # the same run as lightgcn
            print(f"# {ds_name}: fitting {model} ...", flush=True)
            try:
                if model.startswith("kgrec"):
                    out = run_kgrec(train, test, ABLATIONS.get(model, {}), epochs, args.device,
                                    progress=sys.stderr.isatty())
                else:
                    out = run_baseline(model, train, test, tune, epochs, args.device, args.verbose)
            except Exception as exc:  # one model failing must not lose the others' numbers
                traceback.print_exc(limit=3)
                out = {"error": f"{type(exc).__name__}: {exc}"}
            row = {"dataset": ds_name, "model": model, **out}
            if "metrics" in row:
                m = row["metrics"]
                print(f"#   {model}: recall@20 {m['recall@20']:.4f} ndcg@20 {m['ndcg@20']:.4f} "
                      f"train {row['train_s']:.1f}s ({row['epochs']:.0f} epochs, {row['s_per_epoch']:.3f} s/epoch) "
                      f"params {row.get('params')}", flush=True)
            ds_rows.append(row)
        ref = next((r for r in ds_rows if r["model"] == "lightgcn" and "metrics" in r), None)
        for r in ds_rows:
            if ref is not None and "metrics" in r:
                r["vs_lightgcn"] = r["metrics"]["recall@20"] / max(ref["metrics"]["recall@20"], 1e-12)
        rows += ds_rows
    print()
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
