//! The account forms: `POST /staff` (admins manage accounts), `POST /account/password`
//! (anyone changes their own password), `POST /password/link` (a one-time link opened) and
//! `POST /password` (its new password).

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;

use super::extract::{Admin, AnyUser, Reader};
use super::form::Form;
use super::respond;
use crate::model::Role;
use crate::model::list_query::with_param;
use crate::server::AppState;
use crate::server::accounts::auth::session_token;
use crate::server::accounts::{link, staff};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/staff", post(manage))
        .route("/account/password", post(change_password))
        .route("/password", post(set_password))
        .route("/password/link", post(open_link))
        .route("/audit.csv", axum::routing::get(audit_csv))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum StaffAction {
    Invite,
    Role,
    Deactivate,
    Reactivate,
    Reset,
}

#[derive(Debug, Deserialize)]
struct StaffForm {
    action: StaffAction,
    id: Option<i64>,
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    role: Option<Role>,
    /// "yes" once deactivating was asked about and answered.
    confirmed: Option<String>,
}

/// `POST /staff`: admins only. A password link goes to the admin as a one-time notice (never
/// in the URL).
async fn manage(
    State(state): State<AppState>,
    Admin(admin): Admin,
    Form(f): Form<StaffForm>,
) -> Response {
    let linked = |r: Result<(String, String), String>| match r {
        Ok((message, link)) => {
            let id = state.accounts.put_flash(admin.id, message, link);
            respond::to(&with_param("/staff", "flash", &id))
        }
        Err(e) => respond::error("/staff", &e),
    };
    let outcome = match (f.action, f.id, f.role) {
        (StaffAction::Invite, _, Some(role)) => {
            return linked(staff::invite(&state, &admin, &f.email, &f.name, role).await);
        }
        (StaffAction::Reset, Some(id), _) => return linked(staff::reset(&state, &admin, id).await),
        (StaffAction::Role, Some(id), Some(role)) => {
            staff::set_role(&state, &admin, id, role).await
        }
        // Deactivating signs someone out everywhere: without the answer, ask the question.
        (StaffAction::Deactivate, Some(id), _) if f.confirmed.as_deref() != Some("yes") => {
            return respond::to(&format!("/staff?confirm={id}"));
        }
        (StaffAction::Deactivate, Some(id), _) => {
            staff::set_active(&state, &admin, id, false).await
        }
        (StaffAction::Reactivate, Some(id), _) => staff::set_active(&state, &admin, id, true).await,
        _ => Err("The request was not understood.".into()),
    };
    respond::outcome("/staff", outcome)
}

#[derive(Debug, Deserialize)]
struct OwnPassword {
    current: String,
    new: String,
    again: String,
}

/// `POST /account/password`: the signed-in person's own password.
async fn change_password(
    State(state): State<AppState>,
    AnyUser(user): AnyUser,
    parts: axum::http::request::Parts,
    Form(f): Form<OwnPassword>,
) -> Response {
    let session = session_token(&parts.headers, state.config.secure()).unwrap_or_default();
    let address = state.config.client_address(&parts);
    let form = staff::OwnPassword {
        current: &f.current,
        new: &f.new,
        again: &f.again,
    };
    let outcome = staff::change_own(&state, &user, &session, address, &form).await;
    respond::outcome("/account", outcome)
}

#[derive(Debug, Deserialize)]
struct LinkPassword {
    new: String,
    again: String,
}

/// `POST /password`: the new password for the link opened in this browser (no sign-in: the
/// link is the permission).
async fn set_password(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(f): Form<LinkPassword>,
) -> Response {
    let secure = state.config.secure();
    let token = link::opened_token(&headers, secure).unwrap_or_default();
    match staff::set_with_link(&state, &token, &f.new, &f.again).await {
        Ok(m) => with_cookie(respond::notice("/login", &m), &link::cookie(None, secure)),
        Err(e) => respond::error("/password", &e),
    }
}

#[derive(Debug, Deserialize)]
struct OpenLink {
    link: String,
}

/// `POST /password/link`: opens a password link in this browser (the page's script posts the
/// link it was opened with; without JavaScript, the person pastes it).
async fn open_link(State(state): State<AppState>, Form(f): Form<OpenLink>) -> Response {
    let expired = "This link has been used or has expired. Ask an admin for a new one.";
    let Some(token) = link::token_in(&f.link) else {
        return respond::error("/password", expired);
    };
    match staff::link_email(&state, &token).await {
        Ok(Some(_)) => with_cookie(
            respond::to("/password"),
            &link::cookie(Some(&token), state.config.secure()),
        ),
        Ok(None) => respond::error("/password", expired),
        Err(e) => respond::error("/password", &e),
    }
}

fn with_cookie(mut r: Response, cookie: &str) -> Response {
    if let Ok(v) = axum::http::HeaderValue::from_str(cookie) {
        r.headers_mut().append(axum::http::header::SET_COOKIE, v);
    }
    r
}

/// `GET /audit.csv?…`: the audit log as filtered on its page (admins and managers), every
/// entry, streamed; the export itself is audited.
async fn audit_csv(
    State(state): State<AppState>,
    Reader(user): Reader,
    axum::extract::Query(query): axum::extract::Query<crate::model::audit::AuditQuery>,
) -> Response {
    use axum::response::IntoResponse;
    match crate::server::accounts::audit::export(&state, &user, query).await {
        Ok(rows) => super::broadcasts::csv_download(
            "audit-log.csv".into(),
            axum::body::Body::from_stream(rows),
        ),
        Err(e) => (
            axum::http::StatusCode::from_u16(e.status())
                .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR),
            e.to_string(),
        )
            .into_response(),
    }
}
