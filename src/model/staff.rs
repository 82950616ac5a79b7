//! The staff page: every account with its role and standing.

use serde::{Deserialize, Serialize};

use super::Role;

/// Where an account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Standing {
    Active,
    /// Invited: no password chosen yet.
    Invited,
    Deactivated,
}

impl Standing {
    pub fn label(self) -> &'static str {
        match self {
            Standing::Active => "Active",
            Standing::Invited => "Invited",
            Standing::Deactivated => "Deactivated",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffRow {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub standing: Standing,
    /// When the account was made, in the viewer's words.
    pub created: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffPage {
    pub rows: Vec<StaffRow>,
    /// The account the viewer is about to deactivate (the page asks first).
    pub confirm: Option<StaffRow>,
    /// A notice with a password link, shown once to the admin who made it.
    pub flash: Option<(String, String)>,
    /// The viewer's own account id (they cannot deactivate themselves).
    pub me: i64,
}
