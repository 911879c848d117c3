//! Fixtures for the official MCP conformance suite (`@modelcontextprotocol/conformance`): the
//! `test_*` tools, `test://` resources and `test_*` prompts its server scenarios call. They
//! exist only with `MCP_CONFORMANCE_FIXTURES=true`, a testing aid; a real deployment never
//! turns it on. Results are written as the JSON the scenarios specify and decoded into rmcp's
//! types, so the fixtures read like the specification they follow.

use std::time::Duration;

use rmcp::model::{
    CallToolResult, GetPromptResult, JsonObject, ListPromptsResult, ListResourceTemplatesResult,
    ListResourcesResult, ReadResourceResult, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::caller::McpCaller;
use super::events::McpEvent;
use super::input::{InputNeeded, InputRound, Outcome, is_2026};
use super::tools::{ToolContext, ToolFuture, ToolOutcome, ToolSource, tool_error};

/// A 1×1 red PNG.
pub const RED_PIXEL_PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";
/// A 44-byte WAV file with no samples.
pub const SILENT_WAV: &str = "UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAIA+AAACABAAZGF0YQAAAAA=";

fn decode<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("fixture JSON matches the rmcp model")
}

fn no_arguments() -> Value {
    json!({"type": "object", "properties": {}})
}

fn tool(name: &str, description: &str, schema: Value) -> Tool {
    decode(json!({"name": name, "description": description, "inputSchema": schema}))
}

fn text(value: &str) -> CallToolResult {
    decode(json!({"content": [{"type": "text", "text": value}]}))
}

pub struct ConformanceFixtures;

impl ToolSource for ConformanceFixtures {
    fn list(&self, _caller: &McpCaller) -> Vec<Tool> {
        let message_schema = |name: &str, description: &str| json!({"type": "object", "properties": {name: {"type": "string", "description": description}}, "required": [name]});
        vec![
            tool("test_simple_text", "Returns simple text.", no_arguments()),
            tool("test_image_content", "Returns an image.", no_arguments()),
            tool("test_audio_content", "Returns audio.", no_arguments()),
            tool(
                "test_embedded_resource",
                "Returns an embedded resource.",
                no_arguments(),
            ),
            tool(
                "test_multiple_content_types",
                "Returns text, an image and a resource.",
                no_arguments(),
            ),
            tool(
                "test_tool_with_logging",
                "Sends three log messages while it runs.",
                no_arguments(),
            ),
            tool(
                "test_tool_with_progress",
                "Reports progress while it runs.",
                no_arguments(),
            ),
            tool("test_error_handling", "Always fails.", no_arguments()),
            tool(
                "test_sampling",
                "Asks the client's LLM.",
                message_schema("prompt", "The prompt to send to the LLM"),
            ),
            tool(
                "test_elicitation",
                "Asks the user.",
                message_schema("message", "The message to show the user"),
            ),
            tool(
                "test_elicitation_sep1034_defaults",
                "Asks the user, with defaults.",
                no_arguments(),
            ),
            tool(
                "test_elicitation_sep1330_enums",
                "Asks the user to choose.",
                no_arguments(),
            ),
            tool(
                "test_input_required_result_elicitation",
                "Asks the user's name (2026: as an InputRequiredResult).",
                no_arguments(),
            ),
            tool(
                "test_input_required_result_sampling",
                "Asks the client's model a question.",
                no_arguments(),
            ),
            tool(
                "test_input_required_result_list_roots",
                "Asks for the client's roots.",
                no_arguments(),
            ),
            tool(
                "test_input_required_result_request_state",
                "Asks for a confirmation and keeps state between the rounds.",
                no_arguments(),
            ),
            tool(
                "test_input_required_result_multiple_inputs",
                "Asks for a form, a completion and the roots at once.",
                no_arguments(),
            ),
            tool(
                "test_input_required_result_multi_round",
                "Asks two questions, one round each.",
                no_arguments(),
            ),
            tool(
                "test_input_required_result_tampered_state",
                "Keeps integrity-protected state between rounds.",
                no_arguments(),
            ),
            tool(
                "test_input_required_result_capabilities",
                "Asks only for what the client declared it can do.",
                no_arguments(),
            ),
            tool(
                "test_missing_capability",
                "Needs sampling, whatever the client declared.",
                no_arguments(),
            ),
            tool(
                "test_streaming_elicitation",
                "Asks the user something while it runs.",
                no_arguments(),
            ),
            tool(
                "test_logging_tool",
                "Logs, at the level the request asks for (2026: only when it asks).",
                no_arguments(),
            ),
            tool(
                "test_trigger_tool_change",
                "Announces that the tool list changed.",
                no_arguments(),
            ),
            tool(
                "test_trigger_prompt_change",
                "Announces that the prompt list changed.",
                no_arguments(),
            ),
            tool(
                "test_header_param",
                "Echoes a parameter that travels in an Mcp-Param header too (SEP-2243).",
                json!({"type": "object", "properties": {
                    "region": {"type": "string", "description": "A region", "x-mcp-header": "Region"}
                }, "required": ["region"]}),
            ),
            tool(
                "json_schema_2020_12_tool",
                "Tool with JSON Schema 2020-12 features",
                json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "type": "object",
                    "$defs": {"address": {"$anchor": "addressDef", "type": "object",
                        "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
                    "properties": {
                        "name": {"type": "string"},
                        "address": {"$ref": "#/$defs/address"},
                        "contactMethod": {"type": "string", "enum": ["phone", "email"]},
                        "phone": {"type": "string"},
                        "email": {"type": "string"}
                    },
                    "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
                    "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
                    "then": {"required": ["phone"]},
                    "else": {"required": ["email"]},
                    "additionalProperties": false
                }),
            ),
        ]
    }

