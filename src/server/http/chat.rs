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

use super::extract::AnyUser;
use crate::server::{AppState, chat};

pub fn routes() -> Router<AppState> {
    Router::new().route("/customers/{id}/events", get(events))
}

#[derive(Debug, serde::Deserialize)]
struct EventsParams {
    after: Option<i64>,
}

async fn events(
    State(state): State<AppState>,
    AnyUser(viewer): AnyUser,
    Path(id): Path<i64>,
    Query(params): Query<EventsParams>,
) -> Response {
    let after = params.after.unwrap_or(0);
    let batches = chat::follow(&state, &viewer, id, after).await;
    let events = batches.flat_map(|messages| {
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
