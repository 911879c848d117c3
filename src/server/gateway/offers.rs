//! What upstreams offer besides tools: prompts, resources (and their templates) and
//! completions, relayed under names that say which server they come from.
//!
//! - A prompt is `<server>__<name>`, like a tool.
//! - A resource's URI becomes `gatehouse://<server>/<its URI>` (a template's likewise, its
//!   `{…}` expressions untouched, so a client expands it to a URI that maps back). Two servers'
//!   `file:///README.md` stay two resources, and a read goes to the server that listed it.
//!
//! Lists are not cached: each `prompts/list` or `resources/list` asks every enabled server
//! that offers the kind, all at once, each under its own timeout; one that fails or is slow is
//! left out of that answer (and logged), never holding up the others. The server's policy
//! hides what it names from lists and refuses it by name.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use rmcp::ErrorData;
use rmcp::model::{
    ClientRequest, CompleteRequest, CompleteRequestParams, CompleteResult, GetPromptRequest,
    GetPromptRequestParams, GetPromptResult, Prompt, ReadResourceRequest,
    ReadResourceRequestParams, ReadResourceResult, Reference, Resource, ResourceTemplate,
    ServerResult, SubscribeRequestParams, UnsubscribeRequestParams,
};

use super::caller::McpCaller;
use super::upstream_client::{PROMPTS, RESOURCE_TEMPLATES, RESOURCES, UpstreamError};
use super::upstreams::{Failure, SEPARATOR, Upstream, failure_text, with_session};
use crate::server::state::AppState;

/// The scheme of relayed resources: `gatehouse://<server>/<the server's URI>`.
pub const RESOURCE_PREFIX: &str = "gatehouse://";

/// A server's resource URI (or URI template) as `/mcp` shows it.
pub fn wrap_uri(server: &str, uri: &str) -> String {
    format!("{RESOURCE_PREFIX}{server}/{uri}")
}

/// The server and its own URI of a relayed resource.
pub fn unwrap_uri(uri: &str) -> Option<(&str, &str)> {
    let rest = uri.strip_prefix(RESOURCE_PREFIX)?;
    let (server, original) = rest.split_once('/')?;
    (!server.is_empty() && !original.is_empty()).then_some((server, original))
}

/// Which kind a fan-out asks for: whether a server offers it, judged by what it said at the
/// handshake.
#[derive(Clone, Copy)]
enum Kind {
    Prompts,
    Resources,
}

impl Kind {
    fn offered_by(self, caps: &rmcp::model::ServerCapabilities) -> bool {
        match self {
            Kind::Prompts => caps.prompts.is_some(),
            Kind::Resources => caps.resources.is_some(),
        }
    }
}

/// Runs `op` on every enabled upstream offering `kind`, as `caller`, at once; what each
/// answered, in server order, failures left out.
async fn fan_out<T, F, Fut>(state: &AppState, caller: &McpCaller, kind: Kind, op: F) -> Vec<T>
where
    F: Fn(Arc<Upstream>, Arc<super::upstream_client::UpstreamSession>, http::HeaderMap) -> Fut
        + Clone,
    Fut: Future<Output = Result<Vec<T>, UpstreamError>>,
{
    let now = state.now();
    let person = caller.person.as_deref();
    let upstreams = state.upstreams.snapshot();
    let asks = upstreams
        .iter()
        .filter(|u| u.enabled() && u.breaker_open(now).is_none())
        .cloned()
        .map(|upstream| {
            let op = op.clone();
            async move {
                let asked = with_session(state, &upstream, person, |session, headers| {
                    let (upstream, op) = (upstream.clone(), op.clone());
                    async move {
                        if !kind.offered_by(&session.capabilities) {
                            return Ok(Vec::new());
                        }
                        op(upstream, session, headers).await
                    }
                });
                match tokio::time::timeout(upstream.timeout(), asked).await {
                    Ok(Ok(items)) => items,
                    // Their own account to connect: nothing of it for them yet.
                    Ok(Err(Failure::Connect { .. })) => Vec::new(),
                    Ok(Err(f)) => {
                        tracing::warn!(server = %upstream.row.name, error = %failure_text(&f), "upstream list left out");
                        Vec::new()
                    }
                    Err(_) => {
                        tracing::warn!(server = %upstream.row.name, "upstream list left out: it did not answer in time");
                        Vec::new()
                    }
                }
            }
        });
    futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .collect()
}

