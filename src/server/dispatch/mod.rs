//! The dispatcher: fires due broadcasts, then sends their deliveries in rounds. Each round
//! claims a batch under a lease, sends each delivery through its channel's adapter (at most
//! `concurrency` at a time, within the channel's rate), and records the whole batch in one
//! transaction. It reads the time through [`Clock`], so tests drive it round by round with a
//! fixed clock instead of sleeping.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt;

use crate::model::channel::{AfterDoubt, ChannelKind};
use crate::model::{BroadcastId, ChannelId, CustomerId};
use crate::server::channels::sandbox::SandboxProvider;
use crate::server::channels::{Accepted, Channel, SendError, adapter, send};
use crate::server::clock::Clock;
use crate::server::db::{Claimed, Content, Db, DbError, Fired, Outcome, Recipient};

/// How the dispatcher works; the defaults suit one instance on a small machine.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Deliveries claimed per round.
    pub batch: i64,
    /// How long a claim holds before another worker may take the delivery.
    pub lease: chrono::Duration,
    /// Provider requests in flight at once.
    pub concurrency: usize,
    /// Attempts before a transiently failing delivery fails for good.
    pub max_attempts: i64,
    /// How long a delivery whose request may have reached the provider before a crash waits
    /// for a report that names it (recording it as sent) before it is sent again; counted
    /// from its request, and from the dispatcher's start for requests made before it.
    pub reconcile: chrono::Duration,
    /// A schedule found later than this (Herald was down) is marked missed, not sent.
    pub grace: chrono::Duration,
    /// First retry delay; doubles per attempt up to `retry_max`, with jitter.
    pub retry_base: chrono::Duration,
    pub retry_max: chrono::Duration,
    /// How often an idle dispatcher looks for due broadcasts, and how often it re-reads which
    /// broadcasts are paused (other instances may have paused them).
    pub idle: Duration,
    pub halt_poll: Duration,
    /// Where attachment files are (`<data-dir>/attachments`).
    pub files: std::path::PathBuf,
    /// Signs the unsubscribe links in emails.
    pub links: crate::server::customers::unsubscribe::Links,
    /// Channels may send to loopback and private addresses (local fakes, tests); the
    /// configuration's `allow-private-endpoints`, off in production.
    pub allow_private_endpoints: bool,
    /// The circuit breaker: a broadcast pauses itself when more than `breaker_ratio` of its
    /// last `breaker_window` attempts on a channel failed (once at least `breaker_min` were
    /// made), so a broken template or a revoked token does not burn through the audience.
    pub breaker_window: usize,
    pub breaker_min: usize,
    pub breaker_ratio: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            batch: 500,
            lease: chrono::Duration::seconds(60),
            concurrency: 64,
            max_attempts: 5,
            reconcile: chrono::Duration::seconds(60),
            grace: chrono::Duration::minutes(15),
            retry_base: chrono::Duration::seconds(5),
            retry_max: chrono::Duration::minutes(10),
            idle: Duration::from_millis(250),
            halt_poll: Duration::from_millis(50),
            files: std::path::PathBuf::from("data/attachments"),
            links: Default::default(),
            // A dispatcher built by hand is a test's or the benchmark's, sending to local fakes.
            allow_private_endpoints: true,
            breaker_window: 200,
            breaker_min: 20,
            breaker_ratio: 0.2,
        }
    }
}

/// The wait before attempt `attempt + 1`: `base · 2^(attempt-1)`, capped, then scaled by a
/// jitter factor in [0.5, 1.0) drawn from `seed`, so retries of many deliveries spread out.
/// A provider's `Retry-After` wins when it asks for longer.
pub fn backoff(
    settings: &Settings,
    attempt: i64,
    retry_after: Option<Duration>,
    seed: u64,
) -> chrono::Duration {
    let exp = attempt.clamp(1, 30) - 1;
    let raw = settings
        .retry_base
        .checked_mul(1i32 << exp.min(20))
        .unwrap_or(settings.retry_max)
        .min(settings.retry_max);
    // SplitMix64 of the seed: a cheap, stable draw per delivery and attempt.
    let mut z = seed
        .wrapping_add(attempt as u64)
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    let factor = 0.5 + (z >> 11) as f64 / (1u64 << 53) as f64 / 2.0;
    let jittered =
        chrono::Duration::milliseconds((raw.num_milliseconds() as f64 * factor).round() as i64);
    match retry_after.and_then(|d| chrono::Duration::from_std(d).ok()) {
        Some(asked) if asked > jittered => asked,
        _ => jittered,
    }
}

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

