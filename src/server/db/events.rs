//! Events between instances (DESIGN.md, "Events across instances"): chat messages for the
//! pages that show them live, and changed channels for every dispatcher and webhook reader.
//! In one process an in-memory broadcast channel carries them; on PostgreSQL the writer sends
//! `NOTIFY herald_chat, '<customer id>'` (or `herald_channels, '<channel id>'`) after its
//! commit, and one `LISTEN` connection per process feeds those channels, so what another
//! instance did reaches this one too.

use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::broadcast;

use super::{Db, Pool};

/// The PostgreSQL notification channel chat messages are announced on.
const CHANNEL: &str = "herald_chat";
/// The one changed channels are announced on.
const CHANNELS: &str = "herald_channels";

/// The in-process end of the events: customers whose conversation gained a message.
#[derive(Debug)]
pub struct Bus {
    chat: broadcast::Sender<i64>,
    channels: broadcast::Sender<i64>,
    /// Whether this process's `LISTEN` connection was started (PostgreSQL only).
    listening: std::sync::atomic::AtomicBool,
}

impl Default for Bus {
    fn default() -> Self {
        Bus {
            chat: broadcast::channel(1024).0,
            channels: broadcast::channel(64).0,
            listening: Default::default(),
        }
    }
}

impl Db {
    /// After a committed chat message of `customer`: on SQLite (one instance) this process's
    /// streams hear of it at once; on PostgreSQL a `NOTIFY` tells every instance's `LISTEN`
    /// connection, this one's included. A failure only delays the pages until they look on
    /// their own.
    pub(super) async fn announce_chat(&self, customer: i64) {
        self.announce(CHANNEL, &self.events.chat, customer).await
    }

    /// After a committed change of channel `id` (settings, rate, enabled): every instance's
    /// dispatcher and webhooks read it again.
    pub async fn announce_channel(&self, id: i64) {
        self.announce(CHANNELS, &self.events.channels, id).await
    }

    async fn announce(&self, topic: &str, local: &broadcast::Sender<i64>, id: i64) {
        match &self.pool {
            Pool::Sqlite(_) => {
                let _ = local.send(id);
            }
            Pool::Postgres(p) => {
                if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(topic)
                    .bind(id.to_string())
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

    async fn start_listening(&self) {
        if let Pool::Postgres(pool) = &self.pool
            && !self
                .events
                .listening
                .swap(true, std::sync::atomic::Ordering::SeqCst)
        {
            listen(pool.clone(), Arc::downgrade(&self.events)).await;
        }
    }
}

/// Starts this process's `LISTEN` connection, forwarding each notification to the bus while
/// the bus lives. A lost connection is re-made by sqlx (what was announced meanwhile is
/// missed, which is why the streams also look now and then on their own); a closed pool ends
/// it.
async fn listen(pool: sqlx::PgPool, bus: Weak<Bus>) {
    let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = ?e, "chat events: no LISTEN connection; pages will poll");
            return;
        }
    };
    if let Err(e) = listener.listen_all([CHANNEL, CHANNELS]).await {
        tracing::warn!(error = ?e, "chat events: LISTEN failed; pages will poll");
        return;
    }
    tokio::spawn(async move {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(5), listener.recv()).await;
            let Some(bus) = bus.upgrade() else {
                return;
            };
            match next {
                Ok(Ok(n)) => {
                    let to = if n.channel() == CHANNELS {
                        &bus.channels
                    } else {
                        &bus.chat
                    };
                    if let Ok(id) = n.payload().parse::<i64>() {
                        let _ = to.send(id);
                    }
                }
                Ok(Err(sqlx::Error::PoolClosed)) => return,
                Ok(Err(e)) => {
                    tracing::warn!(error = ?e, "chat events: LISTEN connection lost; reconnecting");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(_) => {} // quiet: look whether the bus still lives
            }
        }
    });
}
