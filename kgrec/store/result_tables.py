"""Checks of published results: recommendation and explanation frames as edge tables to write.

Both stores run every frame through :func:`recommendation_table` / :func:`explanation_table`
before they touch the store, so both refuse the same input with the same :class:`DataError`
naming the first bad row, and through :func:`check_known_ids` so that every result points at a
node of the stored graph.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from ..errors import DataError, StoreError
from .base import LABEL_TO_TYPE, NODE_TABLES, explains_targets
from .tables import MAX_PATH_CHARS, cap_text

RECOMMENDATION_COLUMNS = ("user_id", "item_id", "score", "rank")
EXPLANATION_COLUMNS = ("user_id", "item_id", "rank", "path", "weight")


def recommendation_table(df: pd.DataFrame, model_id: str) -> pa.Table:
    """Check a recommendation frame and return ``from``, ``to``, ``score``, ``rank``, ``model``.

    Raises :class:`DataError` naming the first bad row: a missing column, an empty id, a score
    that is not a finite number, a rank that is not a positive integer, or a (user, item) pair
    listed twice."""
    model_id = check_model_id(model_id)
    src = f"recommendations of model '{model_id}'"
    missing = [c for c in RECOMMENDATION_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(src, None, f"required column(s) {missing} not found (columns: {list(df.columns)})",
                        "pass the DataFrame that Recommender.recommend returns: user_id, item_id, score, rank")
    users = _id_column(df["user_id"], src, "user_id")
    items = _id_column(df["item_id"], src, "item_id")
    score = _number_column(df["score"], src, "score")
    rank = _rank_column(df["rank"], src)
    dup = pd.DataFrame({"u": users, "i": items}).duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(src, row, f"user '{users[row]}' and item '{items[row]}' appear twice",
                        "keep one row per (user_id, item_id)")
    return pa.table({"from": pa.array(users, pa.string()), "to": pa.array(items, pa.string()),
                     "score": pa.array(score, pa.float64()), "rank": pa.array(rank, pa.int64()),
                     "model": pa.array([model_id] * len(df), pa.string())})


def explanation_table(df: pd.DataFrame, model_id: str) -> pa.Table:
    """Check an explanation frame and return ``from`` (user), ``to`` (path node), ``to_label``,
    ``model``, ``item``, ``path``, ``weight``, ``rank``.

    ``df`` has one row per (recommendation, path node): ``user_id``, ``item_id``, ``rank``, ``path``
    (the path as text), ``weight`` and the node on the path as ``node_type`` (user / item /
    entity) and ``node_id``. Without ``node_type``/``node_id`` (or where they are empty) the row
    stands for the whole path and points at the recommended item. A node listed twice for the same
    (user, item, path) is kept once. Paths longer than :data:`~kgrec.store.tables.MAX_PATH_CHARS`
    are cut (:func:`~kgrec.store.tables.cap_text`)."""
    model_id = check_model_id(model_id)
    src = f"explanations of model '{model_id}'"
    missing = [c for c in EXPLANATION_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(src, None, f"required column(s) {missing} not found (columns: {list(df.columns)})",
                        "give user_id, item_id, rank, path, weight and optionally node_type, node_id")
    users = _id_column(df["user_id"], src, "user_id")
    items = _id_column(df["item_id"], src, "item_id")
    rank = _rank_column(df["rank"], src)
    weight = _number_column(df["weight"], src, "weight")
    paths = df["path"].astype("string")
    if paths.isna().any():
        row = int(np.flatnonzero(paths.isna().to_numpy())[0])
        raise DataError(src, row, "path is empty", "describe the path as text, e.g. 'user:1 -> item:50 -> genre:Drama'")
    if "node_id" in df.columns:
        node_id = df["node_id"].astype("string")
        node_type = (df["node_type"].astype("string") if "node_type" in df.columns
                     else pd.Series(pd.NA, index=df.index, dtype="string"))
        whole = node_id.isna() | (node_id.str.strip() == "")
        node_id = node_id.where(~whole, pd.Series(items, index=df.index, dtype="string"))
        node_type = node_type.where(~whole, "item").str.strip().str.lower()
    else:
        node_id = pd.Series(items, index=df.index, dtype="string")
        node_type = pd.Series("item", index=df.index, dtype="string")
    bad = ~node_type.isin(list(NODE_TABLES))
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(src, row, f"node_type '{node_type.iloc[row]}' is not one of {list(NODE_TABLES)}",
                        "use user, item or entity")
    labels = node_type.map(lambda t: NODE_TABLES[t][0]).astype(str)
    allowed = explains_targets()
    bad = ~labels.isin(allowed)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(src, row, f"an explanation cannot point at a {labels.iloc[row]} node (schema allows "
                        f"{allowed})", "name a node of an allowed type")
    path_text, _ = cap_text(pa.array(paths.astype(str).tolist(), pa.string()), MAX_PATH_CHARS)
    table = pa.table({"from": pa.array(users, pa.string()), "to": pa.array(node_id.astype(str).tolist(), pa.string()),
                      "to_label": pa.array(labels.tolist(), pa.string()),
                      "model": pa.array([model_id] * len(df), pa.string()),
                      "item": pa.array(items, pa.string()), "path": path_text,
                      "weight": pa.array(weight, pa.float64()), "rank": pa.array(rank, pa.int64())})
    # a node met twice on one path is one edge: (user, node, item, path) identifies an EXPLAINS edge
    first = ~table.select(["from", "to", "to_label", "item", "path"]).to_pandas().duplicated().to_numpy()
    return table if first.all() else table.filter(pa.array(first))


#: prefix of the model name under which a store stages a model's new edges before switching to them
STAGING_PREFIX = "kgrec-staging:"


def staging_id(model_id: str) -> str:
    """The model name under which ``model_id``'s new edges are written before the switch."""
    return STAGING_PREFIX + model_id


