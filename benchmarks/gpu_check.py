"""One table for a machine with a GPU (issue 34): the CUDA tests, ML-100K fit + evaluate beside PyG
LightGCN, Amazon-book seconds per epoch, ``scale.py`` at the largest size that fits, text texts/s.

    benchmarks/gpu_check.sh                                  # on the GPU machine (see docs/gpu_check.md)
    python benchmarks/gpu_check.py --device cpu --quick      # the same steps at tiny sizes, on a CPU
    python benchmarks/gpu_check.py --steps text tests        # some steps only

Steps, in this order, each in a subprocess of its own with a time budget (``--budget`` seconds in
all, default 450, so that the run with its start stays under 8 minutes); a step that fails or
runs out of time gets an error row and the next one runs:

``text``      kgrec's ``TextEncoder`` (all-MiniLM-L6, batch 64, fp16 on CUDA) on ML-100K's node texts,
              ``kgrec.text_features.measure_throughput`` after a warm-up. Where the model package has
              no weights file (the GPU machine gets it without its 88 MB of weights), a model of the
              same architecture is initialised at random from its config.json: the same work per text.
``tests``     ``pytest`` of the device-parametrised tests (files under tests/ naming "cuda", none that
              needs Neo4j), only their ``[cuda]`` (``[cpu]`` with ``--device cpu``) cases.
``ml100k``    ``kgrec.Recommender`` defaults (early stopping on a carved 10%, refit) + ``evaluate`` on
              ``benchmarks/accuracy.py``'s ML-100K split: fit seconds, Recall@20, NDCG@20 (``--quick``: at
              most 2 epochs and 1 inductive epoch, LightGCN 2 epochs).
``lightgcn``  PyG LightGCN (``accuracy.run_baseline('lightgcn')``, paper settings, early stopping) on the
              same split and device.
``amazon``    Amazon-book (KGAT split), ``epoch_time.kgrec_epoch_seconds``: ``valid_fraction=0``, the
              mean seconds of 3 epochs (of 1 epoch on 5% of the users with ``--quick``), on random
              features of the text model's size (see ``load_split``).
``scale``     ``benchmarks/scale.py --models kgrec`` on synthetic graphs of 1M, 4M, 16M, 64M interactions
              (2k, 8k with ``--quick``), each while time is left (the step has what the others left);
              the largest that finished, and its seconds per epoch scaled linearly to 100M edges.

Text features come from kgrec's disk cache (``KGREC_CACHE_DIR``); ``--seed-cache FILE`` first copies a
cache file that ``--build-cache FILE`` wrote on another machine to where this machine's encoder looks
for it. The table goes to stdout, and to ``--out`` (default ``$OUT/gpu_check.md`` when ``$OUT`` is
set) with the rows as JSON beside it. Targets are for one H100; rows of a ``--quick`` or CPU run show
their values beside the targets without a verdict.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import kgrec  # noqa: E402

Row = dict[str, Any]
STEP_BUDGETS = {"text": 40, "tests": 60, "ml100k": 70, "lightgcn": 70, "amazon": 80, "scale": 130}
SCALE_SIZES, SCALE_SIZES_QUICK = [1_000_000, 4_000_000, 16_000_000, 64_000_000], [2_000, 8_000]
TARGET_EDGES = 100_000_000


def row(what: str, value: Any, unit: str = "", target: tuple[str, float] | None = None, note: str = "") -> Row:
    """One table row; ``target`` is ``('<=', x)`` or ``('>=', x)`` in the row's unit."""
    return {"what": what, "value": value, "unit": unit, "target": target, "note": note}


