"""Content only, the cold-start baseline: a user's profile is the mean LM text embedding of
their training items; items are ranked by cosine to it."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from ..knowledge_graph import KnowledgeGraph
from ..settings import resolve_device
from .base import Baseline


class TextKNN(Baseline):
    """Content-based: user profile = mean LM embedding of their training items, score = cosine.

    ``s(u, i) = cos(p_u, t_i)``, ``p_u = mean_{j in N(u)} t_j`` (``t`` L2-normalised item text
    embeddings); a user with no training items uses their own text embedding ``t_u`` as ``p_u``.
    Text features come from ``train.features`` when present, else from ``encoder`` (a
    :class:`kgrec.text_features.TextEncoder`, default model, cached)."""

    def __init__(self, encoder: Any | None = None, device: str = "auto"):
        self.encoder = encoder
        self.device = device

    def fit(self, train: KnowledgeGraph) -> "TextKNN":
        t0 = time.perf_counter()
        u, i = self._prepare(train)
        feats = train.features
        if feats is None or feats.get("item") is None or feats.get("user") is None:
            from ..text_features import TextEncoder, encode_graph

            feats = encode_graph(train, self.encoder or TextEncoder())
        device = resolve_device(self.device)
        item_rows = pd.Index(train.items["item_id"].astype(str)).get_indexer(self.item_index_)
        user_rows = pd.Index(train.users["user_id"].astype(str)).get_indexer(self.user_index_)
        items = torch.nn.functional.normalize(torch.as_tensor(np.asarray(feats["item"])[item_rows]).float(), dim=1)
        users = torch.as_tensor(np.asarray(feats["user"])[user_rows]).float()
        prof = torch.zeros(len(self.user_index_), items.shape[1])
        prof.index_add_(0, torch.as_tensor(u), items[torch.as_tensor(i)])
        has = torch.bincount(torch.as_tensor(u), minlength=len(self.user_index_)) > 0
        prof[~has] = users[~has]
        self.user_emb_ = torch.nn.functional.normalize(prof, dim=1).to(device)
        self.item_emb_ = items.to(device)
        self._record_closed_form_fit(time.perf_counter() - t0)
        return self

    def scorer(self, user_positions: Tensor) -> Tensor:
        self._check_fitted()
        return self.user_emb_[user_positions.to(self.user_emb_.device)] @ self.item_emb_.T
