#!/usr/bin/env bash
# The real (Java) KairosDB beside ours, on the same Cassandra keyspace (issue 17), for the
# side-by-side tests (`crates/server/tests/side_by_side.rs`).
#
#   scripts/kairosdb-java.sh start    resolve (once), configure, start, wait for /api/v1/version
#   scripts/kairosdb-java.sh stop     stop it and delete its run directory
#   scripts/kairosdb-java.sh status   "running <url>" or "stopped" (exit 1)
#   scripts/kairosdb-java.sh defaults KairosDB's own default configuration files, 1.2's
#                                     kairosdb.properties and 1.3's kairosdb.conf, taken
#                                     from the released jars into a cached directory it
#                                     prints (for the migrate-config test)
#
# KairosDB `org.kairosdb:kairosdb:$KAIROSDB_JAVA_VERSION` (default 1.3.0-1, the last release
# on Maven Central; `io.inscopemetrics.kairosdb:kairosdb` is not served by the Maven
# repository reachable here) and its runtime dependencies are resolved with Maven into
# `.cache/kairosdb-java/lib-<version>` (git-ignored) and reused on the next start.
#
# It runs with the CQL datastore (`org.kairosdb.datastore.cassandra.CassandraModule`) and
# KairosDB 1.3's `datastore.cassandra.write_cluster` block pointing at
# 127.0.0.1:$CASSANDRA_PORT (default 19042, as scripts/cassandra.sh), keyspace
# $KAIROSDB_JAVA_KEYSPACE (default kairosdb). HTTP on 127.0.0.1:$KAIROSDB_JAVA_PORT (default
# 18080), telnet on 127.0.0.1:$KAIROSDB_JAVA_TELNET_PORT (default 14242). Its config, log,
# queue and caches live in `.cache/kairosdb-java/run`, which `stop` deletes.
# Tests find it through `KAIROSDB_TEST_JAVA=http://127.0.0.1:$KAIROSDB_JAVA_PORT`.
# `KAIROSDB_JAVA_PROFILE=bench` keeps the jar's queue, thread and connection defaults
# (scripts/bench-vs-java.sh); the default `test` profile flushes small batches quickly.
#
# Not here: Cassandra (scripts/cassandra.sh), running the tests.
set -euo pipefail
# shellcheck source=lib/java-service.sh
source "$(dirname "$0")/lib/java-service.sh"

VERSION="${KAIROSDB_JAVA_VERSION:-1.3.0-1}"
HTTP_PORT="${KAIROSDB_JAVA_PORT:-18080}"
TELNET_PORT="${KAIROSDB_JAVA_TELNET_PORT:-14242}"
KEYSPACE="${KAIROSDB_JAVA_KEYSPACE:-kairosdb}"
CASSANDRA_PORT="${CASSANDRA_PORT:-19042}"
HEAP="${KAIROSDB_JAVA_HEAP:-256m}"
PROFILE="${KAIROSDB_JAVA_PROFILE:-test}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CACHE="$ROOT/.cache/kairosdb-java"
LIB="$CACHE/lib-$VERSION"
RUN="$CACHE/run"
PIDFILE="$RUN/kairosdb.pid"
START_TIMEOUT_SECS="${KAIROSDB_JAVA_START_TIMEOUT_SECS:-120}"
URL="http://127.0.0.1:$HTTP_PORT"

version_answers() {
  curl -sf -m 2 "$URL/api/v1/version" >/dev/null 2>&1
}

running_pid() {
  pid_alive "$PIDFILE"
}

resolve() {
  if [[ -f "$LIB/kairosdb-$VERSION.jar" && -f "$LIB/jersey-guice-1.19.4.jar" &&
    -f "$LIB/jaxb-core-2.3.0.jar" ]]; then
    return
  fi
  echo "resolving KairosDB $VERSION from Maven Central into $LIB" >&2
  maven_resolve "$LIB" "$CACHE" kairosdb-java-runtime "
    <dependency>
      <groupId>org.kairosdb</groupId>
      <artifactId>kairosdb</artifactId>
      <version>$VERSION</version>
    </dependency>
    <!-- Missing from the published pom, present in KairosDB's tarball (Guice wiring of the
         REST servlets): without it Main fails with NoClassDefFoundError JerseyServletModule. -->
    <dependency>
      <groupId>com.sun.jersey.contribs</groupId>
      <artifactId>jersey-guice</artifactId>
      <version>1.19.4</version>
    </dependency>
    <!-- Java 9+ has no JAXB; the pom brings jaxb-impl 2.3.0, which needs its jaxb-core
         (else Jersey fails with ClassNotFoundException ...annotation.AnnotationReader). -->
    <dependency>
      <groupId>com.sun.xml.bind</groupId>
      <artifactId>jaxb-core</artifactId>
      <version>2.3.0</version>
    </dependency>"
}

