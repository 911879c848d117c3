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

/// The schema of a list of `[name, value]` pairs (`Vec<(String, String)>` on the wire): each
/// exactly two strings.
#[cfg(feature = "ssr")]
pub fn pairs_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};
    let pair = ArrayBuilder::new()
        .items(ObjectBuilder::new().schema_type(Type::String))
        .min_items(Some(2))
        .max_items(Some(2));
    ArrayBuilder::new().items(pair).build()
}
