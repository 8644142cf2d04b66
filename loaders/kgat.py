"""The KGAT benchmark format (Wang et al., KDD 2019; also KGIN, KGCL...), with its given split.

Files in the folder
    ``train.txt`` (required), ``test.txt``  one line per user: ``user item item ...`` (space-separated
                                            remap ids; a user may have no items on a line)
    ``kg_final.txt`` (optional)             ``head relation tail`` remap ids, one triple a line
    ``user_list.txt``, ``item_list.txt``,   ``org_id remap_id [freebase_id]`` with a header row
    ``entity_list.txt``, ``relation_list.txt``  (all optional)

API
    :func:`kgat` returns one KnowledgeGraph holding the train *and* test interactions;
    :func:`kgat_split` returns ``(train, test)``: two KnowledgeGraphs with the same nodes and
    knowledge edges whose interactions are exactly train.txt and test.txt. Evaluate on the
    given split with ``rec.fit(train).evaluate(test)``; re-split with ``kgat(path).split(...)``.

Ids and names
    ``user_id`` / ``item_id`` are the remap ids as strings (``"0"``...), so results line up with
    published KGAT numbers; ``name`` is the ``org_id`` from user_list / item_list (Amazon reviewer
    id, ASIN) when those files are present. KG entities follow KGAT's convention that entity
    ids ``0 .. n_items-1`` are the items themselves; every other entity becomes
    ``kg:<freebase id>`` (``kg:<remap id>`` without entity_list.txt) of kind ``kg``. Relation
    names are the Freebase names from relation_list.txt (``type.object.type``), else ``r<id>``.

Policies (each count shows in ``kg.summary().report``)
    - A pair repeated inside train.txt or test.txt is kept once: ``duplicate_interactions_merged``.
    - A pair in both files stays in train only: ``test_pairs_also_in_train_dropped``.
    - Users whose interactions are all in test.txt keep them (they are cold users for the
      model): ``users_only_in_test``; likewise ``items_only_in_test``. Users on a line with no
      items are nodes without interactions.
    - A repeated KG triple is kept once: ``duplicate_triples_dropped``.
    - Ids that are not non-negative integers, and ids beyond user_list / item_list, raise
      :class:`kgrec.DataError` with the file and line.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.errors import DataError
from kgrec.knowledge_graph import KnowledgeGraph

from ._io import decode, require_dir, require_file
from ._kg import KnowledgeTriples, kg_entities

_BAD_CHAR = re.compile(r"[^0-9 \t\r\n]")


def kgat(path: str | Path, *, knowledge: bool = True, name: str | None = None) -> KnowledgeGraph:
    """Load a KGAT-format folder as one KnowledgeGraph (train + test interactions).

    ``knowledge=False`` skips kg_final.txt. See the module docstring for ids and policies."""
    kg, _ = _load(path, knowledge=knowledge, name=name)
    return kg


def kgat_split(path: str | Path, *, knowledge: bool = True, name: str | None = None
               ) -> tuple[KnowledgeGraph, KnowledgeGraph]:
    """Load a KGAT-format folder as its given split ``(train, test)``.

    Both graphs share every node and knowledge edge; their interactions are train.txt and
    test.txt (after the duplicate policies of the module docstring)."""
    kg, is_test = _load(path, knowledge=knowledge, name=name)
    train = kg.with_interactions(kg.interactions[~is_test])
    test = kg.with_interactions(kg.interactions[is_test])
    return train, test


def kgat_interactions(path: str | Path, num_users: int | None = None, num_items: int | None = None
                      ) -> pd.DataFrame:
    """One KGAT-format interaction file (``train.txt`` / ``test.txt``: a line per user,
    ``user item item ...``) as a table of remap-id pairs: int64 columns ``user``, ``item`` and
    ``line`` (1-based), in file order, repeats kept. For a split that ships only these files
    (CoLaKG's, KGIN's): map the ids through the split's own lists. ``num_users`` /
    ``num_items`` bound the ids; a token that is not a non-negative integer, or an id beyond
    a bound, raises :class:`kgrec.DataError` with the file and line."""
    file = require_file(Path(path), "interactions",
                        "a KGAT interaction file has one line per user: 'user item item ...'")
    user, item, line, _ = _pairs(file, num_users, num_items)
    return pd.DataFrame({"user": user, "item": item, "line": line})


def _load(path: str | Path, *, knowledge: bool, name: str | None) -> tuple[KnowledgeGraph, np.ndarray]:
    root = require_dir(path, "KGAT")
    f_train, f_test = root / "train.txt", root / "test.txt"
    require_file(f_train, "training interactions",
                 "a KGAT folder needs train.txt (one line per user: 'user item item ...'); "
                 "some public copies ship without it, so fetch it from the KGAT repository")
    report: dict[str, int] = {}

    users_list = _id_list(root / "user_list.txt")
    items_list = _id_list(root / "item_list.txt")
    tr_u, tr_i, _, tr_users = _pairs(f_train, len(users_list) if users_list is not None else None,
                                           len(items_list) if items_list is not None else None)
    if f_test.exists():
        te_u, te_i, _, te_users = _pairs(require_file(f_test), len(users_list) if users_list is not None else None,
                                               len(items_list) if items_list is not None else None)
    else:
        te_u = te_i = te_users = np.zeros(0, dtype=np.int64)
    u = np.concatenate([tr_u, te_u])
    i = np.concatenate([tr_i, te_i])
    is_test = np.concatenate([np.zeros(len(tr_u), bool), np.ones(len(te_u), bool)])
    n_items_seen = int(i.max()) + 1 if len(i) else 0
    key = u * max(n_items_seen, 1) + i
    _, first = np.unique(key, return_index=True)
    keep = np.zeros(len(key), bool)
    keep[first] = True
    if (~keep).any():
        # a repeat inside one file is merged; a test row whose pair is in train is dropped from test
        dropped = ~keep
        cross = dropped & is_test & np.isin(key, key[~is_test])
        if dropped.sum() > cross.sum():
            report["duplicate_interactions_merged"] = int(dropped.sum() - cross.sum())
        if cross.any():
            report["test_pairs_also_in_train_dropped"] = int(cross.sum())
        u, i, is_test = u[keep], i[keep], is_test[keep]
    train_users = np.unique(u[~is_test])
    test_only = np.setdiff1d(np.unique(u[is_test]), train_users)
    if len(test_only):
        report["users_only_in_test"] = int(len(test_only))
    test_only_items = np.setdiff1d(np.unique(i[is_test]), np.unique(i[~is_test]))
    if len(test_only_items):
        report["items_only_in_test"] = int(len(test_only_items))

    n_users = len(users_list) if users_list is not None else int(max(np.max(tr_users, initial=-1),
                                                                      np.max(te_users, initial=-1))) + 1
    n_items = len(items_list) if items_list is not None else n_items_seen
    user_ids = np.arange(n_users).astype(str)
    item_ids = np.arange(n_items).astype(str)
    users = pd.DataFrame({"user_id": user_ids})
    if users_list is not None:
        users["name"] = users_list
    else:  # without user_list, only users named in the files exist
        present = np.union1d(tr_users, te_users)
        users = users.iloc[present].reset_index(drop=True)
    items = pd.DataFrame({"item_id": item_ids})
    if items_list is not None:
        items["name"] = items_list
    else:
        present = np.unique(i)
        items = items.iloc[present].reset_index(drop=True)
    inter = pd.DataFrame({"user_id": u.astype(str), "item_id": i.astype(str)})

    entities = triples = None
    f_kg = root / "kg_final.txt"
    if knowledge and f_kg.exists():
        entities, triples, kg_report = kgat_kg(root, n_items=n_items)
        report.update(kg_report)
        known = set(items["item_id"].tolist())
        for end in ("head", "tail"):
            sel = (triples[f"{end}_type"] == "item").to_numpy()
            miss = ~triples[end][sel].isin(known)
            if miss.any():  # only possible without item_list.txt
                raise DataError(str(f_kg), int(np.flatnonzero(sel)[np.flatnonzero(miss.to_numpy())[0]]) + 1,
                                f"{end} '{triples[end][sel][miss.to_numpy()].iloc[0]}' is an item id (< {n_items}) "
                                "that no interaction or item_list.txt names",
                                "add item_list.txt so every item is known")
    kg = KnowledgeGraph.build(interactions=inter, users=users, items=items, entities=entities, triples=triples,
                              name=name or root.name, report=report,
                              sources={"interactions": str(f_train), "triples": str(f_kg)})
    return kg, is_test


def kgat_kg(path: str | Path, n_items: int | None = None) -> KnowledgeTriples:
    """Read ``kg_final.txt`` (+ entity_list / relation_list / item_list when present) of a
    KGAT folder as ``(entities, triples, report)`` in :class:`KnowledgeGraph` columns.

    Entity ids below ``n_items`` (default: the rows of item_list.txt) are the items with the
    same remap id; the others become ``kg:<freebase id>`` entities of kind ``kg``."""
    root = require_dir(path, "KGAT")
    f_kg = require_file(root / "kg_final.txt", "knowledge graph", "kg_final.txt holds 'head relation tail' per line")
    if n_items is None:
        lst = _id_list(root / "item_list.txt")
        if lst is None:
            raise DataError(str(root / "item_list.txt"), None, "file not found; it tells which entities are items",
                            "add item_list.txt or pass n_items=")
        n_items = len(lst)
    text = decode(f_kg, "utf-8")
    arr = _int_matrix(f_kg, text, 3)
    h, r, t = arr[:, 0], arr[:, 1], arr[:, 2]
    ent_names = _id_list(root / "entity_list.txt")
    rel_names = _id_list(root / "relation_list.txt")
    if rel_names is not None and len(r) and r.max() >= len(rel_names):
        line = int(np.flatnonzero(r >= len(rel_names))[0]) + 1
        raise DataError(str(f_kg), line, f"relation {int(r[line - 1])} is beyond relation_list.txt "
                        f"({len(rel_names)} relations)", "use the relation_list.txt that came with kg_final.txt")
    if ent_names is not None and len(h) and max(h.max(), t.max()) >= len(ent_names):
        bad = (h >= len(ent_names)) | (t >= len(ent_names))
        line = int(np.flatnonzero(bad)[0]) + 1
        raise DataError(str(f_kg), line, f"entity id beyond entity_list.txt ({len(ent_names)} entities)",
                        "use the entity_list.txt that came with kg_final.txt")
    report: dict[str, int] = {}
    key = (h * (r.max() + 1 if len(r) else 1) + r) * (max(h.max(), t.max()) + 1 if len(h) else 1) + t
    _, first = np.unique(key, return_index=True)
    if len(first) < len(key):
        report["duplicate_triples_dropped"] = int(len(key) - len(first))
        first.sort()
        h, r, t = h[first], r[first], t[first]
    rel = (np.array([_short_relation(x) for x in rel_names], dtype=object)[r] if rel_names is not None
           else np.char.add("r", r.astype(str)).astype(object))

    def end(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        is_item = x < n_items
        ids = x.astype(str).astype(object)
        if ent_names is not None:
            ids[~is_item] = np.asarray(ent_names, dtype=object)[x[~is_item]]
        ids[~is_item] = "kg:" + ids[~is_item]
        return np.where(is_item, "item", "entity"), ids

    ht, hid = end(h)
    tt, tid = end(t)
    triples = pd.DataFrame({"head_type": ht, "head": hid, "relation": rel, "tail_type": tt, "tail": tid})
    return KnowledgeTriples(kg_entities(triples), triples, report)


def _short_relation(uri: str) -> str:
    """``http://rdf.freebase.com/ns/music.artist.origin`` -> ``music.artist.origin``."""
    return uri.rsplit("/ns/", 1)[-1] if "/ns/" in uri else uri.rstrip("/").rsplit("/", 1)[-1].rsplit("#", 1)[-1]


