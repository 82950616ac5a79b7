//! Channels as the channels page manages them.

use crate::model::{ChannelId, UserId};
use chrono::{DateTime, Utc};

use super::{Db, DbError, audit_in, on_pool};

/// A stored channel.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChannelRecord {
    pub id: i64,
    /// The stored kind (`ChannelKind::as_str`).
    pub kind: String,
    pub name: String,
    /// Settings JSON, secrets included: server side only.
    pub config: String,
    pub enabled: bool,
    pub rate_per_sec: i64,
}

impl Db {
    /// Every channel, by name.
    pub async fn channels(&self) -> Result<Vec<ChannelRecord>, DbError> {
        let rows = on_pool!(self, p => sqlx::query_as(
            "SELECT id, kind, name, config, enabled, rate_per_sec FROM channels ORDER BY name, id",
        )
        .fetch_all(p)
        .await?);
        Ok(rows)
    }

    pub async fn channel(&self, id: i64) -> Result<Option<ChannelRecord>, DbError> {
        let row = on_pool!(self, p => sqlx::query_as(
            "SELECT id, kind, name, config, enabled, rate_per_sec FROM channels WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(p)
        .await?);
        Ok(row)
    }

    /// Changes a channel's name, settings, state and rate; the audit entry says what changed
    /// by name only (`what`), never the values.
    #[allow(clippy::too_many_arguments)]
    pub async fn update_channel(
        &self,
        id: ChannelId,
        name: &str,
        config: &str,
        enabled: bool,
        rate: i64,
        actor: UserId,
        what: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let changed = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let n = sqlx::query(
                "UPDATE channels SET name = $1, config = $2, enabled = $3, rate_per_sec = $4 WHERE id = $5",
            )
            .bind(name)
            .bind(config)
            .bind(enabled)
            .bind(rate)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n > 0 {
                audit_in!(tx, now, actor, "channel", "channel", id, what)?;
            }
            tx.commit().await?;
            n > 0
        });
        Ok(changed)
    }
}
