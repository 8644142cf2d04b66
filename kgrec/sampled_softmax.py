"""The pieces of the sampled-softmax losses in :mod:`kgrec.training`.

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


class _MaskedLogSumExp(torch.autograd.Function):
    """Row-wise log-sum-exp over the unmasked entries. The forward keeps the softmax it computes
    for the backward (:math:`\\partial\\,\\mathrm{lse}_u / \\partial s_{uj} = \\mathrm{softmax}_u(s)_j`,
    0 where masked), so a step takes one ``exp`` of the score block instead of two and no masked
    copy in the backward."""

    @staticmethod
    def forward(ctx, scores: Tensor, mask: Tensor) -> Tensor:  # type: ignore[override]
        p = scores.masked_fill(mask, -torch.inf)
        top = p.amax(1, keepdim=True)
        top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))  # rows with every entry masked
        p.sub_(top).exp_()
        total = p.sum(1, keepdim=True)
        ctx.save_for_backward(p.div_(total.clamp_min(torch.finfo(p.dtype).tiny)))
        return (total.log() + top).squeeze(1)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        (p,) = ctx.saved_tensors
        return p * grad.unsqueeze(1), None


def masked_logsumexp(scores: Tensor, mask: Tensor) -> Tensor:
    """:math:`\\mathrm{lse}_u` ``[B]``: ``log(sum(exp(scores[u, j])))`` over the ``j`` where
    ``mask[u, j]`` ([B, C] bool) is False; ``-inf`` for a row masked everywhere. Equal to
    ``torch.logsumexp(scores.masked_fill(mask, -inf), 1)`` with a cheaper backward."""
    return _MaskedLogSumExp.apply(scores, mask)


def softmax_loss(zu: Tensor, zi: Tensor, lse_neg: Tensor, bias: Tensor | None = None) -> Tensor:
    """:math:`\\ell_{ui}` (module docstring) averaged over rows: ``zu`` ``[B, dim]`` carries the
    1 / temperature factor, ``zi`` ``[B, dim]`` are the positives, ``lse_neg`` ``[B]`` each row's
    :func:`masked_logsumexp` of the negative scores, ``bias`` ``[B]`` (optional) is added to the
    positives' scores :math:`s_{ui}`."""
    pos = (zu * zi).sum(-1).float()
    if bias is not None:
        pos = pos + bias
    return (torch.logaddexp(pos, lse_neg) - pos).mean()
