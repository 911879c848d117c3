#!/usr/bin/env bash
# Runs every test and check: formatting, clippy on the server and the browser builds, unit and
# integration tests on SQLite and on PostgreSQL (against real peers: oidc-provider, the official MCP SDK clients in
# TypeScript and Python, the MCP conformance suite), schemathesis against the REST API's OpenAPI
# document, then the browser tests in Chromium.
# Installs what is missing first (see scripts/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
# What the checkout looks like before: the tests must leave it so.
checkout_before=$(git status --porcelain 2>/dev/null || true)
scripts/setup.sh --tests
export PATH="$HOME/.cargo/bin:$PATH"

step() { printf '\n==> %s\n' "$*" >&2; }
started=$SECONDS

step "cargo fmt --check"
cargo fmt --all -- --check

step "clippy: server build (ssr)"
cargo clippy --no-default-features --features ssr --all-targets -- -D warnings

step "clippy: browser build (hydrate, wasm32)"
cargo clippy --no-default-features --features hydrate --lib --target wasm32-unknown-unknown -- -D warnings

step "unit tests, and the integration tests on SQLite"
cargo test --no-default-features --features ssr

step "schemathesis: the REST API against its OpenAPI document, live"
scripts/api-check.sh

step "the integration tests again on PostgreSQL (a throw-away server), with the replica tests"
pg_dir=$(mktemp -d)
trap 'scripts/postgres.sh stop "$pg_dir"' EXIT
GATEHOUSE_TEST_POSTGRES=$(scripts/postgres.sh start "$pg_dir")
export GATEHOUSE_TEST_POSTGRES
cargo test --no-default-features --features ssr --test it -- --include-ignored
unset GATEHOUSE_TEST_POSTGRES

step "build the site as shipped (release, precompressed): the browser tests measure its download"
cargo leptos build --release --precompress --split

step "browser tests (Playwright, Chromium)"
target_dir="${CARGO_TARGET_DIR:-target}"
case "$target_dir" in /*) ;; *) target_dir="$PWD/$target_dir" ;; esac
(cd end2end && GATEHOUSE_BIN="$target_dir/release/gatehouse" npx playwright test)

step "the checkout is as it was"
checkout_after=$(git status --porcelain 2>/dev/null || true)
if [ "$checkout_before" != "$checkout_after" ]; then
  echo "the tests changed the checkout (git status before and after):" >&2
  diff <(echo "$checkout_before") <(echo "$checkout_after") >&2 || true
  exit 1
fi

step "all tests passed in $((SECONDS - started)) s"
