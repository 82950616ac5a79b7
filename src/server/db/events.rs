//! Events between instances (DESIGN.md, "Events across instances"): chat messages for the
//! pages that show them live, changed channels for every dispatcher and webhook reader, and
//! changed broadcasts (status, progress, counters, replies) for the live pages and for every
//! dispatcher's pause list. In one process an in-memory broadcast channel carries them; on
//! PostgreSQL the writer sends `NOTIFY herald_chat, '<customer id>'` (`herald_channels`,
//! `herald_broadcasts` alike) after its commit, and one `LISTEN` connection per process feeds
//! those channels, so what another instance did reaches this one too.
//!
//! The listener reconnects with backoff when its connection drops; once it listens again it
//! sends [`RESYNC`] on every channel, so whoever may have missed something reads again once.
//! Progress is announced often (every recorded batch, every batch of reports), so those
//! announcements are gathered and sent every [`GATHER`], one `NOTIFY` for many broadcasts.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::broadcast;

use super::{Db, Pool};

/// The PostgreSQL notification channel chat messages are announced on.
const CHANNEL: &str = "herald_chat";
/// The one changed channels are announced on.
const CHANNELS: &str = "herald_channels";
/// The one changed broadcasts are announced on (a comma-separated list of ids).
const BROADCASTS: &str = "herald_broadcasts";
/// Sent on every channel after the listener lost its connection and listens again: anything
/// may have been missed.
pub const RESYNC: i64 = 0;
/// How long progress announcements are gathered before they go.
const GATHER: Duration = Duration::from_millis(150);
/// The longest wait between two attempts to listen again.
const MAX_BACKOFF: Duration = Duration::from_secs(15);

/// The in-process end of the events.
#[derive(Debug)]
pub struct Bus {
    chat: broadcast::Sender<i64>,
    channels: broadcast::Sender<i64>,
    broadcasts: broadcast::Sender<i64>,
    /// Whether this process's `LISTEN` connection was started (PostgreSQL only).
    listening: std::sync::atomic::AtomicBool,
    /// Broadcasts whose progress is to be announced at the next gathering, and whether the
    /// gatherer runs.
    gathered: Mutex<(BTreeSet<i64>, bool)>,
    /// Times the listener listened again after losing its connection.
    reconnects: std::sync::atomic::AtomicU64,
}

impl Default for Bus {
    fn default() -> Self {
        Bus {
            chat: broadcast::channel(1024).0,
            channels: broadcast::channel(64).0,
            broadcasts: broadcast::channel(1024).0,
            listening: Default::default(),
            gathered: Default::default(),
            reconnects: Default::default(),
        }
    }
}

impl Db {
    /// After a committed chat message of `customer`: on SQLite (one instance) this process's
    /// streams hear of it at once; on PostgreSQL a `NOTIFY` tells every instance's `LISTEN`
    /// connection, this one's included. A failure only delays the pages until they look on
    /// their own.
    pub(super) async fn announce_chat(&self, customer: i64) {
        self.announce(CHANNEL, &self.events.chat, &customer.to_string())
            .await
    }

    /// After a committed change of channel `id` (settings, rate, enabled): every instance's
    /// dispatcher and webhooks read it again.
    pub async fn announce_channel(&self, id: i64) {
        self.announce(CHANNELS, &self.events.channels, &id.to_string())
            .await
    }

    /// After a committed change of broadcast `id` that people and dispatchers must hear of at
    /// once (paused, resumed, cancelled, started, finished).
    pub async fn announce_broadcast(&self, id: i64) {
        self.announce(BROADCASTS, &self.events.broadcasts, &id.to_string())
            .await
    }

    /// After committed progress of broadcast `id` (sends recorded, reports applied): announced
    /// with the others gathered in the next [`GATHER`].
    pub(super) fn note_progress(&self, id: i64) {
        let mut g = self.events.gathered.lock().expect("events lock");
        g.0.insert(id);
        if g.1 {
            return;
        }
        g.1 = true;
        let (db, bus) = (self.clone(), Arc::downgrade(&self.events));
        tokio::spawn(gather(db, bus));
    }

    async fn announce(&self, topic: &str, local: &broadcast::Sender<i64>, payload: &str) {
        match &self.pool {
            Pool::Sqlite(_) => {
                for id in payload.split(',').filter_map(|s| s.parse().ok()) {
                    let _ = local.send(id);
                }
            }
            Pool::Postgres(p) => {
                if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(topic)
                    .bind(payload)
                    .execute(p)
                    .await
                {
                    tracing::warn!(error = ?e, topic, "events: NOTIFY failed");
                }
            }
        }
    }

