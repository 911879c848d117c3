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
use super::tools::{ToolContext, ToolFuture, ToolSource, tool_error};

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
                "json_schema_2020_12_tool",
                "Tool with JSON Schema 2020-12 features",
                json!({
                    "$schema": "https://json-schema.org/draft/2020-12/schema",
                    "type": "object",
                    "$defs": {"address": {"type": "object", "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
                    "properties": {"name": {"type": "string"}, "address": {"$ref": "#/$defs/address"}},
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
            match name {
                "test_simple_text" => text("This is a simple text response for testing."),
                "test_image_content" => decode(json!({"content": [{"type": "image", "data": RED_PIXEL_PNG, "mimeType": "image/png"}]})),
                "test_audio_content" => decode(json!({"content": [{"type": "audio", "data": SILENT_WAV, "mimeType": "audio/wav"}]})),
                "test_embedded_resource" => decode(json!({"content": [{"type": "resource", "resource": {
                    "uri": "test://embedded-resource", "mimeType": "text/plain", "text": "This is an embedded resource content."}}]})),
                "test_multiple_content_types" => decode(json!({"content": [
                    {"type": "text", "text": "Multiple content types test:"},
                    {"type": "image", "data": RED_PIXEL_PNG, "mimeType": "image/png"},
                    {"type": "resource", "resource": {"uri": "test://mixed-content-resource", "mimeType": "application/json",
                        "text": "{\"test\":\"data\",\"value\":123}"}}
                ]})),
                "test_error_handling" => tool_error("This tool intentionally returns an error for testing"),
                "test_tool_with_logging" => with_logging(request).await,
                "test_tool_with_progress" => with_progress(request).await,
                "test_sampling" => sampling(request, &arguments).await,
                "test_elicitation" => {
                    let message = arguments.get("message").and_then(Value::as_str).unwrap_or_default();
                    elicit(request, json!({"message": message, "requestedSchema": {"type": "object", "properties": {
                        "username": {"type": "string", "description": "User's response"},
                        "email": {"type": "string", "description": "User's email address"}
                    }, "required": ["username", "email"]}}), "User response: ").await
                }
                "test_elicitation_sep1034_defaults" => elicit(request, json!({"message": "Please review your details", "requestedSchema": {"type": "object", "properties": {
                    "name": {"type": "string", "default": "John Doe"},
                    "age": {"type": "integer", "default": 30},
                    "score": {"type": "number", "default": 95.5},
                    "status": {"type": "string", "enum": ["active", "inactive", "pending"], "default": "active"},
                    "verified": {"type": "boolean", "default": true}
                }}}), "Elicitation completed: ").await,
                "test_elicitation_sep1330_enums" => elicit(request, json!({"message": "Choose options", "requestedSchema": {"type": "object", "properties": {
                    "untitledSingle": {"type": "string", "enum": ["option1", "option2", "option3"]},
                    "titledSingle": {"type": "string", "oneOf": [
                        {"const": "value1", "title": "First Option"}, {"const": "value2", "title": "Second Option"}, {"const": "value3", "title": "Third Option"}]},
                    "legacyEnum": {"type": "string", "enum": ["opt1", "opt2", "opt3"], "enumNames": ["Option One", "Option Two", "Option Three"]},
                    "untitledMulti": {"type": "array", "items": {"type": "string", "enum": ["option1", "option2", "option3"]}},
                    "titledMulti": {"type": "array", "items": {"anyOf": [
                        {"const": "value1", "title": "First Choice"}, {"const": "value2", "title": "Second Choice"}, {"const": "value3", "title": "Third Choice"}]}}
                }}}), "Elicitation completed: ").await,
                _ => text("ok"),
            }
        }))
    }
}

#[allow(deprecated)]
async fn with_logging(request: Option<&RequestContext<RoleServer>>) -> CallToolResult {
    let Some(request) = request else {
        return tool_error("logging needs an MCP request context");
    };
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

#[allow(deprecated)]
async fn sampling(
    request: Option<&RequestContext<RoleServer>>,
    arguments: &JsonObject,
) -> CallToolResult {
    let Some(request) = request else {
        return tool_error("sampling needs an MCP request context");
    };
    let prompt = arguments
        .get("prompt")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let params = decode(json!({
        "messages": [{"role": "user", "content": {"type": "text", "text": prompt}}],
        "maxTokens": 100
    }));
    match request.peer.create_message(params).await {
        Ok(result) => {
            let value = serde_json::to_value(&result).unwrap_or_default();
            let reply = value["content"]["text"]
                .as_str()
                .or_else(|| value["content"][0]["text"].as_str())
                .unwrap_or_default()
                .to_string();
            text(&format!("LLM response: {reply}"))
        }
        Err(e) => tool_error(format!("Sampling failed: {e}")),
    }
}

async fn elicit(
    request: Option<&RequestContext<RoleServer>>,
    params: Value,
    prefix: &str,
) -> CallToolResult {
    let Some(request) = request else {
        return tool_error("elicitation needs an MCP request context");
    };
    match request.peer.create_elicitation(decode(params)).await {
        Ok(result) => {
            let value = serde_json::to_value(&result).unwrap_or_default();
            let action = value["action"].as_str().unwrap_or("unknown").to_string();
            let content = value.get("content").cloned().unwrap_or(Value::Null);
            text(&format!("{prefix}action={action}, content={content}"))
        }
        Err(e) => tool_error(format!("Elicitation failed: {e}")),
    }
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

pub fn read_resource(uri: &str) -> Result<ReadResourceResult, ErrorData> {
    let contents = match uri {
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
    Ok(decode(json!({"contents": [contents]})))
}

pub fn list_prompts() -> ListPromptsResult {
    decode(json!({"prompts": [
        {"name": "test_simple_prompt", "description": "A prompt without arguments"},
        {"name": "test_prompt_with_arguments", "description": "A prompt with two arguments", "arguments": [
            {"name": "arg1", "description": "First test argument", "required": true},
            {"name": "arg2", "description": "Second test argument", "required": true}]},
        {"name": "test_prompt_with_embedded_resource", "description": "A prompt embedding a resource", "arguments": [
            {"name": "resourceUri", "description": "URI of the resource to embed", "required": true}]},
        {"name": "test_prompt_with_image", "description": "A prompt with an image"}
    ]}))
}

pub fn get_prompt(name: &str, arguments: &JsonObject) -> Result<GetPromptResult, ErrorData> {
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
        _ => {
            return Err(ErrorData::invalid_params(
                format!("Unknown prompt: {name}"),
                None,
            ));
        }
    };
    Ok(decode(json!({"messages": messages})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixtures_decode() {
        assert_eq!(ConformanceFixtures.list(&McpCaller::anonymous()).len(), 13);
        assert_eq!(list_resources().resources.len(), 3);
        assert_eq!(list_resource_templates().resource_templates.len(), 1);
        assert_eq!(list_prompts().prompts.len(), 4);
        assert!(read_resource("test://template/123/data").is_ok());
        assert!(read_resource("test://nope").is_err());
        for name in [
            "test_simple_prompt",
            "test_prompt_with_arguments",
            "test_prompt_with_embedded_resource",
            "test_prompt_with_image",
        ] {
            let mut args = JsonObject::new();
            args.insert("resourceUri".into(), json!("test://x"));
            assert!(get_prompt(name, &args).is_ok(), "{name}");
        }
    }
}
