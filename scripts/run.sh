#!/usr/bin/env bash
# Runs Gatehouse on its embedded SQLite default (./data/gatehouse.db) at http://127.0.0.1:8080.
# Settings come from the environment (see the README), e.g.
#   AUTH_TYPE=basic AUTH_BASIC_USERNAME=admin AUTH_BASIC_PASSWORD=… SECRET_KEY=… scripts/run.sh
# The first run installs the build tools and builds in release mode (allow half an hour on two
# cores); later runs start in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export PATH="$HOME/.cargo/bin:$PATH"
exec cargo leptos serve --release --precompress --split
