"""benchmarks/accuracy.py's CoLaKG Last.fm split, built on the HetRec graph: its pairs are the
files' pairs under the id maps, and the graph holds only the split's users and artists."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "accuracy.py"


@pytest.fixture(scope="module")
def accuracy():
    spec = importlib.util.spec_from_file_location("accuracy_bench", BENCH)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # its dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def _file_pairs(folder: Path, name: str) -> set[tuple[str, str]]:
    """Pairs of a KGAT-format file under user_map / item_map, read line by line here."""
    maps = {}
    for kind in ("user", "item"):
        maps[kind] = dict(line.split()[::-1] for line in (folder / f"{kind}_map.txt").read_text().splitlines())
    pairs = set()
    for line in (folder / name).read_text().splitlines():
        user, *items = line.split()
        pairs |= {(maps["user"][user], maps["item"][i]) for i in items}
    return pairs


def test_colakg_lastfm_split_is_the_files_split_on_hetrec_nodes(accuracy, data_root: Path) -> None:
    folder = data_root / "colakg" / "lastfm"
    train, test = accuracy.DATASETS["colakg-lastfm"].load(data_root)
    got = {name: set(zip(kg.interactions["user_id"], kg.interactions["item_id"]))
           for name, kg in (("train.txt", train), ("test.txt", test))}
    for name in got:
        assert got[name] == _file_pairs(folder, name)
    assert len(got["train.txt"]) == 57_786 and len(got["test.txt"]) == 13_508
    assert not got["train.txt"] & got["test.txt"]
    assert (train.num_users, train.num_items) == (1_859, 2_813)
    assert train.items.equals(test.items) and train.triples.equals(test.triples)
    t = train.triples
    for end in ("head", "tail"):
        for kind, table, key in (("user", train.users, "user_id"), ("item", train.items, "item_id"),
                                 ("entity", train.entities, "entity_id")):
            assert t.loc[t[f"{end}_type"] == kind, end].isin(table[key]).all()
    assert not ((t["head_type"] == "user") & (t["tail_type"] == "item")).any()  # no tagged artists
    # the artists keep HetRec's names and tag texts
    names = pd.read_csv(data_root / "hetrec2011-lastfm-2k" / "artists.dat", sep="\t", dtype=str,
                        quoting=csv.QUOTE_NONE)
    name_of = dict(zip(names["id"], names["name"]))
    assert (train.items["name"] == train.items["item_id"].map(name_of)).all()
    assert train.items["text"].str.contains("Tag: ").mean() > 0.9
