//! The audit log page: who did what to which broadcast, channel, customer, label or account,
//! and when, newest first, filtered.

use serde::{Deserialize, Serialize};

/// What the page is filtered by (every part optional), and where the page starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditQuery {
    /// A staff member's id; 0 for Herald itself (entries without a person).
    pub actor: Option<i64>,
    pub action: Option<String>,
    /// The kind of thing: broadcast, channel, customer, customers, tag, group, staff_user …
    pub subject: Option<String>,
    /// One thing of that kind.
    pub subject_id: Option<i64>,
    /// Dates (YYYY-MM-DD, in the viewer's time zone), both ends included.
    pub from: Option<String>,
    pub to: Option<String>,
    /// Entries older than this id (the next page).
    pub before: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRow {
    pub id: i64,
    /// When, in the viewer's words.
    pub at: String,
    /// Who: a name and email, or "Herald" for what the system did by itself.
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub subject_id: Option<i64>,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditPage {
    pub rows: Vec<AuditRow>,
    pub query: AuditQuery,
    /// The `before` of the next (older) page, when there is one.
    pub next: Option<i64>,
    /// Choices for the filters.
    pub people: Vec<(i64, String)>,
    pub actions: Vec<String>,
    pub subjects: Vec<String>,
    /// What was wrong with the filters (a date that is not one), if anything.
    pub notice: Option<String>,
}

/// Entries per page.
pub const AUDIT_PAGE_SIZE: i64 = 100;
