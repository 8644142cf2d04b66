"""Helpers for knowledge-graph files whose entities have ids but no names (KGCN, KGAT)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd


class KnowledgeTriples(NamedTuple):
    """Knowledge read from a KG file, in :class:`kgrec.KnowledgeGraph` columns: pass
    ``entities`` and ``triples`` to ``KnowledgeGraph.build`` (or ``triples`` to
    ``kgrec.from_tables``) and merge ``report`` (rows that a policy changed) into the graph's."""

    entities: pd.DataFrame
    triples: pd.DataFrame
    report: dict[str, int]

MAX_RELATIONS_IN_TEXT = 4


def kg_entities(triples: pd.DataFrame, names: pd.Series | None = None) -> pd.DataFrame:
    """Entity rows (kind ``kg``) for every ``entity`` end of ``triples``.

    ``name`` is ``names[entity_id]`` when given (e.g. the Freebase id), else the id without
    its ``kg:`` prefix; ``text`` names up to four relations that touch the entity
    (``"KG entity: music.artist.origin, film.actor.film"``) so that the text encoder has words
    to read where the source gives none."""
    ends = []
    for end in ("head", "tail"):
        sel = (triples[f"{end}_type"] == "entity").to_numpy()
        ends.append(pd.DataFrame({"e": triples[end].to_numpy()[sel], "r": triples["relation"].to_numpy()[sel]}))
    pairs = pd.concat(ends, ignore_index=True).drop_duplicates()
    pairs = pairs[pairs.groupby("e", sort=False).cumcount().to_numpy() < MAX_RELATIONS_IN_TEXT]
    per: dict[str, list[str]] = {}
    for ent, rel in zip(pairs["e"].tolist(), pairs["r"].tolist()):
        rels = per.get(ent)
        if rels is None:
            per[ent] = [rel]
        else:
            rels.append(rel)
    ids = np.array(list(per), dtype=object)
    if names is not None:
        name = names.reindex(ids).to_numpy(dtype=object)
        missing = pd.isna(name)
        name[missing] = [i[3:] if i.startswith("kg:") else i for i in ids[missing]]
    else:
        name = np.array([i[3:] if i.startswith("kg:") else i for i in ids], dtype=object)
    text = ["KG entity: " + ", ".join(r) for r in per.values()]
    return pd.DataFrame({"entity_id": ids, "kind": "kg", "name": name, "text": text})
