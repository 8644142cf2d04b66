"""The embedded graph store: one ``ladybug`` database file (the maintained fork of Kùzu).

- One file plus its write-ahead log (``kgrec.db``, ``kgrec.db.wal``); a committed write survives
  ``kill -9`` and a killed write leaves the store as it was before that write began.
- One writer: a writable store holds the lock file ``kgrec.db.writer``
  (:class:`~kgrec.store.writer_lock.WriterLock`) from open to close, swaps included; a second
  writer, in this or another process, waits ``timeout`` seconds, then gets ``StoreError:
  kgrec.db is locked by process N on host H``. The lock dies with its process (``kill -9``
  too), so the next writer takes it over without a repair step. Readers open with
  ``read_only=True`` and take no lock; while a writer holds the store, a reader whose open
  meets a swap or a checkpoint tries again for up to 10 s.
- Bulk writes go through Arrow tables (``COPY ... FROM $table``), never row by row.
- Every write builds a complete new database file beside the store, closes it (a full
  checkpoint), syncs it and atomically renames it over the store: a kill at any moment leaves the
  old contents or the new ones, never a mix, and a reader sees one or the other.
  ``publish_model`` writes the graph and one model's recommendations and explanations into one
  such file (the other models' results kept between the nodes that remain); ``write_graph``
  writes the graph with every kept result; ``write_recommendations`` / ``write_explanations``
  copy the store file and replace one model's edges in the copy. (Replacing tables in place is
  not safe: ladybug 0.22 loses the committed tables when killed during the checkpoint that
  follows such a transaction; tests/test_store_faults.py and tests/test_store_publication.py
  kill writes at random moments.)
- Readers that opened the store with ``read_only=True`` keep the graph they opened until they
  reopen it.
- ``query`` runs each statement as a prepared statement (one statement only) inside a
  ``BEGIN TRANSACTION READ ONLY`` transaction: the engine refuses writes there. Reads of files,
  copies out, extensions, attached databases and settings are not writes to ladybug: before a
  statement is first prepared, :mod:`kgrec.store.cypher_guard` refuses it by its text and by the
  plan ladybug's ``EXPLAIN`` gives for it (docs/security.md, "Read-only inspection"). The store keeps
  the last 64 statements prepared, so a query run again with other parameters is not planned again
  (a final ``LIMIT $n`` is prepared per value of ``n``: see :func:`literal_final_limit`).
"""

from __future__ import annotations

import os
import re
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Mapping

import pandas as pd
import pyarrow as pa

from ..errors import ReadOnlyQueryError, StoreError
from .cypher_guard import check_read_only, ladybug_plan_refusal
from ..graph_schema import ladybug_ddl
from ..knowledge_graph import KnowledgeGraph
from .base import LABEL_TO_TYPE, MODEL_SUMMARY, NODE_TABLES, RECOMMENDED_MODELS, GraphStore, knowledge_pairs
from .embedded_writes import EmbeddedWrites
from .ladybug_files import ladybug_module, lock_holder
from .tables import assemble_graph
from .writer_lock import WriterLock, writer_active

#: graph tables, in the order they can be dropped (relationship tables first)
GRAPH_TABLES = ("RECOMMENDS", "EXPLAINS", "RECOMMENDED", "RELATED", "INTERACTED", "Model", "Entity", "Item", "User")
DEFAULT_BUFFER_POOL = 2 * 1024**3
READ_RETRY_S = 10.0  # how long a read-only open retries while a writer swaps or checkpoints the file
PREPARED_CACHE_SIZE = 64  # query() statements kept prepared per store (planning time: docs/results.md)
#: what ladybug says when it refuses a write in a read-only transaction / database
_WRITE_REFUSED = ("write query inside a read-only transaction", "write operations in a read-only database")
_EXPLAINED = re.compile(r"^\s*(EXPLAIN|PROFILE)\b", re.IGNORECASE)

#: a statement's last clause, ``LIMIT $name`` (``;`` and blanks after it allowed)
_FINAL_LIMIT = re.compile(r"\bLIMIT\s+\$([A-Za-z_][A-Za-z0-9_]*)\s*;?\s*$", re.IGNORECASE)

_open_paths: dict[str, int] = {}  # resolved path -> id() of the store holding it for writing, this process
_open_paths_lock = threading.Lock()


