#!/usr/bin/env bash
# Refreshes the screenshots of docs/ui.md: runs the web UI's browser tests with
# UI_SCREENSHOTS=docs/ui, so each test saves the PNGs of the views it passes through
# (light and dark, laptop and phone widths).
#
#   scripts/ui-screenshots.sh
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p docs/ui
KAIROSDB_TEST_UI="$(scripts/ui-deps.sh)"
export KAIROSDB_TEST_UI
export UI_SCREENSHOTS="$PWD/docs/ui"
cargo test -p kairosdb-server --test ui
ls -l docs/ui
