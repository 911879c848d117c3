//! Connections: OAuth grants Gatehouse holds at providers. List with status, create and edit
//! (with the advanced section), connect / re-authorize in a popup, disconnect, delete,
//! introspect, and RFC 7592 sync / push for dynamically registered clients.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;

use crate::api::ApiError;
use crate::api::connections::{
    BuiltinProviderView, ConnectStart, ConnectionInput, ConnectionStatus, ConnectionView,
    ProviderAnswerView, ReauthorizeChanges, connect_connection, create_connection,
    delete_connection, disconnect_connection, introspect_connection, list_builtin_providers,
    list_connections, push_connection_registration, reauthorize_connection,
    sync_connection_registration, update_connection,
};
use crate::ui::components::app_shell::AdminOnly;
use crate::ui::components::confirm_dialog::{BUTTON, BUTTON_PLAIN, ConfirmDialog, INPUT};
use crate::ui::components::copy_button::CopyButton;
use crate::ui::components::dialog::Dialog;
use crate::ui::components::error_notice::ErrorNotice;
use crate::ui::components::popup::{Popup, listen};
use crate::util::{ago, format_utc, refresh_health};

#[derive(Debug, Clone, PartialEq)]
enum Open {
    None,
    /// Choose a provider first.
    Create,
    CreateCustom,
    CreateBuiltin(BuiltinProviderView),
    Edit(ConnectionView),
    Disconnect(ConnectionView),
    /// An admin revokes one person's grant of a per-person connection.
    RevokeGrant(ConnectionView, String),
    Delete(ConnectionView),
    Reauthorize(ConnectionView),
    Answer(ProviderAnswerView),
}

const PROVIDER_TYPES: &[(&str, &str)] = &[
    ("custom", "Custom"),
    ("crm", "CRM"),
    ("chat", "Chat"),
    ("docs", "Documents"),
    ("code", "Code hosting"),
    ("tickets", "Issue tracking"),
    ("storage", "File storage"),
    ("analytics", "Analytics"),
    ("mcp", "MCP server"),
];

