//! Writes a batch's outcomes apart from its sends (as River's batch completer does): the
//! outcomes gather and are written every `RECORD_EVERY` or `RECORD_AFTER`, in a task of their
//! own, while the sends of the batch go on being driven. A write that fails is kept and tried
//! again with a growing pause; an accepted send is never sent again because its record failed.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use crate::server::clock::Clock;
use crate::server::db::{Claimed, Db, DbError, Outcome};

/// Outcomes written at once at most, and the longest an outcome waits to be written.
const RECORD_EVERY: usize = 200;
const RECORD_AFTER: Duration = Duration::from_millis(250);

/// The longest pause between attempts to write outcomes whose record failed.
const RECORD_RETRY_MAX: Duration = Duration::from_secs(30);

type Batch = Vec<(Claimed, Outcome)>;

pub(super) struct OutcomeWriter {
    db: Db,
    clock: Arc<dyn Clock>,
    pending: Batch,
    writing: Option<(Batch, tokio::task::JoinHandle<Result<(), DbError>>)>,
    last: Instant,
    failures: u32,
    next_try: Instant,
}

impl OutcomeWriter {
    pub(super) fn new(db: Db, clock: Arc<dyn Clock>) -> Self {
        OutcomeWriter {
            db,
            clock,
            pending: Vec::new(),
            writing: None,
            last: Instant::now(),
            failures: 0,
            next_try: Instant::now(),
        }
    }

    pub(super) fn push(&mut self, c: Claimed, o: Outcome) {
        self.pending.push((c, o));
    }

    /// A write is under way.
    pub(super) fn busy(&self) -> bool {
        self.writing.is_some()
    }

    /// Nothing waits to be written and nothing is being written.
    pub(super) fn idle(&self) -> bool {
        self.writing.is_none() && self.pending.is_empty()
    }

    /// Starts writing what waits, when it is due: enough of it, long enough, or everything
    /// is in (`all_in`); never two writes at once, nor before a failed one's pause is over.
    pub(super) fn start_if_due(&mut self, all_in: bool) {
        if self.writing.is_some() || self.pending.is_empty() || Instant::now() < self.next_try {
            return;
        }
        let due =
            all_in || self.pending.len() >= RECORD_EVERY || self.last.elapsed() >= RECORD_AFTER;
        if !due {
            return;
        }
        let batch = std::mem::take(&mut self.pending);
        let (db, now, rows) = (self.db.clone(), self.clock.now(), batch.clone());
        let failures = self.failures;
        let span = tracing::info_span!("record", outcomes = rows.len());
        let task = tokio::spawn(async move {
            record_isolating(&db, rows, now, failures)
                .instrument(span)
                .await
        });
        self.writing = Some((batch, task));
    }

    /// Waits for the write under way (forever if there is none); the deliveries it recorded.
    /// If it failed they wait for the next try, after 0.5 s doubling, at most 30 s apart.
    pub(super) async fn finished(&mut self) -> Vec<i64> {
        let Some((_, task)) = self.writing.as_mut() else {
            return std::future::pending().await;
        };
        let result = task
            .await
            .unwrap_or_else(|e| Err(DbError::Task(e.to_string())));
        let (batch, _) = self.writing.take().expect("a write was under way");
        self.last = Instant::now();
        match result {
            Ok(()) => {
                self.failures = 0;
                batch.iter().map(|(c, _)| c.id).collect()
            }
            Err(e) => {
                self.failures += 1;
                let wait = Duration::from_millis(250 << self.failures.min(7)).min(RECORD_RETRY_MAX);
                tracing::error!(
                    error = %e,
                    outcomes = batch.len(),
                    failures = self.failures,
                    "recording sends failed; the outcomes are kept and written again in {wait:?}"
                );
                self.next_try = Instant::now() + wait;
                let newer = std::mem::replace(&mut self.pending, batch);
                self.pending.extend(newer);
                Vec::new()
            }
        }
    }
}

/// Consecutive failed writes after which a lone outcome the database keeps refusing is taken
/// for poisoned (about 15 s of pauses).
const POISONED_AFTER: u32 = 5;

/// Writes `rows` in one transaction. A batch the database refuses for a reason other than a
/// passing one is written again outcome by outcome: if some go in and others do not, those
/// others are poisoned (a value the database cannot store, say) and would otherwise be
/// written again every 30 s for ever, holding the claim: each is recorded as failed with the
/// reason, so the broadcast goes on. If none goes in, the database is refusing everything for
/// now: they are kept and written again later (as a lone outcome is, until it has failed
/// `POISONED_AFTER` times in a row).
async fn record_isolating(
    db: &Db,
    rows: Vec<(Claimed, Outcome)>,
    now: chrono::DateTime<chrono::Utc>,
    failures: u32,
) -> Result<(), DbError> {
    let Err(e) = db.record(&rows, now).await else {
        return Ok(());
    };
    if e.is_transient() || (rows.len() == 1 && failures + 1 < POISONED_AFTER) {
        return Err(e);
    }
    let mut refused = Vec::new();
    for row in &rows {
        match db.record(std::slice::from_ref(row), now).await {
            Ok(()) => {}
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => refused.push((row.0.clone(), e)),
        }
    }
    if refused.len() == rows.len() && rows.len() > 1 {
        return Err(e);
    }
    for (c, e) in refused {
        let reason = crate::server::channels::summary(&format!(
            "Herald could not record what the provider answered ({e}); it may have been sent."
        ));
        tracing::error!(delivery = c.id, error = %e, "an outcome cannot be written; the delivery fails");
        db.record(&[(c, Outcome::Failed { reason })], now).await?;
    }
    Ok(())
}
