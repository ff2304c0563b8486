#!/usr/bin/env bash
# Runs every cargo-fuzz target (fuzz/fuzz_targets/) for a bounded time and fails on the
# first crash, panic, hang or out-of-memory input (issue 22 item 9):
#
#   scripts/fuzz.sh [seconds-per-target] [target...]      (default 20 s, all targets)
#
# * Needs a nightly toolchain (`cargo +nightly`); installs cargo-fuzz from crates.io into
#   ~/.cargo/bin when it is missing.
# * Builds with debug assertions (`-a`: overflow checks and debug_assert! on) and ASan, into
#   fuzz/target (git-ignored, about 1 GB).
# * Each target starts from fuzz/corpus/<target> (git-ignored, kept between runs), topped
#   up with the committed seeds fuzz/seeds/<target> (the binary ones written by
#   `KAIROSDB_WRITE_FUZZ_SEEDS=1 cargo test -p kairosdb-engine fuzz_seeds`) and, for the
#   JSON targets, KairosDB's own fixtures from ../shared/kairosdb-conformance.
# * libFuzzer options: -timeout=10 (an input taking over 10 s is a hang), -rss_limit_mb=2048,
#   -max_total_time=<seconds>. Extra options for a long campaign go in FUZZ_ARGS, e.g.
#   FUZZ_ARGS="-runs=10000000" scripts/fuzz.sh 3600 ingest_json.
# * A crash leaves its input in fuzz/artifacts/<target>/; reproduce it with
#   `cargo +nightly fuzz run -a <target> <file>`, then pin it as a unit test beside the
#   decoder.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_TARGET="${1:-20}"
shift || true
TOOLCHAIN="${FUZZ_TOOLCHAIN:-nightly}"
SHARED="$PWD/../shared/kairosdb-conformance"

if ! command -v cargo-fuzz >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo-fuzz" ]; then
  echo "installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi
export PATH="$HOME/.cargo/bin:$PATH"
if ! rustup run "$TOOLCHAIN" rustc --version >/dev/null 2>&1; then
  echo "scripts/fuzz.sh: the $TOOLCHAIN toolchain is missing (rustup toolchain install $TOOLCHAIN)" >&2
  exit 1
fi

cd fuzz
if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo "+$TOOLCHAIN" fuzz list)
fi

start=$(date +%s)
cargo "+$TOOLCHAIN" fuzz build -a
echo "fuzz: built ${#targets[@]} targets in $(($(date +%s) - start)) s"

# Seeds: committed ones, plus KairosDB's fixtures for the JSON parsers.
seed() { # target, files...
  local dir="corpus/$1"
  shift
  mkdir -p "$dir"
  local f
  for f in "$@"; do
    [ -f "$f" ] && cp -n "$f" "$dir/$(basename "$(dirname "$f")")-$(basename "$f")"
  done
  return 0
}
for t in "${targets[@]}"; do
  seed "$t" seeds/"$t"/*
done
if [ -d "$SHARED" ]; then
  seed ingest_json "$SHARED"/unit-resources/{json-metric-parser,multi-metric,multiple-datapoints,single-metric}*.json \
    "$SHARED"/integration/*/datapoints.json
  seed query_json "$SHARED"/unit-resources/{query-metric,invalid-query}*.json "$SHARED"/integration/*/query.json
  seed rollup_json "$SHARED"/unit-resources/{rolluptask,invalid-rollup}*.json
else
  echo "fuzz: $SHARED not found; starting the JSON targets from fuzz/seeds only" >&2
fi

failed=()
for t in "${targets[@]}"; do
  log="target/fuzz-$t.log"
  echo "fuzz: $t for ${SECONDS_PER_TARGET} s"
  # shellcheck disable=SC2086
  if cargo "+$TOOLCHAIN" fuzz run -a "$t" "corpus/$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 ${FUZZ_ARGS:-} >"$log" 2>&1; then
    # The last status line: "#<runs> DONE cov: <edges> ft: <features> corp: ... exec/s: <n>".
    grep -E '^#[0-9]+' "$log" | tail -1 | sed "s/^/fuzz: $t: /"
  else
    failed+=("$t")
    tail -60 "$log" >&2
    echo "fuzz: $t FAILED (log fuzz/$log, input in fuzz/artifacts/$t/)" >&2
  fi
done

echo "fuzz: ${#targets[@]} targets in $(($(date +%s) - start)) s"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzz: failures in ${failed[*]}" >&2
  exit 1
fi
