#!/usr/bin/env bash
# README command 2: every test. Formatting and lints, Rust unit and integration tests on SQLite
# and PostgreSQL, the release browser bundle against its size budget, then the Playwright suite
# in headless Chromium against the real binary.
# Outside CI, a missing PostgreSQL or browser is skipped with a note; with CI=true it fails.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

skipped=()
started=$(date +%s)

ensure_build_tools

say "cargo fmt --check"
cargo fmt --all -- --check

# cargo-leptos debug builds add `--cfg erase_components` to RUSTFLAGS; cargo and clippy get the
# same flags so that all of them share one build cache (cargo-leptos itself is run without ours).
user_rustflags="${RUSTFLAGS:-}"
export RUSTFLAGS="${user_rustflags:+$user_rustflags }--cfg erase_components"

say "cargo clippy (server and browser builds)"
cargo clippy --all-targets --features ssr -- -D warnings
cargo clippy --lib --target wasm32-unknown-unknown --features hydrate -- -D warnings

# PostgreSQL: TEST_DATABASE_URL, else the local server on the standard port.
pg_ready() { pg_isready -q -h "$1" -p "$2" 2>/dev/null || (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }
if [ -z "${TEST_DATABASE_URL:-}" ]; then
  if ! pg_ready 127.0.0.1 5432 && is_root && command -v pg_ctlcluster >/dev/null; then
    say "Starting the local PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
    sleep 2
  fi
  if pg_ready 127.0.0.1 5432; then
    export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
  elif is_ci; then
    echo "CI=true: no PostgreSQL at 127.0.0.1:5432 and TEST_DATABASE_URL is not set" >&2
    exit 1
  else
    skipped+=("PostgreSQL tests: no server at 127.0.0.1:5432 (set TEST_DATABASE_URL)")
  fi
fi

# An S3-compatible server for the shared-files tests: moto's, from PyPI, on a free port.
if [ -z "${HERALD_TEST_S3:-}" ]; then
  moto_bin="$HERALD_CACHE/moto/bin/moto_server"
  if ! [ -x "$moto_bin" ]; then
    say "Installing moto's S3 server (PyPI, once)"
    python3 -m venv "$HERALD_CACHE/moto" >/dev/null 2>&1 \
      && "$HERALD_CACHE/moto/bin/pip" install --quiet 'moto[server]' >/dev/null 2>&1 || true
  fi
  if [ -x "$moto_bin" ]; then
    moto_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    "$moto_bin" -H 127.0.0.1 -p "$moto_port" >/dev/null 2>&1 &
    moto_pid=$!
    trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
    for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$moto_port") 2>/dev/null && break; sleep 0.2; done
    export HERALD_TEST_S3="http://127.0.0.1:$moto_port"
  elif is_ci; then
    echo "CI=true: moto's S3 server could not be installed (python3 -m venv, pip install 'moto[server]')" >&2
    exit 1
  else
    skipped+=("S3 tests: moto_server could not be installed (pip install 'moto[server]', or set HERALD_TEST_S3)")
  fi
fi

say "Rust tests (SQLite${TEST_DATABASE_URL:+ and PostgreSQL})"
# Built first, then run under a time limit: a test that hangs fails the run within minutes
# instead of holding CI until its own limit (a warm run takes about a minute and a half).
cargo test --features ssr --no-run
rust_test_limit="${HERALD_TEST_TIMEOUT:-900}"
set +e
timeout --kill-after=10 "$rust_test_limit" cargo test --features ssr
rust_status=$?
set -e
if [ "$rust_status" = 124 ] || [ "$rust_status" = 137 ]; then
  echo "The Rust tests did not finish within ${rust_test_limit} s: a test hangs (see 'has been running for over 60 seconds' above)." >&2
fi
[ "$rust_status" = 0 ] || exit "$rust_status"

say "Release browser bundle, within its size budget"
RUSTFLAGS="$user_rustflags" cargo leptos build --release --split --frontend-only
check_wasm_budget

say "Building Herald for the end-to-end tests"
RUSTFLAGS="$user_rustflags" cargo leptos build --split

run_e2e=1
if ! [ -x /usr/bin/chromium ]; then
  if is_root; then
    say "Installing Chromium (Debian)"
    apt_install chromium || true
  fi
  if ! [ -x /usr/bin/chromium ]; then
    if is_ci; then
      echo "CI=true: /usr/bin/chromium is missing and could not be installed" >&2
      exit 1
    fi
    skipped+=("end-to-end tests: no /usr/bin/chromium (apt-get install chromium)")
    run_e2e=0
  fi
fi

if [ "$run_e2e" = 1 ]; then
  say "End-to-end tests (Playwright, headless Chromium)"
  (cd end2end && { [ -d node_modules/@playwright/test ] && [ node_modules/.package-lock.json -nt package-lock.json ]; } || npm ci --no-audit --no-fund --silent)
  e2e_data="$(mktemp -d)"
  trap 'rm -rf "$e2e_data"; [ -n "${moto_pid:-}" ] && kill "$moto_pid" 2>/dev/null || true' EXIT
  # herald-fake (the strict Cloud API fake) is built with the Rust tests above.
  export HERALD_BIN="$CARGO_TARGET_DIR/debug/herald" HERALD_FAKE="$CARGO_TARGET_DIR/debug/herald-fake" HERALD_E2E_DATA="$e2e_data"
  set +e
  (cd end2end && npx playwright test)
  e2e_status=$?
  set -e
  node -e '
    const r = require("./end2end/playwright-report/results.json").stats;
    console.log(`e2e: ${r.expected + r.flaky} passed (${r.flaky} of them on a second try: flaky), ${r.unexpected} failed, ${r.skipped} skipped`);
  ' || true
  [ "$e2e_status" = 0 ] || exit "$e2e_status"
fi

echo "All tests finished in $(( $(date +%s) - started )) s."
if [ "${#skipped[@]}" -gt 0 ]; then
  echo "SKIPPED (not in CI):"
  printf '  - %s\n' "${skipped[@]}"
fi
