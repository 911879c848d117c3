use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::oauth::{ConsentView, get_consent_request};
use crate::ui::components::error_notice::ErrorNotice;
use crate::util::format_utc;

/// Asks the signed-in user whether an MCP client may act as them. A plain form posted to
/// `/mcp/oauth/consent`: it works the same with JavaScript off.
#[component]
pub fn ConsentPage() -> impl IntoView {
    let query = use_query_map();
    let consent = Resource::new(
        move || query.read().get("request").unwrap_or_default(),
        get_consent_request,
    );
    view! {
        <Title text="Authorize an MCP client" />
        <main class="flex min-h-full items-center justify-center px-4 py-12">
            <div class="w-full max-w-md">
                <div class="mb-8 flex items-center justify-center gap-2">
                    <span class="inline-block h-8 w-8 rounded bg-indigo-600" aria-hidden="true"></span>
                    <span class="text-2xl font-semibold">"Gatehouse"</span>
                </div>
                <div class="rounded-lg border border-slate-200 bg-white p-6 shadow-sm">
                    <Suspense fallback=|| view! { <p class="text-sm text-slate-500">"Loading…"</p> }>
                        {move || Suspend::new(async move {
                            match consent.await {
                                Ok(view) => view! { <ConsentForm view /> }.into_any(),
                                Err(e) => view! {
                                    <h1 class="mb-4 text-lg font-semibold">"Authorization request not found"</h1>
                                    <ErrorNotice error=e />
                                }
                                .into_any(),
                            }
                        })}
                    </Suspense>
                </div>
            </div>
        </main>
    }
}

#[component]
fn ConsentForm(view: ConsentView) -> impl IntoView {
    let name = view.client_name.clone();
    view! {
        <h1 class="mb-1 text-lg font-semibold" data-testid="consent-title">
            "Allow " <span class="text-indigo-700">{name.clone()}</span> " to use Gatehouse?"
        </h1>
        <p class="mb-4 text-sm text-slate-600">
            "Signed in as " <span class="font-medium" data-testid="consent-user">{view.user.clone()}</span>
        </p>
        <p class="mb-2 text-sm text-slate-700">{name.clone()} " will be able to:"</p>
        <ul class="mb-4 list-disc space-y-1 pl-5 text-sm text-slate-700">
            {view.scopes.iter().map(|(scope, description)| view! {
                <li><code class="rounded bg-slate-100 px-1">{scope.clone()}</code>" — " {description.clone()}</li>
            }).collect_view()}
        </ul>
        <dl class="mb-4 space-y-1 text-sm">
            <div class="flex gap-2">
                <dt class="text-slate-500">"Returns to"</dt>
                <dd class="font-mono text-slate-800" data-testid="consent-redirect">{view.redirect_to.clone()}</dd>
            </div>
            <div class="flex gap-2">
                <dt class="text-slate-500">"Client"</dt>
                <dd class="break-all font-mono text-xs text-slate-800">{view.client_id.clone()}</dd>
            </div>
            <div class="flex gap-2">
                <dt class="text-slate-500">"Registered"</dt>
                <dd class="text-slate-800">{format_utc(view.registered_at)}</dd>
            </div>
        </dl>
        {view.loopback_only.then(|| view! {
            <p class="mb-3 rounded-md border border-amber-200 bg-amber-50 p-3 text-sm text-amber-900" data-testid="warn-loopback">
                "This client receives the result on this computer (" {view.redirect_to.clone()}
                "). Allow it only if you started this connection from an MCP client yourself, just now."
            </p>
        })}
        {view.newly_registered.then(|| view! {
            <p class="mb-3 rounded-md border border-amber-200 bg-amber-50 p-3 text-sm text-amber-900" data-testid="warn-new">
                "This client registered itself within the last day. If you did not just add Gatehouse to an MCP client, choose Cancel."
            </p>
        })}
        {view.metadata_document.then(|| view! {
            <p class="mb-3 text-sm text-slate-600">
                "This client describes itself in a metadata document published at its client ID."
            </p>
        })}
        <form method="post" action="/mcp/oauth/consent" class="mt-6 flex justify-end gap-3">
            <input type="hidden" name="request" value=view.request.clone() />
            <input type="hidden" name="csrf" value=view.csrf.clone() />
            <button
                type="submit"
                name="decision"
                value="deny"
                class="rounded-md border border-slate-300 bg-white px-4 py-2 text-sm font-medium text-slate-700 hover:bg-slate-100"
            >
                "Cancel"
            </button>
            <button
                type="submit"
                name="decision"
                value="allow"
                class="rounded-md bg-indigo-600 px-4 py-2 text-sm font-semibold text-white shadow-sm hover:bg-indigo-500"
            >
                "Allow"
            </button>
        </form>
    }
}
