//! Settings › Sessions: one row per live authorization of an MCP client (a refresh-token
//! family), with a way to end it.

use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::oauth::{OAuthSessionView, list_oauth_sessions, revoke_oauth_session};
use crate::ui::components::confirm_dialog::ConfirmDialog;
use crate::ui::components::error_notice::ErrorNotice;
use crate::ui::components::settings_tabs::SettingsTabs;
use crate::util::{ago, format_utc};

#[component]
pub fn SettingsSessionsPage() -> impl IntoView {
    let refresh = RwSignal::new(0u32);
    let sessions = Resource::new(move || refresh.get(), |_| list_oauth_sessions());
    let revoking = RwSignal::new(None::<OAuthSessionView>);
    view! {
        <Title text="Settings › Sessions" />
        <div inert=move || revoking.get().is_some()>
            <SettingsTabs />
            <p class="mb-4 text-sm text-slate-600">
                "MCP clients signed in through OAuth. Revoking a session ends it at once: its refresh token stops working and so do the access tokens issued from it; the user signs in again the next time the client connects. The client's registration is kept."
            </p>
            <Transition fallback=|| view! { <p class="text-sm text-slate-500">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match sessions.await {
                        Err(e) => view! { <ErrorNotice error=e /> }.into_any(),
                        Ok(overview) if !overview.enabled => view! { <OAuthOff /> }.into_any(),
                        Ok(overview) if overview.items.is_empty() => view! {
                            <p class="rounded-lg border border-slate-200 bg-white px-5 py-6 text-sm text-slate-500" data-testid="no-sessions">
                                "No MCP client is signed in."
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
                                                <th scope="col" class="px-3 py-2 font-medium">"User"</th>
                                                <th scope="col" class="px-3 py-2 font-medium">"Started"</th>
                                                <th scope="col" class="px-3 py-2 font-medium">"Last used"</th>
                                                <th scope="col" class="px-3 py-2 font-medium">"Expires"</th>
                                                <th scope="col" class="px-5 py-2"><span class="sr-only">"Actions"</span></th>
                                            </tr>
                                        </thead>
                                        <tbody class="divide-y divide-slate-100">
                                            {overview.items.into_iter().map(|s| {
                                                let for_revoke = s.clone();
                                                view! {
                                                    <tr data-testid="session-row">
                                                        <td class="px-5 py-3 font-medium text-slate-900">{s.client_name.clone()}</td>
                                                        <td class="px-3 py-3 text-slate-700">{s.user.clone()}</td>
                                                        <td class="px-3 py-3 text-slate-600">{format_utc(s.started_at)}</td>
                                                        <td class="px-3 py-3 text-slate-600">{s.last_used_at.map(|t| ago(t, now)).unwrap_or_else(|| "Never".into())}</td>
                                                        <td class="px-3 py-3 text-slate-600">{format_utc(s.expires_at)}</td>
                                                        <td class="px-5 py-3 text-right">
                                                            <button
                                                                type="button"
                                                                aria-label=format!("Revoke the session of {} for {}", s.client_name, s.user)
                                                                class="text-sm font-medium text-red-700 hover:text-red-900"
                                                                on:click=move |_| revoking.set(Some(for_revoke.clone()))
                                                            >
                                                                "Revoke"
                                                            </button>
                                                        </td>
                                                    </tr>
                                                }
                                            }).collect_view()}
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
        {move || revoking.get().map(|s| {
            let id = s.id.clone();
            view! {
                <ConfirmDialog
                    title=format!("Revoke the session of {}?", s.client_name)
                    id="revoke-session-dialog"
                    body=format!("{} stops working for {} within seconds and must sign in again.", s.client_name, s.user)
                    confirm="Revoke session"
                    action=move || revoke_oauth_session(id.clone())
                    done=Callback::new(move |_| {
                        revoking.set(None);
                        refresh.update(|n| *n += 1);
                    })
                    cancel=Callback::new(move |_| revoking.set(None))
                />
            }
        })}
    }
}

/// Shown when `MCP_OAUTH_ENABLED` is off.
#[component]
pub fn OAuthOff() -> impl IntoView {
    view! {
        <p class="rounded-lg border border-slate-200 bg-white px-5 py-6 text-sm text-slate-600" data-testid="oauth-off">
            "The authorization server for MCP clients is off. Start Gatehouse with "
            <code class="rounded bg-slate-100 px-1">"MCP_OAUTH_ENABLED=true"</code>
            " to let MCP clients sign in through OAuth."
        </p>
    }
}
