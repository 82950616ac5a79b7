//! The broadcast forms: every wizard step (`POST /broadcasts/wizard`, a plain form or, when
//! step 1 carries a file, multipart), copying a broadcast, and the recipients download.

use crate::model::UserId;
use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::extract::{AnyUser, Editor};
use super::form::Fields;
use super::respond;
use crate::model::results::RecipientFilter;
use crate::server::AppState;
use crate::server::broadcast::attachments;
use crate::server::broadcast::compose::{self, Upload};
use crate::server::customers::export;
use crate::server::db::{AuditEntry, DbError};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/broadcasts/wizard",
            // Step 1 may carry an attachment (20 MB at most; each type has its own limit).
            post(wizard).layer(DefaultBodyLimit::max(21 * 1024 * 1024)),
        )
        .route("/broadcasts/{id}/copy", post(copy))
        .route("/broadcasts/{id}/follow-up", post(follow_up))
        .route("/broadcasts/{id}/recipients.csv", get(recipients_csv))
}

/// `POST /broadcasts/wizard`.
async fn wizard(State(state): State<AppState>, Editor(user): Editor, req: Request) -> Response {
    let Some((fields, upload)) = read_step(&state, user.id, req).await else {
        return (
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            "The form is far larger than any step of the wizard sends.",
        )
            .into_response();
    };
    let next = compose::save(&state, &user, compose::parse(&fields), upload).await;
    respond::to(&next)
}

/// The largest plain (urlencoded) wizard form: a 4,096-character message, percent-encoded,
/// with every other field, fits many times over. Only multipart step 1 carries a file.
const PLAIN_FORM_BYTES: usize = 512 * 1024;

/// Reads the step's fields: a plain form, or (step 1, which can carry a file) multipart, whose
/// `file` field is stored as an attachment as it streams in. `None`: a plain form over
/// [`PLAIN_FORM_BYTES`].
async fn read_step(
    state: &AppState,
    user_id: UserId,
    req: Request,
) -> Option<(Vec<(String, String)>, Option<Upload>)> {
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        let body = axum::body::to_bytes(req.into_body(), PLAIN_FORM_BYTES)
            .await
            .ok()?;
        return Some((Fields::from_body(&body).0, None));
    }
    let Ok(mut form) = Multipart::from_request(req, state).await else {
        return Some((Vec::new(), None));
    };
    let (mut fields, mut upload) = (Vec::new(), None);
    loop {
        let field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) => {
                upload = Some(Err(
                    "The upload was interrupted; please try again.".to_string()
                ));
                break;
            }
        };
        let name = field.name().unwrap_or("").to_string();
        if name == "file" {
            if field.file_name().is_none_or(str::is_empty) {
                continue; // no file chosen
            }
            upload = Some(
                attachments::store(state, user_id, field)
                    .await
                    .map_err(|(_, message)| message),
            );
        } else if let Ok(text) = field.text().await {
            fields.push((name, text));
        }
    }
    Some((fields, upload))
}

/// `POST /broadcasts/{id}/copy`: a new draft from any broadcast, opened in the wizard.
async fn copy(
    State(state): State<AppState>,
    Editor(user): Editor,
    Path(id): Path<i64>,
) -> Response {
    respond::to(&compose::copy(&state, &user, id).await)
}

#[derive(Debug, Deserialize)]
struct FollowUp {
    #[serde(default)]
    outcome: String,
}

/// `POST /broadcasts/{id}/follow-up`: a draft to the recipients with the chosen outcome.
async fn follow_up(
    State(state): State<AppState>,
    Editor(user): Editor,
    Path(id): Path<i64>,
    super::form::Form(f): super::form::Form<FollowUp>,
) -> Response {
    use crate::server::broadcast::retarget;
    match retarget::follow_up(&state, &user, id, &f.outcome).await {
        Ok(to) => respond::to(&to),
        Err(e) => respond::error(&format!("/broadcasts/{id}"), &e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
struct RecipientParams {
    status: Option<String>,
    tag: Option<String>,
    assignee: Option<String>,
    channel: Option<String>,
}

/// `GET /broadcasts/{id}/recipients.csv?status=…&tag=…&assignee=…&channel=…`: the results
/// table as filtered on the page, every row, streamed.
async fn recipients_csv(
    State(state): State<AppState>,
    AnyUser(user): AnyUser,
    Path(id): Path<i64>,
    Query(params): Query<RecipientParams>,
) -> Response {
    let filter = RecipientFilter::parse(
        params.status.as_deref(),
        params.tag.as_deref(),
        params.assignee.as_deref(),
        params.channel.as_deref(),
    );
    let audit = AuditEntry::new(
        state.clock.now(),
        Some(user.id),
        "export",
        "broadcast",
        None,
    );
    match export::recipients(state.db.clone(), audit, id, filter).await {
        Ok(rows) => csv_download(
            format!("broadcast-{id}-recipients.csv"),
            Body::from_stream(rows),
        ),
        Err(DbError::NotFound) => (StatusCode::NOT_FOUND, "No such broadcast.").into_response(),
        Err(e) => {
            tracing::error!(error = ?e, "recipient export failed");
            let message = "The download is unavailable; please try again.";
            (StatusCode::SERVICE_UNAVAILABLE, message).into_response()
        }
    }
}

/// A CSV download named `file_name`.
pub fn csv_download(file_name: String, body: Body) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file_name}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response()
}
