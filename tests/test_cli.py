"""The kgrec command line, run as a user runs it (a subprocess): the main jobs on real data,
and bad input that must end in one line on stderr and exit code 2, never a traceback."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from support.model_fixtures import small_movielens


def kgrec(*args: str, cwd: Path | None = None, columns: int = 200) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": str(columns), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "kgrec", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=900)


def assert_metrics_table(stdout: str) -> None:
    """The metrics table shows recall and ndcg at 10 and 20 in full (one row per metric)."""
    assert re.search(r"metric\s*┃\s*@10\s*┃\s*@20", stdout), stdout
    for name in ("recall", "ndcg", "precision", "hit_rate", "mrr"):
        assert re.search(rf"{name}\s*│\s*0\.\d{{4}}\s*│\s*0\.\d{{4}}", stdout), (name, stdout)


def one_line_error(res: subprocess.CompletedProcess, *needles: str) -> None:
    assert res.returncode == 2, (res.returncode, res.stdout[-2000:], res.stderr[-2000:])
    lines = [line for line in res.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert "Traceback" not in res.stderr
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.fixture(scope="module")
def tables(ml100k_dir, tmp_path_factory) -> dict[str, Path]:
    """Real ML-100K (first 300 users) as generic CSV tables with the user's own column names."""
    kg = small_movielens(ml100k_dir)
    d = tmp_path_factory.mktemp("tables")
    kg.interactions.rename(columns={"user_id": "uid", "item_id": "movie"})[["uid", "movie", "rating", "timestamp"]] \
        .to_csv(d / "ratings.csv", index=False)
    genres = kg.triples[kg.triples["relation"] == "HAS_GENRE"].groupby("head")["tail"].agg(
        lambda s: "|".join(x.split(":", 1)[1] for x in s))
    items = kg.items[["item_id", "name"]].rename(columns={"item_id": "movie", "name": "title"})
    items["genres"] = items["movie"].map(genres).fillna("")
    items.to_csv(d / "movies.csv", index=False)
    pd.DataFrame({"movie": ["new-1", "new-2"], "title": ["Space Robots (2030)", "Toy Story 7 (2031)"],
                  "genres": ["Sci-Fi|Action", "Animation|Comedy"]}).to_csv(d / "new_items.csv", index=False)
    return {"dir": d, "ratings": d / "ratings.csv", "movies": d / "movies.csv", "new_items": d / "new_items.csv"}


@pytest.fixture(scope="module")
def model(tables) -> Path:
    out = tables["dir"] / "model"
    res = kgrec("train", "--out", out, "--interactions", tables["ratings"], "--items", tables["movies"],
                "--item-text", "title,genres", "--user-col", "uid", "--item-col", "movie", "--epochs", "2", columns=80)
    assert res.returncode == 0, res.stderr[-3000:]
    assert_metrics_table(res.stdout)  # readable in an 80-column terminal
    return out


def test_train_refits_unless_told_not_to(model, tables):
    """`kgrec train` early-stops on 10% of the training interactions, then refits on all of them
    (what config.json records); --no-refit keeps the early-stopped model."""
    saved = json.loads((model / "config.json").read_text())
    assert saved["params"]["refit"] is True and 1 <= saved["early_stopping"]["best_epoch"] <= 2
    out = tables["dir"] / "model-no-refit"
    res = kgrec("train", "--out", out, "--interactions", tables["ratings"], "--items", tables["movies"],
                "--item-text", "title,genres", "--user-col", "uid", "--item-col", "movie", "--epochs", "2",
                "--no-refit")
    assert res.returncode == 0, res.stderr[-3000:]
    kept = json.loads((out / "config.json").read_text())
    assert kept["params"]["refit"] is False and len(kept["early_stopping"]["history"]) == 2


