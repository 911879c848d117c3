//! MCP Servers: the upstream servers behind `/mcp` (add, edit, enable, delete, "Test", their
//! tools and health), "Add from catalog" (walking through creating the connection a server
//! needs), and the secrets vault their headers draw on (write-only).

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::ApiError;
use crate::api::connections::{
    ConnectStart, ConnectionStatus, ConnectionView, connect_connection, list_connections,
};
use crate::api::mcp_servers::{
    CatalogEntryView, FilterMode, McpServerInput, McpServerTestView, McpServerView, NameFilter,
    PersonalAccountView, SecretView, ServerPolicy, SignInInput, create_mcp_server,
    delete_mcp_server, delete_secret, list_mcp_servers, put_secret, test_mcp_server,
    update_mcp_server,
};
use crate::ui::components::app_shell::AdminOnly;
use crate::ui::components::confirm_dialog::{BUTTON, BUTTON_PLAIN, ConfirmDialog, INPUT};
use crate::ui::components::dialog::Dialog;
use crate::ui::components::error_notice::ErrorNotice;
use crate::util::format_utc;

#[derive(Debug, Clone, PartialEq)]
enum Open {
    None,
    Create,
    Edit(McpServerView),
    Delete(McpServerView),
    Catalog,
    CatalogAdd(CatalogEntryView),
    Tested(String, McpServerTestView),
    PutSecret(Option<String>),
    DeleteSecret(SecretView),
}

type Notice = RwSignal<Option<Result<String, String>>>;

const LABEL: &str = "mb-1 block text-sm font-medium text-slate-700";

#[component]
pub fn McpServersPage() -> impl IntoView {
    let refresh = RwSignal::new(0u32);
    let overview = Resource::new(move || refresh.get(), |_| list_mcp_servers());
    let connections = Resource::new(move || refresh.get(), |_| list_connections());
    let open = RwSignal::new(Open::None);
    let notice: Notice = RwSignal::new(None);
    let reload = Callback::new(move |_| refresh.update(|n| *n += 1));
    let close = Callback::new(move |_| open.set(Open::None));
    let done = Callback::new(move |_| {
        open.set(Open::None);
        reload.run(());
    });
    // The popup of "Connect my account" reports here when it is done.
    crate::ui::components::popup::listen(move |message| {
        notice.set(Some(match (message.ok, message.error) {
            (true, _) => Ok("Your account is connected.".to_string()),
            (false, e) => Err(e.unwrap_or_else(|| "The connection failed.".into())),
        }));
        reload.run(());
    });
    let connection_list = Signal::derive(move || {
        connections
            .get()
            .and_then(Result::ok)
            .map(|o| o.items)
            .unwrap_or_default()
    });

    // Back from creating a connection for a catalog entry: continue with that entry.
    let query = use_query_map();
    Effect::new(move |handled: Option<bool>| {
        if handled == Some(true) {
            return true;
        }
        let Some(id) = query.with(|q| q.get("catalog")) else {
            return true;
        };
        match overview.get() {
            Some(Ok(o)) => {
                if let Some(entry) = o.catalog.into_iter().find(|e| e.id == id) {
                    open.set(Open::CatalogAdd(entry));
                }
                true
            }
            _ => false,
        }
    });

    view! {
        <Title text="MCP Servers" />
        <div inert=move || open.get() != Open::None>
            <div class="mb-6 flex flex-wrap items-start justify-between gap-4">
                <div>
                    <h1 class="text-xl font-semibold">"MCP Servers"</h1>
                    <p class="mt-1 max-w-2xl text-sm text-slate-600">
                        "Upstream MCP servers behind Gatehouse's /mcp endpoint. Their tools are listed as <server>__<tool>; Gatehouse sends each server its credential (a connection's token or configured headers) and never the MCP client's."
                    </p>
                </div>
                <AdminOnly>
                    <div class="flex gap-2">
                        <button type="button" class=BUTTON_PLAIN data-testid="add-from-catalog" on:click=move |_| open.set(Open::Catalog)>"Add from catalog"</button>
                        <button type="button" class=BUTTON data-testid="add-server" on:click=move |_| open.set(Open::Create)>"Add server"</button>
                    </div>
                </AdminOnly>
            </div>
            {move || notice.get().map(|n| match n {
                Ok(text) => view! { <div role="status" data-testid="servers-notice" class="mb-4 rounded-md border border-emerald-200 bg-emerald-50 p-3 text-sm text-emerald-900">{text}</div> }.into_any(),
                Err(text) => view! { <div role="alert" data-testid="servers-notice" class="mb-4 rounded-md border border-red-200 bg-red-50 p-3 text-sm text-red-800">{text}</div> }.into_any(),
            })}
            <Transition fallback=|| view! { <p class="text-sm text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match overview.await {
                        Err(e) => view! { <ErrorNotice error=e /> }.into_any(),
                        Ok(o) => view! {
                            {if o.servers.is_empty() {
                                view! {
                                    <p class="rounded-lg border border-slate-200 bg-white px-5 py-6 text-sm text-slate-500" data-testid="no-servers">
                                        "No MCP servers yet. Add one from the catalog, or any remote server by URL."
                                    </p>
                                }.into_any()
                            } else {
                                view! {
                                    <ul class="space-y-3">
                                        {o.servers.into_iter().map(|s| view! { <ServerCard server=s manage=o.can_manage open notice reload /> }).collect_view()}
                                    </ul>
                                }.into_any()
                            }}
                            {o.can_manage.then(|| view! { <SecretsSection secrets=o.secrets open /> })}
                        }.into_any(),
                    }
                })}
            </Transition>
        </div>
        {move || match open.get() {
            Open::None => ().into_any(),
            Open::Create => view! { <ServerDialog existing=None connections=connection_list close done notice /> }.into_any(),
            Open::Edit(s) => view! { <ServerDialog existing=Some(s) connections=connection_list close done notice /> }.into_any(),
            Open::Delete(s) => {
                let id = s.id.clone();
                view! {
                    <ConfirmDialog
                        title=format!("Delete {}?", s.name)
                        id="delete-server-dialog"
                        body=format!("Its {} tools disappear from /mcp. The connection and secrets it uses stay.", s.tools.len())
                        confirm="Delete server"
                        action=move || {
                            let id = id.clone();
                            async move { delete_mcp_server(id).await }
                        }
                        done
                        cancel=close
                    />
                }.into_any()
            }
            Open::Catalog => {
                let entries = overview.get_untracked().and_then(Result::ok).map(|o| o.catalog).unwrap_or_default();
                view! { <CatalogChooser entries open close /> }.into_any()
            }
            Open::CatalogAdd(entry) => view! { <CatalogAddDialog entry connections=connection_list close done notice /> }.into_any(),
            Open::Tested(name, result) => view! { <TestResult name result close /> }.into_any(),
            Open::PutSecret(name) => view! { <SecretDialog existing=name close done notice /> }.into_any(),
            Open::DeleteSecret(secret) => {
                let name = secret.name.clone();
                view! {
                    <ConfirmDialog
                        title=format!("Delete the secret {}?", secret.name)
                        id="delete-secret-dialog"
                        body="The value is deleted for good. A server whose headers use it is refused this: change those headers first.".to_string()
                        confirm="Delete secret"
                        action=move || {
                            let name = name.clone();
                            async move { delete_secret(name).await }
                        }
                        done
                        cancel=close
                    />
                }.into_any()
            }
        }}
    }
}

