//! The tool registry behind `/mcp`: every tool a caller can list and call, from any number of
//! sources. Gatehouse's own tools are one source; upstream MCP servers will be others. A
//! source owns a set of names and answers calls for them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use rmcp::RoleServer;
use rmcp::model::{CallToolResult, ContentBlock, JsonObject, Tool, ToolAnnotations};
use rmcp::service::RequestContext;
use serde_json::{Value, json};

use super::caller::{McpCaller, Principal};
use super::input::{ClientCaps, InputRound, Outcome};
use crate::server::clock::UnixTime;
use crate::server::state::AppState;

/// A tool's answer: a result, or what it needs from the client first (see `input`).
pub type ToolOutcome = Outcome<CallToolResult>;
pub type ToolFuture<'a> = Pin<Box<dyn Future<Output = ToolOutcome> + Send + 'a>>;

/// What a tool call runs with.
#[derive(Clone, Copy)]
pub struct ToolContext<'a> {
    pub state: &'a AppState,
    pub caller: &'a McpCaller,
    pub now: UnixTime,
    /// The MCP request being served, for progress and log notifications to the client.
    pub request: Option<&'a RequestContext<RoleServer>>,
    /// What the client declared it can do for this request (elicitation, sampling, roots).
    pub client: &'a ClientCaps,
    /// The client's answers when this is a later round of a call that needed input.
    pub input: Option<&'a InputRound>,
}

pub trait ToolSource: Send + Sync + 'static {
    /// The tools this source offers to `caller`.
    fn list(&self, caller: &McpCaller) -> Vec<Tool>;
    /// A tool of this name as any caller may see it (for schema checks that run before the
    /// caller's list is known).
    fn find_any(&self, name: &str) -> Option<Tool> {
        self.list(&McpCaller::anonymous())
            .into_iter()
            .find(|t| t.name == name)
    }
    /// Runs `name` if this source owns it; `None` when it does not.
    fn call<'a>(
        &'a self,
        ctx: ToolContext<'a>,
        name: &'a str,
        arguments: JsonObject,
    ) -> Option<ToolFuture<'a>>;
}

#[derive(Clone, Default)]
pub struct ToolRegistry {
    sources: Vec<Arc<dyn ToolSource>>,
}

impl ToolRegistry {
    pub fn with_source(mut self, source: impl ToolSource) -> Self {
        self.sources.push(Arc::new(source));
        self
    }

    pub fn list(&self, caller: &McpCaller) -> Vec<Tool> {
        self.sources.iter().flat_map(|s| s.list(caller)).collect()
    }

    pub fn find(&self, caller: &McpCaller, name: &str) -> Option<Tool> {
        self.sources
            .iter()
            .find_map(|s| s.list(caller).into_iter().find(|t| t.name == name))
    }

    /// Any caller's tool of that name.
    pub fn find_any(&self, name: &str) -> Option<Tool> {
        self.sources.iter().find_map(|s| s.find_any(name))
    }

    /// `None` when no source has a tool of that name.
    pub async fn call(
        &self,
        ctx: ToolContext<'_>,
        name: &str,
        arguments: JsonObject,
    ) -> Option<ToolOutcome> {
        for source in &self.sources {
            if let Some(running) = source.call(ctx, name, arguments.clone()) {
                return Some(running.await);
            }
        }
        None
    }
}

/// A tool error the model can read and act on (as opposed to a protocol error).
pub fn tool_error(message: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(message.into())])
}

fn schema(value: Value) -> Arc<JsonObject> {
    Arc::new(
        value
            .as_object()
            .cloned()
            .expect("tool schemas are JSON objects"),
    )
}

/// Checks arguments against the small JSON Schema subset Gatehouse's own tools use: an object
/// with typed properties, enums, required names and no extra properties.
pub fn check_arguments(schema: &JsonObject, arguments: &JsonObject) -> Result<(), String> {
    let properties = schema.get("properties").and_then(Value::as_object);
    if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
        for name in arguments.keys() {
            if !properties.is_some_and(|p| p.contains_key(name)) {
                let known: Vec<&String> =
                    properties.map(|p| p.keys().collect()).unwrap_or_default();
                return Err(if known.is_empty() {
                    format!("Unknown argument {name:?}: this tool takes no arguments.")
                } else {
                    format!("Unknown argument {name:?}; the arguments are {known:?}.")
                });
            }
        }
    }
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !arguments.contains_key(name) {
                return Err(format!("Missing required argument {name:?}."));
            }
        }
    }
    for (name, value) in arguments {
        if let Some(spec) = properties.and_then(|p| p.get(name)) {
            check_value(name, spec, value)?;
        }
    }
    Ok(())
}

