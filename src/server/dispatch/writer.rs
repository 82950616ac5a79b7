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

/// What a write did: the outcomes refused on their own (delivery, why), or why none went in.
type Written = Result<Vec<(i64, String)>, DbError>;

pub(super) struct OutcomeWriter {
    db: Db,
    clock: Arc<dyn Clock>,
    pending: Batch,
    writing: Option<(Batch, tokio::task::JoinHandle<Written>)>,
    last: Instant,
    failures: u32,
    next_try: Instant,
    /// Deliveries whose outcome the database refused on its own (while others of its batch
    /// went in), and how many times in a row.
    strikes: std::collections::HashMap<i64, u32>,
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
            strikes: Default::default(),
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
        let span = tracing::info_span!("record", outcomes = rows.len());
        let task =
            tokio::spawn(async move { record_isolating(&db, rows, now).instrument(span).await });
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
            Ok(refused) if refused.is_empty() => {
                self.failures = 0;
                batch.iter().map(|(c, _)| c.id).collect()
            }
            Ok(refused) => self.strike(batch, refused),
            Err(e) => {
                self.keep(batch, &e);
                Vec::new()
            }
        }
    }

    /// After a failed write: `batch` waits for the next try, after 0.5 s doubling, at most
    /// 30 s apart.
    fn keep(&mut self, batch: Batch, e: &dyn std::fmt::Display) {
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
    }

    /// Some outcomes of `batch` went in and `refused` (delivery, why) did not: those wait for
    /// the next try, and one refused `POISONED_AFTER` times in a row is recorded as failed
    /// with the reason instead. The deliveries recorded.
    fn strike(&mut self, batch: Batch, refused: Vec<(i64, String)>) -> Vec<i64> {
        let mut kept = Vec::new();
        let mut recorded = Vec::new();
        for (c, o) in batch {
            let Some((_, why)) = refused.iter().find(|(id, _)| *id == c.id) else {
                self.strikes.remove(&c.id);
                recorded.push(c.id);
                continue;
            };
            let strikes = self.strikes.entry(c.id).or_default();
            *strikes += 1;
            if *strikes >= POISONED_AFTER {
                tracing::error!(delivery = c.id, error = %why, "an outcome cannot be written; the delivery fails");
                let reason = crate::server::channels::summary(&format!(
                    "Herald could not record what the provider answered ({why}); it may have been sent."
                ));
                kept.push((c, Outcome::Failed { reason }));
            } else {
                kept.push((c, o));
            }
        }
        self.keep(kept, &"some outcomes were refused on their own");
        recorded
    }
}

/// Refusals in a row after which an outcome the database refuses on its own is taken for
/// poisoned (about 15 s of pauses).
const POISONED_AFTER: u32 = 5;

/// Writes `rows` in one transaction; the outcomes the database refused on their own (none when
/// it took them all). A batch refused for a reason other than a passing one is written again
/// outcome by outcome: those that still do not go in while others do may be poisoned (a value
/// the database cannot store) and would otherwise be written again for ever, holding the
/// claim; the writer fails one after `POISONED_AFTER` such refusals in a row. If none goes in
/// (and the batch has more than one), the database is refusing everything for now: an error.
async fn record_isolating(
    db: &Db,
    rows: Vec<(Claimed, Outcome)>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<(i64, String)>, DbError> {
    let Err(e) = db.record(&rows, now).await else {
        return Ok(Vec::new());
    };
    if e.is_transient() {
        return Err(e);
    }
    let mut refused = Vec::new();
    for row in &rows {
        match db.record(std::slice::from_ref(row), now).await {
            Ok(()) => {}
            Err(e) if e.is_transient() => return Err(e),
            Err(e) => refused.push((row.0.id, e.to_string())),
        }
    }
    if refused.len() == rows.len() && rows.len() > 1 {
        return Err(e);
    }
    Ok(refused)
}