#[component]
pub fn ConnectionsPage() -> impl IntoView {
    let refresh = RwSignal::new(0u32);
    let connections = Resource::new(move || refresh.get(), |_| list_connections());
    let open = RwSignal::new(Open::None);
    // A message for the whole page: what the popup or an action reported.
    let notice = RwSignal::new(None::<Result<String, String>>);
    let reload = move || refresh.update(|n| *n += 1);
    listen(move |message| {
        notice.set(Some(match (message.ok, message.error) {
            (true, _) => Ok("Connected.".to_string()),
            (false, e) => Err(e.unwrap_or_else(|| "The connection failed.".into())),
        }));
        reload();
    });
    let close = Callback::new(move |_| open.set(Open::None));
    let done = Callback::new(move |_| {
        open.set(Open::None);
        reload();
    });

    // Sent here to create a connection for something else (an MCP server from the catalog):
    // `?new=<provider>` opens that provider's dialog, `?then=<path>` is where to continue.
    let query = leptos_router::hooks::use_query_map();
    let then = Signal::derive(move || {
        query
            .with(|q| q.get("then"))
            .and_then(|p| crate::util::safe_return_path(&p))
    });
    let wanted = query.with_untracked(|q| q.get("new"));
    let providers = Resource::new(|| (), |_| list_builtin_providers());
    Effect::new(move |handled: Option<bool>| {
        if handled == Some(true) {
            return true;
        }
        let Some(slug) = wanted.clone() else {
            return true;
        };
        match providers.get() {
            Some(Ok(list)) => {
                if let Some(p) = list.into_iter().find(|p| p.slug == slug) {
                    open.set(Open::CreateBuiltin(p));
                }
                true
            }
            Some(Err(_)) => true,
            None => false,
        }
    });

    view! {
        <Title text="Connections" />
        <div inert=move || open.get() != Open::None>
            <div class="mb-6 flex items-start justify-between gap-4">
                <div>
                    <h1 class="text-xl font-semibold">"Connections"</h1>
                    <p class="mt-1 text-sm text-slate-600">
                        "OAuth grants Gatehouse holds at other services. Gatehouse keeps the tokens sealed, refreshes them, and hands fresh access tokens to MCP servers and workers."
                    </p>
                </div>
                <AdminOnly>
                    <button type="button" class=BUTTON data-testid="new-connection" on:click=move |_| open.set(Open::Create)>
                        "New connection"
                    </button>
                </AdminOnly>
            </div>
            {move || notice.get().map(|n| match n {
                Ok(text) => view! {
                    <div role="status" data-testid="connections-notice" class="mb-4 rounded-md border border-emerald-200 bg-emerald-50 p-3 text-sm text-emerald-900">
                        {text.clone()}
                        {then.get().filter(|_| text == "Connected.").map(|path| view! {
                            " " <a href=path class="font-medium text-indigo-700 underline" data-testid="continue-link">"Continue where you were"</a>
                        })}
                    </div>
                }.into_any(),
                Err(text) => view! {
                    <div role="alert" data-testid="connections-notice" class="mb-4 rounded-md border border-red-200 bg-red-50 p-3 text-sm text-red-800">{text}</div>
                }.into_any(),
            })}
            <Transition fallback=|| view! { <p class="text-sm text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match connections.await {
                        Err(e) => view! { <ErrorNotice error=e /> }.into_any(),
                        Ok(overview) if !overview.can_manage && overview.items.is_empty() => view! {
                            <p class="rounded-lg border border-slate-200 bg-white px-5 py-6 text-sm text-slate-500" data-testid="no-connections">
                                "None of the connections needs your own account. The services behind the MCP servers are reached with the accounts your admins connected."
                            </p>
                        }.into_any(),
                        Ok(overview) => {
                            let now = overview.now;
                            view! {
                                <p class="mb-4 text-sm text-slate-600">
                                    "Redirect URI to register at providers: "
                                    <code class="break-all rounded bg-slate-100 px-1" data-testid="redirect-uri">{overview.redirect_uri.clone()}</code>
                                    " "
                                    <CopyButton text=overview.redirect_uri.clone() />
                                </p>
                                {if overview.items.is_empty() {
                                    view! {
                                        <p class="rounded-lg border border-slate-200 bg-white px-5 py-6 text-sm text-slate-500" data-testid="no-connections">
                                            "No connections yet. Create one for each service Gatehouse should hold a grant at."
                                        </p>
                                    }.into_any()
                                } else {
                                    view! {
                                        <ul class="space-y-3">
                                            {overview.items.into_iter().map(|c| view! { <ConnectionCard connection=c now can_manage=overview.can_manage open notice reload=Callback::new(move |_| reload()) /> }).collect_view()}
                                        </ul>
                                    }.into_any()
                                }}
                            }
                            .into_any()
                        }
                    }
                })}
            </Transition>
        </div>
        {move || match open.get() {
            Open::None => ().into_any(),
            Open::Create => view! { <ProviderChooser open close /> }.into_any(),
            Open::CreateCustom => view! { <ConnectionDialog existing=None close done notice /> }.into_any(),
            Open::CreateBuiltin(provider) => {
                let redirect_uri = connections
                    .get_untracked()
                    .and_then(Result::ok)
                    .map(|o| o.redirect_uri)
                    .unwrap_or_default();
                view! { <BuiltinConnectionDialog provider redirect_uri close done notice /> }.into_any()
            }
            Open::Edit(c) => view! { <ConnectionDialog existing=Some(c) close done notice /> }.into_any(),
            Open::Reauthorize(c) => view! { <ReauthorizeDialog connection=c close notice reload=Callback::new(move |_| reload()) /> }.into_any(),
            Open::RevokeGrant(c, person) => {
                let id = c.id.clone();
                view! {
                    <ConfirmDialog
                        title=format!("Revoke {person}'s grant of {}?", c.name)
                        id="revoke-grant-dialog"
                        body=format!("{person}'s tokens are revoked at the provider (when it has a revocation URL) and deleted here. Their MCP calls through this connection stop until they connect their account again.")
                        confirm="Revoke"
                        action=move || {
                            let (id, person) = (id.clone(), person.clone());
                            async move { warn(notice, disconnect_connection(id, Some(person)).await) }
                        }
                        done
                        cancel=close
                    />
                }.into_any()
            }
            Open::Disconnect(c) => {
                let id = c.id.clone();
                view! {
                    <ConfirmDialog
                        title=format!("Disconnect {}?", c.name)
                        id="disconnect-dialog"
                        body=if c.per_person {
                            "Your account's tokens are revoked at the provider (when it has a revocation URL) and deleted here. MCP servers you call through this connection stop working for you until you connect again.".to_string()
                        } else if c.revocation_url.is_some() {
                            "The tokens are revoked at the provider, then deleted here. MCP servers and workers using this connection stop working until it is connected again.".to_string()
                        } else {
                            "The tokens are deleted here. This connection has no revocation URL, so the provider is not told: revoke the app's access there too if it matters.".to_string()
                        }
                        confirm="Disconnect"
                        action=move || {
                            let id = id.clone();
                            async move { warn(notice, disconnect_connection(id, None).await) }
                        }
                        done
                        cancel=close
                    />
                }.into_any()
            }
            Open::Delete(c) => {
                let id = c.id.clone();
                view! {
                    <ConfirmDialog
                        title=format!("Delete {}?", c.name)
                        id="delete-connection-dialog"
                        body=if c.per_person {
                            "Every person's grant is revoked at the provider (when it has a revocation URL), and the connection is removed here, with its client secret.".to_string()
                        } else if c.registered {
                            "The tokens are revoked, the client registration is deleted at the provider (RFC 7592), and the connection is removed here.".to_string()
                        } else {
                            "The tokens are revoked (when a revocation URL is set) and the connection is removed here, with its client secret.".to_string()
                        }
                        confirm="Delete connection"
                        action=move || {
                            let id = id.clone();
                            async move { warn(notice, delete_connection(id).await) }
                        }
                        done
                        cancel=close
                    />
                }.into_any()
            }
            Open::Answer(answer) => view! {
                <Dialog title=answer.title.clone() id="provider-answer">
                    {answer.active.map(|active| view! {
                        <p class="mb-3 text-sm" data-testid="introspection-active">
                            {if active { "The provider says the token is active." } else { "The provider says the token is not active." }}
                        </p>
                    })}
                    <pre class="max-h-96 overflow-auto rounded-md bg-slate-900 p-3 text-xs text-slate-100" data-testid="provider-json">{answer.json.clone()}</pre>
                    <div class="mt-4 flex justify-end">
                        <button type="button" class=BUTTON_PLAIN on:click=move |_| close.run(())>"Close"</button>
                    </div>
                </Dialog>
            }.into_any(),
        }}
    }
}

