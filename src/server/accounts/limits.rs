//! Limits on signing in: attempts per account and per client address (keyed GCRA limiters
//! from `governor`), and a bound on argon2 verifications running at once (each takes about
//! 19 MiB), so a flood of sign-ins can neither guess passwords quickly nor exhaust memory.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use tokio::sync::Semaphore;

/// Verifications at once; more wait, for at most [`VERIFY_WAIT`].
pub const VERIFYING_AT_ONCE: usize = 4;
const VERIFY_WAIT: Duration = Duration::from_secs(10);
/// A client address may try this many times the per-account attempts (an office behind one
/// address signs in together).
const ADDRESS_FACTOR: u32 = 3;

pub struct SignInLimits {
    per_account: DefaultKeyedRateLimiter<String>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    verifying: Semaphore,
    clock: DefaultClock,
}

/// Why an attempt was not even tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Too many attempts: the next is allowed in this many seconds.
    TryAgainIn(u64),
    /// Every verification slot stayed busy.
    Busy,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::TryAgainIn(s) => write!(
                f,
                "Too many sign-in attempts. Try again in {s} second{}.",
                if *s == 1 { "" } else { "s" }
            ),
            Refused::Busy => f.write_str("Signing in is busy right now. Try again in a moment."),
        }
    }
}

fn quota(attempts: u32, window: Duration) -> Quota {
    let attempts = NonZeroU32::new(attempts.max(1)).expect("at least one");
    Quota::with_period(window / attempts.get())
        .unwrap_or_else(|| Quota::per_second(attempts))
        .allow_burst(attempts)
}

impl SignInLimits {
    /// `attempts` per account within `window` (and three times that per client address).
    pub fn new(attempts: u32, window: Duration) -> Self {
        SignInLimits {
            per_account: DefaultKeyedRateLimiter::keyed(quota(attempts, window)),
            per_address: DefaultKeyedRateLimiter::keyed(quota(attempts * ADDRESS_FACTOR, window)),
            verifying: Semaphore::new(VERIFYING_AT_ONCE),
            clock: DefaultClock::default(),
        }
    }

    /// Counts an attempt for `email` from `address`; refused when either is over its limit.
    /// The email counts whether or not such an account exists, so the answer tells nothing.
    pub fn attempt(&self, email: &str, address: Option<IpAddr>) -> Result<(), Refused> {
        let wait = |e: governor::NotUntil<_>| {
            let secs = e.wait_time_from(self.clock.now()).as_secs_f64().ceil() as u64;
            Refused::TryAgainIn(secs.max(1))
        };
        if let Some(a) = address {
            self.per_address.check_key(&a).map_err(wait)?;
        }
        self.per_account
            .check_key(&email.trim().to_lowercase())
            .map_err(wait)
    }

    /// Runs `verify` (an argon2 check) once a verification slot is free.
    pub async fn verify(
        &self,
        verify: impl FnOnce() -> bool + Send + 'static,
    ) -> Result<bool, Refused> {
        let permit = tokio::time::timeout(VERIFY_WAIT, self.verifying.acquire())
            .await
            .map_err(|_| Refused::Busy)?
            .map_err(|_| Refused::Busy)?;
        let ok = tokio::task::spawn_blocking(verify).await.unwrap_or(false);
        drop(permit);
        Ok(ok)
    }

    /// Forgets keys whose limits have fully recovered (a periodic sweep keeps memory flat).
    pub fn forget_idle(&self) {
        self.per_account.retain_recent();
        self.per_address.retain_recent();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_eleventh_attempt_in_the_window_is_refused_whatever_the_case() {
        let l = SignInLimits::new(10, Duration::from_secs(60));
        for _ in 0..10 {
            assert_eq!(l.attempt("Ann@Example.com", None), Ok(()));
        }
        let Err(Refused::TryAgainIn(s)) = l.attempt("ann@example.com ", None) else {
            panic!("the 11th attempt was allowed");
        };
        assert!((1..=6).contains(&s), "{s}");
        assert_eq!(l.attempt("bob@example.com", None), Ok(()), "per account");
        assert!(
            Refused::TryAgainIn(s)
                .to_string()
                .contains(&format!("Try again in {s} second"))
        );
    }

    #[test]
    fn one_address_is_limited_across_accounts() {
        let l = SignInLimits::new(2, Duration::from_secs(60));
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        for i in 0..6 {
            assert_eq!(l.attempt(&format!("user{i}@example.com"), Some(ip)), Ok(()));
        }
        assert!(l.attempt("user9@example.com", Some(ip)).is_err());
        let other: IpAddr = "203.0.113.8".parse().unwrap();
        assert_eq!(l.attempt("user9@example.com", Some(other)), Ok(()));
    }
}
