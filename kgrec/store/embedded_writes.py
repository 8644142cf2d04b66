"""The embedded store's write path: a new store file built beside the store and swapped in.

:class:`EmbeddedWrites` gives :class:`kgrec.store.embedded.EmbeddedStore` its ``write_graph``,
``publish_model``, ``write_recommendations`` and ``write_explanations``: each builds a complete
database file beside the store (a new one, or a copy of the store for a model's results alone)
and renames it over the store, so a kill at any moment leaves the old contents or the new. The guarantees
are listed in :mod:`kgrec.store.embedded`; the store object supplies the connection, the lock and
the low-level helpers (``_exec``, ``_copy``, ``_summarize``...).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import StoreError
from ..graph_schema import ladybug_ddl
from ..knowledge_graph import KnowledgeGraph
from ..privacy import paths_naming, without_users
from .base import explains_targets
from .ladybug_files import fsync, glob_escape, ladybug_module, remove_files, sidecars
from .result_tables import (check_publication_ids, check_result_ids, explanation_parts, explanation_table, paths_cut,
                            publication_tables, recommendation_table)
from .tables import GraphTables, graph_tables


class EmbeddedWrites:
    """The write methods of :class:`kgrec.store.embedded.EmbeddedStore` (a mixin: it uses the
    store's connection, lock and low-level helpers)."""

    # ---------------------------------------------------------------- writing
    def write_graph(self, kg: KnowledgeGraph, features: Mapping[str, Any] | None = None) -> dict[str, int]:
        self._check_writable()
        tables = graph_tables(kg, features)
        with self._lock:
            self._check_open()
            self._rebuild(tables)
        return {"nodes": tables.num_nodes, "edges": tables.num_edges, "texts_cut": tables.texts_cut}

    def publish_model(self, kg: KnowledgeGraph, recommendations: pd.DataFrame, explanations: pd.DataFrame | None,
                      model_id: str, features: Mapping[str, Any] | None = None) -> dict[str, int]:
        self._check_writable()
        tables = graph_tables(kg, features)
        recs, expl, parts = publication_tables(recommendations, explanations, model_id)
        ids = {label: set(t.column("id").to_pylist()) for label, t in tables.nodes.items()}
        check_publication_ids(recs, expl, parts, ids.__getitem__, self.uri)
        with self._lock:
            self._check_open()
            self._rebuild(tables, model_id, recs, dict(parts))
        return {"nodes": tables.num_nodes, "edges": tables.num_edges, "recommended": recs.num_rows,
                "explains": expl.num_rows if expl is not None else 0,
                "texts_cut": tables.texts_cut + paths_cut(explanations)}

    def _erase_users(self, users: list[str]) -> None:
        # the whole store is rebuilt in a new file (write_graph's path): the forgotten users' bytes
        # are not left in free pages of the old file, and a crash leaves the old store or the new one
        self._rebuild(graph_tables(without_users(self.read_graph(), users)), forgotten=users)

    def _rebuild(self, tables: GraphTables, model_id: str | None = None, recs: pa.Table | None = None,
                 expl: dict[str, pa.Table] | None = None, forgotten: list[str] | None = None) -> None:
        """Build a new store file holding ``tables``, the stored results of every model but
        ``model_id`` between nodes that remain (without explanations whose path names a
        ``forgotten`` user), and ``recs`` / ``expl`` as ``model_id``'s results; swap it in (the
        old file stays whole until the rename)."""
        kept_recs, kept_expl = self._published()
        ids = {label: t.column("id").combine_chunks() for label, t in tables.nodes.items()}
        kept_recs = _keep(kept_recs, ids["User"], ids["Item"], model_id=model_id)
        kept_expl = {label: _keep(t, ids["User"], ids[label], item_ids=ids["Item"], model_id=model_id)
                     for label, t in kept_expl.items()}
        if forgotten:
            kept_expl = {label: t.filter(pa.array(~paths_naming(t.column("path").to_pylist(), forgotten)))
                         for label, t in kept_expl.items()}
        if recs is not None:
            kept_recs = pa.concat_tables([kept_recs, recs.cast(kept_recs.schema)])
        for label, part in (expl or {}).items():
            kept_expl[label] = pa.concat_tables([kept_expl[label], part.cast(kept_expl[label].schema)])
        what = "writing the graph" if model_id is None else f"publishing model '{model_id}'"
        self._build_and_swap(lambda: self._fill(tables, kept_recs, kept_expl), what)

    def _build_and_swap(self, fill: Callable[[], None], what: str, copy_of_store: bool = False) -> None:
        """Write a new store file beside the store (``fill`` runs on it; a copy of the store when
        ``copy_of_store``), close and sync it, rename it over the store and reopen."""
        build = self._build_path()
        remove_files(build)
        try:
            if copy_of_store:
                self._exec("CHECKPOINT")  # the file alone then holds every committed write
                shutil.copyfile(self.path, build)
            self._build(build, fill)
        except BaseException as exc:
            remove_files(build)
            if isinstance(exc, RuntimeError):
                raise StoreError(f"{self.uri}: {what} failed, nothing was changed: {exc}") from None
            raise
        self._swap_in(build)

    def _published(self) -> tuple[pa.Table, dict[str, pa.Table]]:
        """The stored RECOMMENDED and EXPLAINS edges (per target label), to carry into a new graph."""
        with self._transaction(read_only=True):
            recs = self._fetch("MATCH (u:User)-[r:RECOMMENDED]->(i:Item) RETURN u.id AS `from`, i.id AS `to`, "
                               "r.score AS score, r.rank AS rank, r.model AS model")
            expl = {label: self._fetch(
                f"MATCH (u:User)-[x:EXPLAINS]->(n:{label}) RETURN u.id AS `from`, n.id AS `to`, x.model AS model, "
                "x.item AS item, x.path AS path, x.weight AS weight, x.rank AS rank") for label in explains_targets()}
        return recs, expl

    def _build_path(self) -> Path:
        return self.path.with_name(f"{self.path.name}.build-{os.getpid()}")

    def _remove_stale_builds(self) -> None:
        # only the lock holder builds; holding it now, any build file left is from a killed writer
        for stale in self.path.parent.glob(f"{glob_escape(self.path.name)}.build-*"):
            if not stale.name.endswith((".wal", ".shadow", ".lock", ".checkpoint")):
                remove_files(stale)

    def _build(self, build: Path, fill: Callable[[], None]) -> None:
        """Run ``fill`` on a connection to the store file ``build`` (``_exec`` / ``_copy`` work on
        it meanwhile), then close it and sync it to disk."""
        lb = ladybug_module()
        # Nobody sees the build file before the rename and a failed or killed build is discarded,
        # so each statement commits on its own (no transaction spanning the whole graph: its
        # commit would log every page) and nothing is checkpointed before close: the close's
        # one checkpoint writes the file. Faster than one transaction (measured in docs/results.md).
        db = lb.Database(str(build), auto_checkpoint=False, **self._options)
        conn = lb.Connection(db)
        outer = self._conn
        self._conn = conn
        try:
            fill()
        finally:
            self._conn = outer
            conn.close()
            db.close()  # checkpoints: the file holds everything and needs no WAL
        leftovers = [p.name for p in sidecars(build) if p.exists()]
        if leftovers:
            raise StoreError(f"{self.uri}: the new store file was not closed cleanly ({', '.join(leftovers)} "
                             "remain); nothing was changed. Fix: check free disk space and try again")
        fsync(build)

    def _fill(self, tables: GraphTables, recs: pa.Table, expl: dict[str, pa.Table]) -> None:
        """Schema, graph and results into the (empty) store file that ``_exec`` works on."""
        for stmt in ladybug_ddl():
            self._exec(stmt)
        for label in ("User", "Item", "Entity"):
            self._copy(label, tables.nodes[label])
        self._copy("INTERACTED", tables.interactions)
        for pair, data in tables.knowledge.items():
            self._copy("RELATED", data, pair)
        self._copy("RECOMMENDED", recs)
        self._summarize(pc.unique(recs.column("model")).to_pylist())
        for label, kept in expl.items():
            self._copy("EXPLAINS", kept, ("User", label))

    def _swap_in(self, build: Path) -> None:
        """Close this store, rename ``build`` over it, reopen it."""
        self._close_handles()  # checkpoints the old file and removes its WAL
        leftovers = [p.name for p in sidecars(self.path) if p.exists()]
        if leftovers:  # a WAL of the old file must never be replayed on the new one
            remove_files(build)
            self._reopen()
            raise StoreError(f"{self.uri}: the store did not close cleanly ({', '.join(leftovers)} remain); the "
                             "graph was not replaced. Fix: close other programs using the file and try again")
        os.replace(build, self.path)
        fsync(self.path.parent)
        self._reopen()

    def _reopen(self) -> None:
        lb = ladybug_module()
        try:
            self._db = lb.Database(str(self.path), **self._options)
        except RuntimeError as exc:
            raise StoreError(f"{self.uri}: the graph was written, but the store could not be reopened: "
                             f"{self._open_error(str(exc))}. Fix: open it again with kgrec.open_store") from None
        self._conn = lb.Connection(self._db)

    def write_recommendations(self, df: pd.DataFrame, model_id: str) -> int:
        self._check_writable()
        table = recommendation_table(df, model_id)
        with self._lock:
            self._check_open()
            check_result_ids(table, "to", self._ids, "write_recommendations", self.uri)

            def replace() -> None:
                with self._transaction():
                    self._exec("MATCH (:User)-[r:RECOMMENDED]->(:Item) WHERE r.model = $model DELETE r",
                               {"model": model_id})
                    self._copy("RECOMMENDED", table)
                    self._summarize([model_id])
            self._build_and_swap(replace, "writing recommendations", copy_of_store=True)
        return table.num_rows

    def write_explanations(self, df: pd.DataFrame, model_id: str) -> int:
        self._check_writable()
        table = explanation_table(df, model_id)
        with self._lock:
            self._check_open()
            parts = explanation_parts(table)
            check_result_ids(table, "item", self._ids, "write_explanations", self.uri, parts)

            def replace() -> None:
                with self._transaction():
                    self._exec("MATCH (:User)-[x:EXPLAINS]->() WHERE x.model = $model DELETE x", {"model": model_id})
                    for label, part in parts:
                        self._copy("EXPLAINS", part, ("User", label))
            self._build_and_swap(replace, "writing explanations", copy_of_store=True)
        return table.num_rows


def _keep(table: pa.Table, from_ids: pa.Array, to_ids: pa.Array, item_ids: pa.Array | None = None,
          model_id: str | None = None) -> pa.Table:
    """Rows of a kept RECOMMENDED / EXPLAINS table whose end nodes (and explained item) still
    exist, and that are not ``model_id``'s (being replaced)."""
    if table.num_rows == 0:
        return table
    keep = pc.and_(pc.is_in(table.column("from"), value_set=from_ids), pc.is_in(table.column("to"), value_set=to_ids))
    if item_ids is not None:
        keep = pc.and_(keep, pc.is_in(table.column("item"), value_set=item_ids))
    if model_id is not None:
        keep = pc.and_(keep, pc.not_equal(table.column("model"), model_id))
    return table.filter(keep)
