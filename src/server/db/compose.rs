//! Saving what the wizard composed: create (idempotent on the wizard's key), edit while the
//! broadcast has not started, and copy any broadcast into a new draft.

use crate::model::{BroadcastId, UserId};
use chrono::{DateTime, Utc};

use super::states::EDITABLE;
use super::{Db, DbError, audit_in, begin_write, on_pool};
use crate::model::Lifecycle;
use crate::model::compose::{AttachmentRef, ValidBroadcast};

/// Why a save did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ComposeError {
    #[error("no such broadcast")]
    NotFound,
    /// It has started (or finished, or was cancelled): it can be paused, cancelled or copied.
    #[error("this broadcast is {0}: it can no longer be edited; copy it instead")]
    Started(Lifecycle),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for ComposeError {
    fn from(e: sqlx::Error) -> Self {
        ComposeError::Db(DbError::Sqlx(e))
    }
}

fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain data serialises")
}

/// A broadcast's timing as stored: nothing for the plain one-moment kind.
fn stored_timing(t: &crate::model::compose::Timing) -> Option<String> {
    (*t != crate::model::compose::Timing::default()).then(|| json(t))
}

/// A broadcast's A/B test as stored: its JSON (none without a test) and its number of
/// variants (0 without).
fn stored_ab(ab: Option<&crate::model::ab::AbPlan>) -> (Option<String>, i64) {
    match ab {
        Some(a) => (Some(json(a)), a.count() as i64),
        None => (None, 0),
    }
}

/// Audits an admin's exemption from quiet hours, with its reason.
macro_rules! audit_exemption {
    ($tx:expr, $now:expr, $by:expr, $id:expr, $timing:expr) => {
        if let Some(reason) = &$timing.quiet_exempt {
            audit_in!(
                $tx,
                $now,
                $by,
                "quiet-hours-exempt",
                "broadcast",
                $id,
                reason.as_str()
            )?;
        }
    };
}

/// A channel broadcasts may use now.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EnabledChannel {
    pub id: i64,
    pub name: String,
    pub kind: crate::model::channel::ChannelKind,
}

impl EnabledChannel {
    /// Of `ids` (a broadcast's channels, in its order), those among `all` that are enabled,
    /// with their kinds.
    pub fn picked(
        all: &[EnabledChannel],
        ids: &[i64],
    ) -> Vec<(i64, crate::model::channel::ChannelKind)> {
        ids.iter()
            .filter_map(|id| all.iter().find(|c| c.id == *id).map(|c| (c.id, c.kind)))
            .collect()
    }
}