fn status_badge(status: &str) -> &'static str {
    match status {
        "healthy" => "bg-emerald-100 text-emerald-800",
        "failing" => "bg-red-100 text-red-800",
        "disabled" => "bg-slate-200 text-slate-700",
        _ => "bg-slate-100 text-slate-700",
    }
}

fn status_label(status: &str) -> &'static str {
    match status {
        "healthy" => "Healthy",
        "failing" => "Failing",
        "disabled" => "Disabled",
        _ => "Not contacted yet",
    }
}

/// "Tools: only get_*. Resources: all but file:///private/*", or nothing when all is offered.
fn policy_line(policy: &ServerPolicy) -> Option<String> {
    let parts: Vec<String> = [
        ("Tools", &policy.tools),
        ("Prompts", &policy.prompts),
        ("Resources", &policy.resources),
    ]
    .into_iter()
    .filter_map(|(what, f)| f.describe().map(|d| format!("{what}: {d}")))
    .collect();
    (!parts.is_empty()).then(|| format!("{}.", parts.join(". ")))
}

/// The entry as an edit would send it back: headers kept, the rest as shown.
fn input_of(s: &McpServerView) -> McpServerInput {
    McpServerInput {
        name: s.name.clone(),
        url: s.url.clone(),
        transport: s.transport.clone(),
        auth: s.auth.clone(),
        connection_id: s.connection_id.clone(),
        headers: None,
        timeout_secs: Some(s.timeout_secs),
        enabled: Some(s.enabled),
        catalog_id: None,
        policy: Some(s.policy.clone()),
        sign_in: None,
    }
}

/// A per-person server's line about the viewer's own account, with Connect when it is not
/// usable.
#[component]
fn PersonalAccount(account: PersonalAccountView, notice: Notice) -> impl IntoView {
    let busy = RwSignal::new(false);
    let usable = matches!(
        account.status,
        ConnectionStatus::Connected | ConnectionStatus::Expiring | ConnectionStatus::Failing
    );
    let id = account.connection_id.clone();
    let connect = move |_| {
        // Opened inside the click: a popup opened after an await is blocked.
        let Some(popup) = crate::ui::components::popup::Popup::open() else {
            notice.set(Some(Err(
                "The browser blocked the popup. Allow popups for this site and try again.".into(),
            )));
            return;
        };
        busy.set(true);
        let id = id.clone();
        spawn_local(async move {
            match connect_connection(id).await {
                Ok(ConnectStart::Popup { url }) => popup.navigate(&url),
                Ok(ConnectStart::Connected) => popup.close(),
                Err(e) => {
                    popup.close();
                    notice.set(Some(Err(e.message().to_string())));
                }
            }
            busy.try_set(false);
        });
    };
    view! {
        <p class="mt-1 flex flex-wrap items-center gap-2 text-sm text-slate-600" data-testid="personal-account" data-status=format!("{:?}", account.status)>
            <span>
                "Acts as each person who calls it, with their own account of "
                <span class="font-medium text-slate-800">{account.connection_name.clone()}</span>
                ". Yours: "
                <span data-testid="personal-account-status">{account.status.label()}</span>
            </span>
            {(!usable).then(|| view! {
                <button type="button" class=BUTTON disabled=move || busy.get() on:click=connect data-testid="connect-my-account">
                    "Connect my account"
                </button>
                <a href="/connections" class="text-xs text-indigo-700 underline">"My connections"</a>
            })}
        </p>
    }
}

