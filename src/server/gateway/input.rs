//! Input required: a tool, prompt or resource that needs something from the client before it
//! can answer (a form or a link for the user, a completion from the client's model, the
//! client's roots) says so as data, an [`InputNeeded`]. This module carries it to the client
//! in the caller's protocol era and brings the answers back as the next [`InputRound`]:
//!
//! - **2026-07-28**: the request is answered with an `InputRequiredResult`
//!   (`resultType: "input_required"`) holding the requests and a sealed `requestState`; the
//!   client retries the same request with `inputResponses` and the state echoed.
//! - **2025 era**: Gatehouse sends the requests to the client itself, on the request's stream
//!   (`elicitation/create`, `sampling/createMessage`, `roots/list`), and runs the next round with
//!   the answers, all within the one request.
//!
//! Either way a request for a capability the client did not declare is never sent: the
//! answer is -32021 (missing required client capability) naming it.
//!
//! `requestState` is sealed with AES-256-GCM under the instance key, with the caller, the
//! method, the target and a digest of the arguments as associated data, and carries an expiry
//! and a round count. A state that was altered, has expired, or comes back from another caller
//! or for another call does not open, and the request is refused with -32602. (rmcp's own
//! `RequestStateCodec` reads the wall clock and signs without encrypting; this one takes the
//! injected time and keeps a tool's state private.)

use std::collections::BTreeMap;

use rmcp::model::{ClientCapabilities, InputRequest, InputRequests, InputRequiredResult};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde_json::{Map, Value, json};

use super::caller::McpCaller;
use crate::server::clock::UnixTime;
use crate::server::secrets::{MasterKey, Sealer, sha256_hex};

/// Rounds one request may take before Gatehouse gives up on it.
pub const MAX_ROUNDS: u32 = 10;
/// How long a `requestState` stays valid: time for a person to answer a form or open a link.
pub const STATE_TTL_SECS: i64 = 15 * 60;

/// The client's answers to the previous round's requests, and the state the handler kept.
#[derive(Debug, Clone, Default)]
pub struct InputRound {
    pub responses: BTreeMap<String, Value>,
    /// What the handler put in `InputNeeded::with_state`, back unaltered.
    pub state: Option<Value>,
}

impl InputRound {
    pub fn response(&self, key: &str) -> Option<&Value> {
        self.responses.get(key)
    }

    /// The content of an elicitation the user accepted under `key`.
    pub fn accepted(&self, key: &str) -> Option<&Map<String, Value>> {
        let response = self.response(key)?;
        (response.get("action").and_then(Value::as_str) == Some("accept"))
            .then(|| response.get("content").and_then(Value::as_object))
            .flatten()
    }

    /// How the user answered an elicitation under `key`: accept, decline or cancel.
    pub fn action(&self, key: &str) -> Option<&str> {
        self.response(key)?.get("action").and_then(Value::as_str)
    }
}

/// What a handler needs from the client before it can answer: requests by key, and state
/// of its own to find again in the next round.
#[derive(Debug, Clone, Default)]
pub struct InputNeeded {
    requests: Vec<(String, Value)>,
    state: Option<Value>,
}

impl InputNeeded {
    pub fn new() -> Self {
        InputNeeded::default()
    }

    fn request(mut self, key: &str, method: &str, params: Value) -> Self {
        self.requests
            .push((key.to_string(), json!({"method": method, "params": params})));
        self
    }

    /// Any request to the client, as `method` and its `params` (an upstream's, relayed).
    pub fn ask(self, key: &str, method: &str, params: Value) -> Self {
        self.request(key, method, params)
    }

    pub fn state(&self) -> Option<&Value> {
        self.state.as_ref()
    }

    /// A form for the user: `schema` is the flat object schema elicitation allows.
    pub fn elicit_form(self, key: &str, message: &str, schema: Value) -> Self {
        self.request(
            key,
            "elicitation/create",
            json!({"mode": "form", "message": message, "requestedSchema": schema}),
        )
    }

