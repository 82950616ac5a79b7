//! The dispatcher: fires due broadcasts, then sends their deliveries in rounds. Each round
//! claims a batch under a lease, sends each delivery through its channel's adapter (at most
//! `concurrency` at a time, within the channel's rate) while an outcome writer records them
//! and a keeper renews the lease, each a small type in a file of its own. It reads the time
//! through [`Clock`] (the database's, in the binary), so tests drive it round by round with a
//! fixed clock instead of sleeping.

mod ab;
mod breaker;
mod deliver;
mod fallback;
mod keys;
mod lease;
mod outcome;
mod rate;
mod settings;
mod starts;
mod writer;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;

use crate::model::channel::ChannelKind;
use crate::model::{BroadcastId, ChannelId};
use crate::server::broadcast::waves;
use crate::server::channels::sandbox::SandboxProvider;
use crate::server::channels::{Channel, adapter};
use crate::server::clock::Clock;
use crate::server::db::{Claimed, Db, DbError, Fired, Outcome};

use breaker::Breaker;
pub use keys::{delivery_key, idempotency_key, parse_delivery_key};
use lease::Lease;
use rate::Grant;
pub use rate::bucket_capacity;
pub use settings::{Settings, backoff};
use starts::Start;

/// How often, on PostgreSQL, the paused broadcasts are read again unannounced.
const LOST_ANNOUNCEMENT_POLL: Duration = Duration::from_secs(5);

/// What one round did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Round {
    pub fired: Vec<(i64, Fired)>,
    pub claimed: usize,
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    pub released: usize,
    /// Answers lost after the request went out: uncertain or unknown.
    pub uncertain: usize,
    pub finished: Vec<i64>,
}

impl Round {
    fn count(&mut self, o: &Outcome) {
        match o {
            Outcome::Sent { .. } => self.sent += 1,
            Outcome::Retry { .. } => self.retried += 1,
            Outcome::Failed { .. } | Outcome::NotNow { .. } => self.failed += 1,
            Outcome::Released => self.released += 1,
            Outcome::Uncertain { .. } | Outcome::Unknown { .. } => self.uncertain += 1,
        }
    }
}

/// How often early provider reports whose message got recorded meanwhile are looked for: the
/// backstop for a report or reply that missed both looks (its own after its commit, and the
/// record's after its), seen once in 254 replies while records failed for seconds on end.
const EARLY_REPORT_SWEEP: Duration = Duration::from_secs(5);

/// The longest a claim's sends should take at the slowest of its channels' rates.
const CLAIM_SPAN_MS: i64 = 2_000;

/// Runs database work of a send in its own task: a send future dropped midway (its batch
/// stopped) must not leave an SQLite write transaction half-done, holding the lock.
async fn own_task<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, DbError>> + Send + 'static,
) -> Result<T, DbError> {
    tokio::spawn(work)
        .await
        .unwrap_or_else(|e| Err(DbError::Task(e.to_string())))
}

/// Who the workspace's `rules` let a broadcast for `purpose` reach, firing at `now`.
pub fn eligibility(
    rules: &crate::model::workspace::Rules,
    purpose: crate::model::consent::Purpose,
    now: chrono::DateTime<chrono::Utc>,
) -> crate::server::db::Eligibility {
    crate::server::db::Eligibility {
        purpose,
        consent_kinds: rules
            .consent_kinds
            .iter()
            .filter_map(|k| ChannelKind::parse(k))
            .collect(),
        cap: rules.frequency_cap.map(|c| {
            (
                i64::from(c.max),
                now - chrono::Duration::days(i64::from(c.days)),
            )
        }),
    }
}

/// A channel as the dispatcher uses it.
struct ChannelInfo {
    kind: ChannelKind,
    /// Messages per second.
    rate: i64,
    /// Send tokens this process was granted from the channel's shared bucket and not used yet.
    grant: tokio::sync::Mutex<Grant>,
    /// Built once and kept (an SMTP adapter keeps its connections open between sends).
    sender: Result<Arc<dyn Channel>, String>,
}

pub struct Dispatcher {
    db: Db,
    clock: Arc<dyn Clock>,
    sandbox: Arc<SandboxProvider>,
    settings: Settings,
    /// Broadcasts whose deliveries must not start (paused or cancelled).
    halted: RwLock<HashSet<i64>>,
    channels: Mutex<HashMap<i64, Arc<ChannelInfo>>>,
    /// The circuit breakers, by (broadcast, channel).
    breakers: Mutex<HashMap<(i64, i64), Breaker>>,
    /// Notes that provider requests start, in groups (see [`Db::mark_started`]).
    starts: std::sync::OnceLock<tokio::sync::mpsc::UnboundedSender<Start>>,
    /// When this dispatcher was made: requests made before it (by a process that died) get
    /// the whole reconciliation window from here.
    born: chrono::DateTime<chrono::Utc>,
    wake: tokio::sync::Notify,
    stopped: std::sync::atomic::AtomicBool,
    /// Broadcasts with a sender task in this process.
    active: Arc<Mutex<HashSet<i64>>>,
    /// Paces the fallback sweep.
    fallback_gate: fallback::Gate,
    /// Paces the A/B winners' check.
    ab_gate: fallback::Gate,
}

