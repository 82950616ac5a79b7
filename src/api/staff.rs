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

/// The email a password link is for, while it works (anyone holding the link may ask).
#[server(endpoint = "password/link")]
pub async fn password_link_email(token: String) -> Result<Option<String>, AppError> {
    use crate::server::accounts::auth::state;
    let state = state()?;
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
