//! An A/B test's split, computed in SQL as the audience is materialised: the same bucket as
//! `model::ab::bucket`, so each recipient's variant can be recounted from the broadcast alone.

use chrono::{DateTime, Utc};

use super::audience::{AudienceBind, Builder};
use crate::model::ab::{self, AbPlan};

/// The not-before time of a recipient waiting for the winner: never, until it is chosen.
pub(super) fn held_until() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("9999-01-01T00:00:00Z")
        .expect("a fixed valid time")
        .to_utc()
}

/// How a broadcast's deliveries are made beyond the audience: whether they may fall back,
/// and how they are split between variants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Shape {
    pub fallback: bool,
    pub split: Option<Split>,
}

/// A broadcast's split into variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Split {
    pub seed: i64,
    pub variants: i64,
    /// Percent of the audience in the test (`None`: everyone).
    pub share: Option<i64>,
}

impl Split {
    /// Broadcast `id`'s split, from its stored A/B test (none without one).
    pub(super) fn of(id: i64, stored: Option<&str>) -> Option<Split> {
        let plan: AbPlan = serde_json::from_str(stored?).ok()?;
        (plan.count() > 1).then(|| Split {
            seed: ab::seed(id),
            variants: plan.count() as i64,
            share: plan.test_share.map(i64::from),
        })
    }

    /// The variant and not-before columns of customer `c`, given the not-before time `wave`
    /// without a split: outside the test share a recipient waits (variant -1) until the
    /// winner is chosen.
    pub(super) fn columns(&self, b: &mut Builder, wave: String) -> (String, String) {
        let bucket = format!(
            "(((c.id * {} + {}) % {}) % {})",
            ab::multiplier(self.seed),
            self.seed,
            ab::HASH_MOD,
            ab::BUCKETS
        );
        let variant = format!("({bucket} % {})", self.variants);
        match self.share {
            None => (variant, wave),
            Some(p) => {
                let cut = p * ab::BUCKETS / 100;
                let held = b.bind(AudienceBind::Time(held_until()));
                (
                    format!("CASE WHEN {bucket} < {cut} THEN {variant} ELSE -1 END"),
                    format!("CASE WHEN {bucket} < {cut} THEN {wave} ELSE {held} END"),
                )
            }
        }
    }
}