/// How often early provider reports whose message got recorded meanwhile are looked for: the
/// backstop for a report or reply that missed both looks (its own after its commit, and the
/// record's after its), seen once in 254 replies while records failed for seconds on end.
const EARLY_REPORT_SWEEP: Duration = Duration::from_secs(5);

/// The longest a claim's sends should take at the slowest of its channels' rates.
const CLAIM_SPAN_MS: i64 = 2_000;

/// Send tokens granted to this process by a channel's shared bucket.
struct Grant {
    granted: u32,
    left: u32,
    at: tokio::time::Instant,
}

/// A grant not used within this goes back to the bucket (its broadcast paused, say): tokens
/// used long after they were granted would add to what other instances send at that time.
const GRANT_LIFETIME: Duration = Duration::from_millis(100);

/// The longest a sender sleeps before looking at the bucket (and at a pause) again.
const MAX_TOKEN_WAIT: Duration = Duration::from_millis(100);

/// A channel's bucket holds a fifth of a second's sends (at least one): the most that can go
/// out at once after a quiet spell, and the most one take grants.
pub fn bucket_capacity(rate: i64) -> u32 {
    (rate / 5).clamp(1, 100_000) as u32
}

/// Runs database work of a send in its own task. A send future is not polled while its batch
/// records outcomes, and on SQLite a write transaction left half-done there would hold the
/// lock the record waits for.
async fn own_task<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, DbError>> + Send + 'static,
) -> Result<T, DbError> {
    tokio::spawn(work)
        .await
        .unwrap_or_else(|e| Err(DbError::Task(e.to_string())))
}

/// The longest pause between attempts to write outcomes whose record failed.
const RECORD_RETRY_MAX: Duration = Duration::from_secs(30);

/// Until when a batch's claim holds, as far as this process knows (it extends it while the
/// batch's work is alive).
struct Lease {
    until_ms: std::sync::atomic::AtomicI64,
}

impl Lease {
    fn new(until: chrono::DateTime<chrono::Utc>) -> Self {
        Lease {
            until_ms: until.timestamp_millis().into(),
        }
    }

    fn until(&self) -> chrono::DateTime<chrono::Utc> {
        let ms = self.until_ms.load(std::sync::atomic::Ordering::SeqCst);
        chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
    }

    fn set(&self, until: chrono::DateTime<chrono::Utc>) {
        self.until_ms.store(
            until.timestamp_millis(),
            std::sync::atomic::Ordering::SeqCst,
        );
    }

    /// A third of the lease has passed since it was last set.
    fn due_for_extension(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        lease: chrono::Duration,
    ) -> bool {
        self.until() - now <= lease - lease / 3
    }

    /// At least a third of the lease is left: a request started now is recorded (or its
    /// lease extended) well before another worker could take the delivery.
    fn may_start(&self, now: chrono::DateTime<chrono::Utc>, lease: chrono::Duration) -> bool {
        self.until() - now >= lease / 3
    }
}

/// The last attempts of one broadcast on one channel: failed or not, oldest first.
#[derive(Default)]
struct Breaker {
    window: std::collections::VecDeque<bool>,
    failures: usize,
}

impl Breaker {
    /// Notes an attempt; the failures among the last `size` if they now trip the breaker
    /// (the window then starts afresh, so a resumed broadcast gets a new chance).
    fn note(&mut self, failed: bool, settings: &Settings) -> Option<(usize, usize)> {
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
        Err(SendError::OptedOut { .. } | SendError::NotNow { .. }) => false,
        Err(_) => true,
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
}

impl Dispatcher {
    pub fn new(
        db: Db,
        clock: Arc<dyn Clock>,
        sandbox: Arc<SandboxProvider>,
        settings: Settings,
    ) -> Self {
        let born = clock.now();
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
        }
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

