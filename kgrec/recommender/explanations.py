"""Why an item is recommended: the exact decomposition of a score and the paths behind it.

:class:`ExplanationsMixin` gives :class:`kgrec.Recommender` ``explain``, ``reason`` and
``score_contributions``. The score of a trained pair splits exactly over the item's neighbours in
the trained graph (:meth:`ExplanationsMixin.score_contributions`); the paths that connect the
user to those neighbours (:mod:`kgrec.recommender.explain_paths`) carry their shares.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from ..errors import ModelError
from ..graph.csr import csr_indptr
from ..knowledge_graph import KnowledgeGraph

if TYPE_CHECKING:
    from ..train import TrainedModel
    from .explain_paths import PathFinder


class ExplanationsMixin:
    """``explain`` / ``reason`` / ``score_contributions`` of :class:`kgrec.Recommender` (module
    docstring). The class it is mixed into gives the ids (``_user_positions``,
    ``_item_positions``) and the scoring vectors (``user_emb_``, ``item_emb_``)."""

    trained_: "TrainedModel"
    graph_: KnowledgeGraph
    user_emb_: torch.Tensor
    item_emb_: torch.Tensor
    _added: dict[str, tuple[pd.Index, torch.Tensor]]

    def _drop_explanation_caches(self) -> None:
        """Forget what was computed for explanations (after fit, load or adding nodes)."""
        self._layer_cache: tuple[torch.Tensor, list[torch.Tensor], torch.Tensor, torch.Tensor] | None = None
        self._in_csr: tuple[torch.Tensor, ...] | None = None
        self._path_finder: "PathFinder | None" = None

    def _layer_sums(self) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """``(z, layers, sum of layers 0..L-1, mean of all layers)`` of the training graph."""
        if self._layer_cache is None:
            z, layers = self.trained_.propagated()
            layers = [h.detach().float().cpu() for h in layers]
            self._layer_cache = (z.detach().float().cpu(), layers, torch.stack(layers[:-1]).sum(0),
                                 torch.stack(layers).mean(0))
        return self._layer_cache

    def _incoming_csr(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(indptr, source, edge_type, edge_norm)``: the training graph's edges as a CSR by
        target (homogeneous positions, on the CPU), built once per graph."""
        if self._in_csr is None:
            g = self.trained_.graph
            target = g.edge_index[1].cpu()
            order = torch.sort(target, stable=True).indices
            self._in_csr = (csr_indptr(target, g.num_nodes), g.edge_index[0].cpu()[order], g.edge_type.cpu()[order],
                            g.edge_norm.cpu()[order])
        return self._in_csr

    def _incoming_edges(self, node: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(source, edge_type, edge_norm)`` of the training graph's edges into ``node``
        (homogeneous position)."""
        indptr, src, etype, enorm = self._incoming_csr()
        lo, hi = int(indptr[node]), int(indptr[node + 1])
        return src[lo:hi], etype[lo:hi], enorm[lo:hi]

    def score_contributions(self, user: str, item: str) -> tuple[pd.DataFrame, float, float]:
        """Exact decomposition of ``score(user, item)`` over the item's neighbours in the
        trained graph.

        With :math:`\\bar h_i = \\frac{1}{L+1}\\sum_l h_i^{(l)}`, :math:`z_i = \\bar h_i/\\lVert\\bar h_i\\rVert`
        and :math:`h_i^{(l)} = \\sum_n w_{n\\to i} \\odot h_n^{(l-1)}` (``message_weight``) over
        interaction neighbours :math:`n`, plus for :math:`l = 1` the same sum over knowledge
        neighbours (see :mod:`kgrec.nn.model`), the score :math:`z_u^\\top z_i` splits into a self term
        :math:`z_u^\\top h_i^{(0)} / ((L+1)\\lVert\\bar h_i\\rVert)` and one term per neighbour
        :math:`n`: :math:`z_u^\\top (w_{n\\to i} \\odot s_n) / ((L+1)\\lVert\\bar h_i\\rVert)`, with
        :math:`s_n = \\sum_{l<L} h_n^{(l)}` for an interaction neighbour and :math:`h_n^{(0)}` for a
        knowledge neighbour.
        The item's bias :math:`\\beta_i` (``item_bias``), its own part like :math:`h_i^{(0)}`, is
        in the self term. Returns ``(contributions: node_type, node_id, relation, weight;
        self_term; score)``; self term + the weights = score (up to float rounding)."""
        types, ids, et, weight, self_term, bias, score = self._contributions(user, item)
        self_term += bias
        rels = self.trained_.index.relations.to_numpy()
        rel = np.where(et < 2, "INTERACTED", rels[np.maximum(et - 2, 0) // 2] if len(rels) else "INTERACTED")
        return pd.DataFrame({"node_type": types, "node_id": ids, "relation": rel, "weight": weight}), self_term, score

    def _contributions(self, user: str, item: str
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, float, float]:
        """:meth:`score_contributions` as arrays: ``(node types, node ids, edge types, weights,
        self term, item bias, score)``."""
        _, upos = self._user_positions([user])
        ipos = self._item_positions([item])
        idx = self.trained_.index
        if int(ipos[0]) >= idx.num_items or str(item) in self._added["item"][0]:
            raise ModelError(f"item '{item}' was added after training (cold start): its score has no trained "
                             "neighbourhood to decompose. Fix: retrain with the item in the graph to explain it")
        z, layers, lsum, lmean = self._layer_sums()
        U, I = idx.num_users, idx.num_items
        node = U + int(ipos[0])
        dim = self.trained_.model.dim
        zu = self.user_emb_[upos[0], :dim]
        bias = float(self.user_emb_[upos[0], dim:] @ self.item_emb_[ipos[0], dim:])  # 0 without item_bias
        src, etype, enorm = self._incoming_edges(node)
        w = self.trained_.model.message_weight(etype, enorm).detach().float().cpu()
        scale = len(layers) * float(lmean[node].norm())
        # knowledge neighbours send layer 0 into layer 1 only, interaction neighbours every layer
        sent = torch.where((etype >= 2).unsqueeze(1), layers[0][src], lsum[src])
        contrib = ((w * sent) @ zu) / scale
        self_term = float(layers[0][node] @ zu) / scale
        src_np = src.numpy()
        types = np.where(src_np < U, "user", np.where(src_np < U + I, "item", "entity"))
        ids = np.empty(len(src_np), dtype=object)
        for t, off, index in (("user", 0, idx.user_ids), ("item", U, idx.item_ids), ("entity", U + I, idx.entity_ids)):
            sel = types == t
            ids[sel] = index.to_numpy()[src_np[sel] - off]
        return types, ids, etype.numpy(), contrib.numpy(), self_term, bias, \
            float(self.user_emb_[upos[0]] @ self.item_emb_[ipos[0]])

    def _paths(self) -> "PathFinder":
        from .explain_paths import PathFinder, names

        if self._path_finder is None:
            self._path_finder = PathFinder(self.graph_,
                                           user_item_triples=self.trained_.config.user_item_triples_as_interactions)
            self._names = names(self.graph_)
        return self._path_finder

    def explain(self, user: Any, item: Any, top: int = 10) -> pd.DataFrame:
        """Why ``item`` scores what it does for ``user``: the paths that connect them, ranked by
        how much of the model's score flows through them.

        The score is decomposed exactly over the item's neighbours (:meth:`score_contributions`);
        each path (``shared_attribute``: an item you interacted with shares this attribute;
        ``similar_users``: users who share an item with you interacted with it; ``kg_path``: a
        3-hop knowledge-graph link to an item you interacted with; ``user_item_triple``: your own
        knowledge triple to the item, such as an artist you tagged; see
        :mod:`kgrec.recommender.explain_paths`) carries the contribution of
        the neighbour it enters the item through, split evenly among the paths through that
        neighbour. Neighbours with no path to the user are summed per type into ``other_*``
        rows, the item's own input (text + ID embedding) is the ``item_itself`` row and its learned
        bias the ``item_popularity`` row, so the ``weight`` column sums to the score. Columns:
        ``rank, kind, path, weight, share, via_type, via_id, nodes``."""
        from .explain_paths import describe

        self._check_fitted()
        user, item = str(user), str(item)
        types, ids, _, weight, self_term, bias, score = self._contributions(user, item)
        per_node: dict[tuple[str, str], float] = {}  # summed over a neighbour's edges
        for key, w in zip(zip(types.tolist(), ids.tolist()), weight.tolist()):
            per_node[key] = per_node.get(key, 0.0) + w
        paths = self._paths().find(user, item)
        counts: dict[tuple[str, str], int] = {}
        for p in paths:
            counts[(p.via_type, p.via_id)] = counts.get((p.via_type, p.via_id), 0) + 1
        rows = []
        for p in paths:
            key = (p.via_type, p.via_id)
            if key not in per_node:
                continue  # a user-side path through a node that is no neighbour in the trained graph
            rows.append({"kind": p.kind, "path": describe(p, self._names), "weight": per_node[key] / counts[key],
                         "via_type": p.via_type, "via_id": p.via_id, "nodes": p.nodes})
        rows += self._similar_user_rows(user, item, per_node, counts, top)
        rest_w: dict[str, float] = {}
        rest_n: dict[str, int] = {}
        for key, w in per_node.items():
            if key not in counts:  # a neighbour no path above went through
                rest_w[key[0]] = rest_w.get(key[0], 0.0) + w
                rest_n[key[0]] = rest_n.get(key[0], 0) + 1
        for nt in sorted(rest_w):
            rows.append({"kind": f"other_{nt}s", "path": f"{rest_n[nt]} other {nt} neighbour(s) of the item",
                         "weight": rest_w[nt], "via_type": nt, "via_id": "", "nodes": []})
        rows.append({"kind": "item_itself", "path": "the item's own text and ID embedding", "weight": self_term,
                     "via_type": "item", "via_id": item, "nodes": [("item", item)]})
        if self.trained_.model.item_bias is not None:
            rows.append({"kind": "item_popularity", "path": "the item's learned bias (its popularity across users)",
                         "weight": bias, "via_type": "item", "via_id": item, "nodes": [("item", item)]})
        rows = sorted(rows, key=lambda r: -r["weight"])[:top]  # stable: equal weights keep their order
        df = pd.DataFrame(rows, columns=["kind", "path", "weight", "via_type", "via_id", "nodes"])
        df.insert(0, "rank", np.arange(1, len(df) + 1))
        df.insert(4, "share", df["weight"] / score if score != 0 else np.nan)
        return df

    def _similar_user_rows(self, user: str, item: str, per_node: dict[tuple[str, str], float],
                           counts: dict[tuple[str, str], int], top: int) -> list[dict[str, Any]]:
        """``similar_users`` rows of :meth:`explain`: each similar user's contribution split over
        the items it shares with ``user``, summed per shared item j ("you liked j; n users who
        liked j liked it"), the ``top`` heaviest in first-seen order (no other row of this kind
        can reach :meth:`explain`'s top). Marks the users it explains in ``counts``."""
        vs: list[str] = []
        js: list[str] = []
        shares: list[float] = []
        for v, common in self._paths().co_interactions(user, item).items():
            key = ("user", v)
            if key not in per_node:
                continue
            counts[key] = len(common)
            vs += [v] * len(common)
            js += common
            shares += [per_node[key] / len(common)] * len(common)
        if not js:
            return []
        codes, shared = pd.factorize(np.asarray(js, dtype=object))
        weight = np.bincount(codes, weights=np.asarray(shares))
        n_users = np.bincount(codes)
        # the strongest user per shared item (equal shares: the larger id)
        v_codes, v_ids = pd.factorize(np.asarray(vs, dtype=object), sort=True)
        order = np.lexsort((-v_codes, -np.asarray(shares), codes))
        first = np.ones(len(order), dtype=bool)
        first[1:] = codes[order][1:] != codes[order][:-1]
        strongest = v_ids[v_codes[order][first]]
        label_item = self._names.get(("item", item), item)
        rows = []
        for c in np.sort(np.argsort(-weight, kind="stable")[:top]):
            j, v_top = shared[c], strongest[c]
            via = f"{n_users[c]} users" if n_users[c] > 1 else f"user {v_top}"
            rows.append({"kind": "similar_users", "path": f"user {user} -> {self._names.get(('item', j), j)} <- {via} "
                         f"-> {label_item}", "weight": float(weight[c]), "via_type": "user", "via_id": v_top,
                         "nodes": [("user", user), ("item", j), ("user", v_top), ("item", item)]})
        return rows

    def reason(self, user: Any, item: Any) -> str:
        """One line: the path that contributes most to the score (for listings)."""
        try:
            ex = self.explain(user, item, top=50)
        except ModelError:
            return "new item: ranked by its text and attributes"
        paths = ex[ex["kind"].isin(["user_item_triple", "shared_attribute", "similar_users", "kg_path", "attribute"])]
        if paths.empty:
            return "collaborative signal from other users"
        best = paths.iloc[0]
        nodes = best["nodes"]
        name = lambda t, i: self._names.get((t, i), i)  # noqa: E731
        if best["kind"] == "user_item_triple":
            return f"linked to you by {' and '.join(self._paths().user_item_relations[(str(user), str(item))])}"
        if best["kind"] == "shared_attribute":
            return f"shares {name('entity', nodes[2][1])} with {name('item', nodes[1][1])}, which you liked"
        if best["kind"] == "similar_users":
            return f"{best['path'].split(' <- ')[1].split(' -> ')[0]} who liked {name('item', nodes[1][1])} liked it"
        if best["kind"] == "kg_path":
            return (f"linked in the knowledge graph to {name('item', nodes[1][1])} "
                    f"via {name('entity', nodes[2][1])} and {name('entity', nodes[3][1])}")
        return f"it has {name('entity', nodes[1][1])}"
