#!/usr/bin/env bash
# Installs what the browser tests of the web UI need (crates/server/tests/ui.rs) and prints
# the directory to export as KAIROSDB_TEST_UI:
#
#   export KAIROSDB_TEST_UI="$(scripts/ui-deps.sh)"
#
# * Debian's chromium (apt-get), when /usr/bin/chromium is missing;
# * playwright-core at a pinned version from the npm registry, into the git-ignored
#   .cache/ui-test/ (only the driver library: it downloads no browser of its own).
# Progress goes to stderr; stdout is only the directory.
set -euo pipefail
cd "$(dirname "$0")/.."

PLAYWRIGHT_CORE_VERSION="1.65.2"
DIR="$PWD/.cache/ui-test"

if [ ! -x /usr/bin/chromium ]; then
  echo "ui-deps: installing Debian's chromium" >&2
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends chromium >&2
fi
command -v node >/dev/null || { echo "ui-deps: node is missing (apt-get install nodejs npm)" >&2; exit 1; }

installed="$(node -p "require('$DIR/node_modules/playwright-core/package.json').version" 2>/dev/null || true)"
if [ "$installed" != "$PLAYWRIGHT_CORE_VERSION" ]; then
  echo "ui-deps: installing playwright-core@$PLAYWRIGHT_CORE_VERSION into $DIR" >&2
  mkdir -p "$DIR"
  npm install --prefix "$DIR" --no-audit --no-fund --silent "playwright-core@$PLAYWRIGHT_CORE_VERSION" >&2
fi
echo "$DIR"
