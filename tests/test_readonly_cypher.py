"""Read-only inspection is really read-only (docs/security.md, "Read-only inspection"):
``store.query`` on the embedded store (opened for writing and ``read_only=True``) and on Neo4j
refuses every statement that would read a file, write one, install or load an extension, attach
or export a database, change a setting or call a procedure outside the allow-list, however it is
spelt (case, comments, whitespace, unicode look-alikes, several statements, parameters); the
refused statement leaves no file behind and the graph as it was; reads and the packaged reports
still work; ``kgrec cypher`` refuses with one line and exit code 2."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd
import pytest

import kgrec
from kgrec import inspection
from kgrec.errors import ReadOnlyQueryError
from kgrec.store.cypher_guard import check_read_only, ladybug_plan_refusal, masked
from kgrec.store.ladybug_files import ladybug_module
from kgrec.store.neo4j_store import credentials
from support.neo4j_server import clear_database

STORES = ["embedded", "embedded_read_only", pytest.param("neo4j", marks=pytest.mark.neo4j)]
SECRET = "root:x:0:0:secret-root-line\nbob:x:1000:1000:secret-bob-line\n"
PRECIOUS = "precious,contents\n1,2\n"


def tiny_graph() -> kgrec.KnowledgeGraph:
    inter = pd.DataFrame({"user_id": ["1", "1", "2", "3"], "item_id": ["a", "b", "b", "c"]})
    items = pd.DataFrame({"item_id": ["a", "b", "c"], "title": ["Alpha", "Beta", "Gamma"],
                          "genres": ["Drama", "Drama|Comedy", "Comedy"]})
    return kgrec.from_tables(interactions=inter, items=items, item_text=("title", "genres"))


RECS = pd.DataFrame({"user_id": ["1", "2", "3"], "item_id": ["c", "a", "a"], "score": [0.9, 0.8, 0.7],
                     "rank": [1, 1, 1]})


@pytest.fixture(params=STORES)
def store(request, tmp_path: Path):
    """A store holding the tiny graph and one model's recommendations, opened as inspection opens it."""
    kind = request.param
    if kind == "neo4j":
        uri = request.getfixturevalue("neo4j_uri")
        clear_database(request.getfixturevalue("neo4j_driver"))
    else:
        uri = str(tmp_path / "kgrec.db")
    with kgrec.open_store(uri) as writer:
        writer.write_graph(tiny_graph())
        writer.write_recommendations(RECS, "m")
        if kind == "embedded":
            yield writer
            return
    with kgrec.open_store(uri, read_only=True) as reader:
        yield reader


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    """A secret file to read, a precious file not to overwrite, paths that must stay absent."""
    d = tmp_path / "files"
    d.mkdir()
    (d / "secret.csv").write_text(SECRET)
    (d / "precious.csv").write_text(PRECIOUS)
    return {"secret": d / "secret.csv", "precious": d / "precious.csv", "new": d / "new.csv",
            "export": d / "export", "other": d / "other.db", "dir": d}


def dialect(store) -> str:
    return "neo4j" if store.uri.startswith("bolt") else "ladybug"


def refused(store, cypher: str, **params) -> ReadOnlyQueryError:
    """Run ``cypher``; it must raise ReadOnlyQueryError naming the store, and change nothing."""
    before = store.counts()
    with pytest.raises(ReadOnlyQueryError) as info:
        store.query(cypher, **params)
    assert store.uri in str(info.value) and "Fix:" in str(info.value), str(info.value)
    assert store.counts() == before
    return info.value


def assert_untouched(files: dict[str, Path]) -> None:
    assert files["precious"].read_text() == PRECIOUS
    assert files["secret"].read_text() == SECRET
    assert sorted(p.name for p in files["dir"].iterdir()) == ["precious.csv", "secret.csv"]


# ------------------------------------------------------------------ each escape
def file_reads(store, files) -> list[str]:
    s = files["secret"]
    if dialect(store) == "neo4j":
        return [f"LOAD CSV FROM 'file://{s}' AS row RETURN row", f"LOAD CSV FROM 'file:///{s.name}' AS row RETURN row",
                f"LOAD CSV WITH HEADERS FROM 'file://{s}' AS row FIELDTERMINATOR ':' RETURN row",
                "LOAD CSV FROM 'http://127.0.0.1:9/x.csv' AS row RETURN row"]
    return [f"LOAD FROM '{s}' (file_format='csv', delim=':', header=false) RETURN *", f"LOAD FROM '{s}' RETURN *",
            f"CALL read_csv('{s}') RETURN *", f"LOAD WITH HEADERS (a STRING) FROM '{s}' RETURN *"]


