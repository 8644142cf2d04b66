"""Explanation paths for many (user, item) pairs at once: :class:`PathFinder`'s paths as table joins.

:class:`PathTables` indexes the graph once as integer tables (histories, item attributes,
entity links, a user x item history matrix) and answers a whole batch of pairs with pandas joins
and sparse products instead of one Python call chain per pair. It finds the same paths as
:meth:`kgrec.recommender.explain_paths.PathFinder.find` and
:meth:`~kgrec.recommender.explain_paths.PathFinder.co_interactions`, and gives each path the
keys that put it where :meth:`kgrec.Recommender.explain` lists it among paths of equal weight:
``section`` (0 user-item triple, 1 shared attribute or attribute, 2 KG path, 3 similar users),
then ``k1``, ``k2`` within the section.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .explain_paths import names as node_names

if TYPE_CHECKING:
    from .estimator import Recommender

FIND_KINDS = ("user_item_triple", "shared_attribute", "attribute", "kg_path")


def _extend(index: pd.Index, ids: pd.Series) -> pd.Index:
    """``index`` with the ids it lacks appended (in first-seen order)."""
    extra = pd.Index(pd.unique(ids.to_numpy(dtype=object)), dtype=object).difference(index, sort=False)
    return index.append(extra) if len(extra) else index


def _sort_rank(index: pd.Index) -> np.ndarray:
    """Each id's position in the ids sorted as strings (the order ``sorted()`` gives them)."""
    rank = np.empty(len(index), dtype=np.int64)
    rank[np.argsort(index.to_numpy(dtype=object), kind="stable")] = np.arange(len(index))
    return rank


