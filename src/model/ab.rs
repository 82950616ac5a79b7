//! A/B tests: how a broadcast's audience is split between its message variants, and how the
//! winner is chosen. Pure, so the split's sizes, its reproducibility and the statistics are
//! tested here; storage computes the same bucket in SQL when it materialises the audience.

use serde::{Deserialize, Serialize};

/// Buckets a recipient falls into (a tenth of a percent each).
pub const BUCKETS: i64 = 1000;
/// The multiplier of the bucket's hash (Knuth's multiplicative constant).
pub const HASH_MUL: i64 = 2_654_435_761;
/// The prime the hash is taken modulo before the bucket.
pub const HASH_MOD: i64 = 1_000_003;

/// What decides the winner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    #[default]
    Read,
    Reply,
    /// Delivered (the rate a channel without reads can measure).
    Received,
}

impl Measure {
    pub const ALL: [Measure; 3] = [Measure::Read, Measure::Reply, Measure::Received];

    pub fn as_str(self) -> &'static str {
        match self {
            Measure::Read => "read",
            Measure::Reply => "reply",
            Measure::Received => "received",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Measure::Read => "read rate",
            Measure::Reply => "reply rate",
            Measure::Received => "received rate",
        }
    }

    pub fn parse(s: &str) -> Option<Measure> {
        Measure::ALL.into_iter().find(|m| m.as_str() == s)
    }
}

/// Most variants a broadcast may carry (A to D).
pub const MAX_VARIANTS: usize = 4;
/// Most hours the test may run before the winner goes to the rest (a week).
pub const MAX_WAIT_HOURS: u32 = 168;
/// The smallest and largest test share, in percent.
pub const MIN_SHARE: u8 = 5;
pub const MAX_SHARE: u8 = 90;

/// A variant's letter: 0 is A.
pub fn letter(n: usize) -> char {
    (b'A' + (n.min(25) as u8)) as char
}

/// A message variant beyond the broadcast's own (which is A): its text, files and, on
/// WhatsApp, its template.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Variant {
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub attachments: Vec<super::media::AttachmentRef>,
    #[serde(default)]
    pub template: Option<super::template::TemplateChoice>,
}

/// A broadcast's A/B test: its further variants, and how the audience is split between them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct AbPlan {
    /// B, C, …: the broadcast's own message is A.
    pub variants: Vec<Variant>,
    /// `None`: everyone, split evenly. `Some(p)`: p % of the audience split evenly, and the
    /// winner goes to the rest `wait_hours` after the start.
    #[serde(default)]
    pub test_share: Option<u8>,
    #[serde(default)]
    pub measure: Measure,
    #[serde(default = "default_wait")]
    pub wait_hours: u32,
}

fn default_wait() -> u32 {
    4
}

impl AbPlan {
    /// How many variants the audience is split between (A included).
    pub fn count(&self) -> usize {
        self.variants.len() + 1
    }

    /// Problems with the plan's own settings, each with its field.
    pub fn problems(&self, expire_hours: Option<u32>, errors: &mut Vec<(&'static str, String)>) {
        if self.variants.is_empty() || self.count() > MAX_VARIANTS {
            errors.push((
                "ab",
                format!("An A/B test has 2 to {MAX_VARIANTS} variants."),
            ));
        }
        let Some(share) = self.test_share else {
            return;
        };
        if !(MIN_SHARE..=MAX_SHARE).contains(&share) {
            errors.push((
                "ab",
                format!("Test the variants on {MIN_SHARE} % to {MAX_SHARE} % of the audience."),
            ));
        }
        if self.wait_hours == 0 || self.wait_hours > MAX_WAIT_HOURS {
            errors.push((
                "ab",
                format!("Choose the winner after 1 to {MAX_WAIT_HOURS} hours."),
            ));
        }
        if expire_hours.is_some_and(|e| e <= self.wait_hours) {
            errors.push((
                "ab",
                "The winner would be chosen after the broadcast expires: wait fewer hours, or let it run longer."
                    .into(),
            ));
        }
    }
}

/// Where a recipient falls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignment {
    /// Gets variant `n` (0 is A) now.
    Variant(usize),
    /// Waits for the winner (outside the test share).
    Rest,
}

/// Recipient `customer`'s bucket in broadcast `seed`'s split, 0..[`BUCKETS`]: the same for
/// the same broadcast and customer, spread evenly over customers, and another broadcast's
/// seed (its own multiplier) mixes them anew. Storage computes
/// `((c.id * multiplier + seed) % HASH_MOD) % BUCKETS` in SQL; this is the same in Rust.
pub fn bucket(seed: i64, customer: i64) -> i64 {
    ((customer * multiplier(seed) + seed).rem_euclid(HASH_MOD)) % BUCKETS
}