@pytest.mark.parametrize("which", range(4))
def test_reading_a_file_is_refused(store, files, which) -> None:
    err = refused(store, file_reads(store, files)[which])
    assert "secret" not in str(err)
    assert_untouched(files)


@pytest.mark.parametrize("target", ["precious", "new"])
def test_copy_to_a_file_is_refused_and_writes_nothing(store, files, target) -> None:
    """ladybug's COPY ... TO (over an existing file, to a new one); refused by Neo4j's guard too."""
    err = refused(store, f"COPY (MATCH (u:User) RETURN u.id) TO '{files[target]}'")
    assert "COPY" in str(err)
    assert_untouched(files)


ESCAPES = {
    "install": "INSTALL json",
    "load extension": "LOAD EXTENSION json",
    "load short": "LOAD json",
    "uninstall": "UNINSTALL json",
    "attach": "ATTACH '{other}' AS o (dbtype lbug)",
    "detach": "DETACH o",
    "use": "USE o",
    "export": "EXPORT DATABASE '{export}'",
    "import": "IMPORT DATABASE '{export}'",
    "setting": "CALL threads=1",
    "home directory": "CALL home_directory='{dir}'",
    "search path": "CALL file_search_path='{dir}'",
    "checkpoint": "CHECKPOINT",
    "macro": "CREATE MACRO m(x) AS x + 1",
    "transaction": "BEGIN TRANSACTION",
    "create": "CREATE (n:User {{id: 'x'}})",
    "set": "MATCH (u:User) SET u.name = 'x'",
    "delete": "MATCH (u:User) DETACH DELETE u",
    "merge": "MERGE (n:User {{id: '1'}})",
    "remove": "MATCH (u:User) REMOVE u.name",
    "foreach": "MATCH (u:User) FOREACH (x IN [1] | SET u.name = 'x')",
    "drop": "DROP TABLE User",
    "alter": "ALTER TABLE User ADD x INT64",
    "terminate": "TERMINATE TRANSACTIONS 'neo4j-transaction-1'",
    "show": "SHOW PROCEDURES YIELD name RETURN name",
    "use system": "USE system SHOW USERS",
    "procedure": "CALL dbms.components()",
    "write procedure": "CALL db.clearQueryCaches()",
    "apoc": "CALL apoc.cypher.run('MATCH (n) RETURN n', {{}})",
    "function list": "CALL show_functions() RETURN * ; CALL threads=1",
    "projected graph": "CALL project_graph('g', ['User'], ['INTERACTED'])",
}

# bypass attempts: spellings of the escapes above and of COPY ... TO / LOAD FROM
BYPASSES = {
    "lower case": "copy (match (u:User) return u.id) to '{new}'",
    "mixed case": "CoPy (MATCH (u:User) RETURN u.id) tO '{new}'",
    "block comment between keywords": "COPY/* c */(MATCH (u:User) RETURN u.id)/**/TO '{new}'",
    "line comment before": "// just a read\nCOPY (MATCH (u:User) RETURN u.id) TO '{new}'",
    "comment opener inside a string": "RETURN '//' AS x; COPY (MATCH (u:User) RETURN u.id) TO '{new}'",
    "block opener inside a string": "RETURN '/*' AS x COPY (MATCH (u:User) RETURN u.id) TO '{new}' //*/",
    "escaped quote": "RETURN 'it\\'s' AS x; COPY (MATCH (u:User) RETURN u.id) TO '{new}'",
    "whitespace and newlines": "\n\t  COPY\n\n(MATCH (u:User)\tRETURN u.id)\r\nTO\n'{new}'  \n",
    "no-break spaces": "COPY\u00a0(MATCH (u:User) RETURN u.id)\u2003TO '{new}'",
    "full-width letters": "\uff23\uff2f\uff30\uff39 (MATCH (u:User) RETURN u.id) TO '{new}'",
    "zero-width space": "CO\u200bPY (MATCH (u:User) RETURN u.id) TO '{new}'",
    "full-width load": "\uff2c\uff2f\uff21\uff24 FROM '{secret}' RETURN *",
    "two statements": "MATCH (u:User) RETURN count(u); COPY (MATCH (u:User) RETURN u.id) TO '{new}'",
    "empty statements between": "RETURN 1;;; LOAD FROM '{secret}' RETURN *",
    "trailing statement after comment": "MATCH (u:User) RETURN u.id /* ; */ ; INSTALL json",
    "subquery": "CALL {{ LOAD FROM '{secret}' RETURN * }} RETURN 1",
    "profile": "PROFILE COPY (MATCH (u:User) RETURN u.id) TO '{new}'",
    "explain": "EXPLAIN LOAD FROM '{secret}' RETURN *",
    "backticked procedure": "CALL `threads`=1",
    "spaced procedure name": "CALL dbms . components()",
    "unterminated comment": "MATCH (u:User) RETURN u.id /* COPY",
    "unterminated string": "MATCH (u:User) RETURN 'x AS y",
}


