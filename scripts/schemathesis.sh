#!/usr/bin/env bash
# Fuzzes the running server from its own OpenAPI document (issue 22) with schemathesis.
#
#   scripts/schemathesis.sh install      # the venv in .cache/; prints the `st` path
#   scripts/schemathesis.sh [run [BIN]]  # install, start BIN, seed, fuzz, stop
#
# (SCHEMATHESIS_ST=<st> skips the install: tests/schemathesis.rs runs it so, from
# scripts/test.sh, which installs first.)
#
# `run` starts BIN (default target/debug/kairosdb; `tests/schemathesis.rs` passes the one
# cargo built) on 127.0.0.1 with an ephemeral port and a throw-away data directory, writes
# a few points so queries find data, then runs `st run <url>/api/v1/openapi.json` with the
# checks below against every operation, and stops the server whatever happened. It fails
# when any check fails (CHECKS below) or the server dies or panics.
#
# Bounded for a 2-vCPU CI machine (a few minutes): SCHEMATHESIS_EXAMPLES (default 25)
# test cases per operation in the fuzzing phase, SCHEMATHESIS_SEED (default 1, so a
# failure reproduces; `random` for a new one each run). SCHEMATHESIS_CHECKS and
# SCHEMATHESIS_MODE (positive, negative, all) override the checks and the data generated,
# e.g. `positive_data_acceptance` with `positive` to see which inputs the document allows
# that the server refuses (KairosDB's rules go beyond JSON Schema: not all are 2xx). The
# DELETE operations delete whatever they match: only ever point this at a throw-away
# server.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=4.32.5
# What every answer must satisfy: no 5xx; a status, content type and body the document
# lists for the operation; 405 for a method the document does not list on a path; the
# headers the document requires.
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,unsupported_method
VENV=.cache/schemathesis
ST="$VENV/bin/st"

# A Python 3.13 or newer where there is one (PYTHON overrides): 3.11.7's parser fails
# inside hypothesis's deep recursion ("AST constructor recursion depth mismatch", CPython
# gh-106905) while schemathesis builds big bodies.
python() {
  local p
  for p in "${PYTHON:-}" python3.14 python3.13 \
    "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[3-9]*/bin/python3 python3; do
    if [[ -n "$p" ]] && command -v "$p" >/dev/null && "$p" -c 'import venv' 2>/dev/null; then
      echo "$p"
      return
    fi
  done
  echo "schemathesis.sh: no python3 with venv" >&2
  exit 1
}

install() {
  if [[ -x "$ST" ]] && "$ST" --version 2>/dev/null | grep -q " $VERSION\$" &&
    [[ "$("$VENV/bin/python" -V)" == "$("$(python)" -V)" ]]; then
    return
  fi
  rm -rf "$VENV"
  "$(python)" -m venv "$VENV" >&2
  "$VENV/bin/pip" install --quiet "schemathesis==$VERSION" >&2
}

# shellcheck disable=SC2317 # called by the trap
stop() {
  if [[ -n "${pid:-}" ]]; then
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  [[ -z "${dir:-}" ]] || rm -rf "$dir"
}

run() {
  local bin="${1:-target/debug/kairosdb}"
  # tests/schemathesis.rs passes the `st` that `install` printed.
  if [[ -n "${SCHEMATHESIS_ST:-}" ]]; then
    ST="$SCHEMATHESIS_ST"
  else
    install
  fi
  # Globals: the EXIT trap runs after this function has returned.
  dir="$(mktemp -d)"
  pid=""
  trap stop EXIT

  # The harness's settings (tests/it/harness.rs): nothing from the caller's environment.
  local unset=(-u RUST_LOG) name
  for name in $(compgen -e KAIROSDB_); do unset+=(-u "$name"); done
  env "${unset[@]}" \
    KAIROSDB_BIND_ADDRESS=127.0.0.1:0 \
    KAIROSDB_TELNET_BIND_ADDRESS=127.0.0.1:0 \
    KAIROSDB_DATA_DIR="$dir/data" \
    KAIROSDB_WORKER_THREADS=2 \
    KAIROSDB_SELF_METRICS=false \
    KAIROSDB_QUERY_TIME_LIMIT_SECS=10 \
    RUST_LOG=warn \
    "$bin" >"$dir/stdout" 2>"$dir/server.log" &
  pid=$!
  local url=""
  for _ in $(seq 600); do
    url="$(sed -n 's/^listening http=\([^ ]*\).*/http:\/\/\1/p' "$dir/stdout")"
    [[ -n "$url" ]] && break
    kill -0 "$pid" 2>/dev/null || { cat "$dir/server.log" >&2; echo "kairosdb exited at start-up" >&2; exit 1; }
    sleep 0.1
  done
  [[ -n "$url" ]] || { echo "kairosdb did not start in 60 s" >&2; exit 1; }
  echo "kairosdb at $url" >&2

  # Points of every value type, for the queries to find.
  curl -sSf -X POST "$url/api/v1/datapoints" -H 'Content-Type: application/json' -d '[
    {"name":"sys.cpu","tags":{"host":"a","dc":"x"},"datapoints":[[1700000000000,1],[1700000060000,2.5],[1700000120000,3]]},
    {"name":"sys.cpu","tags":{"host":"b","dc":"x"},"datapoints":[[1700000000000,4],[1700000060000,5]]},
    {"name":"sys.status","tags":{"host":"a"},"timestamp":1700000000000,"value":"up"}]'
  curl -sSf -X POST "$url/api/v1/metadata/svc/key/k" -d 'value'

  local seed=(--seed "${SCHEMATHESIS_SEED:-1}")
  [[ "${SCHEMATHESIS_SEED:-}" == random ]] && seed=()
  local status=0
  "$ST" run "$url/api/v1/openapi.json" \
    --checks "${SCHEMATHESIS_CHECKS:-$CHECKS}" \
    --phases examples,coverage,fuzzing \
    --mode "${SCHEMATHESIS_MODE:-all}" \
    --max-examples "${SCHEMATHESIS_EXAMPLES:-25}" \
    --generation-database none \
    "${seed[@]}" \
    --workers 2 \
    --request-timeout 30 \
    --suppress-health-check all \
    --warnings off \
    --no-color || status=$?
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "kairosdb died during the run; its log:" >&2
    cat "$dir/server.log" >&2
    status=1
  elif grep -q "panicked" "$dir/server.log"; then
    echo "kairosdb panicked during the run; its log:" >&2
    grep -B2 -A10 "panicked" "$dir/server.log" >&2
    status=1
  fi
  return "$status"
}

case "${1:-run}" in
  install) install; echo "$PWD/$ST" ;;
  run) shift || true; run "$@" ;;
  *) echo "usage: $0 [install | run [BIN]]" >&2; exit 2 ;;
esac
