#!/usr/bin/env bash
# README command 1: install what is missing, build (release), and serve Herald on
# http://127.0.0.1:3000 with an SQLite database under ./data, with the demo data (`--demo`:
# demo accounts, customers and broadcasts, loaded into an empty database only).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ensure_build_tools
say "Building Herald (release)"
cargo leptos build --release --split
print_wasm_size
node "$ROOT/scripts/wasm-sizes.js" "$ROOT/target/site/pkg" "$WASM_BUDGET_BYTES" || true
say "Starting Herald"
exec "$CARGO_TARGET_DIR/release/herald" --demo "$@"