/// The bucket hash's multiplier for `seed`.
pub fn multiplier(seed: i64) -> i64 {
    HASH_MUL + 2 * seed
}

/// The seed of broadcast `id`'s split.
pub fn seed(id: i64) -> i64 {
    (id.wrapping_mul(7_919) + 104_729).rem_euclid(HASH_MOD)
}

/// Where `customer` falls in broadcast `seed`'s split into `variants`, with `test_share`
/// percent of the audience in the test (`None`: everyone, split evenly).
pub fn assign(seed: i64, customer: i64, variants: usize, test_share: Option<u8>) -> Assignment {
    let b = bucket(seed, customer);
    let k = variants.max(1) as i64;
    match test_share {
        Some(p) if b >= i64::from(p.min(100)) * BUCKETS / 100 => Assignment::Rest,
        _ => Assignment::Variant((b % k) as usize),
    }
}

/// A two-proportion z-test of `x1` of `n1` against `x2` of `n2` (pooled): (z, two-sided p).
/// `None` when either group is empty or nobody (or everybody) did it in both.
#[cfg(feature = "ssr")]
pub fn two_proportion(x1: i64, n1: i64, x2: i64, n2: i64) -> Option<(f64, f64)> {
    if n1 <= 0 || n2 <= 0 {
        return None;
    }
    let (x1, n1, x2, n2) = (x1 as f64, n1 as f64, x2 as f64, n2 as f64);
    let pooled = (x1 + x2) / (n1 + n2);
    let se = (pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n2)).sqrt();
    if se == 0.0 {
        return None;
    }
    let z = (x1 / n1 - x2 / n2) / se;
    Some((z, libm::erfc(z.abs() / std::f64::consts::SQRT_2)))
}

/// One variant's part of a test, as the results compare them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantResult {
    /// 0 is A.
    pub index: usize,
    /// The start of its text (or its files' names), so people know which is which.
    pub preview: String,
    pub counts: super::rates::Counts,
    pub received: super::rates::Rate,
    pub read: super::rates::Rate,
    pub reply: super::rates::Rate,
    pub winner: bool,
}

impl VariantResult {
    pub fn letter(&self) -> char {
        letter(self.index)
    }

    /// Its rate by `m`.
    pub fn rate(&self, m: Measure) -> &super::rates::Rate {
        match m {
            Measure::Read => &self.read,
            Measure::Reply => &self.reply,
            Measure::Received => &self.received,
        }
    }

    /// Its rate by `m` as (part, whole), when measured.
    #[cfg(feature = "ssr")]
    fn measured(&self, m: Measure) -> Option<(i64, i64)> {
        match self.rate(m) {
            super::rates::Rate::Measured { part, whole, .. } => Some((*part, *whole)),
            super::rates::Rate::NotMeasured => None,
        }
    }
}

/// A test's place on the results page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbResults {
    pub variants: Vec<VariantResult>,
    pub measure: Measure,
    pub test_share: Option<u8>,
    /// Recipients outside the test share still waiting for the winner.
    pub waiting: i64,
    /// Whether the difference by the measure is more than chance, in words.
    pub verdict: String,
    /// The winner and why, once chosen; or when it will be.
    pub decision: Option<String>,
}

/// The leader by `m` among `variants` and how sure that is: (leader, sentence). The leader
/// has the highest measured rate (the first of equals); it is compared with the runner-up
/// by a two-proportion test, whose p-value says whether the lead is more than chance (below
/// 0.05). `None` when no variant can be measured by `m` yet.
#[cfg(feature = "ssr")]
pub fn compare(variants: &[VariantResult], m: Measure) -> (Option<usize>, String) {
    let mut measured: Vec<(usize, i64, i64)> = variants
        .iter()
        .enumerate()
        .filter_map(|(i, v)| v.measured(m).map(|(x, n)| (i, x, n)))
        .collect();
    // Highest rate first (x1/n1 > x2/n2 as x1*n2 > x2*n1); equals keep their order.
    measured.sort_by(|a, b| (b.1 * a.2).cmp(&(a.1 * b.2)));
    let label = m.label();
    let Some(&(lead, x1, n1)) = measured.first() else {
        return (None, format!("No variant can be compared by {label} yet."));
    };
    let l = variants[lead].letter();
    let Some(&(next, x2, n2)) = measured.get(1) else {
        return (
            Some(lead),
            format!("Only {l} can be measured by {label} so far."),
        );
    };
    let r = variants[next].letter();
    let (rl, rr) = (
        variants[lead].rate(m).label(),
        variants[next].rate(m).label(),
    );
    let figures = format!("{l} {rl} ({x1} of {n1}) against {r} {rr} ({x2} of {n2})");
    let text = match two_proportion(x1, n1, x2, n2) {
        None => format!("By {label}: {figures}; no difference to test yet."),
        Some((_, p)) if x1 * n2 == x2 * n1 => {
            format!("By {label}: {figures}; the same (p = {p:.2}).")
        }
        Some((_, p)) if p < 0.05 => format!(
            "By {label}: {figures}; p = {}, so {l}'s lead is more than chance.",
            p_text(p)
        ),
        Some((_, p)) => format!(
            "By {label}: {figures}; p = {}, so the difference may be chance.",
            p_text(p)
        ),
    };
    (Some(lead), text)
}

