//! The circuit breaker: a broadcast whose recent attempts on a channel mostly fail pauses
//! itself, with the reason, for every instance.

use super::{Dispatcher, Settings, own_task};
use crate::model::BroadcastId;
use crate::model::channel::ChannelKind;
use crate::server::channels::{Accepted, SendError};
use crate::server::db::Claimed;

/// The last attempts of one broadcast on one channel: failed or not, oldest first.
#[derive(Default)]
pub(super) struct Breaker {
    window: std::collections::VecDeque<bool>,
    failures: usize,
}

impl Breaker {
    /// Notes an attempt; the failures among the last `size` if they now trip the breaker
    /// (the window then starts afresh, so a resumed broadcast gets a new chance).
    pub(super) fn note(&mut self, failed: bool, settings: &Settings) -> Option<(usize, usize)> {
        self.window.push_back(failed);
        self.failures += usize::from(failed);
        while self.window.len() > settings.breaker_window.max(1) {
            if self.window.pop_front() == Some(true) {
                self.failures -= 1;
            }
        }
        let seen = self.window.len();
        let tripped = seen >= settings.breaker_min.max(1)
            && self.failures as f64 > settings.breaker_ratio * seen as f64;
        tripped.then(|| {
            let out = (self.failures, seen);
            *self = Breaker::default();
            out
        })
    }
}

/// Whether a refusal counts against the circuit breaker: the provider failing or refusing
/// the message, not a customer's own choice or limit, nor a rate limit Herald waits out.
fn counts_as_failure(result: &Result<Accepted, SendError>) -> bool {
    match result {
        Ok(_) => false,
        Err(SendError::Transient { retry_after, .. }) => retry_after.is_none(),
        Err(SendError::Throttled { .. }) => false,
        Err(SendError::OptedOut { .. } | SendError::NotNow { .. }) => false,
        Err(_) => true,
    }
}

impl Dispatcher {
    /// Notes an attempt on the broadcast's circuit breaker for its channel; the pause reason
    /// when it trips.
    pub(super) fn trip(
        &self,
        c: &Claimed,
        kind: ChannelKind,
        result: &Result<Accepted, SendError>,
    ) -> Option<String> {
        let failed = counts_as_failure(result);
        let (failures, seen) = self
            .breakers
            .lock()
            .expect("breakers lock")
            .entry((c.broadcast_id.0, c.channel_id.0))
            .or_default()
            .note(failed, &self.settings)?;
        let latest = match result {
            Err(e) => format!(" The latest: {e}"),
            Ok(_) => String::new(),
        };
        Some(format!(
            "Paused by Herald: {failures} of the last {seen} messages on {} failed.{latest}",
            kind.label()
        ))
    }

    /// Pauses broadcast `b` at once here (no new request starts) and for every instance,
    /// with `reason` on the list and the results page.
    pub(super) async fn pause_for(&self, b: BroadcastId, reason: String) {
        self.halt(b.0);
        let (db, now) = (self.db.clone(), self.clock.now());
        let why = reason.clone();
        match own_task(async move { db.pause_for_provider(b, &why, now).await }).await {
            Ok(true) => {
                tracing::warn!(broadcast = b.0, %reason, "broadcast paused by Herald");
                self.db.announce_broadcast(b.0).await;
            }
            Ok(false) => {}
            Err(e) => tracing::error!(broadcast = b.0, error = ?e, "pausing a broadcast failed"),
        }
    }
}
