#!/usr/bin/env bash
# Whole-server ingest benchmark on loopback: builds the release binaries, starts a fresh
# kairosdb on an empty data dir, loads TSBS devops data over HTTP JSON (10,000-point
# requests) and telnet with kairosdb-bench, then reports the bytes per point on disk after
# a clean shutdown (which seals every head into compressed blocks).
#
#   scripts/bench-server.sh [HOSTS] [HOURS] [VALUES]     # defaults: 100 24 int
#
# Not part of CI. Numbers go to docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
HOSTS=${1:-100}
HOURS=${2:-24}
VALUES=${3:-int}
HTTP_PORT=${HTTP_PORT:-18080}
TELNET_PORT=${TELNET_PORT:-14242}

cargo build --release -q -p kairosdb-server -p kairosdb-bench
BIN=target/release

run_server() { # $1 = data dir; prints the PID
    KAIROSDB_DATA_DIR="$1" KAIROSDB_BIND_ADDRESS=127.0.0.1:$HTTP_PORT \
        KAIROSDB_TELNET_BIND_ADDRESS=127.0.0.1:$TELNET_PORT RUST_LOG=warn \
        "$BIN/kairosdb" >"$1.log" 2>&1 &
    local pid=$!
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$HTTP_PORT/health/live" >/dev/null && break
        sleep 0.1
    done
    echo "$pid"
}

stop_server() { # $1 = PID; waits until the clean shutdown has finished
    kill -TERM "$1"
    while kill -0 "$1" 2>/dev/null; do sleep 0.1; done
}

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
POINTS=$((HOSTS * 10 * $(printf '%.0f' "$(echo "$HOURS * 360" | bc)")))

echo "== HTTP JSON ingest: $HOSTS hosts, $HOURS h, $VALUES values ($POINTS points)"
PID=$(run_server "$WORK/http")
"$BIN/kairosdb-bench" http --url "http://127.0.0.1:$HTTP_PORT" --pid "$PID" -c 4 \
    --hosts "$HOSTS" --hours "$HOURS" --values "$VALUES"
stop_server "$PID"
BYTES=$(du -s --block-size=1 "$WORK/http" | cut -f1)
echo "  data dir after shutdown:  $BYTES bytes = $(echo "scale=3; $BYTES / $POINTS" | bc) bytes/point (allocated blocks of all files)"
du -s --block-size=1 "$WORK/http"/* | sed 's/^/    /'

echo "== telnet put ingest"
PID=$(run_server "$WORK/telnet")
"$BIN/kairosdb-bench" telnet --addr "127.0.0.1:$TELNET_PORT" --pid "$PID" -c 4 \
    --hosts "$HOSTS" --hours "$(echo "$HOURS / 4" | bc -l)" --values "$VALUES"
stop_server "$PID"
