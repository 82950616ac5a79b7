//! Transactions that fail for a passing reason are run again, a bounded number of times.
//!
//! Even with one lock order (see [`super::counters`]) a transaction can lose for a reason
//! that says nothing about its work: PostgreSQL picks it as a deadlock victim (against a
//! statement outside that order) or a serialization failure, a connection drops, the pool is
//! briefly exhausted, SQLite's write lock stays busy past its timeout. Such a transaction
//! rolled back whole, so running it again is safe for work written to be repeatable (every
//! caller guards its updates on the state it read).

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::DbError;

/// Attempts in all, the first included.
pub const ATTEMPTS: u32 = 6;

/// Transient failures retried since the process started (benchmarks and tests print it).
static RETRIED: AtomicU64 = AtomicU64::new(0);

/// How many transactions were run again for a transient failure in this process.
pub fn transient_retries() -> u64 {
    RETRIED.load(Ordering::Relaxed)
}

impl DbError {
    /// Whether the work may succeed if simply run again.
    pub fn is_transient(&self) -> bool {
        match self {
            DbError::Sqlx(e) => is_transient(e),
            DbError::NotFound | DbError::Task(_) | DbError::Sealed(_) => false,
        }
    }
}

fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            let code = d.code();
            let code = code.as_deref().unwrap_or("");
            // PostgreSQL: serialization failure, deadlock, lock not available, connection
            // exceptions (class 08), the server shutting down or restarting (57P01–57P03).
            matches!(code, "40001" | "40P01" | "55P03" | "57P01" | "57P02" | "57P03")
                || code.starts_with("08")
                // SQLite: SQLITE_BUSY (5) and its extended codes, SQLITE_LOCKED (6).
                || matches!(code, "5" | "6" | "261" | "517" | "262")
        }
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => true,
        _ => false,
    }
}

/// The wait before attempt `attempt + 1` (1-based): 20 ms doubling, each scaled by a jitter in
/// [0.5, 1.5) so that the transactions that collided do not collide again.
pub fn wait_before_retry(attempt: u32) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = 0.5 + (nanos % 1000) as f64 / 1000.0;
    Duration::from_millis(20 << (attempt.min(8) - 1).min(7)).mul_f64(jitter)
}

/// Runs `work` until it succeeds, fails for a reason that is not transient, or has failed
/// [`ATTEMPTS`] times; each retry is logged with what failed.
pub async fn retrying<T, F, Fut>(what: &str, mut work: F) -> Result<T, DbError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, DbError>>,
{
    let mut attempt = 1;
    loop {
        match work().await {
            Err(e) if e.is_transient() && attempt < ATTEMPTS => {
                RETRIED.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, attempt, "{what}: transient failure, trying again");
                tokio::time::sleep(wait_before_retry(attempt)).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn transient_failures_are_retried_a_bounded_number_of_times() {
        let mut calls = 0;
        let r: Result<u32, DbError> = retrying("test", || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(DbError::Sqlx(sqlx::Error::PoolTimedOut))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(r.unwrap(), 3);
        let mut calls = 0;
        let r: Result<(), DbError> = retrying("test", || {
            calls += 1;
            async { Err(DbError::Sqlx(sqlx::Error::PoolTimedOut)) }
        })
        .await;
        assert!(r.is_err());
        assert_eq!(calls, ATTEMPTS);
        // Not transient: once.
        let mut calls = 0;
        let r: Result<(), DbError> = retrying("test", || {
            calls += 1;
            async { Err(DbError::NotFound) }
        })
        .await;
        assert!(matches!(r, Err(DbError::NotFound)));
        assert_eq!(calls, 1);
    }

    #[test]
    fn waits_grow_and_stay_bounded() {
        for a in 1..=ATTEMPTS {
            let w = wait_before_retry(a);
            let base = 20u64 << (a - 1);
            assert!(w >= Duration::from_millis(base / 2), "{a}: {w:?}");
            assert!(w < Duration::from_millis(base * 3 / 2 + 1), "{a}: {w:?}");
        }
        assert!(wait_before_retry(100) < Duration::from_secs(4));
    }
}
