use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::session::{AuthType, LoginOptionsView, get_login_options};
use crate::ui::components::error_notice::ErrorNotice;
use crate::util::{encode_query_value, safe_return_path};

/// The message for an `?error=` code. Codes come from a fixed set; anything else gets the
/// generic message, so nothing from the URL is ever echoed.
fn error_message(code: &str) -> &'static str {
    match code {
        "invalid_credentials" => "Invalid username or password.",
        "rate_limited" => "Too many attempts from your address. Wait a little and try again.",
        "session_expired" => "Your session has expired. Sign in again.",
        "state_invalid" => "This sign-in link is not valid or has already been used. Start again.",
        "state_expired" => "The sign-in took longer than 10 minutes. Start again.",
        "state_mismatch" => {
            "This sign-in was started in another browser, or its cookie was lost. Start again from this browser."
        }
        "idp_denied" => "The identity provider did not let you sign in.",
        "idp_error" => {
            "The identity provider answered with an error. Try again; if it keeps happening, the operator can find the cause in Gatehouse's log."
        }
        "idp_unavailable" => {
            "Gatehouse cannot reach the identity provider right now. Try again shortly; the operator can find the cause in Gatehouse's log."
        }
        "token_exchange_failed" => {
            "Gatehouse could not complete the sign-in with the identity provider. The operator can find the cause in Gatehouse's log."
        }
        "userinfo_failed" => {
            "Gatehouse could not read your account from the identity provider. The operator can find the cause in Gatehouse's log."
        }
        "email_missing" => {
            "The identity provider did not share your email address, which Gatehouse needs to know who you are."
        }
        "email_unverified" => "Your email address is not verified at the identity provider.",
        "email_invalid" => {
            "The identity provider gave Gatehouse an email address that is not a plain address (one name, one @, one domain), so Gatehouse cannot tell who you are. Ask the operator to check your account at the identity provider."
        }
        "email_not_allowed" => {
            "The account you signed in with is not allowed to use this Gatehouse: its email address is neither in the list of allowed users nor in an allowed domain. Sign in with another account, or ask the operator to allow yours."
        }
        _ => "Sign-in failed. Try again.",
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let query = use_query_map();
    let error = move || query.read().get("error");
    let signed_out = move || query.read().get("signed_out").is_some();
    let next = move || {
        query
            .read()
            .get("next")
            .and_then(|n| safe_return_path(&n))
            .unwrap_or_else(|| "/".to_string())
    };
    let options = Resource::new(|| (), |_| get_login_options());

    view! {
        <Title text="Sign in" />
        <main class="flex min-h-full items-center justify-center px-4 py-12">
            <div class="w-full max-w-sm">
                <div class="mb-8 flex items-center justify-center gap-2">
                    <span class="inline-block h-8 w-8 rounded bg-indigo-600" aria-hidden="true"></span>
                    <span class="text-2xl font-semibold">"Gatehouse"</span>
                </div>
                <div class="rounded-lg border border-slate-200 bg-white p-6 shadow-sm">
                    {move || {
                        let denied = error().as_deref() == Some("email_not_allowed");
                        view! {
                            <h1 class="mb-4 text-lg font-semibold">
                                {if denied { "Access denied" } else { "Sign in" }}
                            </h1>
                        }
                    }}
                    {move || error().map(|code| view! {
                        <div role="alert" data-testid="login-error" class="mb-4 rounded-md border border-red-200 bg-red-50 p-3 text-sm text-red-800">
                            {error_message(&code)}
                        </div>
                    })}
                    {move || signed_out().then(|| view! {
                        <div role="status" class="mb-4 rounded-md border border-slate-200 bg-slate-50 p-3 text-sm text-slate-700">
                            "You have signed out."
                        </div>
                    })}
                    <Suspense fallback=|| view! { <p class="text-sm text-slate-500">"Loading…"</p> }>
                        {move || Suspend::new(async move {
                            match options.await {
                                Ok(opts) => view! { <LoginMethod options=opts next=next() /> }.into_any(),
                                Err(e) => view! { <ErrorNotice error=e /> }.into_any(),
                            }
                        })}
                    </Suspense>
                </div>
            </div>
        </main>
    }
}

#[component]
fn LoginMethod(options: LoginOptionsView, next: String) -> impl IntoView {
    match options.auth_type {
        AuthType::None => view! {
            <p class="mb-4 text-sm text-slate-600">
                "This Gatehouse has no sign-in (AUTH_TYPE=none): anyone who can reach it can use it."
            </p>
            <a href=next class=BUTTON>"Continue to dashboard"</a>
        }
        .into_any(),
        AuthType::Basic => view! { <BasicLoginForm next /> }.into_any(),
        AuthType::Oauth2 => {
            let label = match options.provider_host {
                Some(host) => format!("Sign in with {host}"),
                None => "Sign in".to_string(),
            };
            // rel="external": a full navigation to the server route, not a client-side one.
            view! {
                <p class="mb-4 text-sm text-slate-600">"You sign in to this Gatehouse through your organisation's identity provider."</p>
                <a href=format!("/auth/oauth2/start?next={}", encode_query_value(&next)) rel="external" class=BUTTON>
                    {label}
                </a>
            }
            .into_any()
        }
    }
}

const BUTTON: &str = "flex w-full justify-center rounded-md bg-indigo-600 px-3 py-2 text-sm font-semibold text-white shadow-sm hover:bg-indigo-500 focus-visible:outline focus-visible:outline-2 focus-visible:outline-offset-2 focus-visible:outline-indigo-600";
const INPUT: &str = "block w-full rounded-md border border-slate-300 px-3 py-2 text-sm shadow-sm focus:border-indigo-500 focus:outline-none focus:ring-1 focus:ring-indigo-500";

/// A plain HTML form posted to `/auth/login`: it works the same with JavaScript off. The
/// show/hide toggle is the one part that needs the page to be hydrated.
#[component]
fn BasicLoginForm(next: String) -> impl IntoView {
    let (visible, set_visible) = signal(false);
    view! {
        <form method="post" action="/auth/login" class="space-y-4">
            <input type="hidden" name="next" value=next />
            <div>
                <label for="username" class="mb-1 block text-sm font-medium text-slate-700">"Username"</label>
                <input id="username" name="username" type="text" autocomplete="username" required autofocus class=INPUT />
            </div>
            <div>
                <label for="password" class="mb-1 block text-sm font-medium text-slate-700">"Password"</label>
                <div class="relative">
                    <input
                        id="password"
                        name="password"
                        type=move || if visible.get() { "text" } else { "password" }
                        autocomplete="current-password"
                        required
                        class=INPUT
                    />
                    <button
                        type="button"
                        data-testid="toggle-password"
                        aria-controls="password"
                        aria-pressed=move || visible.get().to_string()
                        on:click=move |_| set_visible.update(|v| *v = !*v)
                        class="absolute inset-y-0 right-0 px-3 text-xs font-medium text-slate-500 hover:text-slate-800"
                    >
                        {move || if visible.get() { "Hide" } else { "Show" }}
                    </button>
                </div>
            </div>
            <button type="submit" class=BUTTON>"Sign in"</button>
        </form>
    }
}

#[cfg(test)]
mod tests {
    use super::error_message;

    #[test]
    fn unknown_codes_get_the_generic_message() {
        assert_eq!(error_message("<script>"), "Sign-in failed. Try again.");
        assert_ne!(error_message("email_not_allowed"), error_message("x"));
    }
}
