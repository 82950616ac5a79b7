#!/usr/bin/env bash
# Developer shortcut: rebuild and run only the Playwright suite (arguments go to Playwright).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cargo leptos build --split
e2e_data="$(mktemp -d)"; trap 'rm -rf "$e2e_data"' EXIT
export HERALD_BIN="$CARGO_TARGET_DIR/debug/herald" HERALD_E2E_DATA="$e2e_data"
cd end2end && npx playwright test "$@"
