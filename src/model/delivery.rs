//! A delivery's state and the rule for how a provider's report moves it: forward only, so a
//! repeated report, or "delivered" arriving after "read", changes nothing. Pure, so it is
//! tested here exhaustively; storage applies it to the rows it reads.

use serde::{Deserialize, Serialize};

/// Where one delivery is (DESIGN.md "Statuses"); `replied_at` is kept apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    Pending,
    /// Claimed under a lease; its request may be in flight.
    Sending,
    Sent,
    Delivered,
    Read,
    Failed,
    Expired,
    /// Its request may have reached a provider that cannot tell (Telegram, plain SMTP): the
    /// answer was lost. Never sent again on its own; staff may resend it knowingly.
    Unknown,
}

crate::stored_as_text!(DeliveryState);

impl DeliveryState {
    pub const ALL: [DeliveryState; 8] = [
        DeliveryState::Pending,
        DeliveryState::Sending,
        DeliveryState::Sent,
        DeliveryState::Delivered,
        DeliveryState::Read,
        DeliveryState::Failed,
        DeliveryState::Expired,
        DeliveryState::Unknown,
    ];

    /// The stored text (`deliveries.state`).
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Sending => "sending",
            DeliveryState::Sent => "sent",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Read => "read",
            DeliveryState::Failed => "failed",
            DeliveryState::Expired => "expired",
            DeliveryState::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }

    /// The stored text as an SQL literal, for storage's SQL text, so no query spells a
    /// state itself (tested against `as_str`).
    pub const fn sql(self) -> &'static str {
        match self {
            DeliveryState::Pending => "'pending'",
            DeliveryState::Sending => "'sending'",
            DeliveryState::Sent => "'sent'",
            DeliveryState::Delivered => "'delivered'",
            DeliveryState::Read => "'read'",
            DeliveryState::Failed => "'failed'",
            DeliveryState::Expired => "'expired'",
            DeliveryState::Unknown => "'unknown'",
        }
    }

    /// `accepted()` as an SQL list: `state IN (…)`.
    pub const ACCEPTED_SQL: &'static str = "'sent', 'delivered', 'read'";
    /// `delivered()` as an SQL list.
    pub const DELIVERED_SQL: &'static str = "'delivered', 'read'";
    /// Not yet answered by anyone (pending or claimed) as an SQL list.
    pub const WAITING_SQL: &'static str = "'pending', 'sending'";

    /// The provider took it (Sent or further): a successful receiver.
    pub fn accepted(self) -> bool {
        matches!(
            self,
            DeliveryState::Sent | DeliveryState::Delivered | DeliveryState::Read
        )
    }

    /// Delivered or further (read counts as delivered).
    pub fn delivered(self) -> bool {
        matches!(self, DeliveryState::Delivered | DeliveryState::Read)
    }
}

/// What a provider reported about a message it accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    Delivered,
    Read,
    /// It could not be delivered after all.
    Failed,
}

/// The state `report` moves a delivery in `state` to, or `None` when it changes nothing: only
/// an accepted message moves, only forward; a failure after acceptance ends it, but not once
/// it was delivered (a late "failed" from another device of the customer's).
pub fn after(state: DeliveryState, report: Report) -> Option<DeliveryState> {
    use DeliveryState::*;
    match (state, report) {
        (Sent, Report::Delivered) => Some(Delivered),
        (Sent | Delivered, Report::Read) => Some(Read),
        (Sent, Report::Failed) => Some(Failed),
        _ => None,
    }
}

