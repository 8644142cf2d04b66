"""WeightAverage: the bias-corrected exponential moving average of parameters, checked against
its formula written out, and the raw parameters restored after evaluation."""

from __future__ import annotations

import pytest
import torch

from kgrec.train.weight_average import WeightAverage


def _explicit(values: list[torch.Tensor], horizon: float) -> torch.Tensor:
    """(1 - b) / (1 - b^T) * sum_t b^(T - t) theta_t with b = 1 - 1 / horizon."""
    b = 1.0 - 1.0 / horizon
    T = len(values)
    total = sum((1 - b) * b ** (T - t) * v for t, v in enumerate(values, start=1))
    return total / (1 - b ** T)


def test_average_is_the_bias_corrected_exponential_sum() -> None:
    gen = torch.Generator().manual_seed(0)
    p = torch.nn.Parameter(torch.randn(5, 3, generator=gen))
    start = p.detach().clone()
    average = WeightAverage([p], horizon_steps=4.0)
    assert torch.equal(average.averaged()[0], start)  # before any step: the weights themselves
    seen = []
    for _ in range(7):
        with torch.no_grad():
            p.add_(torch.randn(5, 3, generator=gen))
        average.update()
        seen.append(p.detach().clone())
        torch.testing.assert_close(average.averaged()[0], _explicit(seen, 4.0), rtol=1e-5, atol=1e-6)
    # the first average is the first weights, not pulled towards zero
    assert not torch.allclose(average.averaged()[0], seen[-1])


def test_horizon_of_one_step_is_the_latest_weights() -> None:
    p = torch.nn.Parameter(torch.zeros(4))
    average = WeightAverage([p], horizon_steps=1.0)
    for v in (1.0, -2.0, 5.0):
        with torch.no_grad():
            p.fill_(v)
        average.update()
    assert torch.equal(average.averaged()[0], torch.full((4,), 5.0))
    with pytest.raises(ValueError, match="horizon_steps"):
        WeightAverage([p], horizon_steps=0.5)


def test_applied_swaps_in_the_average_and_restores_the_raw_weights() -> None:
    p = torch.nn.Parameter(torch.zeros(3))
    average = WeightAverage([p], horizon_steps=2.0)
    for v in (2.0, 4.0):
        with torch.no_grad():
            p.fill_(v)
        average.update()
    expected = _explicit([torch.full((3,), 2.0), torch.full((3,), 4.0)], 2.0)
    with average.applied():
        torch.testing.assert_close(p.detach(), expected)
    assert torch.equal(p.detach(), torch.full((3,), 4.0))
    with pytest.raises(RuntimeError, match="inside"):
        with average.applied():
            raise RuntimeError("inside")
    assert torch.equal(p.detach(), torch.full((3,), 4.0))  # restored on an error too
    average.copy_to_params()
    torch.testing.assert_close(p.detach(), expected)
