//! The tags and robot groups page.

use serde::{Deserialize, Serialize};

/// A tag or robot group with the number of customers carrying it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct LabelRow {
    pub id: i64,
    pub name: String,
    pub customers: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabelsPage {
    pub tags: Vec<LabelRow>,
    pub groups: Vec<LabelRow>,
    /// Staff and admins may change them; managers look.
    pub can_edit: bool,
}
