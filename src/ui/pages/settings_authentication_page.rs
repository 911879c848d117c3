//! Settings › Authentication: whether `/mcp` requires a token, and the API tokens.

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_meta::Title;
use serde_json::json;

use crate::api::ApiError;
use crate::api::mcp_settings::{
    ApiTokenView, CreatedTokenView, McpSettingsView, TokenScope, create_api_token,
    delete_api_token, get_mcp_settings, set_mcp_protection,
};
use crate::api::session::AuthType;
use crate::ui::components::confirm_dialog::{BUTTON, BUTTON_PLAIN, ConfirmDialog, INPUT};
use crate::ui::components::copy_button::CopyButton;
use crate::ui::components::dialog::Dialog;
use crate::ui::components::error_notice::ErrorNotice;
use crate::ui::components::settings_tabs::SettingsTabs;
use crate::util::{ago, format_utc};

/// The one dialog open at a time. Lives above the data, so refreshing the data after an
/// action never closes the dialog that shows its result.
#[derive(Debug, Clone, PartialEq)]
enum Open {
    None,
    /// Confirm turning protection on (true) or off (false).
    Protection(bool),
    Create,
    /// The token just created, shown this once.
    Created(CreatedTokenView),
    Delete(ApiTokenView),
}

#[component]
pub fn SettingsAuthenticationPage() -> impl IntoView {
    let refresh = RwSignal::new(0u32);
    let settings = Resource::new(move || refresh.get(), |_| get_mcp_settings());
    let open = RwSignal::new(Open::None);

    view! {
        <Title text="Settings › Authentication" />
        // While a dialog is open the page behind it is inert: not focusable, not clickable,
        // hidden from assistive technology.
        <div inert=move || open.get() != Open::None>
        <SettingsTabs />
        <Transition fallback=|| view! { <p class="text-sm text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match settings.await {
                    Ok(view) => view! {
                        {view.everyone_is_admin.then(|| view! {
                            <div role="status" data-testid="everyone-admin-warning" class="mb-6 rounded-md border border-amber-200 bg-amber-50 p-3 text-sm text-amber-900">
                                "Everyone the identity provider lets in is an admin: set AUTH_ADMIN_USERS or AUTH_OAUTH2_ADMIN_GROUPS to make the others members."
                            </div>
                        })}
                        <ProtectionSection settings=view.clone() open />
                        <TokensSection settings=view open />
                    }
                    .into_any(),
                    Err(e) => view! { <ErrorNotice error=e /> }.into_any(),
                }
            })}
        </Transition>
        </div>
        {move || match open.get() {
            Open::None => ().into_any(),
            Open::Protection(on) => protection_dialog(on, open, refresh).into_any(),
            Open::Create => view! { <CreateTokenDialog open refresh /> }.into_any(),
            Open::Created(created) => view! { <TokenCreatedDialog created open /> }.into_any(),
            Open::Delete(token) => delete_dialog(token, open, refresh).into_any(),
        }}
    }
}

#[component]
fn ProtectionSection(settings: McpSettingsView, open: RwSignal<Open>) -> impl IntoView {
    let on = settings.require_auth;
    view! {
        <section aria-labelledby="protection-heading" class="mb-8 rounded-lg border border-slate-200 bg-white p-5 shadow-sm">
            <div class="flex items-start justify-between gap-6">
                <div>
                    <h2 id="protection-heading" class="text-base font-semibold">"MCP endpoint protection"</h2>
                    <p class="mt-1 text-sm text-slate-600">
                        "Require a token from every MCP client that calls "
                        <code class="rounded bg-slate-100 px-1">{settings.mcp_url.clone()}</code>"."
                    </p>
                    <p class="mt-2 text-sm" data-testid="protection-status">
                        {if on {
                            "On: clients must send an API token."
                        } else {
                            "Off: any client that can reach this Gatehouse can use its MCP endpoint."
                        }}
                    </p>
                    {(settings.app_auth_type == AuthType::None).then(|| view! {
                        <p class="mt-2 text-sm text-amber-800">
                            "This Gatehouse has no sign-in (AUTH_TYPE=none): anyone who can open this page can manage its tokens."
                        </p>
                    })}
                </div>
                {settings.can_manage.then(|| view! {
                <button
                    type="button"
                    role="switch"
                    aria-checked=on.to_string()
                    aria-label="Require authentication"
                    data-testid="protection-toggle"
                    on:click=move |_| open.set(Open::Protection(!on))
                    class=if on {
                        "relative inline-flex h-6 w-11 shrink-0 rounded-full bg-indigo-600 transition"
                    } else {
                        "relative inline-flex h-6 w-11 shrink-0 rounded-full bg-slate-300 transition"
                    }
                >
                    <span
                        aria-hidden="true"
                        class=if on {
                            "m-0.5 inline-block h-5 w-5 translate-x-5 rounded-full bg-white shadow transition"
                        } else {
                            "m-0.5 inline-block h-5 w-5 rounded-full bg-white shadow transition"
                        }
                    ></span>
                </button>
                })}
            </div>
        </section>
    }
}

