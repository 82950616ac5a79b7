#!/usr/bin/env bash
# Benchmarks: prints figures (list latency at 100,000 broadcasts on SQLite and PostgreSQL, WASM
# size). Builds release first so the figures mean something.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_build_tools
if [ -z "${TEST_DATABASE_URL:-}" ] && (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
fi
cargo leptos build --release
cargo run --release --features ssr --bin herald-bench
