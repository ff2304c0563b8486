#!/usr/bin/env bash
# A local Redis for development and the tests of the Redis cache (issue 20), from Debian.
#
#   scripts/redis.sh install   install Debian's redis-server if missing; print its path
#   scripts/redis.sh start     start one on 127.0.0.1:$REDIS_PORT; print REDIS_URI=...
#   scripts/redis.sh stop      stop it and delete its data
#   scripts/redis.sh status    "running <uri>" or "stopped" (exit 1)
#
# The server listens on loopback only (port $REDIS_PORT, default 16379), keeps nothing on
# disk (no RDB snapshots, no AOF: it is a cache), evicts only keys with a lifetime when full
# (`volatile-lru`: cached answers, never the generation counters) and runs from `$REDIS_RUN_DIR` (default
# `.cache/redis`, git-ignored), which `stop` deletes. Point the server at it with the
# printed REDIS_URI (or KAIROSDB_REDIS_URI). The live suite (crates/server/tests/redis.rs)
# starts, stops and restarts Redis servers of its own from the binary `install` prints
# (`KAIROSDB_TEST_REDIS`), so it can take Redis away in the middle of a load.
#
# Not here: running the tests (scripts/test.sh does).
set -euo pipefail

PORT="${REDIS_PORT:-16379}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
RUN="${REDIS_RUN_DIR:-$ROOT/.cache/redis}"
PIDFILE="$RUN/redis.pid"
URI="redis://127.0.0.1:$PORT/0"

install() {
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "installing Debian's redis-server" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q redis-server >&2 ||
      { $SUDO apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q redis-server >&2; }
  fi
  command -v redis-server
}

running() {
  [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null
}

case "${1:-}" in
  install)
    install
    ;;
  start)
    server="$(install)"
    if running; then
      echo "REDIS_URI=$URI"
      exit 0
    fi
    mkdir -p "$RUN"
    "$server" --bind 127.0.0.1 --port "$PORT" --dir "$RUN" --save "" --appendonly no \
      --maxmemory 256mb --maxmemory-policy volatile-lru \
      --daemonize yes --pidfile "$PIDFILE" --logfile "$RUN/redis.log"
    for _ in $(seq 1 100); do
      if redis-cli -p "$PORT" ping >/dev/null 2>&1; then
        echo "REDIS_URI=$URI"
        exit 0
      fi
      sleep 0.1
    done
    echo "Redis did not answer on port $PORT; see $RUN/redis.log" >&2
    exit 1
    ;;
  stop)
    if running; then
      kill "$(cat "$PIDFILE")"
      for _ in $(seq 1 50); do running || break; sleep 0.1; done
    fi
    rm -rf "$RUN"
    ;;
  status)
    if running; then echo "running $URI"; else echo "stopped"; exit 1; fi
    ;;
  *)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