fn status_badge(status: ConnectionStatus) -> &'static str {
    match status {
        ConnectionStatus::Connected => "bg-emerald-100 text-emerald-800",
        ConnectionStatus::Expiring => "bg-amber-100 text-amber-900",
        ConnectionStatus::Failing => "bg-orange-100 text-orange-900",
        ConnectionStatus::NeedsReauth => "bg-red-100 text-red-800",
        ConnectionStatus::NotConnected => "bg-slate-100 text-slate-700",
    }
}

/// A server function that asks the provider something (introspection, RFC 7592).
type ProviderCall = fn(
    String,
) -> std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<ProviderAnswerView, ApiError>>>,
>;

#[component]
fn ConnectionCard(
    connection: ConnectionView,
    now: i64,
    /// An admin's card: every action, and every person's grant.
    can_manage: bool,
    open: RwSignal<Open>,
    notice: RwSignal<Option<Result<String, String>>>,
    reload: Callback<()>,
) -> impl IntoView {
    let c = connection;
    let busy = RwSignal::new(false);
    let id = c.id.clone();
    let name = c.name.clone();
    let connected = c.grant.is_some();
    let code_flow = c.grant_type == "authorization_code";

    let for_reauth = c.clone();
    let reauthorize = connected || c.status == ConnectionStatus::NeedsReauth;
    // The re-authorize dialog changes the client or scopes: an admin's. A person connecting
    // their own account again goes straight to the provider.
    let with_dialog = reauthorize && can_manage;
    let connect = {
        let id = id.clone();
        move |_| {
            if with_dialog {
                open.set(Open::Reauthorize(for_reauth.clone()));
            } else if let Some(popup) = popup_for(code_flow, notice) {
                start_connect(id.clone(), None, popup, notice, reload, busy);
            }
        }
    };
    let ask_provider = move |id: String, call: ProviderCall| {
        busy.set(true);
        spawn_local(async move {
            match call(id).await {
                Ok(answer) => open.set(Open::Answer(answer)),
                Err(e) => notice.set(Some(Err(e.message().to_string()))),
            }
            busy.set(false);
        });
    };

    let expires = c.grant.as_ref().map(|g| {
        let when = match g.expires_at {
            None => "does not expire".to_string(),
            Some(at) if at <= now => format!("expired {}", ago(at, now)),
            Some(at) => format!("expires {}", format_utc(at)),
        };
        let refreshed = g
            .refreshed_at
            .map(|t| format!(" · refreshed {}", ago(t, now)))
            .unwrap_or_default();
        match &g.scope {
            Some(scope) => format!("{when}{refreshed} · scope {scope}"),
            None => format!("{when}{refreshed}"),
        }
    });
    // Admins see how a shared grant is kept alive (a person's grants: in their table).
    let health = c
        .grant
        .as_ref()
        .filter(|_| can_manage && !c.per_person)
        .map(|g| refresh_health(g.refreshed_at, c.next_refresh_at, c.failures, now));
    let for_edit = c.clone();
    let for_disconnect = c.clone();
    let for_delete = c.clone();
    let for_grants = c.clone();
    let connect_label = match (c.per_person, reauthorize) {
        (true, false) => "Connect my account",
        (true, true) => "Reconnect my account",
        (false, false) => "Connect",
        (false, true) => "Re-authorize",
    };
    let (id_i, id_s, id_p) = (id.clone(), id.clone(), id.clone());
    view! {
        <li class="rounded-lg border border-slate-200 bg-white p-4 shadow-sm" data-testid="connection-card" data-name=name.clone() data-id=id.clone()>
            <div class="flex flex-wrap items-start justify-between gap-3">
                <div class="min-w-0">
                    <div class="flex items-center gap-2">
                        <span class="font-medium text-slate-900" data-testid="connection-name">{name.clone()}</span>
                        <span class=format!("rounded px-1.5 py-0.5 text-xs font-medium {}", status_badge(c.status)) data-testid="connection-status">
                            {c.status.label()}
                        </span>
                        {c.per_person.then(|| view! {
                            <span class="rounded bg-indigo-50 px-1.5 py-0.5 text-xs font-medium text-indigo-800" data-testid="per-person-badge"
                                title="Each person connects their own account; the status is yours.">
                                "Per person"
                            </span>
                        })}
                    </div>
                    {(!c.description.is_empty()).then(|| view! { <p class="text-sm text-slate-600">{c.description.clone()}</p> })}
                    {can_manage.then(|| view! {
                        <p class="mt-1 text-xs text-slate-500">
                            {if code_flow { "Authorization code" } else { "Client credentials" }}
                            {c.dynamic_registration.then_some(" · dynamic registration")}
                            {c.pkce.then_some(" · PKCE")}
                            " · " {c.token_url.clone()}
                        </p>
                    })}
                    {(c.per_person && !connected).then(|| view! {
                        <p class="mt-1 text-xs text-slate-600" data-testid="per-person-hint">
                            "Calls through this connection act as you: connect your own account to use it."
                        </p>
                    })}
                    {expires.map(|e| view! { <p class="text-xs text-slate-500" data-testid="connection-expiry">"Token " {e}</p> })}
                    {health.map(|h| view! { <p class="text-xs text-slate-500" data-testid="connection-health">{h}</p> })}
                    {c.last_error.clone().map(|e| view! {
                        <p class="mt-1 text-xs text-red-700" data-testid="connection-error">
                            {e} {c.last_error_at.map(|t| format!(" ({})", ago(t, now)))}
                        </p>
                    })}
                </div>
                <div class="flex flex-wrap items-center gap-2">
                    <button type="button" class=BUTTON disabled=move || busy.get() on:click=connect aria-label=format!("Connect {name}")>
                        {connect_label}
                    </button>
                    {(can_manage && connected && c.introspection_url.is_some()).then(|| view! {
                        <button type="button" class=BUTTON_PLAIN disabled=move || busy.get()
                            on:click=move |_| ask_provider(id_i.clone(), |id| Box::pin(introspect_connection(id)))>
                            "Introspect"
                        </button>
                    })}
                    {(can_manage && c.dynamic_registration).then(|| view! {
                        <button type="button" class=BUTTON_PLAIN disabled=move || busy.get()
                            on:click=move |_| ask_provider(id_s.clone(), |id| Box::pin(sync_connection_registration(id)))>
                            "Sync AS"
                        </button>
                        <button type="button" class=BUTTON_PLAIN disabled=move || busy.get()
                            on:click=move |_| ask_provider(id_p.clone(), |id| Box::pin(push_connection_registration(id)))>
                            "Push AS"
                        </button>
                    })}
                    {can_manage.then(|| view! {
                        <button type="button" class=BUTTON_PLAIN on:click=move |_| open.set(Open::Edit(for_edit.clone()))>"Edit"</button>
                    })}
                    {connected.then(|| view! {
                        <button type="button" class=BUTTON_PLAIN on:click=move |_| open.set(Open::Disconnect(for_disconnect.clone()))>
                            {if c.per_person { "Disconnect my account" } else { "Disconnect" }}
                        </button>
                    })}
                    {can_manage.then(|| view! {
                        <button type="button" class="text-sm font-medium text-red-700 hover:text-red-900" on:click=move |_| open.set(Open::Delete(for_delete.clone()))>"Delete"</button>
                    })}
                </div>
            </div>
            {(can_manage && c.per_person).then(|| view! { <PersonGrants connection=for_grants now open /> })}
        </li>
    }
}

