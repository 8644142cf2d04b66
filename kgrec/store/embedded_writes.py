"""The embedded store's write path: a new graph built in a file beside the store and swapped in.

:class:`EmbeddedWrites` gives :class:`kgrec.store.embedded.EmbeddedStore` its ``write_graph``
(build a complete database file beside the store, then rename it over the store: a kill at any
moment leaves the old graph or the new one), ``write_recommendations`` and
``write_explanations`` (one model's edges replaced in one transaction in place). The guarantees
are listed in :mod:`kgrec.store.embedded`; the store object supplies the connection, the lock and
the low-level helpers (``_exec``, ``_copy``, ``_summarize``...).
"""

from __future__ import annotations

import os
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
from .result_tables import check_result_ids, explanation_parts, explanation_table, recommendation_table
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
            return self._rewrite(tables)

    def _erase_users(self, users: list[str]) -> None:
        # the whole store is rebuilt in a new file (write_graph's path): the forgotten users' bytes
        # are not left in free pages of the old file, and a crash leaves the old store or the new one
        self._rewrite(graph_tables(without_users(self.read_graph(), users)), forgotten=users)

    def _rewrite(self, tables: GraphTables, forgotten: list[str] | None = None) -> dict[str, int]:
        """Replace the store by ``tables`` with the results that stay valid (:meth:`write_graph`),
        leaving out explanations whose path names a ``forgotten`` user."""
        kept_recs, kept_expl = self._published()
        ids = {label: t.column("id").combine_chunks() for label, t in tables.nodes.items()}
        kept_recs = _keep(kept_recs, ids["User"], ids["Item"])
        kept_expl = {label: _keep(t, ids["User"], ids[label], item_ids=ids["Item"]) for label, t in kept_expl.items()}
        if forgotten:
            kept_expl = {label: t.filter(pa.array(~paths_naming(t.column("path").to_pylist(), forgotten)))
                         for label, t in kept_expl.items()}
        build = self._build_path()
        remove_files(build)
        try:
            self._build(build, tables, kept_recs, kept_expl)
        except BaseException as exc:
            remove_files(build)
            if isinstance(exc, RuntimeError):
                raise StoreError(f"{self.uri}: writing the graph failed, nothing was changed: {exc}") from None
            raise
        self._swap_in(build)
        return {"nodes": tables.num_nodes, "edges": tables.num_edges}

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

    def _build(self, build: Path, tables: GraphTables, recs: pa.Table, expl: dict[str, pa.Table]) -> None:
        """Write a complete store file at ``build``: schema, graph, kept results; closed and synced."""
        lb = ladybug_module()
        # Nobody sees the build file before the rename and a failed or killed build is discarded,
        # so each statement commits on its own (no transaction spanning the whole graph: its
        # commit would log every page) and nothing is checkpointed before close: the close's
        # one checkpoint writes the file. Faster than one transaction (measured in docs/results.md).
        db = lb.Database(str(build), auto_checkpoint=False, **self._options)
        conn = lb.Connection(db)
        outer = self._conn
        self._conn = conn  # _exec / _copy work on the build file
        try:
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
        finally:
            self._conn = outer
            conn.close()
            db.close()  # checkpoints: the file holds everything and needs no WAL
        leftovers = [p.name for p in sidecars(build) if p.exists()]
        if leftovers:
            raise StoreError(f"{self.uri}: the new graph file was not closed cleanly ({', '.join(leftovers)} "
                             "remain); nothing was changed. Fix: check free disk space and try again")
        fsync(build)

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
            try:
                with self._transaction():
                    check_result_ids(table, "to", self._ids, "write_recommendations", self.uri)
                    self._exec("MATCH (:User)-[r:RECOMMENDED]->(:Item) WHERE r.model = $model DELETE r",
                               {"model": model_id})
                    self._copy("RECOMMENDED", table)
                    self._summarize([model_id])
            except RuntimeError as exc:
                raise StoreError(f"{self.uri}: writing recommendations failed, nothing was changed: {exc}") from None
        return table.num_rows

    def write_explanations(self, df: pd.DataFrame, model_id: str) -> int:
        self._check_writable()
        table = explanation_table(df, model_id)
        with self._lock:
            self._check_open()
            try:
                with self._transaction():
                    parts = explanation_parts(table)
                    check_result_ids(table, "item", self._ids, "write_explanations", self.uri, parts)
                    self._exec("MATCH (:User)-[x:EXPLAINS]->() WHERE x.model = $model DELETE x", {"model": model_id})
                    for label, part in parts:
                        self._copy("EXPLAINS", part, ("User", label))
            except RuntimeError as exc:
                raise StoreError(f"{self.uri}: writing explanations failed, nothing was changed: {exc}") from None
        return table.num_rows


def _keep(table: pa.Table, from_ids: pa.Array, to_ids: pa.Array, item_ids: pa.Array | None = None) -> pa.Table:
    """Rows of a kept RECOMMENDED / EXPLAINS table whose end nodes (and explained item) still exist."""
    if table.num_rows == 0:
        return table
    keep = pc.and_(pc.is_in(table.column("from"), value_set=from_ids), pc.is_in(table.column("to"), value_set=to_ids))
    if item_ids is not None:
        keep = pc.and_(keep, pc.is_in(table.column("item"), value_set=item_ids))
    return table.filter(keep)
