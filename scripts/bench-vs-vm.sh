#!/usr/bin/env bash
# kairosdb-rs against VictoriaMetrics single-node, side by side, on this machine (issue 21):
# HTTP and telnet ingest per server CPU-second, bytes on disk per point (right after the
# load, one minute after, settled; integers and a float walk), peak RSS, memory per series,
# and 13 TSBS query types plus query/tags (median latency, server CPU, answers compared
# variant by variant: a difference fails the run). One markdown table per axis, with
# ours / VM ratios.
#
#   scripts/bench-vs-vm.sh                                   # 100 hosts x 1 day, ~20 min
#   scripts/bench-vs-vm.sh --hosts 10 --duration 12h --reps 1 --query-rounds 1   # smoke
#   scripts/bench-vs-vm.sh --axis cardinality [--cardinality 1000,10000,100000]
#   scripts/bench-vs-vm.sh --no-base --axis volume [--volume 10M,100M]
#
# Installs VictoriaMetrics from Debian if it is missing, builds the release binary, and
# generates the data with the shared harness ../shared/bench (or $BENCH_HARNESS), cached
# in target/bench-vs-vm. `scripts/bench_vs_vm.py -h` lists every option. Not part of CI;
# docs/benchmarks.md keeps the results.
set -euo pipefail
cd "$(dirname "$0")/.."

HARNESS=${BENCH_HARNESS:-../shared/bench}
if [ ! -f "$HARNESS/vm.py" ] || [ ! -f "$HARNESS/load.py" ] || [ ! -f "$HARNESS/gen.py" ]; then
    echo "the harness $HARNESS (gen.py, load.py, vm.py) is missing; set BENCH_HARNESS=DIR" >&2
    exit 1
fi
if ! command -v victoria-metrics >/dev/null; then
    echo "== installing VictoriaMetrics from Debian"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get install -y victoria-metrics || { $SUDO apt-get update && $SUDO apt-get install -y victoria-metrics; }
fi
# The package may start its own service where systemd runs; ours are throw-away instances
# on free loopback ports, so that one is left alone.

echo "== building the release binary"
cargo build --release -q -p kairosdb-server

exec python3 scripts/bench_vs_vm.py "$@"
