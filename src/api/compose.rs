//! The broadcast wizard's data. Saving is a plain form post handled in `server::wizard`.

use leptos::prelude::*;

use super::AppError;
use crate::model::compose::WizardPage;

/// One wizard step for a new broadcast (`id` absent) or an existing one. Any role may look;
/// staff and admins may save (the form says so, and the save handler checks).
#[server(endpoint = "broadcasts/wizard")]
pub async fn load_wizard(id: Option<i64>, step: Option<u8>) -> Result<WizardPage, AppError> {
    use crate::server::auth::{ANY_ROLE, require_role, state};
    let user = require_role(ANY_ROLE).await?;
    crate::server::wizard::page(&state()?, &user, id, step.unwrap_or(1)).await
}