def literal_final_limit(cypher: str, params: Mapping[str, Any]) -> str:
    """``cypher`` with a final ``LIMIT $name`` written as ``LIMIT <n>`` when ``params[name]`` is
    an ``int`` (not a ``bool``) >= 0; else ``cypher`` unchanged (ladybug then checks the value).

    ladybug plans a statement whose ``LIMIT`` is a parameter again at every execution (its fix
    for stale limits in cached plans, LadybugDB/ladybug#986); a literal keeps the prepared plan
    (the difference is measured in docs/results.md). Only a validated integer is ever written
    into the text; every other value stays a parameter."""
    match = _FINAL_LIMIT.search(cypher)
    if match is None:
        return cypher
    value = params.get(match[1])
    if type(value) is not int or value < 0:
        return cypher
    return f"{cypher[:match.start()]}LIMIT {value}"


class EmbeddedStore(EmbeddedWrites, GraphStore):
    """A graph store in one ladybug database file. See the module docstring for guarantees.

    ``timeout``: seconds to wait for another writer to release the file before raising
    (default 0: fail at once). ``buffer_pool_size``: bytes of page cache (default 2 GiB).
    """

    def __init__(self, path: str | os.PathLike, *, read_only: bool = False, timeout: float | None = None,
                 buffer_pool_size: int = DEFAULT_BUFFER_POOL, max_num_threads: int = 0) -> None:
        self.uri = os.fspath(path)
        self.path = Path(path).expanduser()
        self.read_only = read_only
        self._lock = threading.RLock()
        self._db: Any = None
        self._conn: Any = None
        self._prepared: OrderedDict[str, Any] = OrderedDict()  # query() text -> prepared statement
        self._key = str(self.path.resolve())
        self._options = {"buffer_pool_size": buffer_pool_size, "max_num_threads": max_num_threads}
        if self.path.is_dir():
            raise StoreError(f"{self.uri} is a directory; an embedded store is one file. "
                             "Fix: pass a file path such as kgrec.db")
        if read_only and not self.path.exists():
            raise StoreError(f"{self.uri}: no store there to read. Fix: check the path, or publish first "
                             "(kgrec publish / store.write_graph)")
        if not self.path.parent.exists():
            raise StoreError(f"{self.uri}: folder {self.path.parent} does not exist. Fix: create it first")
        lb = ladybug_module()
        self._writer = WriterLock(self.path, self.uri)
        if not read_only:
            self._claim_in_process()
        try:
            if not read_only:
                self._writer.acquire(timeout or 0.0)
            # A reader may meet the store while a writer swaps a new file in or checkpoints;
            # while a writer holds the store it tries again for up to READ_RETRY_S (or the timeout).
            deadline = time.monotonic() + max(timeout or 0.0, READ_RETRY_S if read_only else 0.0)
            while True:
                try:
                    self._db = lb.Database(str(self.path), read_only=read_only, **self._options)
                    break
                except RuntimeError as exc:
                    msg = str(exc)
                    retry = writer_active(self.path) if read_only else "lock" in msg.lower()
                    if retry and time.monotonic() < deadline:
                        time.sleep(0.05)
                        continue
                    raise self._open_error(msg) from None
            self._conn = lb.Connection(self._db)
            if not read_only:
                self._remove_stale_builds()
                self._create_schema()
        except BaseException:
            self._release()
            raise

    def _create_schema(self) -> None:
        existing = set(self._fetch("CALL show_tables() RETURN name").column("name").to_pylist())
        if existing.issuperset(GRAPH_TABLES):
            return
        with self._transaction():
            for stmt in ladybug_ddl():
                self._exec(stmt)
            if "RECOMMENDED" in existing and "Model" not in existing:  # written before model summaries
                self._summarize(self._fetch(RECOMMENDED_MODELS).column("model").to_pylist())
        self._exec("CHECKPOINT")  # never leave schema changes in the WAL for a later COPY to share

    def _summarize(self, models: list[str]) -> None:
        """Rebuild the summaries of ``models`` (:data:`MODEL_SUMMARY`), in the caller's transaction."""
        for model in models:
            for stmt in MODEL_SUMMARY:
                self._exec(stmt, {"model": model})

    # ---------------------------------------------------------------- opening and closing
    def _claim_in_process(self) -> None:
        # ladybug's file lock is per process: a second writer in this process would not be stopped by it
        with _open_paths_lock:
            if self._key in _open_paths:
                raise StoreError(f"{self.uri} is locked by process {os.getpid()} (this process: another store "
                                 "object has it open for writing). Fix: close that store first, or open this one "
                                 "with read_only=True")
            _open_paths[self._key] = id(self)

    def _open_error(self, msg: str) -> StoreError:
        if "lock" in msg.lower():
            pid = lock_holder(self.path, msg)
            who = f"process {pid}" if pid is not None else "another process"
            return StoreError(f"{self.uri} is locked by {who} (ladybug allows one writer per file). Fix: close "
                              f"the store in {who} (store.close() / let it finish), or open with read_only=True "
                              "to read while it writes")
        return StoreError(f"{self.uri} cannot be opened as a kgrec embedded store: {msg.splitlines()[0]}. "
                          "Fix: pass a new file name, or the path of a store that kgrec (ladybug "
                          f"{ladybug_module().__version__}) wrote")

    def _close_handles(self) -> None:
        self._prepared.clear()  # statements belong to the connection
        for obj in (self._conn, self._db):
            if obj is not None:
                try:
                    obj.close()
                except Exception:  # closing twice or after a failed open
                    pass
        self._conn = self._db = None

    def _release(self) -> None:
        self._close_handles()
        self._writer.release()
        if not self.read_only:
            with _open_paths_lock:
                if _open_paths.get(self._key) == id(self):
                    del _open_paths[self._key]

    def close(self) -> None:
        with self._lock:
            self._release()

    @property
    def closed(self) -> bool:
        return self._conn is None

    def _check_open(self) -> None:
        if self._conn is None:
            raise StoreError(f"{self.uri}: the store is closed. Fix: open it again with kgrec.open_store")

    # ---------------------------------------------------------------- low level
    def _exec(self, cypher: str, params: Mapping[str, Any] | None = None) -> Any:
        return self._conn.execute(cypher, dict(params or {}))

    def _fetch(self, cypher: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        return self._exec(cypher, params).get_as_arrow(-1)

    @contextmanager
    def _transaction(self, read_only: bool = False) -> Iterator[None]:
        self._exec("BEGIN TRANSACTION READ ONLY" if read_only else "BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            try:
                self._exec("ROLLBACK")
            except RuntimeError:  # ladybug already rolled back after the failing statement
                pass
            raise
        self._exec("COMMIT")

    def _copy(self, table: str, data: pa.Table, pair: tuple[str, str] | None = None) -> None:
        if data.num_rows == 0:
            return
        opts = f" (from='{pair[0]}', to='{pair[1]}')" if pair else ""
        self._exec(f"COPY {table} FROM $data{opts}", {"data": data})

    def _ids(self, label: str) -> set[str]:
        return set(self._fetch(f"MATCH (n:{label}) RETURN n.id AS id").column("id").to_pylist())

    # ---------------------------------------------------------------- reading
    def read_graph(self) -> KnowledgeGraph:
        with self._lock:
            self._check_open()
            with self._transaction(read_only=True):
                nodes = {}
                for nt, (label, _, _) in NODE_TABLES.items():
                    kind = "n.kind AS kind, " if nt == "entity" else ""
                    nodes[label] = self._fetch(f"MATCH (n:{label}) RETURN n.id AS id, {kind}n.name AS name, "
                                               "n.text AS text, n.embedding AS embedding")
                inter = self._fetch("MATCH (u:User)-[r:INTERACTED]->(i:Item) RETURN u.id AS user_id, i.id AS item_id, "
                                    "r.rating AS rating, r.weight AS weight, r.timestamp AS timestamp").to_pandas()
                parts = []
                for head, tail in knowledge_pairs():
                    t = self._fetch(f"MATCH (h:{head})-[r:RELATED]->(t:{tail}) "
                                    "RETURN h.id AS head, r.relation AS relation, t.id AS tail").to_pandas()
                    if len(t):
                        parts.append(t.assign(head_type=LABEL_TO_TYPE[head], tail_type=LABEL_TO_TYPE[tail]))
        triples = pd.concat(parts, ignore_index=True) if parts else None
        if triples is None:
            triples = pd.DataFrame(columns=["head_type", "head", "relation", "tail_type", "tail"])
        return assemble_graph(nodes, inter, triples, name=self.path.name)

    def query(self, cypher: str, **params: Any) -> pd.DataFrame:
        check_read_only(cypher, "ladybug", self.uri)
        with self._lock:
            self._check_open()
            self._exec("BEGIN TRANSACTION READ ONLY")
            try:
                result = self._conn.execute(self._statement(literal_final_limit(cypher, params), params), params)
                df = result.get_as_df()
            except RuntimeError as exc:
                msg = str(exc)
                if any(text in msg for text in _WRITE_REFUSED):
                    raise ReadOnlyQueryError(f"{self.uri}: query() is read-only and the store refused a write "
                                             f"({msg}). Fix: write through write_graph / write_recommendations, "
                                             "or inspect with MATCH ... RETURN") from None
                raise StoreError(f"{self.uri}: query failed: {msg}") from None
            finally:
                try:
                    self._exec("COMMIT")  # ends the read-only transaction (it wrote nothing)
                except RuntimeError:  # the statement ended it (a COMMIT/ROLLBACK statement, or an error)
                    pass
        return df

    def _statement(self, cypher: str, params: Mapping[str, Any]) -> Any:
        """``cypher`` prepared (planned) once per connection; ladybug binds the parameters again
        on each execution, whatever their types. A statement that failed to prepare is not kept
        (executing it raises its error). Before it is first prepared, the plan of ``cypher`` is
        checked (:meth:`_check_plan`)."""
        prepared = self._prepared.get(cypher)
        if prepared is not None:
            self._prepared.move_to_end(cypher)
            return prepared
        checked = self._check_plan(cypher, params)
        prepared = self._prepare(cypher, params)
        if prepared.is_success() and not checked:
            raise ReadOnlyQueryError(f"{self.uri}: query() is read-only and refuses a statement whose plan ladybug "
                                     "does not show (EXPLAIN fails on it). Fix: inspect with MATCH ... RETURN")
        if prepared.is_success():
            self._prepared[cypher] = prepared
            if len(self._prepared) > PREPARED_CACHE_SIZE:
                self._prepared.popitem(last=False)
        return prepared

    def _prepare(self, cypher: str, params: Mapping[str, Any]) -> Any:
        with warnings.catch_warnings():
            # ladybug deprecates prepare(); it is the documented way to refuse several statements
            warnings.simplefilter("ignore", DeprecationWarning)
            return self._conn.prepare(cypher, dict(params))

    def _check_plan(self, cypher: str, params: Mapping[str, Any]) -> bool:
        """Raise :class:`ReadOnlyQueryError` when the physical plan of ``cypher`` (``EXPLAIN``,
        one prepared statement: nothing runs) does anything but read (:func:`ladybug_plan_refusal`).
        False when ladybug cannot plan it (the caller refuses it unless it fails to prepare too)."""
        explained = self._prepare("EXPLAIN " + _EXPLAINED.sub("", cypher, count=1), params)
        if not explained.is_success():
            return False
        plan = self._conn.execute(explained, dict(params)).get_next()[0]
        refused = ladybug_plan_refusal(str(plan))
        if refused is not None:
            raise ReadOnlyQueryError(f"{self.uri}: query() is read-only and refuses {refused}. Fix: inspect with "
                                     "MATCH ... RETURN (see docs/security.md, 'Read-only inspection')")
        return True

    def counts(self) -> dict[str, int]:
        with self._lock:
            self._check_open()
            out: dict[str, int] = {}
            with self._transaction(read_only=True):
                for key, q in (("users", "MATCH (n:User) RETURN count(n)"),
                               ("items", "MATCH (n:Item) RETURN count(n)"),
                               ("entities", "MATCH (n:Entity) RETURN count(n)"),
                               ("interactions", "MATCH ()-[r:INTERACTED]->() RETURN count(r)"),
                               ("knowledge_edges", "MATCH ()-[r:RELATED]->() RETURN count(r)"),
                               ("recommendations", "MATCH ()-[r:RECOMMENDED]->() RETURN count(r)"),
                               ("explanations", "MATCH ()-[r:EXPLAINS]->() RETURN count(r)")):
                    out[key] = int(self._exec(q).get_next()[0])
        return out
