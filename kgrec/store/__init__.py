"""Graph stores: where the graph, its embeddings and published recommendations live between runs.

    store = kgrec.open_store("kgrec.db")                 # embedded ladybug file (default)
    store = kgrec.open_store("bolt://host:7687")         # Neo4j 5 through the official driver

Both implement :class:`GraphStore`: ``write_graph``, ``read_graph``, ``write_recommendations``,
``write_explanations``, ``query`` (read-only Cypher -> DataFrame), ``counts``, ``close``.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import StoreError
from .base import GraphStore

NEO4J_SCHEMES = ("bolt", "bolt+s", "bolt+ssc", "neo4j", "neo4j+s", "neo4j+ssc")
DEFAULT_PATH = "kgrec.db"

__all__ = ["GraphStore", "open_store", "NEO4J_SCHEMES"]


def open_store(uri: str | os.PathLike = DEFAULT_PATH, *, user: str | None = None, password: str | None = None,
               database: str | None = None, timeout: float | None = None, read_only: bool = False,
               **options: Any) -> GraphStore:
    """Open a graph store.

    ``uri``
        a file path (default ``kgrec.db``) -> the embedded ladybug store, created when missing;
        ``bolt://``, ``neo4j://`` (and their ``+s`` / ``+ssc`` variants) -> a Neo4j server.
    ``user`` / ``password``
        Neo4j credentials; default ``NEO4J_USER`` / ``NEO4J_PASSWORD`` from the environment, and
        for a ``read_only`` store ``NEO4J_READ_USER`` / ``NEO4J_READ_PASSWORD`` when either is set
        (inspection's own read-only account: docs/security.md). Without any, no authentication is
        sent (a server with auth off accepts that).
    ``database``
        the Neo4j database (default: the server's default database).
    ``timeout``
        seconds. Neo4j: the bound on connecting (default 5). Embedded: how long to wait for
        another writer to release the file (default 0: fail at once with ``locked by process N``).
    ``read_only``
        open for reading only; every write method raises :class:`StoreError`. For the embedded
        store this does not take the writer's lock, so it can be opened beside a writer.
    ``options``
        passed to the store class (:class:`~kgrec.store.embedded.EmbeddedStore`:
        ``buffer_pool_size``, ``max_num_threads``; :class:`~kgrec.store.neo4j_store.Neo4jStore`:
        ``batch_size``, ``max_retry_time``, ``retry_delay``, ``atomic_rows``, ``parallel_writes``).

    Raises :class:`StoreError` naming the file or URI when the store cannot be opened.
    """
    text = os.fspath(uri)
    if not isinstance(text, str) or not text:
        raise StoreError(f"open_store: {uri!r} is not a store location. Fix: pass a file path such as "
                         "kgrec.db or a bolt:// / neo4j:// URI")
    scheme = text.split("://", 1)[0].lower() if "://" in text else ""
    if scheme in NEO4J_SCHEMES:
        from .neo4j_store import Neo4jStore
        return Neo4jStore(text, user=user, password=password, database=database, timeout=timeout,
                          read_only=read_only, **options)
    if scheme and scheme != "file":
        raise StoreError(f"open_store: '{text}' has the unsupported scheme '{scheme}://'. Fix: use a file path "
                         f"for the embedded store or one of {', '.join(s + '://' for s in NEO4J_SCHEMES)}")
    if user is not None or password is not None or database is not None:
        raise StoreError(f"open_store: user / password / database are Neo4j settings, but '{text}' is a file "
                         "(embedded store). Fix: drop them, or pass a bolt:// URI")
    from .embedded import EmbeddedStore
    path = text[len("file://"):] if scheme == "file" else text
    return EmbeddedStore(path, read_only=read_only, timeout=timeout, **options)
