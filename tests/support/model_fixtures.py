"""A small real model shared by the Recommender, CLI and notebook-adjacent tests: ML-100K
restricted to its first 300 users (real data), trained for two epochs."""

from __future__ import annotations

from pathlib import Path

import kgrec
from kgrec.knowledge_graph import KnowledgeGraph

SMALL = {"epochs": 2, "dim": 32, "layers": 2, "progress": False, "valid_fraction": 0.0}


def small_movielens(ml100k_dir: Path, users: int = 300) -> KnowledgeGraph:
    kg = kgrec.loaders.movielens(ml100k_dir)
    keep = kg.interactions["user_id"].astype(int) <= users
    inter = kg.interactions[keep.to_numpy()]
    kept_users = set(inter["user_id"])
    t = kg.triples
    trip = t[(t["head_type"] != "user") | t["head"].isin(kept_users)]
    return kg.with_interactions(inter, users=kg.users[kg.users["user_id"].isin(kept_users)].reset_index(drop=True),
                                triples=trip.reset_index(drop=True))


def small_movielens_with_text(ml100k_dir: Path) -> KnowledgeGraph:
    """:func:`small_movielens` with its nodes' LM text features (the packaged encoder, on CPU)."""
    from kgrec.text_features import TextEncoder, encode_graph

    kg = small_movielens(ml100k_dir)
    kg.features = encode_graph(kg, TextEncoder(progress=False, device="cpu"))
    return kg


def train_small(kg: KnowledgeGraph, **options) -> "kgrec.Recommender":
    opts = {**SMALL, **options}
    progress = opts.pop("progress")
    valid_fraction = opts.pop("valid_fraction")
    return kgrec.Recommender(progress=progress, valid_fraction=valid_fraction, **opts).fit(kg)
