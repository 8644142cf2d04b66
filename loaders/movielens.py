"""MovieLens, in the three layouts GroupLens ships, detected from the files present.

========================  ==========================================================  =========
layout                    files                                                       encoding
========================  ==========================================================  =========
``100k``                  u.data (tab), u.item / u.user / u.genre (``|``)             latin-1
``1m`` / ``10m``          ratings.dat, movies.dat, users.dat (1M), tags.dat (10M)     latin-1 / UTF-8
                          (fields separated by ``::``)
``latest`` / ``25m``      ratings.csv, movies.csv, tags.csv (quoted CSV, CRLF or LF)  UTF-8
========================  ==========================================================  =========

What becomes what
    - users, items (name = title), interactions (rating, timestamp in Unix seconds).
    - item attributes, as triples to entities: ``HAS_GENRE -> genre:<name>``,
      ``RELEASED_IN -> year:<yyyy>`` (100K: from the release date, else from the title;
      other layouts: the ``(yyyy)`` at the end of the title), ``HAS_TAG -> tag:<tag>`` (tags
      lower-cased and stripped, one edge per (movie, tag) however many users gave it).
    - user attributes (100K, 1M): ``HAS_AGE -> age:<bucket>`` (the ML-1M groups Under 18,
      18-24, 25-34, 35-44, 45-49, 50-55, 56+; raw 100K ages are bucketed the same way),
      ``HAS_GENDER -> gender:M|F`` (named male / female), ``HAS_OCCUPATION ->
      occupation:<name>`` (1M codes mapped to the README's names) and ``LIVES_IN ->
      zip:<first 3 characters of the zip code>``.
    - ``text`` is left empty so that :meth:`KnowledgeGraph.fill_texts` writes
      ``"Toy Story (1995). Genre: Animation, Children's, Comedy; Year: 1995"``.

Policies (each count shows in ``kg.summary().report``)
    - ML-100K's genre ``unknown`` is kept as the entity ``genre:unknown``: it is one of the 19
      genres u.genre lists and two movies (267, 1373) carry it.
    - A movie without a title (ML-100K item 267 reads ``unknown`` with no date) is named
      ``"Untitled movie <id>"`` (``items_without_title``); a movie with no year gets no
      RELEASED_IN edge (``items_without_year``).
    - ``(no genres listed)`` gives no genre edge (``items_without_genres``).
    - Tags on movies absent from movies.csv / movies.dat are dropped
      (``tags_unknown_movie_dropped``); empty tags are dropped (``tags_empty_dropped``).
    - Ratings that name a movie or user missing from the movie / user file raise
      :class:`kgrec.DataError` with the file and line.
    - Repeated (user, movie) ratings: the last row wins (``duplicate_interactions_merged``).
    - ML-100K lists 18 titles under two ids each (e.g. "Chasing Amy (1997)" is 246 and 268);
      ids are the data set's, so both stay separate items, as in every published result.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from kgrec.errors import DataError
from kgrec.knowledge_graph import KnowledgeGraph, isin

from ._io import check_known, decode, ids, numbers, read_delimited, require_dir, require_file

Layout = Literal["100k", "1m", "10m", "latest"]

AGE_GROUPS = {1: "Under 18", 18: "18-24", 25: "25-34", 35: "35-44", 45: "45-49", 50: "50-55", 56: "56+"}
ML1M_OCCUPATIONS = {
    0: "other", 1: "academic/educator", 2: "artist", 3: "clerical/admin", 4: "college/grad student",
    5: "customer service", 6: "doctor/health care", 7: "executive/managerial", 8: "farmer", 9: "homemaker",
    10: "K-12 student", 11: "lawyer", 12: "programmer", 13: "retired", 14: "sales/marketing", 15: "scientist",
    16: "self-employed", 17: "technician/engineer", 18: "tradesman/craftsman", 19: "unemployed", 20: "writer",
}
GENDERS = {"M": "male", "F": "female"}
NO_GENRES = "(no genres listed)"
_YEAR_IN_TITLE = re.compile(r"\((\d{4})(?:[-–]\d{0,4})?\)\s*$")


def detect_layout(path: str | Path) -> Layout:
    """Which MovieLens layout the folder holds: ``100k``, ``1m``, ``10m`` or ``latest``."""
    root = require_dir(path, "MovieLens")
    if (root / "u.data").exists():
        return "100k"
    if (root / "ratings.dat").exists():
        return "1m" if (root / "users.dat").exists() else "10m"
    if (root / "ratings.csv").exists():
        return "latest"
    found = sorted(p.name for p in root.iterdir())[:12]
    raise DataError(str(root), None, f"no MovieLens ratings file here (found: {', '.join(found) or 'nothing'})",
                    "pass the folder that holds u.data (100K), ratings.dat (1M/10M) or ratings.csv "
                    "(latest/20M/25M)")


def movielens(path: str | Path, *, tags: bool = True, user_attributes: bool = True,
              name: str | None = None) -> KnowledgeGraph:
    """Load a MovieLens folder (100K, 1M, 10M, 20M, 25M or latest) as a KnowledgeGraph.

    The layout is detected from the files present (:func:`detect_layout`); see the module
    docstring for what becomes a node, an attribute or an edge and for the policies on
    imperfect rows. ``tags=False`` skips the tag file, ``user_attributes=False`` the user
    demographics. Ids are the data set's own (``"1"``, ``"242"``...)."""
    root = require_dir(path, "MovieLens")
    layout = detect_layout(root)
    loader = {"100k": _load_100k, "1m": _load_dat, "10m": _load_dat, "latest": _load_csv}[layout]
    return loader(root, tags=tags, user_attributes=user_attributes, name=name or root.name)


