"""Top-k ranking: every candidate item scored for a chunk of users, seen items masked, best k kept.

Memory is bounded by ``batch_size x num_items`` scores at a time, whatever the number of users,
on the device the scorer computes on.
The work beyond the bare ``torch.topk(scores, k)`` is kept to one gather of the chunk's seen
items (a slice when the chunk is a run of consecutive users, as when ranking everyone) and one
``index_fill_`` of their flat score positions.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import Tensor

from .graph.csr import csr_indptr, gather_rows


class SeenItems:
    """Each user's training items as CSR (``indptr``, ``indices`` over item positions), plus
    ``owner``, the user of every stored entry (so a run of consecutive users is one slice)."""

    def __init__(self, user_pos: np.ndarray, item_pos: np.ndarray, num_users: int):
        order = np.lexsort((item_pos, user_pos))  # by user, then item: already the CSR order
        self.owner = torch.as_tensor(user_pos[order], dtype=torch.long)
        self.indices = torch.as_tensor(item_pos[order], dtype=torch.long)
        self.indptr = csr_indptr(self.owner, num_users)

    @property
    def num_users(self) -> int:
        return len(self.indptr) - 1

    def mask_coords(self, users: Tensor) -> tuple[Tensor, Tensor]:
        """(row in ``users``, item position) of every seen item of the given users."""
        if len(users) and int(users[-1]) - int(users[0]) == len(users) - 1 \
                and bool((users[1:] - users[:-1] == 1).all()):
            first = int(users[0])
            lo, hi = int(self.indptr[first]), int(self.indptr[first + len(users)])
            return self.owner[lo:hi] - first, self.indices[lo:hi]
        rows, entry = gather_rows(self.indptr, users)
        return rows, self.indices[entry]


def topk(score: Callable[[Tensor], Tensor], users: Tensor, k: int, num_items: int,
         seen: SeenItems | None = None, candidates: Tensor | None = None,
         batch_size: int = 2048) -> tuple[Tensor, Tensor]:
    """Top-``k`` items for each of ``users`` (positions). Returns ``(scores, item_positions)``,
    both ``[len(users), k']`` with ``k' = min(k, candidate count)``; excluded entries that still
    had to fill a row come back with score ``-inf`` and are for the caller to drop.

    ``score(user_chunk) -> [b, C]``: the chunk's scores for the ``candidates`` (item positions,
    in that order) or, without them, for all ``num_items`` items. ``seen`` masks each user's
    training items. The masking and top-k run where ``score`` returns its scores (a GPU when the
    scorer computes there); the results come back on the CPU."""
    n_cols = num_items if candidates is None else len(candidates)
    kk = min(k, n_cols)
    out_s, out_i = [], []
    cand_pos = None
    if candidates is not None and seen is not None:
        # map item position -> column in the candidate pool (-1 when not a candidate)
        cand_pos = torch.full((num_items,), -1, dtype=torch.long)
        cand_pos[candidates] = torch.arange(len(candidates))
    for start in range(0, len(users), batch_size):
        u = users[start:start + batch_size]
        scores = score(u)
        if seen is not None:
            rows, cols = seen.mask_coords(u)
            if cand_pos is not None:
                cols = cand_pos[cols]
                keep = cols >= 0
                rows, cols = rows[keep], cols[keep]
            scores.view(-1).index_fill_(0, (rows * n_cols + cols).to(scores.device), float("-inf"))
        s, i = torch.topk(scores, kk, dim=1)
        if candidates is not None:
            i = candidates.to(i.device)[i]
        out_s.append(s.cpu())
        out_i.append(i.cpu())
    if not out_s:
        return torch.empty(0, kk), torch.empty(0, kk, dtype=torch.long)
    return torch.cat(out_s), torch.cat(out_i)