    fn call<'a>(
        &'a self,
        ctx: ToolContext<'a>,
        name: &'a str,
        arguments: JsonObject,
    ) -> Option<ToolFuture<'a>> {
        if !self.list(ctx.caller).iter().any(|t| t.name == name) {
            return None;
        }
        Some(Box::pin(async move {
            let request = ctx.request;
            let input = ctx.input;
            match name {
                "test_simple_text" => text("This is a simple text response for testing.").into(),
                "test_image_content" => decode::<CallToolResult>(json!({"content": [{"type": "image", "data": RED_PIXEL_PNG, "mimeType": "image/png"}]})).into(),
                "test_audio_content" => decode::<CallToolResult>(json!({"content": [{"type": "audio", "data": SILENT_WAV, "mimeType": "audio/wav"}]})).into(),
                "test_embedded_resource" => decode::<CallToolResult>(json!({"content": [{"type": "resource", "resource": {
                    "uri": "test://embedded-resource", "mimeType": "text/plain", "text": "This is an embedded resource content."}}]})).into(),
                "test_multiple_content_types" => decode::<CallToolResult>(json!({"content": [
                    {"type": "text", "text": "Multiple content types test:"},
                    {"type": "image", "data": RED_PIXEL_PNG, "mimeType": "image/png"},
                    {"type": "resource", "resource": {"uri": "test://mixed-content-resource", "mimeType": "application/json",
                        "text": "{\"test\":\"data\",\"value\":123}"}}
                ]})).into(),
                "test_error_handling" => tool_error("This tool intentionally returns an error for testing").into(),
                "test_tool_with_logging" => with_logging(request, false).await.into(),
                "test_logging_tool" => with_logging(request, true).await.into(),
                "test_tool_with_progress" => with_progress(request).await.into(),
                "test_sampling" => {
                    let prompt = arguments.get("prompt").and_then(Value::as_str).unwrap_or_default();
                    match input.and_then(|i| i.response("reply")) {
                        Some(reply) => text(&format!("LLM response: {}", sampled_text(reply))).into(),
                        None => Outcome::NeedInput(InputNeeded::new().sample("reply", json!({
                            "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
                            "maxTokens": 100
                        }))),
                    }
                }
                "test_elicitation" => {
                    let message = arguments.get("message").and_then(Value::as_str).unwrap_or_default();
                    elicit(input, message, json!({"type": "object", "properties": {
                        "username": {"type": "string", "description": "User's response"},
                        "email": {"type": "string", "description": "User's email address"}
                    }, "required": ["username", "email"]}), "User response: ")
                }
                "test_elicitation_sep1034_defaults" => elicit(input, "Please review your details", json!({"type": "object", "properties": {
                    "name": {"type": "string", "default": "John Doe"},
                    "age": {"type": "integer", "default": 30},
                    "score": {"type": "number", "default": 95.5},
                    "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
                    "verified": {"type": "boolean", "default": true}
                }}), "Elicitation completed: "),
                "test_elicitation_sep1330_enums" => elicit(input, "Choose options", json!({"type": "object", "properties": {
                    "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
                    "titledSingle": {"type": "string", "oneOf": [
                        {"const": "value1", "title": "First Option"}, {"const": "value2", "title": "Second Option"}, {"const": "value3", "title": "Third Option"}]},
                    "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"]},
                    "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                    "titledMulti": {"type": "array", "items": {"anyOf": [
                        {"const": "value1", "title": "First Choice"}, {"const": "value2", "title": "Second Choice"}, {"const": "value3", "title": "Third Choice"}]}}
                }}), "Elicitation completed: "),
                "test_header_param" => {
                    let region = arguments.get("region").and_then(Value::as_str).unwrap_or_default();
                    text(&format!("region={region}")).into()
                }
                "test_trigger_tool_change" => {
                    ctx.state.mcp.events.send(McpEvent::ToolsChanged);
                    text("The tool list changed.").into()
                }
                "test_trigger_prompt_change" => {
                    ctx.state.mcp.events.send(McpEvent::PromptsChanged);
                    text("The prompt list changed.").into()
                }
                other => input_required_fixture(other, ctx),
            }
        }))
    }
}

