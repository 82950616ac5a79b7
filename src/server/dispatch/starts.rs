//! The point of no return: before a provider request starts, the database confirms that its
//! claim still holds and notes that it starts (grouped, one statement for all that start at
//! once), so a crash afterwards leaves the delivery uncertain, not pending.

use std::collections::HashSet;
use std::sync::Arc;

use super::{Dispatcher, own_task};
use crate::server::clock::Clock;
use crate::server::db::{Claimed, Db};

/// A request about to start: (delivery, attempt, told whether it may).
pub(super) type Start = (i64, i64, tokio::sync::oneshot::Sender<bool>);

/// Writes the starts that queue up, as many as are waiting at once in one statement (up to
/// 500), and tells each whether its request may go: only if the database confirmed, at that
/// moment, that its claim (the delivery, the attempt, the lease) still holds.
async fn write_starts(
    db: Db,
    clock: Arc<dyn Clock>,
    mut queue: tokio::sync::mpsc::UnboundedReceiver<Start>,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < 500 {
            match queue.try_recv() {
                Ok(s) => batch.push(s),
                Err(_) => break,
            }
        }
        let held: Vec<(i64, i64)> = batch.iter().map(|(d, a, _)| (*d, *a)).collect();
        let (db, now) = (db.clone(), clock.now());
        let marked: HashSet<i64> = match own_task(async move { db.mark_started(&held, now).await })
            .await
        {
            Ok(ids) => ids.into_iter().collect(),
            Err(e) => {
                tracing::warn!(error = ?e, sends = batch.len(), "noting sends that start failed; they do not start");
                HashSet::new()
            }
        };
        for (id, _, told) in batch {
            let _ = told.send(marked.contains(&id));
        }
    }
}

impl Dispatcher {
    /// Notes that the request of claimed delivery `c` starts, grouped with the others that
    /// start meanwhile; false when that could not be written or the claim no longer holds
    /// (the request must not start).
    pub(super) async fn note_start(&self, c: &Claimed) -> bool {
        let queue = self.starts.get_or_init(|| {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            tokio::spawn(write_starts(self.db.clone(), self.clock.clone(), rx));
            tx
        });
        let (done, answer) = tokio::sync::oneshot::channel();
        if queue.send((c.id, c.attempts, done)).is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }
}
