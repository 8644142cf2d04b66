"""What training starts from: the graph's tensors and a fresh model sized and initialised for it."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..graph.tensors import GraphIndex, GraphTensors, build_graph
from ..knowledge_graph import NODE_TYPES, KnowledgeGraph
from ..nn.model import KGRecModel
from .config import TrainConfig


def training_graph(kg: KnowledgeGraph, features: dict[str, np.ndarray] | None, config: TrainConfig,
                   device: torch.device) -> tuple[GraphIndex, GraphTensors]:
    """The index and tensors of ``kg`` as ``config`` asks for them (text features only with
    ``use_text``, knowledge edges only with ``use_kg``), on ``device`` with their cached sparse
    structures built."""
    if config.use_text and features is None:
        raise ValueError("use_text=True needs text features: pass features=kgrec.text_features.encode_graph(kg) "
                         "or set use_text=False")
    index, graph = build_graph(kg, features if config.use_text else None, use_kg=config.use_kg,
                               user_item_triples=config.user_item_triples,
                               pair_weights=config.interaction_weight == "rating")
    if len(graph.inter_user) == 0:
        raise ValueError("the training graph has no interactions")
    return index, graph.to(device).prepare()


def new_model(index: GraphIndex, graph: GraphTensors, config: TrainConfig, device: torch.device) -> KGRecModel:
    """A :class:`KGRecModel` for ``graph`` with ``config``'s settings (``config.temperature``
    already resolved), its text basis fitted to the graph's features (:func:`fit_text_basis`)."""
    model = KGRecModel(index.num_users, index.num_items, index.num_entities, index.num_edge_types,
                       graph.x.shape[1] if graph.x is not None else 0, config.dim, config.layers,
                       use_text=config.use_text, use_id=config.use_id, use_kg=config.use_kg,
                       id_dropout=config.id_dropout, item_bias=config.item_bias,
                       temperature=config.temperature).to(device)
    if model.use_text:
        fit_text_basis(model, {t: graph.x[s] for t, s in model.type_slices().items()})
    return model


@torch.no_grad()
def fit_text_basis(model: KGRecModel, features: dict[str, Tensor]) -> None:
    """Set each node type's text basis (``model.text_basis``) to the top ``text_rank``
    right-singular vectors of its training features ``[n_t, F]``: the eigenvectors of
    :math:`\\mathbf{X}_t^\\top \\mathbf{X}_t` with the largest eigenvalues, largest first."""
    for k, t in enumerate(NODE_TYPES):
        x = features.get(t)
        if x is None or len(x) == 0:
            continue
        gram = x.double().T @ x.double()
        _, vecs = torch.linalg.eigh(gram)            # ascending eigenvalues
        basis = vecs[:, -model.text_rank:].flip(1)    # top directions first
        model.text_basis[k] = basis.to(model.text_basis.dtype)
