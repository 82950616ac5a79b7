//! The customers' forms and downloads: bulk tags, the edit form, the CSV export, and the
//! import (upload, then the preview's choices).

use axum::Router;
use axum::body::Body;
use axum::extract::multipart::MultipartRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::broadcasts::csv_download;
use super::extract::{AnyUser, Editor};
use super::form::{Fields, Form};
use super::respond;
use crate::model::CustomerQuery;
use crate::model::customer_edit::CustomerForm;
use crate::server::AppState;
use crate::server::customers::edit::{self, Saved};
use crate::server::customers::{export, import_jobs, tags};
use crate::server::db::AuditEntry;

/// What a multipart request carries besides the file itself (boundaries, headers, the
/// other fields), on top of a file's own limit.
const MULTIPART_SLACK: usize = 64 * 1024;

/// The routes; an import upload's body may be up to `import_max_bytes` and a little more.
pub fn routes(import_max_bytes: u64) -> Router<AppState> {
    let import_limit = usize::try_from(import_max_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(MULTIPART_SLACK);
    Router::new()
        .route("/customers/export.csv", get(export_csv))
        .route("/customers/tags", post(bulk_tag))
        .route("/customers/{id}/save", post(save))
        .route("/customers/{id}/consent", post(consent))
        .route(
            "/customers/import",
            // The import streams the file to disk within its own limit; the body as a whole
            // is bounded too, so a request cannot carry more than one file's worth.
            post(import_upload).layer(DefaultBodyLimit::max(import_limit)),
        )
        .route("/customers/import/{id}", post(import_choose))
}

/// `POST /customers/tags`: back to the customers page with a notice or an error.
async fn bulk_tag(
    State(state): State<AppState>,
    Editor(user): Editor,
    Form(form): Form<tags::TagForm>,
) -> Response {
    match tags::check(form) {
        Ok(req) => respond::outcome(&req.back, tags::apply(&state, &user, &req).await),
        Err((message, back)) => respond::error(&back, &message),
    }
}

/// The edit form as posted: groups are repeated `group=` fields; the opt-out box is present
/// only when ticked.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct EditForm {
    name: String,
    phone: String,
    email: String,
    whatsapp_id: String,
    telegram_chat_id: String,
    tags: String,
    group: Vec<String>,
    assignee: String,
    time_zone: String,
    opted_out: Option<String>,
    version: i64,
}

impl From<EditForm> for CustomerForm {
    fn from(f: EditForm) -> Self {
        CustomerForm {
            name: f.name,
            phone: f.phone,
            email: f.email,
            whatsapp_id: f.whatsapp_id,
            telegram_chat_id: f.telegram_chat_id,
            tags: f.tags,
            groups: f.group,
            assignee: f.assignee,
            time_zone: f.time_zone,
            opted_out: f.opted_out.is_some(),
            version: f.version,
        }
    }
}

/// The edit page's address with `error` and every typed field, so the form shows them again.
fn back_to_form(id: i64, error: &str, f: &CustomerForm) -> String {
    let fields = [
        ("error", error),
        ("name", &f.name),
        ("phone", &f.phone),
        ("email", &f.email),
        ("whatsapp_id", &f.whatsapp_id),
        ("telegram_chat_id", &f.telegram_chat_id),
        ("tags", &f.tags),
        ("assignee", &f.assignee),
        ("time_zone", &f.time_zone),
    ];
    let groups = f.groups.iter().map(|g| ("group", g.as_str()));
    let opted_out = f.opted_out.then_some(("opted_out", "on"));
    let version = f.version.to_string();
    respond::with_fields(
        &format!("/customers/{id}"),
        fields
            .into_iter()
            .chain(groups)
            .chain(opted_out)
            .chain([("version", version.as_str())]),
    )
}

/// `POST /customers/{id}/save`: on a problem back to the form with the messages and
/// everything typed (nothing is lost), on success with a notice.
async fn save(
    State(state): State<AppState>,
    Editor(user): Editor,
    Path(id): Path<i64>,
    Form(form): Form<EditForm>,
) -> Response {
    let form = CustomerForm::from(form);
    match edit::save(&state, &user, id, &form).await {
        Saved::Saved => respond::notice(&format!("/customers/{id}"), "Saved."),
        Saved::Gone => respond::error("/customers", "That customer no longer exists."),
        Saved::Refused(message) => respond::to(&back_to_form(id, &message, &form)),
        // Shown again as typed, now at the stored version: saving again is a choice made
        // knowing what changed.
        Saved::Changed { message, version } => respond::to(&back_to_form(
            id,
            &message,
            &CustomerForm { version, ..form },
        )),
    }
}

#[derive(Debug, Deserialize)]
struct ExportParams {
    q: Option<String>,
    tag: Option<String>,
}

/// `GET /customers/export.csv?q=…&tag=…`: the customers list as filtered on the page.
async fn export_csv(
    State(state): State<AppState>,
    AnyUser(user): AnyUser,
    Query(params): Query<ExportParams>,
) -> Response {
    let (query, _) = CustomerQuery::parse(params.q.as_deref(), params.tag.as_deref(), None, None);
    let audit = AuditEntry::new(
        state.clock.now(),
        Some(user.id),
        "export",
        "customers",
        None,
    );
    match export::customers(state.db.clone(), audit, query).await {
        Ok(stream) => csv_download("customers.csv".into(), Body::from_stream(stream)),
        Err(e) => {
            tracing::error!(error = ?e, "customer export failed");
            let message = "The download is unavailable; please try again.";
            (StatusCode::SERVICE_UNAVAILABLE, message).into_response()
        }
    }
}

/// `POST /customers/import`: the upload form (multipart, one `file` field).
async fn import_upload(
    State(state): State<AppState>,
    Editor(user): Editor,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    respond::to(&import_jobs::upload(&state, user.id, declared, multipart.ok()).await)
}

/// `POST /customers/import/{id}`: the preview's form (its `col_N` names carry the column).
async fn import_choose(
    State(state): State<AppState>,
    Editor(user): Editor,
    Path(id): Path<String>,
    Fields(fields): Fields,
) -> Response {
    respond::to(&import_jobs::choose(&state, &user, &id, &fields).await)
}

/// `POST /customers/{id}/consent`: a staff member records the customer's consent, with a note.
async fn consent(
    State(state): State<AppState>,
    Editor(user): Editor,
    Path(id): Path<i64>,
    Form(form): Form<crate::server::customers::consent::ConsentForm>,
) -> Response {
    let outcome = crate::server::customers::consent::record(&state, &user, id, &form).await;
    respond::outcome(&format!("/customers/{id}"), outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_survives_a_round_trip_through_the_error_url() {
        let parse =
            |b: &[u8]| CustomerForm::from(super::super::form::parse::<EditForm>(b).unwrap());
        let f = parse(b"name=Ada+L%C3%B6&phone=%2B44+20&tags=VIP%2C+New&group=Sales-bot&group=Support-bot&time_zone=Mars&opted_out=on");
        assert_eq!(f.name, "Ada Lö");
        assert_eq!(f.groups, vec!["Sales-bot", "Support-bot"]);
        assert!(f.opted_out);
        let url = back_to_form(7, "Bad.", &f);
        let (_, query) = url.split_once('?').unwrap();
        assert_eq!(parse(query.as_bytes()), f);
        assert!(url.starts_with("/customers/7?error=Bad."));
    }
}