impl Db {
    /// Stores a new broadcast. A second call with the same `client_key` returns the first
    /// broadcast's id and changes nothing: `(id, created)`.
    pub async fn create_broadcast(
        &self,
        b: &ValidBroadcast,
        created_by: UserId,
        client_key: &str,
        now: DateTime<Utc>,
    ) -> Result<(i64, bool), ComposeError> {
        let audience = json(&b.audience);
        let channels = json(&b.channel_ids);
        let attachments = json(&b.attachments);
        let template = b.template.as_ref().map(json);
        let timing = stored_timing(&b.timing);
        let (ab, variants) = stored_ab(b.ab.as_ref());
        let created = on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let id: Option<i64> = sqlx::query_scalar(
                "INSERT INTO broadcasts (name, body, audience, channel_ids, scheduled_at, status, \
                 created_by, created_at, updated_at, client_key, attachments, template, timing, purpose, \
                 ab, ab_variants) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11, $12, $13, $14, $15) \
                 ON CONFLICT (client_key) WHERE client_key IS NOT NULL DO NOTHING RETURNING id",
            )
            .bind(&b.name)
            .bind(&b.body)
            .bind(&audience)
            .bind(&channels)
            .bind(b.scheduled_at)
            .bind(b.status)
            .bind(created_by)
            .bind(now)
            .bind(client_key)
            .bind(&attachments)
            .bind(&template)
            .bind(&timing)
            .bind(b.purpose)
            .bind(&ab)
            .bind(variants)
            .fetch_optional(&mut *tx)
            .await?;
            let result = match id {
                Some(id) => {
                    audit_in!(tx, now, created_by, "create", "broadcast", id, b.status.as_str())?;
                    audit_exemption!(tx, now, created_by, id, b.timing);
                    (id, true)
                }
                None => {
                    let id: i64 = sqlx::query_scalar("SELECT id FROM broadcasts WHERE client_key = $1")
                        .bind(client_key)
                        .fetch_one(&mut *tx)
                        .await?;
                    (id, false)
                }
            };
            tx.commit().await?;
            result
        });
        Ok(created)
    }

    /// Replaces a broadcast's content, audience, channels, time and status, if it has not
    /// started (a draft, or scheduled and not yet sending).
    pub async fn update_broadcast(
        &self,
        id: BroadcastId,
        b: &ValidBroadcast,
        by: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), ComposeError> {
        let audience = json(&b.audience);
        let channels = json(&b.channel_ids);
        let attachments = json(&b.attachments);
        let template = b.template.as_ref().map(json);
        let timing = stored_timing(&b.timing);
        let (ab, variants) = stored_ab(b.ab.as_ref());
        on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let n = sqlx::query(&format!(
                "UPDATE broadcasts SET name = $1, body = $2, audience = $3, channel_ids = $4, \
                 scheduled_at = $5, status = $6, updated_at = $7, attachments = $9, template = $10, \
                 timing = $11, purpose = $12, ab = $13, ab_variants = $14 WHERE id = $8 AND status IN ({EDITABLE}) AND started_at IS NULL",
            ))
            .bind(&b.name)
            .bind(&b.body)
            .bind(&audience)
            .bind(&channels)
            .bind(b.scheduled_at)
            .bind(b.status)
            .bind(now)
            .bind(id)
            .bind(&attachments)
            .bind(&template)
            .bind(&timing)
            .bind(b.purpose)
            .bind(&ab)
            .bind(variants)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n == 0 {
                let status: Option<Lifecycle> = sqlx::query_scalar("SELECT status FROM broadcasts WHERE id = $1")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                // Ended here and now: a transaction merely dropped is rolled back later, and
                // on SQLite the next writer could find the lock still taken.
                tx.rollback().await?;
                return Err(match status {
                    None => ComposeError::NotFound,
                    Some(s) => ComposeError::Started(s),
                });
            }
            audit_in!(tx, now, by, "edit", "broadcast", id, b.status.as_str())?;
            audit_exemption!(tx, now, by, id, b.timing);
            tx.commit().await?;
        });
        Ok(())
    }

    /// A new draft with another broadcast's content, attachments, audience and channels, and
    /// no time. Works from any broadcast, sent ones included.
    pub async fn copy_broadcast(
        &self,
        id: BroadcastId,
        by: UserId,
        now: DateTime<Utc>,
    ) -> Result<i64, ComposeError> {
        let copy = on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let copy: Option<i64> = sqlx::query_scalar(
                "INSERT INTO broadcasts (name, body, attachments, audience, channel_ids, status, \
                 created_by, copied_from, created_at, updated_at, template, purpose, ab, ab_variants) \
                 SELECT 'Copy of ' || name, body, attachments, audience, channel_ids, $4, \
                 $1, id, $2, $2, template, purpose, ab, ab_variants FROM broadcasts WHERE id = $3 RETURNING id",
            )
            .bind(by)
            .bind(now)
            .bind(id)
            .bind(Lifecycle::Draft)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(copy) = copy else {
                tx.rollback().await?;
                return Err(ComposeError::NotFound);
            };
            audit_in!(tx, now, by, "copy", "broadcast", copy, format!("from {id}"))?;
            tx.commit().await?;
            copy
        });
        Ok(copy)
    }

    /// What the wizard needs to reopen a broadcast: (content, status, copied from).
    pub async fn broadcast_for_edit(
        &self,
        id: i64,
    ) -> Result<(crate::model::compose::Compose, Lifecycle, Option<i64>), ComposeError> {
        type Row = (
            String,
            String,
            String,
            String,
            Option<DateTime<Utc>>,
            Lifecycle,
            Option<i64>,
            String,
            Option<String>,
            Option<String>,
            crate::model::consent::Purpose,
            Option<String>,
        );
        let row: Option<Row> = on_pool!(self, p => sqlx::query_as(
            "SELECT name, body, audience, channel_ids, scheduled_at, status, copied_from, \
             attachments, template, timing, purpose, ab FROM broadcasts WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(p)
        .await?);
        let (
            name,
            body,
            audience,
            channels,
            scheduled_at,
            status,
            copied_from,
            attachments,
            template,
            timing,
            purpose,
            ab,
        ) = row.ok_or(ComposeError::NotFound)?;
        Ok((
            crate::model::compose::Compose {
                name,
                body,
                // Stored by Herald itself; an unreadable value reads as the empty rule.
                audience: serde_json::from_str(&audience).unwrap_or_default(),
                channel_ids: serde_json::from_str(&channels).unwrap_or_default(),
                scheduled_at,
                attachments: serde_json::from_str(&attachments).unwrap_or_default(),
                template: template.and_then(|t| serde_json::from_str(&t).ok()),
                timing: timing
                    .and_then(|t| serde_json::from_str(&t).ok())
                    .unwrap_or_default(),
                purpose,
                ab: ab.and_then(|a| serde_json::from_str(&a).ok()),
            },
            status,
            copied_from,
        ))
    }
}

