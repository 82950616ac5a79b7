//! Consent: what a broadcast is for (marketing or service), and each customer's word per kind
//! of channel and purpose — given or withdrawn, when, and how Herald learnt it.

use serde::{Deserialize, Serialize};

/// What a broadcast is for. Consent rules and the frequency cap apply to marketing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Purpose {
    #[default]
    Marketing,
    /// Utility: an order update, an outage, an appointment.
    Service,
}

crate::stored_as_text!(Purpose);

impl Purpose {
    pub const ALL: [Purpose; 2] = [Purpose::Marketing, Purpose::Service];

    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Marketing => "marketing",
            Purpose::Service => "service",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Purpose::Marketing => "Marketing",
            Purpose::Service => "Service (updates the customer needs)",
        }
    }
}

/// How Herald learnt a customer's word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// A column of a customer import.
    Import,
    /// A staff member, with a note.
    Staff,
    /// A message from the customer (START, or STOP).
    Inbound,
    /// The preference page an unsubscribe link opens.
    Form,
}

crate::stored_as_text!(Source);

impl Source {
    pub const ALL: [Source; 4] = [Source::Import, Source::Staff, Source::Inbound, Source::Form];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::Import => "import",
            Source::Staff => "staff",
            Source::Inbound => "inbound",
            Source::Form => "form",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }

    pub fn label(self) -> &'static str {
        match self {
            Source::Import => "an import",
            Source::Staff => "a staff member",
            Source::Inbound => "a message from the customer",
            Source::Form => "the customer's preference page",
        }
    }
}

/// A customer's word on one kind of channel and purpose, as the customer page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentLine {
    /// The kind of channel (`whatsapp`).
    pub kind: String,
    pub purpose: Purpose,
    pub granted: bool,
    pub source: Source,
    pub note: Option<String>,
    /// When, in the viewer's zone.
    pub at: String,
}

/// Longest note a staff member may give with a change.
pub const MAX_NOTE_CHARS: usize = 500;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_spellings_read_back() {
        for p in Purpose::ALL {
            assert_eq!(Purpose::parse(p.as_str()), Some(p));
        }
        for s in Source::ALL {
            assert_eq!(Source::parse(s.as_str()), Some(s));
        }
        assert_eq!(Purpose::parse("spam"), None);
        assert_eq!(Purpose::default(), Purpose::Marketing);
    }
}