/// Who has connected their own account to a per-person connection (an admin's view), with
/// Revoke for each.
#[component]
fn PersonGrants(connection: ConnectionView, now: i64, open: RwSignal<Open>) -> impl IntoView {
    if connection.grants.is_empty() {
        return view! {
            <p class="mt-3 border-t border-slate-100 pt-3 text-xs text-slate-500" data-testid="person-grants-empty">
                "Nobody has connected their account yet."
            </p>
        }
        .into_any();
    }
    let rows = connection.grants.clone();
    view! {
        <table class="mt-3 w-full border-t border-slate-100 text-left text-xs" data-testid="person-grants">
            <caption class="sr-only">{format!("People's grants of {}", connection.name)}</caption>
            <thead class="text-slate-500">
                <tr>
                    <th scope="col" class="py-1 pr-3 font-medium">"Person"</th>
                    <th scope="col" class="py-1 pr-3 font-medium">"Status"</th>
                    <th scope="col" class="py-1 pr-3 font-medium">"Connected"</th>
                    <th scope="col" class="py-1 pr-3 font-medium">"Refresh"</th>
                    <th scope="col" class="py-1 font-medium"><span class="sr-only">"Actions"</span></th>
                </tr>
            </thead>
            <tbody>
                {rows.into_iter().map(|g| {
                    let c = connection.clone();
                    let person = g.person.clone();
                    view! {
                        <tr data-testid="person-grant" data-person=g.person.clone()>
                            <td class="py-1 pr-3 text-slate-900">{g.person.clone()}</td>
                            <td class="py-1 pr-3">
                                <span class=format!("rounded px-1.5 py-0.5 font-medium {}", status_badge(g.status))>{g.status.label()}</span>
                                {g.last_error.clone().map(|e| view! { <span class="ml-2 text-red-700">{e}</span> })}
                            </td>
                            <td class="py-1 pr-3 text-slate-600">{ago(g.obtained_at, now)}</td>
                            <td class="py-1 pr-3 text-slate-600" data-testid="grant-health">
                                {refresh_health(g.refreshed_at, g.next_refresh_at, g.failures, now)}
                            </td>
                            <td class="py-1 text-right">
                                <button type="button" class="font-medium text-red-700 hover:text-red-900"
                                    aria-label=format!("Revoke {}'s grant", g.person)
                                    on:click=move |_| open.set(Open::RevokeGrant(c.clone(), person.clone()))>
                                    "Revoke"
                                </button>
                            </td>
                        </tr>
                    }
                }).collect_view()}
            </tbody>
        </table>
    }
    .into_any()
}

type Notice = RwSignal<Option<Result<String, String>>>;

/// An action that succeeded with a warning from the provider: the warning goes to the page.
fn warn(notice: Notice, result: Result<Option<String>, ApiError>) -> Result<(), ApiError> {
    if let Some(w) = result? {
        notice.set(Some(Err(w)));
    }
    Ok(())
}

/// Opens the popup inside the click (one opened after an await is blocked). `Some(None)`:
/// no popup needed (client credentials); `None`: the browser blocked it (already reported).
fn popup_for(code_flow: bool, notice: Notice) -> Option<Option<Popup>> {
    if !code_flow {
        return Some(None);
    }
    match Popup::open() {
        Some(p) => Some(Some(p)),
        None => {
            notice.set(Some(Err(
                "The browser blocked the popup. Allow popups for this site and try again.".into(),
            )));
            None
        }
    }
}

