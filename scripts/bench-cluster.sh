#!/usr/bin/env bash
# Cluster mode on this machine (issue 19, numbers in docs/benchmarks.md):
#
#  1. ingest: the same HTTP load (100 hosts x 24 h, 10,000-point requests, 4 connections)
#     into a single node and into a control node over 1, 2 and 3 workers (replication
#     factor 1; and 2 over 2 and 3 workers), alternating, ROUNDS times. Reports points/s,
#     points per CPU-second of all the cluster's processes, and the control node's share.
#  2. queries: 30 sequential queries of each kind over every host and the whole day,
#     through the same setups: KairosDB `sum` by the hour (raw points to the control node),
#     KairosDB `max` by the minute (pushed down to the workers), and on cluster nodes the
#     plan's `/aggregate` (partials merged): median latency and CPU per query.
#  3. failover: kill -9 the Raft leader of a control node + 3 workers; time until the
#     others agree on a new one. 3 times.
#  4. catch-up: replication factor 2, one worker down while 100 hosts x 6 h are written;
#     time from its restart until the control node's hints are delivered.
#
#   scripts/bench-cluster.sh [ROUNDS]     # default 2
#
# The machine has 2 vCPUs: every process shares them, so more workers cannot add
# throughput here; the figures show the cost per point of routing and replication.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-2}
cargo build --release -q -p kairosdb-server -p kairosdb-bench
BIN=$PWD/target/release
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
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
        RUST_LOG=warn "$@" "$BIN/kairosdb" >"$WORK/$name.log" 2>&1 &
    STARTED=$!
    PIDS+=("$STARTED")
    wait_http 127.0.0.1:$port /health/live 200
}

