//! The HTTP layer: axum handlers only. Each extracts what it needs (the caller's role as
//! [`extract::Editor`] and friends, a typed [`form::Form`]), calls a service, and responds
//! ([`respond`]). Each area owns its routes; [`router`] merges them with the pages, the
//! middleware and a trace span per request.

pub mod accounts;
pub mod approval;
pub mod attachments;
pub mod broadcasts;
pub mod channels;
pub mod chat;
pub mod customers;
pub mod extract;
pub mod form;
pub mod labels;
pub mod live;
pub mod middleware;
pub mod respond;
pub mod settings;
pub mod unsubscribe;
pub mod webhooks;

use axum::Router;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tower_http::trace::TraceLayer;

use crate::app::{App, shell};
use crate::server::AppState;

/// The app's routes, listed once per process. Listing runs the app with resource loading
/// suppressed through a process-wide flag (leptos_server's `SuppressResourceLoad`), so a page
/// that another router was rendering at that moment would wait forever for its data
/// (leptos-rs/leptos#4773). One listing, before any router exists, rules that out; it is what
/// made the HTTP tests, which build a router each, hang now and then.
pub fn page_routes() -> Vec<leptos_axum::AxumRouteListing> {
    static ROUTES: std::sync::OnceLock<Vec<leptos_axum::AxumRouteListing>> =
        std::sync::OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

/// The whole HTTP application for `state`.
pub fn router(state: AppState) -> Router {
    let options = state.leptos_options.clone();
    Router::new()
        .merge(accounts::routes())
        .merge(broadcasts::routes())
        .merge(attachments::routes())
        .merge(customers::routes(state.config.import_max_bytes))
        .merge(labels::routes())
        .merge(channels::routes())
        .merge(chat::routes())
        .merge(live::routes())
        .merge(unsubscribe::routes())
        .merge(settings::routes())
        .merge(approval::routes())
        .merge(webhooks::routes())
        .leptos_routes_with_context(
            &state,
            page_routes(),
            middleware::provide_page_nonce,
            move || shell(options.clone()),
        )
        .fallback(leptos_axum::file_and_error_handler_with_context::<
            AppState,
            _,
        >(middleware::provide_page_nonce, shell))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::require_sign_in,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::same_origin,
        ))
        .layer(axum::middleware::from_fn(middleware::no_cross_site_reads))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::security_headers,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// A request's trace span: its method and path, never its query string (password links,
/// search terms and filters are no business of the logs).
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    tracing::debug_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        version = ?req.version(),
    )
}