/// No broadcast's attachment list names `a.id`.
const UNREFERENCED: &str = "NOT EXISTS (SELECT 1 FROM broadcasts b WHERE b.attachments LIKE '%' || a.id || '%' \
     OR b.ab LIKE '%' || a.id || '%')";

impl Db {
    /// Records an uploaded attachment (its file is already under its id).
    pub async fn insert_attachment(
        &self,
        id: &str,
        file_name: &str,
        mime: &str,
        size: u64,
        by: UserId,
        now: DateTime<Utc>,
    ) -> Result<(), DbError> {
        on_pool!(self, p => {
            sqlx::query(
                "INSERT INTO attachments (id, file_name, mime, size, uploaded_by, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(id)
            .bind(file_name)
            .bind(mime)
            .bind(size as i64)
            .bind(by)
            .bind(now)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Attachments uploaded before `before` that no broadcast carries (ids are 32 random hex
    /// characters, so finding one in a broadcast's id list is exact).
    pub async fn unreferenced_attachments(
        &self,
        before: DateTime<Utc>,
    ) -> Result<Vec<String>, DbError> {
        let sql = format!(
            "SELECT a.id FROM attachments a WHERE a.created_at < $1 AND {UNREFERENCED} ORDER BY a.id"
        );
        let ids = on_pool!(self, p => sqlx::query_scalar(&sql).bind(before).fetch_all(p).await?);
        Ok(ids)
    }

    /// Forgets attachment `id` if still no broadcast carries it; whether it did.
    pub async fn delete_unreferenced_attachment(&self, id: &str) -> Result<bool, DbError> {
        let sql = format!("DELETE FROM attachments AS a WHERE a.id = $1 AND {UNREFERENCED}");
        let n = on_pool!(self, p => sqlx::query(&sql).bind(id).execute(p).await?.rows_affected());
        Ok(n > 0)
    }

    /// How many attachments are recorded and their bytes.
    pub async fn attachment_usage(&self) -> Result<(i64, i64), DbError> {
        let row: (i64, Option<i64>) = on_pool!(self, p => sqlx::query_as(
            "SELECT COUNT(*), CAST(SUM(size) AS BIGINT) FROM attachments",
        )
        .fetch_one(p)
        .await?);
        Ok((row.0, row.1.unwrap_or(0)))
    }

    /// The database's size in bytes (SQLite: its pages, the write-ahead log aside).
    pub async fn database_bytes(&self) -> Result<i64, DbError> {
        Ok(match &self.pool {
            super::Pool::Postgres(p) => {
                sqlx::query_scalar("SELECT pg_database_size(current_database())")
                    .fetch_one(p)
                    .await?
            }
            super::Pool::Sqlite(p) => {
                let pages: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(p).await?;
                let size: i64 = sqlx::query_scalar("PRAGMA page_size").fetch_one(p).await?;
                pages * size
            }
        })
    }

    /// An attachment's (file name, MIME type).
    pub async fn attachment(&self, id: &str) -> Result<Option<AttachmentRef>, DbError> {
        let row = on_pool!(self, p => sqlx::query_as::<_, (String, String, i64)>(
            "SELECT file_name, mime, size FROM attachments WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(p)
        .await?);
        Ok(row.map(|(name, mime, size)| AttachmentRef {
            id: id.to_string(),
            name,
            mime,
            size: size.max(0) as u64,
        }))
    }
}

impl Db {
    /// Enabled channels as (id, name, kind), by name.
    pub async fn enabled_channels(&self) -> Result<Vec<EnabledChannel>, DbError> {
        let rows = on_pool!(self, p => sqlx::query_as::<_, EnabledChannel>(
            "SELECT id, name, kind FROM channels WHERE enabled ORDER BY name, id",
        )
        .fetch_all(p)
        .await?);
        Ok(rows)
    }
}
