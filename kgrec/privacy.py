"""Private publishing: keyed pseudonyms of user ids and the private form of what a publish writes.

A pseudonym is ``"u_"`` + the first 32 hex digits (128 bits) of HMAC-SHA256(key, user id): the
same id and key always give the same pseudonym, so a store published twice stays joinable and an
operator holding the key can look a user up (:func:`pseudonym`); without the key, a pseudonym
cannot be linked back to the id, even by trying every short id. Two of ``n`` users share a
pseudonym with probability about ``n**2 / 2**129`` (below 1e-20 for a billion users).

The key is a file of at least :data:`MIN_KEY_BYTES` bytes (``kgrec keygen KEYFILE`` writes 64
random hex digits; the file's bytes, trailing whitespace removed, are the key). It is read when
publishing and never written to the store.

:func:`private_publication` turns what a publish writes (graph, recommendations, explanation
rows) into its private form; the choices and what stays are in ``docs/privacy.md``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from .errors import DataError
from .knowledge_graph import KnowledgeGraph

KeySource = bytes | str | os.PathLike
MIN_KEY_BYTES = 16
PSEUDONYM_PREFIX = "u_"
PSEUDONYM_HEX_DIGITS = 32
# the columns of explanation rows (kgrec.recommender.explanation_rows; defined here, which imports no torch)
EXPLANATION_COLUMNS = ["user_id", "item_id", "rank", "path", "weight", "node_type", "node_id"]
_KEYGEN_FIX = "make one with `kgrec keygen KEYFILE` (64 random hex digits) and keep it outside the store"


def read_key(source: KeySource) -> bytes:
    """The key: ``source`` itself when it is ``bytes``, else the contents of the file it names
    (trailing whitespace removed). Raises :class:`DataError` naming the file for a missing,
    unreadable, empty or short (< :data:`MIN_KEY_BYTES` bytes) key."""
    if isinstance(source, bytes):
        where, key = "the key", source
    else:
        path = Path(source).expanduser()
        where = str(path)
        if not path.is_file():
            raise DataError(where, None, "key file not found" + (" (it is a directory)" if path.is_dir() else ""),
                            f"pass the path of your key file, or {_KEYGEN_FIX}")
        try:
            key = path.read_bytes().rstrip()
        except OSError as exc:
            raise DataError(where, None, f"key file cannot be read ({exc.strerror})",
                            "give this user read permission on it") from None
    if not key:
        raise DataError(where, None, "the key is empty", _KEYGEN_FIX)
    if len(key) < MIN_KEY_BYTES:
        raise DataError(where, None, f"the key has {len(key)} bytes, fewer than {MIN_KEY_BYTES}: short keys "
                        "make pseudonyms guessable", _KEYGEN_FIX)
    return key


def write_key_file(path: str | os.PathLike) -> Path:
    """Write a new key (32 random bytes as 64 hex digits and a newline) to ``path``, readable by
    its owner only. Refuses to overwrite a file: a lost key makes published pseudonyms unreachable."""
    target = Path(path).expanduser()
    if target.exists():
        raise DataError(str(target), None, "already exists; kgrec never overwrites a key (the pseudonyms "
                        "published with it would become unreachable)", "choose another path, or remove it first")
    if not target.parent.is_dir():
        raise DataError(str(target), None, f"folder {target.parent} does not exist", "create it first")
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    return target


def pseudonym(user_id: object, key: bytes) -> str:
    """``"u_"`` + the first 32 hex digits of HMAC-SHA256(``key``, ``str(user_id)`` as UTF-8)."""
    digest = hmac.new(key, str(user_id).encode("utf-8"), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest[:PSEUDONYM_HEX_DIGITS]


def pseudonym_map(ids: Iterable[object], key: bytes) -> dict[str, str]:
    """Raw id (as ``str``) -> pseudonym for every distinct id of ``ids``."""
    return {u: pseudonym(u, key) for u in dict.fromkeys(str(i) for i in ids)}


def _mapped(values: pd.Series, mapping: dict[str, str], where: np.ndarray | None = None) -> pd.Series:
    """``values`` with the ids in ``mapping`` replaced (only at rows ``where`` when given)."""
    out = values.astype("string")
    sel = np.ones(len(out), dtype=bool) if where is None else where
    if sel.any():
        out = out.copy()
        out[sel] = out[sel].map(lambda v: mapping.get(v, v) if v is not pd.NA else v)
    return out


def private_graph(kg: KnowledgeGraph, key: bytes, *, keep_user_text: bool = False,
                  keep_demographics: bool = False, keep_timestamps: bool = False) -> KnowledgeGraph:
    """``kg`` as a private publish writes it: every user id pseudonymised (users table,
    interactions, triples with a user end); unless asked, the users' ``name`` and ``text`` and
    their text embeddings left out (``keep_user_text``), their attribute edges (user -> entity
    triples: age, gender, occupation, zip prefix) dropped with the entities only those edges
    named (``keep_demographics``), and interaction timestamps emptied (``keep_timestamps``).
    Items, entities, ratings and the other edges stay as they are."""
    users = kg.users
    mapping = pseudonym_map(pd.concat([users["user_id"], kg.interactions["user_id"]]).tolist(), key)
    users = users.assign(user_id=_mapped(users["user_id"], mapping))
    if not keep_user_text:
        users = users.assign(name=pd.Series(pd.NA, index=users.index, dtype="string"),
                             text=pd.Series(pd.NA, index=users.index, dtype="string"))
    inter = kg.interactions.assign(user_id=_mapped(kg.interactions["user_id"], mapping))
    if not keep_timestamps:
        inter = inter.assign(timestamp=pd.Series(pd.NA, index=inter.index, dtype="Int64"))
    t = kg.triples
    entities, features = kg.entities, dict(kg.features or {})
    if not keep_demographics:
        demographic = ((t["head_type"] == "user") & (t["tail_type"] == "entity")).to_numpy()
        named = set(t.loc[demographic, "tail"].tolist())
        still = set(t.loc[~demographic & (t["head_type"] == "entity").to_numpy(), "head"].tolist()) | \
            set(t.loc[~demographic & (t["tail_type"] == "entity").to_numpy(), "tail"].tolist())
        keep_ent = ~entities["entity_id"].isin(named - still).to_numpy()
        if "entity" in features:
            features["entity"] = np.asarray(features["entity"])[keep_ent]
        entities = entities[keep_ent].reset_index(drop=True)
        t = t[~demographic].reset_index(drop=True)
    t = t.assign(head=_mapped(t["head"], mapping, (t["head_type"] == "user").to_numpy()),
                 tail=_mapped(t["tail"], mapping, (t["tail_type"] == "user").to_numpy()))
    if not keep_user_text:
        features.pop("user", None)
    return replace(kg, users=users, entities=entities, interactions=inter, triples=t, features=features or None,
                   cold_users=frozenset(mapping.get(u, u) for u in kg.cold_users), report=dict(kg.report))


def private_explanations(rows: pd.DataFrame, kg: KnowledgeGraph, key: bytes) -> pd.DataFrame:
    """Explanation rows (``user_id, item_id, rank, path, weight`` [, ``node_type, node_id``], as
    publish writes them; ``kg`` is the raw graph that names the items) with the user's id
    pseudonymised in ``user_id`` and at the start of ``path`` (``user 1 -> ...``), and every path
    through another user (a ``similar_users`` path, the only kind with a user inside) reduced to a
    count: its rows pointing at users are dropped and its text reads
    ``user u_... -> <shared item> <- 3 users -> <item>`` (``1 user``, never an id)."""
    from .recommender.explain_paths import names as node_names

    if rows.empty:
        return rows.assign(user_id=rows["user_id"].astype("string")) if "user_id" in rows else rows
    rows = rows.copy()
    if "node_type" not in rows:
        rows["node_type"], rows["node_id"] = "item", rows["item_id"]
    rows["node_type"] = rows["node_type"].fillna("item").astype(str)
    rows["node_id"] = rows["node_id"].where(rows["node_id"].notna(), rows["item_id"]).astype(str)
    rows["user_id"] = rows["user_id"].astype(str)
    label = node_names(kg)
    group = ["user_id", "item_id", "rank", "path"]
    is_user = (rows["node_type"] == "user").to_numpy()
    via_user = rows.assign(_u=is_user).groupby(group, sort=False)["_u"].transform("any").to_numpy()
    lone = rows[via_user].groupby(group, sort=False).filter(lambda g: (g["node_type"] == "user").all())
    lone = lone.drop_duplicates(group).assign(node_type="item", node_id=lambda d: d["item_id"].astype(str))
    rows = pd.concat([rows[~is_user], lone], ignore_index=True)  # a path through users alone: at the item
    via_user = np.r_[via_user[~is_user], np.ones(len(lone), dtype=bool)]
    mapping = pseudonym_map(rows["user_id"], key)
    name = lambda i: label.get(("item", str(i)), str(i))  # noqa: E731
    texts = []
    for user, item, path, node, similar in zip(rows["user_id"], rows["item_id"], rows["path"], rows["node_id"],
                                               via_user):
        p = mapping[user]
        if similar:
            texts.append(f"user {p} -> {name(node)} <- {_similar_count(path, user, name(node), name(item))} "
                         f"-> {name(item)}")
        else:
            own = f"user {user}"
            texts.append(f"user {p}{path[len(own):]}" if path == own or path.startswith(own + " ") else path)
    rows["path"] = texts
    rows["user_id"] = rows["user_id"].map(mapping)
    return rows[[c for c in EXPLANATION_COLUMNS if c in rows]].reset_index(drop=True)


def _similar_count(path: str, user: str, shared: str, item: str) -> str:
    """How many users a ``similar_users`` path text (``user U -> J <- 3 users -> I`` or ``... <- user
    V -> I``, :mod:`kgrec.recommender.explanations`) goes through, as ``"3 users"`` / ``"1 user"``;
    ``"other users"`` when the text has another form."""
    head, tail = f"user {user} -> {shared} <- ", f" -> {item}"
    if path.startswith(head) and path.endswith(tail) and len(path) >= len(head) + len(tail):
        via = path[len(head):len(path) - len(tail)]
        if via.startswith("user "):
            return "1 user"
        if re.fullmatch(r"\d+ users", via):
            return via
    return "other users"


def without_users(kg: KnowledgeGraph, users: Iterable[str]) -> KnowledgeGraph:
    """``kg`` without ``users``: their rows in the users table (and text features), their
    interactions and every triple with one of them at either end. Items and entities stay."""
    gone = set(map(str, users))
    keep = ~kg.users["user_id"].astype(str).isin(gone).to_numpy()
    features = dict(kg.features or {})
    if "user" in features:
        features["user"] = np.asarray(features["user"])[keep]
    t = kg.triples
    touches = ((t["head_type"] == "user") & t["head"].astype(str).isin(gone)) | \
        ((t["tail_type"] == "user") & t["tail"].astype(str).isin(gone))
    inter = kg.interactions[~kg.interactions["user_id"].astype(str).isin(gone).to_numpy()]
    return replace(kg, users=kg.users[keep].reset_index(drop=True), interactions=inter.reset_index(drop=True),
                   triples=t[~touches.to_numpy()].reset_index(drop=True), features=features or None,
                   cold_users=frozenset(kg.cold_users - gone), report=dict(kg.report))


_PATH_USER = re.compile(r"(?:^|<- )user (.+?)(?= -| <| \.|$)")


def paths_naming(paths: Iterable[object], users: Iterable[str]) -> np.ndarray:
    """Which explanation path texts name one of ``users``: as the path's own user (``user 7 ->
    ...``) or as a similar user inside it (``... <- user 7 -> ...``), the forms of
    :mod:`kgrec.recommender.explain_paths`. A boolean array, one entry per path."""
    gone = set(map(str, users))
    return np.fromiter((isinstance(p, str) and any(u in gone for u in _PATH_USER.findall(p)) for p in paths),
                       dtype=bool)


def private_publication(kg: KnowledgeGraph, recommendations: pd.DataFrame, explanation_rows: pd.DataFrame,
                        key: bytes, *, keep_user_text: bool = False, keep_demographics: bool = False,
                        keep_timestamps: bool = False) -> tuple[KnowledgeGraph, pd.DataFrame, pd.DataFrame]:
    """``(graph, recommendations, explanation rows)`` of a publish in their private form:
    :func:`private_graph`, the recommendations' ``user_id`` pseudonymised, and
    :func:`private_explanations`. ``key``: bytes from :func:`read_key`."""
    graph = private_graph(kg, key, keep_user_text=keep_user_text, keep_demographics=keep_demographics,
                          keep_timestamps=keep_timestamps)
    recs = recommendations.assign(user_id=_mapped(recommendations["user_id"].astype(str),
                                                  pseudonym_map(recommendations["user_id"].tolist(), key)))
    return graph, recs, private_explanations(explanation_rows, kg, key)


__all__ = ["KeySource", "MIN_KEY_BYTES", "paths_naming", "private_explanations", "private_graph", "private_publication", "pseudonym",
           "pseudonym_map", "read_key", "without_users", "write_key_file"]
