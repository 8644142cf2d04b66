"""Loaders: one module per source format, each returning a :class:`kgrec.KnowledgeGraph`.

=====================================  ==================================================
``movielens(path)``                    MovieLens 100K / 1M / 10M / 20M / 25M / latest
``download_movielens(name)``           fetch + sha256-check + cache a MovieLens archive
``hetrec_lastfm(dir, kg_dir=None)``    HetRec 2011 Last.fm (+ KGCN music KG)
``kgcn_kg(dir)``                       a KGCN / RippleNet KG folder -> knowledge triples
``kgat(dir)`` / ``kgat_split(dir)``    KGAT format: whole graph / its given (train, test)
``kgat_interactions(file)``            one KGAT-format train.txt / test.txt as (user, item) pairs
``kgat_kg(dir)``                       KGAT kg_final.txt -> knowledge triples
``rdf_triples`` / ``from_rdf``         knowledge triples from RDF (rdflib)
``to_rdf`` / ``read_rdf``              a KnowledgeGraph to RDF and back
``to_networkx``                        a KnowledgeGraph as a networkx MultiDiGraph
=====================================  ==================================================

Generic tables: :func:`kgrec.from_tables`.
"""

from ._kg import KnowledgeTriples
from .download import MOVIELENS_ARCHIVES, download_movielens
from .export import node_key, to_networkx
from .kgat import kgat, kgat_interactions, kgat_kg, kgat_split
from .lastfm import hetrec_lastfm, kgcn_kg
from .movielens import detect_layout, movielens
from .rdf import from_rdf, parse_rdf, rdf_triples, read_rdf, to_rdf

__all__ = ["KnowledgeTriples", "MOVIELENS_ARCHIVES", "detect_layout", "download_movielens", "from_rdf",
           "hetrec_lastfm", "kgat", "kgat_interactions", "kgat_kg", "kgat_split", "kgcn_kg", "movielens",
           "node_key", "parse_rdf", "rdf_triples", "read_rdf", "to_networkx", "to_rdf"]
