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

/// What a channel's sealed settings are bound to.
fn sealed_for(id: i64, kind: &str) -> String {
    format!("channel:{id}:{kind}")
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
        r.config = self.open_config(&r.config, r.id, &r.kind)?;
        Ok(r)
    }

    /// Channel `id`'s (of `kind`) settings as stored (sealed), opened.
    pub(super) fn open_config(&self, stored: &str, id: i64, kind: &str) -> Result<String, DbError> {
        Ok(self.sealer.open(stored, &sealed_for(id, kind))?)
    }

    /// Channel `id`'s (of `kind`) settings JSON, sealed for storing.
    pub(super) fn seal_config(&self, json: &str, id: i64, kind: &str) -> String {
        self.sealer.seal(json, &sealed_for(id, kind))
    }

    /// Seals again the settings an older Herald stored (in clear, or sealed without being
    /// bound to their channel); returns how many. Startup runs it, so no secret stays
    /// readable in the database and every value is bound to its channel.
    pub async fn seal_stored_channels(&self) -> Result<u64, DbError> {
        let rows: Vec<(i64, String, String)> = on_pool!(self, p => sqlx::query_as("SELECT id, kind, config FROM channels")
            .fetch_all(p)
            .await?);
        let mut sealed = 0;
        for (id, kind, config) in rows {
            if crate::server::db::secrets::Sealer::is_sealed(&config) {
                continue;
            }
            let plain = self.sealer.open_legacy(&config, &sealed_for(id, &kind))?;
            let update = "UPDATE channels SET config = $1 WHERE id = $2 AND config = $3";
            let value = self.seal_config(&plain, id, &kind);
            sealed += on_pool!(self, p => sqlx::query(update).bind(&value).bind(id).bind(&config).execute(p).await?.rows_affected());
        }
        Ok(sealed)
    }

    /// How many stored values are sealed (channels' settings and server keys): with a key
    /// that was just made, none of them would open.
    pub async fn count_sealed(&self) -> Result<i64, DbError> {
        let sql = "SELECT (SELECT COUNT(*) FROM channels WHERE config LIKE 'sealed:%') \
                   + (SELECT COUNT(*) FROM server_keys WHERE value LIKE 'sealed:%')";
        let n: i64 = on_pool!(self, p => sqlx::query_scalar(sql).fetch_one(p).await?);
        Ok(n)
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
            let mut tx = begin_write!(p, self.dialect());
            let kind: Option<String> = sqlx::query_scalar("SELECT kind FROM channels WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let config = self.seal_config(config, id.0, kind.as_deref().unwrap_or_default());
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

impl Db {
    /// Replaces WhatsApp channel `channel`'s templates with `templates` (a full sync), in one
    /// transaction.
    pub async fn replace_templates(
        &self,
        channel: i64,
        templates: &[crate::model::template::Template],
        now: DateTime<Utc>,
    ) -> Result<(), DbError> {
        on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            sqlx::query("DELETE FROM whatsapp_templates WHERE channel_id = $1")
                .bind(channel)
                .execute(&mut *tx)
                .await?;
            for t in templates {
                sqlx::query(
                    "INSERT INTO whatsapp_templates (channel_id, name, language, category, status, \
                     quality, parameter_format, components, synced_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                     ON CONFLICT (channel_id, name, language) DO NOTHING",
                )
                .bind(channel)
                .bind(&t.name)
                .bind(&t.language)
                .bind(&t.category)
                .bind(&t.status)
                .bind(&t.quality)
                .bind(&t.parameter_format)
                .bind(&t.components)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// WhatsApp channel `channel`'s templates, by name and language.
    pub async fn templates(
        &self,
        channel: i64,
    ) -> Result<Vec<crate::model::template::Template>, DbError> {
        type Row = (String, String, String, String, String, String, String);
        let rows: Vec<Row> = on_pool!(self, p => sqlx::query_as(
            "SELECT name, language, category, status, quality, parameter_format, components \
             FROM whatsapp_templates WHERE channel_id = $1 ORDER BY name, language",
        )
        .bind(channel)
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .map(|r| crate::model::template::Template {
                name: r.0,
                language: r.1,
                category: r.2,
                status: r.3,
                quality: r.4,
                parameter_format: r.5,
                components: r.6,
            })
            .collect())
    }

    /// A template's new status, as Meta's `message_template_status_update` webhook says
    /// (`language` empty: every language of that name). How many were changed.
    pub async fn set_template_status(
        &self,
        channel: i64,
        name: &str,
        language: &str,
        status: &str,
        now: DateTime<Utc>,
    ) -> Result<u64, DbError> {
        let n = on_pool!(self, p => sqlx::query(
            "UPDATE whatsapp_templates SET status = $1, synced_at = $2 \
             WHERE channel_id = $3 AND name = $4 AND ($5 = '' OR language = $5)",
        )
        .bind(status)
        .bind(now)
        .bind(channel)
        .bind(name)
        .bind(language)
        .execute(p)
        .await?
        .rows_affected());
        Ok(n)
    }
}

impl Db {
    /// The provider verified channel `id`'s webhook at `at` (WhatsApp's handshake).
    pub async fn note_webhook_verified(&self, id: i64, at: DateTime<Utc>) -> Result<(), DbError> {
        on_pool!(self, p => sqlx::query("UPDATE channels SET webhook_verified_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id)
            .execute(p)
            .await
            .map(|_| ())?);
        Ok(())
    }

    /// When the provider last verified channel `id`'s webhook, if ever.
    pub async fn webhook_verified_at(&self, id: i64) -> Result<Option<DateTime<Utc>>, DbError> {
        let at: Option<Option<DateTime<Utc>>> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT webhook_verified_at FROM channels WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(p)
        .await?);
        Ok(at.flatten())
    }
}
