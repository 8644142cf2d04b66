"""masked_logsumexp: the values and gradients of torch.logsumexp over the kept entries (bool or
0/1 float masks, with and without a per-column offset), including rows with nothing kept and
rows whose kept entries sit far below a masked one; masked_logsumexp_pair: the sum without the
offset from the same softmax; softmax_loss: the sampled-softmax loss written out."""

from __future__ import annotations

import pytest
import torch

from kgrec.train.sampled_softmax import masked_logsumexp, masked_logsumexp_pair, softmax_loss


def _reference(scores: torch.Tensor, keep: torch.Tensor, offset: torch.Tensor | None = None) -> torch.Tensor:
    s = scores if offset is None else scores + offset
    return torch.logsumexp(s.masked_fill(~keep.bool(), -torch.inf), 1)


def _case(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    scores = (torch.randn(5, 7, generator=gen, dtype=torch.float64) * 20).requires_grad_()
    keep = torch.rand(5, 7, generator=gen) >= 0.3
    keep[2] = False          # a row with no negative left
    keep[3] = True
    return scores, keep


@pytest.mark.parametrize("as_float", [False, True])
def test_masked_logsumexp_matches_torch(as_float: bool) -> None:
    scores, keep = _case(0)
    mask = keep.double() if as_float else keep
    got = masked_logsumexp(scores, mask)
    want = _reference(scores, keep)
    assert torch.equal(torch.isinf(got), torch.isinf(want)) and got[2] == -torch.inf
    finite = torch.isfinite(want)
    assert torch.allclose(got[finite], want[finite])
    weight = torch.randn(5, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    g_got, = torch.autograd.grad((got[finite] * weight[finite]).sum(), scores)
    g_want, = torch.autograd.grad((want[finite] * weight[finite]).sum(), scores)
    assert torch.allclose(g_got, g_want) and (g_got[~keep] == 0).all() and (g_got[2] == 0).all()
    assert torch.allclose(g_got.sum(1)[finite], weight[finite])   # a softmax per row, times its weight
    assert torch.autograd.gradcheck(lambda s: masked_logsumexp(s, mask)[finite], (scores,))


def test_masked_logsumexp_with_an_offset_and_the_plain_sum() -> None:
    scores, keep = _case(1)
    offset = (torch.randn(7, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 3).requires_grad_()
    finite = keep.any(1)
    got = masked_logsumexp(scores, keep, offset)
    want = _reference(scores, keep, offset)
    assert torch.allclose(got[finite], want[finite]) and got[2] == -torch.inf
    assert torch.autograd.gradcheck(lambda s, o: masked_logsumexp(s, keep, o)[finite], (scores, offset))
    lse, plain = masked_logsumexp_pair(scores, keep, offset)
    assert torch.equal(lse, got) and not plain.requires_grad
    assert torch.allclose(plain[finite], _reference(scores, keep)[finite]) and plain[2] == -torch.inf
    # an offset range wide enough to underflow the biased softmax: the plain sum is computed directly
    wide = offset.detach().clone()
    wide[0] = -200.0
    _, plain = masked_logsumexp_pair(scores.detach(), keep, wide)
    assert torch.allclose(plain[finite], _reference(scores.detach(), keep)[finite])


def test_masked_logsumexp_when_a_masked_entry_dwarfs_the_kept_ones() -> None:
    """The block is shifted by each row's maximum over all entries; where the kept entries sit
    so far below a masked one that their exponentials underflow, the row is recomputed."""
    scores = torch.tensor([[500.0, 1.0, 2.0], [0.0, 1.0, 2.0]], requires_grad=True)
    keep = torch.tensor([[0.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    got = masked_logsumexp(scores, keep)
    want = _reference(scores, keep)
    assert torch.allclose(got, want)
    g, = torch.autograd.grad(got.sum(), scores)
    assert torch.allclose(g, torch.softmax(scores.detach().masked_fill(keep == 0, -torch.inf), 1))


def test_softmax_loss_is_the_negative_log_softmax_of_the_positive() -> None:
    gen = torch.Generator().manual_seed(1)
    zu, zi, neg = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen), torch.randn(4, 6, generator=gen)
    keep = torch.ones(4, 6)
    keep[0, :2] = 0
    loss = softmax_loss(zu, zi, masked_logsumexp(neg, keep))
    pos = (zu * zi).sum(1, keepdim=True)
    logits = torch.cat([pos, neg.masked_fill(keep == 0, -torch.inf)], 1)
    assert torch.allclose(loss, -torch.log_softmax(logits, 1)[:, 0].mean())
