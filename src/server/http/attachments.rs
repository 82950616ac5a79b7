//! `POST /attachments` (the wizard's upload, answered in JSON) and `GET /attachments/{id}`.

use axum::Router;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path as UrlPath, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::extract::{AnyUser, Editor};
use crate::server::AppState;
use crate::server::broadcast::attachments::{self, Uploaded, receive};

pub fn routes() -> Router<AppState> {
    Router::new()
        // Each type has its own limit, checked while the file streams in; the body as a
        // whole is bounded by the largest of them.
        .route(
            "/attachments",
            post(upload).layer(DefaultBodyLimit::max(attachments::MAX_UPLOAD_BYTES)),
        )
        .route("/attachments/{id}", get(serve))
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

/// `POST /attachments` (multipart, one `file` field): staff and admins. The file is streamed
/// to disk within its type's limit, checked, then kept under a generated name.
async fn upload(
    State(state): State<AppState>,
    Editor(user): Editor,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let Ok(mut multipart) = multipart else {
        return refuse(
            StatusCode::BAD_REQUEST,
            "Send the file as multipart form data.",
        );
    };
    match receive(&state, user.id, &mut multipart).await {
        Ok(a) => axum::Json(Uploaded {
            url: format!("/attachments/{}", a.id),
            mime: a.mime,
            id: a.id,
            name: a.name,
            size: a.size,
        })
        .into_response(),
        Err((status, message)) => refuse(status, &message),
    }
}

/// `GET /attachments/{id}`: any signed-in role, with its stored type and `nosniff`; media
/// inline, other files as downloads.
async fn serve(
    State(state): State<AppState>,
    AnyUser(_): AnyUser,
    UrlPath(id): UrlPath<String>,
) -> Response {
    let download = match attachments::open(&state, &id).await {
        Ok(Some(d)) => d,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!(error = ?e, "attachment lookup failed");
            return StatusCode::SERVICE_UNAVAILABLE.into_response();
        }
    };
    (
        [
            (header::CONTENT_TYPE, download.mime),
            (header::CONTENT_DISPOSITION, download.disposition),
            (header::CACHE_CONTROL, "no-store".to_string()),
            (header::CONTENT_LENGTH, download.size.to_string()),
        ],
        Body::from_stream(download.bytes),
    )
        .into_response()
}