def check_model_id(model_id: str) -> str:
    """``model_id`` when it names a model: a non-empty string, not a staging name."""
    if not isinstance(model_id, str) or not model_id.strip():
        raise DataError("model_id", None, f"{model_id!r} is not a model name", "pass a non-empty string")
    if model_id.startswith(STAGING_PREFIX):
        raise DataError("model_id", None, f"'{model_id}' starts with '{STAGING_PREFIX}', which kgrec keeps for "
                        "models being written", "choose another model name")
    return model_id


def _id_column(s: pd.Series, src: str, col: str) -> list[str]:
    ids = s.astype("string").str.strip()
    bad = ids.isna() | (ids == "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(src, row, f"{col} is empty ({int(bad.sum())} such rows)", f"fill in {col}")
    return ids.astype(str).tolist()


def _number_column(s: pd.Series, src: str, col: str) -> np.ndarray:
    num = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(num)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(src, row, f"{col} '{s.iloc[row]}' is not a finite number", f"give every row a numeric {col}")
    return num


def _rank_column(s: pd.Series, src: str) -> np.ndarray:
    num = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(num) | (num < 1) | (num != np.round(num))
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(src, row, f"rank '{s.iloc[row]}' is not a positive integer", "rank recommendations 1, 2, 3...")
    return num.astype(np.int64)


def check_known_ids(ids: list[str] | pa.Array, known: set[str], what: str, where: str, uri: str) -> None:
    """Raise :class:`StoreError` when ``ids`` name nodes that ``known`` lacks."""
    values = ids.to_pylist() if isinstance(ids, (pa.Array, pa.ChunkedArray)) else ids
    missing = [v for v in dict.fromkeys(values) if v not in known]
    if missing:
        raise StoreError(f"{where}: {len(missing)} {what} id(s) are not in the graph at {uri} "
                         f"(first: '{missing[0]}'). Fix: write the graph that the model was trained on first "
                         "(store.write_graph(kg)), then its recommendations")


def paths_cut(df: pd.DataFrame | None) -> int:
    """How many of an explanation frame's paths :func:`explanation_table` cuts."""
    if df is None or len(df) == 0 or "path" not in df.columns:
        return 0
    return cap_text(pa.array(df["path"].astype("string"), from_pandas=True), MAX_PATH_CHARS)[1]


def publication_tables(recommendations: pd.DataFrame, explanations: pd.DataFrame | None, model_id: str
                       ) -> tuple[pa.Table, pa.Table | None, list[tuple[str, pa.Table]]]:
    """A publication's frames checked and as tables (what ``publish_model`` writes): the
    :func:`recommendation_table`, the :func:`explanation_table` (``None`` for ``None`` or an empty
    frame) and its :func:`explanation_parts`."""
    recs = recommendation_table(recommendations, model_id)
    if explanations is None or len(explanations) == 0:
        return recs, None, []
    expl = explanation_table(explanations, model_id)
    return recs, expl, explanation_parts(expl)


def check_publication_ids(recs: pa.Table, expl: pa.Table | None, parts: Sequence[tuple[str, pa.Table]],
                          ids_of: Callable[[str], set[str]], uri: str) -> None:
    """:func:`check_result_ids` of a publication's tables (:func:`publication_tables`)."""
    check_result_ids(recs, "to", ids_of, "publish", uri)
    if expl is not None:
        check_result_ids(expl, "item", ids_of, "publish (explanations)", uri, parts)


def explanation_parts(table: pa.Table) -> list[tuple[str, pa.Table]]:
    """An :func:`explanation_table` split by the label of its path nodes, in
    :func:`explains_targets` order: ``(label, rows)`` for each label with rows, ``to_label`` dropped
    (each part is written as ``EXPLAINS`` edges to nodes of one label)."""
    labels = table.column("to_label").to_numpy(zero_copy_only=False)
    parts = [(label, table.filter(pa.array(labels == label)).drop(["to_label"])) for label in explains_targets()]
    return [(label, part) for label, part in parts if part.num_rows]


def check_result_ids(table: pa.Table, item_column: str, ids_of: Callable[[str], set[str]], where: str, uri: str,
                     parts: Sequence[tuple[str, pa.Table]] = ()) -> None:
    """Raise :class:`StoreError` (:func:`check_known_ids`) unless every user (``from``), item
    (``item_column``) and path node (``to`` of each of :func:`explanation_parts`) that a results
    table names is in the store; ``ids_of(label)`` gives the ids stored under a node label."""
    check_known_ids(table.column("from"), ids_of("User"), "user", where, uri)
    check_known_ids(table.column(item_column), ids_of("Item"), "item", where, uri)
    for label, part in parts:
        check_known_ids(part.column("to"), ids_of(label), LABEL_TO_TYPE[label], f"{where} (path nodes)", uri)

