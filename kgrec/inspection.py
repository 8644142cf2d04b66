"""Inspection queries: look at a published graph and its recommendations with Cypher.

Every function runs one or more of the paste-able queries in ``kgrec/queries/*.cypher`` through
:meth:`GraphStore.query` (read-only, values as ``$parameters``) and returns a DataFrame. The
same Cypher runs unchanged on the embedded store and on Neo4j: plain ``MATCH / WHERE / RETURN /
ORDER BY / LIMIT``, knowledge edges matched by their ``relation`` property (the embedded store
types them ``RELATED``, Neo4j by the relation's name), and ``''`` meaning "any model".

    >>> from kgrec import inspection
    >>> inspection.user_recommendations(store, "1", k=10)
    >>> inspection.why_recommended(store, "1", "50")
    >>> inspection.top_recommended(store, "default", limit=20)
"""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources

import pandas as pd

from .privacy import KeySource, pseudonym, read_key
from .store.base import GraphStore

__all__ = ["NAMED", "QUERY_NAMES", "REPORTS", "explanation_paths", "kg_paths", "load_query", "recommendation_coverage",
           "shared_attributes", "similar_users", "top_recommended", "user_item_triples", "user_recommendations",
           "run_named", "why_recommended"]

QUERY_NAMES = ("user_recommendations", "why_shared_attributes", "why_similar_users", "why_kg_paths_1",
               "why_kg_paths_2", "why_kg_paths_3", "top_recommended", "recommendation_coverage",
               "explanation_paths", "why_user_item_triples")


@lru_cache(maxsize=None)
def load_query(name: str) -> str:
    """The text of ``kgrec/queries/<name>.cypher`` (see :data:`QUERY_NAMES`)."""
    if name not in QUERY_NAMES:
        raise KeyError(f"no query named '{name}'; the queries are {', '.join(QUERY_NAMES)}")
    return resources.files("kgrec").joinpath("queries", f"{name}.cypher").read_text("utf-8")