    /// A link the user opens in a browser (an OAuth sign-in, a payment): URL-mode elicitation.
    pub fn elicit_url(self, key: &str, message: &str, url: &str, elicitation_id: &str) -> Self {
        self.request(
            key,
            "elicitation/create",
            json!({"mode": "url", "message": message, "url": url, "elicitationId": elicitation_id}),
        )
    }

    /// A completion from the client's model (`sampling/createMessage` params).
    pub fn sample(self, key: &str, params: Value) -> Self {
        self.request(key, "sampling/createMessage", params)
    }

    /// The client's roots.
    pub fn list_roots(self, key: &str) -> Self {
        self.request(key, "roots/list", json!({}))
    }

    pub fn with_state(mut self, state: Value) -> Self {
        self.state = Some(state);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// The requests in rmcp's types; an error names a request Gatehouse itself built wrong.
    fn typed(&self) -> Result<InputRequests, ErrorData> {
        self.requests
            .iter()
            .map(|(key, request)| {
                serde_json::from_value::<InputRequest>(request.clone())
                    .map(|r| (key.clone(), r))
                    .map_err(|e| {
                        ErrorData::internal_error(format!("input request {key:?}: {e}"), None)
                    })
            })
            .collect()
    }

    /// The capability each request needs that `client` did not declare, as one
    /// `ClientCapabilities` object (`None`: all declared).
    fn missing_capabilities(&self, client: &ClientCaps) -> Option<Value> {
        let mut missing = Map::new();
        let mut need = |path: [&str; 2]| {
            let entry = missing.entry(path[0]).or_insert_with(|| json!({}));
            if !path[1].is_empty() {
                entry[path[1]] = json!({});
            }
        };
        for (_, request) in &self.requests {
            let url_mode = request["params"]["mode"] == "url";
            match request["method"].as_str() {
                Some("elicitation/create") if url_mode && !client.elicitation_url() => {
                    need(["elicitation", "url"])
                }
                Some("elicitation/create") if !url_mode && !client.elicitation_form() => {
                    need(["elicitation", "form"])
                }
                Some("sampling/createMessage") if !client.sampling() => need(["sampling", ""]),
                Some("roots/list") if !client.roots() => need(["roots", ""]),
                _ => {}
            }
        }
        (!missing.is_empty()).then_some(Value::Object(missing))
    }
}

/// A handler's answer: done, or not before the client has answered some requests, or not
/// before the user has opened a link.
pub enum Outcome<T> {
    Complete(T),
    NeedInput(InputNeeded),
    UrlRequired(UrlRequired),
}

/// JSON-RPC error of the 2025-11-25 revision: the request needs the user to open a link first.
pub const URL_ELICITATION_REQUIRED: i32 = -32042;

/// A link the user must open before the request can succeed (URL elicitation). In the
/// 2026-07-28 era an input request of `mode: "url"`, the retry carrying the sealed state; in
/// the 2025 era the error -32042 carrying the elicitation (what both official SDKs read as
/// `UrlElicitationRequiredError`), the client retrying when it likes, typically after
/// `notifications/elicitation/complete`. Only for clients that declared `elicitation.url`.
#[derive(Debug, Clone)]
pub struct UrlRequired {
    /// The input request's key in the 2026 era.
    pub key: String,
    pub message: String,
    pub url: String,
    pub elicitation_id: String,
}

impl UrlRequired {
    fn as_needed(&self) -> InputNeeded {
        InputNeeded::new().elicit_url(&self.key, &self.message, &self.url, &self.elicitation_id)
    }

    fn into_error(self) -> ErrorData {
        ErrorData::new(
            rmcp::model::ErrorCode(URL_ELICITATION_REQUIRED),
            self.message.clone(),
            Some(json!({"elicitations": [{
                "mode": "url",
                "url": self.url,
                "message": self.message,
                "elicitationId": self.elicitation_id,
            }]})),
        )
    }
}

impl<T> From<T> for Outcome<T> {
    fn from(value: T) -> Self {
        Outcome::Complete(value)
    }
}

/// The client capabilities of the request being served (2026: the request's own `_meta`;
/// 2025: what the session declared at `initialize`), as JSON.
#[derive(Debug, Clone, Default)]
pub struct ClientCaps(Value);

impl ClientCaps {
    pub fn of(context: &RequestContext<RoleServer>) -> Self {
        ClientCaps::from_value(
            context
                .client_capabilities()
                .and_then(|c| serde_json::to_value(c).ok())
                .unwrap_or(Value::Null),
        )
    }