def run_bounded(cmd: list[str], timeout: float, cwd: Path = REPO) -> tuple[int | None, str]:
    """Run ``cmd`` (stdout/stderr shown as they come) in its own process group; past ``timeout``
    seconds kill that group. Returns (exit status or None when killed, last stderr line)."""
    proc = subprocess.Popen(cmd, cwd=cwd, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, err = proc.communicate(timeout=max(timeout, 1.0))
        tail = [ln for ln in err.splitlines() if ln.strip()]
        sys.stderr.write(err[-4000:])
        return proc.returncode, (tail[-1] if tail else "")
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        sys.stderr.write(proc.communicate()[1][-4000:])
        return None, f"timed out after {timeout:.0f} s"


def device_name(device: str) -> str:
    """The GPU's name, or the CPU's with torch's thread count."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return f"CPU {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads"


# ------------------------------------------------------------------ text features
def load_split(name: str, quick: bool) -> tuple[kgrec.KnowledgeGraph, kgrec.KnowledgeGraph]:
    """``benchmarks/accuracy.py``'s split of ``name`` with node features. ML-100K: text features
    from kgrec's cache. Amazon-book: seeded random unit vectors of the text model's size in place
    of its text embeddings (its texts are ASINs; the embeddings of its 24,916 items would not fit
    in what may travel, and the seconds per epoch depend on the features' shapes alone); quick
    keeps the interactions of the users whose id is below 5% of the users."""
    from accuracy import DATASETS, attach_text_features
    from kgrec.settings import data_dir
    from kgrec.text_features import TextEncoder

    train, test = DATASETS[name].load(data_dir())
    if name != "amazon-book":
        attach_text_features(train, test, progress=False)
        return train, test
    if quick:
        cut = train.num_users // 20
        train = train.with_interactions(train.interactions[train.interactions["user_id"].astype(int) < cut])
    rng, dim = np.random.default_rng(0), TextEncoder(progress=False).dim
    feats = {t: rng.standard_normal((len(table), dim)).astype(np.float32)
             for t, table in (("user", train.users), ("item", train.items), ("entity", train.entities))}
    train.features = test.features = {t: x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
                                      for t, x in feats.items()}
    return train, test


def graph_texts(kg: kgrec.KnowledgeGraph) -> list[str]:
    """The distinct non-empty node texts of ``kg`` (users, items, entities), in table order."""
    texts = [str(t) for table in (kg.users, kg.items, kg.entities) for t in table["text"].dropna().tolist()]
    return list(dict.fromkeys(t for t in texts if t.strip()))


def build_cache(path: Path) -> None:
    """Encode the node texts of ML-100K (the graph whose text features the check uses) into a fresh
    cache with the default model, here, and copy its file to ``path``: with it the GPU machine never
    loads the weights."""
    from accuracy import DATASETS
    from kgrec.settings import data_dir
    from kgrec.text_features import TextEncoder

    with tempfile.TemporaryDirectory() as tmp:
        enc = TextEncoder(cache_dir=tmp, device="cpu", progress=sys.stderr.isatty())
        texts = graph_texts(DATASETS["ml-100k"].load(data_dir())[0])
        t0 = time.perf_counter()
        enc.encode(texts)
        print(f"# cache: ml-100k: {len(texts):,} texts in {time.perf_counter() - t0:.0f} s", flush=True)
        files = list(Path(tmp).glob("*.sqlite"))
        enc.close()
        if len(files) != 1:
            raise RuntimeError(f"expected one cache file in {tmp}, found {[f.name for f in files]}")
        shutil.copyfile(files[0], path)


def seed_cache(path: Path) -> Path:
    """Copy a cache file written by ``build_cache`` to where this machine's default encoder looks for
    its cache (the file's name depends on the model's install path). Returns that place."""
    from kgrec.text_features import TextEncoder

    if not path.is_file():
        raise FileNotFoundError(f"--seed-cache {path}: no such file; benchmarks/gpu_check_pack.sh writes it")
    target = TextEncoder(progress=False).cache_path
    if target is None:
        raise RuntimeError("the default TextEncoder has no embedding cache (KGREC_CACHE_DIR?); cannot seed it")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
    return target


# ------------------------------------------------------------------ steps (each in a subprocess)
def step_text(device: str, quick: bool, deadline: float) -> list[Row]:
    from transformers import AutoConfig, AutoModel

    from kgrec.text_features import DEFAULT_TEXT_MODEL, TextEncoder, measure_throughput, resolve_model_path

    texts = graph_texts(load_split("ml-100k", quick)[0])
    n = 256 if quick else 20_000
    texts = (texts * (n // len(texts) + 1))[:n]
    path = Path(resolve_model_path(DEFAULT_TEXT_MODEL))
    with tempfile.TemporaryDirectory() as tmp:
        if (path / "model.safetensors").exists() or (path / "pytorch_model.bin").exists():
            model, weights = DEFAULT_TEXT_MODEL, "real weights"
        else:
            torch.manual_seed(0)
            AutoModel.from_config(AutoConfig.from_pretrained(path)).save_pretrained(tmp)
            for f in path.glob("*"):
                if f.is_file() and (f.name.startswith(("tokenizer", "special_tokens", "vocab"))):
                    shutil.copy(f, tmp)
            model, weights = tmp, "random init from config.json (same architecture)"
        enc = TextEncoder(model, device=device, cache_dir=False, progress=False)
        enc.encode(texts[: 2 * enc.batch_size])  # warm-up: loads the model, first kernels
        rate = measure_throughput(enc, texts)
    words = np.mean([len(t.split()) for t in texts])
    return [row("text encoding (all-MiniLM-L6, kgrec TextEncoder)", rate, "texts/s", (">=", 10_000),
                f"{weights}; {len(texts):,} ML-100K node texts, {words:.1f} words each, batch {enc.batch_size}"
                + (", fp16" if device.startswith("cuda") else ""))]


def step_tests(device: str, quick: bool, deadline: float) -> list[Row]:
    files = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "tests").glob("test_*.py")
                   if '"cuda"' in (text := p.read_text(encoding="utf-8")) and "neo4j" not in text)
    kind = torch.device(device).type
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *files, "-k", f"[{kind}]"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=max(deadline - time.time(), 5))
    sys.stdout.write(proc.stdout[-3000:])
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr.strip()[-200:]
    counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|errors?|skipped)", summary)}
    ok = proc.returncode == 0 and counts.get("passed", 0) > 0 and not counts.get("skipped")
    return [{**row(f"device tests [{kind}] ({', '.join(Path(f).stem for f in files)})", summary, "",
                   note=f"pytest exit {proc.returncode}"), "ok": ok}]


def step_ml100k(device: str, quick: bool, deadline: float) -> list[Row]:
    from accuracy import run_kgrec

    train, test = load_split("ml-100k", quick)
    out = run_kgrec(train, test, {"inductive_epochs": 1} if quick else {}, 2 if quick else None, device,
                    progress=False)
    fit_s, m = out["train_s"] + out["tune_s"], out["metrics"]
    note = f"{out['epochs']:.0f} epochs after early stopping, {out['s_per_epoch']:.3f} s/epoch, " \
           f"stopping run {out['tune_s']:.1f} s + refit {out['train_s']:.1f} s" \
           + (" (quick: at most 2 epochs, inductive_epochs=1)" if quick else "")
    return [row("ML-100K kgrec fit (defaults, early stopping)", fit_s, "s", ("<=", 30), note),
            row("ML-100K kgrec Recall@20", m["recall@20"]), row("ML-100K kgrec NDCG@20", m["ndcg@20"])]


def step_lightgcn(device: str, quick: bool, deadline: float) -> list[Row]:
    from accuracy import DATASETS, run_baseline
    from kgrec.settings import data_dir

    train, test = DATASETS["ml-100k"].load(data_dir())
    out = run_baseline("lightgcn", train, test, False, 2 if quick else None, device, verbose=False)
    note = f"PyG LightGCN, {out['epochs']:.0f} epochs, {out['s_per_epoch']:.3f} s/epoch"
    return [row("ML-100K LightGCN fit (paper settings, early stopping)", out["train_s"] + out["tune_s"], "s",
                None, note),
            row("ML-100K LightGCN Recall@20", out["metrics"]["recall@20"]),
            row("ML-100K LightGCN NDCG@20", out["metrics"]["ndcg@20"])]


def step_amazon(device: str, quick: bool, deadline: float) -> list[Row]:
    from epoch_time import kgrec_epoch_seconds

    train, _ = load_split("amazon-book", quick)
    epochs = 1 if quick else 3
    secs = kgrec_epoch_seconds(train, epochs, device)
    return [row("Amazon-book kgrec seconds per epoch", secs, "s", ("<=", 3),
                f"mean of {epochs} epoch(s), valid_fraction=0, random {train.features['item'].shape[1]}-d features "
                f"in place of text embeddings, {len(train.interactions):,} interactions, "
                f"{train.num_users:,} users, {train.num_items:,} items")]


def step_scale(device: str, quick: bool, deadline: float) -> list[Row]:
    done: list[dict[str, Any]] = []
    stop = ""
    with tempfile.TemporaryDirectory() as tmp:
        for size in SCALE_SIZES_QUICK if quick else SCALE_SIZES:
            left = deadline - time.time() - 5
            if left < 10:
                stop = f"{size:,} not tried: {left:.0f} s left"
                break
            out = Path(tmp) / f"{size}.json"
            code, err = run_bounded([sys.executable, str(BENCH / "scale.py"), "--base", str(size), "--scales", "1",
                                     "--models", "kgrec", "--epochs", "2", "--device", device, "--json", str(out)],
                                    left)
            rows = json.loads(out.read_text()) if code == 0 and out.exists() else []
            if not rows:
                stop = f"{size:,} did not finish: {err or 'no result (see its log above)'}"
                break
            done.append(rows[0])
    if not done:
        raise RuntimeError(stop)
    r = done[-1]
    edges = r["interactions"] + r["knowledge_edges"]
    mem = r.get("cuda_max_allocated_gib", r["peak_rss_gib"])
    note = (f"{r['interactions']:,} interactions + {r['knowledge_edges']:,} KG edges, 2 epochs, "
            f"peak {'GPU' if 'cuda_max_allocated_gib' in r else 'RSS'} {mem:.1f} GiB" + (f"; {stop}" if stop else ""))
    return [row(f"scale.py kgrec s/epoch at {edges:,} edges (the largest that finished)", r["s_per_epoch"], "s",
                None, note),
            row("scale.py estimate at 100M edges (linear from the row above)",
                r["s_per_epoch"] * TARGET_EDGES / edges, "s", ("<=", 300), "an extrapolation, not a measurement")]


STEPS: dict[str, Callable[[str, bool, float], list[Row]]] = {
    "text": step_text, "tests": step_tests, "ml100k": step_ml100k, "lightgcn": step_lightgcn,
    "amazon": step_amazon, "scale": step_scale}


# ------------------------------------------------------------------ table
def verdict(r: Row, comparable: bool) -> str:
    if "error" in r:
        return "ERROR"
    if "ok" in r:  # a pass/fail row (the tests)
        return "PASS" if r["ok"] else "FAIL"
    if r["target"] is None:
        return ""
    op, x = r["target"]
    if not comparable:
        return "(quick/CPU)"
    return "PASS" if (r["value"] <= x if op == "<=" else r["value"] >= x) else "MISS"


def fmt_value(r: Row) -> str:
    v = r.get("value")
    if isinstance(v, float):
        v = f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4f}" if abs(v) < 1 else f"{v:.2f}"
    return f"{v} {r['unit']}".strip()


def table(rows: list[Row], comparable: bool, device: str) -> str:
    lines = ["| step | what | value | target (one H100) | verdict | device | note |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        target = "" if r.get("target") is None else f"{r['target'][0]} {r['target'][1]:,g} {r['unit']}"
        value = f"error: {r['error']}" if "error" in r else fmt_value(r)
        lines.append(f"| {r['step']} | {r['what']} | {value} | {target} | {verdict(r, comparable)} | {device} | "
                     f"{r.get('note', '')} |".replace("\n", " "))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    ap.add_argument("--quick", action="store_true", help="tiny sizes: checks that every step runs, not speed")
    ap.add_argument("--steps", nargs="+", default=list(STEPS), choices=list(STEPS))
    ap.add_argument("--budget", type=float, default=450.0, help="seconds for all steps together (default 450)")
    ap.add_argument("--out", type=Path, default=None, help="write the table here (default $OUT/gpu_check.md)")
    ap.add_argument("--seed-cache", type=Path, default=None, help="a text-embedding cache file to install first")
    ap.add_argument("--build-cache", type=Path, default=None, help="write the cache file the check needs, and exit")
    ap.add_argument("--step", default=None, choices=list(STEPS), help=argparse.SUPPRESS)
    ap.add_argument("--deadline", type=float, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.build_cache:
        build_cache(args.build_cache)
        print(f"# wrote {args.build_cache} ({args.build_cache.stat().st_size / 2**20:.1f} MiB)")
        return 0
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error(f"--device {args.device}: torch {torch.__version__} sees no CUDA device; pass --device cpu "
                 "(with --quick for a short run) to check the steps on a CPU")
    if args.step:  # one step, in a subprocess of the run below
        torch.manual_seed(0)
        rows = STEPS[args.step](args.device, args.quick, args.deadline or time.time() + 3600)
        args.result.write_text(json.dumps(rows, default=float))
        return 0
    if args.seed_cache:
        print(f"# text-embedding cache {args.seed_cache} -> {seed_cache(args.seed_cache)}", flush=True)
    dev = device_name(args.device)
    comparable = args.device.startswith("cuda") and not args.quick
    head = (f"# gpu_check {datetime.date.today()}: kgrec {kgrec.__version__} ({Path(kgrec.__file__).parent}), "
            f"torch {torch.__version__}, device {args.device} = {dev}{', quick' if args.quick else ''}; "
            f"budget {args.budget:.0f} s")
    print(head, flush=True)
    start = time.time()
    rows: list[Row] = []
    planned = sum(STEP_BUDGETS[s] for s in args.steps)
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.steps:
            left = args.budget - (time.time() - start)
            budget = min(STEP_BUDGETS[name] * args.budget / planned, left) if name != "scale" else left
            if budget < 5:
                rows.append({"step": name, "what": name, "error": "no time left in --budget"})
                continue
            result = Path(tmp) / f"{name}.json"
            print(f"# step {name}: up to {budget:.0f} s", flush=True)
            t0 = time.time()
            cmd = [sys.executable, __file__, "--step", name, "--device", args.device, "--deadline",
                   str(t0 + budget), "--result", str(result)] + (["--quick"] if args.quick else [])
            code, err = run_bounded(cmd, budget)
            got = json.loads(result.read_text()) if code == 0 and result.exists() else None
            if got is None:
                got = [{"what": name, "error": err or f"exit {code}"}]
            rows += [{"step": name, **r} for r in got]
            print(f"# step {name}: {time.time() - t0:.0f} s", flush=True)
    text = f"{head}; took {time.time() - start:.0f} s\n\n{table(rows, comparable, dev)}\n"
    print("\n" + text)
    out = args.out or (Path(os.environ["OUT"]) / "gpu_check.md" if os.environ.get("OUT") else None)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        out.with_suffix(".json").write_text(json.dumps(rows, indent=1, default=float))
        print(f"# wrote {out} and {out.with_suffix('.json')}")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