stop_all() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]}"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done
    PIDS=()
    rm -rf "${WORK:?}"/*
}

# setup WORKERS RF : a single node (WORKERS = 0) or a control node on :18080 over WORKERS
# workers on :18081...; sets $SERVER_PIDS (control first) and $CONTROL_PID.
setup() {
    local workers=$1 rf=$2
    SERVER_PIDS=()
    if [ "$workers" = 0 ]; then
        start single 18080
        SERVER_PIDS=("$STARTED")
        CONTROL_PID=$STARTED
        return
    fi
    local list=""
    # The plan's default of 1,000 requests a minute would throttle the load itself.
    start control 18080 KAIROSDB_ROLE=control KAIROSDB_CLUSTER_MIN_WORKERS="$workers" KAIROSDB_RATE_LIMIT_PER_MINUTE=0 \
        KAIROSDB_REPLICATION_FACTOR="$rf"
    CONTROL_PID=$STARTED
    SERVER_PIDS=("$STARTED")
    for i in $(seq "$workers"); do
        start "worker$i" $((18080 + i)) KAIROSDB_ROLE=worker KAIROSDB_CLUSTER_SEEDS=127.0.0.1:18080
        SERVER_PIDS+=("$STARTED")
    done
    wait_http 127.0.0.1:18080 /health/ready 200
}

cpu_of() { # CPU seconds of one PID
    awk -v t="$(getconf CLK_TCK)" '{print ($14 + $15) / t}' "/proc/$1/stat"
}

ingest() { # $1 = label
    local pid_args=() control_before out control_after
    for p in "${SERVER_PIDS[@]}"; do pid_args+=(--pid "$p"); done
    control_before=$(cpu_of "$CONTROL_PID")
    out=$("$BIN/kairosdb-bench" http --url http://127.0.0.1:18080 "${pid_args[@]}" -c 4 --hosts 100 --hours 24)
    control_after=$(cpu_of "$CONTROL_PID")
    printf 'ingest\t%s\t%s\t%s\t%s\t%s\n' "$1" \
        "$(echo "$out" | awk -F': *' '/points\/s \(wall\)/ {print $2}')" \
        "$(echo "$out" | awk -F': *' '/points per server CPU-s/ {print $2}')" \
        "$(echo "$out" | awk -F': *' '/server CPU seconds/ {print $2}')" \
        "$(echo "$control_after - $control_before" | bc)"
}

# query KIND LABEL: 30 sequential queries of one kind; median latency and CPU per query.
#   sum        KairosDB `sum`, 1-hour sampling: every point crosses to the control node
#   max        KairosDB `max`, 1-minute sampling: pushed down (2 points a bucket per series)
#   aggregate  the plan's /aggregate, avg,max,count by host per hour: partials merged
query() {
    local kind=$1 label=$2 before=0 after=0 median
    for p in "${SERVER_PIDS[@]}"; do before=$(echo "$before + $(cpu_of "$p")" | bc); done
    median=$(KIND=$kind python3 - <<'PY'
import json, os, time, urllib.request
kind = os.environ["KIND"]
def kairos(name, sampling):
    body = json.dumps({"start_absolute": 0, "metrics": [{"name": "cpu.usage_user",
        "group_by": [{"name": "tag", "tags": ["hostname"]}],
        "aggregators": [{"name": name, "sampling": sampling}]}]}).encode()
    req = urllib.request.Request("http://127.0.0.1:18080/api/v1/datapoints/query", body,
                                 {"Content-Type": "application/json"})
    answer = json.load(urllib.request.urlopen(req))
    assert answer["queries"][0]["sample_size"] > 0, answer
def aggregate():
    url = ("http://127.0.0.1:18080/aggregate?key=cpu.usage_user&from=2016-01-01T00:00:00Z"
           "&to=2016-01-02T00:00:00Z&window=1h&agg=avg,max,count&group_by=hostname")
    answer = json.load(urllib.request.urlopen(url))
    assert len(answer["results"]) == 2400, len(answer["results"])
run = {"sum": lambda: kairos("sum", {"value": 1, "unit": "hours"}),
       "max": lambda: kairos("max", {"value": 1, "unit": "minutes"}),
       "aggregate": aggregate}[kind]
took = []
for _ in range(30):
    t = time.perf_counter()
    run()
    took.append(time.perf_counter() - t)
took.sort()
print(f"{took[len(took) // 2] * 1000:.1f}")
PY
)
    for p in "${SERVER_PIDS[@]}"; do after=$(echo "$after + $(cpu_of "$p")" | bc); done
    printf 'query %s\t%s\tmedian %s ms\tCPU per query %s ms\n' "$kind" "$label" "$median" \
        "$(echo "scale=1; ($after - $before) * 1000 / 30" | bc)"
}

queries() { # $1 = label; the plan's API is served by cluster nodes only
    query sum "$1"
    query max "$1"
    [ "$1" != single ] && query aggregate "$1"
    return 0
}

printf 'what\tsetup\tpoints/s (wall)\tpoints per CPU-s (all processes)\tCPU s (all)\tCPU s (control)\n'
for round in $(seq "$ROUNDS"); do
    for s in "0 1" "1 1" "2 1" "3 1" "2 2" "3 2"; do
        set -- $s
        label="single"
        [ "$1" != 0 ] && label="$1 workers, rf $2"
        setup "$1" "$2"
        ingest "$label"
        queries "$label"
        stop_all
    done
done

leader_of() { # the leader id a node reports
    curl -s "http://$1/internal/v1/raft/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader_id"])'
}
for round in 1 2 3; do
    setup 3 2
    leader=$(leader_of 127.0.0.1:18080)
    victim=""
    for port in 18080 18081 18082 18083; do
        [ "$(curl -s "http://127.0.0.1:$port/internal/v1/raft/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["node_id"])')" = "$leader" ] && victim=$port
    done
    other=18080
    [ "$victim" = 18080 ] && other=18081
    pid=$(ss -ltnpH "sport = :$victim" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
    t0=$(date +%s.%N)
    kill -9 "$pid"
    while [ "$(leader_of 127.0.0.1:$other)" = "$leader" ] || [ "$(leader_of 127.0.0.1:$other)" = None ]; do sleep 0.05; done
    printf 'failover\tround %s\tnew leader after %.2f s\n' "$round" "$(echo "$(date +%s.%N) - $t0" | bc)"
    stop_all
done

setup 3 2
pid=$(ss -ltnpH "sport = :18082" | sed -n 's/.*pid=\([0-9]*\).*/\1/p' | head -1)
kill -9 "$pid"
"$BIN/kairosdb-bench" http --url http://127.0.0.1:18080 -c 4 --hosts 100 --hours 6 >/dev/null
hinted=$(curl -s http://127.0.0.1:18080/api/v1/metrics | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["kairosdb_cluster_hinted_points"]))')
t0=$(date +%s.%N)
start worker2 18082 KAIROSDB_ROLE=worker KAIROSDB_CLUSTER_SEEDS=127.0.0.1:18080
until [ "$(curl -s http://127.0.0.1:18080/api/v1/metrics | python3 -c 'import json,sys; print(int(json.load(sys.stdin)["kairosdb_cluster_hinted_points"]))')" = 0 ]; do sleep 0.1; done
printf 'catch-up\t%s hinted points delivered %.2f s after the restart\n' "$hinted" "$(echo "$(date +%s.%N) - $t0" | bc)"
stop_all