#[component]
fn ServerCard(
    server: McpServerView,
    /// The caller is an admin: the card offers Test, Enable/Disable, Edit and Delete.
    manage: bool,
    open: RwSignal<Open>,
    notice: Notice,
    reload: Callback<()>,
) -> impl IntoView {
    let s = server;
    let busy = RwSignal::new(false);
    let name = s.name.clone();
    let auth = match s.auth.as_str() {
        "connection" => format!(
            "Token of connection {}",
            s.connection_name
                .clone()
                .unwrap_or_else(|| "(deleted)".into())
        ),
        "headers" => format!("Headers: {}", s.header_names.join(", ")),
        _ => "No authentication".into(),
    };
    let test = {
        let id = s.id.clone();
        let name = name.clone();
        move |_| {
            busy.set(true);
            let (id, name) = (id.clone(), name.clone());
            spawn_local(async move {
                match test_mcp_server(id).await {
                    Ok(result) => open.set(Open::Tested(name, result)),
                    Err(e) => notice.set(Some(Err(e.message().to_string()))),
                }
                busy.try_set(false);
                reload.run(());
            });
        }
    };
    let toggle = {
        let s = s.clone();
        move |_| {
            busy.set(true);
            let mut input = input_of(&s);
            input.enabled = Some(!s.enabled);
            let id = s.id.clone();
            spawn_local(async move {
                if let Err(e) = update_mcp_server(id, input).await {
                    notice.set(Some(Err(e.message().to_string())));
                }
                busy.try_set(false);
                reload.run(());
            });
        }
    };
    let for_edit = s.clone();
    let for_delete = s.clone();
    let tool_count = s.tools.len();
    let open_tools = tool_count > 0 && tool_count <= 12;
    // The card's parts are views of their own (`into_any`): one nested type for the whole
    // card is deeper than the release build of the browser bundle allows.
    let summary = view! {
                <div class="min-w-0">
                    <div class="flex items-center gap-2">
                        <h2 class="font-medium">{s.name.clone()}</h2>
                        <span class=format!("rounded-full px-2 py-0.5 text-xs font-medium {}", status_badge(&s.status)) data-testid="server-status">{status_label(&s.status)}</span>
                        {s.latency_ms.map(|ms| view! { <span class="text-xs text-slate-500" data-testid="server-latency">{format!("{ms} ms")}</span> })}
                    </div>
                    <p class="mt-1 break-all font-mono text-xs text-slate-600">{s.url.clone()} " · " {if s.transport == "sse" { "legacy SSE" } else { "Streamable HTTP" }}</p>
                    <p class="mt-1 text-sm text-slate-600" data-testid="server-auth">{auth}</p>
                    {policy_line(&s.policy).map(|line| view! { <p class="mt-1 text-sm text-amber-800" data-testid="server-policy">{line}</p> })}
                    {s.calls.as_ref().map(|c| view! {
                        <p class="mt-1 text-xs text-slate-500" data-testid="server-calls"
                            title="Tool calls of the last hour on this replica (at most the latest 1,000); Prometheus has every replica's.">
                            "Tool calls: " {c.summary()}
                        </p>
                    })}
                    {s.last_error.clone().map(|e| view! { <p class="mt-1 text-sm text-red-700" data-testid="server-error">{e}</p> })}
                    {s.personal.clone().map(|p| view! { <PersonalAccount account=p notice /> })}
                </div>
    }
    .into_any();
    let actions = manage.then(|| view! {
                    <div class="flex flex-wrap gap-2">
                        <button type="button" class=BUTTON_PLAIN disabled=move || busy.get() on:click=test aria-label=format!("Test {name}")>"Test"</button>
                        <button type="button" class=BUTTON_PLAIN disabled=move || busy.get() on:click=toggle>{if s.enabled { "Disable" } else { "Enable" }}</button>
                        <button type="button" class=BUTTON_PLAIN on:click=move |_| open.set(Open::Edit(for_edit.clone()))>"Edit"</button>
                        <button type="button" class=BUTTON_PLAIN on:click=move |_| open.set(Open::Delete(for_delete.clone()))>"Delete"</button>
                    </div>
                }.into_any());
    view! {
        <li class="rounded-lg border border-slate-200 bg-white p-4" data-testid="server-card" data-name=s.name.clone() data-id=s.id.clone()>
            <div class="flex flex-wrap items-start justify-between gap-3">
                {summary}
                {actions}
            </div>
            <details class="mt-3" open=open_tools>
                <summary class="cursor-pointer text-sm text-slate-700">{format!("{tool_count} tools")}</summary>
                <ul class="mt-2 space-y-1" data-testid="server-tools">
                    {s.tools.iter().map(|t| view! {
                        <li class="text-sm"><code class="text-xs">{t.name.clone()}</code> <span class="text-slate-600">{t.description.clone()}</span></li>
                    }).collect_view()}
                </ul>
            </details>
        </li>
    }
}

