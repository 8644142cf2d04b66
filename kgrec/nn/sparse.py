"""Sparse-dense products with cheap backward passes, shared by kgrec's model and the baselines.

Propagation multiplies node states by constant sparse CSR matrices (built by
:mod:`kgrec.graph.csr`). Autograd through ``torch.sparse.mm`` transposes the matrix on every
backward call; here the backward multiplies by a transpose given once (:func:`sparse_mm`), or
by the matrix itself when it is symmetric (:func:`symmetric_spmm`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def csr_mm(adj: Tensor, x: Tensor) -> Tensor:
    """``adj @ x`` for a sparse CSR ``adj`` and a dense ``x``. On CPU through ``addmm`` into a new
    uninitialised output: ``torch.sparse.mm`` zero-fills its result and copies it once more
    (the same values, at a higher cost)."""
    if x.device.type != "cpu":
        return torch.sparse.mm(adj, x)
    out = x.new_empty(adj.shape[0], x.shape[1])
    return torch.addmm(out, adj, x, beta=0, out=out)


class _SymmetricSpMM(torch.autograd.Function):
    """``A @ X`` for a constant symmetric sparse ``A``: the gradient is ``A @ G``."""

    @staticmethod
    def forward(ctx: Any, adj: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.adj = adj
        return csr_mm(adj, x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor]:  # type: ignore[override]
        return None, csr_mm(ctx.adj, grad.contiguous())


def symmetric_spmm(adj: Tensor, x: Tensor) -> Tensor:
    """``adj @ x`` with ``adj`` sparse CSR, constant and symmetric (differentiable in ``x``)."""
    return _SymmetricSpMM.apply(adj, x)


class _SpMM(torch.autograd.Function):
    """``A @ X`` for a constant sparse ``A`` whose transpose is given (precomputed CSR)."""

    @staticmethod
    def forward(ctx: Any, adj: Tensor, adj_t: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.adj_t = adj_t
        return csr_mm(adj, x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, None, Tensor]:  # type: ignore[override]
        return None, None, csr_mm(ctx.adj_t, grad.contiguous())


def sparse_mm(adj: Tensor, adj_t: Tensor, x: Tensor) -> Tensor:
    """``adj @ x`` with ``adj`` sparse CSR and constant, ``adj_t`` its transpose (differentiable
    in ``x``)."""
    return _SpMM.apply(adj, adj_t, x)