# ---------------------------------------------------------------------------------------- 100K
def _load_100k(root: Path, *, tags: bool, user_attributes: bool, name: str) -> KnowledgeGraph:
    report: dict[str, int] = {}
    f_data, f_item, f_user, f_genre = (root / n for n in ("u.data", "u.item", "u.user", "u.genre"))
    require_file(f_item, "movies", "u.item comes with u.data in ml-100k.zip; re-extract the archive")
    require_file(f_genre, "genre names", "u.genre comes with u.data in ml-100k.zip; re-extract the archive")

    genres_df = read_delimited(require_file(f_genre), ["genre", "index"], sep="|", encoding="latin-1")
    genre_names = ids(genres_df, "genre", f_genre).tolist()
    gidx = numbers(genres_df, "index", f_genre, integer=True).astype(int).tolist()
    if sorted(gidx) != list(range(len(gidx))):
        raise DataError(str(f_genre), None, f"genre indexes are {gidx}, expected 0..{len(gidx) - 1}",
                        "restore u.genre from ml-100k.zip")
    genre_names = [g for _, g in sorted(zip(gidx, genre_names))]

    cols = ["item_id", "title", "release_date", "video_release_date", "url"] + [f"g{i}" for i in range(len(genre_names))]
    items = read_delimited(f_item, cols, sep="|", encoding="latin-1")
    item_ids = ids(items, "item_id", f_item, "movie id")
    _no_dup(item_ids, items, f_item, "movie id")
    title = items["title"].astype("string").str.strip()
    untitled = title.isna() | (title == "") | ((title.str.lower() == "unknown") & items["release_date"].isna())
    if untitled.any():
        report["items_without_title"] = int(untitled.sum())
        title = title.where(~untitled, "Untitled movie " + item_ids)
    year = items["release_date"].astype("string").str.extract(r"(\d{4})\s*$", expand=False)
    year = year.fillna(title.str.extract(_YEAR_IN_TITLE, expand=False))

    flags = items[[f"g{i}" for i in range(len(genre_names))]]
    bad = ~flags.isin(["0", "1"])
    if bad.to_numpy().any():
        r, c = (int(x[0]) for x in np.nonzero(bad.to_numpy()))
        raise DataError(str(f_item), int(items.index[r]), f"genre flag {genre_names[c]} is "
                        f"'{flags.iat[r, c]}', expected 0 or 1", "restore u.item from ml-100k.zip")
    fl = flags.to_numpy() == "1"
    rows, gcols = np.nonzero(fl)
    genre_edges = pd.DataFrame({"head": item_ids.to_numpy()[rows], "name": np.asarray(genre_names, dtype=object)[gcols]})

    data = read_delimited(require_file(f_data, "ratings"), ["user_id", "item_id", "rating", "timestamp"], sep="\t")
    inter = pd.DataFrame({
        "user_id": ids(data, "user_id", f_data, "user id").to_numpy(),
        "item_id": ids(data, "item_id", f_data, "movie id").to_numpy(),
        "rating": numbers(data, "rating", f_data).to_numpy(),
        "timestamp": numbers(data, "timestamp", f_data, integer=True).to_numpy(),
    })
    check_known(pd.Series(inter["item_id"].to_numpy(), index=data.index), pd.Index(item_ids), data, f_data,
                "movie id", "u.item")

    ent, trip = [], []
    _attr(ent, trip, "item", genre_edges["head"], genre_edges["name"], "genre", "HAS_GENRE",
          all_names=genre_names)
    ym = year.notna().to_numpy()
    if (~ym).any():
        report["items_without_year"] = int((~ym).sum())
    _attr(ent, trip, "item", item_ids[ym], year[ym], "year", "RELEASED_IN")

    users = None
    if f_user.exists():
        udf = read_delimited(require_file(f_user), ["user_id", "age", "gender", "occupation", "zip"], sep="|",
                             encoding="latin-1")
        uid = ids(udf, "user_id", f_user, "user id")
        _no_dup(uid, udf, f_user, "user id")
        check_known(pd.Series(inter["user_id"].to_numpy(), index=data.index), pd.Index(uid), data, f_data,
                    "user id", "u.user")
        users = pd.DataFrame({"user_id": uid.to_numpy()})
        if user_attributes:
            age = numbers(udf, "age", f_user, integer=True, allow_missing=True)
            _user_attrs(ent, trip, udf, uid, age_bucket(age), udf["gender"], udf["occupation"], udf["zip"], f_user)
    return _build(inter, users, pd.DataFrame({"item_id": item_ids.to_numpy(), "name": title.to_numpy()}),
                  ent, trip, report, name, {"interactions": str(f_data), "items": str(f_item)})


