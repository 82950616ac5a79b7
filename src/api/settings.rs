//! The workspace's Settings page (admins).

use leptos::prelude::*;

use super::AppError;

/// The workspace's rules as the Settings page shows them: admins only.
#[server(endpoint = "settings/page")]
pub async fn settings_page() -> Result<crate::model::workspace::SettingsPage, AppError> {
    use crate::model::Role;
    use crate::server::accounts::auth::{require_role, state};
    let user = require_role(&[Role::Admin]).await?;
    let state = state()?;
    crate::server::workspace::page(&state, &user).await
}