@pytest.mark.parametrize("name", sorted(ESCAPES) + sorted(BYPASSES))
def test_escapes_and_bypass_attempts_are_refused(store, files, name) -> None:
    """Extensions, databases, settings, writes, procedures, and every bypass spelling."""
    paths = {key: files[key] for key in ("other", "export", "dir", "new", "secret")}
    refused(store, {**ESCAPES, **BYPASSES}[name].format(**paths))
    assert_untouched(files)


def test_queries_passed_as_parameters_stay_data(store, files) -> None:
    copy = f"COPY (MATCH (u:User) RETURN u.id) TO '{files['new']}'"
    out = store.query("RETURN $q AS q", q=copy)
    assert out["q"].tolist() == [copy]
    out = store.query("MATCH (u:User) WHERE u.id = $q RETURN u.id AS id", q=f"1' }}) ; {copy} //")
    assert out.empty
    refused(store, "COPY (MATCH (u:User) RETURN u.id) TO $path", path=str(files["new"]))
    if dialect(store) == "neo4j":
        refused(store, "LOAD CSV FROM $url AS row RETURN row", url=f"file://{files['secret']}")
        refused(store, "CALL apoc.cypher.run($q, {})", q=copy)
    else:
        refused(store, "LOAD FROM $path RETURN *", path=str(files["secret"]))
        refused(store, "LOAD FROM $df RETURN *", df=pd.DataFrame({"a": [1]}))
    assert_untouched(files)


# ------------------------------------------------------------------ what still works
def test_reads_and_allowed_calls_still_work(store) -> None:
    out = store.query("MATCH (u:User)-[r:RECOMMENDED]->(i:Item) WHERE u.id = $u RETURN i.id AS item, r.score AS score",
                      u="1")
    assert out.to_dict("records") == [{"item": "c", "score": pytest.approx(0.9)}]
    out = store.query("// count them\nMATCH (u:User) /* all */ WHERE u.id STARTS WITH '1' "
                      "RETURN u.id AS `copy`, 'COPY; LOAD' AS text ORDER BY `copy`")
    assert out.to_dict("records") == [{"copy": "1", "text": "COPY; LOAD"}]
    assert store.query("MATCH (u:User) RETURN count(u) AS n;")["n"].tolist() == [3]
    if dialect(store) == "neo4j":
        labels = store.query("CALL db.labels() YIELD label RETURN label ORDER BY label")["label"].tolist()
        assert {"User", "Item", "Entity"} <= set(labels)
    else:
        tables = store.query("CALL show_tables() RETURN name ORDER BY name")["name"].tolist()
        assert {"User", "Item", "Entity", "RECOMMENDED"} <= set(tables)
        assert "id" in store.query("CALL table_info('User') RETURN *")["name"].tolist()


def test_packaged_reports_still_work(store) -> None:
    recs = inspection.user_recommendations(store, "1", model="m", k=5)
    assert recs[["item_id", "rank"]].to_dict("records") == [{"item_id": "c", "rank": 1}]
    top = inspection.top_recommended(store, "m", limit=5)
    assert top.iloc[0]["item_id"] == "a"
    for name in inspection.QUERY_NAMES:
        check_read_only(inspection.load_query(name), dialect(store), name)


# ------------------------------------------------------------------ the guard's layers on their own
def test_masking_keeps_the_engines_token_boundaries() -> None:
    assert masked("RETURN 'a\\'b // c' AS `x``y` // COPY\n/* LOAD */ 1") == "RETURN  0  AS  _q  _q   \n  1"
    with pytest.raises(ReadOnlyQueryError, match="unterminated"):
        masked("RETURN \"abc")


def test_property_keys_and_parameters_named_like_keywords_are_names() -> None:
    check_read_only("MATCH (n:User) WHERE n.set = $load RETURN n.copy, date.truncate('day', $d)", "neo4j")
    with pytest.raises(ReadOnlyQueryError, match="the COPY clause"):
        check_read_only("MATCH (n:User) RETURN n.id AS copy", "neo4j")


