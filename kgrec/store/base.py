"""The graph-store interface that the embedded store and Neo4j both implement.

A store holds one graph: the KnowledgeGraph's users, items and entities as ``User``/``Item``/
``Entity`` nodes (``id``, ``name``, ``text``, ``kind`` for entities, and the node's LM
``embedding``), interactions as ``INTERACTED`` edges (``rating``, ``weight``, ``timestamp``) and
knowledge triples as edges with a ``relation`` property (``RELATED`` in the embedded store; in
Neo4j the relation's name as the relationship type, see :func:`kgrec.graph_schema.relation_type`).
Published results sit beside it: ``RECOMMENDED`` edges (``score``, ``rank``, ``model``) and
``EXPLAINS`` edges (one per recommendation and node on an explanation path: ``model``, ``item``,
``path``, ``weight``, ``rank``). Each model with recommendations also has a summary, which the
store rebuilds from its ``RECOMMENDED`` edges whenever they change (:data:`MODEL_SUMMARY`): a
``Model`` node (``id``, ``recommendations``, ``users``, ``items``) with one ``RECOMMENDS`` edge
per recommended item (``users``, ``mean_score``, ``mean_rank``), so that "what does a model
recommend most" reads a few thousand summary edges instead of every recommendation.

This module holds the abstract interface and the data model that both stores share (node labels,
reserved relationship types, the model summary's Cypher) and the read-only query contract. The
conversion of a KnowledgeGraph into Arrow tables and back is in :mod:`kgrec.store.tables`; the
validation of published results (so both stores refuse the same input with the same message) is
in :mod:`kgrec.store.result_tables`.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from types import TracebackType
from typing import Any, Mapping

import pandas as pd

from ..errors import StoreError, UnknownUserWarning
from ..graph_schema import schema
from ..knowledge_graph import KnowledgeGraph

#: node type (as KnowledgeGraph names it) -> store label, KnowledgeGraph table, id column
NODE_TABLES: dict[str, tuple[str, str, str]] = {
    "user": ("User", "users", "user_id"),
    "item": ("Item", "items", "item_id"),
    "entity": ("Entity", "entities", "entity_id"),
}
LABEL_TO_TYPE = {label: nt for nt, (label, _, _) in NODE_TABLES.items()}
#: relationship types with a fixed meaning; a knowledge relation never takes one of these names
RESERVED_TYPES = ("INTERACTED", "RECOMMENDED", "EXPLAINS", "RECOMMENDS")

#: Cypher, run in this order with ``$model``, that rebuilds model ``$model``'s summary from its
#: ``RECOMMENDED`` edges: the ``Model`` node goes (with its ``RECOMMENDS`` edges); if the model
#: has recommendations, it comes back with their count, the users served and the distinct items,
#: and one ``RECOMMENDS`` edge per item: ``users`` = the number of users it is recommended to,
#: ``mean_score`` and ``mean_rank`` their means. Both stores run the same text.
MODEL_SUMMARY = (
    "MATCH (m:Model {id: $model}) DETACH DELETE m",
    "MATCH (u:User)-[r:RECOMMENDED]->(i:Item) WHERE r.model = $model "
    "WITH count(r) AS recommendations, count(DISTINCT u) AS users, count(DISTINCT i) AS items "
    "WHERE recommendations > 0 "
    "CREATE (:Model {id: $model, recommendations: recommendations, users: users, items: items})",
    "MATCH (m:Model {id: $model}) MATCH (:User)-[r:RECOMMENDED]->(i:Item) WHERE r.model = $model "
    "WITH m, i, count(r) AS users, avg(r.score) AS mean_score, avg(r.rank) AS mean_rank "
    "CREATE (m)-[:RECOMMENDS {users: users, mean_score: mean_score, mean_rank: mean_rank}]->(i)",
)
#: the models that have RECOMMENDED edges, read straight from the edges (column ``model``): what a
#: store written before model summaries is summarised from
RECOMMENDED_MODELS = "MATCH ()-[r:RECOMMENDED]->() RETURN DISTINCT r.model AS model"
#: what :meth:`GraphStore.forget_users` counts (keys of :meth:`GraphStore.counts`)
FORGET_COUNTS = ("users", "interactions", "knowledge_edges", "recommendations", "explanations")


def knowledge_pairs() -> list[tuple[str, str]]:
    """(head label, tail label) pairs a knowledge edge may join, from the graph schema."""
    spec = schema()["relationships"]["RELATED"]
    return [(a, b) for a in spec["from"] for b in spec["to"]]


def explains_targets() -> list[str]:
    """Labels an ``EXPLAINS`` edge may point at, from the graph schema."""
    return list(schema()["relationships"]["EXPLAINS"]["to"])


class GraphStore(ABC):
    """One graph and its published recommendations, behind Cypher.

    Open one with :func:`kgrec.open_store`. A store is a context manager; ``close()`` is
    idempotent. A store object is meant for one thread at a time.
    """

    #: where the store lives: the file path or the server URI
    uri: str
    #: opened for reading only: every write method raises StoreError
    read_only: bool
    #: held (re-entrantly) by every public method of a store; stores also give ``_check_open``
    _lock: Any

    # ---------------------------------------------------------------- writing
    @abstractmethod
    def write_graph(self, kg: KnowledgeGraph, features: Mapping[str, Any] | None = None) -> dict[str, int]:
        """Make the store hold ``kg``: its nodes with their properties and embeddings
        (``features``, node type -> [N, d] rows in table order; default ``kg.features``),
        interactions and knowledge edges. Nodes and edges not in ``kg`` are removed;
        recommendations and explanations between nodes that remain are kept, and the models'
        summaries (:data:`MODEL_SUMMARY`) count only those.

        Names and texts longer than :data:`~kgrec.store.tables.MAX_NAME_CHARS` /
        :data:`~kgrec.store.tables.MAX_TEXT_CHARS` characters are cut (ending in "…").

        Idempotent: writing the same graph twice leaves the same contents. Returns the
        number of nodes and edges written and of texts cut (``{"nodes": ..., "edges": ...,
        "texts_cut": ...}``)."""

    @abstractmethod
    def read_graph(self) -> KnowledgeGraph:
        """The stored graph as a KnowledgeGraph in canonical order (nodes by id, interactions
        by (user, item), triples by all columns), with ``features`` for every node type whose
        nodes carry embeddings (float32, exactly as written)."""

    @abstractmethod
    def write_recommendations(self, df: pd.DataFrame, model_id: str) -> int:
        """Replace model ``model_id``'s ``RECOMMENDED`` edges with ``df`` (columns ``user_id``,
        ``item_id``, ``score``, ``rank``) and rebuild its summary (:data:`MODEL_SUMMARY`; an
        empty ``df`` removes the model); other models' edges stay. Every user and item must be
        in the stored graph. Returns the number of edges written."""

    @abstractmethod
    def write_explanations(self, df: pd.DataFrame, model_id: str) -> int:
        """Replace model ``model_id``'s explanations with ``df``: one ``EXPLAINS`` edge from the
        user to each node on a recommendation's explanation path, carrying ``model``, ``item``
        (the recommended item), ``path`` (text), ``weight`` and ``rank``. Columns ``user_id``,
        ``item_id``, ``rank``, ``path``, ``weight``, and ``node_type`` + ``node_id`` for the path
        node (absent: the row points at the item). Returns the number of edges written.

        Show a recommendation's paths with::

            MATCH (u:User {id: $user})-[x:EXPLAINS]->(n)
            WHERE x.item = $item RETURN x.path, x.weight, n.id ORDER BY x.weight DESC
        """

    @abstractmethod
    def publish_model(self, kg: KnowledgeGraph, recommendations: pd.DataFrame, explanations: pd.DataFrame | None,
                      model_id: str, features: Mapping[str, Any] | None = None) -> dict[str, int]:
        """Write ``kg`` (as :meth:`write_graph`) and replace model ``model_id``'s recommendations
        and explanations (as :meth:`write_recommendations` and :meth:`write_explanations`; ``None``
        or an empty frame removes its explanations), as one publication: a reader sees the
        previous publication or this one, never a mix. Both frames are checked before anything
        is written, and every id they name must be in ``kg``.

        The embedded store writes all of it as one new file swapped in at the end (a kill at any
        moment leaves one state or the other). Neo4j writes the graph first (idempotent, not
        atomic), then switches the model's results in one transaction (see
        :meth:`~kgrec.store.neo4j_store.Neo4jStore._replace_model`). Returns the counts written:
        ``nodes``, ``edges``, ``recommended``, ``explains``, and ``texts_cut``: names, texts and
        explanation paths longer than the caps of :mod:`kgrec.store.tables`, cut."""

    def forget_users(self, ids: list[str]) -> dict[str, int]:
        """Erase users (ids as stored: pseudonyms in a pseudonymised store, see
        :func:`kgrec.privacy.pseudonym`): their nodes with every edge to or from them
        (``INTERACTED``, knowledge edges, ``RECOMMENDED``, ``EXPLAINS``), and every ``EXPLAINS``
        edge whose path names one of them (:func:`kgrec.privacy.paths_naming`: other users'
        similar-users paths through them). The models' summaries are rebuilt. Ids the store
        does not hold are skipped with a :class:`kgrec.errors.UnknownUserWarning`, so an
        interrupted forget can be run again. Returns what was removed: ``users``,
        ``interactions``, ``knowledge_edges``, ``recommendations``, ``explanations``."""
        self._check_writable()
        with self._lock:
            self._check_open()
            gone = self._known_users(ids)
            if not gone:
                return dict.fromkeys(FORGET_COUNTS, 0)
            before = self.counts()
            self._erase_users(gone)
            after = self.counts()
        return {k: before[k] - after[k] for k in FORGET_COUNTS}

    @abstractmethod
    def _erase_users(self, users: list[str]) -> None:
        """Remove ``users`` (all held by the store) as :meth:`forget_users` says, holding the lock."""

    # ---------------------------------------------------------------- reading
    @abstractmethod
    def query(self, cypher: str, **params: Any) -> pd.DataFrame:
        """Run one Cypher statement in a read-only transaction and return its rows (one column
        per returned name). Every value comes in as a ``$parameter``. A statement that writes
        is refused by the store engine itself and raises :class:`ReadOnlyQueryError`, and so is
        one that would read or write files, load extensions, attach databases, change settings or
        call a procedure outside an allow-list (:mod:`kgrec.store.cypher_guard`, docs/security.md);
        any other failure raises :class:`StoreError` naming the store."""

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """Node and edge counts: ``users``, ``items``, ``entities``, ``interactions``,
        ``knowledge_edges``, ``recommendations``, ``explanations``."""

    @abstractmethod
    def close(self) -> None:
        """Release the store (file lock / driver). Idempotent."""

    # ---------------------------------------------------------------- helpers
    def _known_users(self, ids: list[str]) -> list[str]:
        """The distinct ``ids`` the store holds as users; warns about the others."""
        wanted = list(dict.fromkeys(map(str, ids)))
        held = self._ids("User")
        missing = [u for u in wanted if u not in held]
        if missing:
            warnings.warn(UnknownUserWarning(
                f"{self.uri}: {len(missing)} user id(s) to forget are not in the store, skipped: {missing[:5]}"
                " (already forgotten, or a pseudonymised store: pass the key to map raw ids)"), stacklevel=3)
        return [u for u in wanted if u in held]

    def models(self) -> list[str]:
        """Names of the models whose recommendations are stored."""
        df = self.query("MATCH (m:Model) RETURN m.id AS model ORDER BY model")
        return [str(m) for m in df["model"].tolist()]

    def __enter__(self) -> "GraphStore":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        mode = ", read_only" if self.read_only else ""
        return f"{type(self).__name__}('{self.uri}'{mode})"

    def _check_writable(self) -> None:
        if self.read_only:
            raise StoreError(f"{self.uri} was opened read-only; open it with open_store('{self.uri}') to write")
