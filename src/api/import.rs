//! The customer import page's data. Uploading and starting are plain form posts handled in
//! `server::import_web`.

use leptos::prelude::*;

use super::AppError;
use crate::model::import::ImportPage;

/// The upload page (`id` absent) or one import's preview, progress or outcome. Staff and
/// admins only: managers cannot import.
#[server(endpoint = "customers/import")]
pub async fn get_import(id: Option<String>) -> Result<ImportPage, AppError> {
    use crate::model::Role;
    use crate::server::auth::{require_role, state};
    require_role(&Role::EDITORS).await?;
    let state = state()?;
    let imports = &state.imports;
    Ok(ImportPage {
        view: id.as_deref().and_then(|id| imports.view(id)),
        skip_bad: id.as_deref().is_some_and(|id| imports.skip_bad(id)),
        max_mb: state.config.import_max_bytes / (1024 * 1024),
    })
}