def query_parameters(name: str) -> list[str]:
    """The ``$parameters`` a query uses, in order of first use (comments excluded)."""
    body = "\n".join(line.split("//", 1)[0] for line in load_query(name).splitlines())
    return list(dict.fromkeys(re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", body)))


def run_query(store: GraphStore, name: str, **params: object) -> pd.DataFrame:
    """Run a named query with exactly the parameters it uses (a missing one raises ``TypeError``)."""
    wanted = query_parameters(name)
    missing = [p for p in wanted if p not in params]
    if missing:
        raise TypeError(f"query '{name}' needs parameter(s) {missing}")
    return store.query(load_query(name), **{p: params[p] for p in wanted})


def _id(value: object, what: str) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError(f"{what} id is empty")
    return text


def user_key(user: object, key: KeySource | None) -> str:
    """The id ``user`` has in the store: itself, or with ``key`` (a key file or its bytes) its
    pseudonym in a store published with ``pseudonymize=key`` (:func:`kgrec.privacy.pseudonym`)."""
    text = _id(user, "user")
    return text if key is None else pseudonym(text, read_key(key))


def _limit(value: int, what: str) -> int:
    if int(value) < 1:
        raise ValueError(f"{what} must be at least 1 (got {value})")
    return int(value)


# --------------------------------------------------------------------- per user
def user_recommendations(store: GraphStore, user: str, model: str | None = None, k: int = 20,
                         key: KeySource | None = None) -> pd.DataFrame:
    """The top ``k`` recommendations of ``user`` (per model when ``model`` is None), best first:
    columns ``model``, ``rank``, ``item_id``, ``name``, ``score``."""
    return run_query(store, "user_recommendations", user=user_key(user, key), model=model or "",
                     k=_limit(k, "k"))


def shared_attributes(store: GraphStore, user: str, item: str, limit: int = 10,
                      key: KeySource | None = None) -> pd.DataFrame:
    """Attributes (entities) that ``item`` shares with items ``user`` interacted with: columns
    ``entity_id``, ``kind``, ``name``, ``relation``, ``items`` (how many of the user's items have it),
    ``example_item``; most shared first."""
    return run_query(store, "why_shared_attributes", user=user_key(user, key), item=_id(item, "item"),
                     limit=_limit(limit, "limit"))


def similar_users(store: GraphStore, user: str, item: str, limit: int = 10,
                  key: KeySource | None = None) -> pd.DataFrame:
    """Users who interacted with ``item`` ranked by how many items they share with ``user``:
    columns ``user_id``, ``shared_items``."""
    return run_query(store, "why_similar_users", user=user_key(user, key), item=_id(item, "item"),
                     limit=_limit(limit, "limit"))


def user_item_triples(store: GraphStore, user: str, item: str,
                      key: KeySource | None = None) -> pd.DataFrame:
    """The relations of ``user``'s own knowledge edges to ``item``, either way round (a second
    behaviour, e.g. ``TAGGED``): columns ``relation``, ``edges``; empty when there are none."""
    return run_query(store, "why_user_item_triples", user=user_key(user, key), item=_id(item, "item"))


def kg_paths(store: GraphStore, user: str, item: str, max_hops: int = 3, limit: int = 20,
             key: KeySource | None = None) -> pd.DataFrame:
    """Knowledge-graph paths of 1..``max_hops`` knowledge edges (any direction, distinct nodes)
    from an item ``user`` interacted with to ``item``; the node after that item is an item or an
    entity (paths through users are :func:`similar_users`' business). Columns ``hops``,
    ``start_item``, ``path`` (text such as
    ``item:100 (Fargo (1996)) -HAS_GENRE- genre:Drama -HAS_GENRE- item:50``), ``nodes`` (ids of
    the nodes between the two items); up to ``limit`` paths per hop count, shortest first."""
    if not 1 <= int(max_hops) <= 3:
        raise ValueError(f"max_hops must be 1, 2 or 3 (got {max_hops})")
    user, item, limit = user_key(user, key), _id(item, "item"), _limit(limit, "limit")
    rows: list[dict] = []
    for hops in range(1, int(max_hops) + 1):
        df = run_query(store, f"why_kg_paths_{hops}", user=user, item=item, limit=limit)
        for rec in df.to_dict("records"):
            parts = [_node_text("item", rec["start_item"], rec["start_name"])]
            nodes = []
            for h in range(1, hops + 1):
                parts.append(f"-{rec[f'relation_{h}']}-")
                if h < hops:
                    nid = rec[f"node_{h}"]
                    nodes.append(nid)
                    parts.append(_node_text(rec[f"kind_{h}"], nid, rec[f"name_{h}"]))
            parts.append(f"item:{item}")
            rows.append({"hops": hops, "start_item": rec["start_item"], "path": " ".join(parts), "nodes": nodes})
    return pd.DataFrame(rows, columns=["hops", "start_item", "path", "nodes"])


def _node_text(kind: object, node_id: object, name: object) -> str:
    """``item:50 (Star Wars (1977))``; an id that already starts with its kind stays as it is."""
    nid = str(node_id)
    label = nid if _missing(kind) or nid.startswith(f"{kind}:") else f"{kind}:{nid}"
    if not _missing(name) and str(name) != nid and not nid.endswith(f":{name}"):
        label += f" ({name})"
    return label


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NA


def why_recommended(store: GraphStore, user: str, item: str, limit: int = 10,
                    key: KeySource | None = None) -> pd.DataFrame:
    """Why ``item`` suits ``user``, from the graph alone (no model needed): one row per piece of
    evidence, columns ``reason``, ``path``, ``support``, ``via``.

    - ``shared_attribute``: an attribute of ``item`` that items the user interacted with also
      have (``support`` = how many of them; ``via`` = the entity id);
    - ``similar_user``: a user who interacted with ``item`` and shares ``support`` items with
      ``user`` (``via`` = that user's id);
    - ``kg_path``: a knowledge-graph path of 1..3 hops from an item the user interacted with to
      ``item`` (paths through an attribute already listed above are left out; ``via`` = the
      start item);
    - ``user_item_triple``: the user's own knowledge edge to ``item``, such as an artist they
      tagged (``support`` = how many edges of that relation; ``via`` = the relation).

    Up to ``limit`` rows per reason."""
    user, item, limit = user_key(user, key), _id(item, "item"), _limit(limit, "limit")
    rows: list[dict] = []
    for rec in user_item_triples(store, user, item).head(limit).to_dict("records"):
        rows.append({"reason": "user_item_triple", "support": int(rec["edges"]), "via": rec["relation"],
                     "path": f"user:{user} -{rec['relation']}- item:{item}"})
    attrs = shared_attributes(store, user, item, limit)
    for rec in attrs.to_dict("records"):
        rows.append({"reason": "shared_attribute", "support": int(rec["items"]), "via": rec["entity_id"],
                     "path": f"user:{user} -INTERACTED-> {int(rec['items'])} item(s) -{rec['relation']}-> "
                             f"{_node_text(rec['kind'], rec['entity_id'], rec['name'])} <-{rec['relation']}- "
                             f"item:{item}"})
    for rec in similar_users(store, user, item, limit).to_dict("records"):
        rows.append({"reason": "similar_user", "support": int(rec["shared_items"]), "via": rec["user_id"],
                     "path": f"user:{user} -INTERACTED-> {int(rec['shared_items'])} item(s) <-INTERACTED- "
                             f"user:{rec['user_id']} -INTERACTED-> item:{item}"})
    covered = set(attrs["entity_id"].tolist())
    paths = kg_paths(store, user, item, 3, limit)
    kept = 0
    for rec in paths.to_dict("records"):
        if rec["hops"] == 2 and set(rec["nodes"]) <= covered:
            continue
        if kept >= limit:
            break
        kept += 1
        rows.append({"reason": "kg_path", "support": 1, "via": rec["start_item"],
                     "path": f"user:{user} -INTERACTED-> {rec['path']}"})
    return pd.DataFrame(rows, columns=["reason", "path", "support", "via"])


def explanation_paths(store: GraphStore, user: str, item: str, model: str | None = None,
                      key: KeySource | None = None) -> pd.DataFrame:
    """The explanation paths a model published for ``user``'s recommendation of ``item``
    (:meth:`GraphStore.write_explanations`): one row per path, columns ``model``, ``rank``,
    ``path``, ``weight``, ``nodes`` (the ids of the nodes the path's EXPLAINS edges point at),
    highest weight first."""
    df = run_query(store, "explanation_paths", user=user_key(user, key), item=_id(item, "item"), model=model or "")
    cols = ["model", "rank", "path", "weight", "nodes"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    out = (df.groupby(["model", "rank", "path", "weight"], sort=False)["node_id"]
           .agg(lambda s: sorted(str(v) for v in s)).reset_index().rename(columns={"node_id": "nodes"}))
    return out.sort_values(["model", "weight", "path"], ascending=[True, False, True], kind="stable")[cols] \
        .reset_index(drop=True)


# --------------------------------------------------------------------- per model
def top_recommended(store: GraphStore, model: str, limit: int = 20) -> pd.DataFrame:
    """The items model ``model`` recommends most: columns ``item_id``, ``name``,
    ``recommendations`` (how many users got it), ``share`` (of all the model's recommendations),
    ``mean_score``, ``mean_rank``. Read from the model's summary (``Model`` node and its
    ``RECOMMENDS`` edges), which the store keeps equal to its ``RECOMMENDED`` edges."""
    if not model:
        raise ValueError("model is empty; name the model whose recommendations to count")
    df = run_query(store, "top_recommended", model=model, limit=_limit(limit, "limit"))
    cov = recommendation_coverage(store, model)
    total = int(cov["recommendations"].iloc[0]) if len(cov) else 0
    df.insert(3, "share", df["recommendations"].astype(float) / total if total else 0.0)
    return df


def recommendation_coverage(store: GraphStore, model: str) -> pd.DataFrame:
    """One row: ``model``, ``recommendations``, ``users`` served, ``items`` recommended,
    ``catalog_items`` and ``coverage`` = items / catalog_items."""
    df = run_query(store, "recommendation_coverage", model=model)  # one row, zeros for an unknown model
    out = df.astype({"catalog_items": "int64", "recommendations": "int64", "users": "int64", "items": "int64"})
    out.insert(0, "model", model)
    out["coverage"] = out["items"] / out["catalog_items"].where(out["catalog_items"] > 0, 1)
    return out[["model", "recommendations", "users", "items", "catalog_items", "coverage"]]


# --------------------------------------------------------------------- by name (the CLI's --query)
REPORTS = ("user_recommendations", "why_recommended", "shared_attributes", "similar_users", "user_item_triples",
           "kg_paths", "explanation_paths", "top_recommended", "recommendation_coverage")
NAMED = tuple(sorted(set(REPORTS) | set(QUERY_NAMES)))  # what ``kgrec cypher --query NAME`` runs


def query_text(name: str) -> str:
    """The Cypher of packaged query ``name`` (a report, which may run several, has none)."""
    return "" if name in REPORTS else load_query(name)


def run_named(store: GraphStore, name: str, **params: object) -> pd.DataFrame:
    """Run the report ``name`` (one of :data:`REPORTS`, a function above; string parameters are
    converted to the integers its signature asks for) or else the packaged query ``name``. A
    ``key`` parameter (key file) maps the ``user`` parameter to its pseudonym."""
    if name not in REPORTS:
        key = params.pop("key", None)
        if key is not None and "user" in params:
            params["user"] = user_key(params["user"], key)  # type: ignore[arg-type]
        return run_query(store, name, **params)
    import inspect
    import typing

    func = globals()[name]
    hints = typing.get_type_hints(func)
    known = list(inspect.signature(func).parameters)[1:]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise TypeError(f"{name} takes the parameter(s) {known}; {unknown} unknown")
    typed = {k: int(v) if hints.get(k) is int and isinstance(v, str) else v for k, v in params.items()}
    return func(store, **typed)
