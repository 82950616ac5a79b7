//! Broadcasts as the list shows them.

use serde::{Deserialize, Serialize};

use super::ListQuery;

/// A broadcast's lifecycle as stored (`broadcasts.status`); the pause flag is kept apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lifecycle {
    Draft,
    Scheduled,
    Sending,
    Sent,
    Failed,
    Cancelled,
}

impl Lifecycle {
    pub const ALL: [Lifecycle; 6] = [
        Lifecycle::Draft,
        Lifecycle::Scheduled,
        Lifecycle::Sending,
        Lifecycle::Sent,
        Lifecycle::Failed,
        Lifecycle::Cancelled,
    ];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Lifecycle::Draft => "draft",
            Lifecycle::Scheduled => "scheduled",
            Lifecycle::Sending => "sending",
            Lifecycle::Sent => "sent",
            Lifecycle::Failed => "failed",
            Lifecycle::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|l| l.as_str() == s)
    }

    /// The stored text as an SQL literal, for storage's SQL text (tested against `as_str`).
    pub const fn sql(self) -> &'static str {
        match self {
            Lifecycle::Draft => "'draft'",
            Lifecycle::Scheduled => "'scheduled'",
            Lifecycle::Sending => "'sending'",
            Lifecycle::Sent => "'sent'",
            Lifecycle::Failed => "'failed'",
            Lifecycle::Cancelled => "'cancelled'",
        }
    }

    /// `editable()` as an SQL list: `status IN (…)`.
    pub const EDITABLE_SQL: &'static str = "'draft', 'scheduled'";
    /// `stoppable()` as an SQL list.
    pub const STOPPABLE_SQL: &'static str = "'scheduled', 'sending'";
    /// `finished()` as an SQL list.
    pub const FINISHED_SQL: &'static str = "'sent', 'failed'";
    /// Neither finished nor cancelled (it may still send) as an SQL list.
    pub const OPEN_SQL: &'static str = "'draft', 'scheduled', 'sending'";

    /// Still open to edits in the wizard.
    pub fn editable(self) -> bool {
        matches!(self, Lifecycle::Draft | Lifecycle::Scheduled)
    }

    /// Scheduled or sending: it can still be paused or cancelled.
    pub fn stoppable(self) -> bool {
        matches!(self, Lifecycle::Scheduled | Lifecycle::Sending)
    }

    /// Done sending (every delivery got an answer): sent or failed.
    pub fn finished(self) -> bool {
        matches!(self, Lifecycle::Sent | Lifecycle::Failed)
    }
}

impl std::fmt::Display for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

crate::stored_as_text!(Lifecycle);

/// A broadcast's status as people see it.
///
/// The database stores the lifecycle (`draft`, `scheduled`, `sending`, `sent`, `failed`,
/// `cancelled`) and, separately, a `paused` flag; `Paused` is what a paused Scheduled or
/// Sending broadcast shows, so resuming returns it to where it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BroadcastStatus {
    Sending,
    Scheduled,
    Paused,
    Sent,
    Failed,
    Cancelled,
    Draft,
}

impl BroadcastStatus {
    /// Every status in sort-by-status order.
    pub const IN_SORT_ORDER: [BroadcastStatus; 7] = [
        BroadcastStatus::Sending,
        BroadcastStatus::Scheduled,
        BroadcastStatus::Paused,
        BroadcastStatus::Sent,
        BroadcastStatus::Failed,
        BroadcastStatus::Cancelled,
        BroadcastStatus::Draft,
    ];

    /// Position in "sort by status": sending first, then not processed (scheduled), paused,
    /// sent, failed, cancelled, draft. The SQL column `status_rank` in both migrations
    /// computes the same number; a storage test checks they agree.
    pub fn rank(self) -> i64 {
        Self::IN_SORT_ORDER
            .iter()
            .position(|s| *s == self)
            .expect("every status is in IN_SORT_ORDER") as i64
    }

    /// The status shown for a stored lifecycle state and pause flag.
    pub fn from_stored(state: Lifecycle, paused: bool) -> Self {
        match state {
            Lifecycle::Draft => Self::Draft,
            Lifecycle::Scheduled | Lifecycle::Sending if paused => Self::Paused,
            Lifecycle::Scheduled => Self::Scheduled,
            Lifecycle::Sending => Self::Sending,
            Lifecycle::Sent => Self::Sent,
            Lifecycle::Failed => Self::Failed,
            Lifecycle::Cancelled => Self::Cancelled,
        }
    }

    /// The label in the list. DESIGN.md: a scheduled broadcast reads "Not processed".
    pub fn label(self) -> &'static str {
        match self {
            Self::Sending => "Sending",
            Self::Scheduled => "Not processed",
            Self::Paused => "Paused",
            Self::Sent => "Sent",
            Self::Failed => "Failed",
            Self::Cancelled => "Cancelled",
            Self::Draft => "Draft",
        }
    }

    /// A stable lowercase name for CSS classes and tests.
    pub fn css(self) -> &'static str {
        match self {
            Self::Sending => "sending",
            Self::Scheduled => "scheduled",
            Self::Paused => "paused",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Draft => "draft",
        }
    }

    /// Whether the pause/resume toggle applies: only to unfinished broadcasts that will or do send.
    pub fn toggleable(self) -> bool {
        matches!(self, Self::Scheduled | Self::Sending | Self::Paused)
    }
}

