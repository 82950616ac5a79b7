//! Counts and rates: a broadcast's (or a channel's, or a variant's) counters, and a share of
//! a whole that is "not measured" when the channels cannot report it, never 0 %.

use serde::{Deserialize, Serialize};

/// Counters of a broadcast, or of one of its channels (read from columns named as the
/// fields).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ssr", derive(sqlx::FromRow))]
pub struct Counts {
    /// Deliveries created.
    pub audience: i64,
    /// Accepted by the provider (sent or further).
    pub sent: i64,
    /// Delivered or read.
    pub delivered: i64,
    pub read: i64,
    pub replied: i64,
    pub failed: i64,
}

impl Counts {
    /// From `[audience, sent, delivered, read, replied, failed]`.
    pub fn from_array(a: [i64; 6]) -> Self {
        Counts {
            audience: a[0],
            sent: a[1],
            delivered: a[2],
            read: a[3],
            replied: a[4],
            failed: a[5],
        }
    }

    /// Neither sent nor failed yet.
    pub fn waiting(&self) -> i64 {
        (self.audience - self.sent - self.failed).max(0)
    }
}

/// A share of a whole, or nothing to measure it by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Rate {
    /// `text` is the percentage as shown ("42.5 %"), made on the server so the browser bundle
    /// needs no float formatting.
    Measured {
        part: i64,
        whole: i64,
        text: String,
    },
    NotMeasured,
}

impl Rate {
    pub(crate) fn of(part: i64, whole: i64, measurable: bool) -> Rate {
        if measurable && whole > 0 {
            Rate::measured(part, whole)
        } else {
            Rate::NotMeasured
        }
    }

    /// `part` of `whole` (which must not be 0), with its text.
    pub fn measured(part: i64, whole: i64) -> Rate {
        let p = part as f64 * 100.0 / whole as f64;
        let text = if p == p.round() {
            format!("{p:.0} %")
        } else {
            format!("{p:.1} %")
        };
        Rate::Measured { part, whole, text }
    }

    /// "42.5 %" or "not measured".
    pub fn label(&self) -> String {
        match self {
            Rate::Measured { text, .. } => text.clone(),
            Rate::NotMeasured => "not measured".into(),
        }
    }

    /// 0–100, for bars (0 when not measured).
    pub fn percent(&self) -> f64 {
        match self {
            Rate::Measured { part, whole, .. } => *part as f64 * 100.0 / *whole as f64,
            Rate::NotMeasured => 0.0,
        }
    }
}
