#!/usr/bin/env bash
# A real single-node Apache Cassandra for the live tests (issue 17), from Maven Central.
#
#   scripts/cassandra.sh start [--auth]   resolve (once), configure, start, wait for CQL
#   scripts/cassandra.sh stop             stop it and delete its data
#   scripts/cassandra.sh restart          stop it and start it again on the same data
#   scripts/cassandra.sh status           "running <address>" or "stopped" (exit 1)
#
# Cassandra 5.0.x (`org.apache.cassandra:cassandra-all` and its runtime dependencies) is
# resolved with Maven into `.cache/cassandra/lib` (git-ignored) and reused on the next start.
# The node listens on loopback only (CQL on 127.0.0.1:$CASSANDRA_PORT, default 19042), with a
# small heap and a data directory (`$CASSANDRA_RUN_DIR`, default `.cache/cassandra/run`) that
# `stop` deletes. `--auth` turns on password authentication (the default superuser
# `cassandra` / `cassandra`). A second node for a test takes other ports and another run
# directory through the same variables (`CASSANDRA_PORT`, `CASSANDRA_STORAGE_PORT`,
# `CASSANDRA_JMX_PORT`, `CASSANDRA_RUN_DIR`). Tests find a node through
# `KAIROSDB_TEST_CASSANDRA=127.0.0.1:$CASSANDRA_PORT`.
#
# `CASSANDRA_BATCH_FAIL_THRESHOLD` (default Cassandra's own 50KiB) sets
# `batch_size_fail_threshold`: the live test of "Batch too large" starts a node of its own
# with 16KiB, below the 40 KiB our driver aims its batches at, so the split path runs.
#
# Not here: starting Java KairosDB, and running the tests (the suite runner does both).
set -euo pipefail
# shellcheck source=lib/java-service.sh
source "$(dirname "$0")/lib/java-service.sh"

VERSION="${CASSANDRA_VERSION:-5.0.6}"
PORT="${CASSANDRA_PORT:-19042}"
STORAGE_PORT="${CASSANDRA_STORAGE_PORT:-17000}"
JMX_PORT="${CASSANDRA_JMX_PORT:-$((STORAGE_PORT + 199))}"
HEAP="${CASSANDRA_HEAP:-512m}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="$ROOT/.cache/cassandra"
LIB="$CACHE/lib-$VERSION"
RUN="${CASSANDRA_RUN_DIR:-$CACHE/run}"
PIDFILE="$RUN/cassandra.pid"
START_TIMEOUT_SECS="${CASSANDRA_START_TIMEOUT_SECS:-180}"

cql_answers() {
  port_answers "$PORT"
}

running_pid() {
  pid_alive "$PIDFILE"
}

resolve() {
  if [[ -f "$LIB/cassandra-all-$VERSION.jar" ]]; then
    return
  fi
  echo "resolving Cassandra $VERSION from Maven Central into $LIB" >&2
  maven_resolve "$LIB" "$CACHE" cassandra-runtime "
    <dependency>
      <groupId>org.apache.cassandra</groupId>
      <artifactId>cassandra-all</artifactId>
      <version>$VERSION</version>
    </dependency>"
}

configure() {
  local auth="$1"
  rm -rf "$RUN"
  mkdir -p "$RUN/data" "$RUN/commitlog" "$RUN/saved_caches" "$RUN/hints" "$RUN/cdc_raw"
  local authenticator=AllowAllAuthenticator authorizer=AllowAllAuthorizer
  if [[ "$auth" == yes ]]; then
    authenticator=PasswordAuthenticator
    authorizer=CassandraAuthorizer
  fi
  cat >"$RUN/cassandra.yaml" <<EOF
cluster_name: kairosdb-rs-test
num_tokens: 1
partitioner: org.apache.cassandra.dht.Murmur3Partitioner
commitlog_sync: periodic
commitlog_sync_period: 10000ms
seed_provider:
  - class_name: org.apache.cassandra.locator.SimpleSeedProvider
    parameters:
      - seeds: "127.0.0.1:$STORAGE_PORT"
listen_address: 127.0.0.1
rpc_address: 127.0.0.1
storage_port: $STORAGE_PORT
native_transport_port: $PORT
start_native_transport: true
endpoint_snitch: SimpleSnitch
data_file_directories: [$RUN/data]
commitlog_directory: $RUN/commitlog
saved_caches_directory: $RUN/saved_caches
hints_directory: $RUN/hints
cdc_raw_directory: $RUN/cdc_raw
authenticator: $authenticator
authorizer: $authorizer
batch_size_fail_threshold: ${CASSANDRA_BATCH_FAIL_THRESHOLD:-50KiB}
EOF
  echo "$auth" >"$RUN/auth"
  cat >"$RUN/logback.xml" <<EOF
<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>$RUN/system.log</file>
    <encoder><pattern>%-5level %date %msg%n</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
EOF
}

