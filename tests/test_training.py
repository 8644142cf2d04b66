"""fit(): reproducible per seed, negatives never positives, divergence caught with the last good
weights kept, early stopping, checkpoints, save/load state, and cold-start inference that
leaves warm embeddings bit-identical. Real data: ML-100K's first 300 users, tiny models."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import kgrec
from kgrec.baselines import Popularity
from kgrec.errors import ModelError, TrainingDivergedError
from kgrec.cold_start.placement import NewNodeInputs, embed_new_nodes
from kgrec.graph.tensors import build_graph
from kgrec.nn.model import CLICKED_ITEMS_WEIGHT
from kgrec.train import TrainConfig, TrainedModel, fit
from kgrec.train.calibration import RIDGE_GRID, calibration_items, fit_content_map
from kgrec.train.sampling import PositiveLookup, sample_negatives, user_batches
from support.model_fixtures import small_movielens_with_text

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                 reason="no CUDA device"))]
TINY = dict(dim=16, layers=2, epochs=2, batch_size=4096, num_negatives=256)


@pytest.fixture(scope="module")
def small(ml100k_dir: Path) -> kgrec.KnowledgeGraph:
    """ML-100K restricted to users 1..300 (real data), with LM text features."""
    return small_movielens_with_text(ml100k_dir)


@pytest.fixture(scope="module")
def split(small: kgrec.KnowledgeGraph):
    return small.split("random", test=0.2, seed=0)


@pytest.fixture(scope="module")
def trained(split) -> TrainedModel:
    train, _ = split
    return fit(train, None, TrainConfig(**{**TINY, "epochs": 3}), device="cpu", progress=False)


# ---------------------------------------------------------------------- reproducibility
def test_same_seed_same_embeddings_on_cpu(split) -> None:
    train, _ = split
    a = fit(train, None, TrainConfig(**TINY, seed=3), device="cpu", progress=False).final_embeddings()
    b = fit(train, None, TrainConfig(**TINY, seed=3), device="cpu", progress=False).final_embeddings()
    c = fit(train, None, TrainConfig(**TINY, seed=4), device="cpu", progress=False).final_embeddings()
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    assert not torch.are_deterministic_algorithms_enabled()  # fit restores the caller's settings
    assert torch.utils.deterministic.fill_uninitialized_memory  # (torch's default; off during fit)


def test_inductive_epochs_train_only_the_inductive_path(split) -> None:
    train, _ = split
    base = fit(train, None, TrainConfig(**TINY, inductive_epochs=0), device="cpu", progress=False).model
    tuned = fit(train, None, TrainConfig(**TINY, inductive_epochs=2), device="cpu", progress=False).model
    inductive = {id(p) for p in tuned.inductive_parameters()}
    names = {n for n, p in tuned.named_parameters() if id(p) in inductive}
    assert names and any(n.startswith("cold_proj") for n in names)
    a, b = base.state_dict(), tuned.state_dict()
    # the cold-item calibration factor is measured on the inductive path after it trained
    for name in a.keys() - names - {"cold_item_log_scale"}:
        assert torch.equal(a[name], b[name]), f"{name} changed in the inductive phase"
    for name in ("cold_proj.item.weight", "cold_proj.user.weight", "cold_relation"):
        assert name in names and not torch.equal(a[name], b[name]), f"{name} did not train"
    with pytest.raises(ValueError, match="inductive_epochs"):
        TrainConfig(inductive_epochs=-1).validate()


def test_cold_views_after_leave_warm_steps_alone(split) -> None:
    """``cold_views='after'``: warm steps leave the inductive path alone, and it starts from the
    trained warm path; ``'during'`` (the default): warm steps train it too."""
    train, _ = split
    after = fit(train, None, TrainConfig(**TINY, inductive_epochs=0, cold_views="after"), device="cpu",
                progress=False).model
    assert torch.equal(after.cold_relation, after.relation)
    for t in ("user", "item", "entity"):
        assert torch.equal(after.cold_proj[t].weight, after.text_proj[t].weight)
    assert not torch.equal(after.relation, torch.ones_like(after.relation))  # the warm path did train
    during = fit(train, None, TrainConfig(**TINY, inductive_epochs=0), device="cpu", progress=False).model
    assert not torch.equal(during.cold_proj["item"].weight, during.text_proj["item"].weight)
    assert TrainConfig(lr=0.02).inductive_schedule() == (10, 0.02)
    assert TrainConfig(lr=0.02, cold_views="after").inductive_schedule() == (20, 0.2)
    assert TrainConfig(cold_views="after", inductive_epochs=3, inductive_lr=0.5).inductive_schedule() == (3, 0.5)
    with pytest.raises(ValueError, match="cold_views"):
        TrainConfig(cold_views="never").validate()  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="inductive_lr"):
        TrainConfig(inductive_lr=0).validate()


def test_cold_view_every_trains_the_cold_views_in_every_kth_step(split) -> None:
    """``cold_view_every=k``: the cold views train in warm steps 0, k, 2k, ... counted across
    epochs (recorded per epoch in the history), and still train the inductive path; a k beyond
    the last step leaves only step 0. The warm steps are the same in number."""
    train, _ = split
    cfg = dict(TINY, epochs=3, batch_size=1024, inductive_epochs=0, ema_epochs=0)  # raw weights, compared exactly
    every = {k: fit(train, None, TrainConfig(**cfg, cold_view_every=k), device="cpu", progress=False)
             for k in (1, 3, 10_000)}
    steps = every[1].history[0]["steps"]
    assert steps > 3 and steps % 3 != 0  # so that the count must carry across epochs
    total = 3 * steps
    for k, res in every.items():
        assert [h["steps"] for h in res.history] == [steps] * 3
        assert sum(h["cold_steps"] for h in res.history) == -(-total // k)
    assert [h["cold_steps"] for h in every[3].history] == [
        sum(1 for s in range(e * steps, (e + 1) * steps) if s % 3 == 0) for e in range(3)]
    model = every[3].model
    assert not torch.equal(model.cold_proj["item"].weight, model.text_proj["item"].weight)
    # only step 0 trained the inductive path: one epoch leaves it where three do
    one = fit(train, None, TrainConfig(**{**cfg, "epochs": 1}, cold_view_every=10_000), device="cpu", progress=False)
    assert torch.equal(one.model.cold_relation, every[10_000].model.cold_relation)
    assert not torch.equal(one.model.relation, every[10_000].model.relation)
    off = fit(train, None, TrainConfig(**{**cfg, "epochs": 1}, cold_item_weight=0, cold_user_weight=0),
              device="cpu", progress=False)
    assert off.history[0]["cold_steps"] == 0  # no view weighted above 0: none trains
    with pytest.raises(ValueError, match="cold_view_every"):
        TrainConfig(cold_view_every=0).validate()


# ---------------------------------------------------------------------- batches
def test_user_batches_take_each_users_rows_in_runs(split) -> None:
    """``rows_per_user=c``: an epoch covers every training row once in ``ceil(M / batch_size)``
    batches; each user's rows come in at most ``ceil(n / c)`` stretches of the epoch (whole users
    for a large ``c``, in a random order within the user), so a step holds about
    ``batch_size / c`` users where random rows (``c = 1``) hold nearly all of them."""
    train, _ = split
    _, graph = build_graph(train, None)
    owner = graph.inter_user
    indptr = graph.user_positives_csr()[0]
    counts = indptr[1:] - indptr[:-1]
    M, size = len(owner), 1024
    users_per_step = {}
    for c in (1, 4, 16, 10 ** 6):
        batches = user_batches(owner, indptr, size, c, torch.Generator().manual_seed(3))
        assert [len(b) for b in batches] == [size] * (M // size) + ([M % size] if M % size else [])
        epoch = torch.cat(batches)
        assert torch.equal(epoch.sort().values, torch.arange(M))                       # every row once
        seq = owner[epoch]
        starts = torch.cat([torch.tensor([True]), seq[1:] != seq[:-1]])                # a user's stretch begins
        stretches = torch.bincount(seq[starts], minlength=len(counts))
        assert (stretches <= (counts + c - 1) // c).all()
        users_per_step[c] = sum(owner[b].unique().numel() for b in batches[:-1]) / (len(batches) - 1)
    whole = user_batches(owner, indptr, size, 10 ** 6, torch.Generator().manual_seed(3))
    mine = torch.cat(whole)[owner[torch.cat(whole)] == 0]                               # user 0's rows in order
    assert not torch.equal(mine, mine.sort().values)                                    # shuffled within the user
    assert users_per_step[16] < 1.5 * size / 16 < users_per_step[1], users_per_step
    assert users_per_step[16] < users_per_step[1] / 3, users_per_step
    same, other = ([b.tolist() for b in user_batches(owner, indptr, size, 16, torch.Generator().manual_seed(seed))]
                   for seed in (3, 4))
    assert same == [b.tolist() for b in user_batches(owner, indptr, size, 16, torch.Generator().manual_seed(3))]
    assert same != other
    assert user_batches(owner[:0], torch.zeros(4, dtype=torch.long), 8, 16, torch.Generator()) == []
    with pytest.raises(ValueError, match="rows_per_user"):
        TrainConfig(rows_per_user=0).validate()


def test_steps_per_epoch_are_capped_and_batch_size_none_fixes_them(split) -> None:
    """The default batch (4,096) is kept while an epoch stays within ``max_steps_per_epoch``
    steps and grows past it, so that large data takes 64 steps an epoch; ``batch_size=None``
    takes 64 steps on any data from 64 x 256 pairs up; subgraph training keeps a fixed batch.
    The real fit takes the steps the rule gives."""
    from kgrec.train.config import MIN_BATCH, SUBGRAPH_BATCH
    default = TrainConfig()
    assert default.step_batch(80_000) == 4096 and default.step_batch(10 ** 6) == math.ceil(10 ** 6 / 64)
    assert default.step_batch(10 ** 6, subgraph=True) == 4096
    assert TrainConfig(max_steps_per_epoch=None).step_batch(10 ** 6) == 4096
    fixed_steps = TrainConfig(batch_size=None)
    for pairs in (64 * MIN_BATCH, 80_000, 10 ** 6, 10 ** 8):
        assert math.ceil(pairs / fixed_steps.step_batch(pairs)) == 64, pairs
    assert fixed_steps.step_batch(1000) == MIN_BATCH                 # tiny data: fewer, not smaller, steps
    assert fixed_steps.step_batch(10 ** 6, subgraph=True) == SUBGRAPH_BATCH
    with pytest.raises(ValueError, match="both None"):
        TrainConfig(batch_size=None, max_steps_per_epoch=None).validate()
    with pytest.raises(ValueError, match="batch_size must be positive"):
        TrainConfig(batch_size=0).validate()

    train, _ = split
    pairs = len(train.interactions)
    assert 64 * MIN_BATCH < pairs < 64 * 4096
    cfg = dict(TINY, epochs=1, inductive_epochs=0)
    for size, cap, steps in ((4096, 64, math.ceil(pairs / 4096)), (4096, 2, 2), (None, 64, 64), (None, 16, 16)):
        result = fit(train, None, TrainConfig(**{**cfg, "batch_size": size, "max_steps_per_epoch": cap}),
                     device="cpu", progress=False)
        assert result.history[0]["steps"] == steps, (size, cap)


# ---------------------------------------------------------------------- negatives
def test_sampled_negatives_never_include_positives(split) -> None:
    train, _ = split
    _, g = build_graph(train, train.features)
    lookup = PositiveLookup(g)
    pos = set(zip(g.inter_user.tolist(), g.inter_item.tolist()))
    gen = torch.Generator().manual_seed(0)
    users = g.inter_user[torch.randperm(len(g.inter_user), generator=gen)[:300]]
    for num in (64, g.num_items + 10):  # sampled, and the whole catalogue
        cand, keep = sample_negatives(lookup, users, num, gen)
        assert len(set(cand.tolist())) == len(cand) == min(num, g.num_items)
        assert keep.dtype == torch.float32 and torch.equal(keep == 0, lookup.mask(users, cand))
        for b, u in enumerate(users.tolist()):
            for c, item in enumerate(cand.tolist()):
                assert float(keep[b, c]) == (0.0 if (u, item) in pos else 1.0)


# ---------------------------------------------------------------------- divergence
def test_divergence_raises_and_keeps_last_good_weights(split, tmp_path: Path) -> None:
    train, _ = split
    cfg = TrainConfig(**{**TINY, "epochs": 5, "lr": 1e30, "checkpoint_dir": str(tmp_path)})
    with pytest.raises(TrainingDivergedError, match=r"loss became .* Fix: lower lr") as info:
        fit(train, None, cfg, device="cpu", progress=False)
    result = info.value.result
    assert all(torch.isfinite(p).all() for p in result.model.parameters())
    users, items = result.final_embeddings()
    assert torch.isfinite(users).all() and torch.isfinite(items).all()
    saved = torch.load(tmp_path / "last_good.pt", weights_only=True)
    for k, v in result.model.state_dict().items():
        assert torch.equal(saved["model"][k], v)


def test_non_finite_features_are_refused_with_the_row(split) -> None:
    train, _ = split
    feats = {k: v.copy() for k, v in train.features.items()}
    feats["item"][7, 3] = np.inf
    with pytest.raises(ValueError, match=r"features\['item'\] row 7"):
        fit(train, feats, TrainConfig(**TINY), device="cpu", progress=False)


# ---------------------------------------------------------------------- early stopping, checkpoints
def test_early_stopping_stops_and_keeps_best(split, tmp_path: Path) -> None:
    train, test = split
    cfg = TrainConfig(**{**TINY, "epochs": 10, "lr": 0.0, "patience": 1, "checkpoint_dir": str(tmp_path)})
    res = fit(train, None, cfg, valid_kg=test, device="cpu", progress=False)
    assert res.stopped_early and len(res.history) == 2  # lr 0: no improvement after the first evaluation
    assert res.best_epoch == 1
    assert all("recall@20" in h and "seconds" in h and "loss" in h for h in res.history)
    best = torch.load(tmp_path / "best.pt", weights_only=True)
    assert best["epoch"] == 1
    assert (tmp_path / "last_good.pt").exists()


def test_validation_metric_improves_with_training(split) -> None:
    train, test = split
    res = fit(train, None, TrainConfig(**{**TINY, "epochs": 3}), valid_kg=test, device="cpu", progress=False)
    pop = Popularity().fit(train).evaluate(test, k=(20,))["recall@20"]
    best = max(h["recall@20"] for h in res.history)
    assert best > 0.15 and best > pop


def test_fit_keeps_the_moving_average_of_the_weights(split) -> None:
    """One step per epoch, so ``fit(epochs=t)`` without an average gives the weights after step
    ``t``: the averaged fit keeps the bias-corrected exponential average of those (written out
    here), at the best validation epoch when validating; a horizon of one step is the raw run."""
    train, test = split
    one_step = {**TINY, "batch_size": 10 ** 6, "inductive_epochs": 0}

    def warm_params(result: TrainedModel) -> dict[str, torch.Tensor]:
        inductive = {id(p) for p in result.model.inductive_parameters()}
        return {n: p.detach().clone() for n, p in result.model.named_parameters() if id(p) not in inductive}

    raw = [warm_params(fit(train, None, TrainConfig(**{**one_step, "epochs": t, "ema_epochs": 0}), device="cpu",
                           progress=False)) for t in (1, 2, 3)]

    def expected(upto: int, horizon: float) -> dict[str, torch.Tensor]:
        b = 1 - 1 / horizon
        return {n: sum((1 - b) * b ** (upto - t) * raw[t - 1][n] for t in range(1, upto + 1)) / (1 - b ** upto)
                for n in raw[0]}

    averaged = warm_params(fit(train, None, TrainConfig(**{**one_step, "epochs": 3, "ema_epochs": 2.5}),
                               device="cpu", progress=False))
    for n, v in expected(3, 2.5).items():
        torch.testing.assert_close(averaged[n], v, rtol=1e-4, atol=1e-6)
    assert any(not torch.allclose(averaged[n], raw[2][n]) for n in raw[2])

    best = fit(train, None, TrainConfig(**{**one_step, "epochs": 3, "ema_epochs": 2.5, "patience": 10}),
               valid_kg=test, device="cpu", progress=False)
    for n, v in expected(best.best_epoch, 2.5).items():
        torch.testing.assert_close(warm_params(best)[n], v, rtol=1e-4, atol=1e-6)

    last = warm_params(fit(train, None, TrainConfig(**{**one_step, "epochs": 3, "ema_epochs": 1}), device="cpu",
                           progress=False))
    assert all(torch.equal(last[n], raw[2][n]) for n in raw[2])
    with pytest.raises(ValueError, match="ema_epochs"):
        TrainConfig(ema_epochs=-1).validate()


# ---------------------------------------------------------------------- state
def test_temperature_follows_the_catalogue_unless_set(trained: TrainedModel, split) -> None:
    """By default the softmax temperature is 1.5 / ln(number of items); a set value is kept."""
    train, _ = split
    rule = 1.5 / math.log(train.num_items)
    assert TrainConfig().softmax_temperature(train.num_items) == pytest.approx(rule)
    assert TrainConfig(temperature=0.3).softmax_temperature(train.num_items) == 0.3
    assert TrainConfig().softmax_temperature(1682) == pytest.approx(0.2019, abs=1e-4)  # ML-100K's 0.2
    assert trained.config.temperature == pytest.approx(rule) and trained.model.temperature == pytest.approx(rule)
    again = fit(train, None, TrainConfig(**{**TINY, "epochs": 1, "temperature": 0.3}), device="cpu", progress=False)
    assert again.model.temperature == 0.3
    with pytest.raises(ValueError, match="temperature must be positive"):
        TrainConfig(temperature=0.0).validate()


def test_state_round_trip_is_exact(trained: TrainedModel, tmp_path: Path) -> None:
    torch.save(trained.state(), tmp_path / "state.pt")
    again = TrainedModel.from_state(torch.load(tmp_path / "state.pt", weights_only=True), device="cpu")
    for a, b in zip(trained.final_embeddings(), again.final_embeddings()):
        assert torch.equal(a, b)
    assert list(again.user_ids) == list(trained.user_ids)
    assert again.config == trained.config
    assert again.history == trained.history
    # a state of the previous propagation (version 2) is refused, not silently scored anew
    old = {**trained.state(), "version": 2}
    with pytest.raises(ModelError, match="version 2 is not supported.*retrain"):
        TrainedModel.from_state(old, device="cpu")


def test_item_bias_learns_popularity_and_is_part_of_the_score(trained: TrainedModel, split) -> None:
    """The learned item bias ranks items much like their training counts (a popularity prior the
    cosines cannot carry), and the scoring vectors are [z_u, 1] and [z_i, tau * b_i]: the score
    is cosine + tau * b_i. With item_bias=False (and in states saved before it existed) the
    vectors are z alone."""
    from scipy.stats import spearmanr

    model, d = trained.model, trained.model.dim
    bias = model.item_bias.detach()
    counts = torch.bincount(trained.graph.inter_item, minlength=trained.index.num_items)
    assert spearmanr(bias.numpy(), counts.numpy()).statistic > 0.4
    users, items = trained.final_embeddings()
    z, _ = trained.propagated()
    U = trained.index.num_users
    assert torch.equal(users[:, :d], z[:U]) and torch.equal(users[:, d], torch.ones(U))
    assert torch.equal(items[:, :d], z[U:U + len(items)]) and torch.allclose(items[:, d], model.temperature * bias)
    scores = trained.score(torch.arange(3))
    assert torch.allclose(scores, z[:3] @ z[U:U + len(items)].T + model.temperature * bias, atol=1e-6)

    train, _ = split
    plain = fit(train, None, TrainConfig(**{**TINY, "item_bias": False}), device="cpu", progress=False)
    assert plain.model.item_bias is None and plain.final_embeddings()[1].shape[1] == d
    assert torch.allclose(plain.final_embeddings()[1].norm(dim=1), torch.ones(len(items)))
    state = trained.state()
    del state["model_args"]["item_bias"], state["model"]["item_bias"], state["model"]["cold_item_bias"]
    old = TrainedModel.from_state(state, device="cpu")
    assert old.model.item_bias is None and torch.equal(old.final_embeddings()[1], z[U:U + len(items)])


def test_set_graph_folds_in_interactions(trained: TrainedModel, split, small) -> None:
    train, _ = split
    res = TrainedModel.from_state(trained.state(), device="cpu")
    before = res.final_embeddings()[0].clone()
    res.set_graph(small)  # train + test interactions, same nodes
    assert not torch.equal(before, res.final_embeddings()[0])
    other = small.with_interactions(small.interactions,
                                    items=small.items.iloc[:-1].reset_index(drop=True))
    with pytest.raises(ModelError, match="item_ids differ"):
        res.set_graph(other, small.features | {"item": small.features["item"][:-1]})


# ---------------------------------------------------------------------- cold start
def test_new_items_inductive_leaves_warm_embeddings_identical(small) -> None:
    """Hold out 20% of the items entirely; their inductive embeddings (text + genre/year edges)
    sit nearer items that share their genres than random items do, and adding them changes no
    existing embedding."""
    train, test = small.split("cold_items", test=0.2, seed=0)
    res = fit(train, None, TrainConfig(**{**TINY, "epochs": 3}), device="cpu", progress=False)
    users, items = (t.clone() for t in res.final_embeddings())
    cold = sorted(train.cold_items)
    rows = pd.Index(small.items["item_id"]).get_indexer(cold)
    t = small.triples
    tri = t[(t["head_type"] == "item") & t["head"].isin(cold)]
    # the cold items are in the training graph as nodes; present them under new ids
    new_ids = [f"new-{c}" for c in cold]
    tri = tri.assign(head="new-" + tri["head"].astype(str))
    out = embed_new_nodes(res, items=NewNodeInputs(new_ids, small.features["item"][rows]), triples=tri)
    assert out.items.shape == (len(cold), 17) and out.item_ids == new_ids  # 16 dims + the item bias
    assert out.report["edges_used"] == len(tri) and out.report["edges_unknown_node"] == 0
    u2, i2 = res.final_embeddings()
    assert torch.equal(users, u2) and torch.equal(items, i2)
    assert torch.allclose(out.items[:, :16].norm(dim=1), res.model.cold_item_scale().expand(len(cold)))
    bias = res.model.temperature * res.model.cold_item_bias
    assert bias != 0 and torch.equal(out.items[:, 16], bias.expand(len(cold)))

    genres = t[(t["head_type"] == "item") & (t["relation"] == "HAS_GENRE")]
    by_item = {h: set(g.astype(str)) for h, g in genres.groupby("head")["tail"]}
    warm = [i for i in res.item_ids if i not in train.cold_items]
    warm_pos = res.item_ids.get_indexer(warm)
    sims = (out.items[:, :16] @ items[torch.as_tensor(warm_pos), :16].T).numpy()
    share_top, share_all = [], []
    for r, c in enumerate(cold):
        g = by_item.get(c, set())
        same = np.array([len(g & by_item.get(w, set())) > 0 for w in warm])
        top = np.argsort(-sims[r], kind="stable")[:20]
        share_top.append(same[top].mean())
        share_all.append(same.mean())
    # the 20 nearest warm items share a genre with the new item far more often than chance
    assert np.mean(share_top) > 1.3 * np.mean(share_all), (np.mean(share_top), np.mean(share_all))


def test_cold_item_calibration_matches_the_warm_share_of_top_k(trained: TrainedModel, small) -> None:
    """The held calibration items, embedded through the public inductive path (text + their
    genre/year edges, under new ids) and scaled by the fitted factor, take the same share of
    every user's top-20 (training items excluded) as their warm representations do, counted
    here independently of the fit; a factor 4x away misses it. Old states load with s = 1."""
    model = trained.model
    held = calibration_items(trained.index.num_items, trained.config.seed)
    assert 1 <= int(held.sum()) < trained.index.num_items
    held_ids = [str(i) for i in trained.item_ids[held.numpy()]]
    rows = pd.Index(small.items["item_id"].astype(str)).get_indexer(held_ids)
    t = small.triples
    tri = t[(t["head_type"] == "item") & t["head"].astype(str).isin(held_ids)]
    tri = tri.assign(head="held-" + tri["head"].astype(str))
    out = embed_new_nodes(trained, items=NewNodeInputs([f"held-{i}" for i in held_ids], small.features["item"][rows]),
                                  triples=tri)
    s = float(model.cold_item_scale())
    assert s > 0 and math.isfinite(s)
    users, items = trained.final_embeddings()
    train = trained.graph
    seen = torch.zeros(len(users), len(items), dtype=torch.bool)
    seen[train.inter_user, train.inter_item] = True
    warm = (users @ items.T).masked_fill(seen, -torch.inf)

    def held_share(scores: torch.Tensor) -> float:
        return float(held[scores.topk(20, dim=1).indices].float().mean())

    d = model.dim  # vectors: [z, bias]; the factor scales z only

    def mixed_share(factor: float) -> float:
        mixed = warm.clone()
        new = torch.cat([out.items[:, :d] * factor / s, out.items[:, d:]], 1)
        mixed[:, held] = (users @ new.T).masked_fill(seen[:, held], -torch.inf)
        return held_share(mixed)

    target = held_share(warm)
    assert abs(mixed_share(s) - target) <= 0.01, (mixed_share(s), target)
    assert mixed_share(s / 4) < target - 0.01 < target + 0.01 < mixed_share(s * 4)
    state = trained.state()
    del state["model"]["cold_item_log_scale"]
    assert float(TrainedModel.from_state(state, device="cpu").model.cold_item_scale()) == 1.0


def test_content_map_is_the_ridge_solution_without_the_held_items(trained: TrainedModel, split) -> None:
    """The map solves the ridge normal equations (X^T X + lambda I) M = X^T Z, for one
    lambda of the GCV grid, on the training items other than the calibration items (raw LM
    features X, final representations Z) and not on all items; an explicit lambda gives the
    direct solve; zero features leave a new item's GNN part alone."""
    train, _ = split
    model = trained.model
    held = calibration_items(trained.index.num_items, trained.config.seed)
    rows = pd.Index(train.items["item_id"].astype(str)).get_indexer(trained.item_ids)
    x = torch.as_tensor(np.asarray(train.features["item"])[rows], dtype=torch.float64)
    z = trained.final_embeddings()[1][:, :model.dim].double()  # without the bias column
    m = model.cold_item_map.double()

    def residual(keep: torch.Tensor) -> float:
        xk, zk = x[keep], z[keep]
        eye = torch.eye(x.shape[1], dtype=torch.float64)
        return min(float(((xk.T @ xk + lam * eye) @ m - xk.T @ zk).abs().max() / (xk.T @ zk).abs().max())
                   for lam in RIDGE_GRID)

    assert residual(~held) < 1e-4
    assert residual(torch.ones_like(held)) > 10 * residual(~held)
    other = copy.deepcopy(model)
    assert fit_content_map(other, x[~held].float(), z[~held].float(), ridge=0.7) == 0.7
    direct = torch.linalg.solve(x[~held].T @ x[~held] + 0.7 * torch.eye(x.shape[1], dtype=torch.float64),
                                x[~held].T @ z[~held])
    assert torch.allclose(other.cold_item_map.double(), direct, atol=1e-5)
    layers = [torch.randn(3, model.dim, generator=torch.Generator().manual_seed(k)) for k in range(3)]
    alone = model.combine(layers) * model.cold_item_scale()
    d = model.dim  # the vectors end with the new items' bias
    assert torch.allclose(model.inductive_output(layers, "item", torch.zeros(3, model.feature_dim))[:, :d], alone)
    mixed = model.inductive_output(layers, "item", x[:3].float())[:, :d]
    assert not torch.allclose(mixed, alone)
    assert torch.allclose(mixed.norm(dim=1), model.cold_item_scale().expand(3))


