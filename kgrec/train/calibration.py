"""After training: the fits that place new items beside the catalogue.

- :func:`fit_content_map`: a ridge map from items' raw text features to their trained
  representations, one of the two views a new item's representation averages;
- :func:`calibrate_cold_items`: one factor on new items' scores (and their bias) so that new
  items take as many top-k slots as comparable catalogue items, measured on
  :func:`calibration_items`, training items the cold-item view never sees.

Both write buffers of :class:`kgrec.nn.model.KGRecModel` (``cold_item_map``,
``cold_item_log_scale``, ``cold_item_bias``) that :meth:`KGRecModel.inductive_output` reads.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ..graph.tensors import GraphTensors
from ..nn.model import KGRecModel
from .cold_views import cold_items
from .sampling import PositiveLookup

RIDGE_GRID = tuple(10.0 ** (k / 2) for k in range(-6, 5))  # content-map ridge candidates, 1e-3 .. 1e2


@torch.no_grad()
def fit_content_map(model: KGRecModel, x_raw: Tensor, z: Tensor, ridge: float | None = None) -> float:
    r"""Fit ``model.cold_item_map`` :math:`\mathbf{M} = (\mathbf{X}^\top\mathbf{X} + \lambda
    \mathbf{I})^{-1}\mathbf{X}^\top\mathbf{Z}`: ridge regression from items' raw text features
    ``x_raw`` ``[n, F]`` to their trained final representations ``z`` ``[n, dim]`` (a
    LinMap-style content map, in the full feature space), and return :math:`\lambda`.

    ``ridge=None`` chooses :math:`\lambda` on the grid :data:`RIDGE_GRID` by generalised
    cross-validation, :math:`\mathrm{GCV}(\lambda) = n \lVert (\mathbf{I} - \mathbf{H}_\lambda)
    \mathbf{Z} \rVert^2 / (n - \mathrm{tr}\,\mathbf{H}_\lambda)^2` with :math:`\mathbf{H}_\lambda`
    the ridge hat matrix (one SVD of :math:`\mathbf{X}`; no data set needs a hand-set value)."""
    x, y = x_raw.double(), z.double()
    u, sv, vh = torch.linalg.svd(x, full_matrices=False)
    uty = u.T @ y
    outside = float((y * y).sum() - (uty * uty).sum())  # the part of Z no ridge fit can reach
    n = x.shape[0]

    def gcv(lam: float) -> float:
        shrink = sv ** 2 / (sv ** 2 + lam)
        rss = float((((1 - shrink).unsqueeze(1) * uty) ** 2).sum()) + outside
        return n * rss / max(n - float(shrink.sum()), 1e-9) ** 2

    lam = ridge if ridge is not None else min(RIDGE_GRID, key=gcv)
    m = vh.T @ ((sv / (sv ** 2 + lam)).unsqueeze(1) * uty)
    model.cold_item_map.copy_(m.to(model.cold_item_map.dtype))
    return lam


CALIBRATION_USERS = 2048      # users whose top-k the cold-item calibration compares, at most
CALIBRATION_CELLS = 1 << 24   # and fewer when users x items would pass this many scores
CALIBRATION_ITEM_SHARE = 0.1  # share of the training items held out of the cold view for it
CALIBRATION_K = 20


def calibration_items(num_items: int, seed: int) -> Tensor:
    """``[I]`` bool: the items :func:`calibrate_cold_items` measures on, a seeded random
    ``CALIBRATION_ITEM_SHARE`` of them (none in a catalogue of fewer than 10 items). The
    cold-item view of training never sees them, so their inductive representations are as out
    of sample as a new item's."""
    held = torch.zeros(num_items, dtype=torch.bool)
    n = int(num_items * CALIBRATION_ITEM_SHARE)
    if n >= 1:
        held[torch.randperm(num_items, generator=torch.Generator().manual_seed(seed))[:n]] = True
    return held


@torch.no_grad()
def calibrate_cold_items(model: KGRecModel, graph: GraphTensors, lookup: PositiveLookup, held: Tensor,
                         z: Tensor, layers: list[Tensor], raw_items: Tensor | None = None, seed: int = 0) -> float:
    r"""Set the factor :math:`s` on new items' representations (``model.cold_item_log_scale``)
    so that items seen through the inductive path take as many top-k slots as the same items
    seen warm, and return :math:`s`. ``z``, ``layers``: the trained model's final and per-layer
    representations (``model(graph)`` in eval mode).

    The ``held`` items (``[I]`` bool, :func:`calibration_items`; neither the cold-item view of
    training nor the content map saw them) are scored two ways for a seeded sample of
    ``CALIBRATION_USERS`` users (fewer in a large catalogue; their training items excluded):
    warm, :math:`\mathbf{z}_u^\top \mathbf{z}_i + \beta_i`, and as if new, :math:`s\,\mathbf{z}_u^\top
    \mathbf{c}_i + \beta_{new}` with :math:`\mathbf{c}_i` the item's inductive representation from
    its text and knowledge edges (with ``raw_items``, ``[I, F]`` raw text features: blended with
    the content map, as at add time) and :math:`\beta_{new}` the held items' mean bias, which
    becomes every new item's (``model.cold_item_bias``; 0 without ``item_bias``). :math:`s` is
    found by bisection on :math:`\log s \in [-3, 3]` so that the held items' share of the
    top-``CALIBRATION_K`` slots of the mixed ranking equals their warm share. Inductive cosines
    come out on a scale of their own (lower when text and attributes say less than interactions),
    so without it new items take too few or too many slots beside the catalogue. A positive
    factor changes no ranking among new items and no ranking of existing items. With fewer than
    one held item, :math:`s = 1`."""
    model.cold_item_log_scale.zero_()
    model.cold_item_bias.zero_()
    U, I = graph.num_users, graph.num_items
    k = min(CALIBRATION_K, I - 1)
    if int(held.sum()) < 1 or k < 1:
        return 1.0
    device = z.device
    held = held.to(device)
    sel = torch.nonzero(held).squeeze(1)
    if model.item_bias is not None:
        model.cold_item_bias.fill_(float(model.item_bias[sel].mean()))
    beta_new = model.temperature * float(model.cold_item_bias)
    n_users = min(CALIBRATION_USERS, max(64, CALIBRATION_CELLS // I))
    users = torch.randperm(U, generator=torch.Generator().manual_seed(seed))[:n_users].to(device)
    seen = lookup.mask(users, torch.arange(I, device=device))
    zu = z[users]
    warm = (model.user_output(zu) @ model.item_output(z[U:U + I]).T).float().masked_fill_(seen, -torch.inf)
    raw = None if raw_items is None else raw_items[sel]
    cold_vectors = cold_items(model, graph, layers, sel, raw)[:, :model.dim]
    cold = (zu @ cold_vectors.T).float().masked_fill_(seen[:, sel], -torch.inf)

    def share(scores: Tensor) -> float:
        return float(held[scores.topk(k, dim=1).indices].float().mean())

    target = share(warm)
    lo, hi = -3.0, 3.0
    for _ in range(25):
        mid = (lo + hi) / 2
        mixed = warm.clone()
        mixed[:, sel] = cold * math.exp(mid) + beta_new
        lo, hi = (mid, hi) if share(mixed) < target else (lo, mid)
    model.cold_item_log_scale.fill_((lo + hi) / 2)
    return math.exp((lo + hi) / 2)
