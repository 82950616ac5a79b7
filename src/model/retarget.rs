//! Retargeting by outcome: a follow-up broadcast to those of an earlier broadcast's
//! recipients who did not read, did not reply, replied, failed or were not reached, frozen
//! at the moment it is made.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Sent or delivered, not read, no reply.
    NotRead,
    /// Accepted by the provider, no reply.
    NotReplied,
    Replied,
    Failed,
    /// Not delivered or read (failed, expired, unknown, still waiting, or sent without a
    /// delivery report), and no reply.
    NotReached,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::NotRead,
        Outcome::NotReplied,
        Outcome::Replied,
        Outcome::Failed,
        Outcome::NotReached,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::NotRead => "not_read",
            Outcome::NotReplied => "not_replied",
            Outcome::Replied => "replied",
            Outcome::Failed => "failed",
            Outcome::NotReached => "not_reached",
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == text)
    }

    /// "who did not read".
    pub fn label(self) -> &'static str {
        match self {
            Outcome::NotRead => "who did not read",
            Outcome::NotReplied => "who did not reply",
            Outcome::Replied => "who replied",
            Outcome::Failed => "whose message failed",
            Outcome::NotReached => "who were not reached",
        }
    }
}

/// A follow-up's frozen audience, as the wizard and the results name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrozenSet {
    pub id: i64,
    /// The broadcast it was taken from, and its name.
    pub broadcast_id: i64,
    pub broadcast_name: String,
    pub outcome: Outcome,
    pub size: i64,
    /// When it was frozen, in the viewer's time zone.
    pub frozen_at: String,
}

impl FrozenSet {
    /// `The 1,204 recipients of “Spring sale” who did not read (as of 7 Dec 2026, 18:05)`.
    pub fn text(&self) -> String {
        format!(
            "The {} recipients of “{}” {} (as of {})",
            super::results::thousands(self.size),
            self.broadcast_name,
            self.outcome.label(),
            self.frozen_at
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_read_back_what_they_write() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(Outcome::parse("everyone"), None);
    }
}
