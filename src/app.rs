//! Routes and the HTML shell.

use leptos::prelude::*;
use leptos_meta::{Link, MetaTags, Title, provide_meta_context};
use leptos_router::components::{ParentRoute, Redirect, Route, Router, Routes};
use leptos_router::{Lazy, LazyRoute, SsrMode, lazy_route, path};

use crate::ui::components::app_shell::AppShell;
use crate::ui::components::hydrated::mark_hydrated;
use crate::ui::pages::connections_page::ConnectionsPage;
use crate::ui::pages::consent_page::ConsentPage;
use crate::ui::pages::dashboard_page::DashboardPage;
use crate::ui::pages::login_page::LoginPage;
use crate::ui::pages::mcp_servers_page::McpServersPage;
use crate::ui::pages::not_found_page::NotFoundPage;
use crate::ui::pages::settings_audit_page::SettingsAuditPage;
use crate::ui::pages::settings_authentication_page::SettingsAuthenticationPage;
use crate::ui::pages::settings_oauth_clients_page::SettingsOAuthClientsPage;
use crate::ui::pages::settings_sessions_page::SettingsSessionsPage;

/// The page around the app. `assets` is where the bundle is served from: `/assets/<fingerprint>`
/// when it has one (see `server::assets`), else the site root.
pub fn shell(options: LeptosOptions, assets: String) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en" class="h-full">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <meta name="color-scheme" content="light" />
                <AutoReload options=options.clone() />
                // In the shell (rendered on the server only) because its name carries the
                // build's fingerprint, which only the server knows.
                <link
                    rel="stylesheet"
                    id="leptos"
                    href=format!("{assets}/{}/{}.css", options.site_pkg_dir, options.output_name)
                />
                <HydrationScripts options root=assets />
                <MetaTags />
            </head>
            <body class="h-full bg-slate-50 text-slate-900 antialiased">
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    // Every route renders its data before the first byte (SsrMode::Async): pages are complete
    // HTML, readable with JavaScript off, and hydrate from the same data.
    view! {
        <Link rel="icon" href="/favicon.ico" />
        <Title formatter=|title: String| {
            if title.is_empty() { "Gatehouse".to_string() } else { format!("{title} · Gatehouse") }
        } />
        <Router>
            <Routes fallback=NotFoundPage>
                <Route path=path!("/login") view={Lazy::<LoginRoute>::new()} ssr=SsrMode::Async />
                <Route path=path!("/mcp/oauth/consent") view={Lazy::<ConsentRoute>::new()} ssr=SsrMode::Async />
                <ParentRoute path=path!("") view=AppShell ssr=SsrMode::Async>
                    <Route path=path!("") view={Lazy::<DashboardRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/connections") view={Lazy::<ConnectionsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/mcp-servers") view={Lazy::<McpServersRoute>::new()} ssr=SsrMode::Async />
                    <Route
                        path=path!("/settings")
                        view=|| view! { <Redirect path="/settings/authentication" /> }
                        ssr=SsrMode::Async
                    />
                    <Route
                        path=path!("/settings/authentication")
                        view={Lazy::<SettingsAuthenticationRoute>::new()}
                        ssr=SsrMode::Async
                    />
                    <Route path=path!("/settings/sessions") view={Lazy::<SettingsSessionsRoute>::new()} ssr=SsrMode::Async />
                    <Route path=path!("/settings/audit") view={Lazy::<SettingsAuditRoute>::new()} ssr=SsrMode::Async />
                    <Route
                        path=path!("/settings/oauth-clients")
                        view={Lazy::<SettingsOAuthClientsRoute>::new()}
                        ssr=SsrMode::Async
                    />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

// Each page is a lazy route: with `cargo leptos build --split` its code is a WASM chunk of its
// own, fetched when the page is first shown (or hydrated), so the first page downloads the
// app's frame and that page only.
macro_rules! lazy_page {
    ($route:ident, $page:ident) => {
        pub struct $route;

        #[lazy_route]
        impl LazyRoute for $route {
            fn data() -> Self {
                $route
            }

            fn view(_this: Self) -> AnyView {
                mark_hydrated();
                view! { <$page /> }.into_any()
            }
        }
    };
}

lazy_page!(LoginRoute, LoginPage);
lazy_page!(ConsentRoute, ConsentPage);
lazy_page!(DashboardRoute, DashboardPage);
lazy_page!(ConnectionsRoute, ConnectionsPage);
lazy_page!(McpServersRoute, McpServersPage);
lazy_page!(SettingsAuthenticationRoute, SettingsAuthenticationPage);
lazy_page!(SettingsSessionsRoute, SettingsSessionsPage);
lazy_page!(SettingsAuditRoute, SettingsAuditPage);
lazy_page!(SettingsOAuthClientsRoute, SettingsOAuthClientsPage);