#[component]
fn ServerDialog(
    existing: Option<McpServerView>,
    connections: Signal<Vec<ConnectionView>>,
    close: Callback<()>,
    done: Callback<()>,
    notice: Notice,
) -> impl IntoView {
    let base = existing
        .as_ref()
        .map(input_of)
        .unwrap_or_else(|| McpServerInput {
            transport: "http".into(),
            auth: "none".into(),
            timeout_secs: Some(30),
            enabled: Some(true),
            ..McpServerInput::default()
        });
    let kept_headers = existing
        .as_ref()
        .filter(|s| s.auth == "headers")
        .map(|s| s.header_names.join(", "));
    let name = RwSignal::new(base.name);
    let url = RwSignal::new(base.url);
    let transport = RwSignal::new(base.transport);
    let auth = RwSignal::new(base.auth);
    let connection_id = RwSignal::new(base.connection_id.unwrap_or_default());
    let headers = RwSignal::new(String::new());
    let timeout = RwSignal::new(base.timeout_secs.unwrap_or(30).to_string());
    let enabled = RwSignal::new(base.enabled.unwrap_or(true));
    let policy = base.policy.unwrap_or_default();
    let sign_in = RwSignal::new(SignInInput::default());
    let adding = existing.is_none();
    let tool_filter = RwSignal::new(policy.tools);
    let prompt_filter = RwSignal::new(policy.prompts);
    let resource_filter = RwSignal::new(policy.resources);
    let error = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let id = existing.as_ref().map(|s| s.id.clone());
    let title = match &existing {
        Some(s) => format!("Edit {}", s.name),
        None => "Add an MCP server".to_string(),
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let header_text = headers.get_untracked();
        let input = McpServerInput {
            name: name.get_untracked(),
            url: url.get_untracked(),
            transport: transport.get_untracked(),
            auth: auth.get_untracked(),
            connection_id: Some(connection_id.get_untracked()).filter(|c| !c.is_empty()),
            headers: (!header_text.trim().is_empty())
                .then(|| crate::util::parse_pairs(&header_text, ':')),
            timeout_secs: timeout.get_untracked().trim().parse().ok(),
            enabled: Some(enabled.get_untracked()),
            catalog_id: None,
            policy: Some(ServerPolicy {
                tools: tool_filter.get_untracked(),
                prompts: prompt_filter.get_untracked(),
                resources: resource_filter.get_untracked(),
            }),
            sign_in: (auth.get_untracked() == "discover").then(|| sign_in.get_untracked()),
        };
        busy.set(true);
        let id = id.clone();
        spawn_local(async move {
            let result = match id {
                Some(id) => update_mcp_server(id, input).await,
                None => create_mcp_server(input).await,
            };
            match result {
                Ok(saved) => {
                    notice.set(Some(Ok(format!(
                        "Saved {}. Use Test to check it.",
                        saved.name
                    ))));
                    done.run(());
                }
                Err(e) => error.set(Some(e)),
            }
            busy.try_set(false);
        });
    };
    // Its own view (`into_any`): with it inline the form's type is deeper than the compiler allows.
    let policy_part = view! {
                <details class="rounded-md border border-slate-200 p-3" open=!(tool_filter.get_untracked().is_open() && prompt_filter.get_untracked().is_open() && resource_filter.get_untracked().is_open())>
                    <summary class="cursor-pointer text-sm font-medium text-slate-700">"What /mcp offers of it"</summary>
                    <p class="mt-2 text-xs text-slate-500">"Patterns are names in which * stands for any characters, one per line; resources are matched by URI. A hidden tool, prompt or resource is not listed and cannot be used by name."</p>
                    <div class="mt-3 space-y-3">
                        <FilterField id="server-tools-filter" label="Tools" filter=tool_filter placeholder="delete_*" />
                        <FilterField id="server-prompts-filter" label="Prompts" filter=prompt_filter placeholder="draft_*" />
                        <FilterField id="server-resources-filter" label="Resources" filter=resource_filter placeholder="file:///private/*" />
                    </div>
                </details>
    }
    .into_any();
    view! {
        <Dialog title id="server-dialog">
            <form on:submit=submit class="space-y-4">
                <div>
                    <label for="server-name" class=LABEL>"Name"</label>
                    <input id="server-name" type="text" class=INPUT required placeholder="github" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                    <p class="mt-1 text-xs text-slate-500">"Lowercase letters, digits and '-'. Its tools are listed as <name>__<tool>."</p>
                </div>
                <div>
                    <label for="server-url" class=LABEL>"URL"</label>
                    <input id="server-url" type="url" class=INPUT required placeholder="https://mcp.example.com/mcp" prop:value=move || url.get() on:input=move |ev| url.set(event_target_value(&ev)) />
                </div>
                <div>
                    <label for="server-transport" class=LABEL>"Transport"</label>
                    <select id="server-transport" class=INPUT prop:value=move || transport.get() on:change=move |ev| transport.set(event_target_value(&ev))>
                        <option value="http">"Streamable HTTP"</option>
                        <option value="sse">"HTTP+SSE (legacy servers)"</option>
                    </select>
                    <p class="mt-1 text-xs text-slate-500">"stdio servers run on a client's machine and cannot be added: put them behind an stdio-to-HTTP bridge and add its URL."</p>
                </div>
                <div>
                    <label for="server-auth" class=LABEL>"Authentication"</label>
                    <select id="server-auth" class=INPUT prop:value=move || auth.get() on:change=move |ev| auth.set(event_target_value(&ev))>
                        <option value="none">"None"</option>
                        {adding.then(|| view! { <option value="discover">"Sign in (discover from the server)"</option> })}
                        <option value="connection">"A connection's access token (Bearer)"</option>
                        <option value="headers">"Static headers"</option>
                    </select>
                </div>
                <Show when=move || auth.get() == "discover">
                    <SignInFields sign_in />
                </Show>
                <Show when=move || auth.get() == "connection">
                    <div>
                        <label for="server-connection" class=LABEL>"Connection"</label>
                        <select id="server-connection" class=INPUT prop:value=move || connection_id.get() on:change=move |ev| connection_id.set(event_target_value(&ev))>
                            <option value="">"Choose a connection"</option>
                            {move || connections.get().into_iter().map(|c| view! {
                                <option value=c.id.clone()>{format!("{} ({})", c.name, c.provider)}</option>
                            }).collect_view()}
                        </select>
                        <p class="mt-1 text-xs text-slate-500">"Gatehouse refreshes its token and sends it as Authorization: Bearer. A 401 triggers one refresh and one retry."</p>
                    </div>
                </Show>
                <Show when=move || auth.get() == "headers">
                    <div>
                        <label for="server-headers" class=LABEL>"Headers (Name: value, one per line)"</label>
                        <textarea id="server-headers" rows="3" class=INPUT placeholder="Authorization: Bearer ${GITHUB_TOKEN}" prop:value=move || headers.get() on:input=move |ev| headers.set(event_target_value(&ev))></textarea>
                        <p class="mt-1 text-xs text-slate-500">
                            "${NAME} is replaced by the vault secret NAME at each call. Values are sealed and never shown again"
                            {kept_headers.clone().map(|names| format!("; leave empty to keep the current ones ({names})"))}
                            "."
                        </p>
                    </div>
                </Show>
                <div class="flex gap-4">
                    <div class="w-40">
                        <label for="server-timeout" class=LABEL>"Timeout (seconds)"</label>
                        <input id="server-timeout" type="number" min="1" max="300" class=INPUT prop:value=move || timeout.get() on:input=move |ev| timeout.set(event_target_value(&ev)) />
                    </div>
                    <label class="mt-6 flex items-center gap-2 text-sm">
                        <input type="checkbox" prop:checked=move || enabled.get() on:change=move |ev| enabled.set(event_target_checked(&ev)) />
                        "Enabled"
                    </label>
                </div>
                {policy_part}
                {move || error.get().map(|e| view! { <ErrorNotice error=e /> })}
                <div class="flex justify-end gap-3">
                    <button type="button" class=BUTTON_PLAIN on:click=move |_| close.run(())>"Cancel"</button>
                    <button type="submit" class=BUTTON disabled=move || busy.get()>"Save"</button>
                </div>
            </form>
        </Dialog>
    }
}

