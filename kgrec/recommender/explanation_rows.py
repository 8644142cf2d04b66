"""Explanation rows of many recommendations at once: the ``EXPLAINS`` rows that publishing writes.

:func:`explanation_rows` gives, for every recommendation ranked ``explain_top`` or better, the
first ``explanations`` paths of :meth:`kgrec.Recommender.explain` (its rows with a path of two or
more nodes), one row per node the path's ``EXPLAINS`` edges point at: the path's inner nodes, or
the item for a direct one (the user's own triple to the item). It computes them a batch of users
at a time instead of one ``explain`` per recommendation:

- the score decomposition (:meth:`kgrec.Recommender.score_contributions`) of every pair in the
  batch from one gather over the CSR of the items' incoming edges:
  :math:`c_{p,e} = z_{u_p}^\\top (w_e \\odot s_e) / ((L+1)\\lVert\\bar h_{i_p}\\rVert)`, summed per
  (pair, neighbour), on the model's device;
- the paths as joins over integer tables (:class:`kgrec.recommender.path_tables.PathTables`),
  the similar-user paths' weights as one sparse product;
- only the paths that can reach a pair's first ``explanations`` are described as text.

The rows equal those of the per-recommendation loop (same paths, ranks and order; weights up to
float rounding). Recommendations of items added after training (cold start) have no trained
neighbourhood to decompose and get no rows, as ``explain`` raises for them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from ..graph.csr import gather_rows
from ..privacy import EXPLANATION_COLUMNS
from .path_tables import PathTables

if TYPE_CHECKING:
    from .estimator import Recommender

COLUMNS = EXPLANATION_COLUMNS


class NeighbourShares:
    """Each pair's score contribution per neighbour node of its item (summed over the
    neighbour's edges, as :meth:`kgrec.Recommender.explain` sums them), looked up by key."""

    def __init__(self, rec: "Recommender", upos: np.ndarray, ipos: np.ndarray):
        """Pairs ``(upos[p], ipos[p])``: user positions in ``rec.user_index_``, trained item
        positions. One matrix product per distinct item: its pairs' user vectors times its
        incoming edges' messages."""
        _, layers, lsum, lmean = rec._layer_sums()
        indptr, src, etype, enorm = rec._incoming_csr()
        model, device = rec.trained_.model, rec.trained_.device
        items, of_item = np.unique(ipos, return_inverse=True)
        nodes = torch.as_tensor(items, dtype=torch.long) + rec.trained_.index.num_users
        _, edges = gather_rows(indptr, nodes)
        et, s = etype[edges], src[edges]
        w = model.message_weight(et.to(device), enorm[edges].to(device)).detach().float()
        # knowledge neighbours send layer 0 into layer 1 only, interaction neighbours every layer
        message = w * torch.where((et >= 2).unsqueeze(1), layers[0][s], lsum[s]).to(device)
        scale = (len(layers) * lmean[nodes].norm(dim=1).double()).float()
        zu = rec.user_emb_[torch.tensor(upos, dtype=torch.long), :model.dim].to(device)
        self.num_nodes = int(indptr.numel() - 1)
        by_item = np.argsort(of_item, kind="stable")
        pair_ptr = np.searchsorted(of_item[by_item], np.arange(len(items) + 1))
        edge_ptr = np.concatenate([[0], np.cumsum((indptr[nodes + 1] - indptr[nodes]).numpy())])
        src_np = s.numpy()
        keys, contrib = [], []
        for k in range(len(items)):
            pairs = by_item[pair_ptr[k]:pair_ptr[k + 1]]
            lo, hi = edge_ptr[k], edge_ptr[k + 1]
            block = (zu[torch.as_tensor(pairs)] @ message[lo:hi].T).cpu() / scale[k]   # [pairs, edges]
            contrib.append(block.reshape(-1))
            keys.append((pairs[:, None] * self.num_nodes + src_np[None, lo:hi]).reshape(-1))
        self.keys, inverse = np.unique(np.concatenate(keys), return_inverse=True)
        self.sums = np.bincount(inverse, weights=torch.cat(contrib).numpy().astype(np.float64),
                                minlength=len(self.keys))

    def lookup(self, pair: np.ndarray, node: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(found, weight)``: whether ``node`` (trained position, -1 for none) is a neighbour of
        pair ``pair``'s item, and its summed contribution (0 where not)."""
        if len(self.keys) == 0:
            return np.zeros(len(pair), dtype=bool), np.zeros(len(pair))
        keys = pair.astype(np.int64) * self.num_nodes + node
        at = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        found = (self.keys[at] == keys) & (node >= 0)
        return found, np.where(found, self.sums[at], 0.0)


def _candidates(tables: PathTables, pairs: pd.DataFrame, shares: NeighbourShares) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Every weighted path of the pairs: ``(paths, fans)``. ``paths`` has the paths of
    :meth:`PathTables.find` through a neighbour of the item (``weight``: the neighbour's share
    split evenly over its paths) and one ``similar_users`` row per (pair, shared item) with its
    summed weight; ``fans`` the similar users that carry the latter, with their ``share``."""
    found = tables.find(pairs)
    # a neighbour is a (node type, id): user-item triples pass through users, the rest through entities
    n_paths = found.groupby(["p", found["section"].to_numpy() == 0, "vkey"])["p"].transform("size").to_numpy()
    ok, weight = shares.lookup(found["p"].to_numpy(), found["via"].to_numpy())
    found = found.assign(weight=weight / n_paths)[ok]
    fans = tables.fans(pairs)
    ok, weight = shares.lookup(fans["p"].to_numpy(), tables.user_node[fans["v"].to_numpy()])
    fans = fans.assign(share=weight / fans["common"].to_numpy())[ok]
    similar = tables.shared_item_weights(pairs, fans).assign(kind="similar_users", section=3, k1=0, k2=0)
    paths = pd.concat([found, similar], ignore_index=True)
    codes = ["vkey", "j", "e1", "a", "k1", "k2"]
    paths[codes] = paths[codes].fillna(-1).astype(np.int64)
    return paths, fans


def _similar_details(tables: PathTables, similar: pd.DataFrame, fans: pd.DataFrame) -> pd.DataFrame:
    """``similar`` (``p, j`` rows) with ``k1`` (the first fan, in the item's fan order, who shares
    ``j``), ``n_users`` (how many do) and ``v`` (the strongest: largest share, then largest id).
    ``fans`` is sorted by pair, then fan order."""
    fan_ptr = np.searchsorted(fans["p"].to_numpy(), np.arange(int(similar["p"].max()) + 2))
    local, entry = (t.numpy() for t in gather_rows(torch.tensor(fan_ptr), torch.tensor(similar["p"].to_numpy())))
    v = fans["v"].to_numpy()[entry]
    has = tables.in_history(v, similar["j"].to_numpy()[local])
    local, entry, v = local[has], entry[has], v[has]
    _, first = np.unique(local, return_index=True)   # entries come in fan order within a row
    strongest = np.lexsort((-tables.user_rank[v], -fans["share"].to_numpy()[entry], local))
    strongest = strongest[np.r_[True, local[strongest][1:] != local[strongest][:-1]]]
    return similar.assign(k1=fans["fan_pos"].to_numpy()[entry[first]], n_users=np.bincount(local, minlength=len(similar)),
                          v=v[strongest])


def _select(paths: pd.DataFrame, tables: PathTables, fans: pd.DataFrame, top: int) -> pd.DataFrame:
    """The ``top`` heaviest paths of each pair, ties in ``explain``'s order, with ``rank``."""
    w = paths["weight"].to_numpy()
    order = np.lexsort((-w, paths["p"].to_numpy()))
    ranked = paths.iloc[order]
    nth = ranked[ranked.groupby("p").cumcount().to_numpy() == top - 1].set_index("p")["weight"]
    floor = paths["p"].map(nth).fillna(-np.inf).to_numpy()
    kept = paths[w >= floor]
    sim = kept["section"].to_numpy() == 3
    if sim.any():
        kept = pd.concat([kept[~sim], _similar_details(tables, kept[sim], fans).assign(
            k2=lambda d: tables.item_rank[d["j"].to_numpy()])], ignore_index=True)
    order = np.lexsort((kept["k2"].to_numpy(), kept["k1"].to_numpy(), kept["section"].to_numpy(),
                        -kept["weight"].to_numpy(), kept["p"].to_numpy()))
    kept = kept.iloc[order]
    rank = kept.groupby("p").cumcount().to_numpy() + 1
    return kept.assign(rank=rank)[rank <= top].reset_index(drop=True)


def _describe(tables: PathTables, sel: pd.DataFrame, pairs: pd.DataFrame) -> np.ndarray:
    """Each selected path as :func:`kgrec.recommender.explain_paths.describe` (and ``explain``
    for similar users) writes it."""
    p = sel["p"].to_numpy()
    user = "user " + tables.user_ids[pairs["u"].to_numpy()[p]]
    item = tables.item_label[pairs["i"].to_numpy()[p]]
    j = np.maximum(sel["j"].to_numpy(), 0)
    liked = tables.item_label[j] if len(tables.item_label) else np.array([], dtype=object)
    ent = tables.entity_label if len(tables.entity_label) else np.array([""], dtype=object)
    a, e1 = ent[np.maximum(sel["a"].to_numpy(), 0)], ent[np.maximum(sel["e1"].to_numpy(), 0)]
    kind = sel["kind"].to_numpy()
    out = np.empty(len(sel), dtype=object)
    for k, text in (("user_item_triple", lambda m: user[m] + " -" + sel["rel"].to_numpy()[m] + "-> " + item[m]),
                    ("shared_attribute", lambda m: user[m] + " -> " + liked[m] + " -> " + a[m] + " <- " + item[m]),
                    ("attribute", lambda m: user[m] + " ... " + a[m] + " <- " + item[m]),
                    ("kg_path", lambda m: user[m] + " -> " + liked[m] + " -> " + e1[m] + " - " + a[m] + " <- "
                     + item[m])):
        m = kind == k
        if m.any():
            out[m] = text(m)
    m = kind == "similar_users"
    if m.any():
        n = sel["n_users"].to_numpy()[m].astype(np.int64)
        via = np.where(n > 1, n.astype(str).astype(object) + " users",
                       "user " + tables.user_ids[np.maximum(sel["v"].to_numpy()[m], 0).astype(np.int64)])
        out[m] = user[m] + " -> " + liked[m] + " <- " + via + " -> " + item[m]
    return out


def _node_rows(tables: PathTables, sel: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """``row, slot, node_type, node_id``: the nodes each selected path's ``EXPLAINS`` edges point at."""
    kind = sel["kind"].to_numpy()
    row = np.arange(len(sel))
    j = sel["j"].to_numpy()
    v = sel["v"].to_numpy() if "v" in sel else np.full(len(sel), -1)
    slots = [  # (slot, kinds, node type, code, id table)
        (0, ("user_item_triple",), "item", pairs["i"].to_numpy()[sel["p"].to_numpy()], tables.items),
        (0, ("shared_attribute", "kg_path", "similar_users"), "item", j, tables.items),
        (0, ("attribute",), "entity", sel["a"].to_numpy(), tables.entities),
        (1, ("shared_attribute",), "entity", sel["a"].to_numpy(), tables.entities),
        (1, ("kg_path",), "entity", sel["e1"].to_numpy(), tables.entities),
        (1, ("similar_users",), "user", v, tables.users),
        (2, ("kg_path",), "entity", sel["a"].to_numpy(), tables.entities)]
    parts = []
    for slot, kinds, node_type, code, ids in slots:
        m = np.isin(kind, kinds)
        if m.any():
            parts.append(pd.DataFrame({"row": row[m], "slot": slot, "node_type": node_type,
                                       "node_id": ids.to_numpy(dtype=object)[np.asarray(code[m], dtype=np.int64)]}))
    nodes = pd.concat(parts, ignore_index=True)
    return nodes.iloc[np.lexsort((nodes["slot"].to_numpy(), nodes["row"].to_numpy()))]


def explanation_rows(rec: "Recommender", recs: pd.DataFrame, explanations: int = 3, explain_top: int = 3,
                     batch_users: int = 1024, on_batch: Callable[[int], object] | None = None
                     ) -> Iterator[pd.DataFrame]:
    """The ``EXPLAINS`` rows of ``recs`` (``recommend``'s ``user_id, item_id, rank``), one
    DataFrame (columns :data:`COLUMNS`) per batch of ``batch_users`` users, in ``recs`` order: for
    each recommendation with ``rank <= explain_top``, the top ``explanations`` paths of
    ``rec.explain(user, item)`` that have two or more nodes, ranked 1.. by weight, one row per
    node its edges point at (see the module docstring). Memory is bounded by one batch's pairs,
    their items' incoming edges and the items their users share with those items' fans.
    ``on_batch(n)`` is called after each batch with its number of recommendations (a progress bar)."""
    if explanations <= 0 or explain_top <= 0:
        return
    if batch_users <= 0:
        raise ValueError(f"batch_users must be positive (got {batch_users})")
    rec._check_fitted()
    explained = recs[recs["rank"] <= explain_top]
    if explained.empty:
        return
    tables = PathTables(rec)
    user_code = tables.users.get_indexer(explained["user_id"].astype(str))
    item_code = tables.items.get_indexer(explained["item_id"].astype(str))
    added = rec._added["item"][0]
    trained = (item_code >= 0) & (item_code < rec.trained_.index.num_items) & \
        ~explained["item_id"].astype(str).isin(added).to_numpy()
    batch_of = pd.factorize(user_code)[0] // batch_users
    for b in range(int(batch_of.max()) + 1 if len(batch_of) else 0):
        in_batch = batch_of == b
        rows = np.flatnonzero(in_batch & trained)
        if on_batch is not None:
            on_batch(int(in_batch.sum()))
        if len(rows) == 0:
            continue
        pairs = pd.DataFrame({"p": np.arange(len(rows)), "u": user_code[rows], "i": item_code[rows]})
        shares = NeighbourShares(rec, pairs["u"].to_numpy(), pairs["i"].to_numpy())
        paths, fans = _candidates(tables, pairs, shares)
        sel = _select(paths, tables, fans, explanations)
        if sel.empty:
            continue
        nodes = _node_rows(tables, sel, pairs)
        at = sel["p"].to_numpy()[nodes["row"].to_numpy()]
        source = explained.iloc[rows[at]]
        yield pd.DataFrame({"user_id": source["user_id"].to_numpy(), "item_id": source["item_id"].to_numpy(),
                            "rank": sel["rank"].to_numpy()[nodes["row"].to_numpy()].astype(np.int64),
                            "path": _describe(tables, sel, pairs)[nodes["row"].to_numpy()],
                            "weight": sel["weight"].to_numpy(dtype=np.float64)[nodes["row"].to_numpy()],
                            "node_type": nodes["node_type"].to_numpy(dtype=object),
                            "node_id": nodes["node_id"].to_numpy(dtype=object)})
