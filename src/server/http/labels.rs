//! `POST /labels`: create, rename or delete a tag or robot group (staff and admins). A plain
//! form; it returns to the labels page with the outcome. A delete happens only when
//! confirmed, else it returns to the question.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;

use super::extract::Editor;
use super::form::Form;
use super::respond;
use crate::server::AppState;
use crate::server::customers::labels::{self, LabelAction};
use crate::server::db::LabelKind;

pub fn routes() -> Router<AppState> {
    Router::new().route("/labels", post(change))
}

#[derive(Debug, Deserialize)]
struct LabelForm {
    kind: String,
    action: LabelAction,
    id: Option<i64>,
    #[serde(default)]
    name: String,
    /// "yes" once the deletion's question was answered.
    confirmed: Option<String>,
}

async fn change(
    State(state): State<AppState>,
    Editor(user): Editor,
    Form(f): Form<LabelForm>,
) -> Response {
    let Some(kind) = LabelKind::parse(&f.kind) else {
        return respond::error("/labels", "The request was not understood.");
    };
    // Deleting cannot be undone: without the answer, ask the question.
    if let (LabelAction::Delete, Some(id), false) =
        (f.action, f.id, f.confirmed.as_deref() == Some("yes"))
    {
        return respond::to(&format!("/labels?confirm={}-{id}", f.kind));
    }
    let outcome = labels::change(&state, &user, kind, f.action, f.id, &f.name).await;
    respond::outcome("/labels", outcome)
}
