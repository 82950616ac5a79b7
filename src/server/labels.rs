//! `POST /labels`: create, rename or delete a tag or robot group (staff and admins). A plain
//! form; it returns to the labels page with the outcome.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};

use super::AppState;
use super::auth::require_role_for_handler;
use super::db::{LabelError, LabelKind};
use crate::api::form::with_param;
use crate::model::Role;

pub async fn handle(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let user = match require_role_for_handler(&state, &headers, &Role::EDITORS).await {
        Ok(u) => u,
        Err(response) => return response,
    };
    let (mut kind, mut action, mut id, mut name) = (None, String::new(), None, String::new());
    for (k, v) in form_urlencoded::parse(&body) {
        match &*k {
            "kind" => kind = LabelKind::parse(&v),
            "action" => action = v.into_owned(),
            "id" => id = v.parse::<i64>().ok(),
            "name" => name = v.trim().to_string(),
            _ => {}
        }
    }
    let back =
        |key: &str, msg: &str| Redirect::to(&with_param("/labels", key, msg)).into_response();
    let Some(kind) = kind else {
        return back("error", "The request was not understood.");
    };
    let noun = kind.noun();
    if action != "delete" && (name.is_empty() || name.chars().count() > 100) {
        return back(
            "error",
            &format!("Enter a {noun} name of up to 100 characters."),
        );
    }
    let result = match (action.as_str(), id) {
        ("create", _) => state
            .db
            .create_label(kind, &name)
            .await
            .map(|_| format!("Created the {noun} “{name}”.")),
        ("rename", Some(id)) => state
            .db
            .rename_label(kind, id, &name)
            .await
            .map(|_| format!("Renamed to “{name}”.")),
        ("delete", Some(id)) => state
            .db
            .delete_label(kind, id)
            .await
            .map(|_| format!("Deleted the {noun}.")),
        _ => return back("error", "The request was not understood."),
    };
    match result {
        Ok(msg) => {
            let detail = format!("{action} {noun} {name}");
            let _ = state
                .db
                .audit(state.clock.now(), Some(user.id), "label", noun, id, &detail)
                .await;
            back("notice", &msg)
        }
        Err(LabelError::Db(e)) => {
            tracing::error!(error = ?e, "label change failed");
            back("error", "Nothing was changed: the database refused it.")
        }
        Err(e) => back("error", &format!("Cannot do that: {e}.")),
    }
}