    pub fn from_value(value: Value) -> Self {
        ClientCaps(value)
    }

    fn has(&self, pointer: &str) -> bool {
        self.0.pointer(pointer).is_some_and(|v| !v.is_null())
    }

    /// Form elicitation: declared explicitly, or implied by an `elicitation` object that
    /// names no mode (the 2025-06-18 form, which predates URL mode).
    pub fn elicitation_form(&self) -> bool {
        self.has("/elicitation/form") || (self.has("/elicitation") && !self.has("/elicitation/url"))
    }

    pub fn elicitation_url(&self) -> bool {
        self.has("/elicitation/url")
    }

    pub fn sampling(&self) -> bool {
        self.has("/sampling")
    }

    pub fn roots(&self) -> bool {
        self.has("/roots")
    }
}

/// What a `requestState` is bound to: who called, which method, on what, with which
/// arguments. A state sealed for one binding opens for no other.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding(String);

impl Binding {
    pub fn new(caller: &McpCaller, method: &str, target: &str, arguments: &Value) -> Self {
        Binding(format!(
            "mcp/request-state/v1|{}|{method}|{target}|{}",
            caller.key(),
            sha256_hex(canonical_json(arguments))
        ))
    }
}

/// JSON with object keys sorted at every level, so that a client echoing the same arguments
/// in another key order is still the same call.
fn canonical_json(value: &Value) -> String {
    fn sorted(value: &Value) -> Value {
        match value {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), sorted(v)))
                        .collect(),
                )
            }
            Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(value).to_string()
}

/// Seals and opens `requestState` values.
#[derive(Clone, Debug)]
pub struct RequestStates {
    sealer: Sealer,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SealedState {
    exp: UnixTime,
    round: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    state: Option<Value>,
}

impl RequestStates {
    pub fn new(master: &MasterKey) -> Self {
        RequestStates::with_previous(master, &[])
    }

    pub fn with_previous(master: &MasterKey, previous: &[MasterKey]) -> Self {
        RequestStates {
            sealer: Sealer::for_purpose(master, previous, "gatehouse/mcp-request-state/v1"),
        }
    }

    fn seal(&self, binding: &Binding, round: u32, state: Option<Value>, now: UnixTime) -> String {
        let body = SealedState {
            exp: now + STATE_TTL_SECS,
            round,
            state,
        };
        self.sealer.seal(
            &serde_json::to_string(&body).expect("a JSON value serializes"),
            &binding.0,
        )
    }

    /// The round count and the handler's state, or -32602 saying why not.
    fn open(
        &self,
        sealed: &str,
        binding: &Binding,
        now: UnixTime,
    ) -> Result<(u32, Option<Value>), ErrorData> {
        let refused = |why: &str| {
            ErrorData::invalid_params(
                format!(
                    "requestState {why}; send the request again without requestState and inputResponses."
                ),
                None,
            )
        };
        let opened = self.sealer.open(sealed, &binding.0).map_err(|_| {
            refused("failed its integrity check (altered, or issued for another caller or call)")
        })?;
        let body: SealedState =
            serde_json::from_str(opened.expose()).map_err(|_| refused("is malformed"))?;
        if body.exp <= now {
            return Err(refused("has expired"));
        }
        Ok((body.round, body.state))
    }
}

/// What the driver hands back: the handler's final answer, or the 2026 intermediate result.
pub enum Driven<T> {
    Complete(T),
    InputRequired(InputRequiredResult),
}

/// The retry's part of a request: what the client sent back from the previous round.
#[derive(Debug, Clone, Default)]
pub struct Retry {
    pub input_responses: Option<BTreeMap<String, Value>>,
    pub request_state: Option<String>,
}

/// Whether the request is served by the 2026-07-28 rules (no server-to-client requests).
pub fn is_2026(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|v| v.as_str() >= "2026-07-28")
}