/// `auth: discover`: shared or per person, and a client only for servers that register none.
#[component]
fn SignInFields(sign_in: RwSignal<SignInInput>) -> impl IntoView {
    view! {
        <div class="space-y-3 rounded-md border border-slate-200 p-3" data-testid="sign-in-fields">
            <p class="text-xs text-slate-500">"Gatehouse asks the server how to sign in (its 401 and protected resource metadata), registers itself with the server's authorization server, and creates a connection for it on the Connections page. Connect that connection (or, per person, each person their own account) to use the server."</p>
            <label class="flex items-center gap-2 text-sm">
                <input type="checkbox" prop:checked=move || sign_in.get().per_person on:change=move |ev| sign_in.update(|s| s.per_person = event_target_checked(&ev)) />
                "Each person signs in with their own account"
            </label>
            <div>
                <label for="sign-in-client-id" class=LABEL>"Client ID (only if the server registers no clients)"</label>
                <input id="sign-in-client-id" type="text" class=INPUT on:input=move |ev| sign_in.update(|s| s.client_id = Some(event_target_value(&ev)).filter(|v| !v.trim().is_empty())) />
            </div>
            <div>
                <label for="sign-in-client-secret" class=LABEL>"Client secret (if that client has one)"</label>
                <input id="sign-in-client-secret" type="password" class=INPUT autocomplete="off" on:input=move |ev| sign_in.update(|s| s.client_secret = Some(event_target_value(&ev)).filter(|v| !v.is_empty())) />
            </div>
        </div>
    }
    .into_any()
}

