//! Staff accounts (admins) and password links.

use leptos::prelude::*;

use super::AppError;

/// Every account, the one being deactivated (`confirm`), and the notice `flash` if it is the
/// viewer's: admins only.
#[server(endpoint = "staff/page")]
pub async fn staff_page(
    flash: Option<String>,
    confirm: Option<i64>,
) -> Result<crate::model::staff::StaffPage, AppError> {
    use crate::model::Role;
    use crate::server::accounts::auth::{require_role, state};
    let user = require_role(&[Role::Admin]).await?;
    let state = state()?;
    crate::server::accounts::staff::page(&state, &user, flash.as_deref(), confirm).await
}

/// The email the password link opened in this browser is for, while it works (the link's
/// token travels in an HttpOnly cookie, set by `POST /password/link`, never in a URL).
#[server(endpoint = "password/opened")]
pub async fn password_link_email() -> Result<Option<String>, AppError> {
    use crate::server::accounts::auth::state;
    let state = state()?;
    let Some(token) = use_context::<http::request::Parts>().and_then(|p| {
        crate::server::accounts::link::opened_token(&p.headers, state.config.secure())
    }) else {
        return Ok(None);
    };
    crate::server::accounts::staff::link_email(&state, &token)
        .await
        .map_err(AppError::BadRequest)
}

/// A page of the audit log: admins and managers.
#[server(endpoint = "audit/page")]
pub async fn audit_page(
    query: crate::model::audit::AuditQuery,
) -> Result<crate::model::audit::AuditPage, AppError> {
    use crate::model::Role;
    use crate::server::accounts::auth::{require_role, state};
    let user = require_role(&[Role::Admin, Role::Manager]).await?;
    let state = state()?;
    crate::server::accounts::audit::page(&state, &user, query).await
}
