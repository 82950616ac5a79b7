# Shared by scripts/run.sh and scripts/test.sh: installs what is missing, from the package
# registries only (crates.io, npm, Debian), never from GitHub downloads.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# Tools and compiled dependencies live outside the checkout so fresh clones build warm.
HERALD_CACHE="${HERALD_CACHE:-$HOME/.cache/herald}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HERALD_CACHE/target}"
TOOLS="$HERALD_CACHE/tools"
export PATH="$TOOLS/node_modules/.bin:$HOME/.cargo/bin:$PATH"

CARGO_LEPTOS_VERSION="0.3.11"
BINARYEN_VERSION="132.0.0"

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }
is_ci() { [ "${CI:-}" = "true" ]; }
is_root() { [ "$(id -u)" = "0" ]; }

apt_install() {
  if ! is_root; then
    echo "Please install: $* (e.g. sudo apt-get install -y $*)" >&2
    return 1
  fi
  if [ -z "${HERALD_APT_UPDATED:-}" ]; then
    apt-get update -qq >/dev/null
    HERALD_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# The wasm-bindgen version Cargo.lock resolved; the CLI must match it exactly.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' "$ROOT/Cargo.lock"
}

ensure_build_tools() {
  command -v cargo >/dev/null || { echo "Install Rust with rustup first: https://rustup.rs" >&2; exit 1; }
  if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
    say "Adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi
  if ! command -v cc >/dev/null; then
    say "Installing a C compiler (some crates build C)"
    apt_install build-essential pkg-config
  fi
  if ! cargo leptos --version 2>/dev/null | grep -q "$CARGO_LEPTOS_VERSION"; then
    say "Installing cargo-leptos $CARGO_LEPTOS_VERSION (once; about 20 minutes on 2 cores)"
    cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --ignore-rust-version
  fi
  local wb
  wb="$(wasm_bindgen_version)"
  if ! wasm-bindgen --version 2>/dev/null | grep -q " $wb\$"; then
    say "Installing wasm-bindgen-cli $wb (matches Cargo.lock)"
    cargo install wasm-bindgen-cli --version "$wb" --force
  fi
  ensure_node
  if ! [ -x "$TOOLS/node_modules/.bin/wasm-opt" ]; then
    # npm's binaryen ships a current wasm-opt; Debian's (v108) builds bundles that fail to hydrate.
    say "Installing wasm-opt (npm binaryen $BINARYEN_VERSION)"
    mkdir -p "$TOOLS"
    npm install --prefix "$TOOLS" --no-audit --no-fund --silent "binaryen@$BINARYEN_VERSION"
  fi
}

ensure_node() {
  if ! command -v npm >/dev/null; then
    say "Installing Node.js and npm"
    apt_install nodejs npm
  fi
}

# The most a first page load may download of the browser bundle, gzipped (bytes).
WASM_BUDGET_BYTES=$((200 * 1024))

# Prints what each page downloads of the browser bundle on a first visit (the main WASM and
# JS, plus the lazy islands it shows), gzipped; fails when a page is over the budget.
check_wasm_budget() {
  local pkg="$ROOT/target/site/pkg"
  [ -f "$pkg/herald.wasm" ] || { echo "No built WASM bundle in target/site/pkg" >&2; return 1; }
  print_wasm_size
  if ! node "$ROOT/scripts/wasm-sizes.js" "$pkg" "$WASM_BUDGET_BYTES"; then
    echo "A page's browser bundle is over its budget of $WASM_BUDGET_BYTES bytes gzipped: make an island lazy or smaller before adding to it." >&2
    return 1
  fi
}

# Gzipped size of the built WASM bundle (what a first page load downloads).
print_wasm_size() {
  local wasm="$ROOT/target/site/pkg/herald.wasm"
  [ -f "$wasm" ] || wasm="$ROOT/target/site/pkg/herald_bg.wasm"
  if [ -f "$wasm" ]; then
    local raw gz
    raw=$(stat -c %s "$wasm")
    gz=$(gzip -9 -c "$wasm" | wc -c)
    printf 'WASM bundle (main, without the lazy islands): %s KB raw, %s KB gzipped\n' "$((raw / 1024))" "$((gz / 1024))"
  fi
}