    /// Fires the broadcasts whose time has come (or marks them missed).
    pub async fn fire_due(&self) -> Result<Vec<(i64, Fired)>, DbError> {
        use tracing::Instrument;
        let now = self.clock.now();
        let mut out = Vec::new();
        for (id, _) in self.db.due_broadcasts(now).await? {
            let fired = self
                .db
                .fire(id, now, self.settings.grace)
                .instrument(tracing::info_span!("fire", broadcast = id))
                .await?;
            if fired != Fired::Skipped {
                tracing::info!(broadcast = id, ?fired, "schedule fired");
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

    /// Notes that the request of claimed delivery `c` starts, grouped with the others that
    /// start meanwhile; false when that could not be written (the request must not start).
    async fn note_start(&self, c: &Claimed) -> bool {
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
        round.finished = self.db.finish_done(self.clock.now()).await?;
        Ok(round)
    }

    /// Sends a claimed batch and records the outcomes as they come, in chunks (every
    /// `RECORD_EVERY` outcomes or `RECORD_AFTER`), so progress shows while a slow channel
    /// works through its batch and a crash loses little.
    ///
    /// A send the provider accepted must never go out again because its record failed, so
    /// outcomes whose record failed are kept and written again (with a growing pause) until
    /// it succeeds, and the claim's lease is extended while any of its sends are in flight
    /// or waiting to be written: no other worker takes them over meanwhile. Should the
    /// extension itself keep failing, no new request starts once the lease is nearly over.
    #[tracing::instrument(
        name = "send",
        skip_all,
        fields(
            broadcast = claimed.first().map(|c| c.broadcast_id.0),
            deliveries = claimed.len()
        )
    )]
    async fn send_batch(&self, claimed: Vec<Claimed>, round: &mut Round) -> Result<(), DbError> {
        const RECORD_EVERY: usize = 200;
        const RECORD_AFTER: Duration = Duration::from_millis(250);
        let lease = Arc::new(Lease::new(self.clock.now() + self.settings.lease));
        // The claim's deliveries not recorded yet: (id, attempt).
        let mut held: std::collections::BTreeMap<i64, i64> =
            claimed.iter().map(|c| (c.id, c.attempts)).collect();
        let jobs = self.prepare(claimed, lease.clone()).await?;
        let mut outcomes =
            futures::stream::iter(jobs).buffer_unordered(self.settings.concurrency.max(1));
        let mut pending: Vec<(Claimed, Outcome)> = Vec::new();
        let mut last = tokio::time::Instant::now();
        let mut sends_done = false;
        let mut failures = 0u32;
        let mut next_try = tokio::time::Instant::now();
        loop {
            if !sends_done {
                match tokio::time::timeout(RECORD_AFTER, outcomes.next()).await {
                    Ok(Some((c, o))) => {
                        match &o {
                            Outcome::Sent { .. } => round.sent += 1,
                            Outcome::Retry { .. } => round.retried += 1,
                            Outcome::Failed { .. } | Outcome::NotNow { .. } => round.failed += 1,
                            Outcome::Released => round.released += 1,
                            Outcome::Uncertain { .. } | Outcome::Unknown { .. } => {
                                round.uncertain += 1
                            }
                        }
                        pending.push((c, o));
                    }
                    Ok(None) => sends_done = true,
                    Err(_) => {}
                }
            } else {
                // Waiting to write again, but never past the next lease extension.
                let extend_by = (self.settings.lease / 3).to_std().unwrap_or(RECORD_AFTER);
                let wake = next_try.min(tokio::time::Instant::now() + extend_by);
                tokio::time::sleep_until(wake.max(tokio::time::Instant::now())).await;
            }
            self.extend_if_due(&lease, &held).await;
            let due = !pending.is_empty()
                && (sends_done || pending.len() >= RECORD_EVERY || last.elapsed() >= RECORD_AFTER)
                && tokio::time::Instant::now() >= next_try;
            if due {
                match self.write(&pending, failures + 1).await {
                    Ok(()) => {
                        for (c, _) in &pending {
                            held.remove(&c.id);
                        }
                        pending.clear();
                        last = tokio::time::Instant::now();
                        failures = 0;
                    }
                    Err(wait) => {
                        failures += 1;
                        next_try = tokio::time::Instant::now() + wait;
                    }
                }
            }
            if sends_done && pending.is_empty() {
                return Ok(());
            }
        }
    }

    /// Extends the claim's lease when a third of it has passed and some of its deliveries are
    /// not recorded yet (in flight, or waiting to be written).
    async fn extend_if_due(&self, lease: &Lease, held: &std::collections::BTreeMap<i64, i64>) {
        let now = self.clock.now();
        if !lease.due_for_extension(now, self.settings.lease) || held.is_empty() {
            return;
        }
        let until = now + self.settings.lease;
        let ids: Vec<(i64, i64)> = held.iter().map(|(d, a)| (*d, *a)).collect();
        match self.db.extend_claims(&ids, until).await {
            Ok(_) => lease.set(until),
            Err(e) => tracing::warn!(error = %e, "extending a claim's lease failed"),
        }
    }

    /// Writes the outcomes so far. If that fails (for the `failures`-th time in a row), the
    /// caller keeps them and writes again after the pause this returns: 0.5 s doubling, at
    /// most 30 s.
    async fn write(&self, pending: &[(Claimed, Outcome)], failures: u32) -> Result<(), Duration> {
        let span = tracing::info_span!("record", outcomes = pending.len());
        let recorded =
            tracing::Instrument::instrument(self.db.record(pending, self.clock.now()), span).await;
        recorded.map_err(|e| {
            let wait = Duration::from_millis(250 << failures.min(7)).min(RECORD_RETRY_MAX);
            tracing::error!(
                error = %e,
                outcomes = pending.len(),
                failures,
                "recording sends failed; the outcomes are kept and written again in {wait:?}"
            );
            wait
        })
    }

    /// The sends of a batch, each ready to run: the message, the customer and the channel
    /// read once for the whole batch.
    async fn prepare(
        &self,
        claimed: Vec<Claimed>,
        lease: Arc<Lease>,
    ) -> Result<Vec<impl std::future::Future<Output = (Claimed, Outcome)> + '_>, DbError> {
        // What the batch needs, read once: each broadcast's message and each customer.
        let mut content: HashMap<BroadcastId, Arc<Content>> = HashMap::new();
        for c in &claimed {
            if let std::collections::hash_map::Entry::Vacant(e) = content.entry(c.broadcast_id) {
                e.insert(Arc::new(self.db.broadcast_content(c.broadcast_id.0).await?));
            }
        }
        let ids: Vec<i64> = claimed.iter().map(|c| c.customer_id.0).collect();
        let people: HashMap<CustomerId, Recipient> = self
            .db
            .recipients(&ids)
            .await?
            .into_iter()
            .map(|r| (CustomerId(r.id), r))
            .collect();
        let mut channels: HashMap<ChannelId, Option<Arc<ChannelInfo>>> = HashMap::new();
        for c in &claimed {
            if let std::collections::hash_map::Entry::Vacant(e) = channels.entry(c.channel_id) {
                e.insert(self.channel(c.channel_id).await?);
            }
        }
        // Template broadcasts that send their own text to customers inside WhatsApp's 24-hour
        // window: who of the batch wrote to each channel's number within 24 hours.
        let mut asking: HashMap<ChannelId, Vec<i64>> = HashMap::new();
        for c in &claimed {
            let free = content
                .get(&c.broadcast_id)
                .is_some_and(|b| b.template.as_ref().is_some_and(|t| t.free_text_in_window));
            if free {
                asking
                    .entry(c.channel_id)
                    .or_default()
                    .push(c.customer_id.0);
            }
        }
        let since = self.clock.now() - chrono::Duration::hours(24);
        let mut in_window: std::collections::HashSet<(ChannelId, i64)> = Default::default();
        for (channel, customers) in asking {
            for id in self.db.wrote_since(channel.0, &customers, since).await? {
                in_window.insert((channel, id));
            }
        }
        Ok(claimed
            .into_iter()
            .map(|c| {
                let body = content.get(&c.broadcast_id).cloned();
                let person = people.get(&c.customer_id).cloned();
                let channel = channels.get(&c.channel_id).cloned().flatten();
                let lease = lease.clone();
                let wrote = in_window.contains(&(c.channel_id, c.customer_id.0));
                async move {
                    let outcome = self
                        .send_one(&c, body, person, channel, &lease, wrote)
                        .await;
                    (c, outcome)
                }
            })
            .collect())
    }

