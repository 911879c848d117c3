//! The MCP server behind `/mcp`, as an rmcp `ServerHandler`. It holds no state of its own:
//! each request carries the `AppState` and the authenticated `McpCaller` in its HTTP request
//! parts, put there by the endpoint before rmcp sees the request.

use std::borrow::Cow;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, Implementation, ListToolsResult,
    PaginatedRequestParams, ProtocolVersion, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

use super::caller::McpCaller;
use super::tools::ToolContext;
use crate::server::state::AppState;

pub const SERVER_NAME: &str = "gatehouse";

#[derive(Debug, Clone, Copy, Default)]
pub struct GatehouseMcp;

/// The state and caller of the request being served.
pub fn request_scope(ctx: &RequestContext<RoleServer>) -> Result<(AppState, McpCaller), ErrorData> {
    let parts = ctx
        .extensions
        .get::<http::request::Parts>()
        .ok_or_else(|| ErrorData::internal_error("request context missing", None))?;
    let state = parts.extensions.get::<AppState>().cloned();
    let caller = parts.extensions.get::<McpCaller>().cloned();
    match (state, caller) {
        (Some(state), Some(caller)) => Ok((state, caller)),
        _ => Err(ErrorData::internal_error("request context missing", None)),
    }
}

pub fn supported_versions() -> Vec<ProtocolVersion> {
    vec![
        ProtocolVersion::V_2026_07_28,
        ProtocolVersion::V_2025_11_25,
        ProtocolVersion::V_2025_06_18,
        ProtocolVersion::V_2025_03_26,
    ]
}

impl ServerHandler for GatehouseMcp {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .build();
        ServerConfig::new(capabilities)
            .with_protocol_version(ProtocolVersion::V_2025_11_25)
            .with_server_info(
                Implementation::new(SERVER_NAME, env!("CARGO_PKG_VERSION"))
                    .with_title("Gatehouse")
                    .with_description("Gatehouse's own tools, and the tools of the MCP servers behind it"),
            )
            .with_instructions(
                "Gatehouse brokers access to tools. Call `whoami` to see how you are authenticated and `gatehouse_status` for the state of this instance.",
            )
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Owned(supported_versions())
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let (state, caller) = request_scope(&context)?;
        Ok(ListToolsResult::with_all_items(
            state.mcp.tools.list(&caller),
        ))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let (state, caller) = request_scope(&context)?;
        let ctx = ToolContext {
            state: &state,
            caller: &caller,
            now: state.now(),
        };
        let arguments = request.arguments.unwrap_or_default();
        match state.mcp.tools.call(ctx, &request.name, arguments).await {
            Some(result) => Ok(result.into()),
            None => Err(ErrorData::invalid_params(
                format!("Unknown tool: {}", request.name),
                None,
            )),
        }
    }

    fn get_tool(&self, _name: &str) -> Option<Tool> {
        // Only used to validate `Mcp-Param-*` headers, which none of these tools declare.
        None
    }
}