def test_new_users_from_attributes_and_clicks(trained: TrainedModel, small) -> None:
    users_before, items_before = (t.clone() for t in trained.final_embeddings())
    t = small.triples
    src = ["1", "2"]
    tri = t[(t["head_type"] == "user") & t["head"].isin(src)].assign(head=lambda d: "new-" + d["head"])
    clicks = small.interactions[small.interactions["user_id"] == "1"].head(3)
    clicks = clicks.assign(user_id="new-1")[["user_id", "item_id"]]
    rows = pd.Index(small.users["user_id"]).get_indexer(src)
    out = embed_new_nodes(trained, users=NewNodeInputs(["new-1", "new-2"], small.features["user"][rows]),
                                  triples=tri, interactions=clicks)
    assert out.users.shape == (2, 17) and torch.isfinite(out.users).all()  # [z, 1]: the item bias's weight
    assert torch.equal(out.users[:, 16], torch.ones(2))
    assert out.report["edges_used"] == len(tri) + 3
    u2, i2 = trained.final_embeddings()
    assert torch.equal(users_before, u2) and torch.equal(items_before, i2)
    # unknown neighbours and relations are skipped and counted, not fatal
    bad = pd.DataFrame({"head_type": ["user", "user"], "head": ["new-3", "new-3"], "relation": ["HAS_AGE", "NOPE"],
                        "tail_type": ["entity", "entity"], "tail": ["age:unknown-bucket", "gender:M"]})
    out = embed_new_nodes(trained, users=NewNodeInputs(["new-3"], small.features["user"][:1]), triples=bad)
    assert out.report["edges_unknown_node"] == 1 and out.report["edges_unknown_relation"] == 1