pub async fn list_prompts(state: &AppState, caller: &McpCaller) -> Vec<Prompt> {
    fan_out(
        state,
        caller,
        Kind::Prompts,
        |upstream, session, headers| async move {
            let prompts = session.list_all(PROMPTS, "prompts/list", &headers).await?;
            Ok(prompts
                .into_iter()
                .filter(|p| upstream.policy.prompts.allows(&p.name))
                .map(|mut p| {
                    p.name = format!("{}{SEPARATOR}{}", upstream.row.name, p.name);
                    p
                })
                .collect())
        },
    )
    .await
}

pub async fn list_resources(state: &AppState, caller: &McpCaller) -> Vec<Resource> {
    fan_out(
        state,
        caller,
        Kind::Resources,
        |upstream, session, headers| async move {
            let resources = session
                .list_all(RESOURCES, "resources/list", &headers)
                .await?;
            Ok(resources
                .into_iter()
                .filter(|r| upstream.policy.resources.allows(&r.uri))
                .map(|mut r| {
                    r.uri = wrap_uri(&upstream.row.name, &r.uri);
                    r
                })
                .collect())
        },
    )
    .await
}

pub async fn list_resource_templates(
    state: &AppState,
    caller: &McpCaller,
) -> Vec<ResourceTemplate> {
    fan_out(
        state,
        caller,
        Kind::Resources,
        |upstream, session, headers| async move {
            let templates = session
                .list_all(RESOURCE_TEMPLATES, "resources/templates/list", &headers)
                .await?;
            Ok(templates
                .into_iter()
                .filter(|t| upstream.policy.resources.allows(&t.uri_template))
                .map(|mut t| {
                    t.uri_template = wrap_uri(&upstream.row.name, &t.uri_template);
                    t
                })
                .collect())
        },
    )
    .await
}

/// The enabled upstream called `server`, or the error a name that does not exist gets.
fn upstream_named(
    state: &AppState,
    server: &str,
    unknown: impl Fn() -> ErrorData,
) -> Result<Arc<Upstream>, ErrorData> {
    state
        .upstreams
        .snapshot()
        .iter()
        .find(|u| u.row.name == server && u.enabled())
        .cloned()
        .ok_or_else(unknown)
}

/// One request to one upstream as the caller; failures as JSON-RPC errors naming the server
/// (an upstream's own error keeps its code).
async fn ask(
    state: &AppState,
    caller: &McpCaller,
    upstream: &Upstream,
    request: ClientRequest,
) -> Result<ServerResult, ErrorData> {
    let server = &upstream.row.name;
    if let Some(reason) = upstream.breaker_open(state.now()) {
        return Err(ErrorData::internal_error(
            format!("The MCP server {server} is unavailable ({reason})."),
            None,
        ));
    }
    let person = caller.person.as_deref();
    let asked = with_session(state, upstream, person, |session, headers| {
        let request = request.clone();
        async move { session.request(request, &headers).await }
    });
    match tokio::time::timeout(upstream.timeout(), asked).await {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(Failure::Rpc { code, message })) => Err(ErrorData::new(
            rmcp::model::ErrorCode(i32::try_from(code).unwrap_or(-32603)),
            format!("The MCP server {server} returned an error: {message}"),
            None,
        )),
        Ok(Err(f)) => Err(ErrorData::internal_error(
            format!("The MCP server {server} failed: {}.", failure_text(&f)),
            None,
        )),
        Err(_) => Err(ErrorData::internal_error(
            format!(
                "The MCP server {server} failed: it did not answer within {} s.",
                upstream.row.timeout_secs
            ),
            None,
        )),
    }
}

fn unexpected(server: &str, method: &str) -> ErrorData {
    ErrorData::internal_error(
        format!("The MCP server {server} answered {method} with something else."),
        None,
    )
}

/// Who watches which relayed resource: a 2025-era session (by its id) or a 2026-07-28
/// `subscriptions/listen` stream (by an id of its own), each as one caller. Each resource is
/// subscribed to at its upstream once per person (a per-person server's sessions are each
/// person's), while anyone watches it; what an upstream says was updated goes to the
/// watchers (`watches`). Kept in this process: the upstream session that hears the updates
/// is this replica's.
#[derive(Default)]
pub struct Watches(std::sync::Mutex<HashMap<String, Watcher>>);

struct Watcher {
    person: Option<String>,
    uris: HashSet<String>,
}

