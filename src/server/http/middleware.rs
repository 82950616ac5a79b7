//! What every request passes through: the sign-in check for pages and the security headers.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::model::list_query::encode_component;
use crate::server::AppState;
use crate::server::accounts::auth::user_for_headers;

/// Page requests without a valid session go to the sign-in page (which then comes back).
/// Server functions check roles themselves; static files are public.
pub async fn require_sign_in(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let is_page = req.method() == Method::GET
        && !path.starts_with("/pkg/")
        && !path.starts_with("/api/")
        // Providers call webhooks (Meta's verification handshake is a GET).
        && !path.starts_with("/webhooks/")
        // Customers follow unsubscribe links from their mail; the link itself is the permission.
        && !path.starts_with("/unsubscribe/")
        // A password link works signed out: the link itself is the permission.
        && path != "/password"
        && !path.contains('.');
    if !is_page {
        return next.run(req).await;
    }
    let user = match user_for_headers(&state, req.headers()).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = ?e, "session lookup failed");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "Herald cannot reach its database right now. Please try again in a moment.",
            )
                .into_response();
        }
    };
    match (path, user) {
        ("/login", Some(_)) => Redirect::to("/").into_response(),
        ("/login", None) | (_, Some(_)) => next.run(req).await,
        (_, None) => {
            let wanted = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let to = if wanted == "/" {
                "/login".to_string()
            } else {
                format!("/login?next={}", encode_component(wanted))
            };
            Redirect::to(&to).into_response()
        }
    }
}

pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    res
}
