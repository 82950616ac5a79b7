//! Time, injected: the server reads "now" through [`Clock`] so tests can set it.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use std::sync::{Arc, Mutex};

pub trait Clock: Send + Sync {
    /// Now, in UTC, at microsecond precision (what both databases store).
    fn now(&self) -> DateTime<Utc>;
}

/// The machine's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        truncate(Utc::now())
    }
}

/// A clock that stands still until moved; for tests.
#[derive(Clone)]
pub struct FixedClock(Arc<Mutex<DateTime<Utc>>>);

impl FixedClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        FixedClock(Arc::new(Mutex::new(truncate(at))))
    }
    pub fn advance(&self, by: TimeDelta) {
        let mut t = self.0.lock().expect("clock lock");
        *t = truncate(*t + by);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock lock")
    }
}

/// Cuts a time to whole microseconds, so what we write is exactly what we read back.
pub fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}

/// A clock `offset` ahead of (or, negative, behind) another: how a test pretends this
/// machine's clock is wrong (`HERALD_CLOCK_SKEW_SECONDS`).
pub struct SkewedClock {
    pub inner: Arc<dyn Clock>,
    pub offset: TimeDelta,
}

impl Clock for SkewedClock {
    fn now(&self) -> DateTime<Utc> {
        truncate(self.inner.now() + self.offset)
    }
}

/// The database server's time, read through this machine's clock: `local` plus the offset
/// measured against the database (half a round trip's error), measured again every
/// [`DbClock::REMEASURE`]. Leases, starts, the reconciliation window, retry times and due
/// schedules all read it, so instances whose own clocks disagree still agree on them.
pub struct DbClock {
    local: Arc<dyn Clock>,
    offset_us: std::sync::atomic::AtomicI64,
}

impl DbClock {
    pub const REMEASURE: std::time::Duration = std::time::Duration::from_secs(10);

    /// Measures the offset once, then keeps measuring it in the background.
    pub async fn start(
        db: crate::server::db::Db,
        local: Arc<dyn Clock>,
    ) -> Result<Arc<DbClock>, crate::server::db::DbError> {
        let clock = Arc::new(DbClock {
            local,
            offset_us: 0.into(),
        });
        clock.measure(&db).await?;
        let weak = Arc::downgrade(&clock);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Self::REMEASURE).await;
                let Some(clock) = weak.upgrade() else { return };
                if let Err(e) = clock.measure(&db).await {
                    tracing::warn!(error = %e, "reading the database's time failed; the last offset stays");
                }
            }
        });
        Ok(clock)
    }

    /// How far the database's clock is ahead of this machine's.
    pub fn offset(&self) -> TimeDelta {
        TimeDelta::microseconds(self.offset_us.load(std::sync::atomic::Ordering::SeqCst))
    }

    async fn measure(&self, db: &crate::server::db::Db) -> Result<(), crate::server::db::DbError> {
        let before = self.local.now();
        let server = db.server_time().await?;
        let after = self.local.now();
        let here = before + (after - before) / 2;
        let offset = (server - here).num_microseconds().unwrap_or(0);
        self.offset_us
            .store(offset, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }
}

impl Clock for DbClock {
    fn now(&self) -> DateTime<Utc> {
        truncate(self.local.now() + self.offset())
    }
}
