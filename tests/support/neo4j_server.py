"""A private Neo4j 5 server for tests that stop, kill and restart it.

The server is the embedded Neo4j launcher in ``tests/support/neo4j-server`` (Maven Central jars),
run through ``scripts/neo4j-test-server.sh run`` so that the JVM options live in one place.
Bolt listens on 127.0.0.1 with auth off; the store lives in ``data_dir`` and survives
``stop()`` / ``kill()``, so ``start()`` again sees the committed data::

    from support.neo4j_server import Neo4jTestServer

    with Neo4jTestServer(data_dir=tmp_path / "neo4j") as server:   # start()s, stop()s on exit
        driver = neo4j.GraphDatabase.driver(server.uri, auth=None)
        ...
        server.kill()       # SIGKILL in the middle of a write
        server.start()      # same port, same store: Neo4j recovers the committed transactions

The server also shuts itself down when the Python process that started it dies (its
standard input closes), so a crashed test run leaves no stray JVM behind.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]  # tests/support/neo4j_server.py
SCRIPT = REPO_ROOT / "scripts" / "neo4j-test-server.sh"
PROJECT_DIR = Path(__file__).resolve().parent / "neo4j-server"  # the Maven project the script builds
DEFAULT_RUN_DIR = PROJECT_DIR / "target" / "run"  # the script's run dir unless KGREC_NEO4J_RUN_DIR is set
BUILD_TIMEOUT_S = 900  # first build downloads ~120 MB of jars from Maven Central


class Neo4jServerError(RuntimeError):
    """The test server could not be built, started or stopped; the message has its log tail."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def java_available() -> bool:
    """True when ``java`` is on PATH (``mvn`` is needed too, unless the launcher is built)."""
    return shutil.which("java") is not None


def build(timeout: float = BUILD_TIMEOUT_S) -> None:
    """Build the launcher with Maven unless it is built and up to date."""
    try:
        done = subprocess.run(
            ["bash", str(SCRIPT), "build"],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise Neo4jServerError(f"building the Neo4j test server took over {timeout:.0f} s") from exc
    if done.returncode != 0:
        raise Neo4jServerError(
            f"building the Neo4j test server failed ({SCRIPT} build, exit {done.returncode}):\n"
            + (done.stdout + done.stderr)[-4000:]
        )


def clear_database(driver) -> None:
    """Delete every node and relationship, then every constraint and index (except the built-in
    token lookup indexes), so that a test starts from an empty database."""
    with driver.session() as session:
        session.run("MATCH (n) CALL (n) { DETACH DELETE n } IN TRANSACTIONS OF 10000 ROWS").consume()
        for record in session.run("SHOW CONSTRAINTS YIELD name RETURN name").data():
            session.run(f"DROP CONSTRAINT `{record['name']}` IF EXISTS").consume()
        for record in session.run("SHOW INDEXES YIELD name, type WHERE type <> 'LOOKUP' RETURN name").data():
            session.run(f"DROP INDEX `{record['name']}` IF EXISTS").consume()


class Neo4jTestServer:
    """One Neo4j 5 DBMS in its own JVM, on a fixed port and a store directory that persists.

    ``port=None`` picks a free port once; ``data_dir=None`` makes a temp directory that
    ``close()`` removes. ``start()`` blocks until Bolt answers (``READY`` from the launcher).
    """

    def __init__(self, port: int | None = None, data_dir: str | os.PathLike | None = None,
                 *, start_timeout: float = 180.0, page_cache_mb: int = 64) -> None:
        self.port = port if port is not None else free_port()
        self._owns_data = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="kgrec-neo4j-"))
        self.start_timeout = start_timeout
        self.page_cache_mb = page_cache_mb
        self.log_path = self.data_dir.parent / f"{self.data_dir.name}.server.log"
        self._proc: subprocess.Popen[str] | None = None
        self._ready = threading.Event()
        self._stdout: collections.deque[str] = collections.deque(maxlen=200)

    # -- the public API ------------------------------------------------------------------------

    @property
    def uri(self) -> str:
        """``bolt://127.0.0.1:PORT`` (valid across restarts: the port stays the same)."""
        return f"bolt://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The JVM's process id while it runs, else None."""
        return self._proc.pid if self.is_running() else None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> "Neo4jTestServer":
        """Start the server (building it first if needed) and wait until Bolt is ready."""
        if self.is_running():
            raise Neo4jServerError(f"Neo4j test server already running (pid {self._proc.pid}, {self.uri})")
        build()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._ready.clear()
        self._stdout.clear()
        log = open(self.log_path, "a", encoding="utf-8")
        log.write(f"--- start on port {self.port} at {time.strftime('%H:%M:%S')}\n")
        log.flush()
        try:
            self._proc = subprocess.Popen(
                ["bash", str(SCRIPT), "run", str(self.port), str(self.data_dir),
                 "--page-cache-mb", str(self.page_cache_mb), "--exit-on-stdin-eof"],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1,
            )
        finally:
            log.close()
        threading.Thread(target=self._read_stdout, args=(self._proc,), daemon=True).start()
        deadline = time.monotonic() + self.start_timeout
        while not self._ready.wait(0.2):
            if self._proc.poll() is not None:
                raise Neo4jServerError(
                    f"Neo4j test server exited with {self._proc.returncode} before it was ready\n"
                    + self.log_tail())
            if time.monotonic() > deadline:
                self.kill()
                raise Neo4jServerError(
                    f"Neo4j test server not ready after {self.start_timeout:.0f} s\n" + self.log_tail())
        return self

    def stop(self, timeout: float = 60.0) -> int:
        """SIGTERM (clean shutdown with a checkpoint) and wait; returns the exit status."""
        return self._signal(signal.SIGTERM, timeout)

    def kill(self, timeout: float = 30.0) -> int:
        """SIGKILL: no shutdown at all, as in a crash; the next start() runs recovery."""
        return self._signal(signal.SIGKILL, timeout)

    def restart(self) -> "Neo4jTestServer":
        """stop() then start() on the same port and store."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop if running and remove the data directory if this object made it."""
        if self.is_running():
            self.stop()
        if self._owns_data:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self.log_path.unlink(missing_ok=True)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's stderr log and stdout, for error messages."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        except OSError:
            text = []
        return "\n".join([f"--- {self.log_path} (tail)", *text, "--- stdout", *self._stdout])

    def __enter__(self) -> "Neo4jTestServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid {self._proc.pid}" if self.is_running() else "stopped"
        return f"Neo4jTestServer({self.uri}, {self.data_dir}, {state})"

    # -- internals -----------------------------------------------------------------------------

    def _read_stdout(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip("\n")
            self._stdout.append(line)
            if line.startswith("READY "):
                self._ready.set()

    def _signal(self, sig: signal.Signals, timeout: float) -> int:
        proc = self._proc
        if proc is None:
            raise Neo4jServerError("Neo4j test server was never started")
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
                raise Neo4jServerError(
                    f"Neo4j test server ignored {sig.name} for {timeout:.0f} s; killed\n" + self.log_tail())
        if proc.stdin is not None:
            proc.stdin.close()
        return proc.returncode