PLAN_CASES = {  # statement -> what the plan check must say (None: a read)
    "LOAD FROM '{secret}' (file_format='csv', delim=':', header=false) RETURN *": "READ_CSV",
    "COPY (MATCH (u:User) RETURN u.id) TO '{new}'": "COPY_TO",
    "INSTALL json": "INSTALL_EXTENSION",
    "CALL threads=1": "STANDALONE_CALL",
    "CALL home_directory='{dir}'": "STANDALONE_CALL",
    "MATCH (u:User)-[:INTERACTED]->(i:Item) RETURN u.id, count(i) ORDER BY u.id LIMIT 2": None,
    "CALL show_tables() RETURN *": None,
    "CALL table_info('User') RETURN *": None,
    "UNWIND [1, 2] AS x RETURN x": None,
}


@pytest.mark.parametrize("statement", list(PLAN_CASES))
def test_ladybug_plan_check_reads_the_engines_plan(tmp_path, files, statement) -> None:
    """The second layer alone, on plans ladybug itself gives (``EXPLAIN``, which runs nothing)."""
    path = tmp_path / "kgrec.db"
    with kgrec.open_store(path) as st:
        st.write_graph(tiny_graph())
    lb = ladybug_module()
    db = lb.Database(str(path), read_only=True)
    conn = lb.Connection(db)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            text = statement.format(secret=files["secret"], new=files["new"], dir=files["dir"])
            plan = conn.execute("EXPLAIN " + text).get_next()[0]
    finally:
        conn.close()
        db.close()
    verdict = ladybug_plan_refusal(plan)
    expected = PLAN_CASES[statement]
    assert (verdict is None) if expected is None else (expected in verdict), (verdict, plan)
    assert_untouched(files)


# ------------------------------------------------------------------ Neo4j: server settings and credentials
def test_neo4j_test_server_refuses_file_urls_itself(neo4j_driver, files) -> None:
    """Configured as docs/security.md asks: even a client without kgrec's guard cannot read files."""
    import neo4j

    with neo4j_driver.session(default_access_mode=neo4j.READ_ACCESS) as session:
        with pytest.raises(neo4j.exceptions.ClientError) as info:
            session.run(f"LOAD CSV FROM 'file://{files['secret']}' AS row RETURN row").data()
    assert "allow_csv_import_from_file_urls" in info.value.message
    assert "secret" not in info.value.message.replace(str(files["secret"]), "")


def test_read_only_opens_use_the_inspection_credentials() -> None:
    env = {"NEO4J_USER": "admin", "NEO4J_PASSWORD": "a", "NEO4J_READ_USER": "inspector", "NEO4J_READ_PASSWORD": "r"}
    assert credentials(None, None, True, env) == ("inspector", "r")
    assert credentials(None, None, False, env) == ("admin", "a")
    assert credentials("me", "p", True, env) == ("me", "p")
    assert credentials(None, None, True, {"NEO4J_USER": "admin"}) == ("admin", None)
    assert credentials(None, None, True, {}) == (None, None)


def test_read_only_neo4j_store_logs_in_as_the_read_user(neo4j_uri, monkeypatch) -> None:
    monkeypatch.setenv("NEO4J_READ_USER", "inspector")
    monkeypatch.setenv("NEO4J_READ_PASSWORD", "secret")
    with kgrec.open_store(neo4j_uri, read_only=True) as st:
        assert st.user == "inspector"
    with kgrec.open_store(neo4j_uri) as st:
        assert st.user != "inspector"


# ------------------------------------------------------------------ the CLI
def test_cli_cypher_refuses_with_exit_code_2(tmp_path, files) -> None:
    path = tmp_path / "kgrec.db"
    with kgrec.open_store(path) as st:
        st.write_graph(tiny_graph())
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "COLUMNS": "200"}
    for query in (f"COPY (MATCH (u:User) RETURN u.id) TO '{files['precious']}'",
                  f"load from '{files['secret']}' return *", "INSTALL json"):
        res = subprocess.run([sys.executable, "-m", "kgrec", "cypher", query, "--store", str(path)],
                             capture_output=True, text=True, env=env, timeout=300)
        assert res.returncode == 2, (res.stdout, res.stderr)
        lines = [line for line in res.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and "read-only" in lines[0] and "Traceback" not in res.stderr, res.stderr
        assert "secret-root-line" not in res.stdout + res.stderr
    assert_untouched(files)
