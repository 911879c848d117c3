//! Gatehouse's one integration-test binary: the real router on a real socket with a real
//! SQLite file, and real peers (oidc-provider) where they exist.

mod api_tokens;
mod auth_basic;
mod auth_none;
mod auth_oauth2;
mod conformance;
mod connections;
mod gateway;
mod health;
mod helpers;
mod input_required;
mod mcp;
mod mcp_clients;
mod oauth_as;
mod oauth_clients;
mod rebinding;
