"""kgrec.optim.adam: fused where torch has it, and the same updates as the default Adam."""

from __future__ import annotations

import torch

from kgrec.train.optim import adam


def test_adam_is_fused_on_cpu_and_steps_like_the_default() -> None:
    gen = torch.Generator().manual_seed(0)
    start = torch.randn(50, 8, generator=gen)
    targets = [torch.randn(50, 8, generator=gen) for _ in range(5)]
    a, b = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    fused, default = adam([a], lr=0.05, weight_decay=1e-3), torch.optim.Adam([b], lr=0.05, weight_decay=1e-3)
    assert fused.defaults["fused"] and not default.defaults["fused"]
    for t in targets:
        for p, opt in ((a, fused), (b, default)):
            opt.zero_grad()
            ((p - t) ** 2).sum().backward()
            opt.step()
    assert not torch.equal(a.detach(), start)
    assert torch.allclose(a.detach(), b.detach(), atol=1e-6)
