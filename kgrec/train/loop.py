"""The training loop: ``fit(train_kg, features, config) -> TrainedModel``.

Full-graph training (``training_mode="full_graph"``), as LightGCN trains: every step propagates
over the whole graph, then takes the loss of a batch of training pairs (:mod:`kgrec.train.losses`; batches from
:mod:`kgrec.train.sampling`; ``batch_size`` pairs, more on data large enough that an epoch would
take over ``max_steps_per_epoch`` steps: :meth:`TrainConfig.step_batch`) and an Adam step. In every ``cold_view_every``-th step the
cold-start views train too (:mod:`kgrec.train.cold_views`), and after the warm epochs
``inductive_epochs`` train only the inductive path against the final warm model. Validation
and the model kept use the exponential moving average of the weights
(:mod:`kgrec.train.weight_average`). Then the fits that place new items are made
(:mod:`kgrec.train.calibration`). In ``training_mode="subgraph"`` (chosen by "auto" for graphs
beyond the device's memory) a step propagates over its batch's sampled neighbourhood instead
(:mod:`kgrec.train.subgraph`; ``batch_size`` pairs, SparseAdam on the ID table, no weight average,
the cold views after the warm epochs).

Seeded and reproducible on CPU; early stopping on a validation graph with
:func:`kgrec.evaluation.evaluate` (Recall@20); checkpoints (best and last good); a progress bar;
a clear :class:`kgrec.errors.TrainingDivergedError` when the loss stops being finite.

    trained = fit(train_kg, features, TrainConfig(epochs=30), valid_kg=valid_kg)
    users, items = trained.final_embeddings()         # [U, d], [I, d]; score = users @ items.T
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor

from ..errors import TrainingDivergedError
from ..graph.tensors import GraphTensors
from ..knowledge_graph import KnowledgeGraph
from ..nn.model import KGRecModel
from ..settings import resolve_device
from .calibration import calibrate_cold_items, calibration_items, fit_content_map
from .config import TrainConfig
from .distributed import RowShard, broadcast_module, broadcast_value, current_shard, is_main, sum_gradients
from .losses import softmax_losses, step_loss, subgraph_loss
from .optim import RowSparseAdam, adam
from .sampling import PositiveLookup, user_batches
from .setup import new_model, training_graph
from .subgraph import SubgraphSampler, training_mode
from .trained import TrainedModel
from .weight_average import WeightAverage

VALID_METRIC = "recall@20"  # what early stopping and the refit's epoch count follow
SYNC_STEPS = 50  # on an accelerator, the host checks the loss for NaN / inf every this many steps


def _progress(total: int, enabled: bool):
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc="kgrec fit", unit="epoch", leave=True)


def fit(train_kg: KnowledgeGraph, features: dict[str, np.ndarray] | None, config: TrainConfig | None = None,
        valid_kg: KnowledgeGraph | None = None, device: str | torch.device = "auto",
        progress: bool = True) -> TrainedModel:
    """Train a :class:`KGRecModel` on ``train_kg``'s interactions and knowledge edges.

    ``features``: text features per node type, rows in table order (default
    ``train_kg.features``; see :func:`kgrec.text_features.encode_graph`). With ``valid_kg``,
    Recall@20 on it is evaluated after every epoch, the best weights are kept and training stops
    after ``patience`` epochs without improvement.

    Raises :class:`TrainingDivergedError` when the loss becomes NaN/inf; the error's
    ``result`` holds the model with the last good weights (also in
    ``checkpoint_dir/last_good.pt`` when set).

    Inside a ``torch.distributed`` job of several ranks (``torchrun``; see
    :mod:`kgrec.train.distributed`) every rank calls ``fit`` alike and training is data-parallel:
    each rank computes its slice of every batch's rows and the gradients are summed, so a step
    equals the one-process step on the whole batch (to float rounding). Rank 0 alone validates
    (the value is broadcast, so every rank stops at the same epoch), writes checkpoints and shows
    progress; every rank returns the same model.
    """
    config = config or TrainConfig()
    config.validate()
    device = resolve_device(device)
    with _deterministic(device.type == "cpu"):
        return _fit(train_kg, features, config, valid_kg, device, progress)


@contextlib.contextmanager
def _deterministic(enabled: bool) -> Iterator[None]:
    """``torch.use_deterministic_algorithms`` for the duration (restored afterwards): without
    it, CPU scatter-adds sum in thread order and two runs with one seed differ in the last bits.
    Its debugging aid, filling every new uninitialised tensor with NaN
    (``torch.utils.deterministic.fill_uninitialized_memory``), stays off meanwhile: it changes no
    result and costs a ``fill_`` per allocation (``docs/results.md``)."""
    before, before_warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    before_fill = torch.utils.deterministic.fill_uninitialized_memory  # type: ignore[attr-defined]
    if enabled:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before, warn_only=before_warn)
        torch.utils.deterministic.fill_uninitialized_memory = before_fill  # type: ignore[attr-defined]


def _fit(train_kg: KnowledgeGraph, features: dict[str, np.ndarray] | None, config: TrainConfig,
         valid_kg: KnowledgeGraph | None, device: torch.device, progress: bool) -> TrainedModel:
    features = features if features is not None else train_kg.features
    index, graph = training_graph(train_kg, features, config, device)
    config = replace(config, temperature=config.softmax_temperature(index.num_items))
    shard = current_shard()
    sampler = _subgraph_sampler(config, graph, device, shard)
    config = replace(config, training_mode="full_graph" if sampler is None else "subgraph")  # what ran
    if sampler is not None:  # the cold views read the full graph's layers: they train after the warm epochs
        config = replace(config, cold_views="after")

    torch.manual_seed(config.seed)
    gen = torch.Generator(device=device).manual_seed(config.seed)  # random draws where the training runs
    model = new_model(index, graph, config, device)
    raw_items: Tensor | None = None  # items' raw text features, for the content map
    if model.use_text:
        raw_items = graph.x[index.num_users:index.num_users + index.num_items].clone()
        graph.x = model.reduce_all(graph.x)
    opt = adam(model.parameters(), lr=config.lr) if sampler is None else _row_sparse_adam(model, config.lr)
    result = TrainedModel(model, index, graph, config, [], device)
    lookup = PositiveLookup(graph)
    held = calibration_items(graph.num_items, config.seed).to(device)
    ckpt_dir = Path(config.checkpoint_dir) if config.checkpoint_dir and is_main() else None
    if ckpt_dir:
        ckpt_dir.mkdir(parents=True, exist_ok=True)

    M = len(graph.inter_user)
    batch = config.step_batch(M, subgraph=sampler is not None)
    steps = math.ceil(M / batch)
    last_good = copy.deepcopy(model.state_dict())
    best_state, best_value, bad_evals = None, -math.inf, 0
    average = None  # (in subgraph mode, an average of every weight in every step would cost the graph's size)
    if config.ema_epochs > 0 and sampler is None:
        average = WeightAverage(model.parameters(), max(1.0, config.ema_epochs * steps))
    bar = _progress(config.epochs, progress and is_main())
    try:
        for epoch in range(1, config.epochs + 1):
            t0 = time.perf_counter()
            model.train()
            batches = user_batches(graph.inter_user, lookup.indptr, batch, config.rows_per_user, gen)
            total = torch.zeros((), dtype=torch.float64, device=device)  # summed on the device: no sync
            cold_steps, pending = 0, None
            for s, idx in enumerate(batches):
                users, items = graph.inter_user[idx], graph.inter_item[idx]
                weights = None if graph.inter_weight is None else graph.inter_weight[idx]
                cold = config.cold_views_in_step((epoch - 1) * steps + s)
                if sampler is not None:
                    loss = subgraph_loss(model, config, graph, lookup, sampler, users, items, gen, held, weights)
                else:
                    z, layers = model(graph, model.sample_id_mask(gen, device), entity_layers=False)  # users, items
                    loss = step_loss(model, config, graph, lookup, z, layers, users, items, gen, held, cold, weights,
                                     shard)
                if shard is not None:  # the whole batch's loss and gradient, on every rank
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    loss = sum_gradients(model.parameters(), loss)[0]
                bad = ~torch.isfinite(loss)
                pending = bad if pending is None else pending | bad
                if device.type == "cpu" or (s + 1) % SYNC_STEPS == 0 or s + 1 == len(batches):
                    if bool(pending):  # the host looks every SYNC_STEPS steps on an accelerator
                        _diverged(model, result, last_good, config, ckpt_dir, epoch, s + 1, steps,
                                  loss if device.type == "cpu" else None)
                    pending = None
                if shard is None:
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                opt.step()
                if average is not None:
                    average.update()
                total += loss.detach()
                cold_steps += cold
            total = float(total)
            # end of epoch: weights are good if they are finite
            if all(torch.isfinite(p).all() for p in model.parameters()):
                last_good = copy.deepcopy(model.state_dict())
            rec: dict[str, Any] = {"epoch": epoch, "loss": total / steps, "seconds": time.perf_counter() - t0,
                                   "steps": steps, "cold_steps": cold_steps}
            result.invalidate()
            if valid_kg is not None:
                with _averaged_weights(average, result):
                    value = broadcast_value(_validate(result, train_kg, valid_kg) if is_main() else math.nan)
                    improved = value > best_value
                    if improved:
                        best_state = copy.deepcopy(model.state_dict())
                rec[VALID_METRIC] = value
                if improved:
                    best_value, bad_evals = value, 0
                    result.best_epoch = epoch
                    if ckpt_dir:
                        torch.save({"model": best_state, "config": config.to_dict(), "epoch": epoch,
                                    VALID_METRIC: value}, ckpt_dir / "best.pt")
                else:
                    bad_evals += 1
            result.history.append(rec)
            if ckpt_dir:
                torch.save({"model": last_good, "config": config.to_dict(), "epoch": epoch},
                           ckpt_dir / "last_good.pt")
            if bar is not None:
                post = {"loss": f"{rec['loss']:.4f}"}
                if VALID_METRIC in rec:
                    post[VALID_METRIC] = f"{rec[VALID_METRIC]:.4f}"
                bar.set_postfix(post)
                bar.update(1)
            if valid_kg is not None and bad_evals >= config.patience:
                result.stopped_early = True
                break
    finally:
        if bar is not None:
            bar.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    else:
        if average is not None:
            average.copy_to_params()
        if valid_kg is None:
            result.best_epoch = len(result.history)
    broadcast_module(model)  # (ranks that summed the same gradients hold the same weights: made certain)
    if config.cold_views == "after":
        model.start_inductive_path()
    if config.inductive_schedule()[0] > 0 and config.trains_cold_views:
        fit_inductive(model, config, graph, lookup, gen, held, shard)
    if is_main():
        model.eval()
        with torch.no_grad():
            z, layers = model(graph)  # the final warm model, for the content map and the calibration
        if raw_items is not None:
            fit_content_map(model, raw_items[~held], z[graph.num_users:graph.num_users + graph.num_items][~held])
        calibrate_cold_items(model, graph, lookup, held, z, layers, raw_items, config.seed)
    broadcast_module(model)  # rank 0's fits, on every rank
    model.eval()
    result.invalidate()
    return result


def _subgraph_sampler(config: TrainConfig, graph: GraphTensors, device: torch.device,
                      shard: RowShard | None) -> SubgraphSampler | None:
    """The sampler of ``training_mode="subgraph"`` (:func:`kgrec.train.subgraph.training_mode`
    decides "auto"), or ``None`` for full-graph training. Data-parallel training (several ranks)
    trains the full graph: "auto" chooses it there, and "subgraph" is refused."""
    if shard is not None:
        if config.training_mode == "subgraph":
            raise ValueError("training_mode='subgraph' does not run data-parallel yet (each rank would sum "
                             "gradients of the whole ID table every step). Fix: train with one process, or "
                             "with training_mode='full_graph'")
        return None
    if training_mode(config, graph, device) == "full_graph":
        return None
    return SubgraphSampler(graph, config.fanout, config.layers)


def _row_sparse_adam(model: KGRecModel, lr: float) -> RowSparseAdam:
    """The optimiser of subgraph mode: SparseAdam for the ID table (a step reads only its
    subgraph's rows), Adam for the rest."""
    sparse = [model.id_embedding.weight] if model.use_id else []
    return RowSparseAdam([p for p in model.parameters() if all(p is not q for q in sparse)], sparse, lr)


def _diverged(model: KGRecModel, result: TrainedModel, last_good: dict[str, Tensor], config: TrainConfig,
              ckpt_dir: Path | None, epoch: int, step: int, steps: int, loss: Tensor | None) -> None:
    """Restore the last good weights (saved to ``ckpt_dir`` too) and raise
    :class:`TrainingDivergedError` for a loss that stopped being finite by ``step`` of ``epoch``
    (``loss``: its value when the check ran at that very step)."""
    model.load_state_dict(last_good)
    result.invalidate()
    if ckpt_dir:
        torch.save({"model": last_good, "config": config.to_dict(), "epoch": epoch - 1}, ckpt_dir / "last_good.pt")
    became = f"became {loss.item()} at" if loss is not None else "became NaN or inf by"
    err = TrainingDivergedError(
        f"training diverged: the loss {became} epoch {epoch}, step {step}/{steps}. "
        f"The model keeps the last good weights (end of epoch {epoch - 1}"
        + (f", saved in {ckpt_dir / 'last_good.pt'}" if ckpt_dir else "") +
        f"). Fix: lower lr (now {config.lr:g}) or check the features for extreme values")
    err.result = result  # type: ignore[attr-defined]
    raise err


@contextlib.contextmanager
def _averaged_weights(average: WeightAverage | None, result: TrainedModel) -> Iterator[None]:
    """The model holds ``average``'s weights inside the block (the raw ones without an average),
    with ``result``'s cached embeddings recomputed on each side of it."""
    if average is None:
        yield
        return
    with average.applied():
        result.invalidate()
        yield
    result.invalidate()


def fit_inductive(model: KGRecModel, config: TrainConfig, graph: GraphTensors, lookup: PositiveLookup,
                   gen: torch.Generator, held: Tensor, shard: RowShard | None = None) -> None:
    """Train only the inductive path (:meth:`KGRecModel.inductive_parameters`) for the
    epochs of :meth:`TrainConfig.inductive_schedule` (cold views) against the *final* warm model: its
    layers are computed once, in eval mode (no ID dropout), as :func:`kgrec.cold_start.placement.embed_new_nodes`
    will see them, and stay fixed, so a step costs no propagation and the warm model cannot
    change. A non-finite loss ends the phase and restores the inductive parameters it started
    from. With ``shard``, data-parallel as in :func:`fit` (every rank calls it alike)."""
    model.eval()
    with torch.no_grad():
        z, layers = model(graph)
    params = model.inductive_parameters()
    start = [p.detach().clone() for p in params]
    epochs, lr = config.inductive_schedule()
    opt = adam(params, lr=lr)
    M = len(graph.inter_user)
    batch = config.step_batch(M)
    for _ in range(epochs):
        perm = torch.randperm(M, generator=gen, device=gen.device).to(z.device)
        for s in range(0, M, batch):
            idx = perm[s:s + batch]
            loss = softmax_losses(model, config, graph, lookup, z, layers, graph.inter_user[idx],
                                   graph.inter_item[idx], gen, held, warm=False, shard=shard)
            reaches = loss.requires_grad
            if shard is not None:  # the whole batch's loss and gradient, and whether any rank's reached a parameter
                opt.zero_grad(set_to_none=True)
                if reaches:
                    loss.backward()
                loss, reached = sum_gradients(params, loss, torch.tensor(float(reaches)))
                reaches = bool(reached > 0)
            if not torch.isfinite(loss):
                with torch.no_grad():
                    for p, p0 in zip(params, start):
                        p.copy_(p0)
                return
            if not reaches:  # it reached no inductive parameter: no text, content edge or click
                continue
            if shard is None:
                opt.zero_grad(set_to_none=True)
                loss.backward()
            opt.step()


def _validate(result: TrainedModel, train_kg: KnowledgeGraph, valid_kg: KnowledgeGraph) -> float:
    """Recall@20 of ``result`` on ``valid_kg``, ``train_kg``'s items excluded."""
    from ..evaluation import evaluate

    return float(evaluate(result.score, train_kg, valid_kg, result.user_ids, result.item_ids, k=(20,))[VALID_METRIC])
