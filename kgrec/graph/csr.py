"""Compressed sparse rows: the one way kgrec groups entries by row and reads rows back.

A CSR index of ``M`` entries over ``R`` rows is ``indptr [R + 1]``: row ``r``'s entries sit at
positions ``indptr[r]:indptr[r + 1]`` of the arrays sorted by row. Training positives per user,
seen items per user, knowledge edges per target node and test items per user are all kept this
way; :func:`gather_rows` reads many rows at once without a Python loop.

:func:`sparse_csr` and :func:`relation_pairs` build the sparse matrices that message passing
multiplies by (:mod:`kgrec.nn.sparse`).
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor


def csr_indptr(rows: Tensor, num_rows: int) -> Tensor:
    """``indptr [num_rows + 1]`` of entries whose rows are ``rows`` ``[M]`` (any order):
    ``indptr[r + 1] - indptr[r]`` is the number of entries in row ``r``."""
    indptr = torch.zeros(num_rows + 1, dtype=torch.long, device=rows.device)
    indptr[1:] = torch.cumsum(torch.bincount(rows, minlength=num_rows), 0)
    return indptr


def rows_csr(rows: Tensor, cols: Tensor, num_rows: int) -> tuple[Tensor, Tensor]:
    """``(indptr, indices)`` of the matrix with ``num_rows`` rows holding the ``(rows, cols)``
    pairs: row ``r``'s columns are ``indices[indptr[r]:indptr[r + 1]]``, in input order."""
    rows, cols = torch.as_tensor(rows, dtype=torch.long), torch.as_tensor(cols, dtype=torch.long)
    order = torch.sort(rows, stable=True).indices
    return csr_indptr(rows, num_rows), cols[order]


def gather_rows(indptr: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
    """The entries of the CSR rows ``rows`` ``[b]``: ``(local, entry)``, for each entry its
    position in ``rows`` and its position in the CSR's arrays (``indices[entry]`` are its
    columns). Rows are read in ``rows`` order, each row's entries in stored order."""
    rows = torch.as_tensor(rows, dtype=torch.long, device=indptr.device)
    start = indptr[rows]
    count = indptr[rows + 1] - start
    local = torch.repeat_interleave(torch.arange(len(rows), device=indptr.device), count)
    # entry j of row r sits at start[r] + (j - the first entry of row r in the output)
    first = torch.repeat_interleave(start - (torch.cumsum(count, 0) - count), count)
    return local, torch.arange(len(local), device=indptr.device) + first


def sparse_csr(index: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    """The sparse CSR matrix with ``values`` at ``index`` ``[2, nnz]`` (rows, columns; duplicates
    summed), with int32 row pointers and column indices when they fit: with int64 ones the CPU
    sparse product copies more per call."""
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        csr = torch.sparse_coo_tensor(index, values, shape).coalesce().to_sparse_csr()
    if max(shape[0], shape[1], csr.values().numel()) >= 2 ** 31:
        return csr
    return torch.sparse_csr_tensor(csr.crow_indices().int(), csr.col_indices().int(), csr.values(), shape)


def relation_pairs(src: Tensor, edge_type: Tensor, dst: Tensor, norm: Tensor, num_rows: int,
                   num_edge_types: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Edges ``src -> dst`` of type ``edge_type`` and weight ``norm`` (``[E]`` each) grouped by
    their distinct (source, edge type) pairs, so that relation-modulated message passing is one
    sparse product: ``(pair_src [P], pair_type [P], A [num_rows, P], A^T [P, num_rows])`` (sparse
    CSR, :func:`sparse_csr`) with ``A[v, p]`` the summed ``norm`` of the edges from pair ``p``'s
    source into ``v``; then :math:`\\sum_e n_e \\mathbf{r}_e \\odot \\mathbf{h}_{src(e)} =
    A (\\mathbf{H}[pair\\_src] \\odot \\mathbf{R}[pair\\_type])`."""
    pair, edge_pair = torch.unique(src * num_edge_types + edge_type, return_inverse=True)
    index, shape = torch.stack([dst, edge_pair]), (num_rows, len(pair))
    return (pair // num_edge_types, pair % num_edge_types, sparse_csr(index, norm, shape),
            sparse_csr(index.flip(0), norm, shape[::-1]))
