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

/// `pairs_schema` for an `Option`: `null` too (on an edit, keep what is stored).
#[cfg(feature = "ssr")]
pub fn optional_pairs_schema() -> utoipa::openapi::schema::Array {
    use utoipa::openapi::schema::{SchemaType, Type};
    let mut schema = pairs_schema();
    schema.schema_type = SchemaType::from_iter([Type::Array, Type::Null]);
    schema
}

/// Schemas of input fields the handlers check further than their Rust type says, as far as
/// JSON Schema can say it: what schemathesis generates from them then mostly passes the
/// handlers' checks, and a client reads the accepted words from the document. Values are
/// trimmed before they are checked; the patterns allow the surrounding whitespace.
#[cfg(feature = "ssr")]
pub mod schemas {
    use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

    fn words(values: &[&str], description: &str) -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(values.iter().copied()))
            .description(Some(description))
            .build()
    }

    fn pattern(pattern: &str, description: &str) -> Object {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(pattern))
            .description(Some(description))
            .build()
    }

    /// An endpoint: https (http only for loopback hosts, or with `OUTBOUND_ALLOW_HTTP`).
    pub fn url() -> Object {
        pattern(
            r"^\s*https?://[^\s/?#@]+[\s\S]*$",
            "An https URL (http only for a loopback host, or anywhere with OUTBOUND_ALLOW_HTTP=true), without a user name or password.",
        )
    }

    /// An endpoint that may be left empty (the token URL is required for `custom`).
    pub fn optional_url() -> Object {
        pattern(
            r"^\s*(https?://[^\s/?#@]+[\s\S]*)?$",
            "Empty (a built-in provider's endpoints come with it; a custom connection needs a token URL, and an authorization URL for the authorization code grant), or an https URL (http only for a loopback host, or anywhere with OUTBOUND_ALLOW_HTTP=true), without a user name or password.",
        )
    }

    /// A name shown to people: something besides whitespace, no control characters.
    pub fn display_name() -> Object {
        pattern(
            // Whitespace at the ends is trimmed away, control characters that are whitespace too.
            r"^\s*[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*\s*$",
            "At most 100 characters once trimmed, without control characters.",
        )
    }

    pub fn grant_type() -> Object {
        words(
            &["", "authorization_code", "client_credentials"],
            "`authorization_code` (the default, also when empty) or `client_credentials`.",
        )
    }

    pub fn token_auth_method() -> Object {
        words(
            &["", "client_secret_post", "client_secret_basic", "none"],
            "`client_secret_post` (the default, also when empty), `client_secret_basic`, or `none` for a public client without a secret.",
        )
    }

    pub fn provider_type() -> Object {
        pattern(
            r"^\s*[a-z0-9_-]{0,40}\s*$",
            "Icon hint: a short lowercase word (`custom` when empty).",
        )
    }

    /// An upstream MCP server's name: it prefixes its tools, `<name>__<tool>`.
    pub fn server_name() -> Object {
        pattern(
            r"^\s*[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?\s*$",
            "A slug: lowercase letters, digits and '-', at most 32, not starting or ending with '-'.",
        )
    }

    pub fn transport() -> Object {
        words(
            &["", "http", "streamable_http", "streamable-http", "sse"],
            "`http` (Streamable HTTP, the default, also when empty) or `sse` (the legacy HTTP+SSE transport). `stdio` is refused.",
        )
    }

    pub fn server_auth() -> Object {
        words(
            &["", "none", "connection", "headers", "discover"],
            "`none` (the default, also when empty), `connection`, `headers`, or on creation `discover`: sign in the way the MCP authorization spec describes, creating the connection (`sign_in`).",
        )
    }
}
