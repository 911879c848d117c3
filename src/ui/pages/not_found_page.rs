use leptos::prelude::*;
use leptos_meta::Title;

use crate::ui::components::hydrated::mark_hydrated;

#[component]
pub fn NotFoundPage() -> impl IntoView {
    #[cfg(feature = "ssr")]
    if let Some(response) = use_context::<leptos_axum::ResponseOptions>() {
        response.set_status(http::StatusCode::NOT_FOUND);
    }
    mark_hydrated();
    view! {
        <Title text="Not found" />
        <main class="mx-auto max-w-xl px-4 py-16 text-center">
            <h1 class="mb-2 text-2xl font-semibold">"Page not found"</h1>
            <p class="mb-6 text-slate-600">"There is nothing at this address."</p>
            <a href="/" class="font-medium text-indigo-700 underline">"Go to the dashboard"</a>
        </main>
    }
}
