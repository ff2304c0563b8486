#!/usr/bin/env bash
# Installs the tools the packaging tests need (crates/server/tests/deploy.rs) and prints the
# environment to export, so:
#
#   eval "$(scripts/deploy-tools.sh)"
#   cargo test -p kairosdb-server --test deploy
#
# * promtool, from Debian's `prometheus` package: `apt-get download` + `dpkg-deb -x` into the
#   git-ignored .cache/deploy-tools/ (only the binary is kept; no service is installed or
#   started, no root needed once the apt lists exist);
# * helm, built from its Go module (`go install helm.sh/helm/v4/cmd/helm@$HELM_VERSION`) into
#   .cache/deploy-tools/bin: about 10 minutes on 2 CPUs the first time on a machine, seconds
#   afterwards (Go's module and build caches in $HOME are reused, also by a fresh clone).
# * tiltfile-check, deploy/tilt/check: the Tiltfile run as Starlark (go.starlark.net, the
#   interpreter Tilt embeds) with Tilt's functions recorded instead of executed; `go build`
#   every time (a no-op from Go's build cache when nothing changed).
#
# Each tool is reused when already there at the pinned version. Progress goes to stderr; stdout
# is only `export NAME=VALUE` lines:
#   KAIROSDB_TEST_PROMTOOL  path of promtool
#   KAIROSDB_TEST_HELM      path of helm
#   KAIROSDB_TEST_TILTFILE_CHECK  path of tiltfile-check
# Not here: hadolint and `docker compose config` (no registry serves them; the Dockerfile and
# the compose file are checked by the test's own parsers), Docker itself.
set -euo pipefail
cd "$(dirname "$0")/.."

HELM_VERSION="v4.3.2"
PROMETHEUS_DEB_VERSION="2.42.0+ds-5+deb12u1"
DIR="$PWD/.cache/deploy-tools"
BIN="$DIR/bin"
mkdir -p "$BIN"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# --- promtool ---------------------------------------------------------------------------
promtool_version() { "$1" --version 2>/dev/null | head -n 1; }
if [ ! -x "$BIN/promtool" ] || [ "$(cat "$DIR/promtool.version" 2>/dev/null)" != "$PROMETHEUS_DEB_VERSION" ]; then
  echo "deploy-tools: fetching promtool from Debian's prometheus $PROMETHEUS_DEB_VERSION" >&2
  work="$(mktemp -d)"
  # apt-get download needs the package lists; update them once if the package is unknown.
  if ! apt-cache show "prometheus=$PROMETHEUS_DEB_VERSION" >/dev/null 2>&1; then
    $SUDO apt-get update >&2
  fi
  (cd "$work" && apt-get download "prometheus=$PROMETHEUS_DEB_VERSION" >&2)
  dpkg-deb -x "$work"/prometheus_*.deb "$work/root"
  install -m 0755 "$work/root/usr/bin/promtool" "$BIN/promtool"
  echo "$PROMETHEUS_DEB_VERSION" >"$DIR/promtool.version"
  rm -rf "$work"
fi
echo "deploy-tools: $(promtool_version "$BIN/promtool")" >&2

# --- helm -------------------------------------------------------------------------------
GO="$(command -v go || echo /usr/local/go/bin/go)"
if [ ! -x "$BIN/helm" ] || [ "$(cat "$DIR/helm.version" 2>/dev/null)" != "$HELM_VERSION" ]; then
  [ -x "$GO" ] || { echo "deploy-tools: go is missing (needed to build helm)" >&2; exit 1; }
  echo "deploy-tools: building helm $HELM_VERSION with $("$GO" version) (a few minutes the first time)" >&2
  # Go's own module and build caches (in $HOME) are kept: CI runs in a fresh clone, whose
  # .cache/ is empty, and a rebuild from a warm Go cache only links (seconds, not minutes).
  GOBIN="$BIN" GOFLAGS=-modcacherw CGO_ENABLED=0 "$GO" install "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" >&2
  echo "$HELM_VERSION" >"$DIR/helm.version"
fi
echo "deploy-tools: helm $("$BIN/helm" version --short 2>/dev/null)" >&2

# --- tiltfile-check ----------------------------------------------------------------------
(cd deploy/tilt/check && CGO_ENABLED=0 "$GO" build -o "$BIN/tiltfile-check" .) >&2

echo "export KAIROSDB_TEST_PROMTOOL=$BIN/promtool"
echo "export KAIROSDB_TEST_HELM=$BIN/helm"
echo "export KAIROSDB_TEST_TILTFILE_CHECK=$BIN/tiltfile-check"
