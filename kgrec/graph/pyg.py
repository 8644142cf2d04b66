"""PyTorch Geometric, the parts kgrec uses, imported once without the notice its import raises.

PyG's import runs ``torch.jit.script`` on a few helpers, which recent torch answers with a
``FutureWarning`` ("torch.jit.script is deprecated") that says nothing to a kgrec user; that one
warning is silenced for the import, every other warning stays.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated", category=FutureWarning)
    from torch_geometric.data import HeteroData
    from torch_geometric.metrics import (LinkPredHitRatio, LinkPredMetricCollection, LinkPredMRR, LinkPredNDCG,
                                         LinkPredPrecision, LinkPredRecall)
    from torch_geometric.nn.models import LightGCN
    from torch_geometric.nn.models.lightgcn import BPRLoss

__all__ = ["BPRLoss", "HeteroData", "LightGCN", "LinkPredHitRatio", "LinkPredMRR", "LinkPredMetricCollection",
           "LinkPredNDCG", "LinkPredPrecision", "LinkPredRecall"]