/// A request that may take rounds: what its `requestState` is bound to, and what the client
/// sent back from the previous round.
pub struct InputCall<'a> {
    context: &'a RequestContext<RoleServer>,
    binding: Binding,
    retry: Retry,
}

impl<'a> InputCall<'a> {
    pub fn new(
        context: &'a RequestContext<RoleServer>,
        caller: &McpCaller,
        method: &str,
        target: &str,
        arguments: &Map<String, Value>,
        input_responses: Option<BTreeMap<String, Value>>,
        request_state: Option<String>,
    ) -> Self {
        InputCall {
            context,
            binding: Binding::new(caller, method, target, &Value::Object(arguments.clone())),
            retry: Retry {
                input_responses,
                request_state,
            },
        }
    }

    /// Runs `handler` round by round, in the caller's era (see the module's documentation).
    pub async fn drive<T, F, Fut>(
        self,
        states: &RequestStates,
        client: &ClientCaps,
        now: UnixTime,
        handler: F,
    ) -> Result<Driven<T>, ErrorData>
    where
        F: FnMut(Option<InputRound>) -> Fut,
        Fut: Future<Output = Result<Outcome<T>, ErrorData>>,
    {
        drive(
            self.context,
            states,
            &self.binding,
            client,
            self.retry,
            now,
            handler,
        )
        .await
    }
}

async fn drive<T, F, Fut>(
    context: &RequestContext<RoleServer>,
    states: &RequestStates,
    binding: &Binding,
    client: &ClientCaps,
    retry: Retry,
    now: UnixTime,
    mut handler: F,
) -> Result<Driven<T>, ErrorData>
where
    F: FnMut(Option<InputRound>) -> Fut,
    Fut: Future<Output = Result<Outcome<T>, ErrorData>>,
{
    if is_2026(context) {
        let (round, input) = first_round_2026(states, binding, retry, now)?;
        let outcome = match handler(input).await? {
            Outcome::UrlRequired(url) => Outcome::NeedInput(url.as_needed()),
            other => other,
        };
        return match outcome {
            Outcome::Complete(value) => Ok(Driven::Complete(value)),
            Outcome::UrlRequired(_) => unreachable!("turned into an input request above"),
            Outcome::NeedInput(needed) => {
                check_needed(&needed, client, round + 1)?;
                let requests = needed.typed()?;
                let sealed = states.seal(binding, round + 1, needed.state, now);
                Ok(Driven::InputRequired(InputRequiredResult::new(
                    Some(requests),
                    Some(sealed),
                )))
            }
        };
    }
    // The 2025 era: the rounds run here, the requests going out on the request's stream.
    let mut input = None;
    for round in 1..=MAX_ROUNDS + 1 {
        let needed = match handler(input.take()).await? {
            Outcome::Complete(value) => return Ok(Driven::Complete(value)),
            Outcome::NeedInput(needed) => needed,
            Outcome::UrlRequired(url) => {
                // Never an error naming a capability the client lacks: checked as a request.
                check_needed(&url.as_needed(), client, round)?;
                return Err(url.into_error());
            }
        };
        check_needed(&needed, client, round)?;
        let mut responses = BTreeMap::new();
        for (key, request) in needed.typed()? {
            responses.insert(key, ask(context, request).await?);
        }
        input = Some(InputRound {
            responses,
            state: needed.state,
        });
    }
    unreachable!("check_needed refuses the round past MAX_ROUNDS")
}

