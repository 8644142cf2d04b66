"""What a training step sees: its batch of training pairs and its negative items.

- :func:`user_batches` cuts an epoch's training pairs into steps, each user's pairs in runs;
- :func:`sample_negatives` draws the items a step's softmax compares each positive against,
  shared by the step's users, with each user's own training positives masked out;
- :class:`PositiveLookup` answers "is this item a training positive of this user?" in bulk.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..graph.csr import gather_rows
from ..graph.tensors import GraphTensors


class PositiveLookup:
    """Which (user, item) pairs are training positives: each user's items as CSR (``indptr``,
    ``items``; for :meth:`mask` and :meth:`negative_weights`)."""

    def __init__(self, graph: GraphTensors) -> None:
        self.num_items = graph.num_items
        self.indptr, self.items = graph.user_positives_csr()

    def positions(self, users: Tensor, candidates: Tensor) -> tuple[Tensor, Tensor]:
        """``(rows, cols)``: the entries ``[b, c]`` where ``candidates[c]`` (distinct items) is a
        training positive of ``users[b]``. Built from the users' positives, in time linear in
        their number (a column gather of a dense users x items table would cost ``U x C``
        whatever the batch)."""
        device = candidates.device
        slot = torch.full((self.num_items,), -1, dtype=torch.long, device=device)
        slot[candidates] = torch.arange(len(candidates), device=device)
        row, entry = gather_rows(self.indptr, users)
        col = slot[self.items[entry]]
        hit = col >= 0
        return row[hit], col[hit]

    def mask(self, users: Tensor, candidates: Tensor) -> Tensor:
        """``[B, C]`` bool: True where ``candidates[c]`` is a training positive of ``users[b]``."""
        out = torch.zeros(len(users), len(candidates), dtype=torch.bool, device=candidates.device)
        out[self.positions(users, candidates)] = True
        return out

    def negative_weights(self, users: Tensor, candidates: Tensor) -> Tensor:
        """``[B, C]`` float: 0 where ``candidates[c]`` is a training positive of ``users[b]``, 1
        elsewhere (the ``keep`` argument of :func:`kgrec.train.sampled_softmax.masked_logsumexp`)."""
        out = torch.ones(len(users), len(candidates), device=candidates.device)
        out[self.positions(users, candidates)] = 0.0
        return out


def user_batches(owner: Tensor, indptr: Tensor, batch_size: int, rows_per_user: int,
                 generator: torch.Generator) -> list[Tensor]:
    """One epoch's batches of training rows (``owner`` ``[M]``: each row's user, rows sorted by
    user, user ``u`` holding rows ``indptr[u]:indptr[u + 1]``): each user's rows in a random order
    are cut into runs of ``rows_per_user``, the runs of all users shuffled and laid end to end, and
    that sequence split every ``batch_size`` rows. Every row is in exactly one batch; ``1`` gives
    plain random rows.

    The sampled softmax computes a normaliser per distinct user of a step (``users x negatives``
    scores). Random rows bring nearly every user into every step; runs of 16 bring about
    ``batch_size / 16``. The loss is the same sum over rows, every row once an epoch."""
    M = len(owner)
    if M == 0:
        return []
    device = owner.device
    perm = torch.randperm(M, generator=generator, device=generator.device).to(device)
    rows = perm[torch.sort(owner[perm], stable=True).indices]        # grouped by user, random within
    user = owner[rows]
    position = torch.arange(M, device=device) - indptr[user]          # within the user's rows
    runs = (indptr[1:] - indptr[:-1] + rows_per_user - 1) // rows_per_user
    first_run = torch.cumsum(runs, 0) - runs
    run = first_run[user] + position // rows_per_user
    num_runs = int(runs.sum())
    slot = torch.empty(num_runs, dtype=torch.long, device=device)     # each run's place in the epoch
    slot[torch.randperm(num_runs, generator=generator, device=generator.device).to(device)] = \
        torch.arange(num_runs, device=device)
    rows = rows[torch.sort(slot[run], stable=True).indices]
    return list(rows.split(batch_size))


def sample_negatives(lookup: PositiveLookup, users: Tensor, num: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Shared negatives for a step: ``(candidates [C], keep [B, C])``. ``num`` distinct items
    drawn uniformly (all items when there are fewer); ``keep`` is 0 where the candidate is one
    of the user's training positives, 1 elsewhere: the zeros are masked out of the loss, so
    positives are never used as negatives."""
    n_items = lookup.num_items
    if num >= n_items:
        cand = torch.arange(n_items)
    else:
        cand = torch.randperm(n_items, generator=generator, device=generator.device)[:num]
    cand = cand.to(users.device)
    return cand, lookup.negative_weights(users, cand)
