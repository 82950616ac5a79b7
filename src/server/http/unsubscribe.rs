//! `/unsubscribe/{token}`: `GET` shows a page with one button (link scanners follow GETs);
//! `POST` (that button, or a mail client's RFC 8058 one-click unsubscribe) applies it. Neither
//! needs a session: the signed token is the permission.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::model::channel::ChannelKind;
use crate::model::consent::Purpose;
use crate::server::AppState;
use crate::server::customers::{preferences, unsubscribe};

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

/// `GET /unsubscribe/{token}`: asks before changing anything (link scanners follow GETs):
/// one button for this kind of channel, and the customer's preferences per channel and purpose.
async fn confirm(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    let Some((customer, kind)) = state.links.verify(&token) else {
        return unknown();
    };
    let choices = match choices(&state, customer).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    page(
        StatusCode::OK,
        "Unsubscribe",
        &format!(
            "<p>Stop receiving {} messages from us?</p>\
             <form method=\"post\"><button type=\"submit\" class=\"primary\">Unsubscribe</button></form>{choices}",
            noun(kind)
        ),
    )
}

/// The preference form for `customer`, or the page to answer with when it cannot be read.
async fn choices(state: &AppState, customer: i64) -> Result<String, Response> {
    let shown = async {
        let (rules, _) = state.db.workspace_rules().await?;
        preferences::preferences(&state.db, &rules, customer).await
    };
    match shown.await {
        Ok(prefs) => Ok(preference_form(&prefs)),
        Err(e) => {
            tracing::error!(error = ?e, "reading preferences failed");
            Err(try_again())
        }
    }
}

/// "Or choose what you still want": a checkbox per kind and purpose.
fn preference_form(prefs: &[preferences::Preference]) -> String {
    if prefs.is_empty() {
        return String::new();
    }
    let rows: String = prefs
        .iter()
        .map(|p| {
            let field = p.field();
            let what = match p.purpose {
                Purpose::Marketing => "offers and news",
                Purpose::Service => "updates about your orders and account",
            };
            format!(
                "<div class=\"choice\"><input type=\"checkbox\" id=\"{field}\" name=\"{field}\" value=\"on\"{}>\
                 <label for=\"{field}\">{} {what}</label></div>",
                if p.wanted { " checked" } else { "" },
                capital(noun(p.kind))
            )
        })
        .collect();
    format!(
        "<h2>Or choose what you still want</h2><form method=\"post\" class=\"preferences\">\
         <input type=\"hidden\" name=\"prefs\" value=\"1\">{rows}\
         <button type=\"submit\">Save my choices</button></form>"
    )
}

/// `text` with its first letter in capitals.
fn capital(text: &str) -> String {
    let mut c = text.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn try_again() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again",
        "<p>We could not record that just now. Please try again in a moment.</p>",
    )
}

/// Most form fields a preference post is read for (two per kind of channel, and the marker).
const MAX_FIELDS: usize = 16;

/// `POST /unsubscribe/{token}`: the button, or a mail client's one-click unsubscribe (RFC
/// 8058); or the preference form (`prefs=1` and the ticked choices).
async fn apply(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let fields: Vec<(String, String)> = form_urlencoded::parse(&body)
        .take(MAX_FIELDS)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if fields.iter().any(|(k, v)| k == "prefs" && v == "1") {
        return save_preferences(&state, &token, &fields).await;
    }
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
            try_again()
        }
    }
}

/// The preference form posted: each change recorded; the page again, saying so.
async fn save_preferences(state: &AppState, token: &str, fields: &[(String, String)]) -> Response {
    let Some((customer, _)) = state.links.verify(token) else {
        return unknown();
    };
    let chosen: Vec<String> = fields
        .iter()
        .filter(|(k, v)| k.starts_with("want_") && v == "on")
        .map(|(k, _)| k.clone())
        .collect();
    let saved = async {
        let (rules, _) = state.db.workspace_rules().await?;
        preferences::apply(&state.db, &rules, customer, &chosen, state.clock.now()).await
    };
    if let Err(e) = saved.await {
        tracing::error!(error = ?e, "saving preferences failed");
        return try_again();
    }
    match choices(state, customer).await {
        Ok(form) => page(
            StatusCode::OK,
            "Your choices are saved",
            &format!("<p role=\"status\">We will send you only what you chose.</p>{form}"),
        ),
        Err(r) => r,
    }
}