/// Saves `changes` first when given (re-authorize with new client details), then starts the
/// flow: the popup goes to the provider, or client credentials are fetched at once.
fn start_connect(
    id: String,
    changes: Option<ReauthorizeChanges>,
    popup: Option<Popup>,
    notice: Notice,
    reload: Callback<()>,
    busy: RwSignal<bool>,
) {
    // `try_set`: the dialog or card that owns `busy` may be gone by the time this ends.
    busy.try_set(true);
    spawn_local(async move {
        let result = match changes {
            Some(changes) => reauthorize_connection(id, changes).await,
            None => connect_connection(id).await,
        };
        match result {
            Ok(ConnectStart::Popup { url }) => {
                if let Some(p) = &popup {
                    p.navigate(&url);
                }
            }
            Ok(ConnectStart::Connected) => {
                notice.set(Some(Ok(
                    "Connected: a token was fetched with the client credentials.".into(),
                )));
                reload.run(());
            }
            Err(e) => {
                if let Some(p) = &popup {
                    p.close();
                }
                notice.set(Some(Err(e.message().to_string())));
                reload.run(());
            }
        }
        busy.try_set(false);
    });
}

/// Re-authorize: the same connection (name, provider, endpoints), optionally with a new
/// client ID, secret or scopes, then the authorization flow again.
#[component]
fn ReauthorizeDialog(
    connection: ConnectionView,
    close: Callback<()>,
    notice: Notice,
    reload: Callback<()>,
) -> impl IntoView {
    let base = ConnectionInput::from(&connection);
    let client_id = RwSignal::new(base.client_id.clone());
    let client_secret = RwSignal::new(String::new());
    let scopes = RwSignal::new(base.scopes.join("\n"));
    let busy = RwSignal::new(false);
    let code_flow = connection.grant_type == "authorization_code";
    let dynamic = connection.dynamic_registration;
    let id = connection.id.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(popup) = popup_for(code_flow, notice) else {
            return;
        };
        let changes = ReauthorizeChanges {
            client_id: (!dynamic).then(|| client_id.get()),
            client_secret: (!dynamic)
                .then(|| client_secret.get())
                .filter(|s| !s.is_empty()),
            scopes: Some(scopes.get().lines().map(str::to_string).collect()),
        };
        close.run(());
        start_connect(id.clone(), Some(changes), popup, notice, reload, busy);
    };
    view! {
        <Dialog title=format!("Re-authorize {}", connection.name) id="reauthorize-dialog">
            <form on:submit=submit class="space-y-4">
                <p class="text-sm text-slate-600">
                    "The connection keeps its name and provider. Change the client or the scopes if they changed at the provider. The changes and the new tokens take effect together once you approve at the provider; until then nothing changes."
                </p>
                {(!dynamic).then(|| view! {
                    <div>
                        <label for="reauth-client-id" class="mb-1 block text-sm font-medium text-slate-700">"Client ID"</label>
                        <input id="reauth-client-id" type="text" class=INPUT autocomplete="off"
                            prop:value=move || client_id.get() on:input=move |ev| client_id.set(event_target_value(&ev)) />
                    </div>
                    <div>
                        <label for="reauth-client-secret" class="mb-1 block text-sm font-medium text-slate-700">"Client secret"</label>
                        <input id="reauth-client-secret" type="password" class=INPUT autocomplete="new-password"
                            placeholder="Saved; leave empty to keep it"
                            prop:value=move || client_secret.get() on:input=move |ev| client_secret.set(event_target_value(&ev)) />
                    </div>
                })}
                <div>
                    <label for="reauth-scopes" class="mb-1 block text-sm font-medium text-slate-700">"Scopes (one per line)"</label>
                    <textarea id="reauth-scopes" rows="3" class=INPUT prop:value=move || scopes.get() on:input=move |ev| scopes.set(event_target_value(&ev))></textarea>
                </div>
                <div class="flex justify-end gap-3">
                    <button type="button" class=BUTTON_PLAIN on:click=move |_| close.run(())>"Cancel"</button>
                    <button type="submit" class=BUTTON disabled=move || busy.get()>"Re-authorize"</button>
                </div>
            </form>
        </Dialog>
    }
}

/// New connection, step one: which provider.
#[component]
fn ProviderChooser(open: RwSignal<Open>, close: Callback<()>) -> impl IntoView {
    let providers = Resource::new(|| (), |_| list_builtin_providers());
    view! {
        <Dialog title="New connection".to_string() id="provider-chooser">
            <p class="mb-3 text-sm text-slate-600">"Pick the service. Built-in providers know their endpoints and scopes; a custom provider takes any OAuth 2 service."</p>
            <Suspense fallback=|| view! { <p class="text-sm text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match providers.await {
                        Err(e) => view! { <ErrorNotice error=e /> }.into_any(),
                        Ok(list) => view! {
                            <div class="grid grid-cols-2 gap-2 sm:grid-cols-3">
                                {list.into_iter().map(|p| {
                                    let name = p.name.clone();
                                    view! {
                                        <button type="button" class=BUTTON_PLAIN data-provider=p.slug.clone()
                                            on:click=move |_| open.set(Open::CreateBuiltin(p.clone()))>
                                            {name}
                                        </button>
                                    }
                                }).collect_view()}
                                <button type="button" class=BUTTON_PLAIN data-provider="custom"
                                    on:click=move |_| open.set(Open::CreateCustom)>
                                    "Custom provider"
                                </button>
                            </div>
                        }.into_any(),
                    }
                })}
            </Suspense>
            <div class="mt-4 flex justify-end">
                <button type="button" class=BUTTON_PLAIN on:click=move |_| close.run(())>"Cancel"</button>
            </div>
        </Dialog>
    }
}

