"""Loaders on the real data sets (../shared/data) and on small hand-made fixtures."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import pytest

import kgrec
from kgrec import DataError, KnowledgeGraph
from kgrec import loaders as L
from support.mini_datasets import write_mini


# ------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def ml100k(ml100k_dir: Path) -> KnowledgeGraph:
    return L.movielens(ml100k_dir)


@pytest.fixture(scope="module")
def lastfm(data_root: Path) -> KnowledgeGraph:
    return L.hetrec_lastfm(data_root / "hetrec2011-lastfm-2k", data_root / "lastfm-kgcn")


@pytest.fixture(scope="module")
def amazon_split(data_root: Path) -> tuple[KnowledgeGraph, KnowledgeGraph]:
    return L.kgat_split(data_root / "kgat" / "amazon-book")


def _sorted(df: pd.DataFrame, by: list[str] | str) -> pd.DataFrame:
    return df.sort_values(by, kind="stable").reset_index(drop=True)


def _subgraph(kg: KnowledgeGraph, n: int) -> KnowledgeGraph:
    """The first ``n`` interactions with their users, items, attributes and attribute entities."""
    inter = kg.interactions.iloc[:n]
    users = kg.users[kg.users["user_id"].isin(inter["user_id"])]
    items = kg.items[kg.items["item_id"].isin(inter["item_id"])]
    t = kg.triples
    t = t[((t["head_type"] == "item") & t["head"].isin(items["item_id"]))
          | ((t["head_type"] == "user") & t["head"].isin(users["user_id"]))]
    ents = kg.entities[kg.entities["entity_id"].isin(t["tail"])]
    return KnowledgeGraph.build(interactions=inter, users=users, items=items, entities=ents, triples=t, name="sub")


# ------------------------------------------------------------------------------------ MovieLens
def test_ml100k_counts(ml100k: KnowledgeGraph) -> None:
    s = ml100k.summary()
    assert (s["users"], s["items"], s["interactions"]) == (943, 1682, 100_000)
    assert s.entity_kinds["genre"] == 19
    assert s.entity_kinds["gender"] == 2 and s.entity_kinds["occupation"] == 21 and s.entity_kinds["age"] == 7
    assert s.relations["HAS_AGE"] == s.relations["HAS_GENDER"] == s.relations["HAS_OCCUPATION"] == 943
    assert s.relations["LIVES_IN"] == 943
    assert s["user_attribute_edges"] == 4 * 943
    assert s.relations["HAS_GENRE"] == 2893  # the genre flags set in u.item
    assert s.report == {"items_without_title": 1, "items_without_year": 1}
    assert "genre" in str(s) and "943" in str(s)


def test_ml100k_tables_and_texts(ml100k: KnowledgeGraph) -> None:
    items = ml100k.items.set_index("item_id")
    assert items.loc["1", "text"] == "Toy Story (1995). Genre: Animation, Children's, Comedy; Year: 1995"
    # latin-1 titles decoded
    assert items["name"].str.contains("é").any()
    # item 267 has no title in u.item: named, counted, still an item with its interactions
    assert items.loc["267", "name"] == "Untitled movie 267"
    assert items.loc["267", "text"] == "Untitled movie 267. Genre: unknown"
    assert (ml100k.interactions["item_id"] == "267").sum() > 0
    assert set(ml100k.entities.loc[ml100k.entities["kind"] == "genre", "entity_id"]) >= {"genre:Action", "genre:unknown"}
    users = ml100k.users.set_index("user_id")
    assert users.loc["1", "text"] == "User. Age: 18-24; Gender: male; Occupation: technician; Zip: 857"
    inter = ml100k.interactions
    assert inter["rating"].between(1, 5).all() and inter["timestamp"].notna().all()
    assert str(inter["timestamp"].dtype) == "Int64" and inter["weight"].isna().all()
    row = inter[(inter["user_id"] == "196") & (inter["item_id"] == "242")].iloc[0]
    assert (row["rating"], row["timestamp"]) == (3.0, 881250949)


def test_age_buckets_follow_ml1m_groups() -> None:
    ages = pd.Series([7, 17, 18, 24, 25, 44, 45, 49, 50, 55, 56, 73], dtype="Int64")
    from kgrec.loaders.movielens import age_bucket
    assert age_bucket(ages).tolist() == ["Under 18", "Under 18", "18-24", "18-24", "25-34", "35-44", "45-49",
                                         "45-49", "50-55", "50-55", "56+", "56+"]


def test_ml_latest_small(data_root: Path) -> None:
    kg = L.movielens(data_root / "ml-latest-small")
    s = kg.summary()
    assert (s["users"], s["items"], s["interactions"]) == (610, 9742, 100_836)
    assert s["cold_items (no interactions)"] == 9742 - 9724
    assert s.entity_kinds["genre"] == 19  # 20 names minus "(no genres listed)"
    assert s.report["items_without_genres"] == 34
    # 3,683 tag rows -> one edge per (movie, normalised tag)
    tags = pd.read_csv(data_root / "ml-latest-small" / "tags.csv")
    norm = tags.assign(tag=tags["tag"].str.strip().str.lower().str.replace(r"\s+", " ", regex=True))
    assert s.relations["HAS_TAG"] == len(norm.drop_duplicates(["movieId", "tag"]))
    text = kg.items.set_index("item_id").loc["1", "text"]
    assert text.startswith("Toy Story (1995). Genre: Adventure, Animation, Children, Comedy, Fantasy; Year: 1995; Tag:")
    assert "pixar" in text
    assert kg.interactions["rating"].isin(np.arange(0.5, 5.01, 0.5)).all()


def test_ml1m_layout_fixture(tmp_path: Path) -> None:
    d = write_mini(tmp_path / "ml-1m-mini", "ml-1m")
    kg = L.movielens(d)
    assert L.detect_layout(d) == "1m"
    items = kg.items.set_index("item_id")
    assert items.loc["2", "name"] == "Misérables, Les (1995)"  # latin-1 movies.dat
    assert items.loc["3", "name"] == "Star Voyage: Part IV - A New Dawn (1977)"  # ':' inside a '::' file
    users = kg.users.set_index("user_id")
    assert users.loc["1", "text"] == "User. Age: Under 18; Gender: female; Occupation: K-12 student; Zip: 481"
    assert users.loc["2", "text"] == "User. Age: 56+; Gender: male; Occupation: self-employed; Zip: 700"
    assert kg.summary().report == {"items_without_year": 1}
    assert len(kg.interactions) == 6


def test_ml10m_layout_fixture_with_tags(tmp_path: Path) -> None:
    d = write_mini(tmp_path / "ml-10m-mini", "ml-10m")
    kg = L.movielens(d)
    assert L.detect_layout(d) == "10m"
    assert kg.interactions["rating"].tolist() == [1.5, 4.5, 3.0, 5.0]
    tags = kg.triples[kg.triples["relation"] == "HAS_TAG"]
    assert sorted(tags["tail"]) == ["tag:paris: romance", "tag:pixar"]  # 'Pixar' and 'pixar ' are one tag
    assert kg.summary().report == {"items_without_genres": 1, "tags_unknown_movie_dropped": 1}
    assert kg.items.set_index("item_id").loc["2", "name"].startswith("Amélie")


# ------------------------------------------------------------------------------------ Last.fm
def test_lastfm_counts(lastfm: KnowledgeGraph) -> None:
    s = lastfm.summary()
    assert (s["users"], s["items"], s["interactions"]) == (1892, 17632, 92_834)
    assert lastfm.interactions["rating"].isna().all()
    assert lastfm.interactions["weight"].min() >= 1
    assert s.entity_kinds["tag"] == 9718  # tags used on a known artist
    assert s.relations["HAS_TAG"] == 108_437  # distinct (artist, tag) pairs
    assert s.relations["FRIEND_OF"] == 25_434
    assert s.relations["TAGGED"] == 70_297  # distinct (user, known artist) pairs of user_taggedartists.dat
    assert s.report["tag_assignments_unknown_artist_dropped"] == 1538
    assert s.report["tagged_artists_missing_from_artists_dat"] == 390  # the known upstream quirk
    assert s.report["tags_unused"] == 11_946 - 9718


def test_lastfm_tagged_artists_are_user_item_triples(lastfm: KnowledgeGraph, data_root: Path) -> None:
    raw = pd.read_csv(data_root / "hetrec2011-lastfm-2k" / "user_taggedartists.dat", sep="\t", dtype=str)
    artists = pd.read_csv(data_root / "hetrec2011-lastfm-2k" / "artists.dat", sep="\t", dtype=str, usecols=[0])
    raw = raw[raw["artistID"].isin(artists["id"])]
    expected = set(zip(raw["userID"], raw["artistID"]))
    t = lastfm.triples[lastfm.triples["relation"] == "TAGGED"]
    assert set(t["head_type"]) == {"user"} and set(t["tail_type"]) == {"item"}
    assert set(zip(t["head"], t["tail"])) == expected and len(t) == len(expected)
    # a second behaviour, kept apart from the listens
    listens = set(zip(lastfm.interactions["user_id"], lastfm.interactions["item_id"]))
    assert 0 < len(expected & listens) < len(expected)
    off = L.hetrec_lastfm(data_root / "hetrec2011-lastfm-2k", tagged_artists=False)
    assert "TAGGED" not in set(off.triples["relation"]) and "HAS_TAG" in set(off.triples["relation"])


def test_lastfm_kgcn_join(lastfm: KnowledgeGraph, data_root: Path) -> None:
    kgt = lastfm.triples[~lastfm.triples["relation"].isin(["HAS_TAG", "FRIEND_OF", "TAGGED"])]
    assert len(kgt) == 15_518  # every kg.txt triple, each touching an item
    assert kgt["relation"].nunique() == 60
    assert ((kgt["head_type"] == "item") | (kgt["tail_type"] == "item")).all()
    assert int(((kgt["head_type"] == "item") & (kgt["tail_type"] == "item")).sum()) == 56
    kg_items = set(kgt.loc[kgt["head_type"] == "item", "head"]) | set(kgt.loc[kgt["tail_type"] == "item", "tail"])
    mapping = pd.read_csv(data_root / "lastfm-kgcn" / "item_index2entity_id.txt", sep="\t", header=None, dtype=str)
    assert kg_items <= set(mapping[0])
    assert lastfm.summary().entity_kinds["kg"] == 9366 - 3846
    # a known triple: kg.txt line 1 is entity 2086 -music.artist.origin-> 3846
    ent2item = dict(zip(mapping[1], mapping[0]))
    row = kgt[(kgt["head"] == ent2item["2086"]) & (kgt["tail"] == "kg:3846")]
    assert row["relation"].tolist() == ["music.artist.origin"]
    ents = lastfm.entities.set_index("entity_id")
    assert ents.loc["kg:3846", "text"].startswith("KG entity: music.artist.origin")
    item = lastfm.items.set_index("item_id").loc["1"]
    assert item["name"] == "MALICE MIZER" and item["text"].startswith("MALICE MIZER. Tag: j-rock, visual kei")


def test_kgcn_kg_alone_and_with_from_tables(data_root: Path) -> None:
    ents, triples, report = L.kgcn_kg(data_root / "lastfm-kgcn")
    assert len(triples) == 15_518 and report == {}
    inter = pd.read_csv(data_root / "lastfm-kgcn" / "user_artists.dat", sep="\t", dtype=str)
    kg = kgrec.from_tables(inter, user_col="userID", item_col="artistID", weight_col="weight",
                           items=pd.DataFrame({"artistID": pd.unique(inter["artistID"])}), triples=triples)
    assert kg.summary()["knowledge_edges"] == 15_518


# ------------------------------------------------------------------------------------ KGAT
def test_kgat_amazon_book_split(amazon_split: tuple[KnowledgeGraph, KnowledgeGraph]) -> None:
    train, test = amazon_split
    assert (train.num_users, train.num_items) == (70_679, 24_915)
    assert (len(train.interactions), len(test.interactions)) == (652_514, 193_920)
    assert train.users is test.users and train.triples is test.triples
    assert train.items.set_index("item_id").loc["0", "name"] == "0553092626"
    assert train.users.set_index("user_id").loc["0", "name"] == "A3RTKL9KB8KLID"
    assert train.summary().report == {}
    # every test user has training interactions in this split
    assert set(test.interactions["user_id"]) <= set(train.interactions["user_id"])


def test_kgat_whole_graph_loads_fast(data_root: Path) -> None:
    import time
    t = time.perf_counter()
    kg = L.kgat(data_root / "kgat" / "amazon-book")
    elapsed = time.perf_counter() - t
    assert len(kg.interactions) == 846_434 and kg.summary()["knowledge_edges"] == 0
    assert elapsed < 10, f"KGAT amazon-book took {elapsed:.1f} s"


def test_kgat_fixture_policies(tmp_path: Path) -> None:
    mini = write_mini(tmp_path / "kgat-mini", "kgat")
    train, test = L.kgat_split(mini)
    pairs = lambda kg: sorted(zip(kg.interactions["user_id"], kg.interactions["item_id"]))  # noqa: E731
    assert pairs(train) == [("0", "0"), ("0", "1"), ("1", "2")]
    assert pairs(test) == [("0", "2"), ("1", "0"), ("2", "1")]
    assert train.summary().report == {"duplicate_interactions_merged": 1, "test_pairs_also_in_train_dropped": 1,
                                      "users_only_in_test": 1, "duplicate_triples_dropped": 1}
    assert train.num_users == 4  # user 3 has an empty line: a node without interactions
    assert sorted(map(tuple, train.triples.to_numpy().tolist())) == [
        ("entity", "kg:m.x", "type.object.type", "entity", "kg:m.y"),
        ("item", "0", "book.author.works", "entity", "kg:m.x"),
        ("item", "1", "book.author.works", "entity", "kg:m.x"),
        ("item", "2", "type.object.type", "item", "1"),
    ]
    whole = L.kgat(mini)
    assert len(whole.interactions) == 6
    # one file as raw pairs: repeats kept, lines named, ids bounded
    raw = L.kgat_interactions(mini / "train.txt", num_users=4, num_items=3)
    assert raw.to_numpy().tolist() == [[0, 0, 1], [0, 1, 1], [0, 1, 1], [1, 2, 2]]
    (tmp_path / "bad.txt").write_text("0 1\n1 2 x\n")
    with pytest.raises(DataError, match=r"bad\.txt row 2: 'x' in an id"):
        L.kgat_interactions(tmp_path / "bad.txt")
    with pytest.raises(DataError, match=r"train\.txt row 2: item 2 is beyond item_list\.txt \(2 items\)"):
        L.kgat_interactions(mini / "train.txt", num_items=2)


def test_kgat_kg_final_of_lastfm(data_root: Path) -> None:
    ents, triples, report = L.kgat_kg(data_root / "kgat" / "last-fm")
    assert len(triples) + report.get("duplicate_triples_dropped", 0) == 464_567
    assert triples["relation"].nunique() == 9
    assert set(triples["relation"]) >= {"music.recording.artist", "common.topic.notable_types"}
    is_item = triples["head_type"] == "item"
    assert triples.loc[is_item, "head"].astype(int).lt(48_123).all()
    assert ents["entity_id"].str.match(r"kg:[mg]\.").all()  # Freebase mids and gids


def test_kgat_without_train_names_the_file(data_root: Path) -> None:
    with pytest.raises(DataError, match=r"last-fm/train\.txt: file not found.*Fix:"):
        L.kgat(data_root / "kgat" / "last-fm")


# ------------------------------------------------------------------------------------ splits
@pytest.mark.parametrize("kind", ["random", "temporal", "cold_items", "cold_users"])
def test_split_is_deterministic_per_seed(ml100k: KnowledgeGraph, kind: str) -> None:
    a_train, a_test = ml100k.split(kind, test=0.2, seed=3)
    b_train, b_test = ml100k.split(kind, test=0.2, seed=3)
    pd.testing.assert_frame_equal(a_train.interactions, b_train.interactions)
    pd.testing.assert_frame_equal(a_test.interactions, b_test.interactions)
    assert len(a_train.interactions) + len(a_test.interactions) == 100_000
    if kind != "temporal":
        c_train, _ = ml100k.split(kind, test=0.2, seed=4)
        assert not a_train.interactions.equals(c_train.interactions)


def test_random_split_keeps_every_test_user_in_train(ml100k: KnowledgeGraph) -> None:
    train, valid, test = ml100k.split("random", test=0.2, valid=0.1, seed=0)
    assert len(train.interactions) + len(valid.interactions) + len(test.interactions) == 100_000
    assert set(test.interactions["user_id"]) <= set(train.interactions["user_id"])
    assert set(valid.interactions["user_id"]) <= set(train.interactions["user_id"])
    assert 0.18 < len(test.interactions) / 100_000 < 0.22


def test_temporal_split_holds_out_each_users_latest(ml100k: KnowledgeGraph) -> None:
    train, test = ml100k.split("temporal", test=0.2, seed=0)
    last_train = train.interactions.groupby("user_id")["timestamp"].max()
    first_test = test.interactions.groupby("user_id")["timestamp"].min()
    assert (first_test >= last_train.reindex(first_test.index)).all()


@pytest.mark.parametrize("kind,col,table,key", [("cold_items", "item_id", "items", "item_id"),
                                                 ("cold_users", "user_id", "users", "user_id")])
def test_cold_splits_hold_out_nodes_but_keep_their_text(ml100k: KnowledgeGraph, kind: str, col: str,
                                                        table: str, key: str) -> None:
    train, test = ml100k.split(kind, test=0.2, seed=1)
    held = set(test.interactions[col])
    assert held and not held & set(train.interactions[col])
    assert held == set(getattr(train, kind)) == set(getattr(test, kind))
    nodes = getattr(train, table).set_index(key)
    assert held <= set(nodes.index)
    assert nodes.loc[sorted(held), "text"].str.len().gt(0).all()
    # their attributes stay in the knowledge edges
    head_type = "item" if kind == "cold_items" else "user"
    heads = set(train.triples.loc[train.triples["head_type"] == head_type, "head"])
    assert held <= heads
    assert 0.15 < len(held) / ml100k.interactions[col].nunique() < 0.25


# ------------------------------------------------------------------------------------ RDF / networkx
def test_rdf_round_trip(ml100k: KnowledgeGraph, tmp_path: Path) -> None:
    small = _subgraph(ml100k, 300)
    small.interactions.loc[0, "weight"] = 2.5  # a weight travels too
    assert len(small.users) > 5 and len(small.items) > 100 and len(small.triples) > 300
    path = tmp_path / "graph.ttl"
    g = L.to_rdf(small, path)
    assert len(g) > 0 and path.read_text().startswith("@prefix")
    back = L.read_rdf(path)
    for table, key in (("users", "user_id"), ("items", "item_id"), ("entities", "entity_id")):
        pd.testing.assert_frame_equal(_sorted(getattr(small, table), key), _sorted(getattr(back, table), key))
    pd.testing.assert_frame_equal(_sorted(small.interactions, ["user_id", "item_id"]),
                                  _sorted(back.interactions, ["user_id", "item_id"]))
    cols = list(small.triples.columns)
    pd.testing.assert_frame_equal(_sorted(small.triples, cols), _sorted(back.triples, cols))


def test_rdf_round_trip_other_formats(tmp_path: Path) -> None:
    kg = kgrec.from_tables(pd.DataFrame({"user_id": ["u 1", "u2"], "item_id": ["a/b", "c#d"], "rating": [4, 5]}),
                           items=pd.DataFrame({"item_id": ["a/b", "c#d"], "title": ["Ä title", 'quote " here']}),
                           item_text="title")
    for fmt, ext in (("nt", "nt"), ("json-ld", "jsonld"), ("xml", "rdf")):
        path = tmp_path / f"g.{ext}"
        L.to_rdf(kg, path, format=fmt)
        back = L.read_rdf(path)
        pd.testing.assert_frame_equal(_sorted(back.items, "item_id"), _sorted(kg.items, "item_id"))
        assert sorted(back.interactions["item_id"]) == ["a/b", "c#d"]


def test_from_rdf_adds_knowledge_to_items(ml100k: KnowledgeGraph, tmp_path: Path) -> None:
    ttl = tmp_path / "movies.ttl"
    ttl.write_text("""