def test_help_teaches():
    res = kgrec("--help")
    assert res.returncode == 0
    for cmd in ("quickstart", "train", "evaluate", "recommend", "publish", "explain", "cypher", "cold-start"):
        assert cmd in res.stdout
    res = kgrec("train", "--help")
    assert "--interactions" in res.stdout and "--item-text" in res.stdout


def test_summary_of_a_builtin_data_set(ml100k_dir):
    res = kgrec("summary", "--data", ml100k_dir)
    assert res.returncode == 0, res.stderr
    assert "943" in res.stdout and "1,682" in res.stdout and "100,000" in res.stdout


def test_recommend_explain_evaluate(model, tmp_path):
    out = tmp_path / "recs.csv"
    res = kgrec("recommend", model, "--users", "1,2", "--k", "5", "--out", out)
    assert res.returncode == 0, res.stderr
    recs = pd.read_csv(out, dtype={"user_id": str, "item_id": str})
    assert list(recs.columns) == ["user_id", "item_id", "score", "rank"] and len(recs) == 10
    res = kgrec("explain", model, "1", recs["item_id"].iloc[0])
    assert res.returncode == 0, res.stderr
    assert "similar_users" in res.stdout or "shared_attribute" in res.stdout
    res = kgrec("evaluate", model, columns=80)
    assert res.returncode == 0, res.stderr
    assert_metrics_table(res.stdout)


def test_publish_then_cypher(model, tmp_path):
    store = tmp_path / "kgrec.db"
    res = kgrec("publish", model, "--store", store, "--k", "10", "--explanations", "2")
    assert res.returncode == 0, res.stderr
    out = tmp_path / "q.csv"
    res = kgrec("cypher", "MATCH (u:User)-[r:RECOMMENDED]->(i:Item) WHERE u.id = $u RETURN i.id AS item, r.score AS score "
                "ORDER BY r.score DESC", "--store", store, "-p", "u=1", "--out", out)
    assert res.returncode == 0, res.stderr
    q = pd.read_csv(out)
    assert len(q) == 10 and q["score"].is_monotonic_decreasing
    res = kgrec("cypher", "MATCH (u:User {id: '1'})-[e:EXPLAINS]->(n) RETURN e.item AS item, e.path AS path",
                "--store", store)
    assert res.returncode == 0 and "->" in res.stdout
    # writes are refused by the store itself
    one_line_error(kgrec("cypher", "CREATE (n:User {id: 'x'})", "--store", store), "error:")


def test_cold_start_command(model, tables, tmp_path):
    """New items scored for every user; saved, they carry the text recipe of training (the
    --item-text title,genres given to `kgrec train`, kept in the model directory) without being
    told again; a triple naming an unknown entity is a one-line warning, or with --strict an error."""
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(model, copy)
    out = tmp_path / "cold.csv"
    res = kgrec("cold-start", copy, "--items", tables["new_items"], "--item-col", "movie", "--k", "2",
                "--out", out, "--save")
    assert res.returncode == 0, res.stderr
    recs = pd.read_csv(out, dtype=str)
    assert set(recs["item_id"]) == {"new-1", "new-2"}
    assert recs["user_id"].nunique() == 300
    items = pd.read_parquet(copy / "tables" / "items.parquet").set_index("item_id")
    assert items.loc["new-1", "text"] == "Space Robots (2030). Sci-Fi|Action"
    trip = tmp_path / "trip.csv"
    pd.DataFrame({"head": ["new-3"], "relation": ["HAS_GENRE"], "tail": ["Cyberpunk"]}).to_csv(trip, index=False)
    new = tmp_path / "new.csv"
    pd.DataFrame({"movie": ["new-3"], "title": ["Neon Rain (2032)"], "genres": ["Sci-Fi"]}).to_csv(new, index=False)
    res = kgrec("cold-start", model, "--items", new, "--item-col", "movie", "--triples", trip, "--out", out)
    assert res.returncode == 0, res.stderr
    assert "warning:" in res.stderr and "'Cyberpunk'" in res.stderr and "Traceback" not in res.stderr
    one_line_error(kgrec("cold-start", model, "--items", new, "--item-col", "movie", "--triples", trip, "--out", out,
                         "--strict"), "trip.csv row 2", "Cyberpunk")


