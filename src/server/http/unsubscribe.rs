//! `/unsubscribe/{token}`: `GET` shows a page with one button (link scanners follow GETs);
//! `POST` (that button, or a mail client's RFC 8058 one-click unsubscribe) applies it. Neither
//! needs a session: the signed token is the permission.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::model::channel::ChannelKind;
use crate::server::AppState;
use crate::server::customers::unsubscribe;

pub fn routes() -> Router<AppState> {
    Router::new().route("/unsubscribe/{token}", get(confirm).post(apply))
}

/// How a customer would call the kind of messages.
fn noun(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Email => "email",
        ChannelKind::Sms => "text (SMS)",
        ChannelKind::Whatsapp => "WhatsApp",
        ChannelKind::Telegram => "Telegram",
        ChannelKind::Webhook | ChannelKind::Sandbox => "these",
    }
}

fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><link rel=\"stylesheet\" href=\"/pkg/herald.css\"></head>\
         <body><main class=\"unsubscribe\"><h1>{title}</h1>{body}</main></body></html>"
    );
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

fn unknown() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Link not recognised",
        "<p>This unsubscribe link is not valid. Please use the link from the message itself.</p>",
    )
}

/// `GET /unsubscribe/{token}`: asks before changing anything (link scanners follow GETs).
async fn confirm(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Some((_, kind)) = state.links.verify(&token) else {
        return unknown();
    };
    page(
        StatusCode::OK,
        "Unsubscribe",
        &format!(
            "<p>Stop receiving {} messages from us?</p>\
             <form method=\"post\"><button type=\"submit\" class=\"primary\">Unsubscribe</button></form>",
            noun(kind)
        ),
    )
}

/// `POST /unsubscribe/{token}`: the button, or a mail client's one-click unsubscribe.
async fn apply(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    match unsubscribe::apply(&state.links, &state.db, &token, state.clock.now()).await {
        Ok(Some(kind)) => page(
            StatusCode::OK,
            "You are unsubscribed",
            &format!(
                "<p>You will not receive {} messages from us any more.</p>",
                noun(kind)
            ),
        ),
        Ok(None) => unknown(),
        Err(e) => {
            tracing::error!(error = ?e, "unsubscribe failed");
            page(
                StatusCode::SERVICE_UNAVAILABLE,
                "Please try again",
                "<p>We could not record that just now. Please try again in a moment.</p>",
            )
        }
    }
}
