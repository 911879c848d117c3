use leptos::prelude::*;

use crate::api::ApiError;
use crate::util::login_url;

/// Shows a failed server call. A lost session sends the browser back to the login page, which
/// returns here afterwards.
#[component]
pub fn ErrorNotice(error: ApiError) -> impl IntoView {
    if error.is_unauthorized() {
        return view! { <SessionEnded /> }.into_any();
    }
    let reference = match &error {
        ApiError::Internal { reference, .. } => Some(reference.clone()),
        _ => None,
    };
    view! {
        <div role="alert" class="rounded-md border border-red-200 bg-red-50 p-4 text-sm text-red-800">
            <p>{error.message().to_string()}</p>
            {reference.map(|r| view! { <p class="mt-1 font-mono text-xs text-red-700">"Reference: " {r}</p> })}
        </div>
    }
    .into_any()
}

#[component]
fn SessionEnded() -> impl IntoView {
    // Effects only run in the browser.
    Effect::new(move |_| {
        let location = window().location();
        let here = format!(
            "{}{}",
            location.pathname().unwrap_or_default(),
            location.search().unwrap_or_default()
        );
        let _ = location.set_href(&login_url(Some(&here), Some("session_expired")));
    });
    view! {
        <div role="alert" class="rounded-md border border-amber-200 bg-amber-50 p-4 text-sm text-amber-900">
            "Your session has ended. "
            <a href="/login" rel="external" class="font-medium underline">"Sign in again"</a>
        </div>
    }
}
