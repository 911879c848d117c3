//! Gatehouse's one integration-test binary: the real router on a real socket with a real
//! store (an SQLite file; a PostgreSQL database when `GATEHOUSE_TEST_POSTGRES` names a server,
//! as in scripts/test.sh's second pass), and real peers (oidc-provider) where they exist.
//! Tests marked `#[ignore]` need PostgreSQL; that pass runs them with `--include-ignored`.

mod api_tokens;
mod assets;
mod audit;
mod auth_basic;
mod auth_none;
mod auth_oauth2;
mod cli;
mod conformance;
mod connections;
mod crash;
mod gateway;
mod health;
mod helpers;
mod input_required;
mod mcp;
mod mcp_clients;
mod metrics;
mod oauth_as;
mod oauth_clients;
mod openapi;
mod people;
mod rebinding;
mod replicas;
mod roles;
mod rotation;
#[path = "../support/round_robin.rs"]
mod round_robin;
mod storage;