/// A p-value as people read it.
#[cfg(feature = "ssr")]
fn p_text(p: f64) -> String {
    if p < 0.001 {
        "< 0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// The winner of a test that ran `hours` by `m`, and the reason recorded with it: the
/// leader, or A (the broadcast's own message) when nothing could be measured.
#[cfg(feature = "ssr")]
pub fn winner(variants: &[VariantResult], m: Measure, hours: u32) -> (usize, String) {
    match compare(variants, m) {
        (Some(lead), verdict) => (
            lead,
            format!(
                "{} had the highest {} after {hours} h. {verdict}",
                letter(lead),
                m.label()
            ),
        ),
        (None, _) => (
            0,
            format!(
                "Nothing could be measured by {} after {hours} h, so A (the broadcast's own message) went.",
                m.label()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_is_even_reproducible_and_one_variant_each() {
        let s = seed(42);
        let mut counts = [0usize; 3];
        for c in 1..=30_000 {
            match assign(s, c, 3, None) {
                Assignment::Variant(v) => counts[v] += 1,
                Assignment::Rest => panic!("everyone is in an even split"),
            }
            assert_eq!(assign(s, c, 3, None), assign(s, c, 3, None));
        }
        for n in counts {
            assert!((9_500..10_500).contains(&n), "{counts:?}");
        }
        // Another broadcast splits the same customers differently.
        let other = seed(43);
        let moved = (1..=1000)
            .filter(|c| assign(s, *c, 2, None) != assign(other, *c, 2, None))
            .count();
        assert!((350..650).contains(&moved), "{moved}");
    }

    #[test]
    fn a_test_share_takes_that_share_split_evenly() {
        let s = seed(7);
        let (mut a, mut b, mut rest) = (0, 0, 0);
        for c in 1..=50_000 {
            match assign(s, c, 2, Some(20)) {
                Assignment::Variant(0) => a += 1,
                Assignment::Variant(_) => b += 1,
                Assignment::Rest => rest += 1,
            }
        }
        assert!((9_400..10_600).contains(&(a + b)), "{a} {b}");
        assert!((a as i64 - b as i64).abs() < 600, "{a} {b}");
        assert_eq!(a + b + rest, 50_000);
    }

    fn result(index: usize, read: (i64, i64)) -> VariantResult {
        use crate::model::rates::{Counts, Rate};
        VariantResult {
            index,
            preview: String::new(),
            counts: Counts::default(),
            received: Rate::NotMeasured,
            read: Rate::measured(read.0, read.1),
            reply: Rate::NotMeasured,
            winner: false,
        }
    }

    #[test]
    fn the_winner_leads_by_the_measure_and_says_whether_it_is_chance() {
        let clear = [result(0, (90, 1000)), result(1, (120, 1000))];
        let (w, why) = winner(&clear, Measure::Read, 4);
        assert_eq!(w, 1);
        assert!(
            why.starts_with("B had the highest read rate after 4 h."),
            "{why}"
        );
        assert!(
            why.contains("p = 0.029") && why.contains("more than chance"),
            "{why}"
        );
        let close = [
            result(0, (11, 100)),
            result(1, (10, 100)),
            result(2, (9, 100)),
        ];
        let (w, why) = winner(&close, Measure::Read, 2);
        assert_eq!(w, 0);
        assert!(
            why.contains("against B") && why.contains("may be chance"),
            "{why}"
        );
        let (w, why) = winner(&clear, Measure::Reply, 4);
        assert_eq!(w, 0, "nothing measured: A goes");
        assert!(
            why.starts_with("Nothing could be measured by reply rate"),
            "{why}"
        );
    }

    #[test]
    fn the_two_proportion_test_matches_known_values() {
        // 120 of 1000 against 90 of 1000: z ≈ 2.19, p ≈ 0.029.
        let (z, p) = two_proportion(120, 1000, 90, 1000).unwrap();
        assert!((z - 2.19).abs() < 0.01, "{z}");
        assert!((p - 0.0285).abs() < 0.001, "{p}");
        // Equal rates: no difference at all.
        let (z, p) = two_proportion(50, 500, 50, 500).unwrap();
        assert_eq!(z, 0.0);
        assert!((p - 1.0).abs() < 1e-9);
        assert!(two_proportion(0, 0, 1, 10).is_none());
        assert!(two_proportion(0, 10, 0, 10).is_none());
    }
}
