#!/usr/bin/env bash
# Neo4j 5.26 test server for kgrec: an embedded Neo4j (Community) with Bolt on 127.0.0.1,
# auth off, built from Maven Central jars by tests/support/neo4j-server (a pom and one Java class).
#
# usage: scripts/neo4j-test-server.sh start  [PORT] [DATA_DIR]   start in the background, wait for READY
#        scripts/neo4j-test-server.sh stop                        stop the server started by 'start' (by PID)
#        scripts/neo4j-test-server.sh status                      running or not, and its URI
#        scripts/neo4j-test-server.sh build                       build the launcher (if not built yet)
#        scripts/neo4j-test-server.sh run    PORT [DATA_DIR] [--exit-on-stdin-eof] ...
#                                                                 run in the foreground (exec java)
#
# PORT defaults to 7687; 0 picks a free port (the READY line and 'status' name it).
# DATA_DIR holds the store and is kept; without it a temp dir is used and deleted on stop.
# After 'start':  export KGREC_NEO4J_URI=bolt://127.0.0.1:PORT   (the tests also find a server
# started this way on their own, through the URI file in the run dir).
#
# Environment:
#   KGREC_NEO4J_RUN_DIR        pid file, log and URI file (default tests/support/neo4j-server/target/run)
#   KGREC_NEO4J_START_TIMEOUT  seconds to wait for READY (default 120)
#   KGREC_NEO4J_JAVA_OPTS      JVM options (default: 1 GiB heap, quick-start JIT)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PROJECT="$ROOT/tests/support/neo4j-server"
TARGET="$PROJECT/target"
RUN_DIR="${KGREC_NEO4J_RUN_DIR:-$TARGET/run}"
PID_FILE="$RUN_DIR/neo4j.pid"
LOG_FILE="$RUN_DIR/neo4j.log"
URI_FILE="$RUN_DIR/neo4j.uri"
START_TIMEOUT="${KGREC_NEO4J_START_TIMEOUT:-120}"
# C1-only JIT and the serial GC: starts in about half the time on 2 cores; the test load is small.
JAVA_OPTS="${KGREC_NEO4J_JAVA_OPTS:--Xms256m -Xmx1g -XX:+UseSerialGC -XX:TieredStopAtLevel=1}"
MAIN_CLASS="kgrec.testserver.Neo4jTestServer"

say() { echo "[neo4j-test-server] $*" >&2; }
die() { say "error: $*"; exit 1; }

is_built() {
    local stamp="$TARGET/.built"
    [[ -f "$stamp" && -d "$TARGET/lib" ]] || return 1
    # rebuild when the pom or the launcher source changed since the last build
    [[ -z "$(find "$PROJECT/pom.xml" "$PROJECT/src" -newer "$stamp" -print -quit)" ]]
}

build() {
    command -v java >/dev/null || die "java not found: install a JDK 17 or newer"
    is_built && return 0
    command -v mvn >/dev/null || die "mvn not found: install Maven 3.8+ (it fetches Neo4j from Maven Central)"
    mkdir -p "$TARGET"
    # one build at a time (pytest and a developer may both ask)
    exec 9>"$TARGET/.build.lock"
    flock 9
    if ! is_built; then
        say "building tests/support/neo4j-server (Neo4j jars from Maven Central)"
        local started=$SECONDS
        rm -rf "$TARGET/lib"
        # (Debian's Maven prints ANSI resets even in batch mode: strip them)
        (cd "$PROJECT" && mvn -B -q -Dstyle.color=never package 2>&1 | sed 's/\x1b\[[0-9;]*m//g' 1>&2) \
            || die "maven build failed in $PROJECT"
        touch "$TARGET/.built"
        say "built in $((SECONDS - started)) s"
    fi
    flock -u 9
}

running_pid() {
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE")"
    [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

cmd_run() {
    [[ $# -ge 1 ]] || die "run needs PORT"
    build
    # shellcheck disable=SC2086  # JAVA_OPTS is a list of words
    exec java $JAVA_OPTS -cp "$TARGET/classes:$TARGET/lib/*" "$MAIN_CLASS" "$@"
}

cmd_start() {
    local port="${1:-7687}" data="${2:-}"
    local pid
    if pid="$(running_pid)"; then
        die "already running (pid $pid, $(cat "$URI_FILE" 2>/dev/null)); stop it first"
    fi
    build
    mkdir -p "$RUN_DIR"
    # The background job truncates the log only once it runs: empty it here, or the wait
    # loop below can read the READY line of the previous server.
    rm -f "$URI_FILE"
    : >"$LOG_FILE"
    local args=("$port")
    [[ -n "$data" ]] && args+=("$data")
    say "Neo4j server starting (port $port, data ${data:-in a temp dir}, log $LOG_FILE)"
    # shellcheck disable=SC2086
    nohup java $JAVA_OPTS -cp "$TARGET/classes:$TARGET/lib/*" "$MAIN_CLASS" "${args[@]}" \
        </dev/null >"$LOG_FILE" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"
    local started=$SECONDS line=""
    while (( SECONDS - started < START_TIMEOUT )); do
        line="$(grep -m1 '^READY ' "$LOG_FILE" 2>/dev/null || true)"
        [[ -n "$line" ]] && break
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE"
            tail -n 30 "$LOG_FILE" >&2 || true
            die "the server exited before it was ready (log above, full log in $LOG_FILE)"
        fi
        sleep 0.5
    done
    if [[ -z "$line" ]]; then
        kill "$pid" 2>/dev/null || true
        rm -f "$PID_FILE"
        tail -n 30 "$LOG_FILE" >&2 || true
        die "not ready after ${START_TIMEOUT} s (log above); raise KGREC_NEO4J_START_TIMEOUT?"
    fi
    local uri="${line#READY }"
    echo "$uri" >"$URI_FILE"
    say "$line (pid $pid, started in $((SECONDS - started)) s)"
    echo "export KGREC_NEO4J_URI=$uri"
}

cmd_stop() {
    local pid
    if ! pid="$(running_pid)"; then
        say "not running"
        rm -f "$PID_FILE" "$URI_FILE"
        return 0
    fi
    say "stopping pid $pid"
    kill -TERM "$pid"
    local i
    for i in $(seq 1 60); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "pid $pid still alive after 30 s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE" "$URI_FILE"
    say "stopped"
}

cmd_status() {
    local pid
    if pid="$(running_pid)"; then
        echo "running: pid $pid, $(cat "$URI_FILE" 2>/dev/null || echo 'not ready yet'), log $LOG_FILE"
    else
        echo "not running"
        return 3
    fi
}

case "${1:-}" in
    start) shift; cmd_start "$@" ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    build) build ;;
    run) shift; cmd_run "$@" ;;
    *) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
