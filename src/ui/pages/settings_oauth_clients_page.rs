//! Settings › OAuth Clients: the MCP clients that registered with the authorization server.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::oauth::{
    OAuthClientView, delete_oauth_client, list_oauth_clients, revoke_oauth_consent,
};
use crate::ui::components::confirm_dialog::ConfirmDialog;
use crate::ui::components::error_notice::ErrorNotice;
use crate::ui::components::settings_tabs::SettingsTabs;
use crate::ui::pages::settings_sessions_page::OAuthOff;
use crate::util::{ago, format_utc};

#[derive(Debug, Clone, PartialEq)]
enum Ask {
    RevokeConsent(OAuthClientView),
    Delete(OAuthClientView),
}

#[component]
pub fn SettingsOAuthClientsPage() -> impl IntoView {
    let refresh = RwSignal::new(0u32);
    let clients = Resource::new(move || refresh.get(), |_| list_oauth_clients());
    let ask = RwSignal::new(None::<Ask>);
    let close = Callback::new(move |_| ask.set(None));
    let done = Callback::new(move |_| {
        ask.set(None);
        refresh.update(|n| *n += 1);
    });
    view! {
        <Title text="Settings › OAuth Clients" />
        <div inert=move || ask.get().is_some()>
            <SettingsTabs />
            <p class="mb-4 text-sm text-slate-600">
                "MCP clients that registered with this Gatehouse. Revoke consent to sign everyone out of a client and ask again at its next connection; delete a client to remove its registration altogether."
            </p>
            <Transition fallback=|| view! { <p class="text-sm text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match clients.await {
                        Err(e) => view! { <ErrorNotice error=e /> }.into_any(),
                        Ok(overview) if !overview.enabled => view! { <OAuthOff /> }.into_any(),
                        Ok(overview) if overview.items.is_empty() => view! {
                            <p class="rounded-lg border border-slate-200 bg-white px-5 py-6 text-sm text-slate-500" data-testid="no-clients">
                                "No MCP client has registered yet."
                            </p>
                        }
                        .into_any(),
                        Ok(overview) => {
                            let now = overview.now;
                            view! {
                                <div class="overflow-hidden rounded-lg border border-slate-200 bg-white shadow-sm">
                                    <table class="w-full text-left text-sm">
                                        <thead class="bg-slate-50 text-xs uppercase text-slate-500">
                                            <tr>
                                                <th scope="col" class="px-5 py-2 font-medium">"Client"</th>
                                                <th scope="col" class="px-3 py-2 font-medium">"Registered"</th>
                                                <th scope="col" class="px-3 py-2 font-medium">"Last used"</th>
                                                <th scope="col" class="px-3 py-2 font-medium">"Consented"</th>
                                                <th scope="col" class="px-5 py-2"><span class="sr-only">"Actions"</span></th>
                                            </tr>
                                        </thead>
                                        <tbody class="divide-y divide-slate-100">
                                            {overview.items.into_iter().map(|c| view! { <ClientRow client=c now ask /> }).collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                            }
                            .into_any()
                        }
                    }
                })}
            </Transition>
        </div>
        {move || ask.get().map(|a| match a {
            Ask::RevokeConsent(c) => {
                let id = c.id.clone();
                view! {
                    <ConfirmDialog
                        title=format!("Revoke consent for {}?", c.name)
                        id="revoke-consent-dialog"
                        body="Every session of this client ends now; the next time it connects, the user is asked again. The registration is kept.".to_string()
                        confirm="Revoke consent"
                        action=move || revoke_oauth_consent(id.clone())
                        done
                        cancel=close
                    />
                }
                .into_any()
            }
            Ask::Delete(c) => {
                let id = c.id.clone();
                view! {
                    <ConfirmDialog
                        title=format!("Delete {}?", c.name)
                        id="delete-client-dialog"
                        body="Quit the MCP client on the user's machine first. Some clients (mcp-remote, Claude Code) keep a deleted client ID and retry it. Deleting removes the registration, its consents and its sessions; to sign someone out, revoke consent or a session instead.".to_string()
                        confirm="Delete client"
                        action=move || delete_oauth_client(id.clone())
                        done
                        cancel=close
                    />
                }
                .into_any()
            }
        })}
    }
}

#[component]
fn ClientRow(client: OAuthClientView, now: i64, ask: RwSignal<Option<Ask>>) -> impl IntoView {
    let for_consent = client.clone();
    let for_delete = client.clone();
    let name = client.name.clone();
    view! {
        <tr data-testid="client-row">
            <td class="px-5 py-3">
                <div class="font-medium text-slate-900" data-testid="client-name">{client.name.clone()}</div>
                <div class="break-all font-mono text-xs text-slate-500">{client.id.clone()}</div>
                <div class="text-xs text-slate-500">
                    {if client.kind == "cimd" { "Metadata document" } else { "Registered itself" }}
                    " · " {client.redirect_uris.join(", ")}
                </div>
            </td>
            <td class="px-3 py-3 text-slate-600">{format_utc(client.registered_at)}</td>
            <td class="px-3 py-3 text-slate-600">{client.last_used_at.map(|t| ago(t, now)).unwrap_or_else(|| "Never".into())}</td>
            <td class="px-3 py-3 text-slate-600" data-testid="client-consented">
                {if client.consents == 0 {
                    "No".to_string()
                } else {
                    format!("Yes ({} user{}, {} session{})", client.consents, if client.consents == 1 { "" } else { "s" }, client.sessions, if client.sessions == 1 { "" } else { "s" })
                }}
            </td>
            <td class="space-x-3 whitespace-nowrap px-5 py-3 text-right">
                {(client.consents > 0).then(|| view! {
                    <button
                        type="button"
                        aria-label=format!("Revoke consent for {name}")
                        class="text-sm font-medium text-slate-700 hover:text-slate-900"
                        on:click=move |_| ask.set(Some(Ask::RevokeConsent(for_consent.clone())))
                    >
                        "Revoke consent"
                    </button>
                })}
                <button
                    type="button"
                    aria-label=format!("Delete client {}", client.name)
                    class="text-sm font-medium text-red-700 hover:text-red-900"
                    on:click=move |_| ask.set(Some(Ask::Delete(for_delete.clone())))
                >
                    "Delete"
                </button>
            </td>
        </tr>
    }
}