# What Cassandra's own jvm17-server.options opens to run on Java 17.
java_opts() {
  local opens=(java.base/java.lang.module java.base/jdk.internal.loader java.base/jdk.internal.ref
    java.base/jdk.internal.reflect java.base/jdk.internal.math java.base/jdk.internal.module
    java.base/jdk.internal.util.jar jdk.management/com.sun.management.internal java.base/sun.nio.ch
    java.base/java.io java.base/java.nio java.base/java.util.concurrent java.base/java.util
    java.base/java.util.concurrent.atomic java.base/java.lang java.base/java.math
    java.base/java.lang.reflect java.base/java.net)
  local exports=(java.base/jdk.internal.misc java.base/jdk.internal.ref java.base/sun.nio.ch
    java.management.rmi/com.sun.jmx.remote.internal.rmi java.rmi/sun.rmi.registry
    java.rmi/sun.rmi.server java.sql/java.sql)
  echo "-Xms$HEAP -Xmx$HEAP -XX:+UseG1GC -Djava.net.preferIPv4Stack=true"
  echo "-Dcassandra.config=file://$RUN/cassandra.yaml -Dlogback.configurationFile=file://$RUN/logback.xml"
  echo "-Dcassandra.storagedir=$RUN -Dcassandra.jmx.local.port=$JMX_PORT"
  echo "-Dcassandra.skip_wait_for_gossip_to_settle=0 -Dcassandra-foreground=yes"
  local m
  for m in "${exports[@]}"; do echo "--add-exports $m=ALL-UNNAMED"; done
  for m in "${opens[@]}"; do echo "--add-opens $m=ALL-UNNAMED"; done
}

start() {
  local auth=no
  [[ "${1:-}" == --auth ]] && auth=yes
  if pid=$(running_pid); then
    echo "already running (pid $pid) on 127.0.0.1:$PORT" >&2
    return 0
  fi
  if cql_answers; then
    echo "something else already listens on 127.0.0.1:$PORT" >&2
    return 1
  fi
  resolve
  configure "$auth"
  launch
  echo "running 127.0.0.1:$PORT (auth: $auth)"
}

# Starts the node configured in $RUN and waits for CQL.
launch() {
  # shellcheck disable=SC2046 # one option per word
  java $(java_opts) -cp "$LIB/*" org.apache.cassandra.service.CassandraDaemon \
    >>"$RUN/stdout.log" 2>&1 &
  echo $! >"$PIDFILE"
  local deadline=$((SECONDS + START_TIMEOUT_SECS))
  until cql_answers; do
    if ! running_pid >/dev/null; then
      echo "Cassandra exited during start-up; last lines of $RUN/system.log:" >&2
      tail -n 20 "$RUN/system.log" "$RUN/stdout.log" >&2 || true
      return 1
    fi
    if ((SECONDS > deadline)); then
      echo "CQL did not answer within ${START_TIMEOUT_SECS} s; stopping" >&2
      stop
      return 1
    fi
    sleep 1
  done
}

# Stops the node and keeps its data, then starts it again as it was configured.
restart() {
  if [[ ! -f "$RUN/cassandra.yaml" ]]; then
    echo "not configured: run '$0 start' first" >&2
    return 1
  fi
  halt
  launch
  echo "running 127.0.0.1:$PORT (auth: $(cat "$RUN/auth"))"
}

stop() {
  halt
  rm -rf "$RUN"
  echo stopped
}

# Stops the process (SIGTERM, SIGKILL after 60 s); the data stays.
halt() {
  pid_stop "$PIDFILE" 60
}

status() {
  if pid=$(running_pid) && cql_answers; then
    echo "running 127.0.0.1:$PORT (pid $pid)"
  else
    echo stopped
    return 1
  fi
}

case "${1:-}" in
  start) shift; start "$@" ;;
  stop) stop ;;
  restart) restart ;;
  status) status ;;
  *) echo "usage: $0 start [--auth] | stop | restart | status" >&2; exit 2 ;;
esac