def test_new_users_average_their_gnn_view_with_their_clicked_items(trained: TrainedModel, small) -> None:
    """A new user's vector: the inductive path's output blended (CLICKED_ITEMS_WEIGHT) with the
    direction of the mean final representation of the items they clicked, normalised; without
    clicks, the inductive output alone."""
    t = small.triples
    tri = t[(t["head_type"] == "user") & (t["head"] == "1")].assign(head="new-1")
    clicks = small.interactions[small.interactions["user_id"] == "1"].head(3)
    clicks = clicks.assign(user_id="new-1")[["user_id", "item_id"]]
    x = NewNodeInputs(["new-1"], small.features["user"][pd.Index(small.users["user_id"]).get_indexer(["1"])])
    out = embed_new_nodes(trained, users=x, triples=tri, interactions=clicks)
    gnn = trained.model.combine(out.states["user"].layers)
    z_items = trained.final_embeddings()[1][:, :trained.model.dim]
    clicked = z_items[torch.as_tensor(trained.item_ids.get_indexer(clicks["item_id"]))].sum(0, keepdim=True)
    w = CLICKED_ITEMS_WEIGHT
    expected = torch.nn.functional.normalize((1 - w) * gnn + w * torch.nn.functional.normalize(clicked, dim=-1), dim=-1)
    torch.testing.assert_close(out.users[:, :trained.model.dim], expected)
    assert not torch.allclose(out.users[:, :trained.model.dim], gnn, atol=1e-3)
    # attributes only: the inductive output, unchanged
    no_clicks = embed_new_nodes(trained, users=x, triples=tri)
    assert torch.equal(no_clicks.users[:, :trained.model.dim], trained.model.combine(no_clicks.states["user"].layers))


