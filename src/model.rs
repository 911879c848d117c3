//! The shared vocabulary: every type that crosses the wire (views, inputs, the one
//! `ApiError`) and the words domains share (`AuthType`, `TokenScope`). Below everything: the
//! UI, the server functions and the server's domains all import it, and it imports nothing of
//! the crate but itself. One file per domain.

pub mod audit;
pub mod connections;
pub mod error;
pub mod instance;
pub mod mcp_servers;
pub mod mcp_settings;
pub mod oauth;
pub mod session;

pub use error::ApiError;
