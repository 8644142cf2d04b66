"""Data-parallel test runs: a small real graph (ML-100K's first users) and the function each spawned
rank runs, so that a 2-process gloo run and a 1-process run train on the same data and settings."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from kgrec.knowledge_graph import KnowledgeGraph
from kgrec.train import TrainConfig, fit
from kgrec.train.calibration import calibration_items
from kgrec.train.distributed import current_shard, sum_gradients
from kgrec.train.losses import step_loss
from kgrec.train.sampling import PositiveLookup, user_batches
from kgrec.train.setup import new_model, training_graph

from .model_fixtures import small_movielens

TRAIN_ROWS = 4001   # 4 batches of 1000 and one of a single row: with 2 ranks, one rank's slice is empty
CONFIG = dict(dim=16, layers=2, epochs=2, batch_size=1000, num_negatives=256, cold_view_every=2,
              inductive_epochs=1, ema_epochs=1.0, patience=5, seed=0)


def small_graphs(ml100k_dir: Path) -> tuple[KnowledgeGraph, KnowledgeGraph]:
    """``(train, valid)``: ML-100K's first 60 users split 90/10 at random, train cut to its first
    :data:`TRAIN_ROWS` interactions."""
    kg = small_movielens(ml100k_dir, users=60)
    train, valid = kg.split("random", test=0.1, seed=0)
    inter = train.interactions.sort_values(["user_id", "item_id"]).iloc[:TRAIN_ROWS].reset_index(drop=True)
    return train.with_interactions(inter), valid


def load_features(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


@contextlib.contextmanager
def gloo_group(rank: int, world: int, port: int) -> Iterator[None]:
    """One thread, and rank ``rank`` of a gloo group of ``world`` on ``port`` for the block (no group
    when ``world == 1``)."""
    torch.set_num_threads(1)
    if world > 1:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        yield
    finally:
        if world > 1:
            dist.destroy_process_group()


def train_rank(rank: int, world: int, port: int, ml100k_dir: Path, features_file: Path, out: Path,
               config: dict) -> None:
    """One rank of a gloo job of ``world`` processes (``world == 1``: no process group at all): fit on
    :func:`small_graphs` with ``config`` and save the model's state and history to
    ``out/state-<rank>.pt``; checkpoints go to ``out/ckpt-<rank>``."""
    with gloo_group(rank, world, port):
        train, valid = small_graphs(ml100k_dir)
        cfg = TrainConfig(**config, checkpoint_dir=str(out / f"ckpt-{rank}"))
        trained = fit(train, load_features(features_file), cfg, valid_kg=valid, device="cpu", progress=False)
        torch.save({"state": trained.model.state_dict(), "history": trained.history}, out / f"state-{rank}.pt")


def step_gradients(rank: int, world: int, port: int, ml100k_dir: Path, features_file: Path, out: Path,
                   config: dict) -> None:
    """One rank's summed gradients (``world == 1``: the plain gradients) of two steps of a fresh model, as
    the training loop takes them: the epoch's first batch with the cold views and its last batch (one row)
    without; saved to ``out/grads-<rank>.pt`` as ``{step: {parameter: gradient}}`` with the loss."""
    with gloo_group(rank, world, port):
        train, _ = small_graphs(ml100k_dir)
        cfg = TrainConfig(**config)
        device = torch.device("cpu")
        index, graph = training_graph(train, load_features(features_file), cfg, device)
        cfg = replace(cfg, temperature=cfg.softmax_temperature(index.num_items))
        torch.manual_seed(cfg.seed)
        gen = torch.Generator().manual_seed(cfg.seed)
        model = new_model(index, graph, cfg, device)
        graph.x = model.reduce_all(graph.x)
        lookup = PositiveLookup(graph)
        held = calibration_items(graph.num_items, cfg.seed)
        batches = user_batches(graph.inter_user, lookup.indptr, cfg.batch_size, cfg.rows_per_user, gen)
        shard, saved = current_shard(), {}
        for step in (0, len(batches) - 1):
            idx = batches[step]
            model.zero_grad(set_to_none=True)
            z, layers = model(graph, model.sample_id_mask(gen, device), entity_layers=False)
            loss = step_loss(model, cfg, graph, lookup, z, layers, graph.inter_user[idx], graph.inter_item[idx],
                             gen, held, cold=step == 0, shard=shard)
            loss.backward()
            if shard is not None:
                loss = sum_gradients(model.parameters(), loss)[0]
            saved[step] = {"loss": float(loss), "rows": len(idx),
                           **{n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}}
        torch.save(saved, out / f"grads-{rank}.pt")