def test_new_users_user_item_triples_count_as_interactions(trained: TrainedModel, small) -> None:
    """A new user's user -> item triple (a second behaviour, e.g. a tagged artist) is read as an
    interaction, whatever its relation's name: the same vector as the interaction itself."""
    items = small.interactions[small.interactions["user_id"] == "1"]["item_id"].head(2).tolist()
    x = NewNodeInputs(["new-1"], small.features["user"][pd.Index(small.users["user_id"]).get_indexer(["1"])])
    clicks = pd.DataFrame({"user_id": ["new-1", "new-1"], "item_id": items})
    tagged = pd.DataFrame({"head_type": ["user", "item"], "head": ["new-1", items[1]],
                           "relation": ["TAGGED", "SHOWN_TO"], "tail_type": ["item", "user"], "tail": [items[0], "new-1"]})
    by_clicks = embed_new_nodes(trained, users=x, interactions=clicks)
    by_triples = embed_new_nodes(trained, users=x, triples=tagged)
    assert by_triples.report["edges_used"] == 2 and by_triples.report["edges_unknown_relation"] == 0
    assert torch.equal(by_triples.users, by_clicks.users)
    assert not torch.equal(by_triples.users, embed_new_nodes(trained, users=x).users)


def test_new_entities_pass_messages_to_new_items(trained: TrainedModel, small) -> None:
    feats = small.features
    tri = pd.DataFrame({"head_type": ["item"], "head": ["new-item"], "relation": ["HAS_GENRE"],
                        "tail_type": ["entity"], "tail": ["genre:Space Western"]})
    alone = embed_new_nodes(trained, items=NewNodeInputs(["new-item"], feats["item"][:1]))
    linked = embed_new_nodes(trained, items=NewNodeInputs(["new-item"], feats["item"][:1]),
                                     entities=NewNodeInputs(["genre:Space Western"], feats["entity"][:1]),
                                     triples=tri)
    assert linked.report["edges_used"] == 1
    assert not torch.allclose(alone.items, linked.items)


