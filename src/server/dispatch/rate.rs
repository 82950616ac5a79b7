//! Each channel's rate, shared by every instance: send tokens are taken from the channel's
//! bucket in the database a few at a time, one per provider request.

use std::time::Duration;

use super::{ChannelInfo, Dispatcher, own_task};
use crate::model::ChannelId;
use crate::server::db::Claimed;

/// Send tokens granted to this process by a channel's shared bucket.
pub(super) struct Grant {
    pub(super) granted: u32,
    pub(super) left: u32,
    pub(super) at: tokio::time::Instant,
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

impl Dispatcher {
    /// The provider throttled channel `id`: every instance's sends on it wait `wait` (its
    /// shared bucket is held empty until then), and this process drops what it was granted.
    pub(super) async fn hold_channel(&self, id: ChannelId, channel: &ChannelInfo, wait: Duration) {
        {
            let mut grant = channel.grant.lock().await;
            grant.left = 0;
        }
        let db = self.db.clone();
        if let Err(e) = own_task(async move { db.hold_send_tokens(id.0, wait).await }).await {
            tracing::warn!(error = ?e, channel = id.0, "holding a throttled channel's sends failed");
        }
    }

    /// Waits for one send token of `channel`: from this process's grant while it lasts and
    /// is fresh, else from the bucket all instances share (so that together they keep to the
    /// channel's rate). False when the broadcast was paused or the dispatcher stopped while
    /// waiting.
    pub(super) async fn send_token(&self, c: &Claimed, channel: &ChannelInfo) -> bool {
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
}
