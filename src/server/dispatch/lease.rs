//! A batch's claim and the keeper that renews it on its own task, apart from the sends and
//! the writes of their outcomes, so a slow write never lets the lease run out under live
//! work. A claim the database no longer renews (its lease ran out and another worker may
//! hold it) is lost: none of its requests start.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::server::clock::Clock;
use crate::server::db::Db;

/// The deliveries of a batch not recorded yet: id → attempt (the claim's fencing token).
pub(super) type Held = Arc<Mutex<BTreeMap<i64, i64>>>;

/// Until when a batch's claim holds, as far as this process knows, and which of its
/// deliveries it lost.
pub(super) struct Lease {
    until_ms: AtomicI64,
    lost: Mutex<HashSet<i64>>,
}

impl Lease {
    pub(super) fn new(until: DateTime<Utc>) -> Self {
        Lease {
            until_ms: until.timestamp_millis().into(),
            lost: Mutex::new(HashSet::new()),
        }
    }

    fn until(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.until_ms.load(Ordering::SeqCst)).unwrap_or_default()
    }

    fn set(&self, until: DateTime<Utc>) {
        self.until_ms
            .store(until.timestamp_millis(), Ordering::SeqCst);
    }

    /// A third of the lease has passed since it was last set.
    fn due_for_extension(&self, now: DateTime<Utc>, lease: chrono::Duration) -> bool {
        self.until() - now <= lease - lease / 3
    }

    /// Delivery `id` may start its request now: its claim was not lost and at least a third
    /// of the lease is left, so it is recorded (or the lease renewed) well before another
    /// worker could take it. The database checks the claim again at the start itself.
    pub(super) fn may_start(&self, id: i64, now: DateTime<Utc>, lease: chrono::Duration) -> bool {
        self.until() - now >= lease / 3 && !self.lost.lock().expect("lost lock").contains(&id)
    }

    fn lose(&self, ids: impl IntoIterator<Item = i64>) {
        self.lost.lock().expect("lost lock").extend(ids);
    }

    fn is_lost(&self, id: i64) -> bool {
        self.lost.lock().expect("lost lock").contains(&id)
    }
}

/// Renews a batch's claim while it lives; stops when dropped.
pub(super) struct Keeper(tokio::task::JoinHandle<()>);

impl Drop for Keeper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the keeper of `lease` (of length `span`) over the deliveries `held` names: every
/// third of the lease it renews the claims still held and not lost, and marks lost those the
/// database did not renew.
pub(super) fn keep(
    db: Db,
    clock: Arc<dyn Clock>,
    span: chrono::Duration,
    lease: Arc<Lease>,
    held: Held,
) -> Keeper {
    let look = (span / 12)
        .to_std()
        .unwrap_or(Duration::from_secs(1))
        .clamp(Duration::from_millis(20), Duration::from_secs(1));
    Keeper(tokio::spawn(async move {
        loop {
            tokio::time::sleep(look).await;
            let now = clock.now();
            if !lease.due_for_extension(now, span) {
                continue;
            }
            let ids: Vec<(i64, i64)> = held
                .lock()
                .expect("held lock")
                .iter()
                .filter(|(id, _)| !lease.is_lost(**id))
                .map(|(id, attempt)| (*id, *attempt))
                .collect();
            if ids.is_empty() {
                continue;
            }
            match db.extend_claims(&ids, now, now + span).await {
                Ok(renewed) => {
                    let renewed: HashSet<i64> = renewed.into_iter().collect();
                    let lost: Vec<i64> = ids
                        .iter()
                        .map(|(id, _)| *id)
                        .filter(|id| !renewed.contains(id))
                        .collect();
                    if !lost.is_empty() {
                        tracing::warn!(
                            deliveries = lost.len(),
                            "claims lost (their lease ran out): their requests do not start"
                        );
                        lease.lose(lost);
                    }
                    lease.set(now + span);
                }
                Err(e) => tracing::warn!(error = %e, "renewing a claim's lease failed"),
            }
        }
    }))
}
