//! The OpenAPI document: served without a session, OpenAPI 3.1, and covering every
//! operation of the REST API (schemathesis, in scripts/test.sh, checks the answers against it).

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

/// Every operation under /api/v0, the auth API for scripts, and the operational endpoints, as
/// the routers define them.
const OPERATIONS: &[(&str, &str)] = &[
    ("get", "/api/v0/settings/mcp"),
    ("put", "/api/v0/settings/mcp"),
    ("get", "/api/v0/settings/mcp/tokens"),
    ("post", "/api/v0/settings/mcp/tokens"),
    ("delete", "/api/v0/settings/mcp/tokens/{id}"),
    ("get", "/api/v0/oauth/clients"),
    ("delete", "/api/v0/oauth/clients/{id}"),
    ("post", "/api/v0/oauth/clients/{id}/revoke-consent"),
    ("get", "/api/v0/oauth/sessions"),
    ("delete", "/api/v0/oauth/sessions/{id}"),
    ("get", "/api/v0/audit"),
    ("get", "/api/v0/audit/export"),
    ("get", "/api/v0/connections"),
    ("post", "/api/v0/connections"),
    ("get", "/api/v0/connections/{id}"),
    ("put", "/api/v0/connections/{id}"),
    ("delete", "/api/v0/connections/{id}"),
    ("post", "/api/v0/connections/{id}/connect"),
    ("post", "/api/v0/connections/{id}/disconnect"),
    ("get", "/api/v0/connections/{id}/grants"),
    ("delete", "/api/v0/connections/{id}/grants/{person}"),
    ("post", "/api/v0/connections/{id}/introspect"),
    ("post", "/api/v0/connections/{id}/registration/sync"),
    ("post", "/api/v0/connections/{id}/registration/push"),
    ("post", "/api/v0/connections/{id}/token"),
    ("get", "/api/v0/mcp-servers"),
    ("post", "/api/v0/mcp-servers"),
    ("get", "/api/v0/mcp-servers/{id}"),
    ("put", "/api/v0/mcp-servers/{id}"),
    ("delete", "/api/v0/mcp-servers/{id}"),
    ("post", "/api/v0/mcp-servers/{id}/test"),
    ("get", "/api/v0/mcp-catalog"),
    ("get", "/api/v0/secrets"),
    ("put", "/api/v0/secrets/{name}"),
    ("delete", "/api/v0/secrets/{name}"),
    ("get", "/auth/info"),
    ("post", "/auth/login"),
    ("post", "/auth/logout"),
    ("get", "/healthz"),
    ("get", "/metrics"),
];

#[tokio::test]
async fn the_document_describes_every_operation() {
    let app = spawn_app(basic_settings()).await;
    let response = app.get("/api/v0/openapi.json").await;
    assert_eq!(response.status(), StatusCode::OK);
    let doc: Value = response.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .unwrap()
                .keys()
                .filter(|k| ["get", "put", "post", "delete", "patch"].contains(&k.as_str()))
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    documented.sort();
    let mut expected: Vec<(String, String)> = OPERATIONS
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    expected.sort();
    assert_eq!(documented, expected);
    // Each says what it answers, errors included, and every reference resolves.
    for (method, path) in OPERATIONS {
        let operation = &doc["paths"][*path][*method];
        let responses = operation["responses"].as_object().unwrap();
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path}"
        );
        // The operational endpoints take no input; the API's operations say how they refuse.
        if path.starts_with("/api/") || path.starts_with("/auth/") {
            assert!(responses.contains_key("400") && responses.contains_key("500"));
        }
    }
    assert_eq!(
        doc["paths"]["/metrics"]["get"]["security"],
        serde_json::json!([{"metrics_token": []}])
    );
    assert_eq!(
        doc["paths"]["/healthz"]["get"]["security"],
        serde_json::json!([{}])
    );
    // Operation ids are unique, and every link names one.
    let mut ids: Vec<&str> = OPERATIONS
        .iter()
        .map(|(m, p)| doc["paths"][*p][*m]["operationId"].as_str().unwrap())
        .collect();
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), before, "operation ids repeat");
    let text = doc.to_string();
    for link in text.split("\"operationId\":\"").skip(1) {
        let id = &link[..link.find('"').unwrap()];
        assert!(
            ids.binary_search(&id).is_ok(),
            "{id} is linked to but no operation"
        );
    }
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &reference[..reference.find('"').unwrap()];
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{name} is referenced but not defined"
        );
    }
    // No data, so no session needed; the API itself still needs one.
    assert_eq!(
        app.get("/api/v0/connections").await.status(),
        StatusCode::UNAUTHORIZED
    );
}