# ---------------------------------------------------------------------------------------- 1M / 10M
def _load_dat(root: Path, *, tags: bool, user_attributes: bool, name: str) -> KnowledgeGraph:
    report: dict[str, int] = {}
    f_r, f_m, f_u, f_t = (root / n for n in ("ratings.dat", "movies.dat", "users.dat", "tags.dat"))
    require_file(f_m, "movies", "movies.dat comes with ratings.dat in the MovieLens archive; re-extract it")
    movies = _split_dat(f_m, ["item_id", "title", "genres"], decode(require_file(f_m), "utf-8", fallback="latin-1"))
    items, ent, trip = _movies_table(movies, f_m, report)

    data = read_delimited(require_file(f_r, "ratings"), ["user_id", "item_id", "rating", "timestamp"], sep="::")
    inter = _ratings(data, f_r)
    check_known(pd.Series(inter["item_id"].to_numpy(), index=data.index), pd.Index(items["item_id"]), data, f_r,
                "movie id", "movies.dat")
    users = None
    if f_u.exists():
        udf = read_delimited(require_file(f_u), ["user_id", "gender", "age", "occupation", "zip"], sep="::",
                             encoding="latin-1")
        uid = ids(udf, "user_id", f_u, "user id")
        _no_dup(uid, udf, f_u, "user id")
        check_known(pd.Series(inter["user_id"].to_numpy(), index=data.index), pd.Index(uid), data, f_r,
                    "user id", "users.dat")
        users = pd.DataFrame({"user_id": uid.to_numpy()})
        if user_attributes:
            age = numbers(udf, "age", f_u, integer=True, allow_missing=True)
            occ_code = numbers(udf, "occupation", f_u, integer=True, allow_missing=True)
            occ = occ_code.map(ML1M_OCCUPATIONS, na_action="ignore")
            unknown = occ_code.notna() & occ.isna()
            if unknown.any():
                raise DataError(str(f_u), int(udf.index[np.flatnonzero(unknown.to_numpy())[0]]),
                                f"occupation code {occ_code[unknown].iloc[0]} is not one of ML-1M's 0..20",
                                "use the codes from the ML-1M README")
            _user_attrs(ent, trip, udf, uid, age_bucket(age, coded=True), udf["gender"], occ, udf["zip"], f_u)
    if tags and f_t.exists():
        t = _split_dat(f_t, ["user_id", "item_id", "tag", "timestamp"], decode(require_file(f_t), "utf-8",
                                                                                fallback="latin-1"))
        _tags(ent, trip, t, f_t, items, report)
    return _build(inter, users, items, ent, trip, report, name,
                  {"interactions": str(f_r), "items": str(f_m)})


def _split_dat(path: Path, names: list[str], text: str) -> pd.DataFrame:
    """``a::b::c`` lines whose *middle* field (title, tag) may itself hold ``::`` or ``:``: the
    first field is split off the left, the remaining fixed ones off the right."""
    n_right = len(names) - 2
    rows, lines = [], []
    for no, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        head, sep, rest = line.partition("::")
        parts = rest.rsplit("::", n_right) if sep else []
        if len(parts) != n_right + 1:
            raise DataError(str(path), no, f"expected {len(names)} fields separated by '::', found "
                            f"{1 + len(parts)}", f"each row needs {'::'.join(names)}")
        rows.append([head, *parts])
        lines.append(no)
    if not rows:
        raise DataError(str(path), None, "the file has no rows", "re-download or re-extract it")
    df = pd.DataFrame(rows, columns=names, index=lines, dtype="string")
    return df.replace("", pd.NA)


