"""Writing a fitted Recommender to a graph store: the graph, its recommendations, their paths."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from .explanation_rows import explanation_rows

if TYPE_CHECKING:
    from .estimator import Recommender


def publish(rec: "Recommender", store: Any, k: int = 20, model_id: str = "kgrec", explanations: int = 3,
            explain_top: int = 3, batch_size: int = 2048) -> dict[str, int]:
    """Write ``rec``'s graph with its LM features to ``store`` (:func:`kgrec.open_store`), every
    user's top-``k`` as ``RECOMMENDED`` edges (``model_id``'s old ones replaced), and the top
    ``explanations`` paths of each user's first ``explain_top`` recommendations as ``EXPLAINS``
    edges: a path's edges point at its inner nodes, a direct one (the user's own triple to the
    item) at the item. Returns the counts written: ``{"recommended": ..., "explains": ...}``."""
    recs = rec.recommend(rec.user_ids(), k=k, batch_size=batch_size)  # user_ids() checks that rec is fitted
    store.write_graph(rec.graph_, features=rec.graph_.features)
    n_recs = store.write_recommendations(recs, model_id)
    n_expl = 0
    if explanations > 0 and explain_top > 0:
        bar = _progress(int((recs["rank"] <= explain_top).sum()), bool(getattr(rec, "progress", False)))
        parts = list(explanation_rows(rec, recs, explanations=explanations, explain_top=explain_top,
                                      on_batch=None if bar is None else bar.update))
        if bar is not None:
            bar.close()
        if parts:
            n_expl = store.write_explanations(pd.concat(parts, ignore_index=True), model_id)
    return {"recommended": n_recs, "explains": n_expl}


def _progress(total: int, enabled: bool) -> Any:
    """A progress bar over the recommendations being explained (the long part of a publish)."""
    if not enabled or total == 0:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="explaining recommendations", unit="rec", leave=False)

