"""The Neo4j store's write path: the graph and a model's results, in retried batches.

:class:`Neo4jWrites` gives :class:`kgrec.store.neo4j_store.Neo4jStore` its ``write_graph``,
``write_recommendations`` and ``write_explanations``, and what they run on: the schema created
where missing, column batches with a ``MERGE`` twin for retries, batched deletes, parallel
writers, and the models' summaries. The guarantees are listed in :mod:`kgrec.store.neo4j_store`;
the store object supplies the driver, the lock and the read / write transactions (``_run_write``,
``_run_read``, ``_node_ids``, ``_refresh_plans``...).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any, Mapping

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import StoreError
from ..graph_schema import neo4j_ddl
from ..knowledge_graph import KnowledgeGraph
from ..privacy import paths_naming
from .base import MODEL_SUMMARY, RECOMMENDED_MODELS
from .neo4j_params import (GROUPED_EDGES, ROWS, Column, NodeIds, by_target, column_params, grouped_edge_params,
                           neo4j_types, safe)
from .result_tables import (check_publication_ids, check_result_ids, explanation_parts, explanation_table, paths_cut,
                            publication_tables, recommendation_table, staging_id)
from .tables import graph_tables

EMBEDDING_FLOATS_PER_BATCH = 2_000_000  # about 18 MB of Bolt payload per batch of embedded nodes
_DDL_NAME = re.compile(r"CREATE (?:CONSTRAINT|INDEX) (\w+) IF NOT EXISTS")


def _run_each(tx: Any, statements: tuple[str, ...], model: str) -> None:
    """Run ``statements`` in ``tx`` one after the other, each with ``$model`` = ``model``."""
    for stmt in statements:
        tx.run(stmt, model=model).consume()


class Neo4jWrites:
    """The write methods of :class:`kgrec.store.neo4j_store.Neo4jStore` (a mixin: it uses the
    store's driver, lock and transactions)."""

    # ---------------------------------------------------------------- writing
    def write_graph(self, kg: KnowledgeGraph, features: Mapping[str, Any] | None = None) -> dict[str, int]:
        self._check_writable()
        tables = graph_tables(kg, features)
        with self._lock:
            self._check_open()
            self._ensure_schema()
            # 1. the graph's edges go (recommendations and explanations stay)
            self._delete_all("MATCH ()-[r:INTERACTED]->()", "removing old interactions")
            types = self._knowledge_types()
            if types:  # one statement for all types: one plan, not one per type
                self._delete_all(f"MATCH ()-[r:{'|'.join(types)}]->() WHERE r.relation IS NOT NULL",
                                 "removing old knowledge edges")
            # 2. nodes the store lacks are created, the others updated; 3. nodes the graph lacks go
            # (with their edges); the labels are independent, so several at once
            labels = list(tables.nodes)
            stored = dict(zip(labels, self._in_parallel(
                [lambda label=label: self._replace_nodes(label, tables.nodes[label]) for label in labels])))
            # 4. edges: the graph's edges were all removed in step 1 and the tables hold no
            # duplicates, so CREATE; a retried batch MERGEs instead (it may have committed).
            # End nodes are found by element id (less server time than two id index seeks per
            # edge); grouped by target, one tail lookup per target, not per edge (both measured in
            # docs/results.md).
            self._write_edges("INTERACTED", "User", "Item", tables.interactions, stored, "writing interactions",
                              streams=self.parallel_writes)
            self._in_parallel([lambda pair=pair: self._write_knowledge(pair, tables.knowledge[pair], stored)
                               for pair in tables.knowledge])
            self._summarize(self._stale_models())
            self._refresh_plans()
        return {"nodes": tables.num_nodes, "edges": tables.num_edges, "texts_cut": tables.texts_cut}

    def _in_parallel(self, writes: list[Callable[[], Any]]) -> list[Any]:
        """Run ``writes`` on up to ``parallel_writes`` threads (each its own transactions); their
        results in order. The first error is raised once every write has ended."""
        if self.parallel_writes <= 1 or len(writes) <= 1:
            return [write() for write in writes]
        threads = min(self.parallel_writes, len(writes))
        with ThreadPoolExecutor(threads, thread_name_prefix="kgrec-neo4j-write") as pool:
            futures = [pool.submit(write) for write in writes]
            wait(futures)
        return [future.result() for future in futures]

    def _replace_nodes(self, label: str, table: pa.Table) -> NodeIds:
        """Write ``table``'s ``label`` nodes, delete the stored ones it lacks (with their edges);
        the stored nodes after that."""
        before = self._node_ids(label)
        self._write_nodes(label, table, before)
        stale = before.ids.filter(pc.invert(pc.is_in(before.ids, value_set=table.column("id").combine_chunks())))
        for batch in self._batches(sorted(stale.to_pylist()), self.batch_size):
            self._run_write(lambda tx, b=batch: tx.run(
                f"UNWIND $ids AS id MATCH (n:{safe(label)} {{id: id}}) DETACH DELETE n", ids=Column(b)).consume(),
                f"removing {label} nodes that the graph no longer has")
        return self._node_ids(label)

    def _write_nodes(self, label: str, table: pa.Table, stored: NodeIds) -> None:
        """Write ``table``'s nodes: ``CREATE`` those whose id the store lacks (a retried batch
        ``MERGE``s: its first attempt may have committed), ``MERGE`` + ``SET`` the others."""
        props = [c for c in table.column_names if c != "id"]
        sets = ", ".join(f"n.{p} = ${p}[k]" for p in props)
        rows = "UNWIND range(0, size($id) - 1) AS k "
        merge = f"{rows}MERGE (n:{safe(label)} {{id: $id[k]}}) SET {sets}"
        emb = table.column("embedding")
        dim = 0
        if emb.null_count < len(emb):
            dim = int(pc.max(pc.list_value_length(emb)).as_py() or 0)
        size = self.batch_size if dim == 0 else max(100, min(self.batch_size, EMBEDDING_FLOATS_PER_BATCH // dim))
        known = pc.is_in(table.column("id"), value_set=stored.ids)
        self._write_columns(f"{rows}CREATE (n:{safe(label)} {{id: $id[k]}}) SET {sets}",
                            table.filter(pc.invert(known)), f"writing {label} nodes", size, retry_cypher=merge)
        self._write_columns(merge, table.filter(known), f"writing {label} nodes", size)

    def _write_knowledge(self, pair: tuple[str, str], table: pa.Table, stored: dict[str, NodeIds]) -> None:
        """The knowledge edges from ``pair[0]`` to ``pair[1]`` nodes: typed by their relation (see
        :func:`~kgrec.store.neo4j_params.neo4j_type`), in one query for all types where the server
        takes the type as an expression (one plan per label pair, not per type), else one query
        per type."""
        head, tail = pair
        types = neo4j_types(table.column("relation"))
        if self.dynamic_types:
            self._write_edges(None, head, tail, table.append_column("type", types), stored,
                              f"writing {head}-{tail} knowledge edges")
            return
        for t in sorted(pc.unique(types).to_pylist()):
            self._write_edges(t, head, tail, table.filter(pc.equal(types, t)), stored, f"writing {t} edges")

    def _write_edges(self, rel: str | None, head: str, tail: str, table: pa.Table, stored: dict[str, NodeIds],
                     what: str, streams: int = 1) -> None:
        """``CREATE`` one ``rel`` edge per row of ``table`` (``from``, ``to``, properties) between
        the stored ``head`` and ``tail`` nodes, matched by element id; a retried batch ``MERGE``s.
        ``rel=None``: each row's type is in its ``type`` column (servers with :attr:`dynamic_types`).
        Property columns that are null on every row are not sent (a null property is no property).

        ``streams`` > 1: the sources are dealt round-robin to that many threads, each writing its
        sources' edges in its own transactions, so that the server works on several at once (a
        transaction runs on one server thread): two streams write ML-100K's interactions faster
        than one on the 2-core test server. The server may detect a deadlock between them, fail
        one transaction and the driver retry it (as a ``MERGE``): some publishes met one with the
        threads split by source, and so did some with two threads that touched no common node
        (sources and targets split into blocks, written in rounds), on a relationship lock taken
        at commit (both measured in docs/results.md). The retry waits ``retry_delay``, not the
        driver's default 1 s."""
        if table.num_rows == 0:
            return
        table = by_target(table)
        cols = {"from": stored[head].element_ids(table.column("from")),
                "to": stored[tail].element_ids(table.column("to"))}
        props = [c for c in table.column_names
                 if c not in ("from", "to", "type") and table.column(c).null_count < table.num_rows]
        per_row = ["type"] if rel is None else []
        table = pa.table({**cols, **{c: table.column(c) for c in per_row + props}})
        rel_type = "$($type[k])" if rel is None else safe(rel)
        values = " {" + ", ".join(f"{p}: ${p}[k]" for p in props) + "}" if props else ""
        match = (f"{GROUPED_EDGES} MATCH (t:{safe(tail)}) WHERE elementId(t) = $group[g] "
                 "UNWIND range($start[g], $start[g + 1] - 1) AS k "
                 f"MATCH (h:{safe(head)}) WHERE elementId(h) = $from[k] ")
        if rel == "INTERACTED":  # one edge per (user, item): a retry merges on the pair
            retry = f"{match}MERGE (h)-[r:{rel}]->(t)" + (f" SET r +={values}" if props else "")
        else:  # a knowledge edge is identified by its relation too
            retry = f"{match}MERGE (h)-[:{rel_type}{values}]->(t)"
        create = f"{match}CREATE (h)-[:{rel_type}{values}]->(t)"
        if streams <= 1 or table.num_rows <= self.batch_size:
            self._write_columns(create, table, what, retry_cypher=retry, params_of=grouped_edge_params)
            return
        sources = table.column("from")
        stream = pc.index_in(sources, value_set=pc.unique(sources)).to_numpy() % streams
        self._in_parallel([lambda part=table.filter(pa.array(stream == i)): self._write_columns(
            create, part, what, retry_cypher=retry, params_of=grouped_edge_params) for i in range(streams)])

    def _replace_model(self, model_id: str, rels: tuple[str, ...], groups: list[tuple[str, str, pa.Table]],
                       what: str, summarize: bool) -> None:
        """Replace model ``model_id``'s ``rels`` edges by the edges of ``groups`` [(create, merge,
        table)] and, with ``summarize``, rebuild its summary: readers see the old edges or the new
        ones, never a mix.

        Up to ``atomic_rows`` rows this is one transaction (delete, create, summary). Above that
        the new edges are first written in batches under a staging model name (:func:`staging_id`:
        invisible to queries on ``model_id``), then one transaction deletes the old edges, renames
        the staged ones and rebuilds the summary. Staged edges left by an interrupted write are
        removed first, so running the write again converges.

        The edges are ``CREATE``d, never ``MERGE``d, in a first attempt: the model has no ``rel``
        edges left by then and the tables hold no duplicates. A ``MERGE`` on ``{model: ...}`` may be
        planned as a seek of the relationship index on ``model`` followed by a scan of every edge of
        the model (the plan depends on the statistics when it is first cached): quadratic (measured
        in docs/results.md). Only a batch that the driver retries outside a transaction that
        also deleted runs ``merge`` (its first attempt may have committed)."""
        total = sum(t.num_rows for _, _, t in groups)
        then = MODEL_SUMMARY if summarize else ()
        if total <= self.atomic_rows:  # a retry re-runs the deletes too, so CREATE stays exact
            def work(tx: Any) -> None:
                for rel in rels:
                    tx.run(f"MATCH ()-[r:{safe(rel)}]->() WHERE r.model = $model DELETE r", model=model_id).consume()
                for create, _, table in groups:
                    for start in range(0, table.num_rows, self.batch_size):
                        tx.run(create, column_params(table.slice(start, self.batch_size))).consume()
                _run_each(tx, then, model_id)
            self._run_write(work, what)
            return
        staging = staging_id(model_id)
        for rel in rels:
            self._delete_all(f"MATCH ()-[r:{safe(rel)}]->() WHERE r.model = $model", what, model=staging)
        for create, merge, table in groups:
            staged = table.set_column(table.schema.get_field_index("model"), "model",
                                      pa.array([staging] * table.num_rows, pa.string()))
            self._write_columns(create, staged, what, retry_cypher=merge)

        def switch(tx: Any) -> None:
            for rel in rels:
                tx.run(f"MATCH ()-[r:{safe(rel)}]->() WHERE r.model = $model DELETE r", model=model_id).consume()
                tx.run(f"MATCH ()-[r:{safe(rel)}]->() WHERE r.model = $staging SET r.model = $model",
                       staging=staging, model=model_id).consume()
            _run_each(tx, then, model_id)
        self._run_write(switch, what)

    def _recommendation_groups(self, table: pa.Table) -> list[tuple[str, str, pa.Table]]:
        match = f"{ROWS} MATCH (u:User {{id: $from[k]}}) MATCH (i:Item {{id: $to[k]}}) "
        create = f"{match}CREATE (u)-[:RECOMMENDED {{model: $model[k], score: $score[k], rank: $rank[k]}}]->(i)"
        merge = (f"{match}MERGE (u)-[r:RECOMMENDED {{model: $model[k]}}]->(i) "
                 "SET r.score = $score[k], r.rank = $rank[k]")
        return [(create, merge, table)]

    def _explanation_groups(self, parts: list[tuple[str, pa.Table]]) -> list[tuple[str, str, pa.Table]]:
        groups = []
        for label, part in parts:
            match = f"{ROWS} MATCH (u:User {{id: $from[k]}}) MATCH (n:{safe(label)} {{id: $to[k]}}) "
            key = "model: $model[k], item: $item[k], path: $path[k]"
            groups.append((f"{match}CREATE (u)-[:EXPLAINS {{{key}, weight: $weight[k], rank: $rank[k]}}]->(n)",
                           f"{match}MERGE (u)-[x:EXPLAINS {{{key}}}]->(n) SET x.weight = $weight[k], x.rank = $rank[k]",
                           part))
        return groups

    def write_recommendations(self, df: pd.DataFrame, model_id: str) -> int:
        self._check_writable()
        table = recommendation_table(df, model_id)
        with self._lock:
            self._check_open()
            self._ensure_schema()
            check_result_ids(table, "to", self._ids, "write_recommendations", self.uri)
            self._replace_model(model_id, ("RECOMMENDED",), self._recommendation_groups(table),
                                f"writing recommendations of model '{model_id}'", summarize=True)
            self._refresh_plans()
        return table.num_rows

    def write_explanations(self, df: pd.DataFrame, model_id: str) -> int:
        self._check_writable()
        table = explanation_table(df, model_id)
        with self._lock:
            self._check_open()
            self._ensure_schema()
            parts = explanation_parts(table)
            check_result_ids(table, "item", self._ids, "write_explanations", self.uri, parts)
            self._replace_model(model_id, ("EXPLAINS",), self._explanation_groups(parts),
                                f"writing explanations of model '{model_id}'", summarize=False)
            self._refresh_plans()
        return table.num_rows

    def publish_model(self, kg: KnowledgeGraph, recommendations: pd.DataFrame, explanations: pd.DataFrame | None,
                      model_id: str, features: Mapping[str, Any] | None = None) -> dict[str, int]:
        self._check_writable()
        recs, expl, parts = publication_tables(recommendations, explanations, model_id)
        with self._lock:
            written = self.write_graph(kg, features)
            check_publication_ids(recs, expl, parts, self._ids, self.uri)
            self._replace_model(model_id, ("RECOMMENDED", "EXPLAINS"),
                                self._recommendation_groups(recs) + self._explanation_groups(parts),
                                f"publishing model '{model_id}'", summarize=True)
            self._refresh_plans()
        return {**written, "recommended": recs.num_rows, "explains": expl.num_rows if expl is not None else 0,
                "texts_cut": written["texts_cut"] + paths_cut(explanations)}

    def _erase_users(self, gone: list[str]) -> None:
        # not one transaction: a user with many edges may exceed the server's memory; a forget
        # that is interrupted leaves some users erased, and running it again finishes it
        paths = self._run_read(lambda tx: tx.run(
            "MATCH ()-[x:EXPLAINS]->() RETURN collect(elementId(x)) AS ids, collect(x.path) AS paths").single(),
            "reading explanation paths")
        naming = [e for e, hit in zip(paths["ids"], paths_naming(paths["paths"], gone)) if hit]
        for batch in self._batches(naming, self.batch_size):
            self._run_write(lambda tx, b=batch: tx.run(
                "UNWIND $ids AS e MATCH ()-[x]->() WHERE elementId(x) = e DELETE x",
                ids=Column(b)).consume(), "removing explanation paths through forgotten users")
        for batch in self._batches(gone, max(1, self.batch_size // 100)):
            self._delete_all("MATCH (u:User)-[r]-() WHERE u.id IN $ids", "removing forgotten users' edges",
                             ids=Column(batch))
            self._run_write(lambda tx, b=batch: tx.run(
                "MATCH (u:User) WHERE u.id IN $ids DETACH DELETE u", ids=Column(b)).consume(),
                "removing forgotten users")
        self._summarize(self._stale_models())
        self._refresh_plans()

    # ---------------------------------------------------------------- batches, schema, summaries
    def _ensure_schema(self) -> None:
        """Create the constraints and indexes of :func:`neo4j_ddl` that the server lacks (by name:
        one read, instead of seven schema commands planned anew at every open)."""
        if self._schema_ready:
            return
        try:
            existing = self._run_read(lambda tx: {r[0] for q in ("SHOW CONSTRAINTS YIELD name",
                                                                 "SHOW INDEXES YIELD name") for r in tx.run(q)},
                                      "listing constraints and indexes")
        except StoreError:  # a user who may not list them: every command, each a no-op where it exists
            existing = set()
        for stmt in neo4j_ddl():
            if _DDL_NAME.match(stmt)[1] not in existing:
                self._run_write(lambda tx, s=stmt: tx.run(s).consume(), "creating constraints and indexes")
        if "model_id_unique" not in existing:  # recommendations written before model summaries
            self._summarize(self._run_read(lambda tx: tx.run(RECOMMENDED_MODELS).value(), "listing models"))
        self._schema_ready = True

    def _stale_models(self) -> list[str]:
        """Models whose summary counts more recommendations than they have: removed users and
        items took theirs along (in this ``write_graph``, or in an earlier one that was
        interrupted before it rebuilt the summaries)."""
        return self._run_read(lambda tx: tx.run(
            "MATCH (m:Model) OPTIONAL MATCH ()-[r:RECOMMENDED]->() WHERE r.model = m.id "
            "WITH m, count(r) AS n WHERE n <> m.recommendations RETURN m.id").value(), "checking model summaries")

    def _summarize(self, models: list[str]) -> None:
        """Rebuild the summaries of ``models`` (:data:`MODEL_SUMMARY`), one transaction per model."""
        for model in models:
            self._run_write(lambda tx, m=model: _run_each(tx, MODEL_SUMMARY, m),
                            f"summarising the recommendations of model '{model}'")

    def _batches(self, rows: list[Any], size: int) -> Iterator[list[Any]]:
        for start in range(0, len(rows), size):
            yield rows[start:start + size]

    def _write_columns(self, cypher: str, table: pa.Table, what: str, size: int | None = None,
                       retry_cypher: str | None = None,
                       params_of: Callable[[pa.Table], dict[str, list]] = column_params) -> None:
        """Run ``cypher`` once per slice of ``table``, with ``params_of(slice)`` as parameters: by
        default the slice's columns as list parameters named after the columns (``$from``,
        ``$to``...), so that the query reads row ``k`` as ``$from[k]``. Columns pack faster than a
        list of row maps in the Python driver (measured in docs/results.md).

        One slice after the other (:meth:`_write_edges` runs several of these at once).

        ``retry_cypher`` is what a retried slice runs instead (the driver retries a transaction
        whose outcome it could not see, which may have committed): a ``MERGE`` twin of a
        ``CREATE`` query, so that a retry never duplicates an edge."""
        size = size or self.batch_size
        for start in range(0, table.num_rows, size):
            params = params_of(table.slice(start, size))
            attempts = [0]

            def work(tx: Any, p: dict = params, n: list = attempts) -> None:
                n[0] += 1
                tx.run(cypher if n[0] == 1 or retry_cypher is None else retry_cypher, p).consume()

            self._run_write(work, what)

    def _delete_all(self, match: str, what: str, **params: Any) -> int:
        """Delete the relationships ``r`` that ``match`` binds, ``batch_size`` per transaction."""
        cypher = f"{match} WITH r LIMIT $limit DELETE r RETURN count(*) AS n"
        total = 0
        while True:
            n = self._run_write(lambda tx: tx.run(cypher, limit=self.batch_size, **params).single()["n"], what)
            total += n
            if n < self.batch_size:
                return total
