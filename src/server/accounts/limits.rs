//! Limits on checking passwords (signing in, changing one's own password).
//!
//! - Failures are counted in the database ([`crate::server::db::FailureKeys`]), so every
//!   instance sees them: per (account, client address) and per address they refuse outright;
//!   on the account alone they only slow each try down, so nobody elsewhere can keep the right
//!   person out by failing in their name.
//! - In memory, each client address (IPv6 by /64) may try so often (a flood guard in front of
//!   the database). Its map is swept on a timer and capped; over the cap it stops counting new
//!   addresses rather than refusing them.
//! - At most [`VERIFYING_AT_ONCE`] argon2 runs (about 19 MiB each) at a time.
//!
//! Nothing keyed by what a client typed is kept: accounts are a hash of the normalised email.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::server::db::{FailureKeys, Failures};

/// Verifications at once; more wait, for at most [`VERIFY_WAIT`].
pub const VERIFYING_AT_ONCE: usize = 4;
const VERIFY_WAIT: Duration = Duration::from_secs(10);
/// An address may fail this many times the per-account attempts (an office behind one
/// address signs in together).
pub const ADDRESS_FACTOR: i64 = 3;
/// An address may try (right or wrong) this many times the per-account attempts per window
/// before the database is even asked.
const FLOOD_FACTOR: u32 = 6;
/// Addresses the in-memory guard tracks at most.
pub const MAX_TRACKED_ADDRESSES: usize = 100_000;
/// The longest an account's many failures slow one try down.
pub const MAX_DELAY: Duration = Duration::from_secs(10);
/// Longer input is refused before any limit or hash sees it.
pub const MAX_EMAIL_BYTES: usize = 320;

pub struct SignInLimits {
    per_address: DefaultKeyedRateLimiter<IpAddr>,
    verifying: Semaphore,
    clock: DefaultClock,
    /// Failures per (account, address) within `window`.
    pub attempts: i64,
    pub window: Duration,
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
                "Too many attempts. Try again in {s} second{}.",
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

/// The address a limit counts: IPv4 as is (also when mapped into IPv6), IPv6 by its /64 (one
/// customer's network, which hands out any address in it).
pub fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

/// The account a limit counts: a hash of the normalised email (fixed size, whatever was typed).
pub fn account_key(email: &str) -> String {
    let digest = Sha256::digest(email.trim().to_lowercase().as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// The database keys of an attempt on `email` from `address`.
pub fn failure_keys(email: &str, address: Option<IpAddr>) -> FailureKeys {
    FailureKeys {
        account: account_key(email),
        address: address.map_or_else(|| "unknown".into(), |a| address_key(a).to_string()),
    }
}

impl SignInLimits {
    /// `attempts` failures per (account, address) within `window`, three times that per address.
    pub fn new(attempts: u32, window: Duration) -> Self {
        SignInLimits {
            per_address: DefaultKeyedRateLimiter::keyed(quota(attempts * FLOOD_FACTOR, window)),
            verifying: Semaphore::new(VERIFYING_AT_ONCE),
            clock: DefaultClock::default(),
            attempts: attempts.max(1) as i64,
            window,
        }
    }

    /// Counts a try from `address` in memory; refused when the address tries too often.
    pub fn attempt(&self, address: Option<IpAddr>) -> Result<(), Refused> {
        let Some(address) = address.map(address_key) else {
            return Ok(());
        };
        if self.per_address.len() >= MAX_TRACKED_ADDRESSES {
            self.forget_idle();
            if self.per_address.len() >= MAX_TRACKED_ADDRESSES {
                // Full: new addresses are not counted here (the database's counts still hold).
                return Ok(());
            }
        }
        self.per_address.check_key(&address).map_err(|e| {
            let secs = e.wait_time_from(self.clock.now()).as_secs_f64().ceil() as u64;
            Refused::TryAgainIn(secs.max(1))
        })
    }

    /// What the failures counted so far allow at `now` (unix seconds): refused, or tried after
    /// the returned delay.
    pub fn judge(&self, f: &Failures, now: i64) -> Result<Duration, Refused> {
        let window = self.window.as_secs().max(1) as i64;
        let wait = |start: i64| Refused::TryAgainIn((start + window - now).max(1) as u64);
        if f.pair.failures >= self.attempts {
            return Err(wait(f.pair.window_start));
        }
        if f.address.failures >= self.attempts * ADDRESS_FACTOR {
            return Err(wait(f.address.window_start));
        }
        let over = f.account.failures - self.attempts + 1;
        Ok(Duration::from_secs(over.max(0) as u64).min(MAX_DELAY))
    }

    /// Runs `work` (an argon2 hash or check) once a slot is free.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Refused> {
        let permit = tokio::time::timeout(VERIFY_WAIT, self.verifying.acquire())
            .await
            .map_err(|_| Refused::Busy)?
            .map_err(|_| Refused::Busy)?;
        let done = tokio::task::spawn_blocking(work).await;
        drop(permit);
        done.map_err(|_| Refused::Busy)
    }

    /// Addresses tracked in memory now.
    pub fn tracked(&self) -> usize {
        self.per_address.len()
    }

    /// Forgets addresses whose limits have fully recovered (the sweep keeps memory flat).
    pub fn forget_idle(&self) {
        self.per_address.retain_recent();
        self.per_address.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::db::FailureCount;

    fn count(failures: i64) -> FailureCount {
        FailureCount {
            failures,
            window_start: 1000,
        }
    }

    #[test]
    fn a_pair_or_an_address_is_refused_an_account_is_only_slowed() {
        let l = SignInLimits::new(10, Duration::from_secs(60));
        let mut f = Failures::default();
        assert_eq!(l.judge(&f, 1010), Ok(Duration::ZERO));
        f.account = count(9);
        assert_eq!(l.judge(&f, 1010), Ok(Duration::ZERO));
        f.account = count(12);
        assert_eq!(l.judge(&f, 1010), Ok(Duration::from_secs(3)));
        f.account = count(500);
        assert_eq!(l.judge(&f, 1010), Ok(MAX_DELAY), "never a refusal");
        f.pair = count(10);
        assert_eq!(l.judge(&f, 1010), Err(Refused::TryAgainIn(50)));
        f.pair = count(0);
        f.address = count(30);
        assert_eq!(l.judge(&f, 1059), Err(Refused::TryAgainIn(1)));
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff:1:2:3".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(address_key(a), address_key(b));
        assert_ne!(address_key(a), address_key(c));
        assert_eq!(address_key(a).to_string(), "2001:db8:1:2::");
        let mapped: IpAddr = "::ffff:203.0.113.7".parse().unwrap();
        assert_eq!(address_key(mapped).to_string(), "203.0.113.7");
    }

    #[test]
    fn account_keys_are_fixed_size_and_normalised() {
        assert_eq!(
            account_key(" Ann@Example.com"),
            account_key("ann@example.com")
        );
        assert_eq!(account_key(&"x".repeat(5000)).len(), 32);
    }

    #[test]
    fn the_address_guard_counts_a_64_once_and_is_swept() {
        let l = SignInLimits::new(1, Duration::from_millis(60));
        for i in 0..1000u16 {
            let ip: IpAddr = format!("2001:db8::{i:x}").parse().unwrap();
            let _ = l.attempt(Some(ip));
        }
        assert_eq!(l.tracked(), 1);
        std::thread::sleep(Duration::from_millis(200));
        l.forget_idle();
        assert_eq!(l.tracked(), 0);
    }
}