fn protection_dialog(on: bool, open: RwSignal<Open>, refresh: RwSignal<u32>) -> impl IntoView {
    let (title, body, confirm) = if on {
        (
            "Require authentication on /mcp?",
            "MCP clients that do not send a valid API token will stop working at once. Create tokens and put them in your clients' configuration first.",
            "Require authentication",
        )
    } else {
        (
            "Stop requiring authentication?",
            "Anyone who can reach this Gatehouse will be able to use its MCP endpoint and every tool behind it, without a token.",
            "Turn protection off",
        )
    };
    view! {
        <ConfirmDialog
            title=title.to_string()
            id="protection-dialog"
            body=body.to_string()
            confirm
            danger=!on
            action=move || async move { set_mcp_protection(on).await.map(|_| ()) }
            done=Callback::new(move |_| {
                open.set(Open::None);
                refresh.update(|n| *n += 1);
            })
            cancel=Callback::new(move |_| open.set(Open::None))
        />
    }
}

#[component]
fn TokensSection(settings: McpSettingsView, open: RwSignal<Open>) -> impl IntoView {
    let now = settings.now;
    let tokens = settings.tokens;
    let empty = tokens.is_empty();
    view! {
        <section aria-labelledby="tokens-heading" class="rounded-lg border border-slate-200 bg-white shadow-sm">
            <div class="flex items-center justify-between gap-4 border-b border-slate-200 px-5 py-4">
                <div>
                    <h2 id="tokens-heading" class="text-base font-semibold">"API tokens"</h2>
                    <p class="mt-1 text-sm text-slate-600">"One token per client, so each can be revoked on its own."</p>
                </div>
                <button type="button" class=BUTTON data-testid="create-token" on:click=move |_| open.set(Open::Create)>
                    "Create token"
                </button>
            </div>
            {if empty {
                view! { <p class="px-5 py-6 text-sm text-slate-500" data-testid="no-tokens">"No API tokens yet."</p> }.into_any()
            } else {
                view! {
                    <table class="w-full text-left text-sm">
                        <thead class="bg-slate-50 text-xs uppercase text-slate-500">
                            <tr>
                                <th scope="col" class="px-5 py-2 font-medium">"Name"</th>
                                <th scope="col" class="px-3 py-2 font-medium">"Scopes"</th>
                                <th scope="col" class="px-3 py-2 font-medium">"Created"</th>
                                <th scope="col" class="px-3 py-2 font-medium">"Last used"</th>
                                <th scope="col" class="px-3 py-2 font-medium">"Expires"</th>
                                <th scope="col" class="px-5 py-2"><span class="sr-only">"Actions"</span></th>
                            </tr>
                        </thead>
                        <tbody class="divide-y divide-slate-100">
                            {tokens.into_iter().map(|t| view! { <TokenRow token=t now open /> }).collect_view()}
                        </tbody>
                    </table>
                }
                .into_any()
            }}
        </section>
    }
}

