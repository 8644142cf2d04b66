"""The recommenders users call: :class:`Recommender` and the :class:`RecommenderBase` it shares
with every baseline (ids, ranking, evaluation, parameters, errors).

Where to look: ``estimator.py`` the Recommender's settings and ``fit``; ``base.py`` ranking and
evaluation; ``add_nodes.py`` adding items and users after training; ``explanations.py`` and
``explain_paths.py`` why an item is recommended; ``publish.py`` writing to a graph store;
``persistence.py`` and ``model_dir.py`` saving and loading.
"""

from .base import RecommenderBase
from .estimator import Recommender

__all__ = ["Recommender", "RecommenderBase"]
