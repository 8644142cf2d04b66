"""KGRecModel: the propagation computes the documented math, gradients are right, the
ablation flags switch their parts off, and the inductive path leaves existing nodes alone."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import kgrec
from kgrec.graph.tensors import GraphIndex, GraphTensors, build_graph, relation_type
from kgrec.nn.model import KGRecModel
from kgrec.nn.sparse import symmetric_spmm
from kgrec.train.setup import fit_text_basis

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(),
                                                                 reason="no CUDA device"))]


def tiny_graph() -> kgrec.KnowledgeGraph:
    """4 users, 5 items, genres and a user attribute: small enough to check by hand."""
    inter = pd.DataFrame({"user_id": ["u1", "u1", "u2", "u2", "u3", "u4", "u4"],
                          "item_id": ["i1", "i2", "i2", "i3", "i4", "i4", "i5"]})
    items = pd.DataFrame({"item_id": ["i1", "i2", "i3", "i4", "i5"],
                          "title": ["Alien", "Aliens", "Heat", "Toy Story", "Up"],
                          "genres": ["Sci-Fi|Horror", "Sci-Fi|Action", "Crime", "Animation|Comedy", "Animation"]})
    users = pd.DataFrame({"user_id": ["u1", "u2", "u3", "u4"], "gender": ["F", "M", "F", "M"]})
    return kgrec.from_tables(inter, items=items, users=users, item_text="title",
                             item_attributes={"genres": "genre"}, user_attributes=["gender"])


def features_for(kg: kgrec.KnowledgeGraph, dim: int = 12, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {t: rng.normal(size=(n, dim)).astype(np.float32)
            for t, n in (("user", len(kg.users)), ("item", len(kg.items)), ("entity", len(kg.entities)))}


def make_model(index: GraphIndex, feature_dim: int = 12, **kw) -> KGRecModel:
    torch.manual_seed(0)
    model = KGRecModel(index.num_users, index.num_items, index.num_entities, index.num_edge_types,
                       feature_dim, dim=8, num_layers=2, **kw)
    with torch.no_grad():  # relation vectors away from 1 so that modulation is exercised
        model.relation.uniform_(0.5, 1.5)
    return model


def test_graph_index_is_canonical_and_typed() -> None:
    kg = tiny_graph()
    index, g = build_graph(kg, features_for(kg))
    assert list(index.user_ids) == ["u1", "u2", "u3", "u4"]
    assert list(index.item_ids) == ["i1", "i2", "i3", "i4", "i5"]
    assert g.num_nodes == index.num_nodes == 4 + 5 + len(kg.entities)
    assert len(g.inter_user) == 7
    # every edge comes with its reverse, and the normalisation is symmetric
    pairs = {(int(s), int(d), int(t)) for s, d, t in zip(*g.edge_index, g.edge_type)}
    for s, d, t in pairs:
        rev = t + 1 if t % 2 == 0 else t - 1
        assert (d, s, rev) in pairs
    assert torch.allclose(g.edge_norm, (g.deg[g.edge_index[0]] * g.deg[g.edge_index[1]]).rsqrt())
    # relation types name the relation and its direction
    genre = index.relations.get_loc("HAS_GENRE")
    src_type = g.edge_type == relation_type(genre)
    assert src_type.any()
    assert (g.edge_index[0, src_type] >= index.offset("item")).all()
    assert (g.edge_index[0, src_type] < index.offset("entity")).all()
    assert (g.edge_index[1, src_type] >= index.offset("entity")).all()


def test_user_item_triples_train_and_propagate_as_interactions() -> None:
    """A knowledge triple between a user and an item joins the training pairs and the
    interaction edges (once, even when the pair is also an interaction, either way round), and
    leaves the knowledge edges; with ``user_item_triples="knowledge"`` it stays a knowledge edge."""
    kg = tiny_graph()
    extra = pd.DataFrame({"head_type": ["user", "user", "item"], "head": ["u3", "u1", "i5"],
                          "relation": ["TAGGED", "TAGGED", "SHOWN_TO"], "tail_type": ["item", "item", "user"],
                          "tail": ["i1", "i1", "u2"]})
    kg.triples = pd.concat([kg.triples, extra.astype("string")], ignore_index=True)
    index, g = build_graph(kg, features_for(kg))
    pairs = list(zip(index.user_ids[g.inter_user].tolist(), index.item_ids[g.inter_item].tolist()))
    expected = sorted(set(zip(kg.interactions["user_id"], kg.interactions["item_id"])) | {("u3", "i1"), ("u2", "i5")})
    assert pairs == expected  # 7 interactions + 2 new pairs, sorted by user then item
    ui = {(int(s), int(d)) for s, d, t in zip(*g.edge_index, g.edge_type) if t == 0}
    assert (index.user_ids.get_loc("u3"), index.num_users + index.item_ids.get_loc("i1")) in ui
    assert len(ui) == len(expected)
    for rel in ("TAGGED", "SHOWN_TO"):
        r = index.relations.get_loc(rel)
        assert not ((g.edge_type == relation_type(r)) | (g.edge_type == relation_type(r, True))).any()

    index_k, g_k = build_graph(kg, features_for(kg), user_item_triples="knowledge")
    assert len(g_k.inter_user) == 7
    assert (g_k.edge_type == relation_type(index_k.relations.get_loc("TAGGED"))).sum() == 2
    _, g_off = build_graph(kg, features_for(kg), use_kg=False)
    assert len(g_off.inter_user) == 7


def test_propagation_is_the_documented_formula() -> None:
    kg = tiny_graph()
    index, g = build_graph(kg, features_for(kg))
    model = make_model(index)
    raw = g.x
    g.x = model.reduce_all(raw)
    with torch.no_grad():
        z, layers = model(g)
    # reference: explicit sums over edges with w = 1 / sqrt(deg u deg v). Into users and items:
    # interaction edges from layer l, knowledge edges (r * h_u) in the first layer only; into
    # entities: knowledge edges from layer l
    h = layers[0]
    deg = torch.zeros(g.num_nodes)
    for d in g.edge_index[1]:
        deg[d] += 1
    ui = g.num_users + g.num_items
    ref_layers = [h]
    for layer in range(model.num_layers):
        nxt = torch.zeros_like(h)
        for s, d, t in zip(g.edge_index[0].tolist(), g.edge_index[1].tolist(), g.edge_type.tolist()):
            if t >= 2 and d < ui and layer > 0:
                continue
            r = torch.ones(model.dim) if t < 2 else model.relation[t].detach()
            nxt[d] += r * h[s] / torch.sqrt(deg[s] * deg[d])
        h = nxt
        ref_layers.append(h)
    for a, b in zip(layers, ref_layers):
        assert torch.allclose(a, b, atol=1e-5)
    assert g.num_entities > 0 and (layers[2][ui:] != 0).any()
    # without entity_layers: the same users and items, and no entity rows above layer 0
    with torch.no_grad():
        z_short, short = model(g, entity_layers=False)
    assert torch.equal(short[0], layers[0])
    for a, b in zip(layers[1:], short[1:]):
        assert b.shape == (ui, model.dim) and torch.allclose(a[:ui], b)
    assert z_short.shape == (ui, model.dim) and torch.allclose(z_short, z[:ui])
    # frozen_layers fills the entity rows back in (what the cold-start views read in training)
    for a, b in zip(layers, model.frozen_layers(short, g)):
        assert not b.requires_grad and torch.allclose(a, b, atol=1e-6)
    ref = torch.nn.functional.normalize(torch.stack(ref_layers).mean(0), dim=-1)
    assert torch.allclose(z, ref, atol=1e-5)
    # layer 0 = text projection (P_t B_t x) + ID embedding
    s = model.type_slices()["item"]
    w = model.text_proj["item"].weight @ model.text_basis[1].T
    expect = raw[s] @ w.T + model.id_embedding.weight[s]
    assert torch.allclose(layers[0][s], expect, atol=1e-6)


def random_relation_model(attr: str, seed: int) -> tuple[GraphIndex, GraphTensors, KGRecModel]:
    """The tiny graph's tensors (reduced features) and a model whose relation vectors ``attr``
    (``relation`` or ``cold_relation``) are drawn around 1, so that every relation counts."""
    kg = tiny_graph()
    index, g = build_graph(kg, features_for(kg))
    model = make_model(index)
    g.x = model.reduce_all(g.x)
    with torch.no_grad():
        getattr(model, attr).normal_(1.0, 0.5, generator=torch.Generator().manual_seed(seed))
    return index, g, model


def test_propagation_gradients_match_the_edge_sum() -> None:
    """The sparse products (interaction block, knowledge messages) give the gradients
    of the explicit per-edge sum, for the relation vectors, the ID embeddings and the projection."""
    index, g, model = random_relation_model("relation", seed=1)
    weight = torch.randn(g.num_nodes, model.dim, generator=torch.Generator().manual_seed(2))
    params = [model.relation, model.id_embedding.weight, model.text_proj["item"].weight]

    def grads(z: torch.Tensor) -> list[torch.Tensor]:
        return [p.clone() for p in torch.autograd.grad((z * weight).sum(), params)]

    got = grads(model(g)[0])
    src, dst, etype = g.edge_index[0], g.edge_index[1], g.edge_type
    h = model.input_embedding(g.x)
    layers = [h]
    # knowledge edges into users and items carry messages in the first layer only (module docstring)
    later = ((etype < 2) | (dst >= g.num_users + g.num_items)).unsqueeze(1)
    for layer in range(model.num_layers):
        r = torch.where((etype < 2).unsqueeze(1), torch.ones(model.dim), model.relation[etype])
        w = g.edge_norm.unsqueeze(1) * (later if layer > 0 else 1)
        h = torch.zeros_like(h).index_add(0, dst, r * h[src] * w)
        layers.append(h)
    want = grads(torch.nn.functional.normalize(torch.stack(layers).mean(0), dim=-1))
    assert (g.edge_type >= 2).any() and g.num_entities > 0
    for a, b in zip(got, want):
        assert b.abs().max() > 0
        assert torch.allclose(a, b, atol=1e-5)


def test_symmetric_spmm_gradient() -> None:
    gen = torch.Generator().manual_seed(0)
    dense = torch.rand(6, 6, generator=gen, dtype=torch.float64)
    dense = (dense + dense.T) * (torch.rand(6, 6, generator=gen, dtype=torch.float64) > 0.4)
    dense = (dense + dense.T) / 2
    adj = dense.to_sparse_csr()
    x = torch.randn(6, 3, dtype=torch.float64, generator=gen, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: symmetric_spmm(adj, t), (x,))
    assert torch.allclose(symmetric_spmm(adj, x), dense @ x)


@pytest.mark.parametrize("flags", [{"use_text": False}, {"use_id": False}, {"use_kg": False}])
def test_ablation_flags_switch_parts_off(flags: dict) -> None:
    kg = tiny_graph()
    index, g = build_graph(kg, features_for(kg) if flags.get("use_text", True) else None,
                           use_kg=flags.get("use_kg", True))
    model = make_model(index, 12 if flags.get("use_text", True) else 0, **flags)
    if model.use_text:
        fit_text_basis(model, {t: g.x[s] for t, s in model.type_slices().items()})
        g.x = model.reduce_all(g.x)
    names = {n for n, _ in model.named_parameters()}
    assert ("id_embedding.weight" in names) == flags.get("use_id", True)
    assert any(n.startswith("text_proj") for n in names) == flags.get("use_text", True)
    if not flags.get("use_kg", True):
        assert (g.edge_type < 2).all()  # interaction edges only
    z, _ = model(g)
    z.sum().backward()  # trains end to end
    assert torch.isfinite(z).all()


def test_text_basis_spans_the_top_directions() -> None:
    kg = tiny_graph()
    index, g = build_graph(kg, features_for(kg, dim=12))
    model = make_model(index, 12)  # dim 8 -> rank 8 of 12
    items = g.x[model.type_slices()["item"]]  # 5 items: rank 5, inside the top-8 span
    fit_text_basis(model, {"item": items})
    b = model.text_basis[1]
    assert torch.allclose(b.T @ b, torch.eye(8), atol=1e-5)
    assert torch.allclose(model.reduce_features(items, "item") @ b.T, items, atol=1e-5)


def test_model_needs_an_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        KGRecModel(2, 2, 0, 2, 4, use_text=False, use_id=False)
    with pytest.raises(ValueError, match="text features"):
        KGRecModel(2, 2, 0, 2, 0, use_text=True)


def test_id_mask_drops_id_part() -> None:
    kg = tiny_graph()
    index, g = build_graph(kg, features_for(kg))
    model = make_model(index)
    g.x = model.reduce_all(g.x)
    h_no_id = model.input_embedding(g.x, torch.zeros(g.num_nodes))
    text_only = torch.cat([model.text_proj[t](g.x[s]) for t, s in model.type_slices().items()])
    assert torch.allclose(h_no_id, text_only)
    model.id_dropout = 0.5
    mask = model.sample_id_mask(torch.Generator().manual_seed(0))
    assert mask is not None and set(mask.unique().tolist()) <= {False, True}


def test_inductive_layers_are_the_per_edge_sum() -> None:
    """Many new nodes, neighbours shared between them, a repeated edge and edges in no order: each
    layer and the gradient of the inductive relation vectors equal the explicit per-edge sum."""
    index, g, model = random_relation_model("cold_relation", seed=3)
    with torch.no_grad():
        _, layers = model(g)
    gen = torch.Generator().manual_seed(4)
    num_new, k = 4, 15
    new_index = torch.randint(0, num_new - 1, (k,), generator=gen)   # the last new node has no edge
    neighbor = torch.randint(0, g.num_nodes, (k,), generator=gen)
    edge_type = torch.randint(0, index.num_edge_types, (k,), generator=gen)
    new_index[1], neighbor[1], edge_type[1] = new_index[0], neighbor[0], edge_type[0]   # a repeated edge
    x_new = model.reduce_features(torch.randn(num_new, 12, generator=gen), "item")
    got = model.inductive_layers(layers, x_new, "item", num_new, new_index, neighbor, edge_type, g.deg[neighbor])
    own = torch.bincount(new_index, minlength=num_new).float().clamp(min=1)
    want = [model.cold_proj["item"](x_new)]
    for layer in layers[:-1]:
        rows = [torch.zeros(model.dim) for _ in range(num_new)]
        for n, u, t in zip(new_index.tolist(), neighbor.tolist(), edge_type.tolist()):
            rows[n] = rows[n] + model.cold_relation[t] * layer[u] / torch.sqrt(own[n] * g.deg[u].clamp(min=1))
        want.append(torch.stack(rows))
    weight = torch.randn(num_new, model.dim, generator=gen)
    for a, b in zip(got, want):
        assert torch.allclose(a, b, atol=1e-6)
    assert (got[1][num_new - 1] == 0).all()
    grads = [torch.autograd.grad((model.combine(x) * weight).sum(), model.cold_relation)[0] for x in (got, want)]
    assert grads[1].abs().max() > 0 and torch.allclose(grads[0], grads[1], atol=1e-6)
    empty = torch.zeros(0, dtype=torch.long)
    none = model.inductive_layers(layers, x_new, "item", num_new, empty, empty, empty, torch.zeros(0))
    assert all((h == 0).all() for h in none[1:])


@pytest.mark.parametrize("device", DEVICES)
def test_inductive_node_receives_but_does_not_send(device: str) -> None:
    kg = tiny_graph()
    index, g = build_graph(kg, features_for(kg))
    g = g.to(device)
    model = make_model(index).to(device).eval()
    g.x = model.reduce_all(g.x)
    with torch.no_grad():
        z, layers = model(g)
        before = [t.clone() for t in layers]
        # a new item linked to genre Animation (messages entity -> item = reverse HAS_GENRE)
        ent = index.entity_ids.get_loc("genre:Animation") + index.offset("entity")
        rel = relation_type(index.relations.get_loc("HAS_GENRE"), reverse=True)
        x_new = model.reduce_features(torch.randn(1, 12, device=device), "item")
        nb = torch.tensor([ent], device=device)
        new = model.inductive_layers(layers, x_new, "item", 1, torch.tensor([0], device=device), nb,
                                     torch.tensor([rel], device=device), g.deg[nb])
    for a, b in zip(before, layers):
        assert torch.equal(a, b)
    # layer 1 of the new node = r' * h_e^(0) / sqrt(1 * deg e); layer 0 = its own text projection
    # W' x (no ID): the inductive path's parameters, not the warm model's
    expect1 = model.cold_relation[rel] * layers[0][ent] / torch.sqrt(g.deg[ent])
    assert torch.allclose(new[1][0], expect1, atol=1e-6)
    assert torch.allclose(new[0], model.cold_proj["item"](x_new), atol=1e-6)
    assert len(new) == model.num_layers + 1
