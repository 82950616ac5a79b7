//! Channels as the channels page manages them.

use crate::model::{ChannelId, UserId};
use chrono::{DateTime, Utc};

use super::{Db, DbError, audit_in, begin_write, on_pool};

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
    /// Every channel, by name, its settings opened.
    pub async fn channels(&self) -> Result<Vec<ChannelRecord>, DbError> {
        let rows: Vec<ChannelRecord> = on_pool!(self, p => sqlx::query_as(
            "SELECT id, kind, name, config, enabled, rate_per_sec FROM channels ORDER BY name, id",
        )
        .fetch_all(p)
        .await?);
        rows.into_iter().map(|r| self.opened(r)).collect()
    }

    pub async fn channel(&self, id: i64) -> Result<Option<ChannelRecord>, DbError> {
        let row: Option<ChannelRecord> = on_pool!(self, p => sqlx::query_as(
            "SELECT id, kind, name, config, enabled, rate_per_sec FROM channels WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(p)
        .await?);
        row.map(|r| self.opened(r)).transpose()
    }

    fn opened(&self, mut r: ChannelRecord) -> Result<ChannelRecord, DbError> {
        r.config = self.open_config(&r.config)?;
        Ok(r)
    }

    /// A channel's settings as stored (sealed), opened.
    pub(super) fn open_config(&self, stored: &str) -> Result<String, DbError> {
        Ok(self.sealer.open(stored)?)
    }

    /// A channel's settings JSON, sealed for storing.
    pub(super) fn seal_config(&self, json: &str) -> String {
        self.sealer.seal(json)
    }

    /// Seals the settings of channels stored before sealing existed; returns how many.
    /// Startup runs it, so no secret stays readable in the database.
    pub async fn seal_stored_channels(&self) -> Result<u64, DbError> {
        let rows: Vec<(i64, String)> = on_pool!(self, p => sqlx::query_as("SELECT id, config FROM channels")
            .fetch_all(p)
            .await?);
        let mut sealed = 0;
        for (id, config) in rows {
            if crate::server::db::secrets::Sealer::is_sealed(&config) {
                continue;
            }
            let update = "UPDATE channels SET config = $1 WHERE id = $2 AND config = $3";
            let value = self.seal_config(&config);
            sealed += on_pool!(self, p => sqlx::query(update).bind(&value).bind(id).bind(&config).execute(p).await?.rows_affected());
        }
        Ok(sealed)
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
        let config = self.seal_config(config);
        let changed = on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let n = sqlx::query(
                "UPDATE channels SET name = $1, config = $2, enabled = $3, rate_per_sec = $4 WHERE id = $5",
            )
            .bind(name)
            .bind(&config)
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
