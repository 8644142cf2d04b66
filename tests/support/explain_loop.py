"""The reference for batched explanations: publish's former loop, one ``rec.explain`` per
recommendation, kept here for tests/test_explanation_rows.py and benchmarks/publish.py."""

from __future__ import annotations

import pandas as pd

import kgrec
from kgrec.errors import ModelError
from kgrec.recommender.explanation_rows import COLUMNS


def loop_rows(rec: kgrec.Recommender, recs: pd.DataFrame, explanations: int = 3, explain_top: int = 3) -> pd.DataFrame:
    """The EXPLAINS rows of ``recs`` as publish built them before it batched them."""
    rows = []
    for r in recs[recs["rank"] <= explain_top].itertuples(index=False):
        try:
            ex = rec.explain(r.user_id, r.item_id, top=explanations + 5)
        except ModelError:
            continue
        ex = ex[ex["nodes"].map(len) > 1].head(explanations)
        for j, e in enumerate(ex.itertuples(index=False), start=1):
            for t, node in e.nodes[1:-1] or e.nodes[-1:]:
                rows.append({"user_id": r.user_id, "item_id": r.item_id, "rank": j, "path": e.path,
                             "weight": e.weight, "node_type": t, "node_id": node})
    return pd.DataFrame(rows, columns=COLUMNS)
