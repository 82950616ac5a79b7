//! The broadcast wizard's data. Saving is a plain form post (`server::http::broadcasts`, then `server::broadcast::compose::save`).

use leptos::prelude::*;

use super::AppError;
use crate::model::audience::AudienceRule;
use crate::model::compose::{AudiencePreview, WizardPage};

/// One wizard step for a new broadcast (`id` absent) or an existing one. Any role may look;
/// staff and admins may save (the form says so, and the save handler checks).
#[server(endpoint = "broadcasts/wizard")]
pub async fn load_wizard(
    id: Option<i64>,
    step: Option<u8>,
    variant: Option<usize>,
) -> Result<WizardPage, AppError> {
    use crate::server::accounts::auth::{ANY_ROLE, require_role, state};
    let user = require_role(ANY_ROLE).await?;
    let (step, variant) = (step.unwrap_or(1), variant.unwrap_or(0));
    crate::server::broadcast::compose::page(&state()?, &user, id, step, variant).await
}

/// How many customers `rule` matches (opted-out ones left out) and a few of their names: the
/// audience editor asks on every change. Staff and admins, who edit audiences.
#[server(endpoint = "broadcasts/audience-preview", input = leptos::server_fn::codec::Json)]
pub async fn preview_audience(rule: AudienceRule) -> Result<AudiencePreview, AppError> {
    use crate::model::Role;
    use crate::server::accounts::auth::{require_role, state};
    require_role(&Role::EDITORS).await?;
    crate::server::broadcast::compose::preview(&state()?, rule).await
}