    /// Waits for one send token of `channel`: from this process's grant while it lasts and
    /// is fresh, else from the bucket all instances share (so that together they keep to the
    /// channel's rate). False when the broadcast was paused or the dispatcher stopped while
    /// waiting.
    async fn send_token(&self, c: &Claimed, channel: &ChannelInfo) -> bool {
        let rate = channel.rate as f64;
        let capacity = bucket_capacity(channel.rate);
        let mut grant = channel.grant.lock().await;
        loop {
            if grant.left > 0 && grant.at.elapsed() < GRANT_LIFETIME {
                grant.left -= 1;
                return true;
            }
            if self.is_halted(c.broadcast_id) || self.is_stopped() {
                return false;
            }
            // Unused tokens go back; the next take asks for about what this process used
            // within a grant's lifetime (twice that when it used them all).
            let returned = std::mem::take(&mut grant.left);
            let used = grant.granted - returned;
            let want = if returned == 0 {
                used.saturating_mul(2)
            } else {
                used
            }
            .clamp(1, capacity);
            grant.granted = 0;
            let (db, channel_id) = (self.db.clone(), c.channel_id.0);
            match own_task(async move {
                db.take_send_tokens(channel_id, rate, capacity as f64, want, returned)
                    .await
            })
            .await
            {
                Ok((0, wait)) => {
                    tokio::time::sleep(wait.clamp(Duration::from_millis(1), MAX_TOKEN_WAIT)).await
                }
                Ok((n, _)) => {
                    *grant = Grant {
                        granted: n,
                        left: n,
                        at: tokio::time::Instant::now(),
                    }
                }
                Err(e) => {
                    tracing::warn!(error = ?e, channel = c.channel_id.0, "taking send tokens failed");
                    tokio::time::sleep(MAX_TOKEN_WAIT).await;
                }
            }
        }
    }

