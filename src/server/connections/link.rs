//! "Connect your account" links, sent to MCP clients when a call needs a grant the person does
//! not have (URL elicitation). A link is a page of Gatehouse's and holds no credential: its path
//! is a sealed note of the connection, the person the MCP token acts as, the elicitation it
//! completes and an expiry (the person is encrypted, not just signed). Opening it needs a
//! Gatehouse session of that same person; anyone else is told so, and nothing is connected.
//! The page's button is a POST (a link preview starts nothing, and it works without
//! JavaScript) that starts the provider's authorization in the page itself; the provider's
//! answer comes back to the callback like any Connect, which completes the elicitation.

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::server::auth::Identity;
use crate::server::db::connections::ConnectionRow;
use crate::server::html::{Part, page};
use crate::server::state::AppState;

/// Where links point: `{PUBLIC_URL}/connections/link/{sealed note}`.
pub const LINK_PATH: &str = "/connections/link/{note}";
/// How long a link may be opened after it was made.
pub const LINK_TTL: i64 = 15 * 60;
/// The sealer's associated data: a link's note opens as nothing else, and nothing else as one.
const CONTEXT: &str = "gatehouse/connect-link/v1";

#[derive(Debug, Serialize, Deserialize)]
struct Note {
    /// The connection.
    c: String,
    /// The person the MCP client's token acts as.
    p: String,
    /// The URL elicitation the grant completes.
    e: String,
    exp: i64,
}

impl AppState {
    /// A link for `person` to connect their account of `connection`, completing `elicitation`.
    pub fn connect_link(&self, connection: &str, person: &str, elicitation: &str) -> String {
        let note = Note {
            c: connection.into(),
            p: person.into(),
            e: elicitation.into(),
            exp: self.now() + LINK_TTL,
        };
        let sealed = self.connections.sealer.seal(
            &serde_json::to_string(&note).expect("a note serializes"),
            CONTEXT,
        );
        format!(
            "{}/connections/link/{sealed}",
            self.connections.public_origin
        )
    }
}

/// A refusal, as a page: nothing was done.
fn refused(status: StatusCode, title: &str, parts: &[Part<'_>]) -> Response {
    page(status, title, parts, None)
}

/// The note of a link opened by `identity`, and its connection; or the page saying why not.
async fn open(
    state: &AppState,
    identity: &Identity,
    sealed: &str,
) -> Result<(Note, ConnectionRow), Response> {
    let note = state
        .connections
        .sealer
        .open(sealed, CONTEXT)
        .ok()
        .and_then(|opened| serde_json::from_str::<Note>(opened.expose()).ok())
        .ok_or_else(|| {
            refused(
                StatusCode::BAD_REQUEST,
                "This link is not valid",
                &[Part::Text(
                    "It was altered, cut short, or made by another Gatehouse. Call the tool again in your MCP client for a new link.",
                )],
            )
        })?;
    if note.exp <= state.now() {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "This link has expired",
            &[Part::Text(
                "Links to connect an account last 15 minutes. Call the tool again in your MCP client for a new one.",
            )],
        ));
    }
    if note.p != identity.subject {
        // Whose link it is stays unsaid: the signed-in person learns nothing about others.
        tracing::warn!(by = %identity.subject, "a connect link was opened by someone else than its person");
        return Err(refused(
            StatusCode::FORBIDDEN,
            "This link was made for another Gatehouse user",
            &[
                Part::Value("You are signed in to Gatehouse as", &identity.subject),
                Part::Text(
                    "Nothing was connected. A link connects the account of the person whose MCP client asked for it: sign out and open it again as that person, or let them open it.",
                ),
            ],
        ));
    }
    let row = match state.db.find_connection(&note.c).await {
        Ok(Some(row)) if row.is_per_person() => row,
        Ok(_) => {
            return Err(refused(
                StatusCode::NOT_FOUND,
                "This connection no longer exists",
                &[Part::Text(
                    "An admin deleted it (or changed how it is used) after the link was made. Nothing was connected.",
                )],
            ));
        }
        Err(e) => {
            let message = crate::server::error::AppError::from(e)
                .into_api_error()
                .message()
                .to_string();
            return Err(refused(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                &[Part::Text(&message)],
            ));
        }
    };
    Ok((note, row))
}

/// `GET /connections/link/{note}`: what the link is for, and a button to go on.
pub async fn show(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    Path(sealed): Path<String>,
) -> Response {
    let (_, row) = match open(&state, &identity, &sealed).await {
        Ok(opened) => opened,
        Err(page) => return page,
    };
    let provider = state
        .provider_name(&row.provider)
        .unwrap_or_else(|| row.name.clone());
    let action = format!("/connections/link/{sealed}");
    let label = format!("Continue to {provider}");
    page(
        StatusCode::OK,
        &format!("Connect your account of {}", row.name),
        &[
            Part::Text(&format!(
                "An MCP client of yours asked to connect your own account of {}, so that the MCP servers behind Gatehouse act as you there. You sign in at {provider}; Gatehouse keeps the grant sealed and refreshes it.",
                row.name
            )),
            Part::Value("Signed in to Gatehouse as", &identity.subject),
            Part::Button {
                action: &action,
                label: &label,
            },
        ],
        None,
    )
}

/// `POST /connections/link/{note}`: starts the provider's authorization for the same person.
pub async fn start(
    State(state): State<AppState>,
    Extension(identity): Extension<Identity>,
    Path(sealed): Path<String>,
) -> Response {
    let (note, row) = match open(&state, &identity, &sealed).await {
        Ok(opened) => opened,
        Err(page) => return page,
    };
    match super::flow::authorization_url(&state, &row, &identity.subject, None, Some(&note.e)).await
    {
        Ok(url) => Redirect::to(&url).into_response(),
        Err(e) => {
            let api = e.into_api_error();
            refused(
                StatusCode::BAD_GATEWAY,
                "The connection could not start",
                &[Part::Text(api.message())],
            )
        }
    }
}