fn first_round_2026(
    states: &RequestStates,
    binding: &Binding,
    retry: Retry,
    now: UnixTime,
) -> Result<(u32, Option<InputRound>), ErrorData> {
    let responses = retry.input_responses.unwrap_or_default();
    for (key, response) in &responses {
        if !response.is_object() {
            return Err(ErrorData::invalid_params(
                format!(
                    "inputResponses.{key} must be an object: the client's result for the request of that key."
                ),
                None,
            ));
        }
    }
    match retry.request_state {
        Some(sealed) => {
            let (round, state) = states.open(&sealed, binding, now)?;
            Ok((round, Some(InputRound { responses, state })))
        }
        // Answers without state: a handler that keeps none (it asks again if they are not
        // what it needs).
        None if !responses.is_empty() => Ok((
            0,
            Some(InputRound {
                responses,
                state: None,
            }),
        )),
        None => Ok((0, None)),
    }
}

fn check_needed(needed: &InputNeeded, client: &ClientCaps, round: u32) -> Result<(), ErrorData> {
    if needed.is_empty() && needed.state.is_none() {
        return Err(ErrorData::internal_error(
            "a handler asked for input without saying what it needs",
            None,
        ));
    }
    if round > MAX_ROUNDS {
        return Err(ErrorData::invalid_request(
            format!("The request still needs input after {MAX_ROUNDS} rounds; giving up."),
            None,
        ));
    }
    if let Some(missing) = needed.missing_capabilities(client) {
        let required: ClientCapabilities = serde_json::from_value(missing)
            .map_err(|e| ErrorData::internal_error(format!("client capabilities: {e}"), None))?;
        return Err(ErrorData::missing_required_client_capability(required));
    }
    Ok(())
}

