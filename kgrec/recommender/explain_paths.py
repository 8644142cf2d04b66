"""Paths that connect a user to an item in the training graph, grouped by the item's
neighbour they enter the item through (the unit the model's score decomposes over):

- ``shared_attribute``: user -> liked item j -> attribute a <- item   (through a)
- ``similar_users``:    user -> liked item j <- users v -> item        (through each v; grouped by j)
- ``kg_path``:          user -> liked item j -> entity e1 - entity e2 <- item (3 KG hops; through e2)
- ``attribute``:        item -> attribute a with no link to the user's history (through a)
- ``user_item_triple``: user -relation-> item, a knowledge triple of the user's own, e.g. an artist
  they tagged (through the user)

A user's history is their interactions, plus their user-item triples when the model trains on
those as a second behaviour (``TrainConfig.user_item_triples='interactions'``). Each path is a
list of ``(node_type, node_id)`` from the user to the item.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..knowledge_graph import KnowledgeGraph


@dataclass
class Path:
    kind: str
    via_type: str            # the item's neighbour on this path
    via_id: str
    nodes: list[tuple[str, str]]
    relation: str


def names(kg: KnowledgeGraph) -> dict[tuple[str, str], str]:
    out: dict[tuple[str, str], str] = {}
    for nt, table, key in (("item", kg.items, "item_id"), ("entity", kg.entities, "entity_id")):
        named = table[table["name"].notna()]
        out.update({(nt, str(i)): str(n) for i, n in zip(named[key], named["name"])})
    return out


def describe(path: Path, names: dict[tuple[str, str], str]) -> str:
    """``user 1 -> Toy Story (1995) -> genre: Animation <- Aladdin (1992)``."""
    parts = []
    if path.kind == "user_item_triple":
        (_, user), (_, item) = path.nodes
        return f"user {user} -{path.relation}-> {names.get(('item', item), item)}"
    for t, i in path.nodes:
        label = names.get((t, i), i)
        parts.append(f"user {i}" if t == "user" else (label if t == "item" else f"{label}"))
    arrows = {"shared_attribute": [" -> ", " -> ", " <- "], "similar_users": [" -> ", " <- ", " -> "],
              "kg_path": [" -> ", " -> ", " - ", " <- "], "attribute": [" ... ", " <- "]}[path.kind]
    text = parts[0]
    for arrow, p in zip(arrows, parts[1:]):
        text += arrow + p
    return text


class PathFinder:
    """Finds the paths above for many (user, item) pairs: the graph's adjacency is indexed
    once, so each query costs set operations on one user's history."""

    def __init__(self, kg: KnowledgeGraph, *, max_per_neighbour: int = 3, user_item_triples: bool = True):
        """``user_item_triples``: the users' user-item triples count in their histories (the
        model propagates over them as interactions)."""
        self.max_per_neighbour = max_per_neighbour
        inter = kg.interactions[["user_id", "item_id"]].astype(str)
        own = kg.user_item_triples().astype(str)
        relations = own.drop_duplicates().sort_values("relation").groupby(["user_id", "item_id"])["relation"]
        self.user_item_relations: dict[tuple[str, str], list[str]] = relations.agg(list).to_dict()  # sorted
        if user_item_triples and len(own):
            inter = pd.concat([inter, own[["user_id", "item_id"]]], ignore_index=True).drop_duplicates()
        self.history = inter.groupby("user_id")["item_id"].agg(list).to_dict()
        self.fans = inter.groupby("item_id")["user_id"].agg(list).to_dict()
        t = kg.triples.astype({"head": str, "tail": str, "relation": str})
        ie = t[(t["head_type"] == "item") & (t["tail_type"] == "entity")]
        self.item_attrs = ie.groupby("head")[["tail", "relation"]].apply(
            lambda g: list(zip(g["tail"], g["relation"]))).to_dict() if len(ie) else {}
        self.attr_items = ie.groupby("tail")["head"].agg(set).to_dict() if len(ie) else {}
        ee = t[(t["head_type"] == "entity") & (t["tail_type"] == "entity")]
        nbrs: dict[str, set[str]] = {}
        for h, tl in zip(ee["head"], ee["tail"]):
            nbrs.setdefault(h, set()).add(tl)
            nbrs.setdefault(tl, set()).add(h)
        self.entity_nbrs = nbrs
        self._hist_sets: dict[str, set[str]] = {}

    def _hist(self, user: str) -> set[str]:
        if user not in self._hist_sets:
            self._hist_sets[user] = set(self.history.get(user, ()))
        return self._hist_sets[user]

    def co_interactions(self, user: str, item: str) -> dict[str, list[str]]:
        """Users who interacted with ``item`` -> the items they share with ``user``'s history
        (only users sharing at least one)."""
        hist = self._hist(user) - {item}
        out = {}
        for v in self.fans.get(item, ()):
            if v != user:
                common = self._hist(v) & hist
                if common:
                    out[v] = sorted(common)
        return out

    def find(self, user: str, item: str) -> list[Path]:
        """The user's own triples to the item, attribute and KG paths (co-interactions come from
        :meth:`co_interactions`)."""
        cap = self.max_per_neighbour
        hist = self._hist(user) - {item}
        paths = [Path("user_item_triple", "user", user, [("user", user), ("item", item)], rel)
                 for rel in self.user_item_relations.get((user, item), ())]
        attrs = self.item_attrs.get(item, [])
        for a, rel in attrs:
            liked = sorted(self.attr_items.get(a, set()) & hist)[:cap]
            if liked:
                paths += [Path("shared_attribute", "entity", a,
                               [("user", user), ("item", j), ("entity", a), ("item", item)], rel) for j in liked]
            else:
                paths.append(Path("attribute", "entity", a, [("user", user), ("entity", a), ("item", item)], rel))
        if hist:
            if self.entity_nbrs:
                for e2, rel in attrs:
                    found = 0
                    for e1 in sorted(self.entity_nbrs.get(e2, ())):
                        liked = sorted(self.attr_items.get(e1, set()) & hist)
                        if liked:
                            paths.append(Path("kg_path", "entity", e2, [("user", user), ("item", liked[0]),
                                                                       ("entity", e1), ("entity", e2), ("item", item)], rel))
                            found += 1
                            if found >= cap:
                                break
        return paths


__all__ = ["Path", "PathFinder", "describe", "names"]
