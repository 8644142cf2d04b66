"""Subgraph training (``training_mode="subgraph"``): a sampled subgraph with every neighbour kept
gives the seeds exactly their full-graph representations; sampling keeps the node count under
its bound and the sampled message unbiased; a step changes only the ID rows it read; "auto"
picks the mode from the memory estimate; a model trained this way ranks. Real data: ML-100K's
first 300 users with LM text features."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

import kgrec
from kgrec.baselines import Popularity
from kgrec.evaluation import evaluate
from kgrec.train import TrainConfig, fit
from kgrec.train.calibration import calibration_items
from kgrec.train.losses import step_negatives, subgraph_loss
from kgrec.train.optim import RowSparseAdam
from kgrec.train.sampling import PositiveLookup
from kgrec.train.setup import new_model, training_graph
from kgrec.train.subgraph import SubgraphSampler, full_graph_bytes, subgraph_forward, training_mode
from support.model_fixtures import small_movielens_with_text

TINY = dict(dim=16, layers=2, epochs=2, batch_size=1024, num_negatives=256)


@pytest.fixture(scope="module")
def small(ml100k_dir: Path) -> kgrec.KnowledgeGraph:
    return small_movielens_with_text(ml100k_dir)


@pytest.fixture(scope="module")
def prepared(small):
    """``(config, graph, model)``: an untrained model over the small graph, features reduced as
    training reduces them."""
    cfg = TrainConfig(**TINY)
    index, graph = training_graph(small, small.features, cfg, torch.device("cpu"))
    cfg = replace(cfg, temperature=cfg.softmax_temperature(index.num_items))
    torch.manual_seed(0)
    model = new_model(index, graph, cfg, torch.device("cpu"))
    graph.x = model.reduce_all(graph.x)
    with torch.no_grad():   # relation vectors away from 1, so that a wrong relation would show
        model.relation.uniform_(0.5, 1.5)
    return cfg, graph, model.eval()


def _seeds(graph, n_users: int = 20, n_items: int = 30) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    users = torch.randperm(graph.num_users, generator=g)[:n_users]
    items = torch.randperm(graph.num_items, generator=g)[:n_items] + graph.num_users
    return torch.cat([users, items])


def test_unsampled_subgraph_gives_the_full_graph_representations(prepared) -> None:
    cfg, graph, model = prepared
    max_degree = int(graph.deg.max())
    sampler = SubgraphSampler(graph, fanout=max_degree, layers=cfg.layers)   # every neighbour kept
    seeds = _seeds(graph)
    sub = sampler.sample(seeds, torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = model(graph)[0][seeds]
        mine = subgraph_forward(model, sub, graph.x[sub.nodes])[sub.rows(seeds)]
    assert len(sub.nodes) < graph.num_nodes   # a neighbourhood, not the graph
    torch.testing.assert_close(mine, full, rtol=1e-5, atol=1e-6)


def test_sampled_subgraph_is_bounded_and_its_message_unbiased(prepared) -> None:
    cfg, graph, model = prepared
    sampler = SubgraphSampler(graph, fanout=3, layers=cfg.layers)
    seeds = _seeds(graph, 5, 5)
    gen = torch.Generator().manual_seed(0)
    sub = sampler.sample(seeds, gen)
    assert len(sub.nodes) <= sampler.max_nodes(len(seeds))
    assert torch.equal(sub.nodes, torch.unique(sub.nodes))   # sorted, distinct
    # one layer of messages into the seeds: each draw's mean is the full sum, within 5 standard errors
    h = torch.randn(graph.num_nodes, 4, generator=torch.Generator().manual_seed(2))
    adj = graph.interaction_adjacency()
    full = (adj @ h[:adj.shape[0]])[seeds]
    draws = torch.stack([(s.adj @ h[s.nodes])[s.rows(seeds)]
                         for s in (sampler.sample(seeds, gen) for _ in range(200))])
    stderr = draws.std(0) / len(draws) ** 0.5
    assert ((draws.mean(0) - full).abs() <= 5 * stderr + 1e-6).all()
    assert (draws.std(0) > 0).any()   # some messages were sampled
    hubs = seeds[graph.deg[seeds] > 3 * sampler.fanout]
    assert len(hubs), "the test needs seeds whose neighbours are sampled"


def test_a_step_updates_only_the_id_rows_it_read(prepared, small) -> None:
    cfg = prepared[0]
    index, graph = training_graph(small, small.features, cfg, torch.device("cpu"))
    model = new_model(index, graph, cfg, torch.device("cpu")).train()
    graph.x = model.reduce_all(graph.x)
    sampler = SubgraphSampler(graph, fanout=2, layers=cfg.layers)
    lookup = PositiveLookup(graph)
    held = calibration_items(graph.num_items, 0)
    opt = RowSparseAdam([p for p in model.parameters() if p is not model.id_embedding.weight],
                        [model.id_embedding.weight], lr=0.01)
    before = model.id_embedding.weight.detach().clone()
    rows = torch.arange(64)
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    loss = subgraph_loss(model, cfg, graph, lookup, sampler, graph.inter_user[rows], graph.inter_item[rows], gen,
                         held)
    opt.zero_grad()
    loss.backward()
    assert model.id_embedding.weight.grad.is_sparse
    opt.step()
    # the same draws again give the subgraph the step read
    gen.set_state(state)
    uniq, _, cand, _ = step_negatives(cfg, lookup, graph.inter_user[rows], gen)
    sub = sampler.sample(torch.cat([uniq, graph.num_users + graph.inter_item[rows], graph.num_users + cand]), gen)
    changed = (model.id_embedding.weight.detach() != before).any(1)
    read = torch.zeros(graph.num_nodes, dtype=torch.bool)
    read[sub.nodes] = True
    assert changed.any()
    assert not (changed & ~read).any(), "an ID row outside the step's subgraph changed"
    assert int(read.sum()) < graph.num_nodes


def test_auto_mode_follows_the_memory_estimate(prepared) -> None:
    cfg, graph, _ = prepared
    need = full_graph_bytes(graph, cfg)
    auto = replace(cfg, training_mode="auto")
    assert training_mode(auto, graph, torch.device("cpu"), free_bytes=4 * need) == "full_graph"
    assert training_mode(auto, graph, torch.device("cpu"), free_bytes=need) == "subgraph"
    forced = replace(cfg, training_mode="full_graph")
    assert training_mode(forced, graph, torch.device("cpu"), free_bytes=1) == "full_graph"


def test_bad_mode_and_fanout_are_refused() -> None:
    with pytest.raises(ValueError, match="training_mode"):
        TrainConfig(training_mode="sampled").validate()   # type: ignore[arg-type]
    with pytest.raises(ValueError, match="fanout"):
        TrainConfig(fanout=0).validate()


@pytest.mark.slow
def test_subgraph_training_ranks(small) -> None:
    train, test = small.split("random", test=0.2, seed=0)
    trained = fit(train, None, TrainConfig(**{**TINY, "epochs": 3, "training_mode": "subgraph"}), device="cpu",
                  progress=False)
    assert trained.config.training_mode == "subgraph"
    assert trained.config.cold_views == "after"
    losses = [h["loss"] for h in trained.history]
    assert losses[-1] < losses[0]
    mine = evaluate(trained.score, train, test, trained.user_ids, trained.item_ids, k=(20,))["recall@20"]
    base = Popularity().fit(train).evaluate(test, k=(20,))["recall@20"]
    assert mine > base, f"subgraph training Recall@20 {mine:.4f} does not beat popularity {base:.4f}"