class PathTables:
    """The training graph of ``rec`` (``rec.graph_``) as integer tables for batched path finding.

    Users and items are coded by ``rec.user_index_`` / ``rec.item_index_`` positions (ids the
    graph has beyond them appended), entities by their first appearance in the knowledge triples.
    ``*_node`` arrays give a code's node position in the trained graph (-1 where it has none), the
    key :meth:`kgrec.Recommender.score_contributions` decomposes over."""

    def __init__(self, rec: "Recommender", max_per_neighbour: int = 3):
        kg = rec.graph_
        idx = rec.trained_.index
        self.cap = max_per_neighbour
        inter = kg.interactions[["user_id", "item_id"]].astype(str)
        own = kg.user_item_triples().astype(str).drop_duplicates()
        if rec.trained_.config.user_item_triples_as_interactions and len(own):
            inter = pd.concat([inter, own[["user_id", "item_id"]]], ignore_index=True)
        t = kg.triples.astype({"head": str, "tail": str, "relation": str})
        ie = t[((t["head_type"] == "item") & (t["tail_type"] == "entity")).to_numpy()]
        ee = t[((t["head_type"] == "entity") & (t["tail_type"] == "entity")).to_numpy()]
        self.users = _extend(_extend(rec.user_index_, inter["user_id"]), own["user_id"])
        self.items = _extend(_extend(_extend(rec.item_index_, inter["item_id"]), own["item_id"]), ie["head"])
        self.entities = _extend(pd.Index([], dtype=object), pd.concat([ie["tail"], ee["head"], ee["tail"]]))
        nu, ni = len(self.users), len(self.items)
        self.user_rank, self.item_rank, self.entity_rank = (_sort_rank(ix) for ix in
                                                            (self.users, self.items, self.entities))
        self.user_ids = self.users.to_numpy(dtype=object)
        labels = node_names(kg)
        self.item_label = np.array([labels.get(("item", i), i) for i in self.items], dtype=object)
        self.entity_label = np.array([labels.get(("entity", e), e) for e in self.entities], dtype=object)
        self.user_node = idx.user_ids.get_indexer(self.users)
        ent = idx.entity_ids.get_indexer(self.entities)
        self.entity_node = np.where(ent >= 0, idx.num_users + idx.num_items + ent, -1)

        # histories as sets: one row per distinct (user, item), in the interactions' order
        hist = pd.DataFrame({"u": self.users.get_indexer(inter["user_id"]),
                             "j": self.items.get_indexer(inter["item_id"])}).drop_duplicates(ignore_index=True)
        self.num_items = ni
        self.hist = hist
        self.hist_keys = np.unique(hist["u"].to_numpy() * ni + hist["j"].to_numpy())
        self.H = sp.csr_matrix((np.ones(len(hist)), (hist["u"].to_numpy(), hist["j"].to_numpy())), shape=(nu, ni))
        # each item's fans in the order PathFinder.co_interactions meets them
        fans = hist.iloc[np.argsort(hist["j"].to_numpy(), kind="stable")]
        self.fans_v = fans["u"].to_numpy()
        self.fans_ptr = np.zeros(ni + 1, dtype=np.int64)
        self.fans_ptr[1:] = np.cumsum(np.bincount(fans["j"].to_numpy(), minlength=ni))

        # item -> attribute rows in triple order (attr_order: position within the item)
        self.attrs = pd.DataFrame({"i": self.items.get_indexer(ie["head"]), "a": self.entities.get_indexer(ie["tail"]),
                                   "rel": ie["relation"].to_numpy(dtype=object)})
        self.attrs["attr_order"] = self.attrs.groupby("i").cumcount()
        self.attr_items = self.attrs[["a", "i"]].drop_duplicates().rename(columns={"i": "j"})
        pairs = np.unique(np.concatenate([
            np.stack([self.entities.get_indexer(ee["head"]), self.entities.get_indexer(ee["tail"])], 1),
            np.stack([self.entities.get_indexer(ee["tail"]), self.entities.get_indexer(ee["head"])], 1)]), axis=0) \
            if len(ee) else np.zeros((0, 2), dtype=np.int64)
        self.entity_nbrs = pd.DataFrame({"a": pairs[:, 0], "e1": pairs[:, 1]})
        rel = own.sort_values("relation", kind="stable")
        self.own = pd.DataFrame({"u": self.users.get_indexer(rel["user_id"]), "i": self.items.get_indexer(rel["item_id"]),
                                 "rel": rel["relation"].to_numpy(dtype=object)})
        self.own["k1"] = self.own.groupby(["u", "i"]).cumcount()

    def in_history(self, u: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Whether item ``j`` is in user ``u``'s history, elementwise."""
        keys = u.astype(np.int64) * self.num_items + j
        at = np.searchsorted(self.hist_keys, keys)
        return self.hist_keys[np.minimum(at, len(self.hist_keys) - 1)] == keys

    def _liked_by_attribute(self, users: np.ndarray) -> pd.DataFrame:
        """``u, a, j``: every item ``j`` in the history of one of ``users`` with attribute ``a``."""
        h = self.hist[np.isin(self.hist["u"].to_numpy(), users)]
        return h.merge(self.attr_items, on="j")[["u", "a", "j"]]

    def find(self, pairs: pd.DataFrame) -> pd.DataFrame:
        """:meth:`PathFinder.find` for every row of ``pairs`` (columns ``p`` (pair number), ``u``,
        ``i``): one row per path with ``p, kind, section, k1, k2, via (trained node, -1 for none),
        vkey`` (the neighbour as :meth:`PathFinder.find` counts it), ``rel, j, e1, a``."""
        cap = self.cap
        parts = []
        own = pairs.merge(self.own, on=["u", "i"])
        if len(own):
            parts.append(own.assign(kind="user_item_triple", section=0, k2=0, via=self.user_node[own["u"].to_numpy()],
                                    vkey=own["u"].to_numpy(), j=-1, e1=-1, a=-1))
        attrs = pairs.merge(self.attrs, on="i")
        liked = self._liked_by_attribute(pairs["u"].unique()) if len(attrs) else None
        if len(attrs):
            hit = attrs.merge(liked, on=["u", "a"])
            hit = hit[hit["j"].to_numpy() != hit["i"].to_numpy()]
            hit = hit.assign(k2=self.item_rank[hit["j"].to_numpy()]).sort_values(["p", "attr_order", "k2"])
            hit = hit[hit.groupby(["p", "attr_order"]).cumcount().to_numpy() < cap]
            has = pd.MultiIndex.from_frame(hit[["p", "attr_order"]])
            lone = attrs[~pd.MultiIndex.from_frame(attrs[["p", "attr_order"]]).isin(has)]
            for kind, rows, k2 in (("shared_attribute", hit, hit["k2"]), ("attribute", lone, -1)):
                parts.append(rows.assign(kind=kind, section=1, k1=rows["attr_order"], k2=k2, j=rows.get("j", -1),
                                         e1=-1, vkey=rows["a"]))
        if len(attrs) and len(self.entity_nbrs):
            kgp = attrs.merge(self.entity_nbrs, on="a").merge(liked.rename(columns={"a": "e1"}), on=["u", "e1"])
            kgp = kgp[kgp["j"].to_numpy() != kgp["i"].to_numpy()]
            kgp = kgp.assign(jr=self.item_rank[kgp["j"].to_numpy()], k2=self.entity_rank[kgp["e1"].to_numpy()])
            kgp = kgp.sort_values(["p", "attr_order", "k2", "jr"])
            kgp = kgp[~kgp.duplicated(["p", "attr_order", "e1"]).to_numpy()]   # the first liked item per e1
            kgp = kgp[kgp.groupby(["p", "attr_order"]).cumcount().to_numpy() < cap]
            parts.append(kgp.assign(kind="kg_path", section=2, k1=kgp["attr_order"], vkey=kgp["a"]))
        cols = ["p", "kind", "section", "k1", "k2", "vkey", "rel", "j", "e1", "a"]
        if not parts:
            return pd.DataFrame({c: pd.Series(dtype=object if c in ("kind", "rel") else np.int64) for c in cols + ["via"]})
        out = pd.concat([part.reindex(columns=cols) for part in parts], ignore_index=True)
        out[["j", "e1", "a"]] = out[["j", "e1", "a"]].fillna(-1)
        out = out.astype({c: np.int64 for c in ("p", "section", "k1", "k2", "vkey", "j", "e1", "a")})
        user_path = out["section"].to_numpy() == 0
        out["via"] = np.where(user_path, self.user_node[np.where(user_path, out["vkey"], 0)],
                              self.entity_node[np.where(user_path, 0, out["vkey"])] if len(self.entity_node)
                              else -1)
        return out

    def fans(self, pairs: pd.DataFrame) -> pd.DataFrame:
        """``p, v, fan_pos, common``: every other user ``v`` who interacted with pair ``p``'s item,
        with its position among the item's fans and the number of items it shares with the
        pair's user besides the item (users sharing none left out), as
        :meth:`PathFinder.co_interactions` finds them."""
        i = pairs["i"].to_numpy()
        count = self.fans_ptr[i + 1] - self.fans_ptr[i]
        row = np.repeat(np.arange(len(pairs)), count)
        fan_pos = np.arange(len(row)) - np.repeat(np.cumsum(count) - count, count)
        v = self.fans_v[self.fans_ptr[i][row] + fan_pos]
        u = pairs["u"].to_numpy()[row]
        keep = v != u
        row, fan_pos, v, u = row[keep], fan_pos[keep], v[keep], u[keep]
        users, local = np.unique(pairs["u"].to_numpy(), return_inverse=True)
        co = (self.H[users] @ self.H.T).tocsr()       # items each batch user shares with each user
        co.sum_duplicates()
        co_keys = np.repeat(np.arange(co.shape[0], dtype=np.int64), np.diff(co.indptr)) * co.shape[1] + co.indices
        keys = local[row].astype(np.int64) * co.shape[1] + v
        at = np.minimum(np.searchsorted(co_keys, keys), max(len(co_keys) - 1, 0))
        shared = np.where(co_keys[at] == keys, co.data[at], 0) if len(co_keys) else np.zeros(len(keys))
        common = shared - self.in_history(u, pairs["i"].to_numpy()[row])  # the item itself is no shared one
        keep = common > 0
        return pd.DataFrame({"p": pairs["p"].to_numpy()[row[keep]], "v": v[keep], "fan_pos": fan_pos[keep],
                             "common": common[keep].astype(np.int64)})

    def shared_item_weights(self, pairs: pd.DataFrame, fans: pd.DataFrame) -> pd.DataFrame:
        """``p, j, weight``: for each pair and each item ``j`` its user shares with the fans in
        ``fans`` (columns ``p, v, share``), the summed ``share`` of the fans who have ``j``:
        ``(S H) * H[user]`` with ``S`` the pairs x users matrix of shares."""
        n = int(pairs["p"].max()) + 1 if len(pairs) else 0
        shares = sp.csr_matrix((fans["share"].to_numpy(), (fans["p"].to_numpy(), fans["v"].to_numpy())),
                               shape=(n, self.H.shape[0]))
        user_of = np.zeros(n, dtype=np.int64)
        user_of[pairs["p"].to_numpy()] = pairs["u"].to_numpy()
        w = (shares @ self.H).multiply(self.H[user_of]).tocoo()
        item_of = np.full(n, -1, dtype=np.int64)
        item_of[pairs["p"].to_numpy()] = pairs["i"].to_numpy()
        keep = w.col != item_of[w.row]
        return pd.DataFrame({"p": w.row[keep].astype(np.int64), "j": w.col[keep].astype(np.int64),
                             "weight": w.data[keep]})
