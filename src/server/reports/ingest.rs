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
use crate::server::db::{Applied, Db, DbError, Report};

/// How long a webhook may use a channel's settings read earlier (edits on the channels page
/// clear them at once; other instances see an edit within this time).
const SETTINGS_TTL: Duration = Duration::from_secs(2);

/// Most reports stored in one transaction.
const MAX_BATCH: usize = 512;

struct Job {
    reports: Vec<Report>,
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
    /// Channel id → (read at, kind and settings JSON), so a burst of webhooks does not read
    /// the channel once per request.
    channels: Mutex<HashMap<i64, (Instant, StoredChannel)>>,
}

impl Ingest {
    /// Starts the writer task (on the current tokio runtime).
    pub fn start(db: Db) -> Self {
        let (jobs, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(writer(db.clone(), rx));
        Ingest {
            jobs,
            db,
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

    /// Stores `reports` (with whatever else is waiting) and says what each did.
    pub async fn apply(&self, reports: Vec<Report>) -> Result<Vec<Applied>, IngestError> {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        let (done, answer) = oneshot::channel();
        self.jobs
            .send(Job { reports, done })
            .await
            .map_err(|_| IngestError("the writer stopped".into()))?;
        answer
            .await
            .map_err(|_| IngestError("the writer stopped".into()))?
            .map_err(IngestError)
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
        match db.apply_events(&all).await {
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