/// New connection with a built-in provider: only what the operator must give (client,
/// scopes, instance fields); the definition supplies the rest.
#[component]
fn BuiltinConnectionDialog(
    provider: BuiltinProviderView,
    redirect_uri: String,
    close: Callback<()>,
    done: Callback<()>,
    notice: Notice,
) -> impl IntoView {
    let p = provider;
    let name = RwSignal::new(p.name.clone());
    let client_id = RwSignal::new(String::new());
    let client_secret = RwSignal::new(String::new());
    let fields: Vec<(String, String, String, RwSignal<String>)> = p
        .instance_fields
        .iter()
        .map(|(n, l, h)| {
            (
                n.clone(),
                l.clone(),
                h.clone(),
                RwSignal::new(String::new()),
            )
        })
        .collect();
    let selected: Vec<(String, String, RwSignal<bool>)> = p
        .scopes
        .iter()
        .map(|(s, d, on)| (s.clone(), d.clone(), RwSignal::new(*on)))
        .collect();
    let error = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let per_person = RwSignal::new(false);
    let slug = p.slug.clone();
    let scopeless = p.scopeless;
    let (fields_for_submit, selected_for_submit) = (fields.clone(), selected.clone());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let input = ConnectionInput {
            provider: slug.clone(),
            instance_fields: fields_for_submit
                .iter()
                .map(|(n, _, _, v)| (n.clone(), v.get()))
                .collect(),
            name: name.get(),
            client_id: client_id.get(),
            client_secret: Some(client_secret.get()).filter(|s| !s.is_empty()),
            scopes: if scopeless {
                Vec::new()
            } else {
                selected_for_submit
                    .iter()
                    .filter(|(_, _, on)| on.get())
                    .map(|(s, _, _)| s.clone())
                    .collect()
            },
            per_person: per_person.get(),
            ..ConnectionInput::default()
        };
        busy.set(true);
        error.set(None);
        spawn_local(async move {
            match create_connection(input).await {
                Ok(saved) => {
                    notice.set(Some(Ok(format!(
                        "Saved {}. Connect it to authorize.",
                        saved.name
                    ))));
                    done.run(());
                }
                Err(e) => error.set(Some(e)),
            }
            busy.try_set(false);
        });
    };
    let warnings = p.warnings.clone();
    let selected_for_warnings = selected.clone();
    view! {
        <Dialog title=format!("New {} connection", p.name) id="builtin-dialog">
            <form on:submit=submit class="space-y-4">
                <div class="rounded-md bg-slate-50 p-3 text-sm text-slate-700">
                    <p>"Create an OAuth app at " <a href=p.app_console_url.clone() target="_blank" rel="noopener noreferrer" class="font-medium text-indigo-700 underline">{p.name.clone()}</a> " with this redirect URI:"</p>
                    <p class="mt-1 flex items-center gap-2">
                        <code class="break-all rounded bg-white px-1" data-testid="builtin-redirect-uri">{redirect_uri.clone()}</code>
                        <CopyButton text=redirect_uri.clone() />
                    </p>
                    <p class="mt-2 text-xs text-slate-500">{p.notes.clone()}</p>
                </div>
                <div>
                    <label for="builtin-name" class="mb-1 block text-sm font-medium text-slate-700">"Name"</label>
                    <input id="builtin-name" type="text" class=INPUT prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                </div>
                {fields.into_iter().map(|(n, label, help, value)| {
                    let id = format!("builtin-field-{n}");
                    view! {
                        <div>
                            <label for=id.clone() class="mb-1 block text-sm font-medium text-slate-700">{label}</label>
                            <input id=id type="text" class=INPUT autocomplete="off" required
                                prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev)) />
                            <p class="mt-1 text-xs text-slate-500">{help}</p>
                        </div>
                    }
                }).collect_view()}
                <div>
                    <label for="builtin-client-id" class="mb-1 block text-sm font-medium text-slate-700">"Client ID"</label>
                    <input id="builtin-client-id" type="text" class=INPUT autocomplete="off" prop:value=move || client_id.get() on:input=move |ev| client_id.set(event_target_value(&ev)) />
                </div>
                <div>
                    <label for="builtin-client-secret" class="mb-1 block text-sm font-medium text-slate-700">"Client secret"</label>
                    <input id="builtin-client-secret" type="password" class=INPUT autocomplete="new-password" prop:value=move || client_secret.get() on:input=move |ev| client_secret.set(event_target_value(&ev)) />
                    <p class="mt-1 text-xs text-slate-500">"Sealed when saved and never shown again."</p>
                </div>
                {if scopeless {
                    view! { <p class="text-sm text-slate-600" data-testid="scopeless">"This provider takes no scopes: access is whatever the app and the user grant at the provider."</p> }.into_any()
                } else {
                    view! {
                        <fieldset>
                            <legend class="mb-1 block text-sm font-medium text-slate-700">"Scopes"</legend>
                            <div class="max-h-56 space-y-1 overflow-y-auto rounded-md border border-slate-200 p-2">
                                {selected.into_iter().map(|(scope, description, on)| view! {
                                    <label class="flex items-start gap-2 text-sm">
                                        <input type="checkbox" class="mt-1" prop:checked=move || on.get() on:change=move |ev| on.set(event_target_checked(&ev)) />
                                        <span><code class="text-xs">{scope}</code>" — " {description}</span>
                                    </label>
                                }).collect_view()}
                            </div>
                        </fieldset>
                    }.into_any()
                }}
                <PerPersonChoice per_person />
                {move || {
                    warnings
                        .iter()
                        .filter(|(scope, _)| {
                            selected_for_warnings.iter().any(|(s, _, on)| s == scope && !on.get())
                        })
                        .map(|(_, message)| view! {
                            <p role="alert" class="rounded-md border border-amber-200 bg-amber-50 p-2 text-sm text-amber-900" data-testid="scope-warning">{message.clone()}</p>
                        })
                        .collect_view()
                }}
                {move || error.get().map(|e| view! { <ErrorNotice error=e /> })}
                <div class="flex justify-end gap-3">
                    <button type="button" class=BUTTON_PLAIN on:click=move |_| close.run(())>"Cancel"</button>
                    <button type="submit" class=BUTTON disabled=move || busy.get()>"Save"</button>
                </div>
            </form>
        </Dialog>
    }
}

