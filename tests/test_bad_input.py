"""Bad input: every case raises a kgrec error that names the file (or table), the row and the
fix, with no pandas traceback chained to it, or follows a documented policy whose count shows
in ``kg.summary().report``."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

import kgrec
from kgrec import DataError, KgrecError, KnowledgeGraph, SchemaError
from kgrec import loaders as L
from support.mini_datasets import write_mini


def fails(fn: Callable[[], object], *parts: str) -> KgrecError:
    """Run ``fn``; it must raise a kgrec DataError/SchemaError whose message holds every one
    of ``parts`` and a ``Fix:``, without chaining a library exception."""
    with pytest.raises((DataError, SchemaError)) as info:
        fn()
    err = info.value
    msg = str(err)
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"
    assert "Fix:" in msg, msg
    assert err.__cause__ is None and (err.__context__ is None or err.__suppress_context__), \
        "a library traceback is chained to the error"
    return err


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def ml_dir(tmp_path: Path, ml100k_dir: Path) -> Callable[[str], Path]:
    """An ML-100K folder whose u.data is ``text`` (u.item, u.genre, u.user are the real ones)."""
    def make(text: str) -> Path:
        d = tmp_path / "ml-100k"
        d.mkdir(exist_ok=True)
        for name in ("u.item", "u.genre", "u.user"):
            shutil.copy(ml100k_dir / name, d / name)
        write(d / "u.data", text)
        return d
    return make


GOOD_CSV = "user_id,item_id,rating\n1,10,4\n2,10,5\n2,11,3\n"


# ---------------------------------------------------------------------------------- files
def test_missing_file(tmp_path: Path) -> None:
    fails(lambda: kgrec.from_tables(tmp_path / "ratings.csv"), "ratings.csv: file not found", "check the path")


def test_missing_file_inside_a_loader_folder(ml_dir: Callable[[str], Path]) -> None:
    d = ml_dir("1\t1\t5\t880000101\n")
    (d / "u.item").unlink()
    fails(lambda: L.movielens(d), "u.item: file not found", "re-extract")


def test_missing_loader_folder(tmp_path: Path) -> None:
    fails(lambda: L.hetrec_lastfm(tmp_path / "nope"), "nope: HetRec Last.fm folder not found", "--data")


def test_directory_instead_of_file(tmp_path: Path, ml_dir: Callable[[str], Path]) -> None:
    (tmp_path / "ratings.csv").mkdir()
    fails(lambda: kgrec.from_tables(tmp_path / "ratings.csv"), "ratings.csv: is a directory")
    d = ml_dir("1\t1\t5\t880000101\n")
    (d / "u.data").unlink()
    (d / "u.data").mkdir()
    fails(lambda: L.movielens(d), "u.data: is a directory", "not a folder")


def test_file_instead_of_folder(tmp_path: Path) -> None:
    f = write(tmp_path / "u.data", "1\t1\t5\t880000101\n")
    fails(lambda: L.movielens(f), "u.data: is a file", f"pass {tmp_path}")


def test_empty_file(tmp_path: Path, ml_dir: Callable[[str], Path]) -> None:
    fails(lambda: kgrec.from_tables(write(tmp_path / "r.csv", "")), "r.csv: the file is empty")
    fails(lambda: L.movielens(ml_dir("")), "u.data: the file is empty")


def test_header_only_file(tmp_path: Path, data_root: Path) -> None:
    fails(lambda: kgrec.from_tables(write(tmp_path / "r.csv", "user_id,item_id,rating\n")),
          "r.csv: the interaction table is empty", "at least one")
    d = tmp_path / "latest"
    shutil.copy(data_root / "ml-latest-small" / "movies.csv", write(d / "x", "").parent / "movies.csv")
    write(d / "ratings.csv", "userId,movieId,rating,timestamp\r\n")
    fails(lambda: L.movielens(d), "ratings.csv: the file has a header but no data rows")


def test_not_a_movielens_folder(tmp_path: Path) -> None:
    write(tmp_path / "data.csv", GOOD_CSV)
    fails(lambda: L.movielens(tmp_path), "no MovieLens ratings file here (found: data.csv)", "u.data")


# ---------------------------------------------------------------------------------- columns, separators
def test_missing_column(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", "user_id,movie,rating\n1,10,4\n")
    fails(lambda: kgrec.from_tables(p), "r.csv row 1: required column(s) ['item_id'] not found", "movie")


def test_file_without_a_header_row(tmp_path: Path) -> None:
    """MovieLens-1M's ratings.dat and ML-100K's u.data have no header: the first data row is
    read as one, and the error says so instead of listing numbers as column names."""
    p = write(tmp_path / "ratings.dat", "1::1193::5::978300760\n1::661::3::978302109\n")
    fails(lambda: kgrec.from_tables(p, sep="::"), "ratings.dat row 1: required column(s) ['user_id', 'item_id']",
          "no header row", "names=[...]")


def test_wrong_separator_generic(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", "user_id;item_id;rating\n1;10;4\n")
    fails(lambda: kgrec.from_tables(p), "r.csv row 1", "looks separated by ';'")


def test_wrong_separator_in_a_loader(ml_dir: Callable[[str], Path]) -> None:
    fails(lambda: L.movielens(ml_dir("7,42,3,880000101\n")),
          "u.data row 1: expected 4 fields separated by '\\t' (tab), found 1", "looks separated by ','")


def test_row_with_too_few_and_too_many_fields(ml_dir: Callable[[str], Path], tmp_path: Path) -> None:
    fails(lambda: L.movielens(ml_dir("7\t42\t3\t880000101\n8\t17\t3\n")),
          "u.data row 2: the row has 3 fields, expected 4")
    fails(lambda: L.movielens(ml_dir("7\t42\t3\t880000101\n8\t17\t3\t880000202\t7\n")),
          "u.data row 2: malformed row", "4 fields")


# ---------------------------------------------------------------------------------- values
def test_non_numeric_rating(tmp_path: Path, ml_dir: Callable[[str], Path]) -> None:
    p = write(tmp_path / "r.csv", "user_id,item_id,rating\n1,10,4\n2,10,five\n")
    fails(lambda: kgrec.from_tables(p), "r.csv row 3: rating 'five' is not a number", "numeric")
    fails(lambda: L.movielens(ml_dir("7\t42\t3\t880000101\n8\t17\tthree\t880000202\n")),
          "u.data row 2: rating 'three' is not a finite number")


def test_empty_or_nan_rating(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", "user_id,item_id,rating\n1,10,4\n2,10,\n")
    fails(lambda: kgrec.from_tables(p), "r.csv row 3: rating is empty", "drop the rating column")
    df = pd.DataFrame({"user_id": ["1", "2"], "item_id": ["10", "10"], "rating": [4.0, float("nan")]})
    fails(lambda: kgrec.from_tables(df), "<DataFrame> row 1: rating is empty")


def test_infinite_rating(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", "user_id,item_id,rating\n1,10,4\n2,10,inf\n")
    fails(lambda: kgrec.from_tables(p), "r.csv row 3: rating is infinite")


def test_empty_ids(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", "user_id,item_id,rating\n1,10,4\n ,10,5\n")
    fails(lambda: kgrec.from_tables(p), "r.csv row 3: user_id is empty", "fill in user_id")
    d = tmp_path / "ml1m"
    write_mini(d, "ml-1m")
    write(d / "ratings.dat", "1::1::5::960000101\n1::::3::960000202\n")
    fails(lambda: L.movielens(d), "ratings.dat row 2: movie id is empty")


def test_bad_timestamp(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", "user_id,item_id,rating,timestamp\n1,10,4,880000101\n2,10,5,yesterday\n")
    fails(lambda: kgrec.from_tables(p), "r.csv row 3: timestamp 'yesterday' is neither a number nor a date",
          "ISO 8601")
    d = tmp_path / "ml1m"
    write_mini(d, "ml-1m")
    write(d / "ratings.dat", "1::1::5::960000101\n1::3::3::96000.5\n")
    fails(lambda: L.movielens(d), "ratings.dat row 2: timestamp '96000.5' is not an integer")


def test_undecodable_bytes(tmp_path: Path, data_root: Path) -> None:
    p = write(tmp_path / "items.csv", "item_id,title\n10,Caf\xe9 Society\n".encode("latin-1"))
    inter = write(tmp_path / "r.csv", GOOD_CSV.replace("2,11,3\n", ""))
    fails(lambda: kgrec.from_tables(inter, items=p), "items.csv row 2: byte 0xe9 is not valid utf-8",
          "encoding='latin-1'")
    d = tmp_path / "hetrec"
    shutil.copytree(data_root / "hetrec2011-lastfm-2k", d)
    art = (d / "artists.dat").read_bytes().splitlines(keepends=True)
    art[3] = art[3].decode("utf-8").encode("latin-1", errors="replace").replace(b"\t", b"\xe9\t", 1)
    (d / "artists.dat").chmod(0o644)
    (d / "artists.dat").write_bytes(b"".join(art))
    fails(lambda: L.hetrec_lastfm(d), "artists.dat row 4: byte 0xe9 is not valid utf-8")


def test_unknown_movie_in_ratings(ml_dir: Callable[[str], Path]) -> None:
    fails(lambda: L.movielens(ml_dir("7\t42\t3\t880000101\n8\t9999\t3\t880000202\n")),
          "u.data row 2: movie id '9999' is not in u.item (1 such rows)", "add it to u.item")


def test_bad_user_attribute(tmp_path: Path) -> None:
    d = tmp_path / "ml1m"
    write_mini(d, "ml-1m")
    write(d / "users.dat", "1::F::1::10::48123\n2::X::56::16::70011\n3::M::25::15::55001\n")
    fails(lambda: L.movielens(d), "users.dat row 2: gender 'X' is not M or F")


# ---------------------------------------------------------------------------------- graph references
def test_duplicate_interactions_are_merged_and_counted(tmp_path: Path) -> None:
    p = write(tmp_path / "r.csv", "user_id,item_id,rating\n1,10,4\n2,10,5\n1,10,2\n")
    kg = kgrec.from_tables(p)
    assert kg.summary().report == {"duplicate_interactions_merged": 1}
    assert "duplicate_interactions_merged" in str(kg.summary())
    row = kg.interactions[(kg.interactions["user_id"] == "1") & (kg.interactions["item_id"] == "10")]
    assert row["rating"].tolist() == [2.0]  # the latest row wins


def test_triples_naming_unknown_items(tmp_path: Path) -> None:
    inter = write(tmp_path / "r.csv", GOOD_CSV)
    trip = write(tmp_path / "kg.csv", "head,relation,tail\n10,HAS_GENRE,genre:Drama\n99,HAS_GENRE,genre:Drama\n")
    fails(lambda: kgrec.from_tables(inter, triples=trip), "kg.csv row 3: head '99' names an unknown item",
          "add the item")


def test_entity_headed_triples_error_names_the_head_type_column(tmp_path: Path) -> None:
    """Entity-to-entity triples (a multi-hop KG) without a head_type column: the fix says how to
    mark them; with the column they load."""
    inter = write(tmp_path / "r.csv", GOOD_CSV)
    trip = write(tmp_path / "kg.csv", "head,relation,tail\n10,HAS_GENRE,genre:Drama\ngenre:Drama,SUBGENRE_OF,genre:Art\n")
    fails(lambda: kgrec.from_tables(inter, triples=trip), "kg.csv row 3: head 'genre:Drama' names an unknown item",
          "head_type column", "head_type entity")
    typed = write(tmp_path / "kg2.csv", "head_type,head,relation,tail\nitem,10,HAS_GENRE,genre:Drama\n"
                                        "entity,genre:Drama,SUBGENRE_OF,genre:Art\n")
    kg = kgrec.from_tables(inter, triples=typed)
    assert ((kg.triples["head_type"] == "entity") & (kg.triples["tail"] == "genre:Art")).sum() == 1


def test_interactions_naming_items_missing_from_the_items_table(tmp_path: Path) -> None:
    inter = write(tmp_path / "r.csv", GOOD_CSV)
    items = write(tmp_path / "items.csv", "item_id,title\n10,Ten\n")
    fails(lambda: kgrec.from_tables(inter, items=items), "r.csv row 4: item_id '11' is not in the items table")


def test_empty_interaction_table() -> None:
    df = pd.DataFrame({"user_id": pd.Series(dtype=str), "item_id": pd.Series(dtype=str)})
    fails(lambda: kgrec.from_tables(df), "<DataFrame>: the interaction table is empty")


def test_non_numeric_column_given_to_build() -> None:
    fails(lambda: KnowledgeGraph.build(interactions=pd.DataFrame({"user_id": ["1"], "item_id": ["2"],
                                                                   "rating": ["high"]})),
          "interactions row 0: column 'rating' holds 'high'")


# ---------------------------------------------------------------------------------- splits
def test_users_only_in_test_follow_the_documented_policy(tmp_path: Path) -> None:
    d = write_mini(tmp_path / "kgat", "kgat")
    train, test = L.kgat_split(d)
    # user 2 appears only in test.txt: kept (a cold user for the model) and counted
    assert train.summary().report["users_only_in_test"] == 1
    assert "2" in set(test.interactions["user_id"]) and "2" not in set(train.interactions["user_id"])
    assert "2" in set(train.users["user_id"])
    # a split made by kgrec never creates them
    tr, te = L.kgat(d).split("random", test=0.5, seed=0)
    assert set(te.interactions["user_id"]) <= set(tr.interactions["user_id"])


def test_unknown_split_kind(tmp_path: Path) -> None:
    kg = kgrec.from_tables(write(tmp_path / "r.csv", GOOD_CSV))
    fails(lambda: kg.split("by_genre"), "KnowledgeGraph.split: unknown split kind 'by_genre'", "'cold_items'")


def test_bad_split_fractions(tmp_path: Path) -> None:
    kg = kgrec.from_tables(write(tmp_path / "r.csv", GOOD_CSV))
    fails(lambda: kg.split("random", test=0.0), "split fractions test=0.0")
    fails(lambda: kg.split("random", test=0.6, valid=0.5), "test=0.6, valid=0.5", "test + valid < 1")


def test_temporal_split_without_timestamps(tmp_path: Path) -> None:
    kg = kgrec.from_tables(write(tmp_path / "r.csv", GOOD_CSV))
    fails(lambda: kg.split("temporal"), "interactions row 0: the temporal split needs a timestamp", "split('random')")


# ---------------------------------------------------------------------------------- formats
def test_corrupt_parquet(tmp_path: Path) -> None:
    p = write(tmp_path / "r.parquet", b"PAR1 this is not really parquet PAR1")
    fails(lambda: kgrec.from_tables(p), "r.parquet: not a readable Parquet file", "re-export")


def test_rdf_parse_errors(tmp_path: Path) -> None:
    ttl = write(tmp_path / "kg.ttl", '@prefix ex: <http://ex.org/> .\nex:1 ex:genre "Drama" .\nex:2 ex:genre "x\n')
    fails(lambda: L.rdf_triples(ttl, item_prefix="http://ex.org/"), "kg.ttl row 3: not valid turtle RDF",
          "fix the syntax")
    nt = write(tmp_path / "kg.nt", "<http://ex.org/1> <http://ex.org/g> \"a\" .\n<http://ex.org/2> <http://ex.org/g> .\n")
    fails(lambda: L.rdf_triples(nt, item_prefix="http://ex.org/"), "kg.nt row 2: not valid nt RDF")
    js = write(tmp_path / "kg.jsonld", '{"@id": "http://ex.org/1",\n "http://ex.org/g": [}')
    fails(lambda: L.rdf_triples(js, item_prefix="http://ex.org/"), "kg.jsonld row 2: not valid json-ld RDF")
    fails(lambda: L.rdf_triples(write(tmp_path / "kg.foo", "x"), item_prefix="x"), "cannot tell the RDF format",
          "format='turtle'")


def test_rdf_naming_unknown_items(tmp_path: Path) -> None:
    kg = kgrec.from_tables(write(tmp_path / "r.csv", GOOD_CSV))
    ttl = write(tmp_path / "kg.ttl", "@prefix it: <http://ex.org/item/> .\n@prefix ex: <http://ex.org/> .\n"
                                     "it:10 ex:genre \"Drama\" .\nit:77 ex:genre \"Drama\" .\n")
    fails(lambda: L.from_rdf(kg, ttl, item_prefix="http://ex.org/item/"), "kg.ttl", "names item '77'",
          "on_unknown='drop'")
    kept = L.from_rdf(kg, ttl, item_prefix="http://ex.org/item/", on_unknown="drop")
    assert kept.summary().report == {"rdf_triples_unknown_node_dropped": 1}
    assert len(kept.triples) == 1
    fails(lambda: L.rdf_triples(ttl), "no way to tell which resources are your items", "item_prefix=")


def test_kgat_bad_ids(tmp_path: Path) -> None:
    d = write_mini(tmp_path / "kgat", "kgat")
    write(d / "train.txt", "0 0 1\n1 2 x7\n")
    fails(lambda: L.kgat(d), "train.txt row 2: 'x' in an id", "remap ids")
    write(d / "train.txt", "0 0 1\n1 2 3\n")
    fails(lambda: L.kgat(d), "train.txt row 2: item 3 is beyond item_list.txt (3 items)")
    write(d / "train.txt", "0 0 1\n")
    write(d / "kg_final.txt", "0 0 3\n1 0\n")
    fails(lambda: L.kgat(d), "kg_final.txt row 2: expected 3 ids, found 2")


def test_lastfm_tag_id_missing_from_tags_file(tmp_path: Path, data_root: Path) -> None:
    d = tmp_path / "hetrec"
    shutil.copytree(data_root / "hetrec2011-lastfm-2k", d)
    p = d / "user_taggedartists.dat"
    p.chmod(0o644)
    lines = p.read_bytes().splitlines(keepends=True)
    lines[5] = b"2\t52\t999999\t1\t4\t2009\r\n"
    p.write_bytes(b"".join(lines))
    fails(lambda: L.hetrec_lastfm(d), "user_taggedartists.dat row 6: tagID '999999' is not in tags.dat")