# ---------------------------------------------------------------------------------------- latest / 25M
def _load_csv(root: Path, *, tags: bool, user_attributes: bool, name: str) -> KnowledgeGraph:
    report: dict[str, int] = {}
    f_r, f_m, f_t = root / "ratings.csv", root / "movies.csv", root / "tags.csv"
    require_file(f_m, "movies", "movies.csv comes with ratings.csv in the MovieLens archive; re-extract it")
    movies = read_delimited(require_file(f_m), ["item_id", "title", "genres"], sep=",", header=True, quoted=True)
    _check_header(f_m, ["movieId", "title", "genres"])
    items, ent, trip = _movies_table(movies, f_m, report)
    _check_header(require_file(f_r, "ratings"), ["userId", "movieId", "rating", "timestamp"])
    data = read_delimited(f_r, ["user_id", "item_id", "rating", "timestamp"], sep=",", header=True)
    inter = _ratings(data, f_r)
    check_known(pd.Series(inter["item_id"].to_numpy(), index=data.index), pd.Index(items["item_id"]), data, f_r,
                "movieId", "movies.csv")
    if tags and f_t.exists():
        _check_header(require_file(f_t), ["userId", "movieId", "tag", "timestamp"])
        t = read_delimited(f_t, ["user_id", "item_id", "tag", "timestamp"], sep=",", header=True, quoted=True,
                           min_fields=3)
        _tags(ent, trip, t, f_t, items, report)
    return _build(inter, None, items, ent, trip, report, name,
                  {"interactions": str(f_r), "items": str(f_m)})


def _check_header(path: Path, expected: list[str]) -> None:
    with open(path, "rb") as fh:
        first = fh.readline().decode("utf-8", errors="replace").lstrip("\ufeff").strip()
    got = [c.strip().strip('"') for c in first.split(",")]
    if got[:len(expected)] != expected:
        raise DataError(str(path), 1, f"header is {first[:120]!r}, expected {','.join(expected)}",
                        "pass a MovieLens latest/25M folder, or load your own CSV with kgrec.from_tables(...)")


# ---------------------------------------------------------------------------------------- shared
def _ratings(data: pd.DataFrame, path: Path) -> pd.DataFrame:
    return pd.DataFrame({
        "user_id": ids(data, "user_id", path, "user id").to_numpy(),
        "item_id": ids(data, "item_id", path, "movie id").to_numpy(),
        "rating": numbers(data, "rating", path).to_numpy(),
        "timestamp": numbers(data, "timestamp", path, integer=True, allow_missing=True).to_numpy(),
    })


def _movies_table(movies: pd.DataFrame, path: Path, report: dict[str, int]
                  ) -> tuple[pd.DataFrame, list[pd.DataFrame], list[pd.DataFrame]]:
    """movies.dat / movies.csv (``id, title, genres`` with ``|``-separated genres)."""
    item_ids = ids(movies, "item_id", path, "movie id")
    _no_dup(item_ids, movies, path, "movie id")
    title = movies["title"].astype("string").str.strip()
    untitled = title.isna() | (title == "")
    if untitled.any():
        report["items_without_title"] = int(untitled.sum())
        title = title.where(~untitled, "Untitled movie " + item_ids)
    ent: list[pd.DataFrame] = []
    trip: list[pd.DataFrame] = []
    g = pd.DataFrame({"head": item_ids.to_numpy(), "genre": movies["genres"].astype("string").to_numpy()})
    none = g["genre"].isna() | (g["genre"].str.strip() == NO_GENRES) | (g["genre"].str.strip() == "")
    if none.any():
        report["items_without_genres"] = int(none.sum())
    g = g[~none.to_numpy()].assign(genre=lambda d: d["genre"].str.split("|")).explode("genre")
    g["genre"] = g["genre"].str.strip()
    g = g[g["genre"] != ""]
    _attr(ent, trip, "item", g["head"], g["genre"], "genre", "HAS_GENRE")
    year = title.str.extract(_YEAR_IN_TITLE, expand=False)
    ym = year.notna().to_numpy()
    if (~ym).any():
        report["items_without_year"] = int((~ym).sum())
    _attr(ent, trip, "item", item_ids[ym], year[ym], "year", "RELEASED_IN")
    return pd.DataFrame({"item_id": item_ids.to_numpy(), "name": title.to_numpy()}), ent, trip


