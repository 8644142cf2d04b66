"""Baselines in the same harness as kgrec: fit on a training KnowledgeGraph, rank and evaluate
through the same :class:`kgrec.recommender.RecommenderBase` (``recommend``, ``evaluate``,
``user_ids()``, ``item_ids()``, ``get_params``), on the same split.

``Popularity`` (``popularity.py``)
    ``s(u, i) = |{v : (v, i) in train}|``, the same list for everyone (seen items excluded).
``MFBPR``, ``LightGCNBaseline`` (``bpr.py``)
    Matrix factorisation and PyG's LightGCN, trained with BPR and tuned on a validation split
    carved from train, as kgrec is.
``EASE`` (``ease.py``)
    Steck's closed-form linear item-item model, strong on dense data; its L2 tuned the same way.
``TextKNN`` (``text_knn.py``)
    Content only, the cold-start baseline: cosine of an item's LM text embedding to the mean of
    the user's training items'.
"""

from collections.abc import Callable

from .base import Baseline
from .bpr import BPRBaseline, LightGCNBaseline, MFBPR, normalized_adjacency
from .ease import EASE
from .popularity import Popularity
from .text_knn import TextKNN

BASELINES: dict[str, Callable[..., Baseline]] = {
    "popularity": Popularity, "mf-bpr": MFBPR, "lightgcn": LightGCNBaseline, "ease": EASE,
    "text-knn": TextKNN,
}

__all__ = ["BASELINES", "BPRBaseline", "Baseline", "EASE", "LightGCNBaseline", "MFBPR", "Popularity", "TextKNN",
           "normalized_adjacency"]
