"""The pinned run: one small seeded model whose outputs must not move when the code is only
restructured (``tests/test_pinned_behaviour.py`` compares them with
``tests/data/pinned_behaviour.json``).

It goes through every stage a user reaches: text features, early stopping on a carved
hold-out and the refit, the cold-start views and calibration, ranking, evaluation, batch cold
start of items and users, and the explanation of a score. Real data: ML-100K restricted to its
first 300 users.

Regenerate the file only for a change that is meant to move the numbers, and say so in the
commit: ``python tests/support/pinned_run.py --write``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

TESTS_DIR = Path(__file__).resolve().parents[1]  # tests/support/pinned_run.py
PINNED_FILE = TESTS_DIR / "data" / "pinned_behaviour.json"
USERS = [str(u) for u in range(1, 31)]
K = 10


def pinned_outputs(ml100k_dir: Path) -> dict[str, Any]:
    """Train the pinned model and return its outputs as plain lists and numbers."""
    import kgrec
    from support.model_fixtures import small_movielens

    kg = small_movielens(ml100k_dir)
    train, test = kg.split("random", test=0.2, seed=0)
    held = sorted(train.items["item_id"].astype(str))[:40:4]  # ten catalogue items, re-added as new ones
    rec = kgrec.Recommender(epochs=4, dim=32, layers=2, progress=False, valid_fraction=0.1, patience=2).fit(train)
    out: dict[str, Any] = {"warm": _top(rec.recommend(USERS, k=K))}
    out["evaluate"] = {k: v for k, v in rec.evaluate(test, k=(10, 20)).items() if "@" in k}
    expl = rec.explain("1", out["warm"]["items"][0][0], top=8)
    out["explain"] = {"kind": expl["kind"].tolist(), "weight": expl["weight"].tolist()}

    new_items = pd.DataFrame({"item_id": ["new-" + i for i in held],
                              "title": train.items.set_index("item_id").loc[held, "name"].tolist()})
    rec.add_items(new_items, triples=_copied_triples(train, "item", held))
    out["cold_items"] = _top(rec.recommend(USERS, k=K, candidates=new_items["item_id"].tolist()))
    new_users = pd.DataFrame({"user_id": ["new-1", "new-2"]})
    clicks = pd.DataFrame({"user_id": ["new-1", "new-1", "new-2"], "item_id": ["50", "181", "100"]})
    rec.add_users(new_users, interactions=clicks, triples=_copied_triples(train, "user", ["1", "2"]))
    out["cold_users"] = _top(rec.recommend(["new-1", "new-2"], k=K))
    return out


def _copied_triples(kg: Any, node_type: str, ids: list[str]) -> pd.DataFrame:
    """The knowledge triples of ``ids`` (as heads), with each head renamed ``new-<id>``."""
    t = kg.triples
    t = t[(t["head_type"] == node_type) & t["head"].isin(ids)]
    return t.assign(head="new-" + t["head"].astype(str))[["head_type", "head", "relation", "tail_type", "tail"]]


def _top(df: pd.DataFrame) -> dict[str, list]:
    groups = [g for _, g in df.groupby("user_id", sort=False)]
    return {"users": [str(g["user_id"].iloc[0]) for g in groups],
            "items": [g["item_id"].astype(str).tolist() for g in groups],
            "scores": [g["score"].astype(float).tolist() for g in groups]}


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python tests/support/pinned_run.py --write   (rewrites " + str(PINNED_FILE) + ")")
    sys.path.insert(0, str(TESTS_DIR))  # support.* as the tests import it (pytest puts tests/ on the path)
    from kgrec.settings import data_dir

    PINNED_FILE.parent.mkdir(parents=True, exist_ok=True)
    PINNED_FILE.write_text(json.dumps(pinned_outputs(data_dir() / "ml-100k")) + "\n")
    print(f"wrote {PINNED_FILE}")
