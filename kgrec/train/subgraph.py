"""Neighbour-sampled subgraphs: the training mode whose memory is bounded by the batch.

In ``training_mode="subgraph"`` (:func:`training_mode`) a step does not propagate over the
whole graph. Its seeds -- the batch's users, its positive items and its shared negatives -- are
the only nodes whose final representations the loss reads, and a seed's :math:`L`-layer
representation depends only on its :math:`L`-hop neighbourhood. :meth:`SubgraphSampler.sample`
draws that neighbourhood with at most ``fanout`` interaction neighbours per node and hop (and at
most ``fanout`` knowledge neighbours per user or item, which the first layer hears), so a step
touches at most :math:`|S| (1 + k + \\dots + k^L)` nodes for :math:`|S|` seeds and fanout
:math:`k`, whatever the size of the graph; an epoch of ``pairs / batch_size`` such steps costs time
linear in the data.

A node :math:`v` with :math:`d_v` neighbours of a kind keeps them all when :math:`d_v \\le k`;
otherwise :math:`k` are drawn uniformly with replacement and each message is weighted by
:math:`d_v / k`, so that the sampled sum is an unbiased estimate of the full one:

.. math::
    \\mathbb{E}\\Big[\\frac{d_v}{k} \\sum_{j=1}^{k} w_{u_j v} \\mathbf{h}_{u_j}\\Big]
    = \\sum_{u \\in \\mathcal{N}(v)} w_{uv} \\mathbf{h}_u

(the weights :math:`w_{uv}` keep the full graph's degrees). Every layer is computed over the
whole sampled node set; a node first reached at hop :math:`d` has exact (sampled) layers up to
:math:`L - d`, and the seeds (hop 0) all :math:`L` of theirs. The ID embeddings of the sampled
nodes are gathered with a sparse gradient (:func:`subgraph_forward`),
which :class:`torch.optim.SparseAdam` applies to those rows alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from ..graph.csr import csr_indptr, gather_rows, relation_pairs, sparse_csr
from ..graph.tensors import GraphTensors
from ..knowledge_graph import NODE_TYPES
from ..nn.model import KGRecModel
from ..nn.sparse import sparse_mm
from .config import TrainConfig

BYTES_PER_FLOAT = 4
MEMORY_SHARE = 0.5   # "auto" trains the full graph while its estimate fits in this share of free memory


@dataclass
class Subgraph:
    """One step's sampled subgraph. ``nodes`` ``[S]``: its nodes' homogeneous positions, sorted
    (so each node type is one contiguous block); ``adj``, ``adj_t``: the sampled, reweighted
    interaction messages as sparse CSR ``[S, S]`` (rows are targets) and its transpose;
    ``knowledge``: the sampled knowledge messages into users and items as
    :func:`kgrec.graph.csr.relation_pairs` over local rows (``pair_src`` local too)."""

    nodes: Tensor
    adj: Tensor
    adj_t: Tensor
    knowledge: tuple[Tensor, Tensor, Tensor, Tensor] | None

    def rows(self, positions: Tensor) -> Tensor:
        """Local rows of the homogeneous ``positions`` (each must be a node of the subgraph)."""
        return torch.searchsorted(self.nodes, positions)


class NodeRows:
    """The final representations of a subgraph's nodes, indexed by homogeneous position as the
    full graph's ``z`` is (what :func:`kgrec.train.losses.softmax_losses` reads)."""

    def __init__(self, z: Tensor, subgraph: Subgraph) -> None:
        self.z, self.subgraph = z, subgraph

    def __getitem__(self, positions: Tensor) -> Tensor:
        return self.z[self.subgraph.rows(positions)]


