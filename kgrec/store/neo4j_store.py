"""The Neo4j graph store (Neo4j 5, through the official ``neo4j`` driver over Bolt).

- Schema first: the uniqueness constraints and indexes of :func:`kgrec.graph_schema.neo4j_ddl`.
- Writes are ``UNWIND`` batches (``batch_size`` rows, fewer when rows carry embeddings; each
  column of a batch is one list parameter, which the Python driver packs faster than a list of
  row maps: measured in docs/results.md), each its own transaction run by the driver's retrying
  ``execute_write``.
  ``write_graph`` ``CREATE``s the nodes whose ``id`` the store lacks and ``MERGE``s the others;
  it removes the graph's edges first, then ``CREATE``s them between nodes found by element id
  (read once per label after the nodes are written: cheaper for the server than two ``id``
  index seeks per edge). A batch that the driver retries (its first attempt may have committed
  before the connection dropped) runs as ``MERGE``, so nothing is ever duplicated. Up to
  ``parallel_writes`` transactions (2 by default) run at once: the node labels, the
  interaction edges (each thread its own users), the knowledge edges of each node-label pair.
  Concurrent writes can deadlock on the server (see :meth:`Neo4jStore._write_edges`); the
  driver retries the failed batch after ``retry_delay`` (0.1 s; the driver's default is 1 s).
- The driver packs parameters in pure Python (slowly enough that 384-d embeddings cost more on
  the client than on the server: measured in docs/results.md) unless the ``neo4j-rust-ext``
  package is installed, which it then uses by itself.
- Knowledge edges get the relation's name as their type (``HAS_GENRE``;
  :func:`kgrec.graph_schema.relation_type`, only ``[A-Z0-9_]``; a name that would collide with
  ``INTERACTED`` / ``RECOMMENDED`` / ``EXPLAINS`` / ``RECOMMENDS`` becomes ``RELATED``) *and* a ``relation``
  property, so ``MATCH (i:Item)-[r]->(e:Entity) RETURN r.relation`` reads the same on both stores.
- ``write_graph`` is idempotent but, unlike the embedded store, not atomic: a graph is too big
  for one transaction. An interrupted write (server stopped, connection lost) leaves part of the
  new graph; running ``write_graph`` again completes it exactly (it first removes the graph's
  edges, then writes nodes, removes nodes the graph lacks and creates edges).
  ``publish_model`` writes the graph so, then switches the model's recommendations and
  explanations at once; ``write_recommendations`` / ``write_explanations`` switch one of the two.
  A switch is one transaction up to ``atomic_rows`` rows (200k by default); above that the new
  edges are written in batches under a staging model name, then one transaction replaces the old
  edges with them (:meth:`Neo4jStore._replace_model`): queries on the model see the old results
  or the new ones, and an interrupted publish leaves the old ones, cleaned up by the next. The
  model's summary (``Model`` node, ``RECOMMENDS`` edges) is rebuilt in the switching
  transaction; ``write_graph`` rebuilds the summaries of models that lost recommendations.
  Neo4j has no writer lock: two publishers of the same model to one server serialise on the
  server's locks, and the last switch wins.
- ``query`` runs as one auto-commit query in a session with ``default_access_mode=READ`` (one
  round trip; a managed transaction took two, and longer per query: measured in docs/results.md):
  the server itself refuses writes (``Neo.ClientError.Statement.AccessMode``). It is not retried.
  What READ mode lets through (``LOAD CSV``, procedures, ``TERMINATE TRANSACTIONS``, ``SHOW``)
  :func:`kgrec.store.cypher_guard.check_read_only` refuses first; a store opened ``read_only``
  logs in as ``NEO4J_READ_USER`` when that is set (:func:`credentials`). The server settings a
  team should add are in docs/security.md ("Read-only inspection").
- Every value is a ``$parameter``; only labels and relationship types from the schema (or
  ``relation_type``'s sanitised names) are ever part of the Cypher text.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any, Mapping

import pandas as pd
import pyarrow as pa

from ..errors import ReadOnlyQueryError, StoreError
from .cypher_guard import check_read_only
from ..knowledge_graph import KnowledgeGraph
from .base import LABEL_TO_TYPE, NODE_TABLES, RESERVED_TYPES, GraphStore, knowledge_pairs
from .neo4j_params import SAFE_NAME, NodeIds, plain, safe, supports_dynamic_types
from .neo4j_writes import Neo4jWrites
from .tables import EMBEDDING_TYPE, assemble_graph, frame_from_records

DEFAULT_TIMEOUT = 5.0
DEFAULT_BATCH = 10_000
DEFAULT_RETRY_DELAY = 0.1  # seconds before a failed write is first retried (a deadlock is over at once)
# a write's transaction ended by the server (terminated, e.g. at shutdown), not refused for its content
INTERRUPTED = ("Neo.ClientError.Transaction.Terminated", "Neo.ClientError.Transaction.LockClientStopped")
RERUN = "run the same write again (writes are idempotent)"


def credentials(user: str | None, password: str | None, read_only: bool,
                env: Mapping[str, str] = os.environ) -> tuple[str | None, str | None]:
    """The user and password a store logs in with: the ones passed; else, for a ``read_only``
    store, ``NEO4J_READ_USER`` / ``NEO4J_READ_PASSWORD`` when either is set (inspection's own
    read-only account); else ``NEO4J_USER`` / ``NEO4J_PASSWORD``; else none (no authentication)."""
    if user is not None or password is not None:
        return user, password
    if read_only and ("NEO4J_READ_USER" in env or "NEO4J_READ_PASSWORD" in env):
        return env.get("NEO4J_READ_USER"), env.get("NEO4J_READ_PASSWORD")
    return env.get("NEO4J_USER"), env.get("NEO4J_PASSWORD")


def _neo4j() -> Any:
    try:
        import neo4j
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise StoreError("the Neo4j store needs the 'neo4j' driver: pip install neo4j") from exc
    return neo4j


class Neo4jStore(Neo4jWrites, GraphStore):
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
        user, password = credentials(user, password, read_only)
        #: the user name the store logged in as (None: no authentication sent)
        self.user = None if user is None and password is None else (user or "neo4j")
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
            env = "NEO4J_READ_USER / NEO4J_READ_PASSWORD" if read_only else "NEO4J_USER / NEO4J_PASSWORD"
            raise StoreError(f"{uri}: Neo4j refused the credentials of user '{self.user}' ({exc.message}). Fix: "
                             f"pass user= and password= or set {env}") from None
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

    def _refresh_plans(self) -> None:
        """After a bulk write: schedule the resampling of indexes the write made outdated and drop
        the cached query plans, so that the next query is planned on the data as it is now.
        Neo4j replans a cached query only when the statistics it was planned on drift by a
        decaying threshold, at most every 10 s; a plan cached while the database held other data
        (an earlier graph, a test graph) can meanwhile be far slower (measured in docs/results.md).
        Both procedures are admin-only: for a user without the privilege this does nothing and
        plans refresh on Neo4j's own schedule."""
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
        return [t for t in types if t not in RESERVED_TYPES and SAFE_NAME.match(t)]

    def _node_ids(self, label: str) -> NodeIds:
        """The stored ``label`` nodes' ids and element ids, in one record (two lists): decoding one
        record per node costs the Python driver more than the server takes to answer."""
        cypher = f"MATCH (n:{safe(label)}) RETURN collect(n.id) AS ids, collect(elementId(n)) AS eids"
        ids, eids = self._run_read(lambda tx: tuple(tx.run(cypher).single()), f"reading {label} ids")
        return NodeIds(pa.array(ids, pa.string()), pa.array(eids, pa.string()))

    def _ids(self, label: str) -> set[str]:
        return set(self._node_ids(label).ids.to_pylist())

    # ---------------------------------------------------------------- reading
    def read_graph(self) -> KnowledgeGraph:
        with self._lock:
            self._check_open()

            def work(tx: Any) -> tuple[dict[str, pa.Table], pd.DataFrame, pd.DataFrame]:
                nodes = {}
                for nt, (label, _, _) in NODE_TABLES.items():
                    kind = "n.kind AS kind, " if nt == "entity" else ""
                    res = tx.run(f"MATCH (n:{safe(label)}) RETURN n.id AS id, {kind}n.name AS name, n.text AS text, "
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
                    res = tx.run(f"MATCH (h:{safe(head)})-[r]->(t:{safe(tail)}) WHERE r.relation IS NOT NULL AND "
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
        check_read_only(cypher, "neo4j", self.uri)
        with self._lock:
            self._check_open()

            def work(tx: Any) -> pd.DataFrame:
                res = tx.run(cypher, params)
                keys = list(res.keys())
                return frame_from_records(keys, [[plain(v) for v in row] for row in res.values()])

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


__all__ = ["Neo4jStore"]
