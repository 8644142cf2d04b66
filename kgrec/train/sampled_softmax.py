"""The pieces of the sampled-softmax losses in :mod:`kgrec.train.losses`.

With scores :math:`s_{uj}` of user :math:`u` against shared sampled items :math:`j`, some of
which are the user's own positives (masked out), the loss of a positive :math:`i` is

.. math::
    \\ell_{ui} = -\\log \\frac{e^{s_{ui}}}{e^{s_{ui}} + \\sum_{j \\notin P_u} e^{s_{uj}}}
             = \\log\\left(e^{s_{ui}} + e^{\\mathrm{lse}_u}\\right) - s_{ui}, \\qquad
    \\mathrm{lse}_u = \\log \\sum_{j \\notin P_u} e^{s_{uj}}
"""

from __future__ import annotations

import torch
from torch import Tensor

UNDERFLOW = 1e-20     # a row whose shifted sum falls below this is recomputed with its kept maximum
OFFSET_SPREAD = 60.0  # masked_logsumexp_pair: beyond this offset range, the plain sum is recomputed


def _softmax_rows(scores: Tensor, keep: Tensor, offset: Tensor | None) -> tuple[Tensor, Tensor]:
    """``(p, lse)``: each row's softmax over its kept entries (0 elsewhere) and log-sum-exp
    (``-inf`` for a row with none kept), of ``scores + offset``.

    The shift is the row's maximum over *all* entries, so the mask is applied once, as a float
    product after the ``exp``: a boolean ``masked_fill`` with ``-inf`` and an ``exp`` of ``-inf``
    cost about three times as much on CPU (ML-100K's score blocks, one thread). The shifted sum
    keeps full precision unless every kept entry sits 46 or more below the row's maximum
    (:data:`UNDERFLOW`); such rows, and rows with nothing kept, are recomputed with the maximum
    over their kept entries."""
    p = scores + offset if offset is not None else scores.clone()
    top = p.amax(1, keepdim=True)
    p.sub_(top).exp_().mul_(keep)
    total = p.sum(1, keepdim=True)
    low = torch.nonzero(total.squeeze(1) < UNDERFLOW).squeeze(1)
    if len(low):
        sub = (scores[low] + offset if offset is not None else scores[low]).masked_fill(keep[low] == 0, -torch.inf)
        sub_top = sub.amax(1, keepdim=True)
        sub_top = torch.where(torch.isfinite(sub_top), sub_top, torch.zeros_like(sub_top))  # nothing kept
        sub = sub.sub_(sub_top).exp_()
        p[low], total[low], top[low] = sub, sub.sum(1, keepdim=True), sub_top
    p.div_(total.clamp_min(torch.finfo(p.dtype).tiny))
    return p, (total.log() + top).squeeze(1)


class _MaskedLogSumExp(torch.autograd.Function):
    """Row-wise log-sum-exp over the kept entries of ``scores + offset``. The forward keeps the
    softmax it computes for the backward (:math:`\\partial\\,\\mathrm{lse}_u / \\partial s_{uj} =
    \\mathrm{softmax}_u(s)_j`, 0 where masked; the offset's gradient is its column sum), so a step
    takes one ``exp`` of the score block. With ``plain``, it also returns the log-sum-exp without
    the offset, from the same softmax (no gradient):

    .. math::
        \\log \\sum_j k_{uj} e^{s_{uj}} = \\mathrm{lse}_u + \\log \\sum_j p_{uj} e^{-o_j}"""

    @staticmethod
    @torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)  # float32 under bf16 autocast
    def forward(ctx, scores: Tensor, keep: Tensor, offset: Tensor | None, plain: bool):  # type: ignore[override]
        keep = keep.to(scores.dtype)
        p, lse = _softmax_rows(scores, keep, offset)
        ctx.save_for_backward(p)
        ctx.has_offset = offset is not None
        if not plain or offset is None:  # (masked_logsumexp_pair always passes an offset)
            out = lse.new_empty(0)
        elif float(offset.max() - offset.min()) > OFFSET_SPREAD:
            # (with a wide offset range some kept p_uj would underflow: compute it directly)
            out = _softmax_rows(scores, keep, None)[1]
        else:
            low = offset.min()  # e^{-(o_j - min o)} <= 1
            out = lse + torch.log(p @ torch.exp(low - offset)) - low
        ctx.mark_non_differentiable(out)
        return lse, out

    @staticmethod
    @torch.amp.custom_bwd(device_type="cuda")
    def backward(ctx, grad: Tensor, _unused: Tensor):  # type: ignore[override]
        (p,) = ctx.saved_tensors
        g_scores = p * grad.unsqueeze(1)
        g_offset = p.T @ grad if ctx.has_offset and ctx.needs_input_grad[2] else None
        return g_scores, None, g_offset, None


def masked_logsumexp(scores: Tensor, keep: Tensor, offset: Tensor | None = None) -> Tensor:
    """:math:`\\mathrm{lse}_u` ``[B]``: ``log(sum(exp(scores[u, j] + offset[j])))`` over the ``j``
    where ``keep[u, j]`` (``[B, C]``, bool or 0/1 float; 1 = the entry counts) is set; ``-inf``
    for a row with none kept. ``offset`` ``[C]`` (optional) is a per-column term, e.g. the
    candidates' biases. Equal to ``torch.logsumexp((scores + offset).masked_fill(~keep, -inf),
    1)`` with a cheaper forward and backward."""
    return _MaskedLogSumExp.apply(scores, keep, offset, False)[0]


def masked_logsumexp_pair(scores: Tensor, keep: Tensor, offset: Tensor) -> tuple[Tensor, Tensor]:
    """``(lse, plain)``: :func:`masked_logsumexp` of ``scores + offset`` (with gradients) and of
    ``scores`` alone (detached), the second from the first's softmax at the cost of one
    matrix-vector product instead of a second pass of ``exp`` over the block."""
    return tuple(_MaskedLogSumExp.apply(scores, keep, offset, True))  # type: ignore[return-value]


def softmax_loss(zu: Tensor, zi: Tensor, lse_neg: Tensor, bias: Tensor | None = None,
                 weight: Tensor | None = None, denom: float | Tensor | None = None) -> Tensor:
    """:math:`\\ell_{ui}` (module docstring) averaged over rows: ``zu`` ``[B, dim]`` carries the
    1 / temperature factor, ``zi`` ``[B, dim]`` are the positives, ``lse_neg`` ``[B]`` each row's
    :func:`masked_logsumexp` of the negative scores, ``bias`` ``[B]`` (optional) is added to the
    positives' scores :math:`s_{ui}`; with ``weight`` ``[B]`` (positive), the weighted mean
    :math:`\\sum_b w_b \\ell_b / \\sum_b w_b`. With ``denom`` (a rank's share of a batch split
    over ranks, :class:`kgrec.train.distributed.RowShard`), the (weighted) sum divided by ``denom``,
    the whole batch's row count or weight sum, so that the ranks' shares add up to the batch's mean."""
    pos = (zu * zi).sum(-1).float()
    if bias is not None:
        pos = pos + bias
    rows = torch.logaddexp(pos, lse_neg) - pos
    if denom is not None:
        return (rows if weight is None else rows * weight).sum() / denom
    return rows.mean() if weight is None else (rows * weight).sum() / weight.sum()
