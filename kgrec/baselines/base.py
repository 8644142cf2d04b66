"""What every baseline shares on top of :class:`kgrec.recommender.RecommenderBase`: the id
spaces and the training pairs of a KnowledgeGraph."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..graph.heterodata import canonical_ids
from ..knowledge_graph import KnowledgeGraph
from ..recommender.base import RecommenderBase


def training_pairs(kg: KnowledgeGraph, users: pd.Index, items: pd.Index,
                   user_item_triples: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Distinct (user, item) positions of ``kg``'s interactions, joined, with
    ``user_item_triples``, by its user-item knowledge triples (either way round); sorted by
    user, then item."""
    inter = kg.interactions[["user_id", "item_id"]]
    if user_item_triples:
        inter = pd.concat([inter, kg.user_item_triples()[["user_id", "item_id"]]], ignore_index=True)
    u = users.get_indexer(inter["user_id"].astype(str))
    i = items.get_indexer(inter["item_id"].astype(str))
    ok = (u >= 0) & (i >= 0)
    pairs = np.unique(u[ok].astype(np.int64) * len(items) + i[ok])
    return pairs // len(items), pairs % len(items)


class Baseline(RecommenderBase):
    """A baseline: ``fit(train_kg) -> self`` and a ``scorer``; ranking, evaluation, ids and
    errors come from :class:`kgrec.recommender.RecommenderBase`. Users and items are in the
    canonical order of :func:`kgrec.graph.heterodata.canonical_ids`."""

    user_item_triples: bool = False

    @staticmethod
    def _check_train(train: object) -> None:
        if not isinstance(train, KnowledgeGraph):
            raise TypeError(f"fit() takes a KnowledgeGraph (got {type(train).__name__}); build one with "
                            "kgrec.from_tables(...) or a loader")

    def _record_closed_form_fit(self, seconds: float) -> None:
        """The timing attributes of a model fitted without epochs: ``train_seconds_``, ``epochs_``
        (0) and ``seconds_per_epoch_`` (NaN)."""
        self.train_seconds_ = seconds
        self.epochs_ = 0
        self.seconds_per_epoch_ = float("nan")

    def _prepare(self, train: KnowledgeGraph) -> tuple[np.ndarray, np.ndarray]:
        """Take ``train``'s id spaces and return its training pairs (positions)."""
        self._check_train(train)
        self._set_index(canonical_ids(train, "user"), canonical_ids(train, "item"), train)
        u, i = training_pairs(train, self.user_index_, self.item_index_, self.user_item_triples)
        if len(u) == 0:
            raise ValueError("the training graph has no interactions between its users and items")
        return u, i