/// One filter of a server's policy: a mode and its patterns.
#[component]
fn FilterField(
    id: &'static str,
    label: &'static str,
    filter: RwSignal<NameFilter>,
    placeholder: &'static str,
) -> impl IntoView {
    let mode_id = format!("{id}-mode");
    let mode_value = move || match filter.get().mode {
        FilterMode::All => "all",
        FilterMode::Allow => "allow",
        FilterMode::Deny => "deny",
    };
    let set_mode = move |ev| {
        let mode = match event_target_value(&ev).as_str() {
            "allow" => FilterMode::Allow,
            "deny" => FilterMode::Deny,
            _ => FilterMode::All,
        };
        filter.update(|f| f.mode = mode);
    };
    let set_patterns = move |ev| {
        let text = event_target_value(&ev);
        filter.update(|f| {
            f.patterns = text
                .split(['\n', ','])
                .map(|p| p.trim().to_string())
                .filter(|p| !p.is_empty())
                .collect()
        });
    };
    view! {
        <div class="flex flex-wrap gap-3">
            <div class="w-44">
                <label for=mode_id.clone() class=LABEL>{label}</label>
                <select id=mode_id class=INPUT prop:value=mode_value on:change=set_mode>
                    <option value="all">"All"</option>
                    <option value="allow">"Only these"</option>
                    <option value="deny">"All but these"</option>
                </select>
            </div>
            <Show when=move || !filter.get().is_open()>
                <div class="min-w-48 flex-1">
                    <label for=id class=LABEL>"Patterns"</label>
                    <textarea id=id rows="2" class=INPUT placeholder=placeholder prop:value=move || filter.get_untracked().patterns.join("\n") on:input=set_patterns></textarea>
                </div>
            </Show>
        </div>
    }
    .into_any()
}

