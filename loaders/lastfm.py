"""HetRec 2011 Last.fm (hetrec2011-lastfm-2k), optionally joined with the KGCN / RippleNet
music knowledge graph (``kg.txt`` + ``item_index2entity_id.txt``).

What becomes what
    - users: the ``userID`` of user_artists.dat (and of user_friends.dat);
      items: artists.dat (``item_id`` = HetRec artistID, ``name`` = artist name);
      interactions: user_artists.dat, the listen count in ``weight`` (``rating`` is NaN).
    - user_taggedartists.dat + tags.dat: item attributes ``HAS_TAG -> tag:<tag value>`` (kind
      ``tag``), one edge per (artist, tag), the tags most users gave an artist first (so that the
      item text ``"<artist>. Tag: rock, 80s, ..."`` shows the strongest ones).
    - user_taggedartists.dat also gives user-item edges ``TAGGED`` (head_type ``user``, tail_type
      ``item``; ``tagged_artists=True``), one per (user, artist) pair the user tagged: a second
      behaviour, which kgrec trains on and propagates as it does listens, but never excludes
      from a user's recommendations (:func:`kgrec.graph.tensors.with_user_item_triples`).
    - user_friends.dat: user-user edges ``FRIEND_OF`` (head_type ``user``, tail_type ``user``),
      one per row as given (the file lists each friendship in both directions).
    - KGCN KG (``kg_dir``): see :func:`kgcn_kg`; KG entities that are artists become the item
      itself, the others ``kg:<entity id>`` entities of kind ``kg``.

Policies (each count shows in ``kg.summary().report``)
    - Tag assignments to artists absent from artists.dat (390 artists upstream: a known quirk of
      the HetRec release) are dropped: ``tag_assignments_unknown_artist_dropped`` rows, naming
      ``tagged_artists_missing_from_artists_dat`` artists.
    - ``min_tag_users`` (default 1: keep every tag): an (artist, tag) pair given by fewer users
      is dropped: ``artist_tags_below_min_users_dropped``. Tags that no kept edge uses get no
      entity node: ``tags_unused``.
    - Tag assignments whose tagID is not in tags.dat, listens of artists absent from
      artists.dat and friendships naming unknown users raise :class:`kgrec.DataError`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from kgrec.errors import DataError
from kgrec.knowledge_graph import KnowledgeGraph, isin

from ._io import check_known, ids, numbers, read_delimited, require_dir, require_file
from ._kg import KnowledgeTriples, kg_entities

HETREC_FILES = ("artists.dat", "tags.dat", "user_artists.dat", "user_taggedartists.dat", "user_friends.dat")


def hetrec_lastfm(hetrec_dir: str | Path, kg_dir: str | Path | None = None, *, min_tag_users: int = 1,
                  tags: bool = True, tagged_artists: bool = True, friends: bool = True,
                  name: str | None = None) -> KnowledgeGraph:
    """Load HetRec 2011 Last.fm (and, with ``kg_dir``, the KGCN music KG) as a KnowledgeGraph.

    ``hetrec_dir`` holds artists.dat (UTF-8), tags.dat (latin-1, CRLF), user_artists.dat,
    user_taggedartists.dat and user_friends.dat; only artists.dat and user_artists.dat are
    required. ``min_tag_users`` keeps an artist's tag only when at least that many users gave
    it. See the module docstring for the mapping and the policies."""
    root = require_dir(hetrec_dir, "HetRec Last.fm")
    report: dict[str, int] = {}
    f_art, f_tags, f_ua, f_uta, f_uf = (root / n for n in HETREC_FILES)
    fix = "artists.dat and user_artists.dat come in hetrec2011-lastfm-2k.zip; re-extract it"
    art = read_delimited(require_file(f_art, "artists", fix), ["id", "name", "url", "pictureURL"], sep="\t",
                         header=True, min_fields=2)
    _header(f_art, ["id", "name"])
    artist_ids = ids(art, "id", f_art, "artist id")
    dup = artist_ids.duplicated()
    if dup.any():
        raise DataError(str(f_art), int(art.index[np.flatnonzero(dup.to_numpy())[0]]),
                        f"artist id '{artist_ids[dup].iloc[0]}' appears twice", "keep one row per artist")
    names = art["name"].astype("string").str.strip()
    if (names.isna() | (names == "")).any():
        empty = (names.isna() | (names == "")).to_numpy()
        report["artists_without_name"] = int(empty.sum())
        names = names.where(~empty, "Artist " + artist_ids)
    items = pd.DataFrame({"item_id": artist_ids.to_numpy(), "name": names.to_numpy()})
    known_items = pd.Index(items["item_id"])

    ua = read_delimited(require_file(f_ua, "listens", fix), ["userID", "artistID", "weight"], sep="\t", header=True)
    _header(f_ua, ["userID", "artistID", "weight"])
    inter = pd.DataFrame({"user_id": ids(ua, "userID", f_ua, "userID").to_numpy(),
                          "item_id": ids(ua, "artistID", f_ua, "artistID").to_numpy(),
                          "weight": numbers(ua, "weight", f_ua).to_numpy()})
    check_known(pd.Series(inter["item_id"].to_numpy(), index=ua.index), known_items, ua, f_ua, "artistID",
                "artists.dat")
    users = pd.Index(pd.unique(inter["user_id"]))
    ent: list[pd.DataFrame] = []
    trip: list[pd.DataFrame] = []

    if (tags or tagged_artists) and f_uta.exists():
        tag_df = read_delimited(require_file(f_tags, "tag names", "tags.dat comes with user_taggedartists.dat"),
                                ["tagID", "tagValue"], sep="\t", header=True, encoding="latin-1")
        tag_ids = ids(tag_df, "tagID", f_tags, "tagID")
        tag_val = tag_df["tagValue"].astype("string").str.strip()
        tag_val = tag_val.where(tag_val.notna() & (tag_val != ""), "tag " + tag_ids)
        uta = read_delimited(require_file(f_uta), ["userID", "artistID", "tagID", "day", "month", "year"], sep="\t",
                             header=True, min_fields=3)
        _header(f_uta, ["userID", "artistID", "tagID"])
        t_user = ids(uta, "userID", f_uta, "userID")
        t_art = ids(uta, "artistID", f_uta, "artistID")
        t_tag = ids(uta, "tagID", f_uta, "tagID")
        check_known(t_tag, pd.Index(tag_ids), uta, f_uta, "tagID", "tags.dat")
        known = isin(t_art, known_items).to_numpy()
        if (~known).any():
            report["tag_assignments_unknown_artist_dropped"] = int((~known).sum())
            report["tagged_artists_missing_from_artists_dat"] = int(t_art[~known].nunique())
        art_k, user_k = t_art.to_numpy()[known], t_user.to_numpy()[known]
        if tags:
            pairs = pd.DataFrame({"item": art_k, "tag": t_tag.to_numpy()[known], "user": user_k})
            counts = pairs.groupby(["item", "tag"], sort=False)["user"].nunique().rename("n").reset_index()
            if min_tag_users > 1:
                low = counts["n"] < min_tag_users
                report["artist_tags_below_min_users_dropped"] = int(low.sum())
                counts = counts[~low.to_numpy()]
            # strongest tags first within each artist (stable: ties keep file order)
            counts = counts.assign(_o=np.arange(len(counts))).sort_values(
                ["item", "n", "_o"], ascending=[True, False, True], kind="stable")
            value_of = pd.Series(tag_val.to_numpy(), index=tag_ids.to_numpy())
            tail_name = value_of.reindex(counts["tag"].to_numpy()).to_numpy()
            tail = "tag:" + pd.Series(tail_name, dtype="string")
            used = pd.unique(tail_name)
            unused = len(tag_ids) - len(used)
            if unused:
                report["tags_unused"] = int(unused)
            ent.append(pd.DataFrame({"entity_id": "tag:" + pd.Series(used, dtype="string"), "kind": "tag",
                                     "name": used}))
            trip.append(pd.DataFrame({"head_type": "item", "head": counts["item"].to_numpy(), "relation": "HAS_TAG",
                                      "tail_type": "entity", "tail": tail.to_numpy()}))
        extra_users = pd.Index(pd.unique(t_user)).difference(users)
        users = users.append(extra_users)
        if tagged_artists:
            tagged = pd.DataFrame({"head": user_k, "tail": art_k}).drop_duplicates()
            trip.append(pd.DataFrame({"head_type": "user", "head": tagged["head"].to_numpy(), "relation": "TAGGED",
                                      "tail_type": "item", "tail": tagged["tail"].to_numpy()}))

    if friends and f_uf.exists():
        uf = read_delimited(require_file(f_uf), ["userID", "friendID"], sep="\t", header=True)
        _header(f_uf, ["userID", "friendID"])
        a = ids(uf, "userID", f_uf, "userID")
        b = ids(uf, "friendID", f_uf, "friendID")
        known_users = users.append(pd.Index(pd.unique(a)).difference(users))
        check_known(b, known_users, uf, f_uf, "friendID", "the users of user_artists.dat / user_friends.dat")
        users = known_users
        trip.append(pd.DataFrame({"head_type": "user", "head": a.to_numpy(), "relation": "FRIEND_OF",
                                  "tail_type": "user", "tail": b.to_numpy()}))

    if kg_dir is not None:
        kg_ent, kg_trip, kg_report = kgcn_kg(kg_dir, items=known_items)
        ent.append(kg_ent)
        trip.append(kg_trip)
        report.update(kg_report)

    return KnowledgeGraph.build(
        interactions=inter, users=pd.DataFrame({"user_id": users.to_numpy()}), items=items,
        entities=pd.concat(ent, ignore_index=True) if ent else None,
        triples=pd.concat(trip, ignore_index=True) if trip else None,
        name=name or root.name + ("+kg" if kg_dir is not None else ""), report=report,
        sources={"interactions": str(f_ua), "items": str(f_art)})


def kgcn_kg(kg_dir: str | Path, items: pd.Index | list[str] | None = None
            ) -> KnowledgeTriples:
    """Read a KGCN / RippleNet / KGNN-LS knowledge graph folder.

    Files: ``kg.txt`` (``head<TAB>relation<TAB>tail``, entity ids, relation names such as
    ``music.artist.origin``; a ``kg_final.txt`` with the same columns is read when kg.txt is
    absent) and ``item_index2entity_id.txt`` (``item_id<TAB>entity_id``, the item ids of the
    source data set: HetRec artistIDs for Last.fm, MovieLens movieIds for the movie KG).

    Returns ``(entities, triples, report)`` in :class:`KnowledgeGraph` columns: an entity that
    is an item becomes that item (``head_type``/``tail_type`` ``item``, the caller's item id);
    every other entity becomes ``kg:<entity id>`` of kind ``kg``, its ``text`` naming the
    relations that reach it (``"KG entity: music.artist.origin"``), since KGCN gives entities
    no names. With ``items`` (the caller's item ids), mapped items outside it are treated as
    plain entities ``kg:<id>`` and counted in ``report['kg_items_not_in_data']``.
    Pass the results to ``KnowledgeGraph.build(..., entities=, triples=)`` or
    ``kgrec.from_tables(..., triples=triples)``."""
    root = require_dir(kg_dir, "KGCN knowledge graph")
    f_kg = root / "kg.txt"
    if not f_kg.exists() and (root / "kg_final.txt").exists():
        f_kg = root / "kg_final.txt"
    f_map = root / "item_index2entity_id.txt"
    fix = "KGCN's data/<dataset>/ folder holds kg.txt and item_index2entity_id.txt; copy both"
    mp = read_delimited(require_file(f_map, "item to entity map", fix), ["item", "entity"], sep="\t")
    m_item = ids(mp, "item", f_map, "item id")
    m_ent = ids(mp, "entity", f_map, "entity id")
    dup = m_ent.duplicated()
    if dup.any():
        raise DataError(str(f_map), int(mp.index[np.flatnonzero(dup.to_numpy())[0]]),
                        f"entity id '{m_ent[dup].iloc[0]}' is mapped to two items", "map each entity to one item")
    report: dict[str, int] = {}
    if items is not None:
        inside = isin(m_item, pd.Index(items)).to_numpy()
        if (~inside).any():
            report["kg_items_not_in_data"] = int((~inside).sum())
        m_item, m_ent = m_item[inside], m_ent[inside]
    item_of = pd.Series(m_item.to_numpy(), index=m_ent.to_numpy())

    kg = read_delimited(require_file(f_kg, "knowledge graph triples", fix), ["head", "relation", "tail"], sep="\t")
    h = ids(kg, "head", f_kg, "head entity")
    r = ids(kg, "relation", f_kg, "relation")
    t = ids(kg, "tail", f_kg, "tail entity")
    h_item = item_of.reindex(h.to_numpy()).to_numpy()
    t_item = item_of.reindex(t.to_numpy()).to_numpy()
    h_is = pd.notna(h_item)
    t_is = pd.notna(t_item)
    triples = pd.DataFrame({
        "head_type": np.where(h_is, "item", "entity"),
        "head": np.where(h_is, h_item, "kg:" + h.to_numpy(dtype=object)),
        "relation": r.to_numpy(),
        "tail_type": np.where(t_is, "item", "entity"),
        "tail": np.where(t_is, t_item, "kg:" + t.to_numpy(dtype=object)),
    })
    entities = kg_entities(triples)
    return KnowledgeTriples(entities, triples, report)


def _header(path: Path, expected: list[str]) -> None:
    with open(path, "rb") as fh:
        first = fh.readline().decode("latin-1").lstrip("\ufeff").rstrip("\r\n")
    got = first.split("\t")
    if got[:len(expected)] != expected:
        raise DataError(str(path), 1, f"header is {first[:120]!r}, expected {chr(9).join(expected)!r} "
                        "(tab-separated)", "pass the HetRec 2011 Last.fm files as released (tab-separated, header row)")