class SubgraphSampler:
    """Draws :class:`Subgraph` s of a training graph (see the module docstring). Holds the
    graph's in-neighbour lists (CSR by target) of the interaction edges and of the knowledge
    edges into users and items."""

    def __init__(self, graph: GraphTensors, fanout: int, layers: int) -> None:
        if fanout <= 0:
            raise ValueError(f"fanout must be positive (got {fanout})")
        self.graph, self.fanout, self.layers = graph, fanout, layers
        adj = graph.interaction_adjacency()
        self.indptr = adj.crow_indices().long()
        self.source = adj.col_indices().long()
        self.weight = adj.values()
        src, dst, etype, norm = graph.knowledge_edges()
        ui = graph.num_users + graph.num_items
        into = dst < ui
        order = torch.sort(dst[into], stable=True).indices
        self.k_indptr = csr_indptr(dst[into], ui)
        self.k_source, self.k_type, self.k_weight = src[into][order], etype[into][order], norm[into][order]

    def _draw(self, indptr: Tensor, targets: Tensor, gen: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """``(target, entry, scale)``: for each of ``targets`` all its entries (``scale`` 1) when
        it has at most ``fanout``, else ``fanout`` drawn uniformly with replacement (``scale``
        ``degree / fanout``)."""
        start = indptr[targets]
        deg = indptr[targets + 1] - start
        take = deg.clamp(max=self.fanout)
        if bool((deg > self.fanout).any()):
            local = torch.repeat_interleave(torch.arange(len(targets), device=deg.device), take)
            first = torch.cumsum(take, 0) - take
            k = torch.arange(len(local), device=deg.device) - first[local]
            u = torch.rand(len(local), generator=gen, device=gen.device).to(deg.device)
            drawn = (u * deg[local]).long().clamp(max=deg[local] - 1)
            entry = start[local] + torch.where(deg[local] > self.fanout, drawn, k)
        else:
            local, entry = gather_rows(indptr, targets)
        scale = deg[local].float() / take[local].clamp(min=1).float()
        return targets[local], entry, scale

    def sample(self, seeds: Tensor, gen: torch.Generator) -> Subgraph:
        """The subgraph of ``seeds`` (homogeneous positions of users and items; repeats allowed)."""
        seeds = torch.unique(seeds)
        seen, frontier = [seeds], seeds
        tgt, src, w = [], [], []
        for _ in range(self.layers):
            if len(frontier) == 0:
                break
            t, e, scale = self._draw(self.indptr, frontier, gen)
            s = self.source[e]
            tgt.append(t)
            src.append(s)
            w.append(self.weight[e] * scale)
            known = torch.unique(torch.cat(seen))
            new = torch.unique(s)
            frontier = new[~torch.isin(new, known)]
            seen.append(frontier)
        receivers = torch.unique(torch.cat(seen[:-1] if len(seen) > 1 else seen))  # nodes whose layer 1 is read
        kt, ke, kscale = self._draw(self.k_indptr, receivers, gen)
        ks = self.k_source[ke]
        nodes = torch.unique(torch.cat(seen + [ks]))
        size = len(nodes)
        tgt_l = torch.searchsorted(nodes, torch.cat(tgt)) if tgt else nodes.new_zeros(0)
        src_l = torch.searchsorted(nodes, torch.cat(src)) if src else nodes.new_zeros(0)
        weight = torch.cat(w) if w else self.weight.new_zeros(0)
        index = torch.stack([tgt_l, src_l])
        adj = sparse_csr(index, weight, (size, size))
        adj_t = sparse_csr(index.flip(0), weight, (size, size))
        knowledge = None
        if len(ke):
            knowledge = relation_pairs(torch.searchsorted(nodes, ks), self.k_type[ke],
                                       torch.searchsorted(nodes, kt), self.k_weight[ke] * kscale, size,
                                       self.graph.num_edge_types)
        return Subgraph(nodes, adj, adj_t, knowledge)

    def max_nodes(self, num_seeds: int) -> int:
        """The most nodes a subgraph of ``num_seeds`` seeds can have: ``num_seeds`` times
        :math:`1 + k + \\dots + k^L` interaction nodes, plus ``fanout`` knowledge sources for each
        node below the last hop."""
        k, L = self.fanout, self.layers
        inner = num_seeds * sum(k ** d for d in range(L))      # hops 0 .. L-1
        return inner + num_seeds * k ** L + inner * k


def subgraph_forward(model: KGRecModel, sub: Subgraph, x: Tensor | None, id_mask: Tensor | None = None) -> Tensor:
    """L2-normalised final representations ``[S, dim]`` of ``sub``'s nodes under ``model`` (exact
    for its seeds, on the sampled neighbourhood): layer 0 from the nodes' reduced features ``x``
    ``[S, text_rank]`` and their ID embeddings, gathered with a sparse gradient (``id_mask``
    ``[S]`` scales them); then the layers of :meth:`kgrec.nn.model.KGRecModel.propagate` over the
    sampled interaction messages, the first one plus the sampled knowledge messages."""
    nodes = sub.nodes
    parts = []
    if model.use_text:
        if x is None:
            raise ValueError("this model uses text features (use_text=True) but none were given")
        bounds = torch.tensor([model.num_users, model.num_users + model.num_items], device=nodes.device)
        cut = torch.searchsorted(nodes, bounds).tolist()  # nodes are sorted: one block per type
        blocks = zip(NODE_TYPES, [0] + cut, cut + [len(nodes)])
        parts.append(torch.cat([model.text_proj[t](x[a:b]) for t, a, b in blocks], 0))
    if model.use_id:
        e = F.embedding(nodes, model.id_embedding.weight, sparse=True)
        parts.append(e if id_mask is None else e * id_mask.unsqueeze(-1).to(e.dtype))
    h = parts[0] if len(parts) == 1 else parts[0] + parts[1]
    knowledge = model.relation_message(h, sub.knowledge) if sub.knowledge is not None else None
    layers = [h]
    for layer in range(model.num_layers):
        h = sparse_mm(sub.adj, sub.adj_t, h)
        if knowledge is not None and layer == 0:
            h = h + knowledge
        layers.append(h)
    return model.combine(layers)


def full_graph_bytes(graph: GraphTensors, config: TrainConfig) -> int:
    """Estimated peak memory of full-graph training on ``graph``: per node, the layers and their
    gradients, the ID embedding with its gradient, Adam's two moments and the weight average
    (:math:`2(L + 1) + 5` rows of ``dim`` floats) and its text features; per edge, the edge list, its
    type and weight and the sparse matrices built from it (about 40 bytes)."""
    n = graph.num_nodes
    per_node = (2 * (config.layers + 1) + 5) * config.dim + (graph.x.shape[1] if graph.x is not None else 0)
    return n * per_node * BYTES_PER_FLOAT + graph.edge_index.shape[1] * 40


def free_memory_bytes(device: torch.device) -> int | None:
    """Free memory of ``device``: CUDA's free memory, or the host's ``MemAvailable`` on Linux
    (``None`` where unknown)."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def training_mode(config: TrainConfig, graph: GraphTensors, device: torch.device,
                  free_bytes: int | None = None) -> Literal["full_graph", "subgraph"]:
    """The mode training runs in: ``config.training_mode`` when set, else (``"auto"``)
    ``"full_graph"`` while :func:`full_graph_bytes` fits in :data:`MEMORY_SHARE` of the device's
    free memory (``free_bytes``, default :func:`free_memory_bytes`), ``"subgraph"`` beyond."""
    if config.training_mode != "auto":
        return config.training_mode
    free = free_bytes if free_bytes is not None else free_memory_bytes(device)
    if free is None or full_graph_bytes(graph, config) <= MEMORY_SHARE * free:
        return "full_graph"
    return "subgraph"

