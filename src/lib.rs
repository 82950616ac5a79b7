//! Herald: broadcast messages for customer-support teams.

pub mod api;
pub mod app;
pub mod model;
pub mod ui;

#[cfg(feature = "ssr")]
pub mod server;

/// Entry point of the browser bundle: hydrates the interactive islands of the server-rendered
/// page. Everything else is plain HTML and forms (see README, "Islands").
#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
    // A marker for end-to-end tests: clicks before hydration would be lost.
    if let Some(body) = leptos::prelude::document().body() {
        let _ = body.set_attribute("data-hydrated", "true");
    }
}
