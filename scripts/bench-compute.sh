#!/usr/bin/env bash
# A worker's `POST /compute` over the embedded engine against DuckDB over the same data,
# in one run on this machine (issue 19; numbers in docs/benchmarks.md):
#
#   scripts/bench-compute.sh [ROUNDS] [HOSTS]     # default 7 rounds, 100 hosts (864,000 points)
#
# Builds the release binary; installs DuckDB (pinned below) in a venv under
# target/bench-compute/ (kept between runs); starts a control node on :18080 and one
# worker on :18081 (replication factor 1, so the worker holds every partition and the
# control node's `/aggregate` reads it all); then scripts/bench_compute.py generates the
# data, loads it into the worker and into DuckDB, checks the answers agree and times
# the queries, interleaved. Everything it starts is stopped, and its temp dir removed, on
# exit. About a minute after the build.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-7}
HOSTS=${2:-100}
DUCKDB_VERSION=2.0.1

cargo build --release -q -p kairosdb-server
BIN=$PWD/target/release
VENV=$PWD/target/bench-compute/venv
if ! "$VENV/bin/python" -c "import duckdb, sys; sys.exit(duckdb.__version__ != '$DUCKDB_VERSION')" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q "duckdb==$DUCKDB_VERSION"
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do
        for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

wait_http() { # $1 = host:port, $2 = path, $3 = wanted status
    for _ in $(seq 300); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$1$2")" = "$3" ] && return 0
        sleep 0.1
    done
    echo "timeout waiting for $1$2" >&2
    return 1
}

# start NAME PORT ENV... : a server in $WORK/NAME on 127.0.0.1:PORT; sets $STARTED.
start() {
    local name=$1 port=$2
    shift 2
    env KAIROSDB_DATA_DIR="$WORK/$name" KAIROSDB_BIND_ADDRESS=127.0.0.1:$port \
        KAIROSDB_TELNET_BIND_ADDRESS=127.0.0.1:$((port + 1000)) KAIROSDB_SELF_METRICS=false \
        KAIROSDB_RATE_LIMIT_PER_MINUTE=0 RUST_LOG=warn "$@" "$BIN/kairosdb" >"$WORK/$name.log" 2>&1 &
    STARTED=$!
    PIDS+=("$STARTED")
    wait_http 127.0.0.1:$port /health/live 200
}

start control 18080 KAIROSDB_ROLE=control KAIROSDB_CLUSTER_MIN_WORKERS=1 KAIROSDB_REPLICATION_FACTOR=1
CONTROL=$STARTED
start worker 18081 KAIROSDB_ROLE=worker KAIROSDB_CLUSTER_SEEDS=127.0.0.1:18080
WORKER=$STARTED
wait_http 127.0.0.1:18080 /health/ready 200

echo "== $(git rev-parse --short HEAD), $(nproc) CPUs, $(date -u +%Y-%m-%d)"
"$VENV/bin/python" scripts/bench_compute.py --worker 127.0.0.1:18081 --control 127.0.0.1:18080 \
    --pids "$CONTROL,$WORKER" --work "$WORK" --rounds "$ROUNDS" --hosts "$HOSTS"
