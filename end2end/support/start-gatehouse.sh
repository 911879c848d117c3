#!/usr/bin/env bash
# Starts one Gatehouse for the browser tests, on a fresh database:
#   start-gatehouse.sh <none|basic|oauth2> <port> [oidc-issuer] [upstream-mcp-base-url]
# The binary and the built site come from `cargo leptos build --release` (GATEHOUSE_BIN and
# GATEHOUSE_SITE_ROOT override where to find them).
set -euo pipefail
mode="$1"
port="$2"
issuer="${3:-}"
upstream="${4:-}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${GATEHOUSE_BIN:-$root/target/release/gatehouse}"
data="$root/end2end/.state/$mode"
rm -rf "$data"
mkdir -p "$data"

export LISTEN_ADDR="127.0.0.1:$port"
export DATABASE_URL="sqlite://$data/gatehouse.db"
export LEPTOS_SITE_ROOT="${GATEHOUSE_SITE_ROOT:-$root/target/site}"
export RUST_LOG="${RUST_LOG:-warn}"
export AUTH_TYPE="$mode"
unset PUBLIC_URL SECRET_KEY
case "$mode" in
  none) ;;
  basic)
    export SECRET_KEY="e2e-basic-secret-key-0123456789abcdef"
    export AUTH_BASIC_USERNAME="admin"
    export AUTH_BASIC_PASSWORD="e2e password"
    export MCP_OAUTH_ENABLED=true
    # The test provider for Connections listens on loopback.
    export OUTBOUND_ALLOW_PRIVATE_NETWORKS=true
    # The built-in Sentry definition, re-pointed at the test provider (as for a self-hosted
    # Sentry): its flow runs for real in the browser tests.
    cat > "$data/provider-overrides.json" <<JSON
{"sentry": {
  "authorization_url": "$issuer/auth", "token_url": "$issuer/token",
  "revocation_url": "$issuer/token/revocation", "introspection_url": "$issuer/token/introspection",
  "resource": "$issuer/api", "token_auth_method": "client_secret_post", "scope_separator": " ",
  "scopes": [{"name": "openid", "description": "Sign-in identity", "default": true},
             {"name": "read", "description": "Read access", "default": true}]
},
"linear": {
  "authorization_url": "$issuer/auth", "token_url": "$issuer/token",
  "revocation_url": "$issuer/token/revocation", "introspection_url": "$issuer/token/introspection",
  "resource": "$issuer/api", "token_auth_method": "client_secret_post", "scope_separator": " ",
  "extra_auth_params": [], "pkce": "s256",
  "scopes": [{"name": "openid", "description": "Sign-in identity", "default": true},
             {"name": "read", "description": "Read access", "default": true}]
}}
JSON
    export PROVIDER_OVERRIDES="$data/provider-overrides.json"
    # The catalog's Linear entry points at the test upstream, which accepts the test
    # provider's tokens: "Add from catalog" runs through to a working tool list.
    cat > "$data/mcp-catalog.json" <<JSON
[{"id": "linear", "name": "Linear (test upstream)", "server_name": "linear",
  "description": "The Python SDK test server, behind the re-pointed Linear provider.",
  "url": "$upstream/mcp", "transport": "http", "provider": "linear",
  "docs_url": "https://linear.app/docs/mcp"}]
JSON
    export MCP_CATALOG="$data/mcp-catalog.json"
    ;;
  oauth2)
    export SECRET_KEY="e2e-oauth2-secret-key-0123456789abcdef"
    export AUTH_OAUTH2_ISSUER_URL="$issuer"
    export AUTH_OAUTH2_CLIENT_ID="gatehouse-test"
    export AUTH_OAUTH2_CLIENT_SECRET="gatehouse-test-secret"
    export AUTH_OAUTH2_ALLOWED_DOMAINS="example.com"
    # The test provider puts "ada+admins@example.com" in the group "admins".
    export AUTH_OAUTH2_ADMIN_GROUPS="admins"
    # Per-person connections at the test provider, on loopback (people.spec.ts).
    export OUTBOUND_ALLOW_PRIVATE_NETWORKS=true
    ;;
  *) echo "unknown mode $mode" >&2; exit 2 ;;
esac
exec "$bin"