# Settings that differ between the tests and a benchmark (KAIROSDB_JAVA_PROFILE=bench keeps
# the jar's defaults: the file queue, batches of 200 after at least 100 points or 0.5 s,
# 10 ingest threads, 5 to 100 connections).
tuning() {
  [[ "$PROFILE" == bench ]] && return 0
  case "$1" in
    connections)
      echo "      connections_per_host: { local.core: 1, local.max: 4, remote.core: 1, remote.max: 2 }" ;;
    # In memory, so nothing but the run directory is written; small batches flushed
    # after 100 ms so tests that poll see writes quickly.
    queue)
      echo '    class: "org.kairosdb.core.queue.MemoryQueueProcessor"'
      echo "    batch_size: 200, min_batch_size: 1, min_batch_wait: 100, memory_queue_size: 100000" ;;
    ingest) echo "  ingest_executor.thread_count: 2" ;;
  esac
}

# KairosDB reads the jar's own kairosdb.conf first, then this file over it (HOCON, by the
# `.conf` extension). Key names are those of the jar's kairosdb.conf for 1.3.0-1.
configure() {
  rm -rf "$RUN"
  mkdir -p "$RUN/cache" "$RUN/queue" "$RUN/tmp"
  cat >"$RUN/kairosdb.conf" <<EOF
kairosdb: {
  telnetserver: { port: $TELNET_PORT, address: "127.0.0.1" }
  jetty: { port: $HTTP_PORT, address: "127.0.0.1", static_web_root: "$RUN/webroot" }

  # Its own metrics every minute would add kairosdb.* names to the shared keyspace.
  service.reporter: "<disabled>"

  service.datastore: "org.kairosdb.datastore.cassandra.CassandraModule"
  # The roll-up API, so the side-by-side tests can see tasks either server stores.
  service.rollups: "org.kairosdb.rollup.RollUpModule"
  rollups.server_assignment.check_update_delay_millseconds: 10000
  datastore.cassandra: {
    # Cassandra 4+ refuses COMPACT STORAGE (the jar's default for data_points); the
    # CQL columns are the same without it (docs/cassandra.md, spec §14.24).
    table_create_with.data_points: ""
    start_async: false
    write_cluster: {
      name: "write_cluster"
      keyspace: "$KEYSPACE"
      replication: "{'class': 'SimpleStrategy','replication_factor' : 1}"
      cql_host_list: ["127.0.0.1:$CASSANDRA_PORT"]
      read_consistency_level: "ONE"
      # One node: QUORUM is ONE; kept at the jar's default.
      write_consistency_level: "QUORUM"
      protocol_compression: "NONE"
$(tuning connections)
    }
    # No read_clusters: one cluster, the write cluster, answers queries.
  }

  queue_processor: {
    queue_path: "$RUN/queue"
$(tuning queue)
  }
$(tuning ingest)

  query_cache.cache_dir: "$RUN/cache"
}
EOF
  cat >"$RUN/logback.xml" <<EOF
<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>$RUN/kairosdb.log</file>
    <encoder><pattern>%-5level %date [%thread] %logger{36} %msg%n</pattern></encoder>
  </appender>
  <logger name="com.datastax" level="WARN"/>
  <logger name="io.netty" level="WARN"/>
  <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
EOF
}

