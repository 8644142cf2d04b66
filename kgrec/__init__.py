"""kgrec: knowledge-graph-augmented recommendation.

    import kgrec
    kg = kgrec.loaders.movielens("path/to/ml-100k")
    train, test = kg.split("random", test=0.2, seed=0)
    rec = kgrec.Recommender().fit(train)
    rec.recommend(users=["1"], k=20)
"""

from __future__ import annotations

import os
from importlib import import_module

# PyTorch's CPU allocator reads this once, at torch's first allocation: when kgrec is imported
# before torch, large CPU tensors are backed by transparent huge pages (docs/large_graphs.md)
os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
from typing import Any

from .errors import DataError, KgrecError, ModelError, SchemaError, StoreError, UnknownIdError
from .knowledge_graph import GraphSummary, KnowledgeGraph
from .tables import from_tables

__version__ = "0.1.0"

_LAZY = {
    "loaders": ("kgrec.loaders", None),
    "Recommender": ("kgrec.recommender", "Recommender"),
    "open_store": ("kgrec.store", "open_store"),
    "to_heterodata": ("kgrec.graph.heterodata", "to_heterodata"),
}


def __getattr__(name: str) -> Any:  # heavy parts (torch, drivers) load on first use
    if name in _LAZY:
        module, attr = _LAZY[name]
        mod = import_module(module)
        return mod if attr is None else getattr(mod, attr)
    raise AttributeError(f"module 'kgrec' has no attribute '{name}'")


__all__ = ["DataError", "GraphSummary", "KgrecError", "KnowledgeGraph", "ModelError", "Recommender",
           "SchemaError", "StoreError", "UnknownIdError", "from_tables", "loaders", "open_store",
           "to_heterodata", "__version__"]
