//! The MCP server behind `/mcp`, as an rmcp `ServerHandler`. It holds no state of its own:
//! each request carries the `AppState` and the authenticated `McpCaller` in its HTTP request
//! parts, put there by the endpoint before rmcp sees the request.

use std::borrow::Cow;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CompleteRequestMethod, CompleteRequestParams,
    CompleteResult, ConstString, GetPromptRequestMethod, GetPromptRequestParams, GetPromptResponse,
    Implementation, ListPromptsRequestMethod, ListPromptsResult,
    ListResourceTemplatesRequestMethod, ListResourceTemplatesResult, ListResourcesRequestMethod,
    ListResourcesResult, ListToolsResult, PaginatedRequestParams, ProtocolVersion,
    ReadResourceRequestMethod, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
    ServerConfig, SetLevelRequestMethod, SubscribeRequestMethod, SubscribeRequestParams, Tool,
    UnsubscribeRequestMethod, UnsubscribeRequestParams,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};

// Logging is deprecated from 2026-07-28 on, but 2025 clients (and the conformance suite) use it.
#[allow(deprecated)]
use rmcp::model::SetLevelRequestParams;

use super::caller::McpCaller;
use super::conformance;
use super::tools::ToolContext;
use crate::server::state::AppState;

pub const SERVER_NAME: &str = "gatehouse";

#[derive(Debug, Clone, Copy, Default)]
pub struct GatehouseMcp {
    /// Serve the conformance suite's resources, prompts, completion and logging too.
    pub conformance_fixtures: bool,
}

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
        let mut capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .build();
        if self.conformance_fixtures {
            let fixtures: ServerCapabilities = serde_json::from_value(serde_json::json!({
                "resources": {"subscribe": true, "listChanged": true},
                "prompts": {"listChanged": true},
                "completions": {},
                "logging": {}
            }))
            .expect("capabilities JSON");
            #[allow(deprecated)]
            {
                capabilities.logging = fixtures.logging;
            }
            capabilities.resources = fixtures.resources;
            capabilities.prompts = fixtures.prompts;
            capabilities.completions = fixtures.completions;
        }
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
        state.upstreams.prepare_list(&state).await;
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
            request: Some(&context),
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

    // Resources, prompts, completion and logging exist only as conformance fixtures.

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        self.fixtures::<ListResourcesRequestMethod>()?;
        Ok(conformance::list_resources())
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        self.fixtures::<ListResourceTemplatesRequestMethod>()?;
        Ok(conformance::list_resource_templates())
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        self.fixtures::<ReadResourceRequestMethod>()?;
        conformance::read_resource(&request.uri).map(Into::into)
    }

    #[allow(deprecated)]
    async fn subscribe(
        &self,
        _request: SubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.fixtures::<SubscribeRequestMethod>()
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        _request: UnsubscribeRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.fixtures::<UnsubscribeRequestMethod>()
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        self.fixtures::<ListPromptsRequestMethod>()?;
        Ok(conformance::list_prompts())
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        self.fixtures::<GetPromptRequestMethod>()?;
        conformance::get_prompt(&request.name, &request.arguments.unwrap_or_default())
            .map(Into::into)
    }

    async fn complete(
        &self,
        _request: CompleteRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        self.fixtures::<CompleteRequestMethod>()?;
        Ok(CompleteResult::default())
    }

    #[allow(deprecated)]
    async fn set_level(
        &self,
        _request: SetLevelRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        self.fixtures::<SetLevelRequestMethod>()
    }
}

impl GatehouseMcp {
    /// `Ok` when the conformance fixtures are on; otherwise method-not-found for `M`.
    fn fixtures<M: ConstString>(&self) -> Result<(), ErrorData> {
        if self.conformance_fixtures {
            Ok(())
        } else {
            Err(ErrorData::method_not_found::<M>())
        }
    }
}
