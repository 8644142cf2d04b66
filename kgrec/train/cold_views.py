"""Cold-start views: training steps that also see batch items and users as if they were new.

A new item or user has no ID embedding and no interactions; it is placed by the model's
inductive path (:meth:`kgrec.nn.model.KGRecModel.inductive_layers`) from its text and its
knowledge edges. These views train that path's own parameters against the detached warm model,
so they never change the warm ranking:

- the cold-item view (:func:`cold_item_loss`): every batch item and every shared negative is
  embedded from its text and knowledge edges alone and must rank as the warm item does;
- the cold-user view (:func:`cold_users` in :func:`add_cold_view_losses`): batch users embedded
  from their text, their knowledge edges and 0..``COLD_USER_CLICKS`` of their training items.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..graph.tensors import ITEM_TO_USER, GraphTensors
from ..nn.model import KGRecModel
from .config import TrainConfig
from .distributed import RowShard
from .sampled_softmax import masked_logsumexp, softmax_loss
from .sampling import PositiveLookup

COLD_USER_ROWS = 512      # batch rows that also train the cold-user view
COLD_USER_CLICKS = 3      # a cold user in training sees 0..3 of their own interactions


def add_cold_view_losses(loss: Tensor, model: KGRecModel, config: TrainConfig, graph: GraphTensors,
                         lookup: PositiveLookup, z: Tensor, layers: list[Tensor], users: Tensor, items: Tensor,
                         gen: torch.Generator, held: Tensor, zu: Tensor, inv: Tensor, lse_plain: Tensor,
                         cand: Tensor, keep: Tensor, zi: Tensor, z_items: Tensor, shard: RowShard | None = None,
                         batch_items: Tensor | None = None) -> Tensor:
    """``loss`` plus the cold-item and the cold-user view losses of a step, each times its weight
    (``cold_item_weight``, ``cold_user_weight``). The step's warm quantities come from
    :func:`kgrec.train.losses.softmax_losses`: ``zu`` ``[u, dim]`` the distinct batch users'
    representations divided by the temperature, ``inv`` each batch row's user among them,
    ``lse_plain`` ``[u]`` the log-sum-exp of their warm negative cosines (no bias), ``cand`` the
    shared negatives and ``keep`` ``[u, C]`` their mask (0 at training positives), ``zi`` the
    batch items' representations and ``z_items`` every item's. ``held``: ``[I]`` bool, the
    calibration items, which the cold-item view never sees.

    With ``shard``, ``users`` and ``items`` are this rank's rows of the step's batch, whose items
    are ``batch_items``: every mean is then this rank's share of the whole batch's mean, and the
    cold users' random draws are made for the whole batch (every rank draws the same)."""
    frozen = model.frozen_layers(layers, graph)
    zu = zu.detach()
    if config.cold_item_weight > 0:
        loss = loss + config.cold_item_weight * cold_item_loss(model, graph, frozen, zu, inv, lse_plain.detach(),
                                                               zi.detach(), items, cand, keep, config.temperature,
                                                               held, None if shard is None else batch_items)
    if config.cold_user_weight > 0:
        n = len(users) if batch_items is None else len(batch_items)
        n_rows = min(n, COLD_USER_ROWS)  # spread over the batch, whose users come in runs
        rows = torch.arange(n_rows, device=users.device) * n // n_rows
        among, denom = None, None
        if shard is not None:
            which, rows = shard.positions(rows, n)
            among, denom = (n_rows, which), float(n_rows)
        cold_u = cold_users(model, graph, frozen, lookup, users[rows], items[rows], gen, among) / config.temperature
        lse_u = masked_logsumexp((cold_u @ z_items[cand].detach().T).float(), keep[inv[rows]])
        loss = loss + config.cold_user_weight * (
            softmax_loss(cold_u, zi[rows].detach(), lse_u, denom=denom)
            + alignment(cold_u, z[users[rows]].detach(), denom))
    return loss


