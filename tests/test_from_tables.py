"""kgrec.from_tables: CSV / TSV / Parquet files with your own column names build the same graph
as the equivalent DataFrames."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import kgrec
from kgrec import KnowledgeGraph


@pytest.fixture(scope="module")
def frames(data_root: Path) -> dict[str, pd.DataFrame]:
    """Real rows from ML-latest-small, renamed to someone's own column names, in native dtypes
    (int ids, float ratings, int timestamps): titles with commas and quotes, pipe genres."""
    src = data_root / "ml-latest-small"
    ratings = pd.read_csv(src / "ratings.csv").head(3000)
    movies = pd.read_csv(src / "movies.csv")
    movies = movies[movies["movieId"].isin(ratings["movieId"])]
    users = pd.DataFrame({"uid": sorted(ratings["userId"].unique())})
    users["age band"] = ["18-24", "25-34", "35-44"] * (len(users) // 3) + ["56+"] * (len(users) % 3)
    users["city"] = ["Paris", "Lyon"] * (len(users) // 2) + ["Nice"] * (len(users) % 2)
    links = pd.read_csv(src / "links.csv")
    links = links[links["movieId"].isin(movies["movieId"])]
    triples = pd.DataFrame({"movie": links["movieId"], "rel": "HAS_IMDB_ID",
                            "object": "imdb:tt" + links["imdbId"].astype(str).str.zfill(7)})
    return {
        "inter": ratings.rename(columns={"userId": "uid", "movieId": "movie", "rating": "stars", "timestamp": "when"}),
        "items": movies.rename(columns={"movieId": "movie", "title": "Title"}),
        "users": users,
        "triples": triples,
    }


KW = dict(user_col="uid", item_col="movie", rating_col="stars", timestamp_col="when",
          item_text=("Title", "genres"), item_attributes={"genres": "genre"}, user_attributes={"age band": "age",
                                                                                              "city": "city"},
          triple_cols=("movie", "rel", "object"))


def assert_same_graph(a: KnowledgeGraph, b: KnowledgeGraph) -> None:
    for table in ("users", "items", "entities", "interactions", "triples"):
        pd.testing.assert_frame_equal(getattr(a, table), getattr(b, table), check_dtype=True, obj=table)
    assert a.report == b.report


def test_csv_files_equal_dataframes(frames: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    paths = {}
    for name, df in frames.items():
        paths[name] = tmp_path / f"my_{name}.csv"
        df.to_csv(paths[name], index=False)
    from_files = kgrec.from_tables(paths["inter"], items=paths["items"], users=paths["users"],
                                   triples=paths["triples"], **KW)
    from_frames = kgrec.from_tables(frames["inter"], items=frames["items"], users=frames["users"],
                                    triples=frames["triples"], **KW)
    assert_same_graph(from_files, from_frames)
    s = from_files.summary()
    assert s["interactions"] == 3000 and s["users"] == frames["inter"]["uid"].nunique()
    assert s.relations["HAS_GENRE"] > 0 and s.relations["HAS_AGE"] == s["users"]
    assert s.relations["HAS_IMDB_ID"] == len(frames["triples"])
    item = from_files.items.set_index("item_id").loc["1"]
    assert item["name"] == "Toy Story (1995)"
    assert item["text"] == "Toy Story (1995). Adventure|Animation|Children|Comedy|Fantasy"
    assert from_files.interactions["timestamp"].notna().all()


def test_tsv_and_parquet_equal_dataframes(frames: dict[str, pd.DataFrame], tmp_path: Path) -> None:
    tsv, pq = {}, {}
    for name, df in frames.items():
        tsv[name] = tmp_path / f"{name}.tsv"
        df.to_csv(tsv[name], index=False, sep="\t")
        pq[name] = tmp_path / f"{name}.parquet"
        df.to_parquet(pq[name], index=False)
    ref = kgrec.from_tables(frames["inter"], items=frames["items"], users=frames["users"], triples=frames["triples"],
                            **KW)
    assert_same_graph(kgrec.from_tables(tsv["inter"], items=tsv["items"], users=tsv["users"], triples=tsv["triples"],
                                        **KW), ref)
    assert_same_graph(kgrec.from_tables(pq["inter"], items=pq["items"], users=pq["users"], triples=pq["triples"],
                                        **KW), ref)


def test_semicolon_csv_with_crlf_and_iso_dates(tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_bytes(b"who;what;score;at\r\nana;book 1;4.5;2024-05-01\r\nbo;book 2;3;2024-05-01T12:00:00Z\r\n")
    kg = kgrec.from_tables(path, sep=";", user_col="who", item_col="what", rating_col="score", timestamp_col="at")
    df = pd.DataFrame({"who": ["ana", "bo"], "what": ["book 1", "book 2"], "score": [4.5, 3.0],
                       "at": pd.to_datetime(["2024-05-01", "2024-05-01T12:00:00Z"], format="ISO8601", utc=True)})
    assert_same_graph(kg, kgrec.from_tables(df, user_col="who", item_col="what", rating_col="score",
                                            timestamp_col="at"))
    assert kg.interactions["timestamp"].tolist() == [1714521600, 1714564800]


def test_weight_column_and_no_items_table(frames: dict[str, pd.DataFrame]) -> None:
    inter = frames["inter"].rename(columns={"stars": "plays"})
    kg = kgrec.from_tables(inter, user_col="uid", item_col="movie", rating_col=None, weight_col="plays")
    assert kg.interactions["rating"].isna().all()
    assert kg.interactions["weight"].tolist() == inter["plays"].astype(float).tolist()
    assert kg.num_items == inter["movie"].nunique()


def test_millisecond_timestamps_are_read_as_milliseconds() -> None:
    """Unix milliseconds (what JavaScript and many logs write) become seconds, said in the
    report; timestamp_unit='s' takes the numbers as they are; ISO dates are unaffected."""
    ms = pd.DataFrame({"user_id": ["1", "1", "2"], "item_id": ["a", "b", "a"],
                       "timestamp": [1_700_000_000_123, 1_700_000_100_999, 1_700_000_200_000]})
    kg = kgrec.from_tables(ms)
    assert kg.interactions["timestamp"].tolist() == [1_700_000_000, 1_700_000_100, 1_700_000_200]
    assert kg.report["timestamps_read_as_ms"] == 3
    assert "timestamps_read_as_ms" in str(kg.summary())
    secs = kgrec.from_tables(ms.assign(timestamp=ms["timestamp"] // 1000))
    assert secs.interactions["timestamp"].tolist() == kg.interactions["timestamp"].tolist()
    assert "timestamps_read_as_ms" not in secs.report
    raw = kgrec.from_tables(ms, timestamp_unit="s")
    assert raw.interactions["timestamp"].tolist() == ms["timestamp"].tolist()
    iso = kgrec.from_tables(ms.assign(timestamp=["2023-11-14T22:13:20Z"] * 3))
    assert iso.interactions["timestamp"].tolist() == [1_700_000_000] * 3
    with pytest.raises(ValueError, match="timestamp_unit"):
        kgrec.from_tables(ms, timestamp_unit="minutes")


def test_min_rating_decides_what_counts_and_the_summary_says_it() -> None:
    """Every interaction is a positive unless min_rating drops the low ones; the summary states
    the policy and the count dropped."""
    df = pd.DataFrame({"user_id": ["1", "1", "2", "2", "3"], "item_id": ["a", "b", "a", "c", "b"],
                       "rating": [5, 1, 4, 4.5, -2]})
    kg = kgrec.from_tables(df)
    assert len(kg.interactions) == 5
    assert "every interaction kept is a positive" in str(kg.summary()) and "from -2 to 5" in str(kg.summary())
    liked = kgrec.from_tables(df, min_rating=4)
    assert sorted(zip(liked.interactions["user_id"], liked.interactions["item_id"])) == [("1", "a"), ("2", "a"),
                                                                                       ("2", "c")]
    assert liked.report["interactions_below_min_rating_dropped"] == 2
    assert "2 rated below the min_rating threshold were dropped" in str(liked.summary())
    assert liked.num_users == 3 and liked.num_items == 3  # nodes stay
    assert kg.with_min_rating(None) is kg