/// How the counters change when a delivery goes from `old` to `new`:
/// (sent or further, delivered or further, read, failed), each −1, 0 or +1.
pub fn counter_change(old: DeliveryState, new: DeliveryState) -> [i64; 4] {
    let d = |f: fn(DeliveryState) -> bool| f(new) as i64 - f(old) as i64;
    [
        d(DeliveryState::accepted),
        d(DeliveryState::delivered),
        d(|s| s == DeliveryState::Read),
        d(|s| s == DeliveryState::Failed),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql_list(keep: impl Fn(DeliveryState) -> bool) -> String {
        let states = DeliveryState::ALL.into_iter().filter(|&d| keep(d));
        states
            .map(DeliveryState::sql)
            .collect::<Vec<_>>()
            .join(", ")
    }

    #[test]
    fn sql_spellings_are_the_stored_text() {
        for d in DeliveryState::ALL {
            assert_eq!(d.sql(), format!("'{}'", d.as_str()));
        }
        assert_eq!(
            DeliveryState::ACCEPTED_SQL,
            sql_list(DeliveryState::accepted)
        );
        assert_eq!(
            DeliveryState::DELIVERED_SQL,
            sql_list(DeliveryState::delivered)
        );
        let waiting = |d| matches!(d, DeliveryState::Pending | DeliveryState::Sending);
        assert_eq!(DeliveryState::WAITING_SQL, sql_list(waiting));
    }

    const REPORTS: [Report; 3] = [Report::Delivered, Report::Read, Report::Failed];

    fn rank(s: DeliveryState) -> Option<u8> {
        match s {
            DeliveryState::Sent => Some(0),
            DeliveryState::Delivered => Some(1),
            DeliveryState::Read => Some(2),
            _ => None,
        }
    }

    #[test]
    fn reports_move_accepted_messages_forward_only() {
        for state in DeliveryState::ALL {
            for report in REPORTS {
                let got = after(state, report);
                if !state.accepted() {
                    assert_eq!(got, None, "{state:?} + {report:?}: not accepted, no move");
                }
                if let Some(new) = got {
                    assert_ne!(new, state);
                    match (rank(state), rank(new)) {
                        (Some(a), Some(b)) => assert!(b > a, "{state:?} → {new:?} goes back"),
                        _ => assert_eq!((state, new), (DeliveryState::Sent, DeliveryState::Failed)),
                    }
                    // Applying the same report again changes nothing.
                    assert_eq!(after(new, report), None, "{report:?} twice");
                }
            }
        }
        assert_eq!(
            after(DeliveryState::Sent, Report::Read),
            Some(DeliveryState::Read)
        );
        assert_eq!(after(DeliveryState::Read, Report::Delivered), None);
        assert_eq!(after(DeliveryState::Delivered, Report::Failed), None);
        assert_eq!(after(DeliveryState::Sending, Report::Delivered), None);
    }

    #[test]
    fn any_order_of_reports_ends_in_the_same_state() {
        // Every order of every subset (with repeats) of the reports, from Sent.
        fn orders(left: usize, acc: &mut Vec<Report>, out: &mut Vec<Vec<Report>>) {
            out.push(acc.clone());
            if left == 0 {
                return;
            }
            for r in REPORTS {
                acc.push(r);
                orders(left - 1, acc, out);
                acc.pop();
            }
        }
        let mut all = Vec::new();
        orders(4, &mut Vec::new(), &mut all);
        for seq in all {
            let end = seq
                .iter()
                .fold(DeliveryState::Sent, |s, r| after(s, *r).unwrap_or(s));
            // The first report decides: a failure before any success ends it; after a
            // success, failures are late and only "read" can still move it.
            let expected = match seq.first() {
                None => DeliveryState::Sent,
                Some(Report::Failed) => DeliveryState::Failed,
                Some(_) if seq.contains(&Report::Read) => DeliveryState::Read,
                Some(_) => DeliveryState::Delivered,
            };
            assert_eq!(end, expected, "{seq:?}");
        }
    }

    #[test]
    fn counter_changes_follow_the_definitions() {
        use DeliveryState::*;
        assert_eq!(counter_change(Sending, Sent), [1, 0, 0, 0]);
        assert_eq!(counter_change(Sent, Delivered), [0, 1, 0, 0]);
        assert_eq!(counter_change(Sent, Read), [0, 1, 1, 0]);
        assert_eq!(counter_change(Delivered, Read), [0, 0, 1, 0]);
        assert_eq!(counter_change(Sent, Failed), [-1, 0, 0, 1]);
        assert_eq!(counter_change(Sending, Failed), [0, 0, 0, 1]);
        for s in DeliveryState::ALL {
            assert_eq!(counter_change(s, s), [0; 4]);
            assert_eq!(DeliveryState::parse(s.as_str()), Some(s));
        }
    }
}
