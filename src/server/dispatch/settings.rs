//! How the dispatcher works (its settings), and the wait before a retry.

use std::time::Duration;

/// How the dispatcher works; the defaults suit one instance on a small machine.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Deliveries claimed per round.
    pub batch: i64,
    /// How long a claim holds before another worker may take the delivery.
    pub lease: chrono::Duration,
    /// Provider requests in flight at once.
    pub concurrency: usize,
    /// Attempts before a transiently failing delivery fails for good.
    pub max_attempts: i64,
    /// How long a delivery whose request may have reached the provider before a crash waits
    /// for a report that names it (recording it as sent) before it is sent again; counted
    /// from its request, and from the dispatcher's start for requests made before it.
    pub reconcile: chrono::Duration,
    /// A schedule found later than this (Herald was down) is marked missed, not sent.
    pub grace: chrono::Duration,
    /// First retry delay; doubles per attempt up to `retry_max`, with jitter.
    pub retry_base: chrono::Duration,
    pub retry_max: chrono::Duration,
    /// How often an idle dispatcher looks for due broadcasts.
    pub idle: Duration,
    /// Which broadcasts are paused is read again whenever any instance announces a change
    /// to a broadcast; on SQLite also this often (another process may write the file).
    pub halt_poll: Duration,
    /// Where attachment files are (the data folder, or the shared bucket).
    pub files: crate::server::files::Files,
    /// Signs the unsubscribe links in emails.
    pub links: crate::server::customers::unsubscribe::Links,
    /// Channels may send to loopback and private addresses (local fakes, tests); the
    /// configuration's `allow-private-endpoints`, off in production.
    pub allow_private_endpoints: bool,
    /// The circuit breaker: a broadcast pauses itself when more than `breaker_ratio` of its
    /// last `breaker_window` attempts on a channel failed (once at least `breaker_min` were
    /// made), so a broken template or a revoked token does not burn through the audience.
    pub breaker_window: usize,
    pub breaker_min: usize,
    pub breaker_ratio: f64,
    /// How often the supervisor looks for deliveries to hand to a broadcast's next channel.
    pub fallback_every: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            batch: 500,
            lease: chrono::Duration::seconds(60),
            concurrency: 64,
            max_attempts: 5,
            reconcile: chrono::Duration::seconds(60),
            grace: chrono::Duration::minutes(15),
            retry_base: chrono::Duration::seconds(5),
            retry_max: chrono::Duration::minutes(10),
            idle: Duration::from_millis(250),
            halt_poll: Duration::from_millis(50),
            files: crate::server::files::Files::local(std::path::Path::new("data")),
            links: Default::default(),
            // A dispatcher built by hand is a test's or the benchmark's, sending to local fakes.
            allow_private_endpoints: true,
            breaker_window: 200,
            breaker_min: 20,
            breaker_ratio: 0.2,
            fallback_every: Duration::from_secs(5),
        }
    }
}

/// The wait before attempt `attempt + 1`: `base · 2^(attempt-1)`, capped, then scaled by a
/// jitter factor in [0.5, 1.0) drawn from `seed`, so retries of many deliveries spread out.
/// A provider's `Retry-After` wins when it asks for longer.
pub fn backoff(
    settings: &Settings,
    attempt: i64,
    retry_after: Option<Duration>,
    seed: u64,
) -> chrono::Duration {
    let exp = attempt.clamp(1, 30) - 1;
    let raw = settings
        .retry_base
        .checked_mul(1i32 << exp.min(20))
        .unwrap_or(settings.retry_max)
        .min(settings.retry_max);
    // SplitMix64 of the seed: a cheap, stable draw per delivery and attempt.
    let mut z = seed
        .wrapping_add(attempt as u64)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let factor = 0.5 + (z >> 11) as f64 / (1u64 << 53) as f64 / 2.0;
    let jittered =
        chrono::Duration::milliseconds((raw.num_milliseconds() as f64 * factor).round() as i64);
    match retry_after.and_then(|d| chrono::Duration::from_std(d).ok()) {
        Some(asked) if asked > jittered => asked,
        _ => jittered,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn backoff_doubles_with_jitter_is_capped_and_honours_retry_after() {
        let s = Settings {
            retry_base: chrono::Duration::seconds(2),
            retry_max: chrono::Duration::seconds(60),
            ..Settings::default()
        };
        for seed in 0..200u64 {
            for attempt in 1..=8i64 {
                let full = (2i64 << (attempt - 1)).min(60) * 1000;
                let got = backoff(&s, attempt, None, seed).num_milliseconds();
                assert!(
                    got >= full / 2 && got < full,
                    "attempt {attempt}: {got} ms of {full}"
                );
            }
        }
        let spread: HashSet<i64> = (0..50u64)
            .map(|seed| backoff(&s, 3, None, seed).num_milliseconds())
            .collect();
        assert!(spread.len() > 40, "jitter spreads retries: {spread:?}");
        assert_eq!(
            backoff(&s, 1, Some(Duration::from_secs(120)), 7),
            chrono::Duration::seconds(120)
        );
        assert!(backoff(&s, 1, Some(Duration::from_millis(1)), 7) > chrono::Duration::seconds(0));
        assert!(backoff(&s, 1000, None, 1) < chrono::Duration::seconds(60));
    }
}