# ---------------------------------------------------------------------- devices
@pytest.mark.parametrize("device", DEVICES)
def test_fit_on_device(split, device: str) -> None:
    train, test = split
    res = fit(train, None, TrainConfig(**{**TINY, "epochs": 1}), valid_kg=test, device=device, progress=False)
    users, items = res.final_embeddings()
    assert users.device.type == device and torch.isfinite(users).all()
    assert res.history[0]["recall@20"] > 0.05


# ---------------------------------------------------------------------- optional graph parts and losses
def test_interactions_only_without_text_trains_and_ranks_within_the_cluster() -> None:
    """Nothing but interactions and ``use_text=False``: the inductive path has no text and no
    content edge to learn from (its steps without a drawn click carry no gradient and are
    skipped), and the warm model still learns the two taste clusters."""
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):
        side = u % 2
        for i in rng.choice(10, size=6, replace=False):
            rows.append((f"u{u}", f"{'ab'[side]}{i}"))
    kg = kgrec.from_tables(interactions=pd.DataFrame(rows, columns=["user_id", "item_id"]))
    rec = kgrec.Recommender(use_text=False, epochs=30, valid_fraction=0.0, device="cpu", progress=False).fit(kg)
    top = rec.recommend([f"u{u}" for u in range(40)], k=3)
    own = top["item_id"].str[0] == top["user_id"].str[1:].astype(int).map(lambda u: "ab"[u % 2])
    assert own.mean() > 0.9, top.head(12)
    # three interactions: most inductive steps draw no click at all (this raised in backward)
    tiny = kgrec.from_tables(interactions=pd.DataFrame({"user_id": ["a", "a", "b"], "item_id": ["x", "y", "x"]}))
    rec = kgrec.Recommender(use_text=False, epochs=2, valid_fraction=0.0, device="cpu", progress=False).fit(tiny)
    assert rec.recommend(["b"], k=1)["item_id"].tolist() == ["y"]