impl Dispatcher {
    pub fn new(
        db: Db,
        clock: Arc<dyn Clock>,
        sandbox: Arc<SandboxProvider>,
        settings: Settings,
    ) -> Self {
        let born = clock.now();
        let every = settings.fallback_every;
        Dispatcher {
            db,
            clock,
            sandbox,
            settings,
            halted: RwLock::new(HashSet::new()),
            channels: Mutex::new(HashMap::new()),
            breakers: Mutex::new(HashMap::new()),
            starts: std::sync::OnceLock::new(),
            born,
            wake: tokio::sync::Notify::new(),
            stopped: Default::default(),
            active: Default::default(),
            fallback_gate: fallback::Gate::new(every),
            ab_gate: fallback::Gate::new(every),
        }
    }

    /// Where attachment files are.
    pub fn files(&self) -> &crate::server::files::Files {
        &self.settings.files
    }

    /// Stops new provider requests for `broadcast` at once in this process (the pause and
    /// cancel handlers call it; other instances see the change at their next poll).
    pub fn halt(&self, broadcast: i64) {
        self.halted.write().expect("halted lock").insert(broadcast);
    }

    /// Lets `broadcast` send again here, and wakes the loop.
    pub fn resume(&self, broadcast: i64) {
        self.halted.write().expect("halted lock").remove(&broadcast);
        self.wake.notify_one();
    }

    /// Stops the loops started by [`Dispatcher::spawn`] (sends in flight finish first).
    pub fn stop(&self) {
        self.stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.wake.notify_waiters();
    }

