#!/usr/bin/env bash
# Instructions a TSBS query costs inside `kairosdb_query::execute`, counted by callgrind
# (issue 21: a figure that does not move with the machine). Each binary loads the
# 100-host integer day of scripts/bench_vs_vm.py and answers the query types under
# valgrind; with two or more binaries the table has the ratios to the first.
#
#   scripts/query-instructions.sh                                   # target/release/kairosdb
#   scripts/query-instructions.sh --binary OLD --binary NEW --types double-groupby-1,cpu-max-all-8
#
# Installs valgrind from Debian if it is missing. Not part of CI; docs/benchmarks.md keeps
# the results.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v valgrind >/dev/null || ! command -v callgrind_control >/dev/null; then
    echo "== installing valgrind from Debian"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get install -y valgrind || { $SUDO apt-get update && $SUDO apt-get install -y valgrind; }
fi
if [[ " $* " != *" --binary "* && " $* " != *" --binary="* ]]; then
    echo "== building the release binary"
    cargo build --release -q -p kairosdb-server
fi

exec python3 scripts/query_instructions.py "$@"