/// Shared or per person, asked once: at creation.
#[component]
fn PerPersonChoice(per_person: RwSignal<bool>) -> impl IntoView {
    view! {
        <label class="flex items-start gap-2 text-sm">
            <input type="checkbox" class="mt-1" data-testid="per-person"
                prop:checked=move || per_person.get() on:change=move |ev| per_person.set(event_target_checked(&ev)) />
            <span>
                "Each person connects their own account. MCP calls and worker tokens then act as the person who makes them; otherwise one shared account serves everyone. This cannot be changed later."
            </span>
        </label>
    }
}

#[component]
fn ConnectionDialog(
    existing: Option<ConnectionView>,
    close: Callback<()>,
    done: Callback<()>,
    notice: RwSignal<Option<Result<String, String>>>,
) -> impl IntoView {
    let e = existing.clone();
    let base = e
        .as_ref()
        .map(ConnectionInput::from)
        .unwrap_or_else(|| ConnectionInput {
            provider_type: "custom".into(),
            grant_type: "authorization_code".into(),
            token_auth_method: "client_secret_post".into(),
            pkce: true,
            ..ConnectionInput::default()
        });
    let name = RwSignal::new(base.name);
    let description = RwSignal::new(base.description);
    let provider_type = RwSignal::new(base.provider_type);
    let grant_type = RwSignal::new(base.grant_type);
    let dynamic = RwSignal::new(base.dynamic_registration);
    let client_id = RwSignal::new(base.client_id);
    let client_secret = RwSignal::new(String::new());
    let authorization_url = RwSignal::new(base.authorization_url);
    let token_url = RwSignal::new(base.token_url);
    let scopes = RwSignal::new(base.scopes.join("\n"));
    let revocation_url = RwSignal::new(base.revocation_url);
    let introspection_url = RwSignal::new(base.introspection_url);
    let provider_domain_url = RwSignal::new(base.provider_domain_url);
    let auth_method = RwSignal::new(base.token_auth_method);
    let pkce = RwSignal::new(base.pkce);
    let params = RwSignal::new(
        base.extra_auth_params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let resource = RwSignal::new(base.resource);
    let per_person = RwSignal::new(base.per_person);
    let creating = e.is_none();
    // The create dialog offers custom providers; a built-in connection keeps its provider and
    // instance fields on edit (their picker comes with the built-in providers' dialog).
    let provider = base.provider.clone();
    // A built-in provider's endpoints and flow come from its definition: not edited here.
    let custom = provider.is_empty() || provider == "custom";
    let builtin_note = (!custom).then(|| {
        format!("Endpoints, PKCE and parameters come from the built-in {provider} definition.")
    });
    let instance_fields = base.instance_fields.clone();
    let has_secret = e.as_ref().is_some_and(|c| c.has_client_secret);
    let error = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let editing_id = e.as_ref().map(|c| c.id.clone());
    let title = match &e {
        Some(c) => format!("Edit {}", c.name),
        None => "New connection".to_string(),
    };

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let input = ConnectionInput {
            provider: provider.clone(),
            instance_fields: instance_fields.clone(),
            name: name.get(),
            description: description.get(),
            provider_type: provider_type.get(),
            grant_type: grant_type.get(),
            dynamic_registration: dynamic.get() && grant_type.get() == "authorization_code",
            client_id: client_id.get(),
            client_secret: Some(client_secret.get()).filter(|s| !s.is_empty()),
            authorization_url: authorization_url.get(),
            token_url: token_url.get(),
            scopes: scopes.get().lines().map(str::to_string).collect(),
            revocation_url: revocation_url.get(),
            introspection_url: introspection_url.get(),
            provider_domain_url: provider_domain_url.get(),
            token_auth_method: auth_method.get(),
            pkce: pkce.get(),
            extra_auth_params: crate::util::parse_pairs(&params.get(), '='),
            resource: resource.get(),
            per_person: per_person.get() && grant_type.get() == "authorization_code",
        };
        busy.set(true);
        error.set(None);
        let editing_id = editing_id.clone();
        spawn_local(async move {
            let result = match editing_id {
                Some(id) => update_connection(id, input).await,
                None => create_connection(input).await,
            };
            match result {
                Ok(saved) => {
                    notice.set(Some(Ok(if saved.notices.is_empty() {
                        format!("Saved {}.", saved.name)
                    } else {
                        format!("Saved {}. {}", saved.name, saved.notices.join(" "))
                    })));
                    done.run(());
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };

    let field = move |id: &'static str,
                      label: &'static str,
                      value: RwSignal<String>,
                      kind: &'static str,
                      placeholder: &'static str| {
        view! {
            <div>
                <label for=id class="mb-1 block text-sm font-medium text-slate-700">{label}</label>
                <input id=id type=kind class=INPUT placeholder=placeholder autocomplete="off"
                    prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev)) />
            </div>
        }
    };
    let code_flow = move || grant_type.get() == "authorization_code";

    view! {
        <Dialog title id="connection-dialog">
            <form on:submit=submit class="space-y-4">
                {field("connection-name", "Name", name, "text", "e.g. Acme CRM")}
                {field("connection-description", "Description (optional)", description, "text", "What it is for")}
                {builtin_note.map(|n| view! { <p class="text-sm text-slate-600" data-testid="builtin-note">{n}</p> })}
                <Show when=move || custom>
                <div class="grid grid-cols-2 gap-3">
                    <div>
                        <label for="connection-provider-type" class="mb-1 block text-sm font-medium text-slate-700">"Provider type"</label>
                        <select id="connection-provider-type" class=INPUT prop:value=move || provider_type.get() on:change=move |ev| provider_type.set(event_target_value(&ev))>
                            {PROVIDER_TYPES.iter().map(|(v, l)| view! { <option value=*v>{*l}</option> }).collect_view()}
                        </select>
                    </div>
                    <div>
                        <label for="connection-grant" class="mb-1 block text-sm font-medium text-slate-700">"Grant type"</label>
                        <select id="connection-grant" class=INPUT prop:value=move || grant_type.get() on:change=move |ev| grant_type.set(event_target_value(&ev))>
                            <option value="authorization_code">"Authorization code (a user approves in a popup)"</option>
                            <option value="client_credentials">"Client credentials (no user, no popup)"</option>
                        </select>
                    </div>
                </div>
                <Show when=code_flow>
                    <label class="flex items-start gap-2 text-sm">
                        <input type="checkbox" class="mt-1" prop:checked=move || dynamic.get() on:change=move |ev| dynamic.set(event_target_checked(&ev)) />
                        <span>"Dynamic client registration: Gatehouse registers itself at the provider on the first Connect (RFC 7591), found through the provider's metadata (RFC 8414). PKCE is always on."</span>
                    </label>
                </Show>
                </Show>
                <Show when=move || !dynamic.get() || !code_flow()>
                    {field("connection-client-id", "Client ID", client_id, "text", "")}
                    <div>
                        <label for="connection-client-secret" class="mb-1 block text-sm font-medium text-slate-700">"Client secret"</label>
                        <input id="connection-client-secret" type="password" class=INPUT autocomplete="new-password"
                            placeholder=if has_secret { "Saved; leave empty to keep it" } else { "" }
                            prop:value=move || client_secret.get() on:input=move |ev| client_secret.set(event_target_value(&ev)) />
                        <p class="mt-1 text-xs text-slate-500">"Sealed when saved and never shown again."</p>
                    </div>
                </Show>
                <Show when=move || code_flow() && custom>
                    {field("connection-authorization-url", "Authorization URL", authorization_url, "url", "https://provider.example/oauth/authorize")}
                </Show>
                <Show when=move || custom>
                    {field("connection-token-url", "Token URL", token_url, "url", "https://provider.example/oauth/token")}
                </Show>
                <Show when=move || creating && code_flow()>
                    <PerPersonChoice per_person />
                </Show>
                <div>
                    <label for="connection-scopes" class="mb-1 block text-sm font-medium text-slate-700">"Default scopes (one per line)"</label>
                    <textarea id="connection-scopes" rows="3" class=INPUT prop:value=move || scopes.get() on:input=move |ev| scopes.set(event_target_value(&ev))></textarea>
                </div>
                <Show when=move || custom>
                <details class="rounded-md border border-slate-200 p-3">
                    <summary class="cursor-pointer text-sm font-medium text-slate-700">"Advanced configuration"</summary>
                    <div class="mt-3 space-y-4">
                        {field("connection-revocation-url", "Revocation URL (RFC 7009)", revocation_url, "url", "")}
                        {field("connection-introspection-url", "Introspection URL (RFC 7662)", introspection_url, "url", "")}
                        {field("connection-domain-url", "Provider domain URL", provider_domain_url, "url", "https://provider.example")}
                        {field("connection-resource", "Resource indicator (RFC 8707)", resource, "url", "")}
                        <div>
                            <label for="connection-auth-method" class="mb-1 block text-sm font-medium text-slate-700">"Token endpoint auth method"</label>
                            <select id="connection-auth-method" class=INPUT prop:value=move || auth_method.get() on:change=move |ev| auth_method.set(event_target_value(&ev))>
                                <option value="client_secret_post">"Client secret in the body (client_secret_post)"</option>
                                <option value="client_secret_basic">"HTTP Basic (client_secret_basic)"</option>
                            </select>
                        </div>
                        <label class="flex items-center gap-2 text-sm">
                            <input type="checkbox" prop:checked=move || pkce.get() on:change=move |ev| pkce.set(event_target_checked(&ev)) />
                            "Use PKCE (S256)"
                        </label>
                        <div>
                            <label for="connection-params" class="mb-1 block text-sm font-medium text-slate-700">"Extra authorization parameters (key=value per line)"</label>
                            <textarea id="connection-params" rows="2" class=INPUT placeholder="access_type=offline" prop:value=move || params.get() on:input=move |ev| params.set(event_target_value(&ev))></textarea>
                        </div>
                    </div>
                </details>
                </Show>
                {move || error.get().map(|e| view! { <ErrorNotice error=e /> })}
                <div class="flex justify-end gap-3">
                    <button type="button" class=BUTTON_PLAIN on:click=move |_| close.run(())>"Cancel"</button>
                    <button type="submit" class=BUTTON disabled=move || busy.get()>"Save"</button>
                </div>
            </form>
        </Dialog>
    }
}
