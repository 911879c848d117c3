//! Error pages of the authorization endpoint: when the request cannot be trusted to send the
//! browser back to the client (unknown client, unregistered redirect URI), the user gets a
//! page that explains, never a redirect. Plain server-rendered HTML with the app's styles.

use axum::response::Response;
use http::StatusCode;

use super::authorize::ErrorPage;
use crate::server::html::{Part, error_page};

/// The page for an authorization request that cannot go back to its client.
pub fn render(page: &ErrorPage) -> Response {
    match page {
        ErrorPage::BadRequest(what) => bad_request(what),
        ErrorPage::UnknownClient(client_id) => unknown_client(client_id),
        ErrorPage::BadClientDocument { client_id, why } => bad_client_document(client_id, why),
        ErrorPage::RedirectMismatch {
            client_name,
            presented,
            registered,
        } => redirect_mismatch(client_name, presented, registered),
        ErrorPage::Expired => expired_request(),
    }
}

fn unknown_client(client_id: &str) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "Unknown MCP client",
        &[
            Part::Text(
                "The MCP client that sent you here presented a client ID this Gatehouse has never registered, or one that was deleted.",
            ),
            Part::Value("Client ID", client_id),
            Part::Text(
                "This usually means the client kept its registration from an earlier Gatehouse (or from before the client was deleted in Settings › OAuth Clients). Clear the client's saved credentials and connect again; it will register itself anew. For mcp-remote (Claude Desktop, Claude Code, Cursor):",
            ),
            Part::Code("pkill -f mcp-remote\nrm -rf ~/.mcp-auth/mcp-remote-*"),
            Part::Text("Then restart the MCP client."),
        ],
    )
}

fn bad_client_document(client_id: &str, why: &str) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "The MCP client's metadata could not be used",
        &[
            Part::Text(
                "The client identifies itself by a metadata document, and Gatehouse could not use it.",
            ),
            Part::Value("Client ID", client_id),
            Part::Text(why),
        ],
    )
}

fn redirect_mismatch(client_name: &str, presented: &str, registered: &[String]) -> Response {
    let registered = registered.join("\n");
    error_page(
        StatusCode::BAD_REQUEST,
        "Redirect address not registered",
        &[
            Part::Text(
                "The MCP client asked to receive the result at an address it did not register, so Gatehouse will not send you there.",
            ),
            Part::Value("Client", client_name),
            Part::Value("Asked for", presented),
            Part::Text("Registered:"),
            Part::Code(&registered),
            Part::Text(
                "Some clients change their callback address between runs. Delete the client in Settings › OAuth Clients so it registers again, or configure a fixed callback in the client.",
            ),
        ],
    )
}

fn bad_request(what: &str) -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "Invalid authorization request",
        &[
            Part::Text(what),
            Part::Text("Start the connection again from your MCP client."),
        ],
    )
}

fn expired_request() -> Response {
    error_page(
        StatusCode::BAD_REQUEST,
        "This authorization request has expired",
        &[Part::Text(
            "It was answered already, or it is more than ten minutes old, or it belongs to another signed-in user. Return to your MCP client and connect again.",
        )],
    )
}