def cold_item_loss(model: KGRecModel, graph: GraphTensors, frozen: list[Tensor], zu: Tensor, inv: Tensor,
                   lse_warm: Tensor, z_pos: Tensor, items: Tensor, cand: Tensor, keep: Tensor,
                   temperature: float, held: Tensor, batch_items: Tensor | None = None) -> Tensor:
    """Loss of the cold-item view (trains only the inductive path: everything warm is detached).

    Each batch item ``i`` and each shared negative ``j`` is embedded as if new (:func:`cold_items`).
    Terms, one per way a new item is used:

    - new items compete with the catalogue: every negative appears in both views (warm and
      cold), and both the cold and the warm view of the positive must beat all of them. The
      warm-positive half keeps new items in proportion: without it the cold view can score high
      for everyone (a direction close to all users) and new items fill every top-k;
    - new items ranked among themselves: the cold positive against the cold negatives;
    - an alignment ``1 - cos(cold_i, z_i)`` that keeps the cold view where the warm model put
      the item.

    The ``held`` items (``[I]`` bool, :func:`kgrec.train.calibration.calibrate_cold_items`'s)
    are never seen as new: not as positives, not as negatives, so that their cold views stay out
    of sample.

    Per distinct batch user (row ``inv[b]`` for batch row ``b``): ``zu`` ``[u, dim]`` carries
    ``1 / temperature``, ``lse_warm`` ``[u]`` is the log-sum-exp of the warm negative scores,
    ``keep`` ``[u, C]`` is 0 at training positives among ``cand``, 1 elsewhere.

    ``batch_items`` (a rank's share of a batch split over ranks; ``items`` its rows): the items of
    the whole batch, whose row and not-held counts divide the terms instead of this rank's."""
    rows_total = kept_total = None
    if batch_items is not None:
        rows_total, kept_total = float(len(batch_items)), (~held[batch_items]).sum()
    not_held = ~held[items]
    items, z_pos_kept, rows = items[not_held], z_pos[not_held], inv[not_held]
    nodes, where = torch.unique(torch.cat([items, cand]), return_inverse=True)
    cold = cold_items(model, graph, frozen, nodes)
    cold_pos, cold_neg = cold[where[:len(items)]], cold[where[len(items):]]
    lse_cold = masked_logsumexp((zu @ cold_neg.T).float(), keep * (~held[cand]).to(keep.dtype))
    lse_both = torch.logaddexp(lse_warm, lse_cold)
    loss = softmax_loss(zu[inv], z_pos, lse_both[inv], denom=rows_total)
    if len(items):  # a batch of held items only has no cold positive
        zu_rows = zu[rows]
        loss = loss + (softmax_loss(zu_rows, cold_pos, lse_both[rows], denom=kept_total)
                       + softmax_loss(zu_rows, cold_pos, lse_cold[rows], denom=kept_total)
                       + alignment(cold_pos, z_pos_kept, kept_total))
    return loss


def alignment(a: Tensor, b: Tensor, denom: float | Tensor | None = None) -> Tensor:
    """Mean ``1 - cos(a_k, b_k)`` over rows (with ``denom``: their sum divided by it, a rank's share
    of a batch's mean)."""
    gap = 1 - F.cosine_similarity(a.float(), b.float(), dim=-1)
    return gap.mean() if denom is None else gap.sum() / denom


def cold_users(model: KGRecModel, graph: GraphTensors, layers: list[Tensor], lookup: PositiveLookup,
               users: Tensor, items: Tensor, gen: torch.Generator,
               among: tuple[int, Tensor] | None = None) -> Tensor:
    """Batch users as if they were new: embedded through the inductive path from their text,
    their knowledge edges (attributes, friends) and 0..``COLD_USER_CLICKS`` of their training
    items drawn at random, never the row's target ``items``. ``[R, dim]`` in ``users`` order.
    ``among`` ``(n, which)``: the draws are made for ``n`` rows and ``users`` are rows ``which`` of
    them (a rank's share: every rank draws the same)."""
    R, k, device = len(users), COLD_USER_CLICKS, users.device
    drawn = R if among is None else among[0]
    row_kg, src_kg, et_kg = graph.knowledge_edges_into(users)
    indptr, pos_items = lookup.indptr, lookup.items
    start = indptr[users]
    count = indptr[users + 1] - start
    n = torch.randint(0, k + 1, (drawn,), generator=gen, device=gen.device).to(device)
    u = torch.rand(drawn, k, generator=gen, device=gen.device).to(device)
    if among is not None:
        n, u = n[among[1]], u[among[1]]
    offs = (u * count.unsqueeze(1)).long()
    pick = pos_items[start.unsqueeze(1) + offs]
    keep = (torch.arange(k, device=device).unsqueeze(0) < n.unsqueeze(1)) & (pick != items.unsqueeze(1))
    row_i = torch.arange(R, device=device).unsqueeze(1).expand(R, k)[keep]
    src_i = pick[keep] + graph.num_users
    row, src = torch.cat([row_kg, row_i]), torch.cat([src_kg, src_i])
    etype = torch.cat([et_kg, torch.full_like(src_i, ITEM_TO_USER)])
    x = graph.x[users] if model.use_text else None
    return model.inductive(layers, x, "user", R, row, src, etype, graph.deg[src])


def cold_items(model: KGRecModel, graph: GraphTensors, layers: list[Tensor], items: Tensor,
               raw: Tensor | None = None) -> Tensor:
    """``items`` (item positions) as if they were new: embedded through the inductive path from
    their text and knowledge edges only (no ID, no interactions). ``[n, dim]`` in ``items`` order.
    Without ``raw``: the inductive path's own output (:meth:`KGRecModel.combine`, what training
    fits); with ``raw`` (the items' raw text features ``[n, F]``): what a new item gets
    (:meth:`KGRecModel.inductive_output`: content map and calibration factor)."""
    nodes = items + graph.num_users
    row, src, etype = graph.knowledge_edges_into(nodes)
    x = graph.x[nodes] if model.use_text else None
    per_layer = model.inductive_layers(layers, x, "item", len(items), row, src, etype, graph.deg[src])
    return model.combine(per_layer) if raw is None else model.inductive_output(per_layer, "item", raw)
