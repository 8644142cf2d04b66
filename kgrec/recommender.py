"""``kgrec.Recommender``: the estimator users call (scikit-learn style: hyper-parameters in
``__init__``, ``fit`` returns ``self``, learned state ends in ``_``).

    rec = Recommender().fit(train_kg)
    rec.recommend(users=["1"], k=20)            # user_id, item_id, score, rank (caller's ids)
    rec.evaluate(test_kg, k=(10, 20))
    rec.add_items(items=new_items, triples=new_triples)   # cold start, no retraining
    rec.save("model_dir"); Recommender.load("model_dir")
    rec.publish(store); rec.explain(user, item)

Scores are dot products of the GNN's final user and item representations, so ranking all items
for a user is one matrix product (``kgrec.ranking.topk``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import torch

from .config import resolve_device
from .errors import ModelError, UnknownIdError
from .inductive import NodeStates, embed_new_nodes
from .knowledge_graph import KnowledgeGraph, isin
from .ranking import SeenItems, topk
from .text_features import DEFAULT_TEXT_MODEL, TextEncoder, encode_graph
from .training import FitResult, NewNodeBatch, TrainConfig, fit as fit_model

if TYPE_CHECKING:
    from .cold_start import NewNodes

TableLike = pd.DataFrame | str | os.PathLike
_STR = pd.Series([""], dtype=str).dtype  # the dtype pandas gives strings (Arrow-backed ``str`` in pandas 3)


class Recommender:
    """Knowledge-graph GNN recommender over LM text features.

    Parameters mirror :class:`kgrec.training.TrainConfig` (``dim``, ``layers``, ``epochs``,
    ``lr``, ...); ``use_text`` / ``use_kg`` / ``use_id`` switch the three signals (for
    ablations); ``text_model`` is any Hugging Face model id or local path (default: the
    packaged all-MiniLM-L6-v2); ``device="auto"`` trains on CUDA when present.

    ``valid_fraction`` and ``refit`` choose how :meth:`fit` stops: early stopping on a
    ``valid_fraction`` per-user hold-out of the training interactions, then (``refit=True``)
    training again on all of them for the best number of epochs found; see :meth:`fit`.
    """

    def __init__(self, *, device: str = "auto", text_model: str = DEFAULT_TEXT_MODEL, progress: bool = True,
                 valid_fraction: float = 0.1, refit: bool = True, **train_options: Any):
        known = {f.name for f in fields(TrainConfig)}
        unknown = sorted(set(train_options) - known)
        if unknown:
            raise TypeError(f"Recommender got unknown option(s) {unknown}; known: {sorted(known)}")
        self.device = device
        self.text_model = text_model
        self.progress = progress
        self.valid_fraction = valid_fraction
        self.refit = refit
        self.train_options = train_options

    # ------------------------------------------------------------------ training
    def fit(self, train: KnowledgeGraph, valid: KnowledgeGraph | None = None) -> "Recommender":
        """Encode node texts, train the GNN on ``train``'s interactions and cache the final
        embeddings.

        How training stops:

        - ``valid`` given: early stopping on it (validation ``valid_metric`` every ``eval_every``
          epochs, ``patience`` evaluations without improvement), keeping the best epoch's weights.
        - otherwise, with ``valid_fraction > 0`` (and at least 50 interactions): early stopping
          on a ``valid_fraction`` per-user hold-out of ``train``; then, with ``refit`` (default),
          a second training from the start on *all* of ``train`` for that run's best number of
          epochs, which is the model kept (the baselines of :mod:`kgrec.baselines` refit the same
          way). It costs a second training; ML-100K / Last.fm test Recall@20 0.3622 -> 0.3690 /
          0.2746 -> 0.2777 (random 80/20 splits). Without ``refit``, the early-stopped model is
          kept and ranks with every interaction of ``train`` (the hold-out is folded back into
          the graph it propagates over, not trained on).
        - ``valid_fraction=0``: exactly ``epochs`` epochs on all of ``train``.

        ``early_stopping_`` keeps the early-stopped run's ``best_epoch``, its best validation
        value, ``stopped_early``, per-epoch ``history``, wall ``seconds`` and whether a ``refit``
        followed (``None`` without validation; saved with the model); ``fit_.history`` is the
        kept model's. With a ``checkpoint_dir``, the refit
        writes its ``last_good.pt`` over the early-stopped run's; ``best.pt`` stays that run's."""
        if not isinstance(train, KnowledgeGraph):
            raise TypeError("fit() takes a KnowledgeGraph; build one with kgrec.from_tables(...) or a loader")
        config = TrainConfig(**self.train_options)
        features = self._features(train)
        fit_graph, valid_graph = train, valid
        if valid_graph is None and self.valid_fraction > 0 and len(train.interactions) >= 50:
            fit_graph, valid_graph = train.split("random", test=self.valid_fraction, seed=config.seed)
        device = resolve_device(self.device)
        started = time.perf_counter()
        self.fit_ = fit_model(fit_graph, features, config, valid_kg=valid_graph, device=device, progress=self.progress)
        self.early_stopping_: dict[str, Any] | None = None
        refit = self.refit and fit_graph is not train
        if valid_graph is not None:
            history = self.fit_.history
            self.early_stopping_ = {
                "metric": config.valid_metric, "best_epoch": self.fit_.best_epoch,
                "best": max((h[config.valid_metric] for h in history if config.valid_metric in h), default=None),
                "stopped_early": self.fit_.stopped_early, "history": history,
                "seconds": time.perf_counter() - started, "refit": refit}
        if fit_graph is not train:
            if refit:
                epochs = max(1, self.fit_.best_epoch or len(self.fit_.history))
                self.fit_ = fit_model(train, features, replace(config, epochs=epochs), valid_kg=None, device=device,
                                      progress=self.progress)
            else:  # rank with every training interaction, not only the fitted part
                self.fit_.set_graph(train, features)
        self.config_ = config
        self.graph_ = train.with_interactions(train.interactions)
        self.graph_.features = features
        self.holdout_: pd.DataFrame | None = None
        width = self.fit_.model.output_dim
        self._extra = {"item": (pd.Index([], dtype=object), torch.zeros(0, width)),
                       "user": (pd.Index([], dtype=object), torch.zeros(0, width))}
        self._states = self._no_states()
        self.added_items_: list[str] = []
        self.added_users_: list[str] = []
        self._refresh()
        return self

    def _no_states(self) -> dict[str, NodeStates]:
        """Empty frozen states of added users, items and entities (see :meth:`_add`)."""
        return {nt: NodeStates.empty(self.fit_.model.num_layers, self.fit_.model.dim, self.fit_.device)
                for nt in ("user", "item", "entity")}

    def _features(self, kg: KnowledgeGraph) -> dict[str, np.ndarray]:
        if kg.features is not None and all(t in kg.features for t in ("user", "item", "entity")):
            return kg.features
        return encode_graph(kg, self._encoder())

    def _encoder(self) -> TextEncoder:
        if getattr(self, "_text_encoder", None) is None:
            self._text_encoder = TextEncoder(self.text_model, device=self.device,
                                             progress=self.progress)
        return self._text_encoder

    def _refresh(self) -> None:
        """Cache final embeddings, id indexes and the seen-item CSR after fit/load/add."""
        users, items = self.fit_.final_embeddings()
        users, items = users.detach().float().cpu(), items.detach().float().cpu()
        user_index = pd.Index(self.fit_.user_ids.astype(str), dtype=object)
        item_index = pd.Index(self.fit_.item_ids.astype(str), dtype=object)
        # nodes added after training (cold start): replace rows of updated ids, append new ones
        for nt in ("user", "item"):
            ids, emb = self._extra[nt]
            if len(ids) == 0:
                continue
            index, base = (user_index, users) if nt == "user" else (item_index, items)
            pos = index.get_indexer(ids)
            old = pos >= 0
            base = base.clone()
            base[torch.as_tensor(pos[old], dtype=torch.long)] = emb[torch.as_tensor(np.flatnonzero(old))]
            base = torch.cat([base, emb[torch.as_tensor(np.flatnonzero(~old), dtype=torch.long)]])
            index = index.append(pd.Index(ids[~old], dtype=object))
            if nt == "user":
                user_index, users = index, base
            else:
                item_index, items = index, base
        self.user_emb_, self.item_emb_ = users, items
        self.user_index_, self.item_index_ = user_index, item_index
        self._item_emb_t = items.T.contiguous()
        self._user_lookup = {u: i for i, u in enumerate(user_index.tolist())}
        self._item_id_arrow = pa.array(item_index.to_numpy(dtype=object), type=pa.string())
        self._item_names: dict[str, Any] | None = None  # built by item_names() on first use
        inter = self.graph_.interactions
        u = self.user_index_.get_indexer(inter["user_id"].astype(str))
        i = self.item_index_.get_indexer(inter["item_id"].astype(str))
        ok = (u >= 0) & (i >= 0)
        self.seen_ = SeenItems(u[ok], i[ok], len(self.user_index_))
        self._layer_cache = None
        self._in_csr = None
        self._path_finder = None

    def _check_fitted(self) -> None:
        if not hasattr(self, "fit_"):
            raise ModelError("this Recommender is not fitted yet. Fix: call fit(train) or Recommender.load(dir)")

    # ------------------------------------------------------------------ ids
    def user_ids(self) -> list[str]:
        self._check_fitted()
        return self.user_index_.tolist()

    def item_ids(self) -> list[str]:
        self._check_fitted()
        return self.item_index_.tolist()

    def _user_positions(self, users: Sequence[Any] | str | int) -> tuple[list[str], torch.Tensor]:
        if isinstance(users, (str, int, np.integer)):
            users = [users]
        ids = [str(u) for u in users]
        lookup = self._user_lookup
        pos = np.fromiter((lookup.get(u, -1) for u in ids), dtype=np.int64, count=len(ids))
        if (pos < 0).any():
            missing = [ids[j] for j in np.flatnonzero(pos < 0)[:5]]
            raise UnknownIdError(f"unknown user id(s) {missing} ({int((pos < 0).sum())} in all). "
                                 "Fix: add new users with rec.add_users(users=..., interactions=...) first")
        return ids, torch.as_tensor(pos, dtype=torch.long)

    def _item_positions(self, items: Sequence[Any], what: str = "item") -> torch.Tensor:
        ids = [str(i) for i in items]
        pos = self.item_index_.get_indexer(ids)
        if (pos < 0).any():
            missing = [ids[j] for j in np.flatnonzero(pos < 0)[:5]]
            raise UnknownIdError(f"unknown {what} id(s) {missing} ({int((pos < 0).sum())} in all). "
                                 "Fix: add new items with rec.add_items(items=...) first")
        return torch.as_tensor(pos, dtype=torch.long)

    # ------------------------------------------------------------------ ranking
    def recommend(self, users: Sequence[Any] | str | int, k: int = 20, candidates: Sequence[Any] | None = None,
                  exclude_seen: bool = True, batch_size: int = 2048) -> pd.DataFrame:
        """Top-``k`` items per user: DataFrame ``user_id, item_id, score, rank`` (rank 1 =
        best) in the caller's ids. ``candidates`` restricts the ranking to those items;
        ``exclude_seen`` drops items the user interacted with in training. Users are ranked in
        chunks of ``batch_size``, so memory is ``batch_size x items`` scores at a time."""
        self._check_fitted()
        if k <= 0:
            raise ValueError(f"k must be positive (got {k})")
        ids, pos = self._user_positions(users)
        cand = None
        if candidates is not None:
            cand = self._item_positions(list(dict.fromkeys(str(c) for c in candidates)), "candidate item")
            if len(cand) == 0:
                raise ValueError("candidates is empty; pass at least one item id")
        scores, items = topk(self.user_emb_, self.item_emb_, pos, k, seen=self.seen_ if exclude_seen else None,
                             candidates=cand, batch_size=batch_size, item_emb_t=self._item_emb_t)
        kk = scores.shape[1]
        flat_scores = scores.reshape(-1).numpy()
        item_pos = items.reshape(-1).numpy()
        user_row = np.repeat(np.arange(len(ids)), kk)
        rank = np.tile(np.arange(1, kk + 1), len(ids))
        keep = np.isfinite(flat_scores)
        if not keep.all():
            flat_scores, item_pos, user_row, rank = flat_scores[keep], item_pos[keep], user_row[keep], rank[keep]
        # ids gathered as Arrow strings: no Python object per row
        user_col = pa.array(ids, type=pa.string()).take(pa.array(user_row))
        item_col = self._item_id_arrow.take(pa.array(item_pos))
        return pd.DataFrame({"user_id": pd.array(user_col, dtype=_STR), "item_id": pd.array(item_col, dtype=_STR),
                             "score": flat_scores.astype(np.float64), "rank": rank})

    def score(self, users: Sequence[Any] | str, items: Sequence[Any] | str) -> pd.DataFrame:
        """Scores of given (user, item) pairs: ``users`` and ``items`` of equal length, or one
        user with many items. Returns ``user_id, item_id, score``."""
        self._check_fitted()
        users = [users] if isinstance(users, (str, int)) else list(users)
        items = [items] if isinstance(items, (str, int)) else list(items)
        if len(users) == 1 and len(items) > 1:
            users = users * len(items)
        if len(users) != len(items):
            raise ValueError(f"score() needs as many users as items (got {len(users)} and {len(items)}), "
                             "or one user")
        _, upos = self._user_positions(users)
        ipos = self._item_positions(items)
        s = (self.user_emb_[upos] * self.item_emb_[ipos]).sum(1)
        return pd.DataFrame({"user_id": [str(u) for u in users], "item_id": [str(i) for i in items],
                             "score": s.numpy().astype(np.float64)})

    def evaluate(self, test: KnowledgeGraph | pd.DataFrame | None, k: int | Sequence[int] = (10, 20),
                 candidates: Sequence[Any] | None = None) -> dict[str, float]:
        """Full-ranking Recall / NDCG / Precision / HitRate / MRR / Coverage @k on ``test``
        (a KnowledgeGraph from ``split`` or a ``user_id, item_id`` table), each user's training
        items excluded. ``None`` uses the hold-out remembered by ``kgrec train``."""
        from .evaluation import evaluate as eval_ranking

        self._check_fitted()
        if test is None:
            if self.holdout_ is None:
                raise ModelError("no test set given and none was held out at training. Fix: pass test")
            test = self.holdout_
        cand = None if candidates is None else self.item_index_.get_indexer([str(c) for c in candidates])
        return eval_ranking(self._scorer, self.graph_, test, self.user_index_, self.item_index_, k=k,
                            candidates=cand)

    def _scorer(self, users: torch.Tensor) -> torch.Tensor:
        return self.user_emb_[users] @ self.item_emb_.T

    def item_names(self, items: Sequence[Any]) -> list[str]:
        """Display names (title / artist) of items, falling back to the id (unknown ids and
        items without a name)."""
        self._check_fitted()
        if self._item_names is None:
            table = self.graph_.items
            self._item_names = dict(zip(table["item_id"].tolist(), table["name"].tolist()))
        names = self._item_names
        out = []
        for i in items:
            name = names.get(str(i))
            out.append(str(i) if name is None or pd.isna(name) else str(name))
        return out

    # ------------------------------------------------------------------ cold start
    def add_items(self, items: TableLike, triples: TableLike | None = None, *,
                  item_text: str | Sequence[str] | None = None,
                  attributes: dict[str, str] | Sequence[str] | None = None, item_col: str = "item_id",
                  update: bool = False) -> "Recommender":
        """Add items that have text and/or attributes but no interactions, without retraining.

        ``items``: a table with ``item_col`` and a ``title``/``name``/``text`` column (or
        ``item_text`` columns) and ``attributes`` columns (``{"genres": "genre"}``, values split
        on ``|``); ``triples``: ``head, relation, tail`` with the new items as heads (tails are
        entities: known ones link the item into the trained graph, unknown ones become new
        entities). Each new item's representation is computed by the trained GNN from its text
        and those edges (:func:`kgrec.inductive.embed_new_nodes`); entities and items added by
        earlier calls are linked like trained ones. Existing representations do not change, so
        warm rankings change only by the new items entering them. ``update=True`` replaces
        items that exist: their text, knowledge edges and interactions are dropped and the
        batch's rows and edges take their place. The whole batch is validated first: a bad
        batch raises :class:`DataError` and adds nothing."""
        from .cold_start import prepare_new_nodes

        self._check_fitted()
        batch = prepare_new_nodes(self.graph_, "item", items, triples=triples, text=item_text,
                                  attributes=attributes, id_col=item_col, update=update)
        self._add(batch)
        self.added_items_ = batch.ids
        return self

    def add_users(self, users: TableLike, interactions: TableLike | None = None, *,
                  user_text: str | Sequence[str] | None = None,
                  attributes: dict[str, str] | Sequence[str] | None = None, triples: TableLike | None = None,
                  user_col: str = "user_id", update: bool = False) -> "Recommender":
        """Add users known by attributes (``{"occupation": "occupation"}``), text and/or a few
        ``interactions`` (``user_id, item_id``), without retraining; then ``recommend`` treats
        them like any user (their given interactions count as seen). ``update=True`` replaces
        users that exist, their old interactions and knowledge edges included. Validated as a
        whole like :meth:`add_items`."""
        from .cold_start import prepare_new_nodes

        self._check_fitted()
        batch = prepare_new_nodes(self.graph_, "user", users, triples=triples, interactions=interactions,
                                  text=user_text, attributes=attributes, id_col=user_col, update=update)
        self._add(batch)
        self.added_users_ = batch.ids
        return self

    def _add(self, batch: NewNodes) -> None:
        """Embed a validated batch and commit it. Everything is computed first (a failure
        changes nothing); then the graph tables, features, embeddings and the frozen states of
        the added nodes (which later batches link to) are swapped in. A replaced node
        (``update=True``) loses its old text, knowledge edges (as head or tail) and
        interactions; the batch's take their place."""
        nt = batch.node_type
        key = f"{nt}_id"
        encode = self.fit_.model.use_text
        texts_nodes = batch.nodes["text"].fillna(batch.nodes[key]).astype(str).tolist()
        texts_ents = batch.entities["text"].fillna(batch.entities["entity_id"]).astype(str).tolist()
        enc = self._encoder() if encode else None
        x_nodes = enc.encode(texts_nodes) if enc is not None else None
        x_ents = enc.encode(texts_ents) if (enc is not None and len(texts_ents)) else None
        ent_batch = NewNodeBatch(batch.entities["entity_id"].astype(str).tolist(), x_ents) if len(batch.entities) else None
        node_batch = NewNodeBatch(batch.ids, x_nodes)
        out = embed_new_nodes(self.fit_, items=node_batch if nt == "item" else None,
                              users=node_batch if nt == "user" else None, entities=ent_batch,
                              triples=batch.triples,
                              interactions=batch.interactions if len(batch.interactions) else None,
                              added=self._states)
        emb = (out.items if nt == "item" else out.users).detach().float().cpu()
        states = {t: self._states[t].merged(out.states[t]) if t in out.states else self._states[t]
                  for t in self._states}
        # commit: everything above is computed, nothing below can fail on the input
        ids, old = self._extra[nt]
        keep = ~ids.isin(batch.ids)
        self._extra[nt] = (ids[keep].append(pd.Index(batch.ids, dtype=object)),
                           torch.cat([old[torch.as_tensor(np.flatnonzero(keep), dtype=torch.long)], emb]))
        self._states = states
        g = self.graph_
        table = g.items if nt == "item" else g.users
        trip, inter = g.triples, g.interactions
        old_rows = np.ones(len(table), dtype=bool)
        if batch.replaced:
            old_rows = ~isin(table[key], batch.replaced).to_numpy()
            table = table[old_rows]
            stale = ((trip["head_type"] == nt) & isin(trip["head"], batch.replaced)) | \
                ((trip["tail_type"] == nt) & isin(trip["tail"], batch.replaced))
            trip = trip[~stale.to_numpy()]
            inter = inter[~isin(inter[key], batch.replaced).to_numpy()]
        table = pd.concat([table, batch.nodes], ignore_index=True)
        trip = pd.concat([trip, batch.triples], ignore_index=True)
        ents = pd.concat([g.entities, batch.entities], ignore_index=True)
        if len(batch.interactions):
            inter = pd.concat([inter, batch.interactions], ignore_index=True)
        feats = dict(g.features or {})
        if encode:
            feats[nt] = np.concatenate([feats[nt][old_rows], x_nodes])
            if x_ents is not None:
                feats["entity"] = np.concatenate([feats["entity"], x_ents])
        self.graph_ = g.with_interactions(inter.reset_index(drop=True), users=table if nt == "user" else g.users,
                                          items=table if nt == "item" else g.items, entities=ents,
                                          triples=trip, features=feats or None)
        counts = {**batch.report, **out.report}  # validation and embedding counts, summed over calls
        added = {f"added_{k}": g.report.get(f"added_{k}", 0) + v for k, v in counts.items()}
        self.graph_.report = {**g.report, **added}
        self._refresh()

    # ------------------------------------------------------------------ explanations
    def _layer_sums(self) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """``(z, layers, sum of layers 0..L-1, mean of all layers)`` of the training graph."""
        if getattr(self, "_layer_cache", None) is None:
            z, layers = self.fit_._forward()
            layers = [h.detach().float().cpu() for h in layers]
            self._layer_cache = (z.detach().float().cpu(), layers, torch.stack(layers[:-1]).sum(0),
                                 torch.stack(layers).mean(0))
        return self._layer_cache

    def _incoming_edges(self, node: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(source, edge_type, edge_norm)`` of the training graph's edges into ``node``
        (homogeneous position), from a CSR by target built once per graph."""
        if getattr(self, "_in_csr", None) is None:
            g = self.fit_.graph
            target = g.edge_index[1].cpu()
            order = torch.argsort(target, stable=True)
            indptr = torch.zeros(g.num_nodes + 1, dtype=torch.long)
            indptr[1:] = torch.cumsum(torch.bincount(target, minlength=g.num_nodes), 0)
            self._in_csr = (indptr, g.edge_index[0].cpu()[order], g.edge_type.cpu()[order], g.edge_norm.cpu()[order])
        indptr, src, etype, enorm = self._in_csr
        lo, hi = int(indptr[node]), int(indptr[node + 1])
        return src[lo:hi], etype[lo:hi], enorm[lo:hi]

    def score_contributions(self, user: str, item: str) -> tuple[pd.DataFrame, float, float]:
        """Exact decomposition of ``score(user, item)`` over the item's neighbours in the
        trained graph.

        With :math:`\\bar h_i = \\frac{1}{L+1}\\sum_l h_i^{(l)}`, :math:`z_i = \\bar h_i/\\lVert\\bar h_i\\rVert`
        and :math:`h_i^{(l)} = \\sum_n w_{n\\to i} \\odot h_n^{(l-1)}` (``message_weight``) over
        interaction neighbours :math:`n`, plus for :math:`l = 1` the same sum over knowledge
        neighbours (see :mod:`kgrec.model`), the score :math:`z_u^\\top z_i` splits into a self term
        :math:`z_u^\\top h_i^{(0)} / ((L+1)\\lVert\\bar h_i\\rVert)` and one term per neighbour
        :math:`n`: :math:`z_u^\\top (w_{n\\to i} \\odot s_n) / ((L+1)\\lVert\\bar h_i\\rVert)`, with
        :math:`s_n = \\sum_{l<L} h_n^{(l)}` for an interaction neighbour and :math:`h_n^{(0)}` for a
        knowledge neighbour.
        The item's bias :math:`\\beta_i` (``item_bias``), its own part like :math:`h_i^{(0)}`, is
        in the self term. Returns ``(contributions: node_type, node_id, relation, weight;
        self_term; score)``; self term + the weights = score (up to float rounding)."""
        types, ids, et, weight, self_term, bias, score = self._contributions(user, item)
        self_term += bias
        rels = self.fit_.index.relations.to_numpy()
        rel = np.where(et < 2, "INTERACTED", rels[np.maximum(et - 2, 0) // 2] if len(rels) else "INTERACTED")
        return pd.DataFrame({"node_type": types, "node_id": ids, "relation": rel, "weight": weight}), self_term, score

    def _contributions(self, user: str, item: str
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, float, float]:
        """:meth:`score_contributions` as arrays: ``(node types, node ids, edge types, weights,
        self term, item bias, score)``."""
        _, upos = self._user_positions([user])
        ipos = self._item_positions([item])
        idx = self.fit_.index
        if int(ipos[0]) >= idx.num_items or str(item) in self._extra["item"][0]:
            raise ModelError(f"item '{item}' was added after training (cold start): its score has no trained "
                             "neighbourhood to decompose. Fix: retrain with the item in the graph to explain it")
        z, layers, lsum, lmean = self._layer_sums()
        U, I = idx.num_users, idx.num_items
        node = U + int(ipos[0])
        dim = self.fit_.model.dim
        zu = self.user_emb_[upos[0], :dim]
        bias = float(self.user_emb_[upos[0], dim:] @ self.item_emb_[ipos[0], dim:])  # 0 without item_bias
        src, etype, enorm = self._incoming_edges(node)
        w = self.fit_.model.message_weight(etype, enorm).detach().float().cpu()
        scale = len(layers) * float(lmean[node].norm())
        # knowledge neighbours send layer 0 into layer 1 only, interaction neighbours every layer
        sent = torch.where((etype >= 2).unsqueeze(1), layers[0][src], lsum[src])
        contrib = ((w * sent) @ zu) / scale
        self_term = float(layers[0][node] @ zu) / scale
        src_np = src.numpy()
        types = np.where(src_np < U, "user", np.where(src_np < U + I, "item", "entity"))
        ids = np.empty(len(src_np), dtype=object)
        for t, off, index in (("user", 0, idx.user_ids), ("item", U, idx.item_ids), ("entity", U + I, idx.entity_ids)):
            sel = types == t
            ids[sel] = index.to_numpy()[src_np[sel] - off]
        return types, ids, etype.numpy(), contrib.numpy(), self_term, bias, \
            float(self.user_emb_[upos[0]] @ self.item_emb_[ipos[0]])

    def _paths(self):
        from .explain_paths import PathFinder, names

        if getattr(self, "_path_finder", None) is None:
            self._path_finder = PathFinder(self.graph_,
                                           user_item_triples=self.fit_.config.user_item_triples_as_interactions)
            self._names = names(self.graph_)
        return self._path_finder

    def explain(self, user: Any, item: Any, top: int = 10) -> pd.DataFrame:
        """Why ``item`` scores what it does for ``user``: the paths that connect them, ranked by
        how much of the model's score flows through them.

        The score is decomposed exactly over the item's neighbours (:meth:`score_contributions`);
        each path (``shared_attribute``: an item you interacted with shares this attribute;
        ``similar_users``: users who share an item with you interacted with it; ``kg_path``: a
        3-hop knowledge-graph link to an item you interacted with; ``user_item_triple``: your own
        knowledge triple to the item, such as an artist you tagged; see
        :mod:`kgrec.explain_paths`) carries the contribution of
        the neighbour it enters the item through, split evenly among the paths through that
        neighbour. Neighbours with no path to the user are summed per type into ``other_*``
        rows, the item's own input (text + ID embedding) is the ``item_itself`` row and its learned
        bias the ``item_popularity`` row, so the ``weight`` column sums to the score. Columns:
        ``rank, kind, path, weight, share, via_type, via_id, nodes``."""
        from .explain_paths import describe

        self._check_fitted()
        user, item = str(user), str(item)
        types, ids, _, weight, self_term, bias, score = self._contributions(user, item)
        per_node: dict[tuple[str, str], float] = {}  # summed over a neighbour's edges
        for key, w in zip(zip(types.tolist(), ids.tolist()), weight.tolist()):
            per_node[key] = per_node.get(key, 0.0) + w
        paths = self._paths().find(user, item)
        counts: dict[tuple[str, str], int] = {}
        for p in paths:
            counts[(p.via_type, p.via_id)] = counts.get((p.via_type, p.via_id), 0) + 1
        rows = []
        for p in paths:
            key = (p.via_type, p.via_id)
            if key not in per_node:
                continue  # a user-side path through a node that is no neighbour in the trained graph
            rows.append({"kind": p.kind, "path": describe(p, self._names), "weight": per_node[key] / counts[key],
                         "via_type": p.via_type, "via_id": p.via_id, "nodes": p.nodes})
        rows += self._similar_user_rows(user, item, per_node, counts, top)
        rest_w: dict[str, float] = {}
        rest_n: dict[str, int] = {}
        for key, w in per_node.items():
            if key not in counts:  # a neighbour no path above went through
                rest_w[key[0]] = rest_w.get(key[0], 0.0) + w
                rest_n[key[0]] = rest_n.get(key[0], 0) + 1
        for nt in sorted(rest_w):
            rows.append({"kind": f"other_{nt}s", "path": f"{rest_n[nt]} other {nt} neighbour(s) of the item",
                         "weight": rest_w[nt], "via_type": nt, "via_id": "", "nodes": []})
        rows.append({"kind": "item_itself", "path": "the item's own text and ID embedding", "weight": self_term,
                     "via_type": "item", "via_id": item, "nodes": [("item", item)]})
        if self.fit_.model.item_bias is not None:
            rows.append({"kind": "item_popularity", "path": "the item's learned bias (its popularity across users)",
                         "weight": bias, "via_type": "item", "via_id": item, "nodes": [("item", item)]})
        rows = sorted(rows, key=lambda r: -r["weight"])[:top]  # stable: equal weights keep their order
        df = pd.DataFrame(rows, columns=["kind", "path", "weight", "via_type", "via_id", "nodes"])
        df.insert(0, "rank", np.arange(1, len(df) + 1))
        df.insert(4, "share", df["weight"] / score if score != 0 else np.nan)
        return df

    def _similar_user_rows(self, user: str, item: str, per_node: dict[tuple[str, str], float],
                           counts: dict[tuple[str, str], int], top: int) -> list[dict[str, Any]]:
        """``similar_users`` rows of :meth:`explain`: each similar user's contribution split over
        the items it shares with ``user``, summed per shared item j ("you liked j; n users who
        liked j liked it"), the ``top`` heaviest in first-seen order (no other row of this kind
        can reach :meth:`explain`'s top). Marks the users it explains in ``counts``."""
        vs: list[str] = []
        js: list[str] = []
        shares: list[float] = []
        for v, common in self._paths().co_interactions(user, item).items():
            key = ("user", v)
            if key not in per_node:
                continue
            counts[key] = len(common)
            vs += [v] * len(common)
            js += common
            shares += [per_node[key] / len(common)] * len(common)
        if not js:
            return []
        codes, shared = pd.factorize(np.asarray(js, dtype=object))
        weight = np.bincount(codes, weights=np.asarray(shares))
        n_users = np.bincount(codes)
        # the strongest user per shared item (equal shares: the larger id)
        v_codes, v_ids = pd.factorize(np.asarray(vs, dtype=object), sort=True)
        order = np.lexsort((-v_codes, -np.asarray(shares), codes))
        first = np.ones(len(order), dtype=bool)
        first[1:] = codes[order][1:] != codes[order][:-1]
        strongest = v_ids[v_codes[order][first]]
        label_item = self._names.get(("item", item), item)
        rows = []
        for c in np.sort(np.argsort(-weight, kind="stable")[:top]):
            j, v_top = shared[c], strongest[c]
            via = f"{n_users[c]} users" if n_users[c] > 1 else f"user {v_top}"
            rows.append({"kind": "similar_users", "path": f"user {user} -> {self._names.get(('item', j), j)} <- {via} "
                         f"-> {label_item}", "weight": float(weight[c]), "via_type": "user", "via_id": v_top,
                         "nodes": [("user", user), ("item", j), ("user", v_top), ("item", item)]})
        return rows

    def reason(self, user: Any, item: Any) -> str:
        """One line: the path that contributes most to the score (for listings)."""
        try:
            ex = self.explain(user, item, top=50)
        except ModelError:
            return "new item: ranked by its text and attributes"
        paths = ex[ex["kind"].isin(["user_item_triple", "shared_attribute", "similar_users", "kg_path", "attribute"])]
        if paths.empty:
            return "collaborative signal from other users"
        best = paths.iloc[0]
        nodes = best["nodes"]
        name = lambda t, i: self._names.get((t, i), i)  # noqa: E731
        if best["kind"] == "user_item_triple":
            return f"linked to you by {' and '.join(self._paths().user_item_relations[(str(user), str(item))])}"
        if best["kind"] == "shared_attribute":
            return f"shares {name('entity', nodes[2][1])} with {name('item', nodes[1][1])}, which you liked"
        if best["kind"] == "similar_users":
            return f"{best['path'].split(' <- ')[1].split(' -> ')[0]} who liked {name('item', nodes[1][1])} liked it"
        if best["kind"] == "kg_path":
            return (f"linked in the knowledge graph to {name('item', nodes[1][1])} "
                    f"via {name('entity', nodes[2][1])} and {name('entity', nodes[3][1])}")
        return f"it has {name('entity', nodes[1][1])}"

    # ------------------------------------------------------------------ publishing
    def publish(self, store, k: int = 20, model_id: str = "kgrec", explanations: int = 3,
                explain_top: int = 3, batch_size: int = 2048) -> dict[str, int]:
        """Write the graph with its LM features, every user's top-``k`` as ``RECOMMENDED`` edges
        (this model's old ones replaced), and the top ``explanations`` paths of each user's
        first ``explain_top`` recommendations as ``EXPLAINS`` edges. Returns counts."""
        self._check_fitted()
        store.write_graph(self.graph_, features=self.graph_.features)
        recs = self.recommend(self.user_ids(), k=k, batch_size=batch_size)
        n_recs = store.write_recommendations(recs, model_id)
        n_expl = 0
        if explanations > 0 and explain_top > 0:
            rows = []
            for r in recs[recs["rank"] <= explain_top].itertuples(index=False):
                try:
                    # rows without a path (other_*, item_itself, item_popularity) are dropped below
                    ex = self.explain(r.user_id, r.item_id, top=explanations + 5)
                except ModelError:
                    continue
                ex = ex[ex["nodes"].map(len) > 1].head(explanations)
                for j, e in enumerate(ex.itertuples(index=False), start=1):
                    # a path's EXPLAINS edges point at its inner nodes; a direct one (the user's own
                    # triple to the item) at the item
                    for t, node in e.nodes[1:-1] or e.nodes[-1:]:
                        rows.append({"user_id": r.user_id, "item_id": r.item_id, "rank": j, "path": e.path,
                                     "weight": e.weight, "node_type": t, "node_id": node})
            if rows:
                n_expl = store.write_explanations(pd.DataFrame(rows), model_id)
        return {"recommended": n_recs, "explains": n_expl}

    # ------------------------------------------------------------------ save / load
    def save(self, path: str | os.PathLike) -> Path:
        """Write a model directory (config, weights, id maps, graph tables, text-model name,
        kgrec version) atomically: an interrupted save leaves the previous directory intact."""
        from .model_dir import save_model_dir

        self._check_fitted()
        g = self.graph_
        tensors: dict[str, Any] = {"fit": self.fit_.state()}
        for nt in ("user", "item"):
            ids, emb = self._extra[nt]
            tensors[f"extra_{nt}_ids"] = [str(i) for i in ids]
            tensors[f"extra_{nt}_emb"] = emb
        for nt, states in self._states.items():
            tensors[f"added_{nt}_states"] = states.state()
        for nt, arr in (g.features or {}).items():
            tensors[f"features_{nt}"] = torch.as_tensor(np.asarray(arr, dtype=np.float32))
        config = {"text_model": self.text_model, "valid_fraction": self.valid_fraction, "refit": self.refit,
                  "early_stopping": self.early_stopping_,
                  "train_options": self.train_options, "train_config": self.config_.to_dict(),
                  "graph_name": g.name, "report": g.report,
                  "counts": {"users": len(self.user_index_), "items": len(self.item_index_)}}
        tables = {"users": g.users, "items": g.items, "entities": g.entities, "interactions": g.interactions,
                  "triples": g.triples}
        if self.holdout_ is not None:
            tables["holdout"] = self.holdout_.astype(str)
        return save_model_dir(path, config, tensors, tables)

    @classmethod
    def load(cls, path: str | os.PathLike, device: str = "auto", progress: bool = True) -> "Recommender":
        """Read a directory written by :meth:`save`; a missing, corrupt or mismatched one raises
        :class:`ModelError` that says so."""
        from .knowledge_graph import ENTITY_COLUMNS, INTERACTION_COLUMNS, ITEM_COLUMNS, TRIPLE_COLUMNS, \
            USER_COLUMNS, typed_frame
        from .model_dir import WEIGHTS, load_model_dir

        config, tensors, tables = load_model_dir(path)
        need = {"users", "items", "entities", "interactions", "triples"}
        if not need <= set(tables) or "fit" not in tensors:
            raise ModelError(f"{path}: incomplete model directory (tables {sorted(tables)}). Fix: train and save again")
        rec = cls(device=device, text_model=config.get("text_model", DEFAULT_TEXT_MODEL), progress=progress,
                  valid_fraction=config.get("valid_fraction", 0.1), refit=config.get("refit", False),
                  **config.get("train_options", {}))
        try:
            rec.fit_ = FitResult.from_state(tensors["fit"], device=resolve_device(device))
        except ModelError as exc:
            raise ModelError(f"{Path(path) / WEIGHTS}: {exc}") from None
        rec.config_ = TrainConfig.from_dict(config.get("train_config", {}))
        rec.early_stopping_ = config.get("early_stopping")
        features = {nt: tensors[f"features_{nt}"].numpy() for nt in ("user", "item", "entity")
                    if f"features_{nt}" in tensors} or None
        rec.graph_ = KnowledgeGraph(
            users=typed_frame(tables["users"], USER_COLUMNS, "users"),
            items=typed_frame(tables["items"], ITEM_COLUMNS, "items"),
            entities=typed_frame(tables["entities"], ENTITY_COLUMNS, "entities"),
            interactions=typed_frame(tables["interactions"], INTERACTION_COLUMNS, "interactions"),
            triples=typed_frame(tables["triples"], TRIPLE_COLUMNS, "triples"),
            name=config.get("graph_name", ""), report=config.get("report", {}), features=features)
        rec.holdout_ = tables.get("holdout")
        rec._extra = {nt: (pd.Index(tensors.get(f"extra_{nt}_ids", []), dtype=object),
                           tensors.get(f"extra_{nt}_emb", torch.zeros(0, rec.fit_.model.output_dim)))
                      for nt in ("user", "item")}
        rec._states = {nt: NodeStates.from_state(tensors[f"added_{nt}_states"], rec.fit_.device)
                       if f"added_{nt}_states" in tensors else empty for nt, empty in rec._no_states().items()}
        rec.added_items_, rec.added_users_ = [], []
        rec._refresh()
        expected = config.get("counts", {})
        if expected and (expected.get("users") != len(rec.user_index_) or expected.get("items") != len(rec.item_index_)):
            raise ModelError(f"{path}: the weights and id maps disagree ({len(rec.user_index_)} users / "
                             f"{len(rec.item_index_)} items, config says {expected}). Fix: train and save again")
        return rec
