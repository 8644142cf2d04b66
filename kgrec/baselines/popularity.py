"""Most popular: every user gets the same list, the items with the most training users."""

from __future__ import annotations

import time

import torch
from torch import Tensor

from ..knowledge_graph import KnowledgeGraph
from .base import Baseline


class Popularity(Baseline):
    """Most-popular: ``s(u, i)`` = number of training users of ``i``."""

    def fit(self, train: KnowledgeGraph) -> "Popularity":
        t0 = time.perf_counter()
        _, i = self._prepare(train)
        self.popularity_ = torch.bincount(torch.as_tensor(i), minlength=len(self.item_index_)).float()
        self._record_closed_form_fit(time.perf_counter() - t0)
        return self

    def scorer(self, user_positions: Tensor) -> Tensor:
        self._check_fitted()
        return self.popularity_.expand(len(user_positions), -1)
