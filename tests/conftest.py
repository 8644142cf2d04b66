"""Shared fixtures: real data from KGREC_DATA_DIR (default ../shared/data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from kgrec.settings import data_dir


@pytest.fixture(scope="session")
def data_root() -> Path:
    root = data_dir()
    if not (root / "ml-100k" / "u.data").exists():
        pytest.fail(f"benchmark data not found under {root}; set KGREC_DATA_DIR to the folder holding ml-100k/")
    return root


@pytest.fixture(scope="session")
def ml100k_dir(data_root: Path) -> Path:
    return data_root / "ml-100k"


# --- Neo4j ----------------------------------------------------------------------------------
# A real Neo4j 5.26 server (tests/support/neo4j-server, started by .ci/run or by
# scripts/neo4j-test-server.sh start). In CI a missing server fails the tests, never skips them.

import os  # noqa: E402  (kept beside the fixtures that use it)

from support.neo4j_server import (DEFAULT_RUN_DIR, Neo4jServerError, Neo4jTestServer,  # noqa: E402
                                  clear_database, java_available)

NEO4J_SKIP_REASON = (
    "no Neo4j server configured: set KGREC_NEO4J_URI or run scripts/neo4j-test-server.sh start"
)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _script_server_uri() -> str | None:
    """The URI of a server that ``scripts/neo4j-test-server.sh start`` left running, if any."""
    run_dir = Path(os.environ.get("KGREC_NEO4J_RUN_DIR") or DEFAULT_RUN_DIR)
    try:
        pid = int((run_dir / "neo4j.pid").read_text().strip())
        uri = (run_dir / "neo4j.uri").read_text().strip()
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return uri or None


@pytest.fixture(scope="session")
def neo4j_uri() -> str:
    """Bolt URI of the shared Neo4j test server: $KGREC_NEO4J_URI, else one started by the script.

    Unset: fails when $CI is set, skips otherwise (with the reason how to get one).
    """
    uri = os.environ.get("KGREC_NEO4J_URI") or _script_server_uri()
    if uri:
        return uri
    if _in_ci():
        pytest.fail("KGREC_NEO4J_URI is not set in CI: .ci/run must start the Neo4j test server "
                    "(scripts/neo4j-test-server.sh start) and export its bolt:// URI", pytrace=False)
    pytest.skip(NEO4J_SKIP_REASON)


@pytest.fixture(scope="session")
def neo4j_driver(neo4j_uri: str):
    """An official ``neo4j`` driver connected to the shared test server (auth off)."""
    import neo4j

    driver = neo4j.GraphDatabase.driver(neo4j_uri, auth=None, connection_timeout=15)
    try:
        driver.verify_connectivity()
    except Exception as exc:  # the URI is set but nothing answers there: a setup error, never a skip
        driver.close()
        pytest.fail(f"Neo4j test server at {neo4j_uri} does not answer ({type(exc).__name__}: {exc}); "
                    "start it with scripts/neo4j-test-server.sh start or fix KGREC_NEO4J_URI", pytrace=False)
    yield driver
    driver.close()


@pytest.fixture
def clean_neo4j(neo4j_driver, neo4j_uri: str) -> str:
    """An empty shared Neo4j database (no nodes, relationships, constraints or indexes); returns its URI."""
    clear_database(neo4j_driver)
    return neo4j_uri


@pytest.fixture
def neo4j_private_server(tmp_path: Path):
    """A Neo4j server of this test's own (``Neo4jTestServer``, started, store in tmp_path) that the
    test may stop(), kill() and start() again. Needs Java (and Maven for the first build): skips
    without Java outside CI, fails in CI. Takes 10-20 s per start on 2 cores."""
    if not java_available():
        if _in_ci():
            pytest.fail("java not found: the Neo4j test server needs a JDK 17+", pytrace=False)
        pytest.skip("java not found: the private Neo4j test server needs a JDK 17+ and Maven")
    server = Neo4jTestServer(data_dir=tmp_path / "neo4j")
    try:
        server.start()
    except Neo4jServerError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.close()


NEO4J_FIXTURES = {"neo4j_uri", "neo4j_driver", "clean_neo4j", "neo4j_private_server"}
_neo4j_outcomes: dict[str, int] = {}


def pytest_collection_modifyitems(config, items) -> None:
    """Mark every test that uses a Neo4j fixture with ``neo4j`` (so ``-m neo4j`` selects them all)."""
    for item in items:
        if NEO4J_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.neo4j)


def pytest_runtest_logreport(report) -> None:
    if "neo4j" not in report.keywords:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        outcome = "errors" if report.when == "setup" and report.failed else report.outcome
        _neo4j_outcomes[outcome] = _neo4j_outcomes.get(outcome, 0) + 1


def pytest_terminal_summary(terminalreporter) -> None:
    """One line that says the Neo4j tests ran, and where (CI logs are read for it)."""
    if not _neo4j_outcomes:
        return
    where = os.environ.get("KGREC_NEO4J_URI") or _script_server_uri() or "none configured"
    counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(_neo4j_outcomes.items()))
    terminalreporter.write_line(f"Neo4j tests: {counts} (shared server: {where})")
