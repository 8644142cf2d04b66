"""The model's forward passes: KGRecModel, a relation-aware, LightGCN-style GNN over interactions and knowledge edges,
with LM text features as inductive input and a dot-product scoring head.

The math
--------
All users, items and entities share one node space. Node :math:`v` of type :math:`t` starts as

.. math::
    \\mathbf{h}_v^{(0)} = \\mathbf{W}_t \\mathbf{x}_v + m_v \\, \\mathbf{e}_v

with :math:`\\mathbf{x}_v` its LM text embedding, :math:`\\mathbf{W}_t` a per-type projection,
:math:`\\mathbf{e}_v` a learnable ID embedding and :math:`m_v \\in \\{0, 1\\}` an ID mask (during
training each node's ID embedding is dropped with probability ``id_dropout``; nodes unseen in
training have :math:`m_v = 0`). Layers propagate without weights or non-linearities, each
message weighted by :math:`w_{uv} = 1/\\sqrt{\\deg(u)\\deg(v)}` with degrees in the collaborative
knowledge graph (interaction and knowledge edges, both directions) and modulated by the vector
:math:`\\mathbf{r}_{\\rho(u, v)}` of the edge's relation (its type and direction; user-item edges
use :math:`\\mathbf{r} = \\mathbf{1}`). Users and items hear their knowledge neighbours
(attributes, entities, friends) in the first layer only; entities hear theirs in every layer:

.. math::
    \\mathbf{h}_v^{(l+1)} = \\sum_{u \\in \\mathcal{N}_I(v)} w_{uv} \\, \\mathbf{h}_u^{(l)}
        + [l = 0] \\sum_{u \\in \\mathcal{N}_K(v)} w_{uv} \\, \\mathbf{r}_{\\rho(u, v)} \\odot \\mathbf{h}_u^{(0)},
    \\qquad
    \\mathbf{h}_e^{(l+1)} = \\sum_{u \\in \\mathcal{N}_K(e)} w_{ue} \\, \\mathbf{r}_{\\rho(u, e)}
        \\odot \\mathbf{h}_u^{(l)}

for a user or item :math:`v` (interaction neighbours :math:`\\mathcal{N}_I`, knowledge neighbours
:math:`\\mathcal{N}_K`) and an entity :math:`e`. Their knowledge thus reaches users and items as
attributes, and through the interaction layers above it as the attributes of their neighbours. No
user or item reads an entity's layers above 0 (the inductive path below does), so a training step
needs one sparse product over the knowledge edges into users and items, where every knowledge
edge in every layer would need :math:`L` products over all of them.

The final representation averages the layers and is L2-normalised; the score of user
:math:`u` for item :math:`i` is their cosine plus the item's learned bias :math:`\\beta_i` (a
popularity prior, ``item_bias``; trained in logits, :math:`\\beta_i = \\tau b_i` with
:math:`\\tau` the softmax temperature):

.. math::
    \\mathbf{z}_v = \\frac{\\bar{\\mathbf{h}}_v}{\\lVert \\bar{\\mathbf{h}}_v \\rVert}, \\quad
    \\bar{\\mathbf{h}}_v = \\frac{1}{L + 1} \\sum_{l=0}^{L} \\mathbf{h}_v^{(l)}, \\qquad
    \\hat{y}_{ui} = \\mathbf{z}_u^\\top \\mathbf{z}_i + \\beta_i
    = [\\mathbf{z}_u, 1]^\\top [\\mathbf{z}_i, \\beta_i]

so with the bias appended to each item's vector and a 1 to each user's (:meth:`KGRecModel.user_output`,
:meth:`KGRecModel.item_output`) ranking every item is still one matrix product. Cosines alone
cannot say that an item is popular; the bias can.

Inductive inference (cold start): a new node :math:`n` with features :math:`\\mathbf{x}_n` and
edges to existing nodes starts at :math:`\\mathbf{W}'_t \\mathbf{x}_n` (no ID) and receives, at
every layer, messages from the *frozen* layer representations of its neighbours,

.. math::
    \\mathbf{h}_n^{(l+1)} = \\sum_{u \\in \\mathcal{N}(n)}
        \\frac{1}{\\sqrt{\\deg(n)\\deg(u)}} \\, \\mathbf{r}'_{\\rho(u, n)} \\odot \\mathbf{h}_u^{(l)}

(:math:`\\deg(u)` its training degree); it sends none, so no existing representation changes
(:meth:`KGRecModel.inductive`). Unlike a warm node it hears its knowledge neighbours in every
layer: a new item with no interactions reaches the items that share its entities through the
entities' upper layers. A new item's final representation averages two content
views, each L2-normalised: the mean of its layers, and a ridge map :math:`\\mathbf{M}` of its raw
text features fitted after training to the warm items' :math:`\\mathbf{z}_i`,

.. math::
    \\mathbf{z}_n = s \\, \\frac{\\mathbf{a} + \\mathbf{b}}{\\lVert \\mathbf{a} + \\mathbf{b} \\rVert}, \\quad
    \\mathbf{a} = \\frac{\\bar{\\mathbf{h}}_n}{\\lVert \\bar{\\mathbf{h}}_n \\rVert}, \\quad
    \\mathbf{b} = \\frac{\\mathbf{M}^\\top \\mathbf{x}_n}{\\lVert \\mathbf{M}^\\top \\mathbf{x}_n \\rVert}

times one calibration factor :math:`s` (``cold_item_log_scale`` holds :math:`\\log s`;
:func:`kgrec.train.calibration.calibrate_cold_items` sets it after training), so that new items take as
many top-k slots as comparable catalogue items (:meth:`KGRecModel.inductive_output`); its bias is
``cold_item_bias``, the mean bias of the items the calibration holds out.

A new user who brings interactions blends, with weight 0.15 (``CLICKED_ITEMS_WEIGHT``), the
direction of the mean final representation of the items they interacted with,
:math:`\\mathbf{z}_n \\propto 0.85\\,\\mathbf{a} + 0.15\\,\\mathbf{m}`, :math:`\\mathbf{m} = \\sum_{i \\in C(n)}
\\mathbf{z}_i / \\lVert \\sum_{i \\in C(n)} \\mathbf{z}_i \\rVert` (:meth:`KGRecModel.clicked_items_mean`):
the inductive path alone places users poorly where their clicks are all they bring. How the
weight was chosen: ``docs/results.md``.

The inductive path has parameters of its own, :math:`\\mathbf{W}'_t` and :math:`\\mathbf{r}'_\\rho`,
trained by the cold-start views (:mod:`kgrec.train.cold_views`) against the detached warm model
(during and after warm training, or only after it, then starting from :math:`\\mathbf{W}_t,
\\mathbf{r}_\\rho`: :meth:`KGRecModel.start_inductive_path`): training them cannot change the
warm ranking, and the warm model is not pulled towards what text alone can express.

Knowledge triples between a user and an item (a second behaviour: an artist the user tagged)
join the interaction edges :math:`\\mathcal{N}_I` and the training pairs, whatever their relation
(:func:`kgrec.graph.tensors.with_user_item_triples`; ``user_item_triples="knowledge"`` keeps them
knowledge edges).

Ablations: ``use_text=False`` drops :math:`\\mathbf{W}_t \\mathbf{x}_v`, ``use_id=False`` drops
:math:`\\mathbf{e}_v`, ``use_kg=False`` keeps only interaction edges (chosen when the graph
tensors are built, see :func:`kgrec.graph.tensors.build_graph`), ``item_bias=False`` scores by the
cosine alone.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..graph.csr import relation_pairs
from ..graph.tensors import GraphTensors
from ..knowledge_graph import NODE_TYPES
from .sparse import row_normalize, sparse_mm, symmetric_spmm

CONTENT_MAP_WEIGHT = 0.5  # a new item's representation: GNN inductive path and content map, averaged
CLICKED_ITEMS_WEIGHT = 0.15  # a new user's: GNN inductive path and the mean of their clicked items


def blend_directions(out: Tensor, other: Tensor, weight: float) -> Tensor:
    """Rows :math:`\\mathbf{a}` of unit vectors ``out`` ``[n, d]`` moved towards rows
    :math:`\\mathbf{b}` of ``other`` (unit or zero): :math:`(1 - w)\\,\\mathbf{a} + w\\,\\mathbf{b}`,
    L2-normalised, with ``weight`` :math:`w`; a zero row of ``other`` (nothing to blend in) keeps
    its row of ``out`` exactly."""
    blend = F.normalize((1 - weight) * out + weight * other.to(out.dtype), dim=-1)
    return torch.where(other.ne(0).any(1, keepdim=True), blend, out)


class KGRecModel(nn.Module):
    r"""See the module docstring for the math.

    Args:
        num_users, num_items, num_entities: node counts of the training graph.
        num_edge_types: ``2 + 2 * num_relations`` (see :mod:`kgrec.graph.tensors`).
        feature_dim: size of the text features (0 when ``use_text`` is off).
        dim: embedding size. num_layers: propagation layers :math:`L`.
        text_rank: the text projection :math:`\mathbf{W}_t` factors as a learned
            ``[dim, text_rank]`` matrix times a fixed basis of the features' top ``text_rank``
            singular directions (:func:`kgrec.train.setup.fit_text_basis`; default ``dim``), so that the basis
            product is computed once and a training step costs ``O(N dim^2)`` for the text part.
        use_text, use_id, use_kg: ablation flags (``use_kg`` is informative here: the edges
            are chosen when the graph tensors are built).
        id_dropout: probability of dropping a node's ID embedding during training.
        item_bias: learn a bias :math:`b_i` per item, in softmax logits; the score adds
            :math:`\\beta_i = \\tau b_i` with ``temperature`` :math:`\\tau`.
    """

    def __init__(self, num_users: int, num_items: int, num_entities: int, num_edge_types: int,
                 feature_dim: int, dim: int = 64, num_layers: int = 3, *, use_text: bool = True,
                 use_id: bool = True, use_kg: bool = True, id_dropout: float = 0.2,
                 text_rank: int | None = None, id_init_std: float = 0.1, item_bias: bool = False,
                 temperature: float = 1.0) -> None:
        super().__init__()
        if not (use_text or use_id):
            raise ValueError("at least one of use_text and use_id must be on: a node needs an input")
        if use_text and feature_dim <= 0:
            raise ValueError("use_text=True needs text features (feature_dim > 0)")
        self.num_users, self.num_items, self.num_entities = num_users, num_items, num_entities
        self.num_edge_types = num_edge_types
        self.feature_dim = feature_dim if use_text else 0
        self.dim, self.num_layers = dim, num_layers
        self.use_text, self.use_id, self.use_kg = use_text, use_id, use_kg
        self.id_dropout = id_dropout
        if use_id:
            self.id_embedding = nn.Embedding(num_users + num_items + num_entities, dim)
            nn.init.normal_(self.id_embedding.weight, std=id_init_std)
        if use_text:
            # W_t = P_t B_t: a fixed basis B_t (top right-singular vectors of the type's training
            # features, kgrec.train.setup.fit_text_basis) and a learned P_t; B_t x is computed once
            self.text_rank = min(text_rank or dim, feature_dim)
            self.register_buffer("text_basis", torch.eye(feature_dim, self.text_rank).repeat(len(NODE_TYPES), 1, 1))
            self.text_proj = nn.ModuleDict({t: nn.Linear(self.text_rank, dim, bias=False) for t in NODE_TYPES})
            self.cold_proj = nn.ModuleDict({t: nn.Linear(self.text_rank, dim, bias=False) for t in NODE_TYPES})
            self.cold_proj.load_state_dict(self.text_proj.state_dict())   # both paths start alike
            # ridge map from raw text features to trained items (kgrec.train.calibration.fit_content_map)
            self.register_buffer("cold_item_map", torch.zeros(feature_dim, dim))
        else:
            self.text_rank = 0
        # relation vectors: start at 1 (plain LightGCN) and learn how each relation modulates
        self.relation = nn.Parameter(torch.ones(num_edge_types, dim))
        self.cold_relation = nn.Parameter(torch.ones(num_edge_types, dim))
        # log of the factor on new items' representations (set by kgrec.train.calibration)
        self.register_buffer("cold_item_log_scale", torch.zeros(()))
        self.temperature = temperature
        self.item_bias = nn.Parameter(torch.zeros(num_items)) if item_bias else None
        self.register_buffer("cold_item_bias", torch.zeros(()))  # b of a new item (set with the calibration)

    # ------------------------------------------------------------------ pieces
    @property
    def output_dim(self) -> int:
        """Size of the vectors :meth:`user_output` and :meth:`item_output` return."""
        return self.dim + (self.item_bias is not None)

    def user_output(self, z: Tensor) -> Tensor:
        """Users' scoring vectors ``[n, output_dim]``: :math:`[\\mathbf{z}_u, 1]` (just
        :math:`\\mathbf{z}_u` without ``item_bias``)."""
        return z if self.item_bias is None else torch.cat([z, z.new_ones(len(z), 1)], 1)

    def item_output(self, z: Tensor, bias: Tensor | None = None) -> Tensor:
        """Items' scoring vectors ``[n, output_dim]``: :math:`[\\mathbf{z}_i, \\tau b_i]` for
        logit biases ``bias`` ``[n]`` (default: every training item's, in order), so that
        ``user_output(z_u) @ item_output(z_i).T`` is the score."""
        if self.item_bias is None:
            return z
        bias = self.item_bias if bias is None else bias
        return torch.cat([z, (self.temperature * bias).to(z.dtype).unsqueeze(1)], 1)

    @property
    def num_nodes(self) -> int:
        return self.num_users + self.num_items + self.num_entities

    def type_slices(self) -> dict[str, slice]:
        u, i = self.num_users, self.num_items
        return {"user": slice(0, u), "item": slice(u, u + i), "entity": slice(u + i, self.num_nodes)}

    def reduce_features(self, x: Tensor, node_type: str) -> Tensor:
        """Raw text features ``[n, F]`` -> ``[n, text_rank]`` in the type's basis (what
        :meth:`text_input` and ``GraphTensors.x`` take)."""
        return x.to(self.text_basis.dtype) @ self.text_basis[NODE_TYPES.index(node_type)]

    def reduce_all(self, x: Tensor) -> Tensor:
        """:meth:`reduce_features` for the homogeneous ``[N, F]`` features of the graph."""
        return torch.cat([self.reduce_features(x[s], t) for t, s in self.type_slices().items()], 0)

    def text_input(self, x: Tensor | None, node_type: str) -> Tensor | None:
        """:math:`\\mathbf{W}_t \\mathbf{x}` for reduced features ``x`` (:meth:`reduce_features`)
        of nodes of one type."""
        if not self.use_text:
            return None
        if x is None:
            raise ValueError("this model uses text features (use_text=True) but none were given")
        return self.text_proj[node_type](x)

    def input_embedding(self, x: Tensor | None, id_mask: Tensor | None = None) -> Tensor:
        """Layer 0 of every node: ``[N, dim]`` from reduced features ``x`` ``[N, text_rank]``.
        ``id_mask`` ([N] 0/1) scales the ID part."""
        parts = []
        if self.use_text:
            parts.append(torch.cat([self.text_input(x[s], t) for t, s in self.type_slices().items()], 0))
        if self.use_id:
            e = self.id_embedding.weight
            parts.append(e if id_mask is None else e * id_mask.unsqueeze(-1).to(e.dtype))
        return parts[0] if len(parts) == 1 else parts[0] + parts[1]

    def message_weight(self, edge_type: Tensor, edge_norm: Tensor) -> Tensor:
        """Per-edge ``[E, dim]`` factor :math:`\\mathbf{r}_\\rho / \\sqrt{\\deg(u)\\deg(v)}`."""
        return self.relation[edge_type] * edge_norm.unsqueeze(-1)

    def knowledge_message(self, h: Tensor, graph: GraphTensors,
                          into: Literal["users_items", "entities"]) -> Tensor:
        """:math:`\\sum_{u \\in \\mathcal{N}_K(v)} w_{uv} \\, \\mathbf{r}_{\\rho(u, v)} \\odot \\mathbf{h}_u`
        over the knowledge edges into every user and item (``[U + I, dim]``)
        or into every entity (``[num_entities, dim]``) from the states ``h`` ``[N, dim]``: one sparse
        product over the distinct (source, relation) pairs (:meth:`GraphTensors.knowledge_pairs`)."""
        return self.relation_message(h, graph.knowledge_pairs(into))

    def relation_message(self, h: Tensor, pairs: tuple[Tensor, Tensor, Tensor, Tensor]) -> Tensor:
        """:math:`A (\\mathbf{H}[pair\\_src] \\odot \\mathbf{R}[pair\\_type])` for ``pairs``
        ``(pair_src, pair_type, A, A^T)`` of :func:`kgrec.graph.csr.relation_pairs`."""
        pair_src, pair_type, a, a_t = pairs
        if len(pair_src) == 0:
            return h.new_zeros(a.shape[0], h.shape[1])
        return sparse_mm(a, a_t, h.index_select(0, pair_src) * self.relation.index_select(0, pair_type))

    def propagate(self, h0: Tensor, graph: GraphTensors, entity_layers: bool = True) -> list[Tensor]:
        """All layers ``[h^(0), ..., h^(L)]``, each ``[N, dim]``.

        Users and items: one symmetric sparse product of the interaction edges per layer, plus,
        in the first layer, their knowledge message from layer 0 (:meth:`knowledge_message`).
        Entities: the knowledge message from the previous layer. No user or item depends on an
        entity's layers above 0, so ``entity_layers=False`` (training) leaves them out: layers
        above 0 are then ``[U + I, dim]`` (on CPU a step's cost is mostly passes over these blocks,
        and entities can be nearly half of ``N``; :meth:`frozen_layers` adds their rows)."""
        adj = graph.interaction_adjacency()   # users and items only: [U + I, U + I]
        ui = adj.shape[0]
        has_knowledge = len(graph.knowledge_edges()[0]) > 0
        knowledge = self.knowledge_message(h0.float(), graph, "users_items") if has_knowledge else None
        entity_layers = entity_layers and ui < len(h0)
        layers, h = [h0], h0.float()
        for layer in range(self.num_layers):
            nxt = symmetric_spmm(adj, h[:ui])
            if knowledge is not None and layer == 0:
                nxt += knowledge   # in place: the product's backward keeps none of its output
            h = torch.cat([nxt, self.knowledge_message(h, graph, "entities")]) if entity_layers else nxt
            layers.append(h)
        return layers

    def forward(self, graph: GraphTensors, id_mask: Tensor | None = None,
                entity_layers: bool = True) -> tuple[Tensor, list[Tensor]]:
        """``(z, layers)``: L2-normalised final representations ``[N, dim]`` of every node and
        the per-layer representations (the inductive path reads them). With
        ``entity_layers=False``, ``z`` and the layers above 0 have the users' and items' rows only
        (``[U + I, dim]``, :meth:`propagate`)."""
        layers = self.propagate(self.input_embedding(graph.x, id_mask), graph, entity_layers)
        return self.combine(layers), layers

    @torch.no_grad()
    def frozen_layers(self, layers: list[Tensor], graph: GraphTensors) -> list[Tensor]:
        """Detached copies of ``layers`` (from :meth:`forward`) with every node's rows: the
        entities' rows above layer 0 are computed here when ``entity_layers=False`` left them out
        (what the inductive path reads during training, without gradient)."""
        out = [layers[0].detach()]
        for h in layers[1:]:
            h = h.detach()
            if len(h) < len(out[0]):
                h = torch.cat([h, self.knowledge_message(out[-1], graph, "entities")])
            out.append(h)
        return out

    @staticmethod
    def combine(layers: list[Tensor]) -> Tensor:
        """Mean over layers, L2-normalised: the normalised sum, which is the same vector (a running
        sum, since stacking the layers would allocate an ``[L + 1, N, dim]`` block per call). Over
        the rows of the last layer, where the layers above 0 have fewer rows than layer 0."""
        total = layers[0][:len(layers[-1])]
        if len(layers) > 1:
            total = total + layers[1]
            for h in layers[2:]:
                total += h   # in place: a sum's backward keeps none of its operands
        return row_normalize(total)

    def inductive_parameters(self) -> list[nn.Parameter]:
        """The inductive path's own parameters :math:`\\mathbf{W}'_t, \\mathbf{r}'_\\rho`."""
        return [self.cold_relation] + (list(self.cold_proj.parameters()) if self.use_text else [])

    @torch.no_grad()
    def start_inductive_path(self) -> None:
        """Set the inductive path's parameters to the warm path's: :math:`\\mathbf{W}'_t \\leftarrow
        \\mathbf{W}_t`, :math:`\\mathbf{r}'_\\rho \\leftarrow \\mathbf{r}_\\rho` (where the cold views
        start when they train only after the warm model)."""
        self.cold_relation.copy_(self.relation)
        if self.use_text:
            self.cold_proj.load_state_dict(self.text_proj.state_dict())

    def sample_id_mask(self, generator: torch.Generator | None = None, device: torch.device | None = None,
                       num: int | None = None) -> Tensor | None:
        """Training-time ID mask ``[num]`` (default: every node): each node keeps its ID embedding
        with prob ``1 - id_dropout``."""
        if not self.use_id or self.id_dropout <= 0:
            return None
        keep = torch.rand(self.num_nodes if num is None else num, generator=generator,
                          device=generator.device if generator is not None else "cpu") >= self.id_dropout
        return keep.to(device or self.relation.device)

    # ------------------------------------------------------------------ inductive
    def inductive(self, layers: list[Tensor], x_new: Tensor | None, node_type: str, num_new: int,
                  new_index: Tensor, neighbor: Tensor, edge_type: Tensor, neighbor_deg: Tensor) -> Tensor:
        """Final representations ``[num_new, dim]`` of nodes unseen in training (arguments as
        in :meth:`inductive_layers`)."""
        return self.combine(self.inductive_layers(layers, x_new, node_type, num_new, new_index, neighbor,
                                                  edge_type, neighbor_deg))

    def inductive_output(self, layers: list[Tensor], node_type: str, x_raw: Tensor | None = None,
                         clicked: Tensor | None = None) -> Tensor:
        """Scoring vectors (:meth:`user_output` / :meth:`item_output`) of new nodes from their
        :meth:`inductive_layers`: :meth:`combine`; for users, blended with ``clicked`` ``[n, dim]``
        (:meth:`clicked_items_mean`; weight :data:`CLICKED_ITEMS_WEIGHT`, each part L2-normalised,
        the blend normalised again; a zero row, a user with no interactions, keeps the GNN part
        alone); for items, averaged with the content map of their raw text features ``x_raw``
        ``[n, F]`` (:func:`kgrec.train.calibration.fit_content_map`; each part L2-normalised, the mean normalised again;
        zero features or an unfitted map leave the GNN part alone), then times
        :meth:`cold_item_scale`, with the bias ``cold_item_bias``."""
        out = self.combine(layers)
        if node_type == "user":
            if clicked is not None:
                out = blend_directions(out, clicked, CLICKED_ITEMS_WEIGHT)
            return self.user_output(out)
        if node_type != "item":
            return out
        if self.use_text and x_raw is not None:
            mapped = F.normalize(x_raw.to(out.dtype) @ self.cold_item_map.to(out.dtype), dim=-1)
            out = blend_directions(out, mapped, CONTENT_MAP_WEIGHT)
        return self.item_output(out * self.cold_item_scale(), self.cold_item_bias.expand(len(out)))

    def clicked_items_mean(self, item_layers: list[Tensor], rows: Tensor, num_new: int) -> Tensor:
        """:math:`\\mathbf{m}_n = \\sum_{i \\in C(n)} \\mathbf{z}_i / \\lVert \\sum_{i \\in C(n)}
        \\mathbf{z}_i \\rVert` ``[num_new, dim]``: the direction of the mean final representation of
        the items each new user interacted with; ``item_layers`` holds the per-layer
        representations of one clicked item per entry (an item added by an earlier call: its
        inductive path's, without the content map), ``rows`` ``[E]`` the new user of each entry.
        Zero for a user without one."""
        total = torch.zeros(num_new, self.dim, device=rows.device, dtype=item_layers[0].dtype)
        if len(rows):
            total.index_add_(0, rows, self.combine(item_layers))
        return F.normalize(total, dim=-1)

    def cold_item_scale(self) -> Tensor:
        """The calibration factor :math:`s > 0` on new items' representations (1 until
        :func:`kgrec.train.calibration.calibrate_cold_items` sets it)."""
        return self.cold_item_log_scale.exp()

    def inductive_layers(self, layers: list[Tensor], x_new: Tensor | None, node_type: str, num_new: int,
                         new_index: Tensor, neighbor: Tensor, edge_type: Tensor, neighbor_deg: Tensor) -> list[Tensor]:
        """Per-layer representations ``[h^(0), ..., h^(L)]`` (each ``[num_new, dim]``) of nodes
        unseen in training.

        ``x_new``: their reduced text features ``[num_new, text_rank]`` (:meth:`reduce_features`;
        ignored without ``use_text``).
        ``new_index``, ``neighbor``, ``edge_type`` ([K] each): edge ``k`` brings new node
        ``new_index[k]`` a message from existing node ``neighbor[k]`` (homogeneous position) of
        type ``edge_type[k]`` (the direction neighbour -> new node). ``neighbor_deg``: [K]
        training degrees of those neighbours. ``layers``: the frozen per-layer representations
        of the existing nodes (from :meth:`forward`). New nodes send no messages, so existing
        representations do not change. Uses the inductive path's own parameters
        (``cold_proj``, ``cold_relation``; see the module docstring).
        """
        device, dtype = layers[0].device, layers[0].dtype
        if self.use_text:
            if x_new is None:
                raise ValueError("this model uses text features (use_text=True) but none were given")
            h = self.cold_proj[node_type](x_new)
        else:
            h = torch.zeros(num_new, self.dim, device=device, dtype=dtype)
        if len(neighbor) == 0:
            return [h] + [torch.zeros(num_new, self.dim, device=device, dtype=dtype) for _ in layers[:-1]]
        own_deg = torch.bincount(new_index, minlength=num_new).to(dtype)
        norm = own_deg.clamp(min=1).rsqrt()[new_index] * neighbor_deg.to(dtype).clamp(min=1).rsqrt()
        # as in propagate: r' * h_u once per distinct (neighbour, edge type) pair, then one sparse
        # product [num_new, pairs] per layer (a per-edge gather and index_add cost more)
        pair_node, pair_type, a, a_t = relation_pairs(neighbor, edge_type, new_index, norm, num_new,
                                                      self.num_edge_types)
        pair_rel = self.cold_relation[pair_type]
        return [h] + [sparse_mm(a, a_t, layer.index_select(0, pair_node) * pair_rel) for layer in layers[:-1]]
