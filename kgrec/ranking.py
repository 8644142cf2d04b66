"""Top-k ranking over final embeddings: score = user · item, seen items masked, in user chunks.

Memory is bounded by ``batch_size x num_items`` scores at a time, whatever the number of users.
The work beyond the bare ``torch.topk(U @ I.T, k)`` is kept to one gather of the chunk's seen
items (a slice when the chunk is a run of consecutive users, as when ranking everyone) and one
``index_fill_`` of their flat score positions.
"""

from __future__ import annotations

import numpy as np
import torch


class SeenItems:
    """Each user's training items as CSR (``indptr``, ``indices`` over item positions), plus
    ``owner``, the user of every stored entry (so a run of consecutive users is one slice)."""

    def __init__(self, user_pos: np.ndarray, item_pos: np.ndarray, num_users: int):
        order = np.lexsort((item_pos, user_pos))
        self.indices = torch.as_tensor(item_pos[order], dtype=torch.long)
        self.owner = torch.as_tensor(user_pos[order], dtype=torch.long)
        counts = np.bincount(user_pos, minlength=num_users)
        self.indptr = torch.as_tensor(np.concatenate([[0], np.cumsum(counts)]), dtype=torch.long)

    @property
    def num_users(self) -> int:
        return len(self.indptr) - 1

    def grow(self, num_users: int) -> None:
        """Make room for new users (with no seen items)."""
        extra = num_users - self.num_users
        if extra > 0:
            self.indptr = torch.cat([self.indptr, self.indptr[-1].repeat(extra)])

    def mask_coords(self, users: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(row in ``users``, item position) of every seen item of the given users."""
        if len(users) and int(users[-1]) - int(users[0]) == len(users) - 1 \
                and bool((users[1:] - users[:-1] == 1).all()):
            first = int(users[0])
            lo, hi = int(self.indptr[first]), int(self.indptr[first + len(users)])
            return self.owner[lo:hi] - first, self.indices[lo:hi]
        start, end = self.indptr[users], self.indptr[users + 1]
        lengths = end - start
        rows = torch.repeat_interleave(torch.arange(len(users)), lengths)
        # entry j of row r sits at start[r] + (j - first entry of row r)
        shift = torch.repeat_interleave(start - (torch.cumsum(lengths, 0) - lengths), lengths)
        return rows, self.indices[torch.arange(len(rows)) + shift]


def topk(user_emb: torch.Tensor, item_emb: torch.Tensor, users: torch.Tensor, k: int,
         seen: SeenItems | None = None, candidates: torch.Tensor | None = None,
         batch_size: int = 2048, item_emb_t: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` items for each of ``users`` (positions). Returns ``(scores, item_positions)``,
    both ``[len(users), k']`` with ``k' = min(k, candidate count)``; excluded entries that still
    had to fill a row come back with score ``-inf`` and are for the caller to drop.

    ``candidates`` restricts the ranking to those item positions; ``seen`` masks each user's
    training items. ``item_emb_t`` (``item_emb.T`` made contiguous, cached by the caller) makes
    the product a plain row-major GEMM, which is far faster for small user batches."""
    pool = item_emb if candidates is None else item_emb[candidates]
    if candidates is None and item_emb_t is not None:
        pool_t = item_emb_t
    else:
        pool_t = pool.T.contiguous()
    n_cols = pool.shape[0]
    kk = min(k, n_cols)
    out_s, out_i = [], []
    cand_pos = None
    if candidates is not None and seen is not None:
        # map item position -> column in the candidate pool (-1 when not a candidate)
        cand_pos = torch.full((item_emb.shape[0],), -1, dtype=torch.long)
        cand_pos[candidates] = torch.arange(len(candidates))
    for start in range(0, len(users), batch_size):
        u = users[start:start + batch_size]
        scores = user_emb[u] @ pool_t
        if seen is not None:
            rows, cols = seen.mask_coords(u)
            if cand_pos is not None:
                cols = cand_pos[cols]
                keep = cols >= 0
                rows, cols = rows[keep], cols[keep]
            scores.view(-1).index_fill_(0, rows * n_cols + cols, float("-inf"))
        s, i = torch.topk(scores, kk, dim=1)
        if candidates is not None:
            i = candidates[i]
        out_s.append(s)
        out_i.append(i)
    if not out_s:
        return torch.empty(0, kk), torch.empty(0, kk, dtype=torch.long)
    return torch.cat(out_s), torch.cat(out_i)
