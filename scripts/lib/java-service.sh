# Sourced by scripts/cassandra.sh and scripts/kairosdb-java.sh: a Java service whose jars
# come from Maven Central into the git-ignored .cache/ and whose process is tracked by a
# pid file. Only functions; nothing runs when this is sourced.

# maven_resolve LIB WORK NAME DEPENDENCIES: resolves the runtime closure of DEPENDENCIES
# (<dependency> elements) with Maven into the directory LIB, through a pom in WORK. A
# half-resolved LIB from an interrupted run is replaced, never nested.
maven_resolve() {
  local lib="$1" work="$2" name="$3" deps="$4"
  mkdir -p "$work"
  cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>kairosdb-rs.test</groupId>
  <artifactId>$name</artifactId>
  <version>1</version>
  <dependencies>
$deps
  </dependencies>
</project>
POM
  rm -rf "$lib.partial"
  mvn -q -B -f "$work/pom.xml" dependency:copy-dependencies \
    -DoutputDirectory="$lib.partial" -DincludeScope=runtime
  rm -rf "$lib"
  mv "$lib.partial" "$lib"
}

# pid_alive PIDFILE: prints the pid and succeeds while that process runs.
pid_alive() {
  [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null && cat "$1"
}

# pid_stop PIDFILE GRACE_SECS: SIGTERM, SIGKILL after GRACE_SECS, and waits for the exit.
pid_stop() {
  local pid
  if pid=$(pid_alive "$1"); then
    kill "$pid"
    local deadline=$((SECONDS + $2))
    while kill -0 "$pid" 2>/dev/null; do
      if ((SECONDS > deadline)); then
        kill -9 "$pid" 2>/dev/null || true
      fi
      sleep 1
    done
  fi
}

# port_answers PORT: something accepts connections on 127.0.0.1:PORT.
port_answers() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}