impl Watches {
    /// Whether `watcher` watches `uri` (a relayed URI).
    pub fn watches(&self, watcher: &str, uri: &str) -> bool {
        self.0
            .lock()
            .expect("watches lock")
            .get(watcher)
            .is_some_and(|w| w.uris.contains(uri))
    }

    /// Whether anyone of `person`'s watches `uri`.
    fn watched(&self, person: Option<&str>, uri: &str) -> bool {
        self.0
            .lock()
            .expect("watches lock")
            .values()
            .any(|w| w.person.as_deref() == person && w.uris.contains(uri))
    }
}

fn unknown_resource(uri: &str) -> ErrorData {
    ErrorData::resource_not_found(format!("Unknown resource: {uri}"), None)
}

/// `resources/subscribe` (or a `subscriptions/listen` stream's resource) of a relayed URI,
/// for `watcher`: subscribed at the upstream unless someone of the caller's already is.
// `resources/subscribe` is the 2025 revisions' way, the one upstream sessions speak.
#[allow(deprecated)]
pub async fn subscribe(
    state: &AppState,
    caller: &McpCaller,
    watcher: &str,
    uri: &str,
) -> Result<(), ErrorData> {
    let (server, original) = unwrap_uri(uri).ok_or_else(|| unknown_resource(uri))?;
    let upstream = upstream_named(state, server, || unknown_resource(uri))?;
    if !upstream.policy.resources.allows(original) {
        return Err(unknown_resource(uri));
    }
    let watches = &state.mcp.watches;
    let person = caller.person.as_deref();
    if !watches.watched(person, uri) {
        let request = ClientRequest::SubscribeRequest(rmcp::model::SubscribeRequest::new(
            SubscribeRequestParams::new(original),
        ));
        match ask(state, caller, &upstream, request).await? {
            ServerResult::EmptyResult(_) => {}
            _ => return Err(unexpected(server, "resources/subscribe")),
        }
    }
    watches
        .0
        .lock()
        .expect("watches lock")
        .entry(watcher.to_string())
        .or_insert_with(|| Watcher {
            person: caller.person.clone(),
            uris: HashSet::new(),
        })
        .uris
        .insert(uri.to_string());
    Ok(())
}

/// `resources/unsubscribe`: the watcher stops watching `uri`, and the upstream is told when
/// nobody of the caller's watches it any longer.
#[allow(deprecated)]
pub async fn unsubscribe(
    state: &AppState,
    caller: &McpCaller,
    watcher: &str,
    uri: &str,
) -> Result<(), ErrorData> {
    let removed = {
        let mut watches = state.mcp.watches.0.lock().expect("watches lock");
        let removed = watches.get_mut(watcher).is_some_and(|w| w.uris.remove(uri));
        watches.retain(|_, w| !w.uris.is_empty());
        removed
    };
    if removed && !state.mcp.watches.watched(caller.person.as_deref(), uri) {
        let (server, original) = unwrap_uri(uri).ok_or_else(|| unknown_resource(uri))?;
        let upstream = upstream_named(state, server, || unknown_resource(uri))?;
        let request = ClientRequest::UnsubscribeRequest(rmcp::model::UnsubscribeRequest::new(
            UnsubscribeRequestParams::new(original),
        ));
        ask(state, caller, &upstream, request).await?;
    }
    Ok(())
}

/// A watcher that ended (its session or stream closed): what it watched alone is
/// unsubscribed at the upstreams.
pub async fn forget_watcher(state: &AppState, caller: &McpCaller, watcher: &str) {
    let uris: Vec<String> = state
        .mcp
        .watches
        .0
        .lock()
        .expect("watches lock")
        .get(watcher)
        .map(|w| w.uris.iter().cloned().collect())
        .unwrap_or_default();
    for uri in uris {
        if let Err(e) = unsubscribe(state, caller, watcher, &uri).await {
            tracing::debug!(uri = %uri, error = %e.message, "unsubscribing a closed watcher's resource");
        }
    }
}

