"""Where one training step's time goes as the data grows: forward propagation, loss, backward.

Builds the synthetic power-law graphs of ``benchmarks/scale.py`` (300k and 2.4M interactions by
default), prepares training as ``kgrec.train.loop`` does (batch from ``TrainConfig.step_batch``),
and times the parts of one step (the second of two repeats, one thread). Prints one table; the
first size is the baseline of the growth columns. PyTorch's CPU tensors are on transparent huge
pages unless ``THP_MEM_ALLOC_ENABLE=0`` is set (kgrec's default, ``docs/large_graphs.md``).

    python benchmarks/step_profile.py [300000 2400000]
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

import kgrec  # noqa: F401  (before torch: its huge-page default must precede torch's first allocation)
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scale import synthetic_graph  # noqa: E402

from kgrec.train.calibration import calibration_items  # noqa: E402
from kgrec.train.config import TrainConfig  # noqa: E402
from kgrec.train.losses import step_loss  # noqa: E402
from kgrec.train.sampling import PositiveLookup, user_batches  # noqa: E402
from kgrec.train.setup import new_model, training_graph  # noqa: E402

PARTS = ("forward", "loss", "backward")


def step_seconds(interactions: int) -> dict[str, float]:
    """Edges, batch and the seconds of each part of one training step on the synthetic graph."""
    kg = synthetic_graph(interactions)
    cfg = TrainConfig()
    dev = torch.device("cpu")
    index, graph = training_graph(kg, kg.features, cfg, dev)
    cfg = replace(cfg, temperature=cfg.softmax_temperature(index.num_items))
    model = new_model(index, graph, cfg, dev)
    if model.use_text:
        graph.x = model.reduce_all(graph.x)
    lookup, gen = PositiveLookup(graph), torch.Generator().manual_seed(0)
    held = calibration_items(graph.num_items, 0)
    batch = cfg.step_batch(len(graph.inter_user))
    idx = user_batches(graph.inter_user, lookup.indptr, batch, cfg.rows_per_user, gen)[0]
    out: dict[str, float] = {}
    for _ in range(2):
        t0 = time.perf_counter()
        z, layers = model(graph, model.sample_id_mask(gen, dev), entity_layers=False)
        t1 = time.perf_counter()
        loss = step_loss(model, cfg, graph, lookup, z, layers, graph.inter_user[idx], graph.inter_item[idx],
                         gen, held, False, None)
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        out = {"edges": graph.edge_index.shape[1], "batch": batch, "forward": t1 - t0, "loss": t2 - t1,
               "backward": t3 - t2}
    return out


def main(argv: list[str]) -> int:
    torch.set_num_threads(1)
    sizes = [int(a) for a in argv] or [300_000, 2_400_000]
    rows = [(n, step_seconds(n)) for n in sizes]
    base = rows[0][1]
    print("| interactions | edges | batch | " + " | ".join(f"{p} s (growth)" for p in PARTS) + " |")
    print("|---" * (3 + len(PARTS)) + "|")
    for n, r in rows:
        parts = " | ".join(f"{r[p]:.3f} ({r[p] / base[p]:.1f}x)" for p in PARTS)
        print(f"| {n:,} | {r['edges']:,} ({r['edges'] / base['edges']:.1f}x) | {r['batch']:,} | {parts} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
