//! `POST /broadcasts/{id}/approval` (admins: approve or reject with a comment, from the list
//! or the broadcast's page) and `POST /broadcasts/{id}/undo` (staff and admins: undo "Send
//! now" inside its window). Plain forms; back to where they came from with the outcome.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;

use super::extract::{Admin, Editor};
use super::form::Form;
use super::respond;
use crate::server::AppState;
use crate::server::broadcast::approval::{self, Decided};
use crate::server::broadcast::compose;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/broadcasts/{id}/approval", post(decide))
        .route("/broadcasts/{id}/undo", post(undo))
}

#[derive(Debug, Deserialize)]
struct Decision {
    /// `approve` or `reject`.
    decision: String,
    #[serde(default)]
    comment: String,
    /// `page` when posted from the broadcast's page, else the list.
    #[serde(default)]
    from: String,
}

async fn decide(
    State(state): State<AppState>,
    Admin(user): Admin,
    Path(id): Path<i64>,
    Form(d): Form<Decision>,
) -> Response {
    let back = if d.from == "page" {
        format!("/broadcasts/{id}/edit?step=3")
    } else {
        "/".to_string()
    };
    let approve = match d.decision.as_str() {
        "approve" => true,
        "reject" => false,
        _ => return respond::error(&back, "Choose approve or reject."),
    };
    match approval::decide(&state, &user, id, approve, &d.comment).await {
        Ok(Decided::Rejected(to)) => respond::to(&to),
        Ok(Decided::Approved(c)) => {
            respond::to(&compose::schedule_approved(&state, &user, id, &c).await)
        }
        Err(e) => respond::error(&back, &e.to_string()),
    }
}

async fn undo(
    State(state): State<AppState>,
    Editor(user): Editor,
    Path(id): Path<i64>,
) -> Response {
    match approval::undo(&state, &user, id).await {
        Ok(to) => respond::to(&to),
        Err(e) => respond::error("/", &e.to_string()),
    }
}
