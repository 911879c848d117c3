//! Settings › Audit: the audit trail, newest first, filtered by a plain GET form (so it reads
//! without JavaScript) and paged by the "Older events" link.

use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::audit::{AuditEventView, AuditFilter, list_audit_events};
use crate::ui::components::error_notice::ErrorNotice;
use crate::ui::components::settings_tabs::SettingsTabs;
use crate::util::{encode_query_value, format_utc_seconds};

const FIELDS: [&str; 4] = ["action", "actor", "target", "outcome"];

#[component]
pub fn SettingsAuditPage() -> impl IntoView {
    let query = use_query_map();
    let filter = move || {
        let q = query.get();
        let get = |k: &str| q.get(k).filter(|v| !v.is_empty());
        AuditFilter {
            action: get("action"),
            actor: get("actor"),
            target: get("target"),
            outcome: get("outcome"),
            cursor: get("cursor"),
            ..AuditFilter::default()
        }
    };
    let events = Resource::new(filter, list_audit_events);
    let value = move |k: &'static str| query.with(|q| q.get(k).unwrap_or_default());
    view! {
        <Title text="Settings › Audit" />
        <SettingsTabs />
        <p class="mb-4 text-sm text-slate-600">
            "Who did what, and when: sign-ins, tokens, clients, consents, connections, secrets, MCP servers and settings. Newest first; kept for the days "
            <code class="rounded bg-slate-100 px-1">"AUDIT_RETENTION_DAYS"</code>
            " says. Narrow it with the fields below (an action ending in "
            <code class="rounded bg-slate-100 px-1">"*"</code>
            " is a kind, as in "
            <code class="rounded bg-slate-100 px-1">"connection.*"</code>
            ")."
        </p>
        <form method="get" action="/settings/audit" class="mb-4 flex flex-wrap items-end gap-3 text-sm" aria-label="Filter the audit trail">
            <label class="flex flex-col gap-1">
                <span class="text-xs font-medium text-slate-600">"Action"</span>
                <input name="action" prop:value=move || value("action") placeholder="connection.*" class="rounded border border-slate-300 px-2 py-1" />
            </label>
            <label class="flex flex-col gap-1">
                <span class="text-xs font-medium text-slate-600">"Who"</span>
                <input name="actor" prop:value=move || value("actor") placeholder="alice@example.com" class="rounded border border-slate-300 px-2 py-1" />
            </label>
            <label class="flex flex-col gap-1">
                <span class="text-xs font-medium text-slate-600">"Target"</span>
                <input name="target" prop:value=move || value("target") placeholder="an id or a name" class="rounded border border-slate-300 px-2 py-1" />
            </label>
            <label class="flex flex-col gap-1">
                <span class="text-xs font-medium text-slate-600">"Outcome"</span>
                <select name="outcome" class="rounded border border-slate-300 px-2 py-1">
                    {["", "ok", "refused", "failed"].into_iter().map(|o| view! {
                        <option value=o selected=move || value("outcome") == o>{if o.is_empty() { "any" } else { o }}</option>
                    }).collect_view()}
                </select>
            </label>
            <button type="submit" class="rounded bg-indigo-600 px-3 py-1.5 font-medium text-white hover:bg-indigo-700">"Show"</button>
            <a href="/settings/audit" class="px-1 py-1.5 text-slate-600 hover:text-slate-900">"Clear"</a>
        </form>
        <Transition fallback=|| view! { <p class="text-sm text-slate-500">"Loading…"</p> }>
            {move || Suspend::new(async move {
                match events.await {
                    Err(e) => view! { <ErrorNotice error=e /> }.into_any(),
                    Ok(page) if page.events.is_empty() => view! {
                        <p class="rounded-lg border border-slate-200 bg-white px-5 py-6 text-sm text-slate-500" data-testid="no-events">
                            "No event matches."
                        </p>
                    }
                    .into_any(),
                    Ok(page) => {
                        let older = page.next_cursor.map(|cursor| {
                            let mut qs: Vec<String> = FIELDS
                                .iter()
                                .filter_map(|k| query.with_untracked(|q| q.get(k)).filter(|v| !v.is_empty()).map(|v| format!("{k}={}", encode_query_value(&v))))
                                .collect();
                            qs.push(format!("cursor={}", encode_query_value(&cursor)));
                            format!("/settings/audit?{}", qs.join("&"))
                        });
                        view! {
                            <EventTable events=page.events />
                            {older.map(|href| view! {
                                <p class="mt-3 text-sm"><a href=href class="font-medium text-indigo-700 hover:text-indigo-900">"Older events →"</a></p>
                            })}
                        }
                        .into_any()
                    }
                }
            })}
        </Transition>
    }
}

#[component]
fn EventTable(events: Vec<AuditEventView>) -> impl IntoView {
    view! {
        <div class="overflow-x-auto rounded-lg border border-slate-200 bg-white shadow-sm">
            <table class="w-full text-left text-sm">
                <thead class="bg-slate-50 text-xs uppercase text-slate-500">
                    <tr>
                        <th scope="col" class="px-4 py-2 font-medium">"When (UTC)"</th>
                        <th scope="col" class="px-3 py-2 font-medium">"Action"</th>
                        <th scope="col" class="px-3 py-2 font-medium">"Outcome"</th>
                        <th scope="col" class="px-3 py-2 font-medium">"Who"</th>
                        <th scope="col" class="px-3 py-2 font-medium">"Target"</th>
                        <th scope="col" class="px-3 py-2 font-medium">"From"</th>
                        <th scope="col" class="px-4 py-2 font-medium">"Detail"</th>
                    </tr>
                </thead>
                <tbody class="divide-y divide-slate-100">
                    {events.into_iter().map(|e| {
                        let who = match &e.actor {
                            Some(a) => format!("{a} ({})", e.actor_kind),
                            None => e.actor_kind.clone(),
                        };
                        let target = match (&e.target_kind, &e.target) {
                            (Some(k), Some(t)) => format!("{k} {t}"),
                            _ => String::new(),
                        };
                        let detail = e.detail.as_ref().map(|d| d.to_string()).unwrap_or_default();
                        let outcome_class = match e.outcome.as_str() {
                            "ok" => "text-emerald-700",
                            "refused" => "text-amber-700",
                            _ => "text-red-700",
                        };
                        view! {
                            <tr data-testid="audit-row">
                                <td class="whitespace-nowrap px-4 py-2 text-slate-600">{format_utc_seconds(e.at)}</td>
                                <td class="px-3 py-2 font-mono text-xs text-slate-900">{e.action.clone()}</td>
                                <td class=format!("px-3 py-2 font-medium {outcome_class}")>{e.outcome.clone()}</td>
                                <td class="px-3 py-2 text-slate-700">{who}</td>
                                <td class="px-3 py-2 text-slate-700">{target}</td>
                                <td class="px-3 py-2 text-slate-600">{e.address.clone().unwrap_or_default()}</td>
                                <td class="max-w-md truncate px-4 py-2 font-mono text-xs text-slate-600" title=detail.clone()>
                                    {detail.clone()}
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
