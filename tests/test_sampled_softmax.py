"""masked_logsumexp: the values and gradients of torch.logsumexp over the unmasked entries,
including rows masked everywhere; softmax_loss: the sampled-softmax loss written out."""

from __future__ import annotations

import torch

from kgrec.sampled_softmax import masked_logsumexp, softmax_loss


def test_masked_logsumexp_matches_torch() -> None:
    gen = torch.Generator().manual_seed(0)
    scores = (torch.randn(5, 7, generator=gen, dtype=torch.float64) * 20).requires_grad_()
    mask = torch.rand(5, 7, generator=gen) < 0.3
    mask[2] = True           # a row with no negative left
    mask[3] = False
    got = masked_logsumexp(scores, mask)
    want = torch.logsumexp(scores.masked_fill(mask, -torch.inf), 1)
    assert torch.equal(torch.isinf(got), torch.isinf(want)) and got[2] == -torch.inf
    finite = torch.isfinite(want)
    assert torch.allclose(got[finite], want[finite])
    weight = torch.randn(5, generator=gen, dtype=torch.float64)
    g_got, = torch.autograd.grad((got[finite] * weight[finite]).sum(), scores)
    g_want, = torch.autograd.grad((want[finite] * weight[finite]).sum(), scores)
    assert torch.allclose(g_got, g_want) and (g_got[mask] == 0).all() and (g_got[2] == 0).all()
    assert torch.allclose(g_got.sum(1)[finite], weight[finite])   # a softmax per row, times its weight
    assert torch.autograd.gradcheck(lambda s: masked_logsumexp(s, mask)[finite], (scores,))


def test_softmax_loss_is_the_negative_log_softmax_of_the_positive() -> None:
    gen = torch.Generator().manual_seed(1)
    zu, zi, neg = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen), torch.randn(4, 6, generator=gen)
    mask = torch.zeros(4, 6, dtype=torch.bool)
    mask[0, :2] = True
    loss = softmax_loss(zu, zi, masked_logsumexp(neg, mask))
    pos = (zu * zi).sum(1, keepdim=True)
    logits = torch.cat([pos, neg.masked_fill(mask, -torch.inf)], 1)
    assert torch.allclose(loss, -torch.log_softmax(logits, 1)[:, 0].mean())
