//! The MCP server behind `/mcp`, as an rmcp `ServerHandler`. It holds no state of its own:
//! each request carries the `AppState` and the authenticated `McpCaller` in its HTTP request
//! parts, put there by the endpoint before rmcp sees the request.

use std::borrow::Cow;

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CompleteRequestParams, CompleteResult, ConstString,
    GetPromptRequestParams, GetPromptResponse, Implementation, ListPromptsResult,
    ListResourceTemplatesResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams,
    ProtocolVersion, ReadResourceRequestParams, ReadResourceResponse, ServerCapabilities,
    ServerConfig, SetLevelRequestMethod, SubscribeRequestMethod, SubscribeRequestParams, Tool,
    UnsubscribeRequestMethod, UnsubscribeRequestParams,
};
use rmcp::model::{ResultType, SubscriptionFilter};
use rmcp::service::{
    NotificationContext, RequestContext, SubscriptionContext, SubscriptionSendError,
};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use tokio::sync::broadcast::error::RecvError;

// Logging is deprecated from 2026-07-28 on, but 2025 clients (and the conformance suite) use it.
#[allow(deprecated)]
use rmcp::model::SetLevelRequestParams;

use super::caller::McpCaller;
use super::conformance;
use super::events::McpEvent;
use super::input::{ClientCaps, Driven, InputCall};
use super::offers;
use super::tools::{ToolContext, ToolRegistry};
use super::upstreams::SEPARATOR;
use crate::server::secrets::random_id;
use crate::server::state::AppState;

pub const SERVER_NAME: &str = "gatehouse";

#[derive(Clone, Default)]
pub struct GatehouseMcp {
    /// Serve the conformance suite's resources, prompts, completion and logging too.
    pub conformance_fixtures: bool,
    /// The tools, for rmcp's check of `Mcp-Param-*` headers against a tool's schema.
    pub tools: ToolRegistry,
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

/// The session a `resources/subscribe` belongs to: what its updates are forwarded on.
fn watcher_of(context: &RequestContext<RoleServer>) -> Result<String, ErrorData> {
    context
        .extensions
        .get::<http::request::Parts>()
        .and_then(|parts| parts.headers.get(super::endpoint::SESSION_HEADER))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| {
            ErrorData::invalid_request(
                "resources/subscribe needs a session (Mcp-Session-Id); on 2026-07-28 name the resource in subscriptions/listen",
                None,
            )
        })
}

