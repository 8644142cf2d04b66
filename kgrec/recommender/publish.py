"""Writing a fitted Recommender to a graph store: the graph, its recommendations, their paths."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from ..privacy import KeySource, private_publication, read_key
from .explanation_rows import COLUMNS, explanation_rows

if TYPE_CHECKING:
    from .estimator import Recommender


def publish(rec: "Recommender", store: Any, k: int = 20, model_id: str = "kgrec", explanations: int = 3,
            explain_top: int = 3, batch_size: int = 2048, pseudonymize: KeySource | None = None,
            keep_user_text: bool = False, keep_demographics: bool = False,
            keep_timestamps: bool = False) -> dict[str, int]:
    """Write ``rec``'s graph with its LM features to ``store`` (:func:`kgrec.open_store`), every
    user's top-``k`` as ``RECOMMENDED`` edges (``model_id``'s old ones replaced), and the top
    ``explanations`` paths of each user's first ``explain_top`` recommendations as ``EXPLAINS``
    edges (``model_id``'s old ones replaced; none with ``explanations=0``): a path's edges point
    at its inner nodes, a direct one (the user's own triple to the item) at the item. Everything
    is computed first, then written as one publication (:meth:`GraphStore.publish_model`).
    Returns the counts written: ``{"recommended": ..., "explains": ..., "texts_cut": ...}`` (names,
    texts and paths longer than the store keeps, :data:`kgrec.store.tables.MAX_TEXT_CHARS`...).

    ``pseudonymize`` (a key file, or the key's bytes; :mod:`kgrec.privacy`) writes the private
    form instead (:func:`kgrec.privacy.private_publication`): user ids as keyed pseudonyms, no
    user text (``keep_user_text``), demographics (``keep_demographics``) or interaction
    timestamps (``keep_timestamps``), and similar-users paths as counts."""
    key = read_key(pseudonymize) if pseudonymize is not None else None  # a bad key writes nothing
    recs = rec.recommend(rec.user_ids(), k=k, batch_size=batch_size)  # user_ids() checks that rec is fitted
    parts: list[pd.DataFrame] = []
    if explanations > 0 and explain_top > 0:
        bar = _progress(int((recs["rank"] <= explain_top).sum()), bool(getattr(rec, "progress", False)))
        parts = list(explanation_rows(rec, recs, explanations=explanations, explain_top=explain_top,
                                      on_batch=None if bar is None else bar.update))
        if bar is not None:
            bar.close()
    paths = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=COLUMNS)
    graph = rec.graph_
    if key is not None:
        graph, recs, paths = private_publication(graph, recs, paths, key, keep_user_text=keep_user_text,
                                                 keep_demographics=keep_demographics, keep_timestamps=keep_timestamps)
    written = store.publish_model(graph, recs, paths if len(paths) else None, model_id, features=graph.features)
    return {name: written[name] for name in ("recommended", "explains", "texts_cut")}


def _progress(total: int, enabled: bool) -> Any:
    """A progress bar over the recommendations being explained (the long part of a publish)."""
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="explaining recommendations", unit="rec", leave=False)