@prefix ml: <http://example.org/ml100k/item/> .
@prefix dbr: <http://dbpedia.org/resource/> .
@prefix dbo: <http://dbpedia.org/ontology/> .
@prefix ex: <http://example.org/vocab#> .
@prefix rdfs: <http://www.w3.org/2000/01/rdf-schema#> .
ml:1 dbo:director dbr:John_Lasseter ; ex:genre "Animation" ; rdfs:label "Toy Story" ;
     rdfs:comment "A cowboy doll is threatened by a new spaceman action figure." .
ml:2 dbo:director dbr:Martin_Campbell .
dbr:John_Lasseter rdfs:label "John Lasseter"@en ; dbo:employer dbr:Pixar .
""", encoding="utf-8")
    ents, triples, report = L.rdf_triples(ttl, item_prefix="http://example.org/ml100k/item/")
    assert report == {"rdf_labels_used_as_names": 2, "rdf_descriptions_skipped": 1}
    assert sorted(map(tuple, triples.to_numpy().tolist())) == [
        ("entity", "dbr:John_Lasseter", "dbo:employer", "entity", "dbr:Pixar"),
        ("item", "1", "dbo:director", "entity", "dbr:John_Lasseter"),
        ("item", "1", "ex:genre", "entity", "genre:Animation"),
        ("item", "2", "dbo:director", "entity", "dbr:Martin_Campbell"),
    ]
    names = ents.set_index("entity_id")["name"]
    assert names["dbr:John_Lasseter"] == "John Lasseter" and names["dbr:Martin_Campbell"] == "Martin_Campbell"
    kg2 = L.from_rdf(ml100k, ttl, item_prefix="http://example.org/ml100k/item/")
    assert len(kg2.triples) == len(ml100k.triples) + 4
    assert len(kg2.entities) == len(ml100k.entities) + 3  # genre:Animation already existed
    assert kg2.summary().report["rdf_labels_used_as_names"] == 2
    assert len(ml100k.triples) == 8346  # the original is untouched


def test_to_networkx(ml100k: KnowledgeGraph) -> None:
    g = L.to_networkx(ml100k)
    assert isinstance(g, nx.MultiDiGraph)
    assert g.number_of_nodes() == 943 + 1682 + len(ml100k.entities)
    assert g.number_of_edges() == 100_000 + len(ml100k.triples)
    assert g.nodes["item:1"]["name"] == "Toy Story (1995)" and g.nodes["item:1"]["type"] == "item"
    assert g.nodes["entity:genre:Action"]["kind"] == "genre"
    edge = g.get_edge_data("user:196", "item:242")["INTERACTED"]
    assert edge == {"relation": "INTERACTED", "rating": 3.0, "timestamp": 881250949}
    assert "HAS_GENRE" in g.get_edge_data("item:1", "entity:genre:Comedy")


# ------------------------------------------------------------------------------------ download
def _mini_archive(tmp_path: Path, ml100k_dir: Path) -> tuple[Path, str]:
    """A small ml-100k.zip built from the first rows of the real files."""
    src = tmp_path / "src"
    zpath = src / "ml-100k.zip"
    src.mkdir()
    with zipfile.ZipFile(zpath, "w") as zf:
        for name in ("u.item", "u.genre", "u.user"):
            zf.write(ml100k_dir / name, f"ml-100k/{name}")
        lines = (ml100k_dir / "u.data").read_bytes().splitlines(keepends=True)[:500]
        zf.writestr("ml-100k/u.data", b"".join(lines))
    return zpath, hashlib.sha256(zpath.read_bytes()).hexdigest()


def test_download_verifies_caches_and_extracts(tmp_path: Path, ml100k_dir: Path) -> None:
    zpath, digest = _mini_archive(tmp_path, ml100k_dir)
    cache = tmp_path / "cache"
    folder = L.download_movielens("ml-100k", cache, url=zpath.as_uri(), sha256=digest)
    assert folder == cache / "ml-100k" and (folder / "u.data").exists()
    assert len(L.movielens(folder).interactions) == 500
    # cache hit: nothing is fetched again (the URL no longer exists)
    zpath.unlink()
    assert L.download_movielens("ml-100k", cache, url=zpath.as_uri(), sha256=digest) == folder


def test_download_uses_an_archive_already_in_the_cache(tmp_path: Path, ml100k_dir: Path) -> None:
    zpath, digest = _mini_archive(tmp_path, ml100k_dir)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "ml-100k.zip").write_bytes(zpath.read_bytes())
    folder = L.download_movielens("ml-100k", cache, url="http://127.0.0.1:9/never-fetched.zip", sha256=digest)
    assert (folder / "u.item").exists()


def test_download_rejects_a_bad_checksum(tmp_path: Path, ml100k_dir: Path) -> None:
    zpath, _ = _mini_archive(tmp_path, ml100k_dir)
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=r"sha256 of the download is [0-9a-f]{64}, expected 0{64}.*Fix: retry"):
        L.download_movielens("ml-100k", cache, url=zpath.as_uri(), sha256="0" * 64)
    assert not list(cache.glob("*.zip*"))  # the bad download is not kept


def test_download_network_failure_names_the_url(tmp_path: Path) -> None:
    url = "http://127.0.0.1:9/ml-100k.zip"  # nothing listens on the discard port
    with pytest.raises(DataError, match=r"127\.0\.0\.1:9/ml-100k\.zip: download failed .*Fix: .*--data"):
        L.download_movielens("ml-100k", tmp_path, url=url, timeout=5)


def test_download_knows_the_official_archives() -> None:
    url, digest = L.MOVIELENS_ARCHIVES["ml-100k"]
    assert url == "https://files.grouplens.org/datasets/movielens/ml-100k.zip"
    assert digest.startswith("sha256:") and len(digest) == 7 + 64
    with pytest.raises(DataError, match="unknown MovieLens archive"):
        L.download_movielens("ml-7k")

