//! Tags and robot groups.

use leptos::prelude::*;

use super::AppError;

/// Every tag and robot group with its customer count.
#[server(endpoint = "labels/list")]
pub async fn list_labels() -> Result<crate::model::labels::LabelsPage, AppError> {
    use crate::model::labels::LabelsPage;
    use crate::server::accounts::auth::{ANY_ROLE, require_role, state};
    use crate::server::db::LabelKind;
    let user = require_role(ANY_ROLE).await?;
    let state = state()?;
    Ok(LabelsPage {
        tags: state.db.labels(LabelKind::Tag).await?,
        groups: state.db.labels(LabelKind::RobotGroup).await?,
        can_edit: user.role.can_edit(),
    })
}
