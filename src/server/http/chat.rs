//! `GET /customers/{id}/events?after=N`: server-sent events for the chat page, one `message`
//! event (the message's line as HTML, for the chat island) for each message stored after
//! message N, as it arrives.

use std::convert::Infallible;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;

use axum::http::HeaderMap;

use super::extract::AnyUser;
use crate::server::accounts::auth::{session_holds, session_token};
use crate::server::{AppState, chat};

pub fn routes() -> Router<AppState> {
    Router::new().route("/customers/{id}/events", get(events))
}

#[derive(Debug, serde::Deserialize)]
struct EventsParams {
    after: Option<i64>,
}

/// How often an open stream checks that its session still holds when nothing arrives.
const SESSION_RECHECK: std::time::Duration = std::time::Duration::from_secs(5);

async fn events(
    State(state): State<AppState>,
    AnyUser(viewer): AnyUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    Query(params): Query<EventsParams>,
) -> Response {
    let after = params.after.unwrap_or(0);
    // A bound per person: each stream holds a connection and a subscription.
    let Some(slot) = state.chat.open_stream(viewer.id) else {
        return (
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            "Too many live chats are open in your name; close some tabs.",
        )
            .into_response();
    };
    let token = session_token(&headers, state.config.secure()).unwrap_or_default();
    // The stream ends when its session does: each batch is checked before it goes out, and
    // a quiet stream every few seconds.
    let (s, t) = (state.clone(), token.clone());
    let ended = async move {
        while session_holds(&s, &t).await {
            tokio::time::sleep(SESSION_RECHECK).await;
        }
    };
    let batches = chat::follow(&state, &viewer, id, after)
        .await
        .then(move |b| {
            let (state, token) = (state.clone(), token.clone());
            async move { session_holds(&state, &token).await.then_some(b) }
        })
        .take_while(|b| futures::future::ready(b.is_some()))
        .filter_map(futures::future::ready)
        .take_until(ended);
    let events = batches.flat_map(move |messages| {
        // The stream's slot is given back when the stream ends.
        let _held = &slot;
        futures::stream::iter(messages.into_iter().map(|m| {
            Ok::<_, Infallible>(
                Event::default()
                    .event("message")
                    .id(m.key.clone())
                    .data(crate::ui::fragments::chat_line_html(m)),
            )
        }))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