def _id_list(path: Path) -> np.ndarray | None:
    """``org_id remap_id ...`` with a header: the org_ids in remap order, or None without the file."""
    if not path.exists():
        return None
    require_file(path)
    lines = decode(path, "utf-8").splitlines()
    header, rows = lines[0].split(), lines[1:]
    if header[:2] != ["org_id", "remap_id"]:
        raise DataError(str(path), 1, f"header is {lines[0][:80]!r}, expected 'org_id remap_id'",
                        "use the id list as KGAT ships it (header row, space-separated)")
    org, remap, line_no = [], [], []
    for no, line in enumerate(rows, start=2):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2 or not parts[1].isdigit():
            raise DataError(str(path), no, f"expected 'org_id remap_id', got {line[:80]!r}",
                            "each row needs an original id and an integer remap id")
        org.append(parts[0])
        remap.append(int(parts[1]))
        line_no.append(no)
    remap_a = np.asarray(remap, dtype=np.int64)
    if not np.array_equal(np.sort(remap_a), np.arange(len(remap_a))):
        seen = np.zeros(len(remap_a) + 1, bool)
        for r, no in zip(remap, line_no):
            if r >= len(remap_a) or seen[r]:
                raise DataError(str(path), no, f"remap_id {r} is repeated or out of 0..{len(remap_a) - 1}",
                                "remap ids must be 0, 1, 2 ... once each")
            seen[r] = True
    out = np.empty(len(org), dtype=object)
    out[remap_a] = org
    return out