/// One request to the client on the 2025 stream; its result as JSON.
#[allow(deprecated)] // sampling and roots are deprecated in 2026, current in 2025
async fn ask(
    context: &RequestContext<RoleServer>,
    request: InputRequest,
) -> Result<Value, ErrorData> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        ErrorData::internal_error(format!("The client did not answer {what}: {e}"), None)
    };
    let peer = &context.peer;
    let value = match request {
        InputRequest::Elicitation(r) => serde_json::to_value(
            peer.create_elicitation(r.params)
                .await
                .map_err(|e| failed("elicitation/create", &e))?,
        ),
        InputRequest::CreateMessage(r) => serde_json::to_value(
            peer.create_message(r.params)
                .await
                .map_err(|e| failed("sampling/createMessage", &e))?,
        ),
        InputRequest::ListRoots(_) => serde_json::to_value(
            peer.list_roots()
                .await
                .map_err(|e| failed("roots/list", &e))?,
        ),
        _ => return Err(ErrorData::internal_error("an unknown input request", None)),
    };
    value.map_err(|e| ErrorData::internal_error(format!("client answer: {e}"), None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states() -> RequestStates {
        RequestStates::new(&MasterKey::from_bytes(
            b"0123456789abcdef0123456789abcdef".to_vec(),
        ))
    }

    fn binding(caller: &McpCaller, args: Value) -> Binding {
        Binding::new(caller, "tools/call", "t", &args)
    }

    #[test]
    fn state_opens_only_for_its_binding_and_before_it_expires() {
        let s = states();
        let alice = McpCaller::anonymous();
        let b = binding(&alice, json!({"a": 1, "b": [1, {"y": 2, "x": 1}]}));
        let sealed = s.seal(&b, 1, Some(json!({"step": 2})), 1000);
        assert!(!sealed.contains("step"), "the state is encrypted");
        // The same arguments in another key order are the same call.
        let same = binding(&alice, json!({"b": [1, {"x": 1, "y": 2}], "a": 1}));
        assert_eq!(
            s.open(&sealed, &same, 1001).unwrap(),
            (1, Some(json!({"step": 2})))
        );
        // Other arguments, another method, another caller, a tampered value: refused.
        assert!(
            s.open(&sealed, &binding(&alice, json!({"a": 2})), 1001)
                .is_err()
        );
        let other_method = Binding::new(
            &alice,
            "prompts/get",
            "t",
            &json!({"a": 1, "b": [1, {"y": 2, "x": 1}]}),
        );
        assert!(s.open(&sealed, &other_method, 1001).is_err());
        let bob = McpCaller {
            principal: super::super::caller::Principal::ApiToken {
                id: "t1".into(),
                name: "bob".into(),
                expires_at: None,
            },
            scopes: alice.scopes.clone(),
            person: Some("bob".into()),
        };
        let for_bob = binding(&bob, json!({"a": 1, "b": [1, {"y": 2, "x": 1}]}));
        assert!(s.open(&sealed, &for_bob, 1001).is_err());
        let e = s.open(&format!("{sealed}-TAMPERED"), &b, 1001).unwrap_err();
        assert_eq!(e.code.0, -32602);
        assert!(e.message.contains("integrity"), "{}", e.message);
        // Expired.
        let e = s.open(&sealed, &b, 1000 + STATE_TTL_SECS).unwrap_err();
        assert!(e.message.contains("expired"), "{}", e.message);
    }

    #[test]
    fn capabilities_are_read_the_way_the_spec_defines_them() {
        let caps = |v: Value| ClientCaps::from_value(v);
        assert!(caps(json!({"elicitation": {}})).elicitation_form());
        assert!(!caps(json!({"elicitation": {}})).elicitation_url());
        assert!(!caps(json!({"elicitation": {"url": {}}})).elicitation_form());
        assert!(caps(json!({"elicitation": {"form": {}, "url": {}}})).elicitation_url());
        assert!(!caps(json!({})).sampling());
        assert!(caps(json!({"sampling": {}, "roots": {"listChanged": true}})).roots());

        let needed = InputNeeded::new()
            .elicit_form("f", "Name?", json!({"type": "object", "properties": {}}))
            .elicit_url("u", "Sign in", "https://gh.example/x", "e1")
            .sample("s", json!({"messages": [], "maxTokens": 1}))
            .list_roots("r");
        assert_eq!(
            needed.missing_capabilities(&caps(json!({"sampling": {}}))),
            Some(json!({"elicitation": {"form": {}, "url": {}}, "roots": {}}))
        );
        assert_eq!(
            needed.missing_capabilities(&caps(json!({"elicitation": {}, "sampling": {}}))),
            Some(json!({"elicitation": {"url": {}}, "roots": {}}))
        );
        assert_eq!(
            needed.missing_capabilities(&caps(
                json!({"elicitation": {"form": {}, "url": {}}, "sampling": {}, "roots": {}})
            )),
            None
        );
        assert_eq!(needed.typed().unwrap().len(), 4);
    }

    #[test]
    fn answers_are_read_by_key() {
        let round = InputRound {
            responses: BTreeMap::from([
                (
                    "a".into(),
                    json!({"action": "accept", "content": {"name": "Alice"}}),
                ),
                ("d".into(), json!({"action": "decline"})),
            ]),
            state: None,
        };
        assert_eq!(round.accepted("a").unwrap()["name"], "Alice");
        assert!(round.accepted("d").is_none());
        assert_eq!(round.action("d"), Some("decline"));
        assert!(round.accepted("missing").is_none());
    }

    #[test]
    fn retries_are_checked_before_any_handler_runs() {
        let s = states();
        let b = binding(&McpCaller::anonymous(), json!({}));
        let bad = Retry {
            input_responses: Some(BTreeMap::from([("k".into(), json!("text"))])),
            request_state: None,
        };
        assert!(first_round_2026(&s, &b, bad, 1).is_err());
        let (round, input) = first_round_2026(&s, &b, Retry::default(), 1).unwrap();
        assert_eq!(round, 0);
        assert!(input.is_none());
        let sealed = s.seal(&b, 3, None, 1);
        let (round, input) = first_round_2026(
            &s,
            &b,
            Retry {
                input_responses: None,
                request_state: Some(sealed),
            },
            2,
        )
        .unwrap();
        assert_eq!(round, 3);
        assert!(input.unwrap().responses.is_empty());
        let too_many = InputNeeded::new().list_roots("r");
        let all = ClientCaps::from_value(json!({"roots": {}}));
        assert!(check_needed(&too_many, &all, MAX_ROUNDS).is_ok());
        assert!(check_needed(&too_many, &all, MAX_ROUNDS + 1).is_err());
    }
}
