use leptos::prelude::*;
use leptos_router::components::{A, Outlet};

use crate::api::ApiError;
use crate::api::session::{AuthType, Role, SessionView, get_session};
use crate::ui::components::error_notice::ErrorNotice;

/// The signed-in person, loaded once by the frame and shared with the pages inside it.
#[derive(Clone, Copy)]
pub struct CurrentSession(pub Resource<Result<SessionView, ApiError>>);

/// Shows `children` to admins only. The server refuses members anyway; this keeps the page
/// from offering what would be refused.
#[component]
pub fn AdminOnly(children: ChildrenFn) -> impl IntoView {
    let session = expect_context::<CurrentSession>().0;
    let children = StoredValue::new(children);
    view! {
        <Suspense fallback=|| ()>
            {move || Suspend::new(async move {
                let admin = session.await.is_ok_and(|s| s.role.is_admin());
                admin.then(|| children.with_value(|c| c()))
            })}
        </Suspense>
    }
}

/// The frame around every signed-in page: header with navigation and the signed-in identity.
#[component]
pub fn AppShell() -> impl IntoView {
    let session = Resource::new(|| (), |_| get_session());
    provide_context(CurrentSession(session));
    view! {
        <div class="min-h-full">
            <header class="border-b border-slate-200 bg-white">
                <div class="mx-auto flex max-w-5xl items-center justify-between gap-4 px-4 py-3">
                    <div class="flex items-center gap-6">
                        <A href="/" attr:class="flex items-center gap-2 font-semibold text-slate-900">
                            <span class="inline-block h-6 w-6 rounded bg-indigo-600" aria-hidden="true"></span>
                            "Gatehouse"
                        </A>
                        <nav aria-label="Main" class="flex gap-4 text-sm">
                            <A href="/" exact=true attr:class="text-slate-600 hover:text-slate-900 aria-[current=page]:font-medium aria-[current=page]:text-indigo-700">
                                "Dashboard"
                            </A>
                            <A href="/connections" attr:class="text-slate-600 hover:text-slate-900 aria-[current=page]:font-medium aria-[current=page]:text-indigo-700">
                                <Suspense fallback=|| "Connections">
                                    {move || Suspend::new(async move {
                                        match session.await {
                                            Ok(s) if !s.role.is_admin() => "My connections",
                                            _ => "Connections",
                                        }
                                    })}
                                </Suspense>
                            </A>
                            <A href="/mcp-servers" attr:class="text-slate-600 hover:text-slate-900 aria-[current=page]:font-medium aria-[current=page]:text-indigo-700">
                                "MCP Servers"
                            </A>
                            <A href="/settings" attr:class="text-slate-600 hover:text-slate-900 aria-[current=page]:font-medium aria-[current=page]:text-indigo-700">
                                "Settings"
                            </A>
                        </nav>
                    </div>
                    <Suspense fallback=|| ()>
                        {move || Suspend::new(async move {
                            match session.await {
                                Ok(s) => view! { <UserMenu identity=s.identity auth_type=s.auth_type role=s.role /> }.into_any(),
                                Err(e) if e.is_unauthorized() => view! { <ErrorNotice error=e /> }.into_any(),
                                Err(_) => ().into_any(),
                            }
                        })}
                    </Suspense>
                </div>
            </header>
            <main class="mx-auto max-w-5xl px-4 py-8">
                <Outlet />
            </main>
        </div>
    }
}

#[component]
fn UserMenu(identity: String, auth_type: AuthType, role: Role) -> impl IntoView {
    view! {
        <div class="flex items-center gap-3 text-sm">
            <span class="text-slate-600" data-testid="identity">
                {if auth_type == AuthType::None { "No sign-in (AUTH_TYPE=none)".to_string() } else { identity }}
            </span>
            {(auth_type != AuthType::None).then(|| view! {
                <span class="rounded bg-slate-100 px-1.5 py-0.5 text-xs text-slate-600" data-testid="role">
                    {role.as_str()}
                </span>
            })}
            {(auth_type != AuthType::None).then(|| view! {
                // A plain form: signing out works with or without JavaScript.
                <form method="post" action="/auth/logout">
                    <button type="submit" class="rounded-md border border-slate-300 px-3 py-1.5 text-slate-700 hover:bg-slate-100">
                        "Sign out"
                    </button>
                </form>
            })}
        </div>
    }
}