    #[tracing::instrument(
        name = "send_one",
        level = "debug",
        skip_all,
        fields(delivery = c.id, broadcast = c.broadcast_id.0, channel = c.channel_id.0)
    )]
    async fn send_one(
        &self,
        c: &Claimed,
        content: Option<Arc<Content>>,
        person: Option<Recipient>,
        channel: Option<Arc<ChannelInfo>>,
        lease: &Lease,
        in_window: bool,
    ) -> Outcome {
        if self.is_halted(c.broadcast_id) {
            return Outcome::Released;
        }
        let (Some(content), Some(person), Some(channel)) = (content, person, channel) else {
            return Outcome::Failed {
                reason: "The customer or the channel no longer exists.".into(),
            };
        };
        let address = match send::address(&person, channel.kind) {
            Ok(a) => a,
            Err(why) => {
                return Outcome::Failed {
                    reason: match why {
                        send::Unreachable::OptedOut => {
                            "The customer opted out before the message was sent."
                        }
                        send::Unreachable::NoAddress => {
                            "The customer no longer has an address on this channel."
                        }
                    }
                    .into(),
                };
            }
        };
        let sender = match &channel.sender {
            Ok(s) => s,
            Err(reason) => {
                return Outcome::Failed {
                    reason: reason.clone(),
                };
            }
        };
        // Paused while waiting for the rate limit: do not start the request. Nor when the
        // claim's lease could not be extended and is nearly over: another worker may soon take
        // the delivery (it is released if it is still ours).
        if !self.send_token(c, &channel).await
            || self.is_halted(c.broadcast_id)
            || self.is_stopped()
            || !lease.may_start(self.clock.now(), self.settings.lease)
        {
            return Outcome::Released;
        }
        let message = send::outgoing(
            send::Message {
                idempotency_key: delivery_key(c.id, c.retry_round),
                body: crate::model::personalize::render(&content.body, &person.name),
                attachments: &content.attachments,
                subject: &content.name,
                // Inside the 24-hour window, where the broadcast asks for it, its own text.
                template: send::template_for(
                    content
                        .template
                        .as_ref()
                        .filter(|t| !(t.free_text_in_window && in_window)),
                    &person,
                    &content.attachments,
                ),
            },
            &person,
            channel.kind,
            address,
            &self.settings.links,
        );
        // Memory for its files first (an email's wait for the attachment budget can be long):
        // the start is written after it, so that a crash leaves the delivery uncertain only
        // for the request itself.
        let held = crate::server::channels::reserve(sender.as_ref(), &message).await;
        if self.is_halted(c.broadcast_id)
            || self.is_stopped()
            || !lease.may_start(self.clock.now(), self.settings.lease)
        {
            return Outcome::Released;
        }
        // Written down before the request: should this process die before the outcome is
        // recorded, the delivery is uncertain, not pending.
        if !self.note_start(c).await {
            return Outcome::Released;
        }
        let result = send::send_reserved(
            &self.db,
            sender.as_ref(),
            person.id,
            &message,
            &held,
            self.clock.now(),
        )
        .await;
        if let Err(SendError::Systemic { reason }) = &result {
            self.pause_for(c.broadcast_id, reason.clone()).await;
        } else if let Some(why) = self.trip(c, channel.kind, &result) {
            self.pause_for(c.broadcast_id, why).await;
        }
        self.outcome(c, channel.kind, result)
    }

    /// Notes an attempt on the broadcast's circuit breaker for its channel; the pause reason
    /// when it trips.
    fn trip(
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
    async fn pause_for(&self, b: BroadcastId, reason: String) {
        self.halt(b.0);
        let (db, now) = (self.db.clone(), self.clock.now());
        let why = reason.clone();
        match own_task(async move { db.pause_for_provider(b, &why, now).await }).await {
            Ok(true) => tracing::warn!(broadcast = b.0, %reason, "broadcast paused by Herald"),
            Ok(false) => {}
            Err(e) => tracing::error!(broadcast = b.0, error = ?e, "pausing a broadcast failed"),
        }
    }

    /// What the provider's answer means for delivery `c` on a channel of `kind`: sent, failed
    /// for good, tried again later (with backoff) until its attempts run out, or — when the
    /// request may have reached the provider — what the channel's rule for doubt says.
    fn outcome(
        &self,
        c: &Claimed,
        kind: ChannelKind,
        result: Result<Accepted, SendError>,
    ) -> Outcome {
        match result {
            Err(SendError::MaybeSent { reason }) => self.doubt(c, kind, reason),
            Ok(a) => Outcome::Sent {
                provider_message_id: a.provider_message_id,
                replayed: a.replayed,
            },
            Err(
                SendError::Permanent { reason }
                | SendError::Unreachable { reason }
                | SendError::Undeliverable { reason }
                | SendError::OptedOut { reason },
            ) => Outcome::Failed { reason },
            Err(SendError::NotNow { reason, retry_in }) => Outcome::NotNow {
                reason,
                retry_from: self.clock.now()
                    + chrono::Duration::from_std(retry_in).unwrap_or(chrono::Duration::days(1)),
            },
            // The broadcast is paused: the delivery waits for the resume, as a retry.
            Err(SendError::Systemic { reason }) => Outcome::Retry {
                reason,
                at: self.clock.now(),
            },
            Err(SendError::Transient { reason, .. })
                if c.attempts >= self.settings.max_attempts =>
            {
                Outcome::Failed {
                    reason: format!("Gave up after {} attempts: {reason}", c.attempts),
                }
            }
            Err(SendError::Transient {
                reason,
                retry_after,
            }) => {
                let wait = backoff(&self.settings, c.attempts, retry_after, c.id as u64);
                Outcome::Retry {
                    reason,
                    at: self.clock.now() + wait,
                }
            }
        }
    }

    /// A request of `c` that may have reached the provider, by the channel's rule
    /// ([`AfterDoubt`]): wait for the provider's report, send again to a receiver that drops
    /// repeats, or unknown. A delivery whose answers were lost on every attempt is unknown
    /// too (a late report still records it as sent).
    fn doubt(&self, c: &Claimed, kind: ChannelKind, reason: String) -> Outcome {
        let out_of_attempts = c.attempts >= self.settings.max_attempts;
        match kind.after_doubt() {
            AfterDoubt::Reports if !out_of_attempts => Outcome::Uncertain { reason },
            AfterDoubt::ReceiverDeduplicates if !out_of_attempts => Outcome::Retry {
                at: self.clock.now() + backoff(&self.settings, c.attempts, None, c.id as u64),
                reason,
            },
            AfterDoubt::Nothing => Outcome::Unknown { reason },
            // The receiver would have dropped a repeat: it failed as a refusal does.
            AfterDoubt::ReceiverDeduplicates => Outcome::Failed {
                reason: format!("Gave up after {} attempts: {reason}", c.attempts),
            },
            AfterDoubt::Reports => Outcome::Unknown {
                reason: format!(
                    "No answer on any of {} attempts; it may have arrived. The last: {reason}",
                    c.attempts
                ),
            },
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
            while !poller.is_stopped() {
                if let Err(e) = poller.refresh_halted().await {
                    tracing::warn!(error = ?e, "reading paused broadcasts failed");
                }
                tokio::time::sleep(poller.settings.halt_poll).await;
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
        self.db.finish_done(self.clock.now()).await?;
        Ok(())
    }
}

/// The key a delivery carries to the provider: the same for every attempt, so a provider
/// that saw it already (a crash between its answer and our record) drops the repeat.
pub fn idempotency_key(delivery_id: i64) -> String {
    format!("herald-delivery-{delivery_id}")
}

/// The key of delivery `id` in "Retry failed" round `round` (0: the broadcast's own send).
pub fn delivery_key(id: i64, round: i64) -> String {
    match round {
        0 => idempotency_key(id),
        round => format!("{}-retry-{round}", idempotency_key(id)),
    }
}

/// The (delivery, round) a [`delivery_key`] names, as a provider's report returns it; only
/// a key spelled exactly as Herald spells it.
pub fn parse_delivery_key(key: &str) -> Option<(i64, i64)> {
    let rest = key.strip_prefix("herald-delivery-")?;
    let (id, round) = rest.split_once("-retry-").unwrap_or((rest, "0"));
    let (id, round): (i64, i64) = (id.parse().ok()?, round.parse().ok()?);
    (id > 0 && round >= 0 && delivery_key(id, round) == key).then_some((id, round))
}

/// A request about to start: (delivery, attempt, told whether it may).
type Start = (i64, i64, tokio::sync::oneshot::Sender<bool>);

/// Writes the starts that queue up, as many as are waiting at once in one statement (up to
/// 500), and tells each whether its request may go.
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
        let written = own_task(async move { db.mark_started(&held, now).await }).await;
        if let Err(e) = &written {
            tracing::warn!(error = ?e, sends = batch.len(), "noting sends that start failed; they wait");
        }
        for (_, _, told) in batch {
            let _ = told.send(written.is_ok());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_keys_are_read_back_exactly() {
        assert_eq!(parse_delivery_key(&delivery_key(42, 0)), Some((42, 0)));
        assert_eq!(parse_delivery_key(&delivery_key(42, 3)), Some((42, 3)));
        for bad in [
            "",
            "herald-delivery-",
            "herald-delivery-x",
            "herald-delivery-+4",
            "herald-delivery-04",
            "herald-delivery-0",
            "herald-delivery-4-retry-0",
            "herald-delivery-4-retry-",
            "other-4",
        ] {
            assert_eq!(parse_delivery_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_is_capped_and_honours_retry_after() {
        let s = Settings {
            retry_base: chrono::Duration::seconds(2),
            retry_max: chrono::Duration::seconds(60),
            ..Settings::default()
        };
        for seed in 0..200u64 {
            for attempt in 1..=8i64 {
                let full = (2i64 << (attempt - 1)).min(60) * 1000;
                let got = backoff(&s, attempt, None, seed).num_milliseconds();
                assert!(
                    got >= full / 2 && got < full,
                    "attempt {attempt}: {got} ms of {full}"
                );
            }
        }
        let spread: HashSet<i64> = (0..50u64)
            .map(|seed| backoff(&s, 3, None, seed).num_milliseconds())
            .collect();
        assert!(spread.len() > 40, "jitter spreads retries: {spread:?}");
        assert_eq!(
            backoff(&s, 1, Some(Duration::from_secs(120)), 7),
            chrono::Duration::seconds(120)
        );
        assert!(backoff(&s, 1, Some(Duration::from_millis(1)), 7) > chrono::Duration::seconds(0));
        assert!(backoff(&s, 1000, None, 1) < chrono::Duration::seconds(60));
    }
}
