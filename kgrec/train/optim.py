"""The optimiser every model of kgrec (and its baselines) trains with."""

from __future__ import annotations

from collections.abc import Iterable

import torch


def adam(params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float = 0.0) -> torch.optim.Adam:
    """``torch.optim.Adam`` with its fused kernel (one pass over each parameter and its moments
    instead of one per operation; measured in ``docs/results.md``), or the default
    implementation where this torch or device has no fused Adam."""
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


class RowSparseAdam:
    """Adam (:func:`adam`) for the parameters with dense gradients and
    :class:`torch.optim.SparseAdam` for ``sparse`` ones, whose gradients are row-sparse (an
    embedding table read at a step's rows): a step then updates those rows alone, and their
    moments only when the rows are read ("lazy" Adam), at a cost bounded by the batch."""

    def __init__(self, dense: Iterable[torch.nn.Parameter], sparse: Iterable[torch.nn.Parameter], lr: float) -> None:
        dense, sparse = list(dense), list(sparse)
        self.parts: list[torch.optim.Optimizer] = []
        if dense:
            self.parts.append(adam(dense, lr))
        if sparse:
            self.parts.append(torch.optim.SparseAdam(sparse, lr=lr))

    def zero_grad(self, set_to_none: bool = True) -> None:
        for opt in self.parts:
            opt.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for opt in self.parts:
            opt.step()