@pytest.mark.parametrize("make_args,needles", [
    (lambda d, m: ["train", "--out", d / "x", "--interactions", d / "missing.csv"], ["missing.csv", "file not found"]),
    (lambda d, m: ["train", "--out", d / "x", "--interactions", d / "semicolon.csv"], ["semicolon.csv", "sep"]),
    (lambda d, m: ["train", "--out", d / "x", "--interactions", d / "badrating.csv"], ["badrating.csv row 3", "rating"]),
    (lambda d, m: ["recommend", m, "--users", "nobody"], ["nobody", "add_users"]),
    (lambda d, m: ["recommend", d / "not-a-model", "--users", "1"], ["no such model directory"]),
    (lambda d, m: ["cypher", "MATCH (n) RETURN n", "--store", d / "nope.db"], ["does not exist"]),
    (lambda d, m: ["cold-start", m, "--out", d / "o.csv"], ["nothing to add"]),
    (lambda d, m: ["summary", "--data", d / "empty-dir"], ["no known data set format"]),
    (lambda d, m: ["recommend", m, "--users", ","], ["names no user"]),
    (lambda d, m: ["train", "--out", d / "x", "--interactions", d / "ok.csv", "--test", "0", "--epochs", "0"],
     ["epochs must be positive"]),
])
def test_bad_input_is_one_line_and_exit_2(model, tmp_path, make_args, needles):
    (tmp_path / "semicolon.csv").write_text("user_id;item_id\n1;2\n")
    (tmp_path / "badrating.csv").write_text("user_id,item_id,rating\n1,2,5\n1,3,five\n")
    (tmp_path / "empty-dir").mkdir()
    (tmp_path / "ok.csv").write_text("user_id,item_id\n" + "".join(f"u{u},i{(u * 7 + j) % 30}\n" for u in range(20)
                                                                   for j in range(5)))
    one_line_error(kgrec(*make_args(tmp_path, model)), *needles)


def test_usage_error_exits_2():
    res = kgrec("recommend")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr


def test_help_shows_text_as_written_and_version():
    res = kgrec("train", "--help", columns=80)
    assert res.returncode == 0
    assert "[rating," in res.stdout and "timestamp]" in res.stdout  # not eaten as markup
    res = kgrec("--version")
    assert res.returncode == 0 and re.fullmatch(r"kgrec \d+\.\d+\.\d+\s*", res.stdout), res.stdout


def test_cypher_types_parameters_and_runs_packaged_queries(model, tmp_path):
    store = tmp_path / "kgrec.db"
    assert kgrec("publish", model, "--store", store, "--k", "10", "--explanations", "1").returncode == 0
    out = tmp_path / "recs.csv"
    assert kgrec("recommend", model, "--users", "1", "--k", "1", "--out", out).returncode == 0
    item = str(pd.read_csv(out, dtype=str)["item_id"].iloc[0])
    # a packaged query whose LIMIT takes a parameter: the count becomes an integer by itself
    res = kgrec("cypher", "--query", "why_similar_users", "-p", "user=1", "-p", f"item={item}", "-p", "limit=3",
                "--store", store, "--out", tmp_path / "similar.csv")
    assert res.returncode == 0, res.stderr
    similar = pd.read_csv(tmp_path / "similar.csv", dtype={"user_id": str})
    assert 1 <= len(similar) <= 3 and list(similar.columns) == ["user_id", "shared_items"]
    # a report by name, with its integer parameter given as text
    res = kgrec("cypher", "--query", "why_recommended", "-p", "user=1", "-p", f"item={item}", "-p", "limit=5",
                "--store", store, "--out", tmp_path / "why.csv")
    assert res.returncode == 0, res.stderr
    assert len(pd.read_csv(tmp_path / "why.csv")) >= 1
    # explicit types: an id kept a string, a count typed by hand
    res = kgrec("cypher", "MATCH (u:User)-[r:RECOMMENDED]->(i:Item) WHERE u.id = $u RETURN i.id AS item "
                "ORDER BY r.score DESC LIMIT $n", "-p", "u:str=1", "-p", "n:int=4", "--store", store,
                "--out", tmp_path / "typed.csv")
    assert res.returncode == 0, res.stderr
    assert len(pd.read_csv(tmp_path / "typed.csv")) == 4
    one_line_error(kgrec("cypher", "--query", "no_such_query", "--store", store), "why_recommended")
    one_line_error(kgrec("cypher", "--query", "why_similar_users", "-p", "user=1", "--store", store), "-p name=value")
    one_line_error(kgrec("cypher", "MATCH (n) RETURN n LIMIT $n", "-p", "n:int=many", "--store", store), "not of type int")
    one_line_error(kgrec("cypher", "--store", store), "--query")