java_opts() {
  echo "-Xms$HEAP -Xmx$HEAP -XX:+UseSerialGC -Djava.net.preferIPv4Stack=true"
  # A query without time_zone uses the JVM's zone (spec §14.3); ours uses UTC.
  echo "-Duser.timezone=UTC"
  echo "-Djava.io.tmpdir=$RUN/tmp -Dlogback.configurationFile=file://$RUN/logback.xml"
  # Guice 4.2 and the Cassandra driver reflect into the JDK; Java 17 needs these open.
  local m
  for m in java.base/java.lang java.base/java.lang.reflect java.base/java.util \
    java.base/java.io java.base/java.nio java.base/sun.nio.ch java.base/java.net; do
    echo "--add-opens $m=ALL-UNNAMED"
  done
}

start() {
  if pid=$(running_pid); then
    echo "already running (pid $pid) at $URL" >&2
    return 0
  fi
  local port
  for port in "$HTTP_PORT" "$TELNET_PORT"; do
    if port_answers "$port"; then
      echo "something else already listens on 127.0.0.1:$port" >&2
      return 1
    fi
  done
  if ! port_answers "$CASSANDRA_PORT"; then
    echo "no Cassandra on 127.0.0.1:$CASSANDRA_PORT (scripts/cassandra.sh start)" >&2
    return 1
  fi
  resolve
  configure
  # KairosDB lets KAIROSDB_<KEY> variables override its settings: none of the caller's.
  local unset_vars=() v
  for v in $(compgen -e); do
    [[ "$v" == KAIROSDB_* ]] && unset_vars+=(-u "$v")
  done
  # It writes kairosdb_guid.properties into the working directory.
  # shellcheck disable=SC2046 # one option per word
  (cd "$RUN" && exec env "${unset_vars[@]}" java $(java_opts) -cp "$LIB/*" \
    org.kairosdb.core.Main -c run -p "$RUN/kairosdb.conf" >"$RUN/stdout.log" 2>&1) &
  echo $! >"$PIDFILE"
  local deadline=$((SECONDS + START_TIMEOUT_SECS))
  until version_answers; do
    if ! running_pid >/dev/null; then
      echo "KairosDB exited during start-up; last lines of its logs:" >&2
      tail -n 30 "$RUN/kairosdb.log" "$RUN/stdout.log" >&2 || true
      return 1
    fi
    # Main logs this and, with non-daemon threads left, may not exit.
    if grep -q "KairosDB service is now down" "$RUN/kairosdb.log" 2>/dev/null; then
      echo "KairosDB failed to start; last lines of its logs:" >&2
      tail -n 30 "$RUN/kairosdb.log" "$RUN/stdout.log" >&2 || true
      stop
      return 1
    fi
    if ((SECONDS > deadline)); then
      echo "$URL/api/v1/version did not answer within ${START_TIMEOUT_SECS} s; stopping" >&2
      tail -n 30 "$RUN/kairosdb.log" "$RUN/stdout.log" >&2 || true
      stop
      return 1
    fi
    sleep 1
  done
  echo "running $URL (telnet 127.0.0.1:$TELNET_PORT, keyspace $KEYSPACE on 127.0.0.1:$CASSANDRA_PORT)"
}

stop() {
  pid_stop "$PIDFILE" 30
  rm -rf "$RUN"
  echo stopped
}

status() {
  if pid=$(running_pid) && version_answers; then
    echo "running $URL (pid $pid)"
  else
    echo stopped
    return 1
  fi
}

# jar_entry JAR NAME: one file of a jar on stdout (Python's zipfile: no unzip needed).
jar_entry() {
  python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))' "$1" "$2"
}

defaults() {
  local dir="$CACHE/defaults" old=1.2.1-1
  if [[ ! -f "$dir/kairosdb-$old.properties" || ! -f "$dir/kairosdb-$VERSION.conf" ]]; then
    resolve
    mkdir -p "$dir"
    mvn -q -B dependency:copy -Dartifact="org.kairosdb:kairosdb:$old" \
      -DoutputDirectory="$dir" -Dmdep.overWriteReleases=true >&2
    jar_entry "$dir/kairosdb-$old.jar" kairosdb.properties >"$dir/kairosdb-$old.properties"
    jar_entry "$LIB/kairosdb-$VERSION.jar" kairosdb.conf >"$dir/kairosdb-$VERSION.conf"
    rm -f "$dir/kairosdb-$old.jar"
  fi
  echo "$dir"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  defaults) defaults ;;
  *) echo "usage: $0 start | stop | status | defaults" >&2; exit 2 ;;
esac