    fn is_stopped(&self) -> bool {
        self.stopped.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// A deploy's stop: no schedule fires and no claim is made from now on; sends that have
    /// not started their request are released at once (pending again, for the next instance);
    /// the requests in flight finish and their outcomes are written. Waits for that at most
    /// `grace`; true when everything in flight was recorded within it.
    pub async fn drain(&self, grace: Duration) -> bool {
        self.stop();
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let busy = self.active.lock().expect("active lock").len();
            if busy == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    broadcasts = busy,
                    "the grace ran out with sends still in flight"
                );
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wakes the loop (a broadcast was scheduled for now).
    pub fn poke(&self) {
        self.wake.notify_one();
    }

    fn is_halted(&self, broadcast: BroadcastId) -> bool {
        self.halted
            .read()
            .expect("halted lock")
            .contains(&broadcast.0)
    }

    /// Re-reads which broadcasts are paused or cancelled.
    pub async fn refresh_halted(&self) -> Result<(), DbError> {
        let ids = self.db.halted_broadcasts().await?;
        *self.halted.write().expect("halted lock") = ids.into_iter().collect();
        Ok(())
    }

    async fn channel(&self, ChannelId(id): ChannelId) -> Result<Option<Arc<ChannelInfo>>, DbError> {
        if let Some(c) = self.channels.lock().expect("channels lock").get(&id) {
            return Ok(Some(c.clone()));
        }
        let Some(stored) = self.db.channel(id).await? else {
            return Ok(None);
        };
        let Some(kind) = ChannelKind::parse(&stored.kind) else {
            return Ok(None);
        };
        let rate = stored.rate_per_sec;
        let sender = adapter(
            id,
            kind,
            &stored.config,
            &self.sandbox,
            &self.settings.files,
            self.settings.allow_private_endpoints,
            &self.settings.links.public_url,
        )
        .map(Arc::from);
        let info = Arc::new(ChannelInfo {
            sender,
            kind,
            rate: rate.clamp(1, 100_000),
            grant: tokio::sync::Mutex::new(Grant {
                granted: 0,
                left: 0,
                at: tokio::time::Instant::now(),
            }),
        });
        self.channels
            .lock()
            .expect("channels lock")
            .insert(id, info.clone());
        Ok(Some(info))
    }

    /// Forgets cached channel settings (they were edited).
    pub fn forget_channels(&self) {
        self.channels.lock().expect("channels lock").clear();
    }

    /// Forgets channel `id`'s cached settings, adapter and rate: the next send reads them
    /// again (its requests in flight finish with the old ones).
    pub fn forget_channel(&self, id: i64) {
        self.channels.lock().expect("channels lock").remove(&id);
    }

    /// Fires the broadcasts whose time has come (or marks them missed).
    pub async fn fire_due(&self) -> Result<Vec<(i64, Fired)>, DbError> {
        use tracing::Instrument;
        let now = self.clock.now();
        let mut out = Vec::new();
        let due = self.db.due_broadcasts(now).await?;
        if due.is_empty() {
            return Ok(out);
        }
        let (rules, _) = self.db.workspace_rules().await?;
        for (id, _) in due {
            let (timing, purpose, zones) = self.db.broadcast_timing(id).await?;
            let exempt = timing.quiet_exempt.is_some();
            let plan = waves::plan(now, timing.local_at, &rules, exempt, &zones);
            let e = eligibility(&rules, purpose, now);
            let fired = self
                .db
                .fire_with(id, now, self.settings.grace, &plan, &e)
                .instrument(tracing::info_span!("fire", broadcast = id))
                .await?;
            if fired != Fired::Skipped {
                tracing::info!(broadcast = id, ?fired, "schedule fired");
                self.db.announce_broadcast(id).await;
            }
            out.push((id, fired));
        }
        Ok(out)
    }

    /// How many deliveries of a broadcast on `channels` one claim may take: the batch, or
    /// what its slowest channel sends in a third of the lease (at most two seconds), so that
    /// a slow channel's claims are sent well within their lease.
    async fn claim_size(&self, channels: &[i64]) -> Result<i64, DbError> {
        let mut size = self.settings.batch;
        // Also at most two seconds' worth: broadcasts sharing a slow channel wait for its
        // tokens in turn, claim by claim, so each moves every few seconds.
        let span_ms = (self.settings.lease.num_milliseconds() / 3).min(CLAIM_SPAN_MS);
        for c in channels {
            if let Some(info) = self.channel(ChannelId(*c)).await? {
                size = size.min((info.rate.saturating_mul(span_ms) / 1000).max(1));
            }
        }
        Ok(size)
    }

    /// Claims one batch of broadcast `b`, sends it and records it; adds to `round`.
    #[tracing::instrument(name = "claim", skip(self, channels, round), fields(broadcast = b))]
    pub async fn send_some(
        &self,
        b: i64,
        channels: &[i64],
        round: &mut Round,
    ) -> Result<usize, DbError> {
        let now = self.clock.now();
        let size = self.claim_size(channels).await?;
        let claimed = self
            .db
            .claim_broadcast(
                b,
                size,
                now,
                now + self.settings.lease,
                self.uncertain_before(now),
            )
            .await?;
        let n = claimed.len();
        round.claimed += n;
        if n > 0 {
            self.send_batch(claimed, round).await?;
        }
        Ok(n)
    }

    /// Requests started before this may be sent again when no report named them: the
    /// reconciliation window back from now, and none until this dispatcher has been up for
    /// that long (a provider retries the reports it could not post while Herald was down).
    fn uncertain_before(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> chrono::DateTime<chrono::Utc> {
        if now - self.born < self.settings.reconcile {
            chrono::DateTime::<chrono::Utc>::UNIX_EPOCH
        } else {
            now - self.settings.reconcile
        }
    }

    /// One round, for tests and benchmarks: fire what is due, send one batch of each sending
    /// broadcast, finish what is done.
    pub async fn round(&self) -> Result<Round, DbError> {
        let mut round = Round {
            fired: self.fire_due().await?,
            ..Round::default()
        };
        for (b, channels) in self.db.sending_broadcasts().await? {
            self.send_some(b, &channels, &mut round).await?;
        }
        self.db.expire_due(self.clock.now()).await?;
        self.fall_back_due().await?;
        self.decide_ab_due().await?;
        round.finished = self.db.finish_done(self.clock.now()).await?;
        Ok(round)
    }

    /// Sends a claimed batch and records the outcomes as they come. Three things run at
    /// once, none waiting for another: the sends (at most `concurrency` requests in flight,
    /// driven whatever else happens), the outcome writer (a write that takes a minute does not
    /// turn an accepted send into a timeout), and the lease's keeper (renewal never waits
    /// behind a write; a claim the database no longer renews starts nothing more).
    #[tracing::instrument(
        name = "send",
        skip_all,
        fields(
            broadcast = claimed.first().map(|c| c.broadcast_id.0),
            deliveries = claimed.len()
        )
    )]
    async fn send_batch(&self, claimed: Vec<Claimed>, round: &mut Round) -> Result<(), DbError> {
        /// What the batch's loop woke for.
        enum Event {
            Outcome(Option<(Claimed, Outcome)>),
            Written(Vec<i64>),
            Tick,
        }
        let lease = Arc::new(Lease::new(self.clock.now() + self.settings.lease));
        let held: lease::Held = Arc::new(Mutex::new(
            claimed.iter().map(|c| (c.id, c.attempts)).collect(),
        ));
        let _keeper = lease::keep(
            self.db.clone(),
            self.clock.clone(),
            self.settings.lease,
            lease.clone(),
            held.clone(),
        );
        let jobs = self.prepare(claimed, lease).await?;
        let mut outcomes =
            futures::stream::iter(jobs).buffer_unordered(self.settings.concurrency.max(1));
        let mut writer = writer::OutcomeWriter::new(self.db.clone(), self.clock.clone());
        let mut sends_done = false;
        loop {
            let event = tokio::select! {
                next = outcomes.next(), if !sends_done => Event::Outcome(next),
                written = writer.finished(), if writer.busy() => Event::Written(written),
                _ = tokio::time::sleep(Duration::from_millis(50)) => Event::Tick,
            };
            match event {
                Event::Outcome(Some((c, o))) => {
                    round.count(&o);
                    writer.push(c, o);
                }
                Event::Outcome(None) => sends_done = true,
                Event::Written(ids) => {
                    let mut held = held.lock().expect("held lock");
                    for id in ids {
                        held.remove(&id);
                    }
                }
                Event::Tick => {}
            }
            writer.start_if_due(sends_done);
            if sends_done && writer.idle() {
                return Ok(());
            }
        }
    }

