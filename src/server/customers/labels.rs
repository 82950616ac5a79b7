//! Tags and robot groups: create, rename, delete (staff and admins), each recorded in the
//! audit log.

use crate::model::CurrentUser;
use crate::server::AppState;
use crate::server::db::{AuditEntry, LabelError, LabelKind};

/// What a label form asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LabelAction {
    Create,
    Rename,
    Delete,
}

impl LabelAction {
    fn as_str(self) -> &'static str {
        match self {
            LabelAction::Create => "create",
            LabelAction::Rename => "rename",
            LabelAction::Delete => "delete",
        }
    }
}

/// Does `action` on the label `id` of `kind` (a new one for `Create`) with `name`; the
/// message to show, or why nothing changed.
pub async fn change(
    state: &AppState,
    user: &CurrentUser,
    kind: LabelKind,
    action: LabelAction,
    id: Option<i64>,
    name: &str,
) -> Result<String, String> {
    let noun = kind.noun();
    let name = name.trim();
    if action != LabelAction::Delete && (name.is_empty() || name.chars().count() > 100) {
        return Err(format!("Enter a {noun} name of up to 100 characters."));
    }
    let audit = AuditEntry::new(state.clock.now(), Some(user.id), "label", noun, id)
        .detail(format!("{} {noun} {name}", action.as_str()));
    let db = &state.db;
    let result = match (action, id) {
        (LabelAction::Create, _) => db
            .create_label(kind, name, &audit)
            .await
            .map(|_| format!("Created the {noun} “{name}”.")),
        (LabelAction::Rename, Some(id)) => db
            .rename_label(kind, id, name, &audit)
            .await
            .map(|_| format!("Renamed to “{name}”.")),
        (LabelAction::Delete, Some(id)) => db
            .delete_label(kind, id, &audit)
            .await
            .map(|_| format!("Deleted the {noun}.")),
        _ => return Err("The request was not understood.".into()),
    };
    result.map_err(|e| match e {
        LabelError::Db(e) => {
            tracing::error!(error = ?e, "label change failed");
            "Nothing was changed: the database refused it.".to_string()
        }
        e => format!("Cannot do that: {e}."),
    })
}
