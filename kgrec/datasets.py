"""Open a data set by path, whatever its format: the CLI's single entry to the loaders.

A directory is recognised by the files in it (MovieLens 100K/1M/latest, HetRec Last.fm with an
optional KGCN KG beside it, KGAT); generic tables are given file by file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .settings import data_dir
from .errors import DataError
from .knowledge_graph import KnowledgeGraph
from .tables import from_tables

FORMATS = ("auto", "movielens", "lastfm", "kgat", "tables")


def detect_format(path: Path) -> str:
    """``movielens`` / ``lastfm`` / ``kgat`` from the files present in ``path``."""
    if not path.exists():
        raise DataError(str(path), None, "data directory not found",
                        "pass --data with the folder holding the data set (e.g. ml-100k/)")
    if path.is_file():
        raise DataError(str(path), None, "is a file; a data set folder was expected",
                        "pass the folder, or give tables with --interactions/--items")
    names = {p.name for p in path.iterdir()}
    if {"u.data"} <= names or {"ratings.dat"} <= names or {"ratings.csv", "movies.csv"} <= names:
        return "movielens"
    if "user_artists.dat" in names and "artists.dat" in names:
        return "lastfm"
    if "train.txt" in names and "item_list.txt" in names:
        return "kgat"
    raise DataError(str(path), None, f"no known data set format (files: {sorted(names)[:8]})",
                    "use a MovieLens, HetRec Last.fm or KGAT folder, or give generic tables with --interactions")


def load_dataset(path: str | Path | None = None, *, fmt: str = "auto", kg_dir: str | Path | None = None,
                 interactions: str | None = None, items: str | None = None, users: str | None = None,
                 triples: str | None = None, item_text: Sequence[str] | None = None,
                 user_text: Sequence[str] | None = None, **table_options) -> KnowledgeGraph:
    """Load a KnowledgeGraph from a data set folder or from generic tables.

    ``path=None`` with no tables means MovieLens-100K from the configured data dir."""
    from . import loaders

    if interactions is not None or fmt == "tables":
        if interactions is None:
            raise DataError("--interactions", None, "generic tables need an interactions file",
                            "pass --interactions ratings.csv")
        return from_tables(interactions, items=items, users=users, triples=triples,
                           item_text=list(item_text) if item_text else None,
                           user_text=list(user_text) if user_text else None, **table_options)
    path = Path(path) if path is not None else data_dir() / "ml-100k"
    fmt = detect_format(path) if fmt == "auto" else fmt
    if fmt == "movielens":
        return loaders.movielens(path)
    if fmt == "lastfm":
        if kg_dir is None and (path.parent / "lastfm-kgcn" / "kg.txt").exists():
            kg_dir = path.parent / "lastfm-kgcn"
        return loaders.hetrec_lastfm(path, kg_dir=kg_dir)
    if fmt == "kgat":
        return loaders.kgat(path)
    raise DataError(str(path), None, f"unknown format '{fmt}'", f"use one of {FORMATS}")
