"""Load times of kgrec's loaders beside a plain-pandas baseline, in the same process.

    python benchmarks/load.py [--data ../shared/data] [--repeat 3]

For each data set the loader builds a validated KnowledgeGraph (typed tables, attribute
entities, node texts, policy counts); the baseline only parses the same files into raw
DataFrames with ``pandas.read_csv`` (for KGAT's ragged ``user item item ...`` lines, the
line-by-line reader of the KGAT reference code). ``ratio`` = loader / baseline: what the
checking, typing and graph building cost on top of parsing. Times are the median of
``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

import kgrec
from kgrec import loaders
from kgrec.settings import data_dir


def _csv(path: Path, **kw) -> pd.DataFrame:
    return pd.read_csv(path, **kw)


def baseline_ml100k(root: Path) -> int:
    d = root / "ml-100k"
    r = _csv(d / "u.data", sep="\t", header=None)
    _csv(d / "u.item", sep="|", header=None, encoding="latin-1")
    _csv(d / "u.user", sep="|", header=None)
    _csv(d / "u.genre", sep="|", header=None)
    return len(r)


def baseline_ml_latest(root: Path) -> int:
    d = root / "ml-latest-small"
    r = _csv(d / "ratings.csv")
    _csv(d / "movies.csv")
    _csv(d / "tags.csv")
    return len(r)


def baseline_lastfm(root: Path) -> int:
    d, k = root / "hetrec2011-lastfm-2k", root / "lastfm-kgcn"
    _csv(d / "artists.dat", sep="\t")
    _csv(d / "tags.dat", sep="\t", encoding="latin-1")
    r = _csv(d / "user_artists.dat", sep="\t")
    _csv(d / "user_taggedartists.dat", sep="\t")
    _csv(d / "user_friends.dat", sep="\t")
    _csv(k / "kg.txt", sep="\t", header=None)
    _csv(k / "item_index2entity_id.txt", sep="\t", header=None)
    return len(r)


def baseline_kgat(root: Path) -> int:
    """KGAT's own reader (load_cf): one Python list per line, then arrays."""
    d = root / "kgat" / "amazon-book"
    n = 0
    for name in ("train.txt", "test.txt"):
        users, items = [], []
        with open(d / name) as fh:
            for line in fh:
                ids = [int(x) for x in line.strip().split(" ") if x]
                if len(ids) > 1:
                    users += [ids[0]] * (len(ids) - 1)
                    items += ids[1:]
        n += len(np.array(items))
    for name in ("user_list.txt", "item_list.txt"):
        _csv(d / name, sep=" ")
    return n


def _time(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=data_dir(), help="folder holding the data sets (default: %(default)s)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is shown")
    args = ap.parse_args(argv)
    root: Path = args.data
    cases = [
        ("ML-100K", lambda: loaders.movielens(root / "ml-100k"), lambda: baseline_ml100k(root)),
        ("ML-latest-small", lambda: loaders.movielens(root / "ml-latest-small"), lambda: baseline_ml_latest(root)),
        ("HetRec Last.fm + KGCN KG", lambda: loaders.hetrec_lastfm(root / "hetrec2011-lastfm-2k",
                                                                   root / "lastfm-kgcn"),
         lambda: baseline_lastfm(root)),
        ("KGAT amazon-book (split)", lambda: loaders.kgat_split(root / "kgat" / "amazon-book"),
         lambda: baseline_kgat(root)),
    ]
    print(f"kgrec {kgrec.__version__} · pandas {pd.__version__} · Python {platform.python_version()} · "
          f"{os.cpu_count()} CPUs · median of {args.repeat}")
    header = f"{'data set':<26}{'interactions':>13}{'kg edges':>10}{'kgrec (s)':>11}{'pandas (s)':>12}{'ratio':>7}"
    print(header)
    print("-" * len(header))
    for name, load, base in cases:
        t_load, kg = _time(load, args.repeat)
        t_base, _ = _time(base, args.repeat)
        if isinstance(kg, tuple):
            n_inter = sum(len(part.interactions) for part in kg)
            kg = kg[0]
        else:
            n_inter = len(kg.interactions)
        print(f"{name:<26}{n_inter:>13,}{len(kg.triples):>10,}{t_load:>11.2f}{t_base:>12.2f}{t_load / t_base:>7.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
