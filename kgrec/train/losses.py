"""The loss of a training step: a sampled softmax over cosine scores, plus the cold-start views.

For a step's training pairs :math:`(u, i)` and ``num_negatives`` items :math:`C` drawn for the
step (:func:`kgrec.train.sampling.sample_negatives`; each user's own positives masked out),

.. math::
    \\ell(u, i) = -\\frac{\\mathbf{z}_u^\\top \\mathbf{z}_i}{\\tau} - b_i
        + \\log \\Big( e^{\\mathbf{z}_u^\\top \\mathbf{z}_i / \\tau + b_i}
        + \\sum_{j \\in C \\setminus P_u} e^{\\mathbf{z}_u^\\top \\mathbf{z}_j / \\tau + b_j} \\Big)

with :math:`\\mathbf{z}` the L2-normalised final representations, :math:`\\tau` the temperature
(:meth:`kgrec.train.config.TrainConfig.softmax_temperature`) and :math:`b` the items' learned
biases (``item_bias``). The step's loss is the mean over its pairs (with
``interaction_weight='rating'``, the mean weighted by their ratings); the pairs of one user share
the normaliser, computed once per user (:mod:`kgrec.train.sampled_softmax`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..graph.tensors import GraphTensors
from ..nn.model import KGRecModel
from .cold_views import add_cold_view_losses
from .config import TrainConfig
from .distributed import RowShard
from .sampled_softmax import masked_logsumexp, masked_logsumexp_pair, softmax_loss
from .sampling import PositiveLookup, sample_negatives
from .subgraph import NodeRows, SubgraphSampler, subgraph_forward


def step_loss(model: KGRecModel, config: TrainConfig, graph: GraphTensors, lookup: PositiveLookup, z: Tensor,
              layers: list[Tensor], users: Tensor, items: Tensor, gen: torch.Generator, held: Tensor,
              cold: bool, weights: Tensor | None = None, shard: RowShard | None = None) -> Tensor:
    """The loss of a warm training step on the batch's (user, item) pairs, with ``cold`` the
    cold-start views too (float32); ``weights`` ``[B]`` weigh the pairs' warm terms; with
    ``shard``, this rank's share of it (:func:`softmax_losses`)."""
    return softmax_losses(model, config, graph, lookup, z, layers, users, items, gen, held, cold=cold,
                          weights=weights, shard=shard).float()


def step_negatives(config: TrainConfig, lookup: PositiveLookup, users: Tensor,
                   gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``(uniq, inv, candidates, keep)``: a step's distinct users, each batch row's among them,
    and the shared negatives with their mask (:func:`kgrec.train.sampling.sample_negatives`)."""
    uniq, inv = torch.unique(users, return_inverse=True)
    return (uniq, inv) + sample_negatives(lookup, uniq, config.num_negatives, gen)


def softmax_losses(model: KGRecModel, config: TrainConfig, graph: GraphTensors, lookup: PositiveLookup,
                   z: Tensor | NodeRows, layers: list[Tensor] | None, users: Tensor, items: Tensor,
                   gen: torch.Generator, held: Tensor, cold: bool = True, warm: bool = True,
                   weights: Tensor | None = None, shard: RowShard | None = None,
                   negatives: tuple[Tensor, Tensor, Tensor, Tensor] | None = None) -> Tensor:
    """Sampled softmax of the warm model (module docstring; without ``warm`` it is left out: the
    inductive phase, whose warm model is fixed) plus, with ``cold``, the cold-item and cold-user
    views (:func:`kgrec.train.cold_views.add_cold_view_losses`; ``held``: ``[I]`` bool, the
    calibration items, which the cold-item view never sees). The cold views compare cosines
    only: a new item has no bias of its own (the calibration gives it one). ``weights`` ``[B]``
    (``interaction_weight='rating'``) make the warm term a weighted mean over the pairs.

    With ``shard`` (data-parallel training, :mod:`kgrec.train.distributed`), ``users``, ``items``
    and ``weights`` are the whole batch, of which this rank computes its own rows: each mean
    becomes that rows' sum over the whole batch's count (or weight sum), so the ranks' losses
    add up to the batch's loss. The random draws (negatives, cold users' clicks) do not depend on
    the rows, so every rank draws the same ones.

    ``z`` is read at the rows of the batch's users, its items and the negatives only: a
    :class:`kgrec.train.subgraph.NodeRows` (a sampled subgraph's representations, indexed by
    homogeneous position) serves as well as the full ``[N, dim]`` tensor, with ``negatives``
    drawn beforehand (:func:`step_negatives`; the subgraph must hold them) and without the cold
    views, which read the full graph's ``layers``."""
    batch_items, denom = None, None
    if shard is not None:
        batch_items, denom = items, float(len(items)) if weights is None else weights.sum()
        users, items = shard.take(users), shard.take(items)
        weights = None if weights is None else shard.take(weights)
    U = graph.num_users
    zi = z[U + items]
    # rows of the same user share the negatives, so their normaliser is computed once per user
    uniq, inv, cand, keep = negatives if negatives is not None else step_negatives(config, lookup, users, gen)
    zu = z[uniq] / config.temperature
    scores = (zu @ z[U + cand].T).float()
    bias = model.item_bias
    cold = cold and config.trains_cold_views
    if cold and (isinstance(z, NodeRows) or layers is None):
        raise ValueError("the cold-start views read the full graph's representations and layers")
    if not warm:
        loss = scores.new_zeros(())
        with torch.no_grad():
            lse_plain = masked_logsumexp(scores, keep)
    else:
        offset = None if bias is None else bias[cand]
        if cold and offset is not None:  # the cold views compare cosines: they also need the sum without the bias
            lse_neg, lse_plain = masked_logsumexp_pair(scores, keep, offset)
        else:
            lse_neg = lse_plain = masked_logsumexp(scores, keep, offset)
        loss = softmax_loss(zu[inv], zi, lse_neg[inv], None if bias is None else bias[items], weights, denom)
    if cold:
        assert isinstance(z, Tensor) and layers is not None
        loss = add_cold_view_losses(loss, model, config, graph, lookup, z, layers, users, items, gen, held,
                                    zu, inv, lse_plain, cand, keep, zi, z[U:U + graph.num_items], shard,
                                    batch_items)
    return loss


def subgraph_loss(model: KGRecModel, config: TrainConfig, graph: GraphTensors, lookup: PositiveLookup,
                  sampler: SubgraphSampler, users: Tensor, items: Tensor, gen: torch.Generator, held: Tensor,
                  weights: Tensor | None = None) -> Tensor:
    """The warm loss of a ``training_mode="subgraph"`` step (float32): the step's negatives are
    drawn first, its users, items and negatives are the seeds of a sampled subgraph
    (:class:`kgrec.train.subgraph.SubgraphSampler`), and the loss reads their representations
    on it (:func:`kgrec.train.subgraph.subgraph_forward`), each node's ID kept with
    probability ``1 - id_dropout``."""
    negatives = step_negatives(config, lookup, users, gen)
    uniq, _, cand, _ = negatives
    U = graph.num_users
    sub = sampler.sample(torch.cat([uniq, U + items, U + cand]), gen)
    x = graph.x[sub.nodes] if graph.x is not None else None
    z = subgraph_forward(model, sub, x, model.sample_id_mask(gen, users.device, num=len(sub.nodes)))
    return softmax_losses(model, config, graph, lookup, NodeRows(z, sub), None, users, items, gen, held,
                          cold=False, weights=weights, negatives=negatives).float()
