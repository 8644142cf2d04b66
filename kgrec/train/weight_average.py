"""Exponential moving average of a model's parameters (Polyak averaging), for evaluation.

Training updates the parameters :math:`\\theta_t`; the average after step :math:`T` is

.. math::
    \\bar{\\theta}_T = \\frac{1 - \\beta}{1 - \\beta^T} \\sum_{t=1}^{T} \\beta^{T-t} \\, \\theta_t,
    \\qquad \\beta = 1 - \\frac{1}{n}

with :math:`n` the horizon in steps (the weights of the last :math:`n` steps carry about 63% of
the sum). The factor :math:`1 - \\beta^T` corrects the average's start at zero (as Adam corrects
its moments), so early in training it is the average of the steps taken so far, not pulled
towards zero or towards the initial weights. Training keeps updating the raw parameters;
:meth:`WeightAverage.applied` puts the average in place for evaluation and puts the raw
parameters back.

    average = WeightAverage(model.parameters(), horizon_steps=10 * steps_per_epoch)
    for batch in ...:
        loss.backward(); opt.step(); average.update()
    with average.applied():
        value = evaluate(model)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

import torch
from torch import Tensor


class WeightAverage:
    """Bias-corrected exponential moving average of ``params`` over ``horizon_steps`` steps."""

    def __init__(self, params: Iterable[torch.nn.Parameter], horizon_steps: float):
        if horizon_steps < 1:
            raise ValueError(f"horizon_steps must be at least 1 (got {horizon_steps})")
        self.params = list(params)
        self._values = [p.detach() for p in self.params]  # views: they follow the optimiser's in-place updates
        self.decay = 1.0 - 1.0 / horizon_steps
        self.steps = 0
        self._sum = [torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def update(self) -> None:
        """Fold the parameters' current values into the average (call after each optimiser step)."""
        torch._foreach_lerp_(self._sum, self._values, 1.0 - self.decay)
        self.steps += 1

    def averaged(self) -> list[Tensor]:
        """The averaged values, one tensor per parameter (the parameters themselves before any update)."""
        if self.steps == 0:
            return [p.detach().clone() for p in self.params]
        correction = 1.0 - self.decay ** self.steps
        return [s / correction for s in self._sum]

    @torch.no_grad()
    def copy_to_params(self) -> None:
        """Overwrite the parameters with the average (the end of training)."""
        for p, a in zip(self.params, self.averaged()):
            p.copy_(a)

    @contextlib.contextmanager
    def applied(self) -> Iterator[None]:
        """The average in the parameters inside the block; the raw values restored after it."""
        raw = [p.detach().clone() for p in self.params]
        self.copy_to_params()
        try:
            yield
        finally:
            with torch.no_grad():
                for p, r in zip(self.params, raw):
                    p.copy_(r)