    /// A stream of the customers whose conversation gains a message from now on, from any
    /// instance. Subscribe before reading what is stored, so nothing falls in between.
    pub async fn chat_events(&self) -> broadcast::Receiver<i64> {
        let rx = self.events.chat.subscribe();
        self.start_listening().await;
        rx
    }

    /// A stream of the channels changed from now on, by any instance.
    pub async fn channel_events(&self) -> broadcast::Receiver<i64> {
        let rx = self.events.channels.subscribe();
        self.start_listening().await;
        rx
    }

    /// A stream of the broadcasts changed from now on, by any instance ([`RESYNC`]: any of
    /// them may have changed).
    pub async fn broadcast_events(&self) -> broadcast::Receiver<i64> {
        let rx = self.events.broadcasts.subscribe();
        self.start_listening().await;
        rx
    }

    /// Times this process's listener listened again after losing its connection.
    pub fn listener_reconnects(&self) -> u64 {
        self.events
            .reconnects
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    async fn start_listening(&self) {
        if let Pool::Postgres(pool) = &self.pool
            && !self
                .events
                .listening
                .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            match connect(pool).await {
                Ok(listener) => {
                    tokio::spawn(listen(pool.clone(), listener, Arc::downgrade(&self.events)));
                }
                Err(e) => {
                    tracing::warn!(error = ?e, "events: no LISTEN connection; trying again later");
                    self.events
                        .listening
                        .store(false, std::sync::atomic::Ordering::SeqCst);
                }
            }
        }
    }
}

/// Sends the gathered progress announcements every [`GATHER`] while there are any.
async fn gather(db: Db, bus: Weak<Bus>) {
    loop {
        tokio::time::sleep(GATHER).await;
        let Some(bus) = bus.upgrade() else { return };
        let ids: Vec<i64> = {
            let mut g = bus.gathered.lock().expect("events lock");
            if g.0.is_empty() {
                g.1 = false;
                return;
            }
            std::mem::take(&mut g.0).into_iter().collect()
        };
        // A notification's payload stays well under PostgreSQL's 8,000 bytes.
        for chunk in ids.chunks(500) {
            let payload = chunk
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            db.announce(BROADCASTS, &bus.broadcasts, &payload).await;
        }
    }
}

async fn connect(pool: &sqlx::PgPool) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut listener = sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen_all([CHANNEL, CHANNELS, BROADCASTS]).await?;
    Ok(listener)
}

/// Forwards each notification to the bus while the bus lives. When the connection drops it
/// connects and listens again, waiting longer after each failure (up to [`MAX_BACKOFF`]),
/// then says [`RESYNC`] on every channel; a closed pool ends it.
async fn listen(pool: sqlx::PgPool, mut listener: sqlx::postgres::PgListener, bus: Weak<Bus>) {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), listener.try_recv()).await;
        let Some(live) = bus.upgrade() else {
            return;
        };
        match next {
            Ok(Ok(Some(n))) => forward(&live, n.channel(), n.payload()),
            Ok(Err(sqlx::Error::PoolClosed)) => return,
            Ok(Ok(None)) | Ok(Err(_)) => {
                drop(live);
                tracing::warn!("events: LISTEN connection lost; listening again");
                let Some(again) = relisten(&pool, &bus).await else {
                    return;
                };
                listener = again;
                let Some(live) = bus.upgrade() else { return };
                live.reconnects
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                for to in [&live.chat, &live.channels, &live.broadcasts] {
                    let _ = to.send(RESYNC);
                }
            }
            Err(_) => {} // quiet: look whether the bus still lives
        }
    }
}

/// A new `LISTEN` connection, tried with growing waits; `None` once the bus or pool is gone.
async fn relisten(pool: &sqlx::PgPool, bus: &Weak<Bus>) -> Option<sqlx::postgres::PgListener> {
    let mut wait = Duration::from_millis(100);
    loop {
        if bus.strong_count() == 0 || pool.is_closed() {
            return None;
        }
        match connect(pool).await {
            Ok(l) => return Some(l),
            Err(e) => {
                tracing::warn!(error = ?e, ?wait, "events: listening again failed; waiting");
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// One notification to the bus channel it belongs to.
fn forward(bus: &Bus, channel: &str, payload: &str) {
    let to = match channel {
        CHANNELS => &bus.channels,
        BROADCASTS => &bus.broadcasts,
        _ => &bus.chat,
    };
    for id in payload
        .split(',')
        .filter_map(|s| s.trim().parse::<i64>().ok())
    {
        let _ = to.send(id);
    }
}
