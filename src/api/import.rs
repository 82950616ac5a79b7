//! The customer import page's data. Uploading and starting are plain form posts handled in
//! `server::http::customers` (the jobs themselves: `server::customers::import_jobs`).

use leptos::prelude::*;

use super::AppError;
use crate::model::import::ImportPage;

/// The upload page (`id` absent) or one import's preview, progress or outcome. Staff and
/// admins only: managers are told they cannot import, and see nothing of any import.
#[server(endpoint = "customers/import")]
pub async fn get_import(id: Option<String>) -> Result<ImportPage, AppError> {
    use crate::server::accounts::auth::{ANY_ROLE, require_role, state};
    let user = require_role(ANY_ROLE).await?;
    let state = state()?;
    let max_mb = state.config.import_max_bytes / (1024 * 1024);
    if !user.role.can_edit() {
        return Ok(ImportPage {
            can_import: false,
            view: None,
            skip_bad: false,
            max_mb,
        });
    }
    let imports = &state.imports;
    Ok(ImportPage {
        can_import: true,
        view: match id.as_deref() {
            Some(id) => imports.view(id, user.id).await,
            None => None,
        },
        skip_bad: id
            .as_deref()
            .is_some_and(|id| imports.skip_bad(id, user.id)),
        max_mb,
    })
}