/// `prompts/get` of `<server>__<name>`.
pub async fn get_prompt(
    state: &AppState,
    caller: &McpCaller,
    mut params: GetPromptRequestParams,
) -> Result<GetPromptResult, ErrorData> {
    let name = params.name.clone();
    let unknown = || ErrorData::invalid_params(format!("Unknown prompt: {name}"), None);
    let (server, prompt) = name.split_once(SEPARATOR).ok_or_else(unknown)?;
    let upstream = upstream_named(state, server, unknown)?;
    if !upstream.policy.prompts.allows(prompt) {
        return Err(unknown());
    }
    params.name = prompt.to_string();
    let request = ClientRequest::GetPromptRequest(GetPromptRequest::new(params));
    match ask(state, caller, &upstream, request).await? {
        ServerResult::GetPromptResult(result) => Ok(result),
        _ => Err(unexpected(server, "prompts/get")),
    }
}

/// `resources/read` of `gatehouse://<server>/<uri>`; the contents' URIs come back relayed.
pub async fn read_resource(
    state: &AppState,
    caller: &McpCaller,
    mut params: ReadResourceRequestParams,
) -> Result<ReadResourceResult, ErrorData> {
    let uri = params.uri.clone();
    let unknown = || {
        ErrorData::resource_not_found(
            format!("Unknown resource: {uri}"),
            Some(serde_json::json!({"uri": uri})),
        )
    };
    let (server, original) = unwrap_uri(&uri).ok_or_else(unknown)?;
    let upstream = upstream_named(state, server, unknown)?;
    if !upstream.policy.resources.allows(original) {
        return Err(unknown());
    }
    params.uri = original.to_string();
    let request = ClientRequest::ReadResourceRequest(ReadResourceRequest::new(params));
    match ask(state, caller, &upstream, request).await? {
        ServerResult::ReadResourceResult(mut result) => {
            for contents in &mut result.contents {
                rewrap_contents(server, contents);
            }
            Ok(result)
        }
        _ => Err(unexpected(server, "resources/read")),
    }
}

fn rewrap_contents(server: &str, contents: &mut rmcp::model::ResourceContents) {
    use rmcp::model::ResourceContents as C;
    let uri = match contents {
        C::TextResourceContents { uri, .. } | C::BlobResourceContents { uri, .. } => uri,
        #[allow(unreachable_patterns)]
        _ => return,
    };
    *uri = wrap_uri(server, uri);
}

/// `completion/complete` for a relayed prompt's or resource template's argument.
pub async fn complete(
    state: &AppState,
    caller: &McpCaller,
    params: CompleteRequestParams,
) -> Result<CompleteResult, ErrorData> {
    let unknown = |what: &str| ErrorData::invalid_params(format!("Unknown {what}"), None);
    let mut params = params;
    // The relayed name or URI, renamed in place to the server's own.
    let (server, upstream) = match &mut params.r#ref {
        Reference::Prompt(prompt) => {
            let name = prompt.name.clone();
            let (server, local) = name
                .split_once(SEPARATOR)
                .ok_or_else(|| unknown(&format!("prompt: {name}")))?;
            let upstream = upstream_named(state, server, || unknown("server"))?;
            if !upstream.policy.prompts.allows(local) {
                return Err(unknown("prompt"));
            }
            prompt.name = local.to_string();
            (server.to_string(), upstream)
        }
        Reference::Resource(template) => {
            let uri = template.uri.clone();
            let (server, local) =
                unwrap_uri(&uri).ok_or_else(|| unknown(&format!("resource: {uri}")))?;
            let upstream = upstream_named(state, server, || unknown("server"))?;
            if !upstream.policy.resources.allows(local) {
                return Err(unknown("resource"));
            }
            template.uri = local.to_string();
            (server.to_string(), upstream)
        }
        // A kind of reference of a later revision.
        _ => return Err(unknown("reference type")),
    };
    let request = ClientRequest::CompleteRequest(CompleteRequest::new(params));
    match ask(state, caller, &upstream, request).await? {
        ServerResult::CompleteResult(result) => Ok(result),
        _ => Err(unexpected(&server, "completion/complete")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_uris_round_trip() {
        for original in [
            "file:///docs/readme.md",
            "https://x.example/a?b=c#d",
            "users://{id}/profile",
            "test://static-text",
        ] {
            let wrapped = wrap_uri("docs", original);
            assert_eq!(unwrap_uri(&wrapped), Some(("docs", original)), "{wrapped}");
        }
        assert_eq!(wrap_uri("docs", "file:///a"), "gatehouse://docs/file:///a");
        assert_eq!(unwrap_uri("file:///a"), None);
        assert_eq!(unwrap_uri("gatehouse://docs"), None);
        assert_eq!(unwrap_uri("gatehouse:///x"), None);
    }
}
