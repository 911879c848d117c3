#!/usr/bin/env bash
# Installs what building Gatehouse needs, skipping whatever is already in place:
#   - the wasm32-unknown-unknown Rust target
#   - cargo-leptos (pinned; newer releases need a newer rustc)
#   - the wasm-bindgen CLI at exactly the version Cargo.toml pins (a mismatch breaks hydration)
#   - npm packages: Tailwind, wasm-opt (binaryen); for tests Playwright, oidc-provider, the MCP
#     TypeScript SDKs, the MCP conformance suite and Node 22 (which that suite needs)
#   - with --tests: Debian's chromium (browser tests), .venv with the MCP Python SDK and
#     .venv-api with schemathesis
# Safe to run again: a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_LEPTOS_VERSION=0.3.10
WASM_BINDGEN_VERSION="$(sed -nE 's/^wasm-bindgen = \{ version = "=([0-9.]+)".*/\1/p' Cargo.toml)"
[ -n "$WASM_BINDGEN_VERSION" ] || { echo "setup: cannot find the pinned wasm-bindgen version in Cargo.toml" >&2; exit 1; }

log() { echo "==> setup: $*" >&2; }
export PATH="$HOME/.cargo/bin:$PATH"

for tool in cargo rustup node npm python3; do
  command -v "$tool" >/dev/null || { echo "setup: $tool is required but not installed" >&2; exit 1; }
done

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(cargo leptos --version 2>/dev/null || true)" != "cargo-leptos $CARGO_LEPTOS_VERSION" ]; then
  log "installing cargo-leptos $CARGO_LEPTOS_VERSION (about 15 minutes, once)"
  cargo install cargo-leptos --version "$CARGO_LEPTOS_VERSION" --locked --force
fi

if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  # Without --locked: the CLI's lockfile names a crate version the registry does not have.
  log "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (about 3 minutes, once)"
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.gatehouse-lock; then
  log "installing npm packages"
  # `npm install` rather than `npm ci`: the lockfile leaves out the optional native packages of
  # other platforms when the registry does not serve them, which `npm ci` counts as out of
  # sync. With the lockfile present, `npm install` installs exactly what it pins, and
  # `--no-save` keeps it from rewriting the lockfile: the checkout stays as it was.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-save --no-audit --no-fund
  cp package-lock.json node_modules/.gatehouse-lock
fi

if [ "${1:-}" = "--tests" ] && { [ ! -x .venv/bin/python ] || ! cmp -s tests/clients/requirements.txt .venv/.gatehouse-requirements; }; then
  log "creating .venv with the MCP Python SDK"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check -r tests/clients/requirements.txt
  cp tests/clients/requirements.txt .venv/.gatehouse-requirements
fi

if [ "${1:-}" = "--tests" ] && { [ ! -x .venv-api/bin/schemathesis ] || ! cmp -s tests/api/requirements.txt .venv-api/.gatehouse-requirements; }; then
  log "creating .venv-api with schemathesis"
  python3 -m venv .venv-api
  .venv-api/bin/pip install --quiet --disable-pip-version-check -r tests/api/requirements.txt
  cp tests/api/requirements.txt .venv-api/.gatehouse-requirements
fi

if [ "${1:-}" = "--tests" ] && [ ! -x /usr/bin/chromium ]; then
  log "installing Debian's chromium"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