def test_quickstart_prints_commands_that_run_when_pasted(ml100k_dir, tmp_path):
    """At 80 columns the commands quickstart prints are whole lines (no markup eaten, no wrap);
    each one, pasted, runs: Cypher on the store, a packaged query, explain, and evaluate with no
    test set (the quickstart remembers its hold-out). Early stopping's refit is said in a line,
    and no third-party progress bar leaks out."""
    res = kgrec("quickstart", "--data", ml100k_dir, "--epochs", "1", "--k", "5", cwd=tmp_path, columns=80)
    assert res.returncode == 0, res.stderr[-3000:]
    pasted = [line.strip() for line in res.stdout.splitlines() if line.startswith("  kgrec ")]
    assert len(pasted) == 5, res.stdout
    assert any("[r:RECOMMENDED]" in p for p in pasted) and any("[e:EXPLAINS]" in p for p in pasted)
    assert "Training again on all of train" in res.stderr
    assert "publishing the graph" in res.stdout  # the long publish says what it does
    assert "Loading weights" not in res.stderr and "FutureWarning" not in res.stderr
    import shlex

    for line in pasted:
        args = shlex.split(line)
        assert args[0] == "kgrec"
        run = kgrec(*args[1:], cwd=tmp_path, columns=80)
        assert run.returncode == 0, (line, run.stderr[-2000:])
        assert len(run.stdout.strip().splitlines()) > 3, (line, run.stdout)


def test_latin1_tables_load_with_encoding(tmp_path):
    """A latin-1 table: without --encoding a one-line error that names the option, with it loads."""
    (tmp_path / "r.csv").write_bytes("user_id,item_id,rating\n1,Amélie,5\n2,Amélie,4\n2,Léon,3\n".encode("latin-1"))
    one_line_error(kgrec("summary", "--interactions", tmp_path / "r.csv"), "r.csv", "--encoding latin-1")
    res = kgrec("summary", "--interactions", tmp_path / "r.csv", "--encoding", "latin-1")
    assert res.returncode == 0, res.stderr
    assert "interactions" in res.stdout and "3" in res.stdout


def test_cli_reference_page_is_written_from_the_commands():
    """docs/cli.md is what `python -m kgrec.cli_reference` writes from the commands (regenerate it
    after changing a command), it names every command and every --query report."""
    from kgrec import inspection
    from kgrec.cli_reference import PAGE, render

    page = render()
    assert PAGE.read_text(encoding="utf-8") == page, "docs/cli.md is stale: run python -m kgrec.cli_reference"
    for cmd in ("quickstart", "train", "evaluate", "recommend", "publish", "explain", "cypher", "cold-start",
                "summary"):
        assert f"## kgrec {cmd}" in page
    for report in inspection.REPORTS:
        assert report in page.split("## kgrec cypher")[1], report
