#!/usr/bin/env bash
# The telemetry API under load (issue 20; numbers in docs/benchmarks.md): wrk (Debian's,
# installed here when missing) against a release server with the telemetry listener, each
# endpoint in turn, 2 threads and 8 connections for DURATION seconds:
#
#   insert  POST /metrics, every body a new record (100 hosts, timestamps in the last hour)
#   list    GET /metrics?name=bench&limit=50 (newest first, over every record inserted)
#   get     GET /metrics/{id} (ids of records inserted above)
#   update  PUT /metrics/{id} {"value": n} (in place)
#   query   GET /query?prompt=average bench by host in the last hour
#   delete  DELETE /metrics/{id}, each id once
#
# and cold start: exec to the `listening` line, on an empty data directory and on the
# one the load left (its WAL replayed), 5 times each. Then the same server on the same data
# with the Redis cache (a Redis from scripts/redis.sh on port 16390):
#
#   list+redis        the listing above, repeated: requests/s, latency, hit rate
#   query+redis       the prompt above, repeated
#   list+redis+ingest the listing while another wrk inserts records of another metric
#                     (writes elsewhere must not end the listing's answer): hit rate
#   list+redis+self   the listing while records of its own metric are inserted (every
#                     write ends the answer: the hit rate says how often it is reused)
#
#   scripts/bench-telemetry.sh [DURATION]     # default 10
#
# Prints one RESULT line per endpoint (requests/s, p50/p95/p99 ms, non-2xx answers) and
# the cold starts. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
command -v wrk >/dev/null || apt-get install -y -q wrk >/dev/null
cargo build --release -q -p kairosdb-server
BIN=$PWD/target/release/kairosdb
WORK=$(mktemp -d)
PID=
cleanup() {
    [ -z "$PID" ] || kill -9 "$PID" 2>/dev/null || true
    REDIS_PORT=16390 REDIS_RUN_DIR="$WORK/redis" scripts/redis.sh stop >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# start DIR: the server on DIR; sets PID, TELEMETRY (host:port) and STARTUP_MS (exec to
# the listening line).
start() {
    local t0 line
    t0=$(date +%s%N)
    env KAIROSDB_DATA_DIR="$1" KAIROSDB_REDIS_URI="${REDIS_URI:-}" KAIROSDB_BIND_ADDRESS=127.0.0.1:0 KAIROSDB_TELNET_BIND_ADDRESS=127.0.0.1:0 \
        KAIROSDB_TELEMETRY_BIND_ADDRESS=127.0.0.1:0 KAIROSDB_SELF_METRICS=false RUST_LOG=warn \
        "$BIN" >"$WORK/stdout" 2>"$WORK/stderr" &
    PID=$!
    until line=$(grep -m1 '^listening' "$WORK/stdout" 2>/dev/null); do sleep 0.002; done
    STARTUP_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
    TELEMETRY=$(echo "$line" | sed -n 's/.*telemetry=\([^ ]*\).*/\1/p')
}

stop() {
    kill -TERM "$PID"
    while kill -0 "$PID" 2>/dev/null; do sleep 0.05; done
    PID=
}

cat >"$WORK/report.lua" <<'LUA'
done = function(summary, latency, requests)
  local secs = summary.duration / 1e6
  io.write(string.format("RESULT %s requests/s=%.0f p50_ms=%.2f p95_ms=%.2f p99_ms=%.2f non2xx=%d socket_errors=%d\n",
    os.getenv("WHAT"), summary.requests / secs, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA

cat >"$WORK/insert.lua" <<'LUA'
dofile(os.getenv("REPORT"))
local threads = 0
setup = function(thread) thread:set("tid", threads); threads = threads + 1 end
init = function() n = 0; base = (os.time() - 1800) * 1000 end
request = function()
  n = n + 1
  local body = string.format('{"name":"%s","tags":["host:h%d","env:prod"],"value":%d,"timestamp":%d}',
    os.getenv("NAME") or "bench", n % 100, n % 997, base + n * 4 + tid)
  return wrk.format("POST", "/metrics", {["Content-Type"] = "application/json"}, body)
end
LUA

# Each thread takes its own ids from IDS (one per line): every `step`th from its offset.
cat >"$WORK/ids.lua" <<'LUA'
dofile(os.getenv("REPORT"))
local threads = 0
setup = function(thread) thread:set("tid", threads); threads = threads + 1 end
init = function()
  ids = {}
  for line in io.lines(os.getenv("IDS")) do ids[#ids + 1] = line end
  i = tid + 1
end
request = function()
  local id = ids[i] or ids[1]
  i = i + 2
  local what = os.getenv("WHAT")
  if what == "update" then
    return wrk.format("PUT", "/metrics/" .. id, {["Content-Type"] = "application/json"}, '{"value":' .. i .. '}')
  elseif what == "delete" then
    return wrk.format("DELETE", "/metrics/" .. id)
  end
  return wrk.format("GET", "/metrics/" .. id)
end
LUA

run() { # WHAT SCRIPT [PATH]
    WHAT=$1 REPORT="$WORK/report.lua" IDS="$WORK/ids" \
        wrk -t2 -c8 -d"${DURATION}s" -s "$2" "http://$TELEMETRY${3:-/}" | grep '^RESULT'
}

mkdir -p "$WORK/empty"
start "$WORK/data"
run insert "$WORK/insert.lua"
curl -s "http://$TELEMETRY/metrics?name=bench&limit=10000" |
    python3 -c 'import json,sys; [print(r["id"]) for r in json.load(sys.stdin)["records"]]' >"$WORK/ids"
echo "records listed for the id loads: $(wc -l <"$WORK/ids")"
WHAT=list REPORT="$WORK/report.lua" wrk -t2 -c8 -d"${DURATION}s" -s "$WORK/report.lua" \
    "http://$TELEMETRY/metrics?name=bench&limit=50" | grep '^RESULT'
run get "$WORK/ids.lua"
run update "$WORK/ids.lua"
WHAT=query REPORT="$WORK/report.lua" wrk -t2 -c8 -d"${DURATION}s" -s "$WORK/report.lua" \
    "http://$TELEMETRY/query?prompt=average%20bench%20by%20host%20in%20the%20last%20hour" | grep '^RESULT'
WHAT=delete REPORT="$WORK/report.lua" IDS="$WORK/ids" wrk -t2 -c8 -d2s -s "$WORK/ids.lua" \
    "http://$TELEMETRY/" | grep '^RESULT'
stop

for dir in empty data; do  # data: the one the load left
    times=()
    for _ in 1 2 3 4 5; do
        start "$WORK/$dir"
        times+=("$STARTUP_MS")
        stop
    done
    echo "cold start ($dir): ${times[*]} ms"
done

# The Redis cache: the same data, the same server, answers kept in Redis.
REDIS_URI=$(REDIS_PORT=16390 REDIS_RUN_DIR="$WORK/redis" scripts/redis.sh start | sed -n 's/^REDIS_URI=//p')
export REDIS_URI
start "$WORK/data"
cache() { # prints "hits misses" of the Redis cache so far
    curl -s "http://$(grep -m1 '^listening' "$WORK/stdout" | sed -n 's/.*http=\([^ ]*\).*/\1/p')/api/v1/metrics" |
        python3 -c 'import json,sys; v=json.load(sys.stdin); print(v["kairosdb_redis_cache_hits_total"], v["kairosdb_redis_cache_misses_total"])'
}
rate() { # WHAT BEFORE_HITS BEFORE_MISSES
    read -r hits misses < <(cache)
    python3 -c "h=$hits-$2; m=$misses-$3; print(f'HITRATE $1 hits={h} misses={m} rate={h/max(1,h+m):.4f}')"
}
for what in list query; do
    read -r h m < <(cache)
    case $what in
        list) path="/metrics?name=bench&limit=50" ;;
        query) path="/query?prompt=average%20bench%20by%20host%20in%20the%20last%20hour" ;;
    esac
    WHAT="$what+redis" REPORT="$WORK/report.lua" wrk -t2 -c8 -d"${DURATION}s" -s "$WORK/report.lua" \
        "http://$TELEMETRY$path" | grep '^RESULT'
    rate "$what+redis" "$h" "$m"
done
for other in other bench; do
    label=$([ "$other" = bench ] && echo self || echo ingest)
    read -r h m < <(cache)
    WHAT="insert($other)" NAME=$other REPORT="$WORK/report.lua" wrk -t1 -c2 -d"${DURATION}s" -s "$WORK/insert.lua" \
        "http://$TELEMETRY/" | grep '^RESULT' &
    inserts=$!
    WHAT="list+redis+$label" REPORT="$WORK/report.lua" wrk -t1 -c6 -d"${DURATION}s" -s "$WORK/report.lua" \
        "http://$TELEMETRY/metrics?name=bench&limit=50" | grep '^RESULT'
    wait "$inserts"
    rate "list+redis+$label" "$h" "$m"
done
stop
