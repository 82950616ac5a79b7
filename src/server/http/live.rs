//! `GET /live?rows=1,2,3`, `GET /live?results=N`, `GET /live?dashboard=1&sort=…&dir=…`:
//! server-sent events for the live pages. Each topic's current state goes first (so a page
//! that reconnects after missing events reads again once), then each change as the
//! broadcasts' events bring it: `row` events carry a list row's state as JSON, `results` and
//! `dashboard` events the fragment's HTML. Any signed-in role; the stream ends with the
//! session, and counts against the person's open live streams (apart from their chats).

use std::convert::Infallible;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;

use super::extract::AnyUser;
use crate::model::CurrentUser;
use crate::server::AppState;
use crate::server::accounts::auth::{session_holds, session_token};
use crate::server::live::Topic;

/// The most list rows one stream follows (a list page shows fewer).
pub const MAX_ROWS: usize = 100;

pub fn routes() -> Router<AppState> {
    Router::new().route("/live", get(live))
}

#[derive(Debug, serde::Deserialize)]
struct LiveParams {
    rows: Option<String>,
    results: Option<i64>,
    dashboard: Option<String>,
    sort: Option<String>,
    dir: Option<String>,
}

/// The topics a request names, or why it names none that can be followed.
fn topics(p: &LiveParams, viewer: &CurrentUser) -> Result<Vec<Topic>, &'static str> {
    let mut out = Vec::new();
    if let Some(rows) = &p.rows {
        for id in rows.split(',').take(MAX_ROWS + 1) {
            out.push(Topic::Row(
                id.trim()
                    .parse()
                    .map_err(|_| "rows: a list of broadcast ids")?,
            ));
        }
        if out.len() > MAX_ROWS {
            return Err("rows: at most 100 broadcasts");
        }
    }
    if let Some(id) = p.results {
        out.push(Topic::Results {
            id,
            role: viewer.role,
            tz: viewer.time_zone.clone(),
        });
    }
    if p.dashboard.is_some() {
        let bounded = |s: &Option<String>| s.clone().filter(|s| s.len() <= 16);
        out.push(Topic::Dashboard {
            sort: bounded(&p.sort),
            dir: bounded(&p.dir),
            role: viewer.role,
            tz: viewer.time_zone.clone(),
        });
    }
    if out.is_empty() {
        return Err("Name what to follow: rows, results or dashboard.");
    }
    Ok(out)
}

/// How often an open stream checks that its session still holds when nothing arrives.
const SESSION_RECHECK: std::time::Duration = std::time::Duration::from_secs(5);

async fn live(
    State(state): State<AppState>,
    AnyUser(viewer): AnyUser,
    headers: HeaderMap,
    Query(params): Query<LiveParams>,
) -> Response {
    let topics = match topics(&params, &viewer) {
        Ok(t) => t,
        Err(why) => return (StatusCode::BAD_REQUEST, why).into_response(),
    };
    let Some(slot) = state.live.open_stream(viewer.id) else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many live pages are open in your name; close some tabs.",
        )
            .into_response();
    };
    let mut streams = Vec::new();
    for topic in topics {
        let event = topic.event();
        match state.live.follow(&state, topic, &viewer).await {
            Ok(rx) => streams.push(Box::pin(changes(event, rx))),
            Err(e) => {
                let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
                return (status, e.to_string()).into_response();
            }
        }
    }
    let token = session_token(&headers, state.config.secure()).unwrap_or_default();
    let ended = async move {
        while session_holds(&state, &token).await {
            tokio::time::sleep(SESSION_RECHECK).await;
        }
    };
    let events =
        futures::stream::select_all(streams)
            .take_until(ended)
            .map(move |(event, data)| {
                // The stream's slot is given back when the stream ends.
                let _held = &slot;
                Ok::<_, Infallible>(Event::default().event(event).data(&*data))
            });
    // A page left closes its stream; the server sees that at its next write, so it writes
    // something every few seconds and the person's slot comes back soon.
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

/// How often a quiet stream sends a comment (and so finds out that its page is gone).
const KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(5);

/// A topic's state now, then each new state: (event name, data).
fn changes(
    event: &'static str,
    rx: tokio::sync::watch::Receiver<Arc<str>>,
) -> impl futures::Stream<Item = (&'static str, Arc<str>)> {
    futures::stream::unfold((rx, true), move |(mut rx, first)| async move {
        if !first {
            rx.changed().await.ok()?;
        }
        let now = rx.borrow_and_update().clone();
        Some(((event, now), (rx, false)))
    })
}
