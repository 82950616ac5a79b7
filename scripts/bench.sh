#!/usr/bin/env bash
# Benchmarks: prints figures (list latency at 100,000 broadcasts on SQLite and PostgreSQL, WASM
# size). Builds release first so the figures mean something.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_build_tools
if [ -z "${TEST_DATABASE_URL:-}" ] && (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
  export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
fi
cargo leptos build --release --split
print_wasm_size
node "$ROOT/scripts/wasm-sizes.js" "$ROOT/target/site/pkg" "$WASM_BUDGET_BYTES" || true
cargo run --release --features ssr --bin herald-bench

# CSV import of 1,000,000 customers (a generated file, ~80 MB): time and peak memory, first
# into an empty database (all created), then the same file again (all matched and updated).
bench_dir="$(mktemp -d)"
trap 'rm -rf "$bench_dir"' EXIT
csv="$bench_dir/customers.csv"
awk 'BEGIN {
  print "name,phone,email,tags,robot groups,time zone";
  split("VIP,Newsletter,Wholesale,Churn risk,Beta", tags, ",");
  for (i = 0; i < 1000000; i++) {
    printf "Customer %d,+1666%07d,c%d@example.net,%s;%s,Support-bot,Europe/Berlin\n", i, i, i, tags[i % 5 + 1], tags[(i * 7) % 5 + 1];
  }
}' > "$csv"
echo "Import file: $(( $(stat -c %s "$csv") / 1024 / 1024 )) MB, 1,000,000 rows"
bin="$CARGO_TARGET_DIR/release/herald"
import_once() { # label, database url
  for pass in first again; do
    /usr/bin/time -f "  peak RSS %M KB" env DATABASE_URL="$2" HERALD_DEMO_DATA=false \
      "$bin" import-customers "$csv" 2>&1 | sed "s/^/import $1 ($pass): /"
  done
}
import_once sqlite "sqlite://$bench_dir/import.db"
if [ -n "${TEST_DATABASE_URL:-}" ]; then
  psql -q "$TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS herald_import_bench WITH (FORCE)" -c "CREATE DATABASE herald_import_bench"
  import_once postgres "${TEST_DATABASE_URL%/*}/herald_import_bench"
  psql -q "$TEST_DATABASE_URL" -c "DROP DATABASE herald_import_bench WITH (FORCE)"
fi
