#!/usr/bin/env bash
# The whole test suite, with the services its live tests need (README's test command).
#
#   scripts/test.sh [cargo test arguments]
#
# Starts Apache Cassandra (scripts/cassandra.sh) and the Java KairosDB beside it
# (scripts/kairosdb-java.sh), both from Maven Central into the git-ignored .cache/, runs
# `cargo test --workspace` with KAIROSDB_TEST_CASSANDRA and KAIROSDB_TEST_JAVA naming them,
# and stops both, pass or fail. The web UI's browser tests (tests/ui.rs) get chromium and
# playwright-core from scripts/ui-deps.sh (KAIROSDB_TEST_UI); the packaging tests
# (tests/deploy.rs) get helm and promtool from scripts/deploy-tools.sh (KAIROSDB_TEST_HELM,
# KAIROSDB_TEST_PROMTOOL); the full-disk test (tests/disk.rs) mounts a tmpfs, which needs
# root; the OpenAPI fuzzing (tests/schemathesis.rs) gets schemathesis from
# scripts/schemathesis.sh (KAIROSDB_TEST_SCHEMATHESIS); the Redis cache's suite
# (tests/redis.rs) gets Debian's redis-server from scripts/redis.sh (KAIROSDB_TEST_REDIS)
# and starts and stops its own Redis servers. Then it prints the count of
# every live suite and fails if one of them skipped a case: with the services up, nothing
# may be reported as ignored. Last, with the services stopped, every fuzz target runs for
# FUZZ_SECONDS (default 5) through scripts/fuzz.sh, which fails on any crash; 0 skips it.
#
# Plain `cargo test --workspace` runs everything that needs no service and lists the live
# suites as ignored, with a line saying how to run them.
set -euo pipefail
cd "$(dirname "$0")/.."

LOG="$(mktemp)"
cleanup() {
  scripts/kairosdb-java.sh stop >/dev/null 2>&1 || true
  scripts/cassandra.sh stop >/dev/null 2>&1 || true
  rm -f "$LOG" "${DEPLOY_ENV:-}"
}
trap cleanup EXIT

# helm is built from source the first time (minutes): start it before the services.
DEPLOY_ENV="$(mktemp)"
scripts/deploy-tools.sh >"$DEPLOY_ENV" &
deploy_tools=$!

scripts/cassandra.sh start
scripts/kairosdb-java.sh start
export KAIROSDB_TEST_CASSANDRA="127.0.0.1:${CASSANDRA_PORT:-19042}"
export KAIROSDB_TEST_JAVA="http://127.0.0.1:${KAIROSDB_JAVA_PORT:-18080}"
KAIROSDB_TEST_KAIROSDB_DEFAULTS="$(scripts/kairosdb-java.sh defaults)"
export KAIROSDB_TEST_KAIROSDB_DEFAULTS
KAIROSDB_TEST_UI="$(scripts/ui-deps.sh)"
export KAIROSDB_TEST_UI
KAIROSDB_TEST_SCHEMATHESIS="$(scripts/schemathesis.sh install)"
export KAIROSDB_TEST_SCHEMATHESIS
KAIROSDB_TEST_REDIS="$(scripts/redis.sh install)"
export KAIROSDB_TEST_REDIS
# Compile the tests while helm may still be building (it is needed only to run them).
cargo test --workspace --no-run "$@"
# Printed `export KAIROSDB_TEST_HELM=... KAIROSDB_TEST_PROMTOOL=...` lines.
wait "$deploy_tools"
# shellcheck disable=SC1090
source "$DEPLOY_ENV"

status=0
cargo test --workspace "$@" 2>&1 | tee "$LOG" || status=$?

# The result line of each live suite: "Running tests/live.rs (...)" ... "test result: ...".
echo
echo "live suites:"
awk '/Running tests\/(live|redis|side_by_side|ui|disk|partition|deploy|schemathesis)\.rs/ { suite = $2; next }
     suite && /^test result:/ { print "  " suite ": " $0; if ($0 !~ / 0 ignored;/) bad = 1; suite = "" }
     END { exit bad }' "$LOG" || {
  echo "a live suite skipped cases although its services were running" >&2
  status=1
}

# The fuzz targets need no service: free the cores and memory first.
scripts/kairosdb-java.sh stop >/dev/null 2>&1 || true
scripts/cassandra.sh stop >/dev/null 2>&1 || true
if [ "${FUZZ_SECONDS:-5}" != 0 ]; then
  echo
  scripts/fuzz.sh "${FUZZ_SECONDS:-5}" || status=1
fi
exit "$status"
