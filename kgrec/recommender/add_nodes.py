"""Adding items and users to a fitted Recommender without retraining (batch cold start).

:class:`AddNodesMixin` gives :class:`kgrec.Recommender` ``add_items`` and ``add_users``: a batch
is validated as a whole (:mod:`kgrec.cold_start.validation`), its nodes are placed by the
trained model (:mod:`kgrec.cold_start.placement`), then committed at once, so a bad batch
changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from ..cold_start.placement import FrozenLayers, embed_new_nodes
from ..cold_start.validation import ValidatedBatch, prepare_new_nodes
from ..knowledge_graph import KnowledgeGraph

if TYPE_CHECKING:
    from ..train import TrainedModel

TableLike = pd.DataFrame | str | os.PathLike


class AddNodesMixin:
    """``add_items`` / ``add_users`` of :class:`kgrec.Recommender` (module docstring). The
    class it is mixed into gives ``_check_fitted``, ``_encoder`` and ``_refresh``."""

    trained_: "TrainedModel"
    graph_: KnowledgeGraph
    _added: dict[str, tuple[pd.Index, torch.Tensor]]   # added users' and items' scoring vectors
    _added_layers: dict[str, FrozenLayers]             # frozen layers of added nodes, which later batches hear

    def add_items(self, items: TableLike, triples: TableLike | None = None, *,
                  item_text: str | Sequence[str] | None = None,
                  attributes: dict[str, str] | Sequence[str] | None = None, item_col: str = "item_id",
                  update: bool = False, strict: bool = False) -> "AddNodesMixin":
        """Add items that have text and/or attributes but no interactions, without retraining.

        ``items``: a table with ``item_col`` and a ``title``/``name``/``text`` column (or
        ``item_text`` columns) and ``attributes`` columns (``{"genres": "genre"}``, values split
        on ``|``); ``triples``: ``head, relation, tail`` with the new items as heads (tails are
        entities: known ones link the item into the trained graph, unknown ones become new
        entities). Each new item's representation is computed by the trained GNN from its text
        and those edges (:func:`kgrec.cold_start.placement.embed_new_nodes`); entities and items added by
        earlier calls are linked like trained ones. Existing representations do not change, so
        warm rankings change only by the new items entering them. ``update=True`` replaces
        items that exist: their text, knowledge edges and interactions are dropped and the
        batch's rows and edges take their place. The whole batch is validated first: a bad
        batch raises :class:`DataError` and adds nothing.

        Without ``item_text`` / ``attributes``, the columns that built the trained items (given
        to :func:`kgrec.from_tables`) are used when the table has them. Triple tails that name
        no known entity become new entities with a :class:`kgrec.errors.UnknownEntityWarning`
        that lists the closest known ones; ``strict=True`` refuses the batch instead."""
        self._check_fitted()
        batch = prepare_new_nodes(self.graph_, "item", items, triples=triples, text=item_text,
                                  attributes=attributes, id_col=item_col, update=update, strict=strict)
        self._add(batch)
        self.added_items_ = batch.ids
        return self

    def add_users(self, users: TableLike, interactions: TableLike | None = None, *,
                  user_text: str | Sequence[str] | None = None,
                  attributes: dict[str, str] | Sequence[str] | None = None, triples: TableLike | None = None,
                  user_col: str = "user_id", update: bool = False, strict: bool = False) -> "AddNodesMixin":
        """Add users known by attributes (``{"occupation": "occupation"}``), text and/or a few
        ``interactions`` (``user_id, item_id``), without retraining; then ``recommend`` treats
        them like any user (their given interactions count as seen). ``update=True`` replaces
        users that exist, their old interactions and knowledge edges included. Validated as a
        whole like :meth:`add_items`, with the same text recipe, warning and ``strict``."""
        self._check_fitted()
        batch = prepare_new_nodes(self.graph_, "user", users, triples=triples, interactions=interactions,
                                  text=user_text, attributes=attributes, id_col=user_col, update=update,
                                  strict=strict)
        self._add(batch)
        self.added_users_ = batch.ids
        return self

    def _add(self, batch: ValidatedBatch) -> None:
        """Place a validated batch and commit it. Everything is computed first (a failure
        changes nothing); then the graph tables, features, vectors and the frozen layers of the
        added nodes (which later batches link to) are swapped in."""
        nt = batch.node_type
        nodes, entities = batch.inputs(self._encoder() if self.trained_.model.use_text else None)
        out = embed_new_nodes(self.trained_, items=nodes if nt == "item" else None,
                              users=nodes if nt == "user" else None, entities=entities,
                              triples=batch.triples,
                              interactions=batch.interactions if len(batch.interactions) else None,
                              added=self._added_layers)
        emb = (out.items if nt == "item" else out.users).detach().float().cpu()
        layers = {t: self._added_layers[t].merged(out.states[t]) if t in out.states else self._added_layers[t]
                  for t in self._added_layers}
        graph = batch.merged_into(self.graph_, nodes, entities)
        counts = {**batch.report, **out.report}  # validation and placement counts, summed over calls
        graph.report = {**self.graph_.report,
                        **{f"added_{k}": self.graph_.report.get(f"added_{k}", 0) + v for k, v in counts.items()}}
        # commit: everything above is computed, nothing below can fail on the input
        ids, old = self._added[nt]
        keep = ~ids.isin(batch.ids)
        self._added = {**self._added, nt: (ids[keep].append(pd.Index(batch.ids, dtype=object)),
                                           torch.cat([old[torch.as_tensor(np.flatnonzero(keep), dtype=torch.long)],
                                                      emb]))}
        self._added_layers = layers
        self.graph_ = graph
        self._refresh()

    def added_state(self) -> dict[str, Any]:
        """The nodes added since training as plain tensors and lists (what a model directory
        keeps): their scoring vectors and their frozen layers; :meth:`_restore_added` reads it."""
        out: dict[str, Any] = {}
        for nt, (ids, emb) in self._added.items():
            out[f"extra_{nt}_ids"] = [str(i) for i in ids]
            out[f"extra_{nt}_emb"] = emb
        for nt, layers in self._added_layers.items():
            out[f"added_{nt}_states"] = layers.state()
        return out

    def _restore_added(self, state: dict[str, Any]) -> None:
        """Take back the added nodes of :meth:`added_state` (missing parts: none added)."""
        width, device = self.trained_.model.output_dim, self.trained_.device
        self._added = {nt: (pd.Index(state.get(f"extra_{nt}_ids", []), dtype=object),
                            state.get(f"extra_{nt}_emb", torch.zeros(0, width))) for nt in ("user", "item")}
        self._added_layers = {nt: FrozenLayers.from_state(state[f"added_{nt}_states"], device)
                              if f"added_{nt}_states" in state else empty
                              for nt, empty in self._added_layers.items()}
        self._refresh()
