use leptos::prelude::*;
use leptos_router::components::A;

use crate::ui::components::app_shell::AdminOnly;

/// The heading and tabs of every Settings page.
#[component]
pub fn SettingsTabs() -> impl IntoView {
    let tab = "-mb-px border-b-2 border-transparent px-1 pb-2 text-slate-600 hover:text-slate-900 aria-[current=page]:border-indigo-600 aria-[current=page]:font-medium aria-[current=page]:text-indigo-700";
    view! {
        <h1 class="mb-2 text-2xl font-semibold">"Settings"</h1>
        <nav aria-label="Settings" class="mb-6 flex gap-5 border-b border-slate-200 text-sm">
            <A href="/settings/authentication" attr:class=tab>"Authentication"</A>
            <A href="/settings/sessions" attr:class=tab>"Sessions"</A>
            <AdminOnly>
                <A href="/settings/oauth-clients" attr:class=tab>"OAuth Clients"</A>
                <A href="/settings/audit" attr:class=tab>"Audit"</A>
            </AdminOnly>
        </nav>
    }
}