def test_interaction_weight_rating_weighs_each_pair_by_its_rating(split) -> None:
    """interaction_weight='rating': the graph carries each training pair's rating as its loss
    weight (a user-item triple's pair weighs 1), the warm loss is the weighted mean, training
    runs and differs from equal weights; a rating of 0 or less is refused with the fix."""
    from kgrec.train.sampled_softmax import softmax_loss

    train, _ = split
    _, plain = build_graph(train, None)
    assert plain.inter_weight is None
    index, g = build_graph(train, None, pair_weights=True)
    inter = train.interactions.set_index(["user_id", "item_id"])["rating"]
    for k in (0, 7, len(g.inter_user) - 1):
        u, i = index.user_ids[int(g.inter_user[k])], index.item_ids[int(g.inter_item[k])]
        assert float(g.inter_weight[k]) == float(inter.loc[(u, i)])
    zu, zi, lse = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4)
    w = torch.tensor([1.0, 2.0, 3.0, 4.0])
    rows = torch.logaddexp((zu * zi).sum(-1), lse) - (zu * zi).sum(-1)
    assert torch.allclose(softmax_loss(zu, zi, lse, weight=w), (rows * w).sum() / w.sum())
    assert torch.allclose(softmax_loss(zu, zi, lse, weight=torch.ones(4)), softmax_loss(zu, zi, lse))
    cfg = dict(TINY, epochs=1, inductive_epochs=0)
    weighted = fit(train, None, TrainConfig(**cfg, interaction_weight="rating"), device="cpu", progress=False)
    equal = fit(train, None, TrainConfig(**cfg), device="cpu", progress=False)
    assert not torch.equal(weighted.final_embeddings()[1], equal.final_embeddings()[1])
    zero = train.with_interactions(train.interactions.assign(rating=train.interactions["rating"] - 1))
    with pytest.raises(ValueError, match="min_rating"):
        build_graph(zero, None, pair_weights=True)
    with pytest.raises(ValueError, match="interaction_weight"):
        TrainConfig(interaction_weight="stars").validate()


