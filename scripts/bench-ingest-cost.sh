#!/usr/bin/env bash
# What an optional feature costs on HTTP ingest (issue 22): the same load against several
# servers, alternating, ROUNDS times. SERVERS picks them (default "before off on"):
#
#   before  a release binary without the feature (BEFORE=path, e.g. built from main)
#   off     this tree's binary, defaults (auth, rate limits and tracing off)
#   on      this tree's binary, auth_enabled with a Bearer token that has a rate limit
#           (high enough never to refuse: every request takes a token from its bucket)
#   traced  this tree's binary, otel_enabled at sample ratio 1: every request exports its
#           spans, to a collector on 127.0.0.1 that accepts and discards them
#
# and two loads: 10,000-point requests (what collectors send) and 100-point requests
# (100x the requests per point, to make a per-request cost visible).
#
#   BEFORE=/path/to/old/kairosdb scripts/bench-ingest-cost.sh [ROUNDS]   # default 3
#   SERVERS="off traced" scripts/bench-ingest-cost.sh [ROUNDS]
#
# AFTER=path uses that binary instead of this tree's target/release/kairosdb.
#
# Prints one line per run: load, server, points per server CPU-second, p50 latency.
# Not part of CI. Numbers go to docs/benchmarks.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
SERVERS=${SERVERS:-before off on}
case " $SERVERS " in *" before "*) BEFORE=${BEFORE:?set BEFORE to the binary to compare with} ;; esac
COLLECTOR_PORT=${COLLECTOR_PORT:-14318}
HTTP_PORT=${HTTP_PORT:-18080}
TELNET_PORT=${TELNET_PORT:-14242}
cargo build --release -q -p kairosdb-server -p kairosdb-bench
BIN=target/release
AFTER=${AFTER:-$BIN/kairosdb}

WORK=$(mktemp -d)
COLLECTOR=
trap 'rm -rf "$WORK"; [ -z "$COLLECTOR" ] || kill "$COLLECTOR"' EXIT
# An OTLP/HTTP receiver that reads each export and answers 200, for the `traced` server.
python3 - "$COLLECTOR_PORT" <<'SINK' &
import http.server, sys
class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
SINK
COLLECTOR=$!
TOKEN=$("$AFTER" hash-secret --generate-token)
SECRET=$(echo "$TOKEN" | sed -n 1p)
cat >"$WORK/auth.toml" <<TOML
auth_enabled = true
[[auth.tokens]]
name = "bench"
token_hash = "$(echo "$TOKEN" | sed -n 2p)"
scopes = ["write"]
rate_per_minute = 100000000
burst = 1000000
TOML

run() { # $1 = server (before|off|on), $2 = load (big|small)
    local dir="$WORK/data.$1.$2" bin="$AFTER" extra=() bearer=()
    [ "$1" = before ] && bin="$BEFORE"
    [ "$1" = on ] && { extra=(--config "$WORK/auth.toml"); bearer=(--bearer "$SECRET"); }
    [ "$1" = traced ] && extra=(--otel-enabled true
        --otel-endpoint "http://127.0.0.1:$COLLECTOR_PORT/v1/traces")
    KAIROSDB_DATA_DIR="$dir" KAIROSDB_BIND_ADDRESS=127.0.0.1:$HTTP_PORT \
        KAIROSDB_TELNET_BIND_ADDRESS=127.0.0.1:$TELNET_PORT KAIROSDB_SELF_METRICS=false \
        RUST_LOG=warn "$bin" "${extra[@]}" >"$dir.log" 2>&1 &
    local pid=$!
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$HTTP_PORT/health/live" >/dev/null && break
        sleep 0.1
    done
    local load=(--hosts 100 --hours 24)
    [ "$2" = small ] && load=(--hosts 100 --hours 2 --batch 100)
    local out
    out=$("$BIN/kairosdb-bench" http --url "http://127.0.0.1:$HTTP_PORT" --pid "$pid" -c 4 \
        "${load[@]}" "${bearer[@]}")
    kill -TERM "$pid"
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    rm -rf "$dir"
    printf '%s\t%s\t%s\t%s\t%s\n' "$2" "$1" \
        "$(echo "$out" | awk -F': *' '/points per server CPU-s/ {print $2}')" \
        "$(echo "$out" | awk -F': *' '/latency/ {print $2}' | cut -d/ -f1)" \
        "$(echo "$out" | awk -F': *' '/errors/ {print $2}')"
}

printf 'load\tserver\tpoints/CPU-s\tp50 us\terrors\n'
for round in $(seq "$ROUNDS"); do
    for load in big small; do
        for server in $SERVERS; do
            run "$server" "$load"
        done
    done
done
