#!/usr/bin/env bash
# kairosdb-rs against the Java KairosDB 1.3.0-1 on one Apache Cassandra node, in one run:
# HTTP ingest per server CPU-second (and Cassandra's CPU per point for each), the time
# until every point is readable, and the four TSBS-style queries (median latency,
# identical answers), with ../shared/bench's data and drivers.
#
#   scripts/bench-vs-java.sh [--hosts 20] [--duration 6h] [--concurrency 4]
#
# Builds the release binary, starts Cassandra (scripts/cassandra.sh, 1 GiB heap) and, in
# turn, the Java KairosDB (scripts/kairosdb-java.sh) and ours, and stops them all.
# docs/benchmarks.md keeps the results. Not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f ../shared/bench/run.py ] && [ -z "${BENCH_HARNESS:-}" ]; then
    echo "the harness ../shared/bench is missing (or set BENCH_HARNESS=DIR)" >&2
    exit 1
fi
echo "== building the release binary"
cargo build --release -q -p kairosdb-server
trap 'scripts/kairosdb-java.sh stop >/dev/null 2>&1 || true; scripts/cassandra.sh stop >/dev/null 2>&1 || true' EXIT
CASSANDRA_HEAP="${CASSANDRA_HEAP:-1g}" scripts/cassandra.sh start
python3 scripts/bench_vs_java.py "$@"
