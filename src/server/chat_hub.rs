//! Live chat streams, bounded: a person may keep [`MAX_STREAMS_PER_USER`] open at once, and
//! however many are open on one customer's chat, one poller reads that conversation's new
//! messages (once per wake-up, at most [`LIVE_BATCH`]) and hands them to all of them.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::sync::broadcast;

use crate::model::UserId;
use crate::server::clock::Clock;
use crate::server::db::{ChatRecord, Db};
use crate::server::stream_slots::{StreamSlot, StreamSlots};

/// Live streams one person may keep open (tabs, windows); more are refused.
pub const MAX_STREAMS_PER_USER: usize = 8;
/// The most messages one read takes: a stream starts with the newest of them, never a whole
/// conversation.
pub const LIVE_BATCH: i64 = 200;

/// New messages of one conversation, as its poller read them.
pub type Batch = Arc<Vec<ChatRecord>>;

pub struct ChatHub {
    pollers: tokio::sync::Mutex<HashMap<i64, broadcast::Sender<Batch>>>,
    streams: StreamSlots,
}

impl Default for ChatHub {
    fn default() -> Self {
        ChatHub {
            pollers: Default::default(),
            streams: StreamSlots::new(MAX_STREAMS_PER_USER),
        }
    }
}

impl ChatHub {
    /// A slot for one more stream of `user`, unless they have [`MAX_STREAMS_PER_USER`] open.
    pub fn open_stream(&self, user: UserId) -> Option<StreamSlot> {
        self.streams.open(user)
    }

    /// Conversations with a poller running.
    pub async fn pollers(&self) -> usize {
        self.pollers.lock().await.len()
    }

    /// Batches of `customer`'s messages stored from now on. The poller is started (or joined)
    /// before this returns, so a read made after it misses nothing the batches will not bring.
    pub async fn subscribe(
        self: &Arc<Self>,
        db: &Db,
        clock: Arc<dyn Clock>,
        customer: i64,
    ) -> broadcast::Receiver<Batch> {
        let mut pollers = self.pollers.lock().await;
        if let Some(tx) = pollers.get(&customer).filter(|tx| tx.receiver_count() > 0) {
            return tx.subscribe();
        }
        let (tx, rx) = broadcast::channel(64);
        // Woken before the starting point is read, so a message stored in between wakes it.
        let wake = db.chat_events().await;
        let start = match db.chat_messages(customer, 0, None, 1).await {
            Ok(rows) => rows.last().map_or(0, |r| r.id),
            Err(e) => {
                tracing::warn!(error = ?e, "chat: reading where a conversation stands failed");
                0
            }
        };
        pollers.insert(customer, tx.clone());
        let poller = Poller {
            hub: self.clone(),
            db: db.clone(),
            clock,
            customer,
            tx,
        };
        tokio::spawn(poller.run(wake, start));
        rx
    }
}

/// Reads one conversation's new messages for every stream open on it.
struct Poller {
    hub: Arc<ChatHub>,
    db: Db,
    clock: Arc<dyn Clock>,
    customer: i64,
    tx: broadcast::Sender<Batch>,
}

impl Poller {
    async fn run(self, mut wake: broadcast::Receiver<i64>, mut cursor: i64) {
        loop {
            wait_for_customer(&mut wake, self.customer).await;
            if self.tx.receiver_count() == 0 {
                break;
            }
            match self
                .db
                .chat_messages(self.customer, cursor, None, LIVE_BATCH)
                .await
            {
                Ok(rows) if !rows.is_empty() => {
                    cursor = rows.last().map_or(cursor, |r| r.id);
                    // Someone has the conversation open: it is seen.
                    let _ = self.db.chat_seen(self.customer, self.clock.now()).await;
                    let _ = self.tx.send(Arc::new(rows));
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = ?e, "chat events: reading messages failed"),
            }
        }
        let mut pollers = self.hub.pollers.lock().await;
        if pollers
            .get(&self.customer)
            .is_some_and(|tx| tx.same_channel(&self.tx))
        {
            pollers.remove(&self.customer);
        }
    }
}

/// How often a poller looks for new messages unasked (announcements can be lost when
/// a PostgreSQL connection drops); otherwise it looks when a message is announced.
const LOOK_ANYWAY: std::time::Duration = std::time::Duration::from_secs(5);

/// Returns when `customer`'s conversation gained a message (by any instance), or after
/// [`LOOK_ANYWAY`] in case an announcement was lost.
async fn wait_for_customer(wake: &mut tokio::sync::broadcast::Receiver<i64>, customer: i64) {
    use tokio::sync::broadcast::error::RecvError;
    let _ = tokio::time::timeout(LOOK_ANYWAY, async {
        loop {
            match wake.recv().await {
                Ok(c) if c == customer || c == crate::server::db::RESYNC => return,
                Ok(_) => {}
                // Missed some: one of them may be ours.
                Err(RecvError::Lagged(_)) => return,
                Err(RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    })
    .await;
}