#[component]
fn TokenRow(token: ApiTokenView, now: i64, open: RwSignal<Open>) -> impl IntoView {
    let name = token.name.clone();
    let expires = match (token.expires_at, token.expired) {
        (_, true) => "Expired".to_string(),
        (Some(at), false) => format_utc(at),
        (None, _) => "Never".to_string(),
    };
    let last_used = token
        .last_used_at
        .map(|t| ago(t, now))
        .unwrap_or_else(|| "Never".into());
    let for_delete = token.clone();
    view! {
        <tr data-testid="token-row">
            <td class="px-5 py-3">
                <div class="font-medium text-slate-900" data-testid="token-name">{name.clone()}</div>
                <div class="font-mono text-xs text-slate-500">{token.hint.clone()}</div>
            </td>
            <td class="px-3 py-3">
                {token.scopes.iter().map(|s| view! {
                    <span class="mr-1 inline-block rounded bg-slate-100 px-1.5 py-0.5 font-mono text-xs text-slate-700">{s.as_str()}</span>
                }).collect_view()}
            </td>
            <td class="px-3 py-3 text-slate-600">
                <div>{format_utc(token.created_at)}</div>
                <div class="text-xs text-slate-500">"by " {token.created_by.clone()}</div>
            </td>
            <td class="px-3 py-3 text-slate-600" data-testid="token-last-used">{last_used}</td>
            <td class="px-3 py-3 text-slate-600">{expires}</td>
            <td class="px-5 py-3 text-right">
                <button
                    type="button"
                    aria-label=format!("Delete token {name}")
                    class="text-sm font-medium text-red-700 hover:text-red-900"
                    on:click=move |_| open.set(Open::Delete(for_delete.clone()))
                >
                    "Delete"
                </button>
            </td>
        </tr>
    }
}

