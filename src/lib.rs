//! Gatehouse: OAuth connections broker, MCP gateway and OAuth 2.1 authorization server.
//!
//! The crate builds twice: with `ssr` it is the server (axum + Leptos SSR), with `hydrate` it
//! is the browser bundle. Everything that only makes sense on the server lives in `server`,
//! gated once here.

pub mod api;
pub mod app;
pub mod model;
pub mod ui;
pub mod util;

#[cfg(feature = "ssr")]
pub mod server;

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    // `hydrate_lazy`: the pages are lazy routes, whose code arrives before they hydrate.
    leptos::mount::hydrate_lazy(app::App);
}
