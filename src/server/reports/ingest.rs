//! Group commit for provider reports. Webhook handlers verify a request, hand its reports to
//! [`Ingest::apply`] and answer only once they are stored; one writer task stores whatever
//! reports are waiting in one transaction ([`Db::apply_events`]). Under load, many requests
//! share a commit (one fsync on PostgreSQL, one write lock on SQLite) instead of each paying
//! for its own; a lone request is stored at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::model::channel::ChannelKind;
use crate::server::db::{Applied, Db, DbError, Report, ReportDetail};

/// How long a webhook may use a channel's settings read earlier (edits on the channels page
/// clear them at once; other instances see an edit within this time).
const SETTINGS_TTL: Duration = Duration::from_secs(2);

/// Most reports stored in one transaction.
const MAX_BATCH: usize = 512;

/// A send a report names by its key, not recorded perhaps: (channel, delivery, round,
/// provider id). See [`Db::reconcile_sent`].
pub type Named = (crate::model::ChannelId, i64, i64, String);

struct Job {
    reports: Vec<Report>,
    named: Vec<Named>,
    done: oneshot::Sender<Result<Vec<Applied>, String>>,
}

/// Storing the reports failed; the provider should send them again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("storing provider reports failed: {0}")]
pub struct IngestError(String);

/// A channel's kind and settings JSON, if it exists.
type StoredChannel = (ChannelKind, String);

pub struct Ingest {
    jobs: mpsc::Sender<Job>,
    db: Db,
    /// What statuses said besides the state (pricing, errors), by channel, waiting for the
    /// next write (every quarter second, many to a statement).
    details: std::sync::Arc<Mutex<Vec<(i64, ReportDetail)>>>,
    /// Channel id → (read at, kind and settings JSON), so a burst of webhooks does not read
    /// the channel once per request.
    channels: Mutex<HashMap<i64, (Instant, StoredChannel)>>,
}

impl Ingest {
    /// Starts the writer task (on the current tokio runtime).
    pub fn start(db: Db) -> Self {
        let (jobs, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(writer(db.clone(), rx));
        let details: std::sync::Arc<Mutex<Vec<(i64, ReportDetail)>>> = Default::default();
        tokio::spawn(write_details(
            db.clone(),
            std::sync::Arc::downgrade(&details),
        ));
        Ingest {
            jobs,
            db,
            details,
            channels: Mutex::new(HashMap::new()),
        }
    }

    /// A channel's kind and settings JSON, read at most every 2 s per channel. Only channels
    /// that exist are kept: requests for made-up ids (before any signature is checked) must
    /// not grow the cache.
    pub async fn channel(&self, id: i64) -> Result<Option<(ChannelKind, String)>, DbError> {
        if let Some((at, c)) = self.channels.lock().expect("channels lock").get(&id)
            && at.elapsed() < SETTINGS_TTL
        {
            return Ok(Some(c.clone()));
        }
        let Some(c) = self.db.channel_kind_and_config(id).await? else {
            self.channels.lock().expect("channels lock").remove(&id);
            return Ok(None);
        };
        self.channels
            .lock()
            .expect("channels lock")
            .insert(id, (Instant::now(), c.clone()));
        Ok(Some(c))
    }

    /// How many channels' settings are kept (tests check misses are not).
    pub fn cached_channels(&self) -> usize {
        self.channels.lock().expect("channels lock").len()
    }

    /// Forgets the settings read so far (a channel was edited).
    pub fn forget_channels(&self) {
        self.channels.lock().expect("channels lock").clear();
    }

    /// Keeps what statuses said besides the state (pricing, errors) with their deliveries,
    /// written within a quarter second, many to a statement. The webhook does not wait for it:
    /// it changes no state or counter, and a provider repeats its pricing on each status.
    pub fn note_details(&self, channel_id: i64, details: Vec<ReportDetail>) {
        if details.is_empty() {
            return;
        }
        let mut waiting = self.details.lock().expect("details lock");
        // Bounded: under a flood the oldest extras are dropped, never the reports.
        if waiting.len() < 100_000 {
            waiting.extend(details.into_iter().map(|d| (channel_id, d)));
        }
    }

    /// Stores `reports` (with whatever else is waiting) and says what each did.
    pub async fn apply(&self, reports: Vec<Report>) -> Result<Vec<Applied>, IngestError> {
        self.apply_named(reports, Vec::new()).await
    }

    /// [`Ingest::apply`], first recording the sends that reports name by their key but that
    /// are not recorded yet (a crash after the request, or the worker about to record them):
    /// one look per batch of requests finds the few still open.
    pub async fn apply_named(
        &self,
        reports: Vec<Report>,
        named: Vec<Named>,
    ) -> Result<Vec<Applied>, IngestError> {
        if reports.is_empty() && named.is_empty() {
            return Ok(Vec::new());
        }
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job {
                reports,
                named,
                done,
            })
            .await
            .map_err(|_| IngestError("the writer stopped".into()))?;
        answer
            .await
            .map_err(|_| IngestError("the writer stopped".into()))?
            .map_err(IngestError)
    }
}

/// Writes the waiting details every quarter second until the [`Ingest`] is gone.
async fn write_details(db: Db, details: std::sync::Weak<Mutex<Vec<(i64, ReportDetail)>>>) {
    loop {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let Some(details) = details.upgrade() else {
            return;
        };
        let waiting = std::mem::take(&mut *details.lock().expect("details lock"));
        drop(details);
        let mut by_channel: HashMap<i64, Vec<ReportDetail>> = HashMap::new();
        for (channel, d) in waiting {
            by_channel.entry(channel).or_default().push(d);
        }
        for (channel, details) in by_channel {
            if let Err(e) = db.note_report_details(channel, &details).await {
                tracing::warn!(error = ?e, "keeping the providers' pricing and errors failed");
            }
        }
    }
}

async fn writer(db: Db, mut rx: mpsc::Receiver<Job>) {
    while let Some(first) = rx.recv().await {
        let mut jobs = vec![first];
        let mut size = jobs[0].reports.len();
        while size < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => {
                    size += job.reports.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let all: Vec<Report> = jobs.iter().flat_map(|j| j.reports.clone()).collect();
        let mut named: HashMap<crate::model::ChannelId, Vec<(i64, i64, String)>> = HashMap::new();
        for (channel, delivery, round, pid) in jobs.iter().flat_map(|j| j.named.iter()) {
            named
                .entry(*channel)
                .or_default()
                .push((*delivery, *round, pid.clone()));
        }
        let mut reconciled = Ok(0);
        for (channel, named) in &named {
            if let Err(e) = db.reconcile_sent(*channel, named, chrono::Utc::now()).await {
                reconciled = Err(e);
                break;
            }
        }
        let applied = match reconciled {
            Ok(_) => db.apply_events(&all).await,
            Err(e) => Err(e),
        };
        match applied {
            Ok(results) => {
                let mut results = results.into_iter();
                for job in jobs {
                    let mine: Vec<Applied> = results.by_ref().take(job.reports.len()).collect();
                    let _ = job.done.send(Ok(mine));
                }
            }
            Err(e) => {
                tracing::error!(error = ?e, reports = all.len(), "storing provider reports failed");
                for job in jobs {
                    let _ = job.done.send(Err(e.to_string()));
                }
            }
        }
    }
}
