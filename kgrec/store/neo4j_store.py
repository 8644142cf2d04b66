"""The Neo4j graph store (Neo4j 5, through the official ``neo4j`` driver over Bolt).

- Schema first: the uniqueness constraints and indexes of :func:`kgrec.graph_schema.neo4j_ddl`.
- Writes are ``UNWIND`` batches (``batch_size`` rows, fewer when rows carry embeddings; each
  column of a batch is one list parameter, which the Python driver packs ~3x faster than a list
  of row maps), each its own transaction run by the driver's retrying ``execute_write``.
  ``write_graph`` ``CREATE``s the nodes whose ``id`` the store lacks and ``MERGE``s the others;
  it removes the graph's edges first, then ``CREATE``s them between nodes found by element id
  (read once per label after the nodes are written: cheaper for the server than two ``id``
  index seeks per edge). A batch that the driver retries (its first attempt may have committed
  before the connection dropped) runs as ``MERGE``, so nothing is ever duplicated. Up to
  ``parallel_writes`` transactions (2 by default) run at once: the node labels, the
  interaction edges (each thread its own users), the knowledge edges of each node-label pair.
  Concurrent writes can deadlock on the server (see :meth:`Neo4jStore._write_edges`); the
  driver retries the failed batch after ``retry_delay`` (0.1 s; the driver's default is 1 s).
- The driver packs parameters in pure Python (a few microseconds per value, so 384-d embeddings
  cost more on the client than on the server) unless the ``neo4j-rust-ext`` package is installed,
  which it then uses by itself.
- Knowledge edges get the relation's name as their type (``HAS_GENRE``;
  :func:`kgrec.graph_schema.relation_type`, only ``[A-Z0-9_]``; a name that would collide with
  ``INTERACTED`` / ``RECOMMENDED`` / ``EXPLAINS`` / ``RECOMMENDS`` becomes ``RELATED``) *and* a ``relation``
  property, so ``MATCH (i:Item)-[r]->(e:Entity) RETURN r.relation`` reads the same on both stores.
- ``write_graph`` is idempotent but, unlike the embedded store, not atomic: a graph is too big
  for one transaction. An interrupted write (server stopped, connection lost) leaves part of the
  new graph; running ``write_graph`` again completes it exactly (it first removes the graph's
  edges, then writes nodes, removes nodes the graph lacks and creates edges).
  ``write_recommendations`` / ``write_explanations`` replace a model's edges in one transaction
  up to ``atomic_rows`` rows (200k by default), in batches above that; they ``CREATE`` the edges
  (see :meth:`Neo4jStore._replace_model_edges` for why not ``MERGE``). The model's summary
  (``Model`` node, ``RECOMMENDS`` edges) is rebuilt in the same transaction, or in one of its own
  after the batches; ``write_graph`` rebuilds the summaries of models that lost recommendations.
- ``query`` runs as one auto-commit query in a session with ``default_access_mode=READ`` (one
  round trip; a managed transaction took two and about 1.5 ms more per query): the server itself
  refuses writes (``Neo.ClientError.Statement.AccessMode``). It is not retried.
- Every value is a ``$parameter``; only labels and relationship types from the schema (or
  ``relation_type``'s sanitised names) are ever part of the Cypher text.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from ..errors import ReadOnlyQueryError, StoreError
from ..graph_schema import neo4j_ddl, relation_type
from ..knowledge_graph import KnowledgeGraph
from .base import (EMBEDDING_TYPE, LABEL_TO_TYPE, MODEL_SUMMARY, NODE_TABLES, RECOMMENDED_MODELS, RESERVED_TYPES,
                   GraphStore, assemble_graph, check_known_ids, explanation_table, explains_targets,
                   frame_from_records, graph_tables, knowledge_pairs, recommendation_table)

DEFAULT_TIMEOUT = 5.0
DEFAULT_BATCH = 10_000
DEFAULT_RETRY_DELAY = 0.1  # seconds before a failed write is first retried (a deadlock is over at once)
EMBEDDING_FLOATS_PER_BATCH = 2_000_000  # about 18 MB of Bolt payload per batch of embedded nodes
_SAFE_NAME = re.compile(r"^[A-Z][A-Za-z0-9_]*$")
_DDL_NAME = re.compile(r"CREATE (?:CONSTRAINT|INDEX) (\w+) IF NOT EXISTS")
#: a batch of edges arrives as one list parameter per column; row k of the batch is $column[k]
ROWS = "UNWIND range(0, size($from) - 1) AS k"
# a write's transaction ended by the server (terminated, e.g. at shutdown), not refused for its content
INTERRUPTED = ("Neo.ClientError.Transaction.Terminated", "Neo.ClientError.Transaction.LockClientStopped")
RERUN = "run the same write again (writes are idempotent)"
#: a batch of edges grouped by target (see grouped_edge_params): one tail lookup per target, not per edge
GROUPED_EDGES = "UNWIND range(0, size($group) - 1) AS g"


def neo4j_type(relation: str) -> str:
    """The Neo4j relationship type of a knowledge edge with source relation ``relation``."""
    name = relation_type(relation)
    return "RELATED" if name in RESERVED_TYPES else name


def neo4j_types(relations: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    """:func:`neo4j_type` of every row of ``relations``, computed once per distinct relation
    (per row it took 0.49 s for 150k knowledge edges, Last.fm's size; per distinct 0.02 s)."""
    relations = relations if isinstance(relations, pa.ChunkedArray) else pa.chunked_array([relations])
    distinct = pc.unique(relations)
    names = pa.array([neo4j_type(r) for r in distinct.to_pylist()], pa.string())
    return pc.take(names, pc.index_in(relations, value_set=distinct))


def _run_each(tx: Any, statements: tuple[str, ...], model: str) -> None:
    """Run ``statements`` in ``tx`` one after the other, each with ``$model`` = ``model``."""
    for stmt in statements:
        tx.run(stmt, model=model).consume()


def _safe(name: str) -> str:
    """A label or relationship type that may be written into Cypher text (defence in depth)."""
    if not _SAFE_NAME.match(name):
        raise StoreError(f"refusing to put '{name}' into Cypher text: labels and types must match "
                         f"{_SAFE_NAME.pattern}")
    return name


def _neo4j() -> Any:
    try:
        import neo4j
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise StoreError("the Neo4j store needs the 'neo4j' driver: pip install neo4j") from exc
    return neo4j


def _plain(value: Any) -> Any:
    """Driver values as plain Python: nodes and relationships become dicts of their properties
    plus ``_label`` (as the embedded store returns them), paths ``{"_nodes", "_rels"}``."""
    from neo4j.graph import Node, Path, Relationship
    if isinstance(value, Node):
        return {"_label": next(iter(value.labels), None), **dict(value)}
    if isinstance(value, Relationship):
        return {"_label": value.type, **dict(value)}
    if isinstance(value, Path):
        return {"_nodes": [_plain(n) for n in value.nodes], "_rels": [_plain(r) for r in value.relationships]}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class NodeIds:
    """The stored nodes of one label: their ``id`` and, at the same position, their element id."""

    ids: pa.Array
    eids: pa.Array

    def element_ids(self, ids: pa.ChunkedArray | pa.Array) -> pa.Array:
        """The element ids of the nodes with ``ids``; raises :class:`StoreError` for an id that
        no stored node has (a node written moments ago and deleted by another client since)."""
        pos = pc.index_in(ids, value_set=self.ids)
        if pos.null_count:
            missing = pc.filter(ids, pc.is_null(pos))[0].as_py()
            raise StoreError(f"node '{missing}' disappeared from the store while its edges were written "
                             "(another client deleting nodes?). Fix: write the graph again")
        return pc.take(self.eids, pos)


class _Column(list):
    """A column of query parameters whose ``repr`` is its length.

    The driver formats every ``RUN``'s parameters for its debug log, ``repr`` of every value,
    before the logger checks its level: for a batch of 10,000 rows or of embedded nodes that
    took longer than packing them (1.2 of 1.6 s of client CPU per ML-100K publish)."""

    def __repr__(self) -> str:
        return f"<{len(self)} values>"


def column_params(table: pa.Table) -> dict[str, list]:
    """``table``'s columns as list parameters named after the columns (``$from``, ``$to``...)."""
    return {name: _Column(table.column(name).to_pylist()) for name in table.column_names}


def grouped_edge_params(table: pa.Table) -> dict[str, list]:
    """A slice of edges sorted by ``to`` as parameters for :data:`GROUPED_EDGES`: ``$group`` the
    distinct targets in order, edges ``$start[g]`` to ``$start[g + 1] - 1`` end at ``$group[g]``,
    and every other column (``$from``, properties) per edge."""
    targets = table.column("to").to_numpy(zero_copy_only=False)
    first = np.flatnonzero(np.r_[True, targets[1:] != targets[:-1]]) if len(targets) else np.zeros(0, np.int64)
    params = column_params(table.drop_columns(["to"]))
    params["group"] = _Column(targets[first].tolist())
    params["start"] = _Column(np.r_[first, len(targets)].tolist())
    return params


def supports_dynamic_types(agent: str) -> bool:
    """Whether a server (its Bolt agent string, e.g. ``Neo4j/5.26.0``) creates relationships whose
    type is an expression, ``CREATE (a)-[:$($type)]->(b)``: Neo4j 5.26 and later (2025.x too)."""
    version = re.match(r"Neo4j/(\d+)\.(\d+)", agent or "")
    return version is not None and (int(version[1]), int(version[2])) >= (5, 26)


def _by_target(table: pa.Table) -> pa.Table:
    return table.sort_by([("to", "ascending"), ("from", "ascending")]) if table.num_rows else table


class Neo4jStore(GraphStore):
    """A graph store on a Neo4j 5 server. See the module docstring for guarantees.

    ``timeout`` bounds connecting (default 5 s); ``max_retry_time`` bounds how long one batch is
    retried across lost connections / a restarting server / deadlocks (default 30 s), with delays
    from ``retry_delay`` (0.1 s) doubling between attempts (where the driver takes the setting:
    ``initial_retry_delay``, undocumented; else its default, 1 s); ``batch_size`` is the
    number of rows per ``UNWIND`` transaction; ``parallel_writes`` the most transactions that
    ``write_graph`` runs at once (a transaction runs on one server thread; see
    :meth:`_write_edges`). ``dynamic_types``: whether the server takes a relationship type as an
    expression (Neo4j 5.26+); knowledge edges of every type between two node labels are then
    written by one query instead of one per type.
    """

    def __init__(self, uri: str, *, user: str | None = None, password: str | None = None,
                 database: str | None = None, timeout: float | None = None, read_only: bool = False,
                 batch_size: int = DEFAULT_BATCH, max_retry_time: float = 30.0, atomic_rows: int = 200_000,
                 parallel_writes: int = 2, retry_delay: float = DEFAULT_RETRY_DELAY) -> None:
        neo4j = _neo4j()
        self.uri = uri
        self.read_only = read_only
        self.database = database
        self.batch_size = int(batch_size)
        self.atomic_rows = int(atomic_rows)
        self.parallel_writes = max(1, int(parallel_writes))
        if not isinstance(retry_delay, (int, float)) or isinstance(retry_delay, bool) or not 0 <= retry_delay < 60:
            raise ValueError(f"retry_delay must be a number of seconds from 0 to 60 (got {retry_delay!r})")
        self._lock = threading.RLock()
        self._schema_ready = False
        user = user if user is not None else os.environ.get("NEO4J_USER")
        password = password if password is not None else os.environ.get("NEO4J_PASSWORD")
        auth = None if user is None and password is None else neo4j.basic_auth(user or "neo4j", password or "")
        timeout = DEFAULT_TIMEOUT if timeout is None else float(timeout)
        config = dict(auth=auth, connection_timeout=timeout, connection_acquisition_timeout=timeout + 5,
                      max_transaction_retry_time=max_retry_time, liveness_check_timeout=30.0)
        try:
            try:  # the first retry's delay is a setting the driver does not document (and may drop)
                self._driver = neo4j.GraphDatabase.driver(uri, initial_retry_delay=float(retry_delay), **config)
            except neo4j.exceptions.ConfigurationError as exc:
                if "initial_retry_delay" not in str(exc):
                    raise
                self._driver = neo4j.GraphDatabase.driver(uri, **config)
        except (neo4j.exceptions.ConfigurationError, ValueError) as exc:
            raise StoreError(f"{uri}: not a usable Neo4j URI ({exc}). Fix: use bolt://host:7687 or "
                             "neo4j://host:7687") from None
        try:
            self.dynamic_types = supports_dynamic_types(self._driver.get_server_info().agent)
            if database:  # a wrong database name only shows when a session uses it
                self._driver.execute_query("RETURN 1", database_=database, routing_="r")
        except neo4j.exceptions.AuthError as exc:
            self._driver.close()
            raise StoreError(f"{uri}: Neo4j refused the credentials ({exc.message}). Fix: pass user= and "
                             "password= or set NEO4J_USER / NEO4J_PASSWORD") from None
        except neo4j.exceptions.ClientError as exc:  # e.g. the database does not exist
            self._driver.close()
            raise StoreError(f"{uri}: Neo4j refused the connection: {exc.code}: {exc.message}. Fix: check "
                             "database= (SHOW DATABASES lists them)") from None
        except Exception as exc:  # ServiceUnavailable, DNS errors, TLS errors, timeouts...
            self._driver.close()
            raise StoreError(f"{uri}: cannot reach a Neo4j server ({type(exc).__name__}: {exc}). Fix: start "
                             "the server or correct the host and port (Bolt listens on 7687 by default)") from None
        self._closed = False

    # ---------------------------------------------------------------- plumbing
    def close(self) -> None:
        with self._lock:
            if not getattr(self, "_closed", True):
                self._driver.close()
            self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self.uri}: the store is closed. Fix: open it again with kgrec.open_store")

    def _session(self, read: bool = False, quiet: bool = True) -> Any:
        """A session; ``quiet``: without the server's notifications, which the driver logs as
        warnings (kgrec's own statements name properties, such as a model summary's, that a
        database may not hold yet)."""
        neo4j = _neo4j()
        config: dict[str, Any] = {"default_access_mode": neo4j.READ_ACCESS if read else neo4j.WRITE_ACCESS}
        if quiet:
            config["notifications_min_severity"] = "OFF"
        if self.database:
            config["database"] = self.database
        return self._driver.session(**config)

    def _run_write(self, work: Callable[[Any], Any], what: str) -> Any:
        """Run ``work(tx)`` in one retried write transaction; connection loss -> StoreError."""
        neo4j = _neo4j()
        try:
            with self._session() as session:
                return session.execute_write(work)
        except (neo4j.exceptions.ServiceUnavailable, neo4j.exceptions.SessionExpired, OSError) as exc:
            raise StoreError(f"{self.uri}: lost the Neo4j server while {what} ({type(exc).__name__}: {exc}). "
                             f"What was committed stays. Fix: when the server is back, {RERUN}") from None
        except neo4j.exceptions.Neo4jError as exc:
            if exc.code in INTERRUPTED or isinstance(exc, neo4j.exceptions.TransientError):
                raise StoreError(f"{self.uri}: Neo4j ended the transaction while {what} ({exc.code}: {exc.message}). "
                                 f"What was committed stays. Fix: {RERUN}") from None
            raise StoreError(f"{self.uri}: Neo4j refused {what}: {exc.code}: {exc.message}") from None

    def _run_read(self, work: Callable[[Any], Any], what: str, managed: bool = True, quiet: bool = True) -> Any:
        """Run ``work`` on a read session: inside a retried read transaction, or (``managed=False``)
        as one auto-commit query, ``work(session)``: one round trip instead of two, no retries.
        The server refuses writes in both (the session's access mode is READ). ``quiet``: see
        :meth:`_session`."""
        neo4j = _neo4j()
        try:
            with self._session(read=True, quiet=quiet) as session:
                return session.execute_read(work) if managed else work(session)
        except neo4j.exceptions.ClientError as exc:
            if exc.code == "Neo.ClientError.Statement.AccessMode":
                raise ReadOnlyQueryError(f"{self.uri}: query() is read-only and the server refused a write "
                                         f"({exc.message}). Fix: write through write_graph / write_recommendations, "
                                         "or inspect with MATCH ... RETURN") from None
            raise StoreError(f"{self.uri}: {what} failed: {exc.code}: {exc.message}") from None
        except (neo4j.exceptions.ServiceUnavailable, neo4j.exceptions.SessionExpired, OSError) as exc:
            raise StoreError(f"{self.uri}: lost the Neo4j server while {what} ({type(exc).__name__}: {exc}). "
                             "Fix: check that the server is up") from None
        except neo4j.exceptions.Neo4jError as exc:
            raise StoreError(f"{self.uri}: {what} failed: {exc.code}: {exc.message}") from None

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
        ``$to``...), so that the query reads row ``k`` as ``$from[k]``. Columns pack several times
        faster than a list of row maps in the Python driver.

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

    def _refresh_plans(self) -> None:
        """After a bulk write: schedule the resampling of indexes the write made outdated and drop
        the cached query plans, so that the next query is planned on the data as it is now.
        Neo4j replans a cached query only when the statistics it was planned on drift by a
        decaying threshold, at most every 10 s; a plan cached while the database held other data
        (an earlier graph, a test graph) can meanwhile be orders of magnitude slower. Both
        procedures are admin-only: for a user without the privilege this does nothing and plans
        refresh on Neo4j's own schedule."""
        neo4j = _neo4j()
        for call in ("CALL db.resampleOutdatedIndexes()", "CALL db.clearQueryCaches()"):
            try:
                with self._session() as session:
                    session.run(call).consume()
            except (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError, OSError):
                continue  # forbidden to a non-admin user, or the server went away: the write is done

    def _knowledge_types(self) -> list[str]:
        types = self._run_read(lambda tx: [r[0] for r in tx.run(
            "CALL db.relationshipTypes() YIELD relationshipType RETURN relationshipType")], "listing relationship types")
        return [t for t in types if t not in RESERVED_TYPES and _SAFE_NAME.match(t)]

    def _node_ids(self, label: str) -> NodeIds:
        """The stored ``label`` nodes' ids and element ids, in one record (two lists): decoding one
        record per node costs the Python driver more than the server takes to answer."""
        cypher = f"MATCH (n:{_safe(label)}) RETURN collect(n.id) AS ids, collect(elementId(n)) AS eids"
        ids, eids = self._run_read(lambda tx: tuple(tx.run(cypher).single()), f"reading {label} ids")
        return NodeIds(pa.array(ids, pa.string()), pa.array(eids, pa.string()))

    def _ids(self, label: str) -> set[str]:
        return set(self._node_ids(label).ids.to_pylist())

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
            # End nodes are found by element id (about 40% less server time than two id index
            # seeks per edge); grouped by target, one tail lookup per target (15-25% less than per edge).
            self._write_edges("INTERACTED", "User", "Item", tables.interactions, stored, "writing interactions",
                              streams=self.parallel_writes)
            self._in_parallel([lambda pair=pair: self._write_knowledge(pair, tables.knowledge[pair], stored)
                               for pair in tables.knowledge])
            self._summarize(self._stale_models())
            self._refresh_plans()
        return {"nodes": tables.num_nodes, "edges": tables.num_edges}

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
                f"UNWIND $ids AS id MATCH (n:{_safe(label)} {{id: id}}) DETACH DELETE n", ids=_Column(b)).consume(),
                f"removing {label} nodes that the graph no longer has")
        return self._node_ids(label)

    def _write_nodes(self, label: str, table: pa.Table, stored: NodeIds) -> None:
        """Write ``table``'s nodes: ``CREATE`` those whose id the store lacks (a retried batch
        ``MERGE``s: its first attempt may have committed), ``MERGE`` + ``SET`` the others."""
        props = [c for c in table.column_names if c != "id"]
        sets = ", ".join(f"n.{p} = ${p}[k]" for p in props)
        rows = "UNWIND range(0, size($id) - 1) AS k "
        merge = f"{rows}MERGE (n:{_safe(label)} {{id: $id[k]}}) SET {sets}"
        emb = table.column("embedding")
        dim = 0
        if emb.null_count < len(emb):
            dim = int(pc.max(pc.list_value_length(emb)).as_py() or 0)
        size = self.batch_size if dim == 0 else max(100, min(self.batch_size, EMBEDDING_FLOATS_PER_BATCH // dim))
        known = pc.is_in(table.column("id"), value_set=stored.ids)
        self._write_columns(f"{rows}CREATE (n:{_safe(label)} {{id: $id[k]}}) SET {sets}",
                            table.filter(pc.invert(known)), f"writing {label} nodes", size, retry_cypher=merge)
        self._write_columns(merge, table.filter(known), f"writing {label} nodes", size)

    def _write_knowledge(self, pair: tuple[str, str], table: pa.Table, stored: dict[str, NodeIds]) -> None:
        """The knowledge edges from ``pair[0]`` to ``pair[1]`` nodes: typed by their relation (see
        :func:`neo4j_type`), in one query for all types where the server takes the type as an
        expression (one plan per label pair, not per type), else one query per type."""
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
        transaction runs on one server thread). ML-100K's interactions on the 2-core test server:
        1.26 s in one stream, 0.84 s in two (medians of 3). The server may detect a deadlock
        between them, fail one transaction and the driver retry it (as a ``MERGE``): with the
        threads split by source, two of nine ML-100K publishes of one benchmark run met one; with
        two threads that touched no common node (sources and targets split into blocks, written
        in rounds) two of 14, on a relationship lock taken at commit. The retry waits
        ``retry_delay``, not the driver's default 1 s."""
        if table.num_rows == 0:
            return
        table = _by_target(table)
        cols = {"from": stored[head].element_ids(table.column("from")),
                "to": stored[tail].element_ids(table.column("to"))}
        props = [c for c in table.column_names
                 if c not in ("from", "to", "type") and table.column(c).null_count < table.num_rows]
        per_row = ["type"] if rel is None else []
        table = pa.table({**cols, **{c: table.column(c) for c in per_row + props}})
        rel_type = "$($type[k])" if rel is None else _safe(rel)
        values = " {" + ", ".join(f"{p}: ${p}[k]" for p in props) + "}" if props else ""
        match = (f"{GROUPED_EDGES} MATCH (t:{_safe(tail)}) WHERE elementId(t) = $group[g] "
                 "UNWIND range($start[g], $start[g + 1] - 1) AS k "
                 f"MATCH (h:{_safe(head)}) WHERE elementId(h) = $from[k] ")
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

    def _replace_model_edges(self, rel: str, model_id: str, groups: list[tuple[str, str, pa.Table]],
                             what: str, then: tuple[str, ...] = ()) -> None:
        """Delete ``rel`` edges of ``model_id`` and write ``groups`` [(create, merge, table)], then
        run the statements ``then`` (with ``$model``): in one transaction up to ``atomic_rows``
        rows, else in batches after a batched delete and ``then`` in a transaction of its own.

        The edges are ``CREATE``d, never ``MERGE``d, in a first attempt: the model has no ``rel``
        edges left by then and the tables hold no duplicates. A ``MERGE`` on ``{model: ...}`` may be
        planned as a seek of the relationship index on ``model`` followed by a scan of every edge of
        the model (the plan depends on the statistics when it is first cached): quadratic, minutes
        for 20k recommendations. Only a batch that the driver retries outside a transaction that
        also deleted runs ``merge`` (its first attempt may have committed)."""
        delete = f"MATCH ()-[r:{_safe(rel)}]->() WHERE r.model = $model DELETE r"
        total = sum(t.num_rows for _, _, t in groups)
        if total <= self.atomic_rows:  # a retry re-runs the delete too, so CREATE stays exact
            def work(tx: Any) -> None:
                tx.run(delete, model=model_id).consume()
                for create, _, table in groups:
                    for start in range(0, table.num_rows, self.batch_size):
                        part = table.slice(start, self.batch_size)
                        tx.run(create, column_params(part)).consume()
                _run_each(tx, then, model_id)
            self._run_write(work, what)
            return
        self._delete_all(f"MATCH ()-[r:{_safe(rel)}]->() WHERE r.model = $model", what, model=model_id)
        for create, merge, table in groups:
            self._write_columns(create, table, what, retry_cypher=merge)
        if then:
            self._run_write(lambda tx: _run_each(tx, then, model_id), what)

    def write_recommendations(self, df: pd.DataFrame, model_id: str) -> int:
        self._check_writable()
        table = recommendation_table(df, model_id)
        with self._lock:
            self._check_open()
            self._ensure_schema()
            check_known_ids(table.column("from"), self._ids("User"), "user", "write_recommendations", self.uri)
            check_known_ids(table.column("to"), self._ids("Item"), "item", "write_recommendations", self.uri)
            match = f"{ROWS} MATCH (u:User {{id: $from[k]}}) MATCH (i:Item {{id: $to[k]}}) "
            create = f"{match}CREATE (u)-[:RECOMMENDED {{model: $model[k], score: $score[k], rank: $rank[k]}}]->(i)"
            merge = (f"{match}MERGE (u)-[r:RECOMMENDED {{model: $model[k]}}]->(i) "
                     "SET r.score = $score[k], r.rank = $rank[k]")
            self._replace_model_edges("RECOMMENDED", model_id, [(create, merge, table)],
                                      f"writing recommendations of model '{model_id}'", then=MODEL_SUMMARY)
            self._refresh_plans()
        return table.num_rows

    def write_explanations(self, df: pd.DataFrame, model_id: str) -> int:
        self._check_writable()
        table = explanation_table(df, model_id)
        with self._lock:
            self._check_open()
            self._ensure_schema()
            check_known_ids(table.column("from"), self._ids("User"), "user", "write_explanations", self.uri)
            check_known_ids(table.column("item"), self._ids("Item"), "item", "write_explanations", self.uri)
            labels = table.column("to_label").to_numpy(zero_copy_only=False)
            groups = []
            for label in explains_targets():
                part = table.filter(pa.array(labels == label)).drop(["to_label"])
                if not part.num_rows:
                    continue
                check_known_ids(part.column("to"), self._ids(label), LABEL_TO_TYPE[label],
                                "write_explanations (path nodes)", self.uri)
                match = f"{ROWS} MATCH (u:User {{id: $from[k]}}) MATCH (n:{_safe(label)} {{id: $to[k]}}) "
                key = "model: $model[k], item: $item[k], path: $path[k]"
                groups.append((f"{match}CREATE (u)-[:EXPLAINS {{{key}, weight: $weight[k], rank: $rank[k]}}]->(n)",
                               f"{match}MERGE (u)-[x:EXPLAINS {{{key}}}]->(n) SET x.weight = $weight[k], x.rank = $rank[k]",
                               part))
            self._replace_model_edges("EXPLAINS", model_id, groups, f"writing explanations of model '{model_id}'")
            self._refresh_plans()
        return table.num_rows

    # ---------------------------------------------------------------- reading
    def read_graph(self) -> KnowledgeGraph:
        with self._lock:
            self._check_open()

            def work(tx: Any) -> tuple[dict[str, pa.Table], pd.DataFrame, pd.DataFrame]:
                nodes = {}
                for nt, (label, _, _) in NODE_TABLES.items():
                    kind = "n.kind AS kind, " if nt == "entity" else ""
                    res = tx.run(f"MATCH (n:{_safe(label)}) RETURN n.id AS id, {kind}n.name AS name, n.text AS text, "
                                 "n.embedding AS embedding")
                    cols = list(zip(*res.values())) or [[] for _ in res.keys()]
                    data = dict(zip(res.keys(), cols))
                    nodes[label] = pa.table({k: (pa.array(list(v), type=EMBEDDING_TYPE) if k == "embedding"
                                                 else pa.array(list(v), type=pa.string())) for k, v in data.items()})
                res = tx.run("MATCH (u:User)-[r:INTERACTED]->(i:Item) RETURN u.id AS user_id, i.id AS item_id, "
                             "r.rating AS rating, r.weight AS weight, r.timestamp AS timestamp")
                inter = frame_from_records(list(res.keys()), res.values())
                parts = []
                for head, tail in knowledge_pairs():
                    res = tx.run(f"MATCH (h:{_safe(head)})-[r]->(t:{_safe(tail)}) WHERE r.relation IS NOT NULL AND "
                                 "NOT type(r) IN $reserved RETURN h.id AS head, r.relation AS relation, t.id AS tail",
                                 reserved=list(RESERVED_TYPES))
                    df = frame_from_records(list(res.keys()), res.values())
                    if len(df):
                        parts.append(df.assign(head_type=LABEL_TO_TYPE[head], tail_type=LABEL_TO_TYPE[tail]))
                triples = (pd.concat(parts, ignore_index=True) if parts else
                           pd.DataFrame(columns=["head_type", "head", "relation", "tail_type", "tail"]))
                return nodes, inter, triples

            nodes, inter, triples = self._run_read(work, "reading the graph")
        return assemble_graph(nodes, inter, triples, name=self.uri)

    def query(self, cypher: str, **params: Any) -> pd.DataFrame:
        with self._lock:
            self._check_open()

            def work(tx: Any) -> pd.DataFrame:
                res = tx.run(cypher, params)
                keys = list(res.keys())
                return frame_from_records(keys, [[_plain(v) for v in row] for row in res.values()])

            return self._run_read(work, "query", managed=False, quiet=False)

    def counts(self) -> dict[str, int]:
        with self._lock:
            self._check_open()
            types = self._knowledge_types()

            def work(tx: Any) -> dict[str, int]:
                one = lambda q, **p: int(tx.run(q, p).single()[0])  # noqa: E731
                out = {"users": one("MATCH (n:User) RETURN count(n)"),
                       "items": one("MATCH (n:Item) RETURN count(n)"),
                       "entities": one("MATCH (n:Entity) RETURN count(n)"),
                       "interactions": one("MATCH ()-[r:INTERACTED]->() RETURN count(r)"),
                       "knowledge_edges": sum(one(f"MATCH ()-[r:{t}]->() WHERE r.relation IS NOT NULL RETURN count(r)")
                                              for t in types),
                       "recommendations": one("MATCH ()-[r:RECOMMENDED]->() RETURN count(r)"),
                       "explanations": one("MATCH ()-[r:EXPLAINS]->() RETURN count(r)")}
                return out

            return self._run_read(work, "counting")


__all__ = ["Neo4jStore", "neo4j_type"]
