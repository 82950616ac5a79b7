//! The fallback sweep: now and then, each sending broadcast with a fallback hands what its
//! channels could not deliver to the next picked channel (`Db::fall_back`), with the quiet
//! hours and the consent rules of the moment it moves.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Dispatcher, eligibility};
use crate::server::broadcast::waves;
use crate::server::db::{DbError, FellBack, WavePlan};

/// When the sweep last ran in this process; it runs at most once per `every`.
pub(super) struct Gate {
    every: Duration,
    last: Mutex<Option<Instant>>,
}

impl Gate {
    pub(super) fn new(every: Duration) -> Gate {
        Gate {
            every,
            last: Mutex::new(None),
        }
    }

    /// Whether the sweep is due now (and, if so, notes that it runs).
    pub(super) fn due(&self) -> bool {
        let mut last = self.last.lock().expect("fallback gate lock");
        if last.is_some_and(|t| t.elapsed() < self.every) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }
}

impl Dispatcher {
    /// Runs the fallback sweep over every sending broadcast with a fallback; what it did.
    pub async fn fall_back_due(&self) -> Result<FellBack, DbError> {
        let mut total = FellBack::default();
        let list = self.db.fallback_broadcasts().await?;
        if list.is_empty() {
            return Ok(total);
        }
        let now = self.clock.now();
        let (rules, _) = self.db.workspace_rules().await?;
        for b in list {
            // The quiet hours of the moment it moves (never a local time: a fallback goes
            // as soon as it may); the zones are read only when someone is due to move.
            let plan = if self.db.may_fall_back_now(&b, now).await? {
                let (timing, purpose, zones) = self.db.broadcast_timing(b.id).await?;
                let exempt = timing.quiet_exempt.is_some();
                (waves::plan(now, None, &rules, exempt, &zones), purpose)
            } else {
                (WavePlan::at_once(now), Default::default())
            };
            let e = eligibility(&rules, plan.1, now);
            let done = self.db.fall_back(&b, now, &plan.0, &e).await?;
            if done.moved > 0 {
                tracing::info!(
                    broadcast = b.id,
                    moved = done.moved,
                    "fell back to the next channel"
                );
                self.wake.notify_one();
            }
            total.moved += done.moved;
            total.closed += done.closed;
        }
        Ok(total)
    }

    /// [`Dispatcher::fall_back_due`] when its gate lets it run (the supervisor's pace).
    pub(super) async fn fall_back_now_and_then(&self) -> Result<(), DbError> {
        if self.fallback_gate.due() {
            self.fall_back_due().await?;
        }
        Ok(())
    }
}