    /// Runs until the process ends. A supervisor fires schedules (within `idle` of their time,
    /// sooner when poked) and finishes broadcasts; each sending broadcast gets its own sender
    /// task here, so a slow channel never holds up another broadcast. A third task re-reads
    /// which broadcasts are paused (other instances may have paused them).
    pub fn spawn(self: Arc<Self>) {
        let sweeper = self.clone();
        tokio::spawn(async move {
            while !sweeper.is_stopped() {
                if let Err(e) = sweeper.db.sweep_early_reports(sweeper.clock.now()).await {
                    tracing::warn!(error = ?e, "sweeping early provider reports failed");
                }
                tokio::time::sleep(EARLY_REPORT_SWEEP).await;
            }
        });
        let poller = self.clone();
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            // A pause on any instance is announced (LISTEN/NOTIFY between instances); the
            // list is read again then, and now and then in case an announcement was lost. On
            // SQLite (one instance) another process writing the file (a tool, a test) is not
            // announced: the list is read every `halt_poll`.
            let mut changes = poller.db.broadcast_events().await;
            let poll = match poller.db.dialect() {
                crate::server::db::Dialect::Postgres => LOST_ANNOUNCEMENT_POLL,
                crate::server::db::Dialect::Sqlite => poller.settings.halt_poll,
            };
            while !poller.is_stopped() {
                if let Err(e) = poller.refresh_halted().await {
                    tracing::warn!(error = ?e, "reading paused broadcasts failed");
                }
                if let Ok(Err(RecvError::Closed)) = tokio::time::timeout(poll, changes.recv()).await
                {
                    tokio::time::sleep(poll).await;
                }
            }
        });
        tokio::spawn(async move {
            while !self.is_stopped() {
                if let Err(e) = self.supervise().await {
                    tracing::error!(error = ?e, "dispatcher round failed");
                }
                let mut wait = self.settings.idle;
                if let Ok(Some(next)) = self.db.next_due().await {
                    let until = (next - self.clock.now()).to_std().unwrap_or_default();
                    wait = wait.min(until.max(Duration::from_millis(5)));
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = self.wake.notified() => {}
                }
            }
        });
    }

    async fn supervise(self: &Arc<Self>) -> Result<(), DbError> {
        self.fire_due().await?;
        for (b, channels) in self.db.sending_broadcasts().await? {
            if self.is_stopped() || !self.active.lock().expect("active lock").insert(b) {
                continue; // stopping, or it already has a sender here
            }
            let (me, active) = (self.clone(), self.active.clone());
            tokio::spawn(async move {
                loop {
                    if me.is_halted(BroadcastId(b)) || me.is_stopped() {
                        break;
                    }
                    let mut round = Round::default();
                    match me.send_some(b, &channels, &mut round).await {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(e) => {
                            tracing::error!(broadcast = b, error = ?e, "sending a batch failed");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                            break;
                        }
                    }
                }
                active.lock().expect("active lock").remove(&b);
                me.wake.notify_one();
            });
        }
        self.db.expire_due(self.clock.now()).await?;
        self.fall_back_now_and_then().await?;
        self.decide_ab_now_and_then().await?;
        self.db.finish_done(self.clock.now()).await?;
        Ok(())
    }
}