fn name_schema(property: &str) -> Value {
    json!({"type": "object", "properties": {property: {"type": "string"}}, "required": [property]})
}

fn sampled_text(reply: &Value) -> String {
    reply["content"]["text"]
        .as_str()
        .or_else(|| reply["content"][0]["text"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// A form for the user, answered (2025: on the stream; 2026: in the retry) as
/// `<prefix>action=…, content=…`.
fn elicit(input: Option<&InputRound>, message: &str, schema: Value, prefix: &str) -> ToolOutcome {
    match input.and_then(|i| i.response("answer")) {
        Some(answer) => {
            let action = answer["action"].as_str().unwrap_or("unknown");
            let content = answer.get("content").cloned().unwrap_or(Value::Null);
            text(&format!("{prefix}action={action}, content={content}")).into()
        }
        None => Outcome::NeedInput(InputNeeded::new().elicit_form("answer", message, schema)),
    }
}

/// The 2026-07-28 input-required scenarios (SEP-2322), each as its scenario describes it.
fn input_required_fixture(name: &str, ctx: ToolContext<'_>) -> ToolOutcome {
    let input = ctx.input;
    let accepted = |key: &str| input.and_then(|i| i.accepted(key));
    let answered = |key: &str| input.and_then(|i| i.response(key)).is_some();
    let state = input.and_then(|i| i.state.clone());
    let ask_name = |key: &str, message: &str| {
        InputNeeded::new().elicit_form(key, message, name_schema("name"))
    };
    let capital = json!({"messages": [{"role": "user", "content": {"type": "text", "text": "What is the capital of France?"}}], "maxTokens": 100});
    match name {
        "test_input_required_result_elicitation" => match accepted("user_name")
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
        {
            Some(name) => text(&format!("Hello, {name}!")).into(),
            None => Outcome::NeedInput(ask_name("user_name", "What is your name?")),
        },
        "test_input_required_result_sampling" => {
            match input.and_then(|i| i.response("capital_question")) {
                Some(reply) => text(&format!("The model answered: {}", sampled_text(reply))).into(),
                None => Outcome::NeedInput(InputNeeded::new().sample("capital_question", capital)),
            }
        }
        "test_input_required_result_list_roots" => {
            match input.and_then(|i| i.response("client_roots")) {
                Some(roots) => {
                    let uris: Vec<&str> = roots["roots"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|r| r["uri"].as_str())
                        .collect();
                    text(&format!("The client's roots: {}", uris.join(", "))).into()
                }
                None => Outcome::NeedInput(InputNeeded::new().list_roots("client_roots")),
            }
        }
        "test_input_required_result_request_state" => {
            if answered("confirm") && state == Some(json!({"asked": "confirm"})) {
                text("state-ok: the confirmation arrived with the state it was asked with.").into()
            } else {
                Outcome::NeedInput(
                    InputNeeded::new()
                        .elicit_form("confirm", "Please confirm", json!({"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}))
                        .with_state(json!({"asked": "confirm"})),
                )
            }
        }
        "test_input_required_result_multiple_inputs" => {
            if ["user_name", "greeting", "client_roots"]
                .iter()
                .all(|k| answered(k))
                && state.is_some()
            {
                let name = accepted("user_name")
                    .and_then(|c| c.get("name"))
                    .and_then(Value::as_str)
                    .unwrap_or("friend");
                let greeting = sampled_text(
                    input
                        .and_then(|i| i.response("greeting"))
                        .unwrap_or(&Value::Null),
                );
                text(&format!("{greeting} {name}: all three answers arrived.")).into()
            } else {
                Outcome::NeedInput(
                    ask_name("user_name", "What is your name?")
                        .sample("greeting", json!({"messages": [{"role": "user", "content": {"type": "text", "text": "Generate a greeting"}}], "maxTokens": 50}))
                        .list_roots("client_roots")
                        .with_state(json!({"asked": ["user_name", "greeting", "client_roots"]})),
                )
            }
        }
        "test_input_required_result_multi_round" => {
            let step = state.as_ref().and_then(|s| s["step"].as_u64()).unwrap_or(0);
            let name = state
                .as_ref()
                .and_then(|s| s["name"].as_str())
                .map(str::to_string);
            match (step, accepted("step1"), accepted("step2"), name) {
                (1, Some(answer), _, _) => {
                    let name = answer
                        .get("name")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    Outcome::NeedInput(
                        InputNeeded::new()
                            .elicit_form(
                                "step2",
                                "Step 2: What is your favorite color?",
                                name_schema("color"),
                            )
                            .with_state(json!({"step": 2, "name": name})),
                    )
                }
                (2, _, Some(answer), Some(name)) => {
                    let color = answer
                        .get("color")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    text(&format!("{name} likes {color}.")).into()
                }
                _ => Outcome::NeedInput(
                    ask_name("step1", "Step 1: What is your name?").with_state(json!({"step": 1})),
                ),
            }
        }
        "test_input_required_result_tampered_state" => {
            if state == Some(json!({"guarded": true})) && answered("confirm") {
                text("The state came back intact.").into()
            } else {
                Outcome::NeedInput(
                    InputNeeded::new()
                        .elicit_form(
                            "confirm",
                            "Continue?",
                            json!({"type": "object", "properties": {"ok": {"type": "boolean"}}}),
                        )
                        .with_state(json!({"guarded": true})),
                )
            }
        }
        "test_input_required_result_capabilities" => {
            if input.is_some_and(|i| !i.responses.is_empty()) {
                return text("Thanks: the answers arrived.").into();
            }
            let mut needed = InputNeeded::new();
            if ctx.client.sampling() {
                needed = needed.sample("capital_question", capital);
            }
            if ctx.client.elicitation_form() {
                needed = needed.elicit_form("user_name", "What is your name?", name_schema("name"));
            }
            if needed.is_empty() {
                text("The client declared neither sampling nor elicitation: nothing to ask.").into()
            } else {
                Outcome::NeedInput(needed)
            }
        }
        "test_missing_capability" => match input.and_then(|i| i.response("capital_question")) {
            Some(reply) => text(&format!("The model answered: {}", sampled_text(reply))).into(),
            // Asked whatever the client declared: the machinery answers -32021 when it did not.
            None => Outcome::NeedInput(InputNeeded::new().sample("capital_question", capital)),
        },
        "test_streaming_elicitation" => match accepted("user_name")
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
        {
            Some(name) => text(&format!("Streamed for {name}.")).into(),
            None => Outcome::NeedInput(ask_name("user_name", "Who is asking?")),
        },
        _ => text("ok").into(),
    }
}

/// Three log messages. With `only_when_asked`, a 2026-07-28 request gets them only when its
/// `_meta` names a log level (that revision has no `logging/setLevel`).
#[allow(deprecated)]
async fn with_logging(
    request: Option<&RequestContext<RoleServer>>,
    only_when_asked: bool,
) -> CallToolResult {
    let Some(request) = request else {
        return tool_error("logging needs an MCP request context");
    };
    if only_when_asked && is_2026(request) && request.meta.log_level().is_none() {
        return text("Nothing logged: the request asked for no log level.");
    }
    for (i, message) in [
        "Tool execution started",
        "Tool processing data",
        "Tool execution completed",
    ]
    .iter()
    .enumerate()
    {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = request
            .peer
            .notify_logging_message(decode(
                json!({"level": "info", "logger": "conformance", "data": message}),
            ))
            .await;
    }
    text("Tool with logging executed successfully")
}

async fn with_progress(request: Option<&RequestContext<RoleServer>>) -> CallToolResult {
    let token = request.and_then(|r| r.meta.get_progress_token());
    for (i, progress) in [0, 50, 100].into_iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if let (Some(request), Some(token)) = (request, &token) {
            let _ = request
                .peer
                .notify_progress(decode(
                    json!({"progressToken": token, "progress": progress, "total": 100}),
                ))
                .await;
        }
    }
    text("Tool with progress executed successfully")
}

pub fn list_resources() -> ListResourcesResult {
    decode(json!({"resources": [
        {"uri": "test://static-text", "name": "static-text", "description": "A static text resource", "mimeType": "text/plain"},
        {"uri": "test://static-binary", "name": "static-binary", "description": "A static binary resource (PNG)", "mimeType": "image/png"},
        {"uri": "test://watched-resource", "name": "watched-resource", "description": "A resource clients can subscribe to", "mimeType": "text/plain"}
    ]}))
}

pub fn list_resource_templates() -> ListResourceTemplatesResult {
    decode(json!({"resourceTemplates": [
        {"uriTemplate": "test://template/{id}/data", "name": "template-data", "description": "Data for an id", "mimeType": "application/json"}
    ]}))
}

/// A resource; `test://input-required` (not listed) asks the user to confirm first.
pub fn read_resource(
    uri: &str,
    input: Option<&InputRound>,
) -> Result<Outcome<ReadResourceResult>, ErrorData> {
    let contents = match uri {
        "test://input-required" => match input.and_then(|i| i.accepted("confirm")) {
            Some(_) => {
                json!({"uri": uri, "mimeType": "text/plain", "text": "Read after confirmation."})
            }
            None => {
                return Ok(Outcome::NeedInput(InputNeeded::new().elicit_form(
                    "confirm",
                    "Read the resource?",
                    json!({"type": "object", "properties": {"ok": {"type": "boolean"}}}),
                )));
            }
        },
        "test://static-text" => {
            json!({"uri": uri, "mimeType": "text/plain", "text": "This is the content of the static text resource."})
        }
        "test://static-binary" => {
            json!({"uri": uri, "mimeType": "image/png", "blob": RED_PIXEL_PNG})
        }
        "test://watched-resource" => {
            json!({"uri": uri, "mimeType": "text/plain", "text": "Watched resource content."})
        }
        _ => match uri
            .strip_prefix("test://template/")
            .and_then(|r| r.strip_suffix("/data"))
        {
            Some(id) if !id.is_empty() && !id.contains('/') => json!({
                "uri": uri, "mimeType": "application/json",
                "text": json!({"id": id, "templateTest": true, "data": format!("Data for ID: {id}")}).to_string()
            }),
            _ => {
                return Err(ErrorData::invalid_params(
                    format!("Resource not found: {uri}"),
                    Some(json!({"uri": uri})),
                ));
            }
        },
    };
    Ok(Outcome::Complete(decode(json!({"contents": [contents]}))))
}

pub fn list_prompts() -> ListPromptsResult {
    decode(json!({"prompts": [
        {"name": "test_simple_prompt", "description": "A prompt without arguments"},
        {"name": "test_prompt_with_arguments", "description": "A prompt with two arguments", "arguments": [
            {"name": "arg1", "description": "First test argument", "required": true},
            {"name": "arg2", "description": "Second test argument", "required": true}]},
        {"name": "test_prompt_with_embedded_resource", "description": "A prompt embedding a resource", "arguments": [
            {"name": "resourceUri", "description": "URI of the resource to embed", "required": true}]},
        {"name": "test_prompt_with_image", "description": "A prompt with an image"},
        {"name": "test_input_required_result_prompt", "description": "A prompt that asks the user for context first"}
    ]}))
}

pub fn get_prompt(
    name: &str,
    arguments: &JsonObject,
    input: Option<&InputRound>,
) -> Result<Outcome<GetPromptResult>, ErrorData> {
    let arg = |key: &str| {
        arguments
            .get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let messages = match name {
        "test_simple_prompt" => {
            json!([{"role": "user", "content": {"type": "text", "text": "This is a simple prompt for testing."}}])
        }
        "test_prompt_with_arguments" => json!([{"role": "user", "content": {"type": "text",
            "text": format!("Prompt with arguments: arg1='{}', arg2='{}'", arg("arg1"), arg("arg2"))}}]),
        "test_prompt_with_embedded_resource" => json!([
            {"role": "user", "content": {"type": "resource", "resource": {"uri": arg("resourceUri"), "mimeType": "text/plain", "text": "Embedded resource content for testing."}}},
            {"role": "user", "content": {"type": "text", "text": "Please process the embedded resource above."}}
        ]),
        "test_prompt_with_image" => json!([
            {"role": "user", "content": {"type": "image", "data": RED_PIXEL_PNG, "mimeType": "image/png"}},
            {"role": "user", "content": {"type": "text", "text": "Please analyze the image above."}}
        ]),
        "test_input_required_result_prompt" => {
            let context = input
                .and_then(|i| i.accepted("user_context"))
                .and_then(|c| c.get("context"))
                .and_then(Value::as_str);
            match context {
                Some(context) => json!([{"role": "user", "content": {"type": "text",
                    "text": format!("Answer with this context in mind: {context}")}}]),
                None => {
                    return Ok(Outcome::NeedInput(InputNeeded::new().elicit_form(
                        "user_context",
                        "What context should the prompt use?",
                        json!({"type": "object", "properties": {"context": {"type": "string"}}, "required": ["context"]}),
                    )));
                }
            }
        }
        _ => {
            return Err(ErrorData::invalid_params(
                format!("Unknown prompt: {name}"),
                None,
            ));
        }
    };
    Ok(Outcome::Complete(decode(json!({"messages": messages}))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_decode() {
        assert_eq!(ConformanceFixtures.list(&McpCaller::anonymous()).len(), 27);
        assert_eq!(list_resources().resources.len(), 3);
        assert_eq!(list_resource_templates().resource_templates.len(), 1);
        assert_eq!(list_prompts().prompts.len(), 5);
        assert!(matches!(
            read_resource("test://template/123/data", None),
            Ok(Outcome::Complete(_))
        ));
        assert!(read_resource("test://nope", None).is_err());
        assert!(matches!(
            read_resource("test://input-required", None),
            Ok(Outcome::NeedInput(_))
        ));
        for name in [
            "test_simple_prompt",
            "test_prompt_with_arguments",
            "test_prompt_with_embedded_resource",
            "test_prompt_with_image",
        ] {
            let mut args = JsonObject::new();
            args.insert("resourceUri".into(), json!("test://x"));
            assert!(
                matches!(get_prompt(name, &args, None), Ok(Outcome::Complete(_))),
                "{name}"
            );
        }
    }
}