def test_steps_under_bf16_autocast_keep_propagation_and_weights_float32(split) -> None:
    """A few training steps under torch.autocast("cpu", bfloat16), as a GPU user with autocast
    would run them: the sparse propagation stays float32 (its products run outside autocast),
    the loss is a finite float32, gradients reach the weights and the weights stay float32. The
    CPU shows here the dtype errors a GPU run would hit."""
    from dataclasses import replace

    from kgrec.train.calibration import calibration_items
    from kgrec.train.losses import step_loss
    from kgrec.train.optim import adam
    from kgrec.train.setup import new_model, training_graph

    train, _ = split
    cfg = TrainConfig(**TINY)
    device = torch.device("cpu")
    index, graph = training_graph(train, train.features, cfg, device)
    cfg = replace(cfg, temperature=cfg.softmax_temperature(index.num_items))
    model = new_model(index, graph, cfg, device)
    graph.x = model.reduce_all(graph.x)
    lookup, held = PositiveLookup(graph), calibration_items(graph.num_items, 0)
    gen = torch.Generator().manual_seed(0)
    opt = adam(model.parameters(), lr=cfg.lr)
    for step, idx in enumerate(user_batches(graph.inter_user, lookup.indptr, 1024, 16, gen)[:3]):
        with torch.autocast("cpu", dtype=torch.bfloat16):
            z, layers = model(graph, model.sample_id_mask(gen), entity_layers=False)
            loss = step_loss(model, cfg, graph, lookup, z, layers, graph.inter_user[idx], graph.inter_item[idx],
                             gen, held, cold=step == 0)
        assert all(h.dtype == torch.float32 for h in layers[1:]), [h.dtype for h in layers]
        assert loss.dtype == torch.float32 and torch.isfinite(loss)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        assert model.relation.grad is not None and torch.isfinite(model.relation.grad).all()
        opt.step()
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in model.parameters())