fn check_value(path: &str, spec: &Value, value: &Value) -> Result<(), String> {
    let ty = spec.get("type").and_then(Value::as_str);
    let ok = match ty {
        Some("string") => value.is_string(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("boolean") => value.is_boolean(),
        Some("array") => value.is_array(),
        Some("object") => value.is_object(),
        _ => true,
    };
    if !ok {
        return Err(format!(
            "Argument {path:?} must be of type {}.",
            ty.unwrap_or("?")
        ));
    }
    if let Some(options) = spec.get("enum").and_then(Value::as_array)
        && !options.contains(value)
    {
        return Err(format!(
            "Argument {path:?} must be one of {}.",
            Value::Array(options.clone())
        ));
    }
    if let (Some(items), Some(values)) = (spec.get("items"), value.as_array()) {
        for (i, item) in values.iter().enumerate() {
            check_value(&format!("{path}[{i}]"), items, item)?;
        }
    }
    Ok(())
}

/// Gatehouse's own tools.
pub struct BuiltinTools;

const WHOAMI: &str = "whoami";
const STATUS: &str = "gatehouse_status";
const STATUS_SECTIONS: [&str; 3] = ["instance", "mcp", "storage"];

fn read_only() -> ToolAnnotations {
    ToolAnnotations::new()
        .read_only(true)
        .destructive(false)
        .idempotent(true)
        .open_world(false)
}

fn whoami_tool() -> Tool {
    Tool::new(
        WHOAMI,
        "Who is calling: the identity this MCP client authenticated as, how it authenticated, and the scopes it holds.",
        schema(json!({"type": "object", "properties": {}, "additionalProperties": false})),
    )
    .with_title("Who am I")
    .with_annotations(read_only())
}

fn status_tool() -> Tool {
    Tool::new(
        STATUS,
        "Status of this Gatehouse instance: version and uptime, how MCP clients authenticate, and the health of its storage.",
        schema(json!({
            "type": "object",
            "properties": {
                "sections": {
                    "type": "array",
                    "description": "Which parts to report (default: all).",
                    "items": {"type": "string", "enum": STATUS_SECTIONS},
                    "uniqueItems": true
                }
            },
            "additionalProperties": false
        })),
    )
    .with_title("Gatehouse status")
    .with_annotations(read_only())
}

impl ToolSource for BuiltinTools {
    fn list(&self, _caller: &McpCaller) -> Vec<Tool> {
        vec![whoami_tool(), status_tool()]
    }

    fn call<'a>(
        &'a self,
        ctx: ToolContext<'a>,
        name: &'a str,
        arguments: JsonObject,
    ) -> Option<ToolFuture<'a>> {
        let tool = match name {
            WHOAMI => whoami_tool(),
            STATUS => status_tool(),
            _ => return None,
        };
        Some(Box::pin(async move {
            if let Err(message) = check_arguments(&tool.input_schema, &arguments) {
                return tool_error(message).into();
            }
            match name {
                WHOAMI => whoami(&ctx),
                _ => status(&ctx, &arguments).await,
            }
            .into()
        }))
    }
}

fn whoami(ctx: &ToolContext<'_>) -> CallToolResult {
    let caller = ctx.caller;
    let scopes: Vec<&str> = caller.scopes.iter().map(|s| s.as_str()).collect();
    let mut value = match &caller.principal {
        Principal::Anonymous => json!({
            "identity": "anonymous",
            "authenticated_by": "none",
            "detail": "MCP protection is off: this Gatehouse accepts MCP clients without a token.",
            "scopes": scopes,
        }),
        Principal::ApiToken {
            id,
            name,
            expires_at,
        } => json!({
            "identity": format!("API token \"{name}\""),
            "authenticated_by": "api_token",
            "token": {"id": id, "name": name, "expires_at": expires_at},
            "scopes": scopes,
        }),
        Principal::OAuth {
            subject,
            client_id,
            client_name,
            expires_at,
            ..
        } => json!({
            "identity": subject,
            "authenticated_by": "oauth",
            "client": {"id": client_id, "name": client_name},
            "access_token_expires_at": expires_at,
            "scopes": scopes,
        }),
    };
    // Whose own accounts the per-person MCP servers use for this caller.
    value["person"] = json!(caller.person);
    CallToolResult::structured(value)
}