/// One line of the broadcast list, with dates already rendered in the viewer's time zone
/// (so the server's HTML and the hydrated page show the same text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BroadcastRow {
    pub id: i64,
    pub name: String,
    pub status: BroadcastStatus,
    pub created: String,
    /// Scheduled time before sending starts, actual start time after; `None` for drafts without a time.
    pub send_date: Option<String>,
    /// True when `send_date` is when sending actually started.
    pub send_date_actual: bool,
    pub live: LiveState,
    /// Why Herald paused it by itself, while it stays paused.
    pub pause_reason: Option<String>,
    /// A draft's approval: `pending`, `approved` or `rejected`, with why it needs one or the
    /// admin's comment.
    #[serde(default)]
    pub approval: Option<(String, String)>,
}

/// What changes while a broadcast sends: its status and how far it has got.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveState {
    pub status: BroadcastStatus,
    /// Deliveries made for it (its audience once it started).
    pub total: i64,
    /// Accepted by the provider.
    pub sent: i64,
    pub failed: i64,
    /// Its time passed by more than the grace period while Herald was down; it waits for
    /// "send now".
    pub missed: bool,
    /// Not sent before its expiry.
    #[serde(default)]
    pub expired: i64,
    /// While it waits for a later wave: `next wave 10:00 Europe/Berlin (12,400 waiting)`.
    #[serde(default)]
    pub next_wave: Option<String>,
}

impl LiveState {
    /// Deliveries done with (accepted or failed).
    pub fn done(&self) -> i64 {
        self.sent + self.failed
    }

    /// Whether it can still change by itself (the dispatcher may start or advance it).
    pub fn moving(&self) -> bool {
        matches!(
            self.status,
            BroadcastStatus::Scheduled | BroadcastStatus::Sending | BroadcastStatus::Paused
        ) && !self.missed
    }

    /// The status as the list words it.
    pub fn label(&self) -> &'static str {
        if self.missed && self.status == BroadcastStatus::Scheduled {
            "Missed — send now?"
        } else {
            self.status.label()
        }
    }

    /// The status with the next wave, when it waits for one: `Sending — next wave 10:00
    /// Europe/Berlin (12,400 waiting)`.
    pub fn headline(&self) -> String {
        match &self.next_wave {
            Some(w) if self.status == BroadcastStatus::Sending => {
                format!("{} — {w}", self.label())
            }
            _ => self.label().to_string(),
        }
    }
}

/// One page of the broadcast list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListPage {
    pub rows: Vec<BroadcastRow>,
    /// The query as understood (after defaults and corrections).
    pub query: ListQuery,
    /// Cursor for the next page, when there is one.
    pub next: Option<String>,
    /// Cursor for the previous page, when there is one.
    pub prev: Option<String>,
    /// Things about the request that were corrected (unknown sort key, overlong search …).
    pub notices: Vec<String>,
    pub time_zone: String,
    /// Whether the viewer may use the pause/resume toggle.
    pub can_pause: bool,
    /// Whether the viewer may write broadcasts (send a missed one now).
    pub can_edit: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql_list(keep: impl Fn(Lifecycle) -> bool) -> String {
        let states = Lifecycle::ALL.into_iter().filter(|&l| keep(l));
        states.map(Lifecycle::sql).collect::<Vec<_>>().join(", ")
    }

    #[test]
    fn sql_spellings_are_the_stored_text() {
        for l in Lifecycle::ALL {
            assert_eq!(l.sql(), format!("'{}'", l.as_str()));
        }
        assert_eq!(Lifecycle::EDITABLE_SQL, sql_list(Lifecycle::editable));
        assert_eq!(Lifecycle::STOPPABLE_SQL, sql_list(Lifecycle::stoppable));
        assert_eq!(Lifecycle::FINISHED_SQL, sql_list(Lifecycle::finished));
        let open = |l: Lifecycle| !l.finished() && l != Lifecycle::Cancelled;
        assert_eq!(Lifecycle::OPEN_SQL, sql_list(open));
    }

    #[test]
    fn sort_order_is_sending_scheduled_paused_sent_then_draft_last() {
        use BroadcastStatus::*;
        let mut all = vec![Draft, Sent, Paused, Cancelled, Scheduled, Failed, Sending];
        all.sort_by_key(|s| s.rank());
        assert_eq!(
            all,
            vec![Sending, Scheduled, Paused, Sent, Failed, Cancelled, Draft]
        );
    }

    #[test]
    fn paused_shows_only_for_unfinished_broadcasts() {
        use BroadcastStatus::*;
        let shown = |l, paused| BroadcastStatus::from_stored(l, paused);
        assert_eq!(shown(Lifecycle::Scheduled, true), Paused);
        assert_eq!(shown(Lifecycle::Sending, true), Paused);
        assert_eq!(shown(Lifecycle::Sending, false), Sending);
        assert_eq!(shown(Lifecycle::Sent, true), Sent);
        assert_eq!(shown(Lifecycle::Draft, true), Draft);
        for l in Lifecycle::ALL {
            assert_eq!(Lifecycle::parse(l.as_str()), Some(l));
        }
        assert_eq!(Lifecycle::parse("bogus"), None);
    }

    #[test]
    fn scheduled_reads_not_processed() {
        assert_eq!(BroadcastStatus::Scheduled.label(), "Not processed");
    }

    #[test]
    fn toggle_applies_to_scheduled_sending_and_paused_only() {
        let toggleable: Vec<_> = BroadcastStatus::IN_SORT_ORDER
            .into_iter()
            .filter(|s| s.toggleable())
            .collect();
        assert_eq!(
            toggleable,
            vec![
                BroadcastStatus::Sending,
                BroadcastStatus::Scheduled,
                BroadcastStatus::Paused
            ]
        );
    }
}
