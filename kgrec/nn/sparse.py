"""Sparse-dense products and row normalisation with cheap backward passes, shared by kgrec's model
and the baselines.

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


class _RowNormalize(torch.autograd.Function):
    r""":math:`\mathbf{z} = \mathbf{x} / \max(\lVert \mathbf{x} \rVert, \epsilon)` per row, with
    the backward :math:`\partial \mathbf{x} = (\mathbf{g} - \mathbf{z} (\mathbf{g}^\top
    \mathbf{z})) / \lVert \mathbf{x} \rVert` in two passes over the block (:math:`\mathbf{g} /
    \epsilon` for a row whose norm was clamped). Autograd through ``F.normalize`` divides by the
    broadcast norm and takes several more passes."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, eps: float) -> Tensor:  # type: ignore[override]
        norm = x.norm(dim=-1, keepdim=True)
        denom = norm.clamp_min(eps)
        z = x / denom
        ctx.save_for_backward(z, denom, norm >= eps)
        return z

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        z, denom, unclamped = ctx.saved_tensors
        dot = (grad * z).sum(-1, keepdim=True) * unclamped
        return torch.addcmul(grad / denom, z, dot / denom, value=-1), None


def row_normalize(x: Tensor, eps: float = 1e-12) -> Tensor:
    """Rows of ``x`` L2-normalised, as ``torch.nn.functional.normalize(x, dim=-1)`` (the same
    values) with a cheaper backward."""
    return _RowNormalize.apply(x, eps)
