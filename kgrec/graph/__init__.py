"""The graph as tensors: the canonical PyG ``HeteroData`` view, the homogeneous tensors the
model propagates over, and the CSR helpers that group entries by row."""

from .heterodata import to_heterodata
from .tensors import GraphIndex, GraphTensors, build_graph

__all__ = ["GraphIndex", "GraphTensors", "build_graph", "to_heterodata"]
