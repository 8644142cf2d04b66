"""Data-parallel training (kgrec.train.distributed): two CPU processes with gloo on a small real graph
train the same model as one process with the same global batch, and only rank 0 writes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

import kgrec
from kgrec.text_features import encode_graph
from kgrec.train.distributed import RowShard
from support.distributed_run import CONFIG, TRAIN_ROWS, small_graphs, step_gradients, train_rank
from support.neo4j_server import free_port

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def runs(ml100k_dir, tmp_path_factory) -> dict[str, dict]:
    """The saved state and history of a 1-process run (``"one"``) and of both ranks of a 2-process
    gloo run (``"rank0"``, ``"rank1"``), plus the run folder (``"dir"``)."""
    out = tmp_path_factory.mktemp("ddp")
    train, _ = small_graphs(ml100k_dir)
    assert len(train.interactions) == TRAIN_ROWS
    features_file = out / "features.npz"
    np.savez(features_file, **encode_graph(train))
    one, two = out / "one", out / "two"
    one.mkdir()
    two.mkdir()
    for job in (step_gradients, train_rank):
        mp.spawn(job, args=(1, 0, ml100k_dir, features_file, one, CONFIG), nprocs=1, join=True)
        mp.spawn(job, args=(2, free_port(), ml100k_dir, features_file, two, CONFIG), nprocs=2, join=True)
    return {"one": torch.load(one / "state-0.pt"), "rank0": torch.load(two / "state-0.pt"),
            "rank1": torch.load(two / "state-1.pt"), "dir": {"one": one, "two": two},
            "grads": [torch.load(d / f"grads-{r}.pt") for d, r in ((one, 0), (two, 0), (two, 1))]}


def test_summed_gradients_equal_the_whole_batch_gradient(runs):
    """A step's gradients summed over 2 ranks equal the 1-process gradient of the whole batch: the
    first batch (1000 rows, cold views included) and the last (1 row: rank 0's slice is empty)."""
    one, r0, r1 = runs["grads"]
    for step in one:
        assert r0[step]["rows"] == one[step]["rows"] == (1000 if step == 0 else 1)
        assert one[step].keys() == r0[step].keys() == r1[step].keys()
        assert r0[step]["loss"] == r1[step]["loss"] == pytest.approx(one[step]["loss"], rel=1e-5)
        names = [n for n in one[step] if n not in ("loss", "rows")]
        assert any(n.startswith("cold") for n in names) == (step == 0)  # the cold views' parameters
        for name in names:
            assert torch.equal(r0[step][name], r1[step][name])
            torch.testing.assert_close(r0[step][name], one[step][name], rtol=1e-4, atol=1e-7,
                                       msg=f"step {step}: gradient of {name}")


def test_row_shards_cover_every_row_once():
    for n in (0, 1, 2, 7, 1000):
        parts = [RowShard(r, 3).take(torch.arange(n)) for r in range(3)]
        assert torch.equal(torch.cat(parts), torch.arange(n))
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_two_ranks_train_what_one_process_trains(runs):
    one, r0, r1 = runs["one"]["state"], runs["rank0"]["state"], runs["rank1"]["state"]
    assert one.keys() == r0.keys() == r1.keys()
    for name in one:
        assert torch.equal(r0[name], r1[name]), f"{name}: the ranks disagree"
        torch.testing.assert_close(r0[name], one[name], rtol=0, atol=1e-5, msg=f"{name} differs from 1 process")


def test_both_runs_agree_on_losses_and_validation(runs):
    h1, h2, h3 = runs["one"]["history"], runs["rank0"]["history"], runs["rank1"]["history"]
    assert len(h1) == len(h2) == len(h3) == CONFIG["epochs"]
    for a, b, c in zip(h1, h2, h3):
        assert a["steps"] == b["steps"] == 5  # 4 batches of 1000 rows and one of 1: rank 0's share of it is empty
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)
        assert b["recall@20"] == c["recall@20"] == pytest.approx(a["recall@20"], abs=1e-6)
    assert [h["cold_steps"] for h in h2] == [h["cold_steps"] for h in h1] == [3, 2]  # steps 0, 2, 4, 6, 8


def test_only_rank_zero_writes_checkpoints(runs):
    two = runs["dir"]["two"]
    assert sorted(p.name for p in two.iterdir()) == ["ckpt-0", "grads-0.pt", "grads-1.pt", "state-0.pt", "state-1.pt"]
    assert sorted(p.name for p in (two / "ckpt-0").iterdir()) == ["best.pt", "last_good.pt"]


def test_torchrun_cli_trains_and_rank_zero_alone_saves(ml100k_dir, tmp_path):
    """``torchrun --standalone --nproc_per_node 2 -m kgrec train`` on a real ML-100K folder cut to its
    first 60 users: exit 0, the model directory loads, and nothing else is written."""
    data = tmp_path / "ml"
    data.mkdir()
    for name in ("u.item", "u.genre"):
        shutil.copy(ml100k_dir / name, data / name)
    keep = {str(u) for u in range(1, 61)}
    for name, sep in (("u.data", "\t"), ("u.user", "|")):
        lines = (ml100k_dir / name).read_text(encoding="latin-1").splitlines()
        (data / name).write_text("\n".join(x for x in lines if x.split(sep)[0] in keep) + "\n", encoding="latin-1")
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                          "-m", "kgrec", "train", "--data", str(data), "--out", str(work / "model"),
                          "--epochs", "1"], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert res.stdout.count("saved ") == 1, res.stdout
    assert sorted(p.name for p in work.iterdir()) == ["model"]
    rec = kgrec.Recommender.load(work / "model", progress=False)
    assert len(rec.user_index_) == len(keep)
    assert len(rec.recommend([sorted(keep)[0]], k=5)) == 5


def test_a_half_described_job_is_refused_naming_the_missing_variable(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(WORLD_SIZE="2", PYTHONPATH=str(REPO))
    res = subprocess.run([sys.executable, "-m", "kgrec", "train", "--data", str(tmp_path), "--out",
                          str(tmp_path / "model")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr
    assert "WORLD_SIZE is 2 but RANK is not set" in res.stderr and "torchrun" in res.stderr
    assert list(tmp_path.iterdir()) == []
