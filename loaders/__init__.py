"""Loaders: one module per source format, each returning a :class:`kgrec.KnowledgeGraph`."""

from .kgat import kgat, kgat_kg, kgat_split
from .lastfm import hetrec_lastfm, kgcn_kg
from .movielens import detect_layout, movielens

__all__ = ["detect_layout", "hetrec_lastfm", "kgat", "kgat_kg", "kgat_split", "kgcn_kg", "movielens"]