#[component]
fn CatalogChooser(
    entries: Vec<CatalogEntryView>,
    open: RwSignal<Open>,
    close: Callback<()>,
) -> impl IntoView {
    view! {
        <Dialog title="Add from catalog".to_string() id="catalog-chooser">
            <ul class="max-h-[60vh] space-y-2 overflow-y-auto">
                {entries.into_iter().map(|e| {
                    let chosen = e.clone();
                    view! {
                        <li>
                            <button type="button" class="w-full rounded-md border border-slate-200 p-3 text-left hover:bg-slate-50" aria-label=e.name.clone() on:click=move |_| open.set(Open::CatalogAdd(chosen.clone()))>
                                <span class="block font-medium">{e.name.clone()}</span>
                                <span class="block text-sm text-slate-600">{e.description.clone()}</span>
                                <span class="mt-1 block break-all font-mono text-xs text-slate-500">{e.url.clone()}</span>
                            </button>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <div class="mt-4 flex justify-end">
                <button type="button" class=BUTTON_PLAIN on:click=move |_| close.run(())>"Cancel"</button>
            </div>
        </Dialog>
    }
}

#[component]
fn CatalogAddDialog(
    entry: CatalogEntryView,
    connections: Signal<Vec<ConnectionView>>,
    close: Callback<()>,
    done: Callback<()>,
    notice: Notice,
) -> impl IntoView {
    let name = RwSignal::new(entry.server_name.clone());
    let provider = entry.provider.clone();
    let matching = {
        let provider = provider.clone();
        Signal::derive(move || {
            connections
                .get()
                .into_iter()
                .filter(|c| Some(&c.provider) == provider.as_ref())
                .collect::<Vec<_>>()
        })
    };
    let connection_id = RwSignal::new(String::new());
    Effect::new(move |_| {
        // Preselect the first usable connection.
        if connection_id.get_untracked().is_empty()
            && let Some(c) = matching
                .get()
                .into_iter()
                .find(|c| c.status == ConnectionStatus::Connected)
                .or_else(|| matching.get().into_iter().next())
        {
            connection_id.set(c.id);
        }
    });
    let error = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let catalog_id = entry.id.clone();
    let discover = entry.sign_in == "discover";
    let per_person = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let input = McpServerInput {
            name: name.get_untracked(),
            connection_id: Some(connection_id.get_untracked()).filter(|c| !c.is_empty()),
            catalog_id: Some(catalog_id.clone()),
            sign_in: discover.then(|| SignInInput {
                per_person: per_person.get_untracked(),
                ..SignInInput::default()
            }),
            ..McpServerInput::default()
        };
        busy.set(true);
        spawn_local(async move {
            match create_mcp_server(input).await {
                // Signed in to by discovery: its connection is next, on Connections.
                Ok(saved) if discover => {
                    notice.set(Some(Ok(format!(
                        "Added {}. Connect its connection \"{}\" on the Connections page to use it.",
                        saved.name,
                        saved.connection_name.clone().unwrap_or_default()
                    ))));
                    done.run(());
                }
                Ok(saved) => {
                    // Contact it at once, so the page shows its tools (or why not).
                    let message = match test_mcp_server(saved.id.clone()).await {
                        Ok(t) if t.ok => {
                            Ok(format!("Added {}: {} tools.", saved.name, t.tools.len()))
                        }
                        Ok(t) => Err(format!(
                            "Added {}, but it does not answer yet: {}",
                            saved.name,
                            t.error.unwrap_or_default()
                        )),
                        Err(e) => Err(e.message().to_string()),
                    };
                    notice.set(Some(message));
                    done.run(());
                }
                Err(e) => error.set(Some(e)),
            }
            busy.try_set(false);
        });
    };
    let needs = entry.provider_name.clone();
    let create_link = provider.clone().map(|p| {
        let then = format!("/mcp-servers?catalog={}", entry.id);
        format!(
            "/connections?new={}&then={}",
            crate::util::encode_query_value(&p),
            crate::util::encode_query_value(&then)
        )
    });
    view! {
        <Dialog title=format!("Add {}", entry.name) id="catalog-add-dialog">
            <form on:submit=submit class="space-y-4">
                <p class="text-sm text-slate-600">{entry.description.clone()} " " <a href=entry.docs_url.clone() target="_blank" rel="noopener noreferrer" class="text-indigo-700 underline">"Docs"</a></p>
                <p class="break-all font-mono text-xs text-slate-500">{entry.url.clone()}</p>
                <CatalogSignIn entry=entry.clone() per_person />
                <div>
                    <label for="catalog-server-name" class=LABEL>"Server name"</label>
                    <input id="catalog-server-name" type="text" class=INPUT required prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                </div>
                {needs.map(|p| {
                    let link = create_link.clone().unwrap_or_default();
                    view! {
                        <Show
                            when=move || !matching.get().is_empty()
                            fallback=move || view! {
                                <div class="rounded-md border border-amber-200 bg-amber-50 p-3 text-sm text-amber-900" data-testid="catalog-needs-connection">
                                    <p>{format!("This server needs a {p} connection, and there is none yet. Create it and connect it first; you come back here afterwards.")}</p>
                                    <a href=link.clone() class="mt-2 inline-block font-medium text-indigo-700 underline">"Create the connection"</a>
                                </div>
                            }
                        >
                            <div>
                                <label for="catalog-connection" class=LABEL>"Connection"</label>
                                <select id="catalog-connection" class=INPUT prop:value=move || connection_id.get() on:change=move |ev| connection_id.set(event_target_value(&ev))>
                                    {move || matching.get().into_iter().map(|c| view! {
                                        <option value=c.id.clone()>{format!("{} ({})", c.name, c.status.label())}</option>
                                    }).collect_view()}
                                </select>
                            </div>
                        </Show>
                    }
                })}
                {move || error.get().map(|e| view! { <ErrorNotice error=e /> })}
                <div class="flex justify-end gap-3">
                    <button type="button" class=BUTTON_PLAIN on:click=move |_| close.run(())>"Cancel"</button>
                    <button type="submit" class=BUTTON disabled=move || busy.get() || (provider.is_some() && matching.get().is_empty())>"Add server"</button>
                </div>
            </form>
        </Dialog>
    }
}

/// How a catalog entry's server is signed in to, with the documentation that says so; for
/// one signed in to by discovery, whether each person uses their own account.
#[component]
fn CatalogSignIn(entry: CatalogEntryView, per_person: RwSignal<bool>) -> impl IntoView {
    let how = match entry.sign_in.as_str() {
        "discover" => {
            "Signed in to by discovery: Gatehouse registers itself with the server's authorization server, no app to create."
        }
        "provider" => {
            "Signed in to with an app you register with the service (its built-in provider)."
        }
        "headers" => "Signed in to with a token in a header.",
        _ => "Needs no sign-in.",
    };
    view! {
        <div class="space-y-1 text-sm text-slate-600" data-testid="catalog-sign-in" data-sign-in=entry.sign_in.clone()>
            <p>{how} {entry.sign_in_notes.clone().map(|n| format!(" {n}"))}</p>
            <p class="text-xs">
                "Sources: "
                {entry.sources.iter().map(|s| view! { <a href=s.clone() target="_blank" rel="noopener noreferrer" class="mr-2 break-all text-indigo-700 underline">{s.clone()}</a> }).collect_view()}
            </p>
            {(entry.sign_in == "discover").then(|| view! {
                <label class="flex items-center gap-2">
                    <input type="checkbox" prop:checked=move || per_person.get() on:change=move |ev| per_person.set(event_target_checked(&ev)) />
                    "Each person signs in with their own account"
                </label>
            })}
        </div>
    }
    .into_any()
}

#[component]
fn TestResult(name: String, result: McpServerTestView, close: Callback<()>) -> impl IntoView {
    view! {
        <Dialog title=format!("Test of {name}") id="test-result">
            {if result.ok {
                view! {
                    <p class="text-sm text-emerald-800" data-testid="test-ok">
                        {format!(
                            "Connected in {} ms to {} (protocol {}): {} tools.",
                            result.latency_ms,
                            result.server_name.clone().unwrap_or_default(),
                            result.protocol_version.clone().unwrap_or_default(),
                            result.tools.len()
                        )}
                    </p>
                    <ul class="mt-2 max-h-64 space-y-1 overflow-y-auto">
                        {result.tools.iter().map(|t| view! { <li class="text-sm"><code class="text-xs">{t.name.clone()}</code></li> }).collect_view()}
                    </ul>
                }.into_any()
            } else {
                view! {
                    <p role="alert" class="text-sm text-red-800" data-testid="test-error">
                        {format!("Failed after {} ms: {}", result.latency_ms, result.error.clone().unwrap_or_default())}
                    </p>
                }.into_any()
            }}
            <div class="mt-4 flex justify-end">
                <button type="button" class=BUTTON_PLAIN on:click=move |_| close.run(())>"Close"</button>
            </div>
        </Dialog>
    }
}

#[component]
fn SecretsSection(secrets: Vec<SecretView>, open: RwSignal<Open>) -> impl IntoView {
    view! {
        <section class="mt-10" data-testid="secrets">
            <div class="mb-3 flex items-center justify-between">
                <div>
                    <h2 class="text-lg font-semibold">"Secrets"</h2>
                    <p class="text-sm text-slate-600">"Values for ${NAME} in server headers. Sealed when saved; they can be replaced, never read back."</p>
                </div>
                <button type="button" class=BUTTON_PLAIN data-testid="add-secret" on:click=move |_| open.set(Open::PutSecret(None))>"Add secret"</button>
            </div>
            {if secrets.is_empty() {
                view! { <p class="text-sm text-slate-500">"No secrets yet."</p> }.into_any()
            } else {
                view! {
                    <table class="w-full text-left text-sm">
                        <thead class="text-slate-500"><tr><th class="py-1">"Name"</th><th>"Used by"</th><th>"Updated"</th><th></th></tr></thead>
                        <tbody>
                            {secrets.into_iter().map(|s| {
                                let replace = s.name.clone();
                                let remove = s.clone();
                                view! {
                                    <tr class="border-t border-slate-200" data-testid="secret-row" data-name=s.name.clone()>
                                        <td class="py-2 font-mono text-xs">{s.name.clone()}</td>
                                        <td>{if s.used_by.is_empty() { "—".to_string() } else { s.used_by.join(", ") }}</td>
                                        <td class="text-slate-600">{format_utc(s.updated_at)} " by " {s.updated_by.clone()}</td>
                                        <td class="space-x-2 text-right">
                                            <button type="button" class="text-indigo-700 hover:underline" on:click=move |_| open.set(Open::PutSecret(Some(replace.clone())))>"Replace"</button>
                                            <button type="button" class="text-red-700 hover:underline" on:click=move |_| open.set(Open::DeleteSecret(remove.clone()))>"Delete"</button>
                                        </td>
                                    </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                }.into_any()
            }}
        </section>
    }
}

#[component]
fn SecretDialog(
    existing: Option<String>,
    close: Callback<()>,
    done: Callback<()>,
    notice: Notice,
) -> impl IntoView {
    let replacing = existing.is_some();
    let name = RwSignal::new(existing.clone().unwrap_or_default());
    let value = RwSignal::new(String::new());
    let error = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (n, v) = (name.get_untracked(), value.get_untracked());
        busy.set(true);
        spawn_local(async move {
            match put_secret(n.clone(), v).await {
                Ok(()) => {
                    notice.set(Some(Ok(format!("Saved the secret {n}."))));
                    done.run(());
                }
                Err(e) => error.set(Some(e)),
            }
            busy.try_set(false);
        });
    };
    view! {
        <Dialog title=if replacing { "Replace a secret".to_string() } else { "Add a secret".to_string() } id="secret-dialog">
            <form on:submit=submit class="space-y-4">
                <div>
                    <label for="secret-name" class=LABEL>"Name"</label>
                    <input id="secret-name" type="text" class=INPUT required disabled=replacing placeholder="GITHUB_TOKEN" prop:value=move || name.get() on:input=move |ev| name.set(event_target_value(&ev)) />
                    <p class="mt-1 text-xs text-slate-500">"A-Z, 0-9 and _, starting with a letter. Use it as ${NAME} in a header value."</p>
                </div>
                <div>
                    <label for="secret-value" class=LABEL>"Value"</label>
                    <input id="secret-value" type="password" class=INPUT required autocomplete="new-password" prop:value=move || value.get() on:input=move |ev| value.set(event_target_value(&ev)) />
                </div>
                {move || error.get().map(|e| view! { <ErrorNotice error=e /> })}
                <div class="flex justify-end gap-3">
                    <button type="button" class=BUTTON_PLAIN on:click=move |_| close.run(())>"Cancel"</button>
                    <button type="submit" class=BUTTON disabled=move || busy.get()>"Save"</button>
                </div>
            </form>
        </Dialog>
    }
}