def _tags(ent: list, trip: list, t: pd.DataFrame, path: Path, items: pd.DataFrame, report: dict[str, int]) -> None:
    item = ids(t, "item_id", path, "movie id")
    tag = t["tag"].astype("string").str.strip().str.lower().str.replace(r"\s+", " ", regex=True)
    empty = tag.isna() | (tag == "")
    if empty.any():
        report["tags_empty_dropped"] = int(empty.sum())
    unknown = ~isin(item, items["item_id"])
    if (unknown & ~empty).any():
        report["tags_unknown_movie_dropped"] = int((unknown & ~empty).sum())
    keep = (~empty & ~unknown).to_numpy()
    pairs = pd.DataFrame({"head": item[keep].to_numpy(), "name": tag[keep].to_numpy()})
    pairs = pairs.drop_duplicates()  # one edge per (movie, tag), however many users gave the tag
    _attr(ent, trip, "item", pairs["head"], pairs["name"], "tag", "HAS_TAG")


def age_bucket(age: pd.Series, coded: bool = False) -> pd.Series:
    """Ages in the ML-1M groups; ``coded=True`` reads ML-1M's codes (1, 18, 25, 35, 45, 50, 56)."""
    if coded:
        return age.map(AGE_GROUPS, na_action="ignore").astype("string")
    edges = [-np.inf, 18, 25, 35, 45, 50, 56, np.inf]
    labels = list(AGE_GROUPS.values())
    return pd.Series(pd.cut(age.astype("float64"), edges, right=False, labels=labels).astype("string"), index=age.index)


def _user_attrs(ent: list, trip: list, udf: pd.DataFrame, uid: pd.Series, age: pd.Series, gender: pd.Series,
                occupation: pd.Series, zipcode: pd.Series, path: Path) -> None:
    g = gender.astype("string").str.strip().str.upper()
    bad = g.notna() & ~g.isin(list(GENDERS))
    if bad.any():
        raise DataError(str(path), int(udf.index[np.flatnonzero(bad.to_numpy())[0]]),
                        f"gender '{gender[bad].iloc[0]}' is not M or F", "use M or F, or leave it empty")
    z = zipcode.astype("string").str.strip().str.upper().str[:3]
    occ = occupation.astype("string").str.strip()
    for values, kind, rel, names in ((age, "age", "HAS_AGE", None), (g, "gender", "HAS_GENDER", GENDERS),
                                     (occ, "occupation", "HAS_OCCUPATION", None), (z, "zip", "LIVES_IN", None)):
        v = pd.Series(values.to_numpy(), index=uid.index).astype("string")
        m = (v.notna() & (v != "")).to_numpy()
        _attr(ent, trip, "user", uid[m], v[m], kind, rel, display=names)


def _attr(ent: list, trip: list, head_type: str, heads: pd.Series, values: pd.Series, kind: str, relation: str,
          *, display: dict[str, str] | None = None, all_names: list[str] | None = None) -> None:
    """Append attribute entities ``<kind>:<value>`` and the edges ``head -relation-> entity``."""
    vals = pd.Series(values.to_numpy(), dtype="string")
    eid = kind + ":" + vals
    names = pd.unique(np.concatenate([np.asarray(all_names or [], dtype=object), vals.to_numpy(dtype=object)]))
    ent.append(pd.DataFrame({"entity_id": [f"{kind}:{n}" for n in names], "kind": kind,
                             "name": [display.get(n, n) if display else n for n in names]}))
    trip.append(pd.DataFrame({"head_type": head_type, "head": pd.Series(heads.to_numpy(), dtype="string").to_numpy(),
                              "relation": relation, "tail_type": "entity", "tail": eid.to_numpy()}))


def _no_dup(s: pd.Series, df: pd.DataFrame, path: Path, what: str) -> None:
    dup = s.duplicated()
    if dup.any():
        raise DataError(str(path), int(df.index[np.flatnonzero(dup.to_numpy())[0]]),
                        f"{what} '{s[dup].iloc[0]}' appears twice", f"keep one row per {what}")


def _build(inter: pd.DataFrame, users: pd.DataFrame | None, items: pd.DataFrame, ent: list, trip: list,
           report: dict[str, int], name: str, sources: dict[str, str]) -> KnowledgeGraph:
    entities = pd.concat(ent, ignore_index=True).drop_duplicates("entity_id") if ent else None
    triples = pd.concat(trip, ignore_index=True) if trip else None
    return KnowledgeGraph.build(interactions=inter, users=users, items=items, entities=entities, triples=triples,
                                name=name, report=report, sources=sources)
