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