async fn status(ctx: &ToolContext<'_>, arguments: &JsonObject) -> CallToolResult {
    let wanted: Vec<&str> = match arguments.get("sections").and_then(Value::as_array) {
        Some(list) if !list.is_empty() => list.iter().filter_map(Value::as_str).collect(),
        _ => STATUS_SECTIONS.to_vec(),
    };
    let state = ctx.state;
    let mut report = serde_json::Map::new();
    if wanted.contains(&"instance") {
        let info = state.instance_view();
        report.insert(
            "instance".into(),
            json!({
                "version": info.version,
                "public_url": info.public_url,
                "app_auth": info.auth_type.as_str(),
                "started_at": info.started_at,
                "uptime_seconds": ctx.now - info.started_at,
            }),
        );
    }
    if wanted.contains(&"mcp") {
        let require_auth = state.mcp.protection.require_auth(&state.db, ctx.now).await;
        let tokens = state.db.count_api_tokens().await;
        let sessions = state.mcp.session_count(ctx.now).await;
        match (require_auth, tokens, sessions) {
            (Ok(require_auth), Ok(tokens), Ok(sessions)) => {
                report.insert(
                    "mcp".into(),
                    json!({
                        "endpoint": format!("{}/mcp", state.public_origin),
                        "require_auth": require_auth,
                        "api_tokens": tokens,
                        "active_sessions": sessions,
                        "protocol_versions": super::SUPPORTED_PROTOCOL_VERSIONS,
                    }),
                );
            }
            _ => return tool_error("Gatehouse could not read its MCP settings from the database."),
        }
    }
    if wanted.contains(&"storage") {
        let started = std::time::Instant::now();
        let healthy = state.db.ping().await.is_ok();
        report.insert(
            "storage".into(),
            json!({
                "backend": state.config.database.backend_name(),
                "healthy": healthy,
                "round_trip_ms": (started.elapsed().as_secs_f64() * 1000.0 * 100.0).round() / 100.0,
            }),
        );
    }
    CallToolResult::structured(Value::Object(report))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> JsonObject {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn argument_checks() {
        let s = status_tool().input_schema;
        assert!(check_arguments(&s, &obj(json!({}))).is_ok());
        assert!(check_arguments(&s, &obj(json!({"sections": ["mcp", "storage"]}))).is_ok());
        assert!(
            check_arguments(&s, &obj(json!({"sections": "mcp"})))
                .unwrap_err()
                .contains("array")
        );
        assert!(
            check_arguments(&s, &obj(json!({"sections": ["disk"]})))
                .unwrap_err()
                .contains("sections[0]")
        );
        assert!(
            check_arguments(&s, &obj(json!({"verbose": true})))
                .unwrap_err()
                .contains("verbose")
        );
        let w = whoami_tool().input_schema;
        assert!(
            check_arguments(&w, &obj(json!({"x": 1})))
                .unwrap_err()
                .contains("takes no arguments")
        );
        let req = obj(
            json!({"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}),
        );
        assert!(
            check_arguments(&req, &obj(json!({})))
                .unwrap_err()
                .contains("Missing")
        );
        assert!(check_arguments(&req, &obj(json!({"n": 1.5}))).is_err());
        assert!(check_arguments(&req, &obj(json!({"n": 2}))).is_ok());
    }

    #[test]
    fn schemas_are_json_schema_objects() {
        for tool in [whoami_tool(), status_tool()] {
            assert_eq!(tool.input_schema.get("type"), Some(&json!("object")));
            assert_eq!(
                tool.annotations.as_ref().and_then(|a| a.read_only_hint),
                Some(true)
            );
        }
    }
}