#[component]
fn CreateTokenDialog(open: RwSignal<Open>, refresh: RwSignal<u32>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let mcp = RwSignal::new(true);
    let connections = RwSignal::new(false);
    let days = RwSignal::new(String::from("90"));
    let error = RwSignal::new(None::<ApiError>);
    let busy = RwSignal::new(false);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let scopes: Vec<TokenScope> = [
            (mcp.get(), TokenScope::Mcp),
            (connections.get(), TokenScope::ConnectionsToken),
        ]
        .into_iter()
        .filter_map(|(on, s)| on.then_some(s))
        .collect();
        let expires_in_days = days.get().parse::<u32>().ok();
        busy.set(true);
        error.set(None);
        let name = name.get();
        spawn_local(async move {
            match create_api_token(name, scopes, expires_in_days).await {
                Ok(created) => {
                    open.set(Open::Created(created));
                    refresh.update(|n| *n += 1);
                }
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };

    view! {
        <Dialog title="Create an API token".to_string() id="create-token-dialog">
            <form on:submit=submit class="space-y-4">
                <div>
                    <label for="token-name" class="mb-1 block text-sm font-medium text-slate-700">"Name"</label>
                    <input
                        id="token-name"
                        type="text"
                        required
                        maxlength="100"
                        placeholder="e.g. Claude Desktop"
                        class=INPUT
                        prop:value=move || name.get()
                        on:input=move |ev| name.set(event_target_value(&ev))
                    />
                </div>
                <fieldset>
                    <legend class="mb-1 block text-sm font-medium text-slate-700">"Scopes"</legend>
                    <label class="flex items-start gap-2 text-sm">
                        <input type="checkbox" class="mt-1" prop:checked=move || mcp.get() on:change=move |ev| mcp.set(event_target_checked(&ev)) />
                        <span><code>"mcp"</code>" — " {TokenScope::Mcp.description()}</span>
                    </label>
                    // A member's token reaches their own accounts of per-person connections only.
                    <label class="mt-1 flex items-start gap-2 text-sm">
                        <input type="checkbox" class="mt-1" prop:checked=move || connections.get() on:change=move |ev| connections.set(event_target_checked(&ev)) />
                        <span>
                            <code>"connections:token"</code>" — " {TokenScope::ConnectionsToken.description()}
                            " A member's token reaches only their own accounts of per-person connections."
                        </span>
                    </label>
                </fieldset>
                <div>
                    <label for="token-expiry" class="mb-1 block text-sm font-medium text-slate-700">"Expires"</label>
                    <select id="token-expiry" class=INPUT on:change=move |ev| days.set(event_target_value(&ev)) prop:value=move || days.get()>
                        <option value="7">"In 7 days"</option>
                        <option value="30">"In 30 days"</option>
                        <option value="90">"In 90 days"</option>
                        <option value="365">"In a year"</option>
                        <option value="never">"Never"</option>
                    </select>
                </div>
                {move || error.get().map(|e| view! { <ErrorNotice error=e /> })}
                <div class="flex justify-end gap-3 pt-2">
                    <button type="button" class=BUTTON_PLAIN on:click=move |_| open.set(Open::None)>"Cancel"</button>
                    <button type="submit" class=BUTTON disabled=move || busy.get()>"Create token"</button>
                </div>
            </form>
        </Dialog>
    }
}

fn header_snippet(url: &str, token: &str) -> String {
    serde_json::to_string_pretty(&json!({
        "mcpServers": {"gatehouse": {"url": url, "headers": {"Authorization": format!("Bearer {token}")}}}
    }))
    .unwrap_or_default()
}

fn query_snippet(url: &str, token: &str) -> String {
    serde_json::to_string_pretty(&json!({
        "mcpServers": {"gatehouse": {"command": "npx", "args": ["mcp-remote", format!("{url}?token={token}")]}}
    }))
    .unwrap_or_default()
}

#[component]
fn TokenCreatedDialog(created: CreatedTokenView, open: RwSignal<Open>) -> impl IntoView {
    let value = created.value.clone();
    let url = created.mcp_url.clone();
    let header = header_snippet(&url, &value);
    let query = query_snippet(&url, &value);
    view! {
        <Dialog title=format!("Token “{}” created", created.token.name) id="token-created-dialog">
            <p class="mb-3 rounded-md border border-amber-200 bg-amber-50 p-3 text-sm text-amber-900">
                "Copy the token now. Gatehouse keeps only a fingerprint of it and cannot show it again."
            </p>
            <div class="mb-5 flex gap-2">
                <input
                    type="text"
                    readonly
                    aria-label="API token"
                    data-testid="token-value"
                    class="block w-full rounded-md border border-slate-300 bg-slate-50 px-3 py-2 font-mono text-sm"
                    prop:value=value.clone()
                />
                <CopyButton text=value testid="copy-token" />
            </div>
            <h3 class="mb-1 text-sm font-semibold">"Clients that can send headers"</h3>
            <div class="mb-4 flex items-start gap-2">
                <pre class="w-full overflow-x-auto rounded-md bg-slate-900 p-3 text-xs text-slate-100" data-testid="snippet-header">{header.clone()}</pre>
                <CopyButton text=header />
            </div>
            <h3 class="mb-1 text-sm font-semibold">"Clients that take only a URL (mcp-remote)"</h3>
            <div class="mb-4 flex items-start gap-2">
                <pre class="w-full overflow-x-auto rounded-md bg-slate-900 p-3 text-xs text-slate-100" data-testid="snippet-query">{query.clone()}</pre>
                <CopyButton text=query />
            </div>
            <div class="flex justify-end">
                <button type="button" class=BUTTON on:click=move |_| open.set(Open::None)>"Done"</button>
            </div>
        </Dialog>
    }
}

fn delete_dialog(
    token: ApiTokenView,
    open: RwSignal<Open>,
    refresh: RwSignal<u32>,
) -> impl IntoView {
    let id = token.id.clone();
    view! {
        <ConfirmDialog
            title=format!("Delete token “{}”?", token.name)
            id="delete-token-dialog"
            body="Clients using this token stop working at once, and their open MCP sessions end. This cannot be undone.".to_string()
            confirm="Delete token"
            action=move || delete_api_token(id.clone())
            done=Callback::new(move |_| {
                open.set(Open::None);
                refresh.update(|n| *n += 1);
            })
            cancel=Callback::new(move |_| open.set(Open::None))
        />
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_carry_url_and_token() {
        let h = header_snippet("https://gh.example.com/mcp", "gatehouse_at_x");
        assert!(h.contains("\"url\": \"https://gh.example.com/mcp\""));
        assert!(h.contains("Bearer gatehouse_at_x"));
        let q = query_snippet("https://gh.example.com/mcp", "gatehouse_at_x");
        assert!(q.contains("https://gh.example.com/mcp?token=gatehouse_at_x"));
        assert!(q.contains("mcp-remote"));
    }
}
