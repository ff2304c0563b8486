#!/usr/bin/env bash
# kairosdb-rs against InfluxDB 1.x, side by side, on this machine, in one run:
# HTTP and telnet ingest per server CPU-second, bytes on disk per point, the four
# TSBS-style queries (latency, server CPU, identical answers; three rounds per
# server, the last two alternating the servers), peak RSS; and for kairosdb-rs alone
# p99 latency of small requests, cold start and restart.
#
#   scripts/bench-vs-influxdb.sh [--hosts 100] [--duration 1d] [--only ours|influx]
#
# Installs InfluxDB from Debian if it is missing, builds the release binary, generates
# the data with ../shared/bench (cached in target/bench-vs-influxdb), runs both servers
# one after the other on loopback with fresh data directories and prints the table
# (docs/benchmarks.md keeps the results). Not part of CI; about 10 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v influxd >/dev/null; then
    echo "== installing InfluxDB from Debian"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get install -y influxdb influxdb-client
fi
if [ ! -f ../shared/bench/run.py ] && [ -z "${BENCH_HARNESS:-}" ]; then
    echo "the harness ../shared/bench is missing (or set BENCH_HARNESS=DIR)" >&2
    exit 1
fi

echo "== building the release binary"
cargo build --release -q -p kairosdb-server -p kairosdb-bench

exec python3 scripts/bench_vs_influxdb.py "$@"