def _pairs(path: Path, n_users: int | None, n_items: int | None
           ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ragged ``user item item ...`` lines -> (user per pair, item per pair, line per pair, users listed)."""
    text = decode(path, "utf-8")
    m = _BAD_CHAR.search(text)
    if m:
        line = text.count("\n", 0, m.start()) + 1
        raise DataError(str(path), line, f"'{m.group()}' in an id: ids must be non-negative integers",
                        "use the remap ids of user_list.txt / item_list.txt, separated by spaces")
    lines = text.split("\n")
    tokens = np.fromiter((len(line.split()) for line in lines), dtype=np.int64, count=len(lines))
    try:
        flat = np.array(text.split(), dtype=np.int64)
    except OverflowError:
        raise DataError(str(path), None, "an id is too large for a 64-bit integer",
                        "use the remap ids of user_list.txt / item_list.txt") from None
    nonempty = tokens > 0
    starts = np.concatenate([[0], np.cumsum(tokens)[:-1]])
    users = flat[starts[nonempty]]
    n_pairs = tokens[nonempty] - 1
    is_user = np.zeros(len(flat), bool)
    is_user[starts[nonempty]] = True
    items = flat[~is_user]
    pair_user = np.repeat(users, n_pairs)
    pair_line = np.repeat(np.flatnonzero(nonempty) + 1, n_pairs)
    if n_users is not None and len(users) and users.max() >= n_users:
        line = int(np.flatnonzero(nonempty)[np.flatnonzero(users >= n_users)[0]]) + 1
        raise DataError(str(path), line, f"user {int(users[users >= n_users][0])} is beyond user_list.txt "
                        f"({n_users} users)", "use the user_list.txt that came with this split")
    if n_items is not None and len(items) and items.max() >= n_items:
        k = int(np.flatnonzero(items >= n_items)[0])
        raise DataError(str(path), int(pair_line[k]), f"item {int(items[k])} is beyond item_list.txt "
                        f"({n_items} items)", "use the item_list.txt that came with this split")
    return pair_user, items, pair_line, users


def _int_matrix(path: Path, text: str, width: int) -> np.ndarray:
    m = _BAD_CHAR.search(text)
    if m:
        line = text.count("\n", 0, m.start()) + 1
        raise DataError(str(path), line, f"'{m.group()}' in an id: ids must be non-negative integers",
                        "each line holds 'head relation tail' as integers")
    flat = np.array(text.split(), dtype=np.int64)
    if len(flat) % width == 0:
        lines = [ln for ln in text.split("\n") if ln.strip()]
        if len(lines) * width == len(flat):
            return flat.reshape(-1, width)
    for no, line in enumerate(text.split("\n"), start=1):
        if line.strip() and len(line.split()) != width:
            raise DataError(str(path), no, f"expected {width} ids, found {len(line.split())}",
                            "each line holds 'head relation tail'")
    raise DataError(str(path), None, "could not read the triples", "each line holds 'head relation tail'")