/// How often a 2025-era session's change forwarder looks whether its worker is gone.
const FORWARDER_CHECK: std::time::Duration = std::time::Duration::from_secs(30);

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
        // Prompts, resources and completions are the upstreams' (and the conformance
        // fixtures'); whether any server offers them changes at run time, so they are always
        // advertised (an empty list when none does).
        let mut capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_tool_list_changed()
            .enable_prompts()
            .enable_prompts_list_changed()
            .enable_resources()
            .enable_resources_list_changed()
            .enable_resources_subscribe()
            .enable_completions()
            .build();
        if self.conformance_fixtures {
            let fixtures: ServerCapabilities =
                serde_json::from_value(serde_json::json!({"logging": {}}))
                    .expect("capabilities JSON");
            #[allow(deprecated)]
            {
                capabilities.logging = fixtures.logging;
            }
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
        state.upstreams.prepare_list(&state, &caller).await;
        let mut result = ListToolsResult::with_all_items(state.mcp.tools.list(&caller));
        result.result_type.get_or_insert(ResultType::COMPLETE);
        Ok(result)
    }

    /// A 2025-era session hears of changes on its stream: a forwarder per session worker, for
    /// as long as the worker lives. rmcp replays `initialized` (with the request that woke the
    /// session) whenever it restores a session, on whichever replica, so a restored session
    /// gets its forwarder too. What a person is told: list changes, theirs and everyone's,
    /// and the completion of their URL elicitations.
    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        let Some(parts) = context.extensions.get::<http::request::Parts>() else {
            return;
        };
        let (Some(state), Some(caller)) = (
            parts.extensions.get::<AppState>().cloned(),
            parts.extensions.get::<McpCaller>().cloned(),
        ) else {
            return;
        };
        let peer = context.peer.clone();
        let session_id = parts
            .headers
            .get(super::endpoint::SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // rmcp may run this twice for one worker (the replayed `initialized` and the
        // client's own): one forwarder per live worker.
        if let Some(id) = &session_id {
            let mut live = state.mcp.forwarders.lock().expect("forwarders lock");
            live.retain(|_, p| !p.is_transport_closed());
            if live.contains_key(id) {
                return;
            }
            live.insert(id.to_string(), peer.clone());
        }
        let mut events = state.mcp.events.subscribe();
        tokio::spawn(async move {
            let forwarded = async {
                // A worker released while nothing happens is noticed here, not at the next event.
                let mut check = tokio::time::interval(FORWARDER_CHECK);
                loop {
                    let event = tokio::select! {
                        _ = state.mcp.shutdown.cancelled() => return,
                        _ = check.tick() => {
                            if peer.is_transport_closed() {
                                return;
                            }
                            continue;
                        }
                        event = events.recv() => event,
                    };
                    let event = match event {
                        Ok(event) => event,
                        Err(RecvError::Lagged(_)) => McpEvent::ToolsChanged,
                        Err(RecvError::Closed) => return,
                    };
                    if peer.is_transport_closed() {
                        return;
                    }
                    let relevant = match &event {
                        McpEvent::ToolsChanged
                        | McpEvent::ToolsChangedFor(_)
                        | McpEvent::PromptsChanged
                        | McpEvent::ResourcesChanged
                        | McpEvent::ElicitationComplete { .. } => true,
                        // Only to a session that subscribed to it.
                        McpEvent::UpstreamResourceUpdated { uri, .. } => session_id
                            .as_deref()
                            .is_some_and(|id| state.mcp.watches.watches(id, uri)),
                        McpEvent::ResourceUpdated(_) => false,
                    };
                    if !relevant || !event.is_for(caller.person.as_deref()) {
                        continue;
                    }
                    if peer.send_notification(event.notification()).await.is_err() {
                        return;
                    }
                }
            };
            forwarded.await;
            // Gone with its worker: so are its subscriptions and its entry.
            if let Some(id) = &session_id {
                offers::forget_watcher(&state, &caller, id).await;
            }
            state
                .mcp
                .forwarders
                .lock()
                .expect("forwarders lock")
                .retain(|_, p| !p.is_transport_closed());
        });
    }

    /// 2026-07-28 `subscriptions/listen`: every kind Gatehouse advertises may be asked for;
    /// rmcp narrows the filter to what `get_info` advertises and acknowledges it.
    fn accepted_subscription_filter(
        &self,
        requested: &SubscriptionFilter,
    ) -> Option<SubscriptionFilter> {
        Some(requested.clone())
    }

    /// Forwards change events to the stream until the client cancels it or the server stops.
    async fn listen(&self, subscription: SubscriptionContext) -> Result<(), ErrorData> {
        let (state, caller) = request_scope(subscription.request_context())?;
        let mut events = state.mcp.events.subscribe();
        // The upstreams' resources it asked for are watched for as long as it listens;
        // rmcp's sink passes on only the URIs it accepted.
        let watcher = format!("listen:{}", random_id());
        for uri in subscription
            .accepted()
            .resource_subscriptions
            .iter()
            .flatten()
            .filter(|uri| uri.starts_with(offers::RESOURCE_PREFIX))
        {
            if let Err(e) = offers::subscribe(&state, &caller, &watcher, uri).await {
                tracing::debug!(uri = %uri, error = %e.message, "a listened resource was not subscribed");
            }
        }
        let listened = self
            .forward_events(&state, &caller, &subscription, &mut events)
            .await;
        offers::forget_watcher(&state, &caller, &watcher).await;
        listened
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let (state, caller) = request_scope(&context)?;
        let now = state.now();
        let client = ClientCaps::of(&context);
        let arguments = request.arguments.unwrap_or_default();
        let call = InputCall::new(
            &context,
            &caller,
            "tools/call",
            &request.name,
            &arguments,
            request.input_responses,
            request.request_state,
        );
        let driven = call
            .drive(&state.mcp.request_states, &client, now, |round| {
                let (state, caller, context, client) = (&state, &caller, &context, &client);
                let (name, arguments) = (&request.name, arguments.clone());
                async move {
                    let ctx = ToolContext {
                        state,
                        caller,
                        now,
                        request: Some(context),
                        client,
                        input: round.as_ref(),
                    };
                    state
                        .mcp
                        .tools
                        .call(ctx, name, arguments)
                        .await
                        .ok_or_else(|| {
                            ErrorData::invalid_params(format!("Unknown tool: {name}"), None)
                        })
                }
            })
            .await?;
        Ok(match driven {
            Driven::Complete(mut result) => {
                result.result_type.get_or_insert(ResultType::COMPLETE);
                CallToolResponse::Complete(result)
            }
            Driven::InputRequired(result) => CallToolResponse::InputRequired(result),
        })
    }

    /// rmcp reads the schema to check `Mcp-Param-*` headers (SEP-2243) against the body,
    /// before the caller is known here: any caller's tool of that name (a per-person
    /// server's schemas are the upstream's, whoever listed them).
    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.tools.find_any(name)
    }

    // Prompts, resources and completions are the upstreams' (`offers`), plus the
    // conformance fixtures when those are on; logging and subscriptions are fixtures only.

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let (state, caller) = request_scope(&context)?;
        let mut resources = match self.conformance_fixtures {
            true => conformance::list_resources().resources,
            false => Vec::new(),
        };
        resources.extend(offers::list_resources(&state, &caller).await);
        let mut result = ListResourcesResult::with_all_items(resources);
        result.result_type.get_or_insert(ResultType::COMPLETE);
        Ok(result)
    }

    async fn list_resource_templates(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourceTemplatesResult, ErrorData> {
        let (state, caller) = request_scope(&context)?;
        let mut templates = match self.conformance_fixtures {
            true => conformance::list_resource_templates().resource_templates,
            false => Vec::new(),
        };
        templates.extend(offers::list_resource_templates(&state, &caller).await);
        let mut result = ListResourceTemplatesResult::with_all_items(templates);
        result.result_type.get_or_insert(ResultType::COMPLETE);
        Ok(result)
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let (state, caller) = request_scope(&context)?;
        if request.uri.starts_with(offers::RESOURCE_PREFIX) || !self.conformance_fixtures {
            let mut result = offers::read_resource(&state, &caller, request).await?;
            result.result_type.get_or_insert(ResultType::COMPLETE);
            return Ok(ReadResourceResponse::Complete(result));
        }
        let call = InputCall::new(
            &context,
            &caller,
            "resources/read",
            &request.uri,
            &Default::default(),
            request.input_responses,
            request.request_state,
        );
        let client = ClientCaps::of(&context);
        let driven = call
            .drive(&state.mcp.request_states, &client, state.now(), |round| {
                std::future::ready(conformance::read_resource(&request.uri, round.as_ref()))
            })
            .await?;
        Ok(match driven {
            Driven::Complete(mut result) => {
                result.result_type.get_or_insert(ResultType::COMPLETE);
                ReadResourceResponse::Complete(result)
            }
            Driven::InputRequired(result) => ReadResourceResponse::InputRequired(result),
        })
    }

    /// A 2025-era session's subscription to an upstream's resource (the fixtures' own with
    /// those on); 2026-07-28 clients name resources in `subscriptions/listen` instead.
    #[allow(deprecated)]
    async fn subscribe(
        &self,
        request: SubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if self.conformance_fixtures && !request.uri.starts_with(offers::RESOURCE_PREFIX) {
            return self.fixtures::<SubscribeRequestMethod>();
        }
        let (state, caller) = request_scope(&context)?;
        offers::subscribe(&state, &caller, &watcher_of(&context)?, &request.uri).await
    }

    #[allow(deprecated)]
    async fn unsubscribe(
        &self,
        request: UnsubscribeRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<(), ErrorData> {
        if self.conformance_fixtures && !request.uri.starts_with(offers::RESOURCE_PREFIX) {
            return self.fixtures::<UnsubscribeRequestMethod>();
        }
        let (state, caller) = request_scope(&context)?;
        offers::unsubscribe(&state, &caller, &watcher_of(&context)?, &request.uri).await
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let (state, caller) = request_scope(&context)?;
        let mut prompts = match self.conformance_fixtures {
            true => conformance::list_prompts().prompts,
            false => Vec::new(),
        };
        prompts.extend(offers::list_prompts(&state, &caller).await);
        let mut result = ListPromptsResult::with_all_items(prompts);
        result.result_type.get_or_insert(ResultType::COMPLETE);
        Ok(result)
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let (state, caller) = request_scope(&context)?;
        // The fixtures' names have no server prefix.
        if request.name.contains(SEPARATOR) || !self.conformance_fixtures {
            let mut result = offers::get_prompt(&state, &caller, request).await?;
            result.result_type.get_or_insert(ResultType::COMPLETE);
            return Ok(GetPromptResponse::Complete(result));
        }
        let arguments = request.arguments.unwrap_or_default();
        let call = InputCall::new(
            &context,
            &caller,
            "prompts/get",
            &request.name,
            &arguments,
            request.input_responses,
            request.request_state,
        );
        let client = ClientCaps::of(&context);
        let driven = call
            .drive(&state.mcp.request_states, &client, state.now(), |round| {
                let outcome = conformance::get_prompt(&request.name, &arguments, round.as_ref());
                std::future::ready(outcome)
            })
            .await?;
        Ok(match driven {
            Driven::Complete(mut result) => {
                result.result_type.get_or_insert(ResultType::COMPLETE);
                GetPromptResponse::Complete(result)
            }
            Driven::InputRequired(result) => GetPromptResponse::InputRequired(result),
        })
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let (state, caller) = request_scope(&context)?;
        let relayed = serde_json::to_value(&request.r#ref).is_ok_and(|r| {
            r["name"].as_str().is_some_and(|n| n.contains(SEPARATOR))
                || r["uri"]
                    .as_str()
                    .is_some_and(|u| u.starts_with(offers::RESOURCE_PREFIX))
        });
        if relayed || !self.conformance_fixtures {
            let mut result = offers::complete(&state, &caller, request).await?;
            result.result_type.get_or_insert(ResultType::COMPLETE);
            return Ok(result);
        }
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

impl GatehouseMcp {
    /// Forwards change events to a `subscriptions/listen` stream until the client cancels it
    /// or the server stops.
    async fn forward_events(
        &self,
        state: &AppState,
        caller: &McpCaller,
        subscription: &SubscriptionContext,
        events: &mut tokio::sync::broadcast::Receiver<McpEvent>,
    ) -> Result<(), ErrorData> {
        loop {
            let event = tokio::select! {
                _ = subscription.cancelled() => return Ok(()),
                _ = state.mcp.shutdown.cancelled() => return Ok(()),
                event = events.recv() => event,
            };
            let notifications = match event {
                Ok(event) if !event.is_for(caller.person.as_deref()) => continue,
                // 2026-07-28 has no completion notification: its clients retry instead.
                Ok(McpEvent::ElicitationComplete { .. }) => continue,
                Ok(event) => vec![event.notification()],
                // Fell behind: whatever was missed, the lists may all have changed.
                Err(RecvError::Lagged(_)) => [
                    McpEvent::ToolsChanged,
                    McpEvent::PromptsChanged,
                    McpEvent::ResourcesChanged,
                ]
                .iter()
                .map(McpEvent::notification)
                .collect(),
                Err(RecvError::Closed) => return Ok(()),
            };
            for notification in notifications {
                match subscription.sink().send(notification).await {
                    Ok(()) | Err(SubscriptionSendError::NotificationNotAccepted(_)) => {}
                    Err(_) => return Ok(()),
                }
            }
        }
    }
}
