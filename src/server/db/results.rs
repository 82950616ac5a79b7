//! The per-recipient table of a broadcast's results (one keyset page at a time, filters as
//! index-friendly conditions) and "Retry failed".

use crate::model::{BroadcastId, ChannelId, UserId};
use chrono::{DateTime, Utc};

use super::counters::{Counter, Tally, write_tally};
use super::states::{BROADCAST_SENDING, FAILED, FINISHED, PENDING, WAITING};
use super::{Db, DbError, audit_in, begin_write, on_pool};
use crate::model::Lifecycle;
use crate::model::delivery::DeliveryState;
use crate::model::results::{ChannelRow, RecipientFilter};

/// Where a page starts: the first, after a delivery id, or before one (the previous page).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientAnchor {
    First,
    After(i64),
    Before(i64),
}

/// One delivery with its customer, channel and assignee, as the table shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RecipientRecord {
    pub delivery_id: i64,
    pub customer_id: i64,
    pub name: String,
    pub state: DeliveryState,
    pub error: Option<String>,
    pub channel: String,
    pub sent_at: Option<DateTime<Utc>>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
    pub replied_at: Option<DateTime<Utc>>,
    pub assignee: Option<String>,
    /// The variant of an A/B test it sends (0 is A; -1 waits for the winner).
    pub variant: i64,
}

/// Why "Retry failed" did nothing.
#[derive(Debug, thiserror::Error)]
pub enum RetryError {
    #[error("Only a finished broadcast's failed deliveries can be retried; this one is {0}.")]
    NotFinished(Lifecycle),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for RetryError {
    fn from(e: sqlx::Error) -> Self {
        RetryError::Db(e.into())
    }
}

/// The `WHERE` conditions (after the broadcast's) and their values, numbered from `$2`.
fn conditions(filter: &RecipientFilter) -> (String, Vec<i64>) {
    let mut sql = String::new();
    let mut binds = Vec::new();
    match filter.status.as_deref() {
        Some("waiting") => sql.push_str(&format!(" AND d.state IN ({WAITING})")),
        Some("replied") => sql.push_str(" AND d.replied_at IS NOT NULL"),
        Some(s) => {
            use DeliveryState::{Delivered, Expired, Failed, Read, Sent, Unknown};
            if let Some(state @ (Sent | Delivered | Read | Failed | Unknown | Expired)) =
                DeliveryState::parse(s)
            {
                sql.push_str(&format!(" AND d.state = '{}'", state.as_str()))
            }
        }
        None => {}
    }
    if let Some(tag) = filter.tag {
        binds.push(tag);
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM customer_tags ct WHERE ct.customer_id = d.customer_id AND ct.tag_id = ${})",
            binds.len() + 1
        ));
    }
    match filter.assignee {
        Some(0) => sql.push_str(" AND c.assignee_id IS NULL"),
        Some(a) => {
            binds.push(a);
            sql.push_str(&format!(" AND c.assignee_id = ${}", binds.len() + 1));
        }
        None => {}
    }
    if let Some(ch) = filter.channel {
        binds.push(ch);
        sql.push_str(&format!(" AND d.channel_id = ${}", binds.len() + 1));
    }
    (sql, binds)
}

impl Db {
    /// Up to `limit` recipients of `broadcast` matching `filter` from `anchor`, in delivery
    /// order, and whether more lie beyond in the direction walked.
    pub async fn recipients_page(
        &self,
        broadcast: i64,
        filter: &RecipientFilter,
        anchor: RecipientAnchor,
        limit: i64,
    ) -> Result<(Vec<RecipientRecord>, bool), DbError> {
        let (mut sql_where, mut binds) = conditions(filter);
        let order = match anchor {
            RecipientAnchor::First => "ASC",
            RecipientAnchor::After(id) => {
                binds.push(id);
                sql_where.push_str(&format!(" AND d.id > ${}", binds.len() + 1));
                "ASC"
            }
            RecipientAnchor::Before(id) => {
                binds.push(id);
                sql_where.push_str(&format!(" AND d.id < ${}", binds.len() + 1));
                "DESC"
            }
        };
        let sql = format!(
            "SELECT d.id AS delivery_id, d.customer_id, c.name, d.state, d.error, ch.name AS channel, \
             d.sent_at, d.delivered_at, d.read_at, d.replied_at, u.name AS assignee, d.variant \
             FROM deliveries d JOIN customers c ON c.id = d.customer_id \
             JOIN channels ch ON ch.id = d.channel_id \
             LEFT JOIN staff_users u ON u.id = c.assignee_id \
             WHERE d.broadcast_id = $1{sql_where} ORDER BY d.id {order} LIMIT {}",
            limit + 1
        );
        let mut rows: Vec<RecipientRecord> = on_pool!(self, p => {
            let mut q = sqlx::query_as::<_, RecipientRecord>(&sql).bind(broadcast);
            for b in &binds {
                q = q.bind(*b);
            }
            q.fetch_all(p).await?
        });
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        if order == "DESC" {
            rows.reverse();
        }
        Ok((rows, more))
    }

    /// Whether `broadcast` has a delivery matching `filter` before (`after = false`) or after
    /// delivery `id`: for the "previous"/"next" links of a page reached from the other side.
    pub async fn recipients_beyond(
        &self,
        broadcast: i64,
        filter: &RecipientFilter,
        id: i64,
        after: bool,
    ) -> Result<bool, DbError> {
        let (sql_where, mut binds) = conditions(filter);
        binds.push(id);
        let sql = format!(
            "SELECT d.id FROM deliveries d JOIN customers c ON c.id = d.customer_id \
             WHERE d.broadcast_id = $1{sql_where} AND d.id {} ${} LIMIT 1",
            if after { ">" } else { "<" },
            binds.len() + 1
        );
        let found: Option<i64> = on_pool!(self, p => {
            let mut q = sqlx::query_scalar::<_, i64>(&sql).bind(broadcast);
            for b in &binds {
                q = q.bind(*b);
            }
            q.fetch_optional(p).await?
        });
        Ok(found.is_some())
    }

    /// The channels a broadcast went out on (those with deliveries), by id.
    pub async fn broadcast_channels(&self, broadcast: i64) -> Result<Vec<(i64, String)>, DbError> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT c.id, c.name FROM broadcast_channel_counts k JOIN channels c ON c.id = k.channel_id \
             WHERE k.broadcast_id = $1 ORDER BY c.id",
        )
        .bind(broadcast)
        .fetch_all(p)
        .await?))
    }

    /// "Retry failed": the failed deliveries of a finished broadcast go back to pending as a
    /// new round (its number in the idempotency key), the counters lose them as failures, and
    /// the broadcast sends again. Deliveries that reached their recipient are not touched.
    /// Returns how many were queued again.
    pub async fn retry_failed(
        &self,
        broadcast: BroadcastId,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<i64, RetryError> {
        let dialect = self.dialect();
        let n = on_pool!(self, p => {
            let mut tx = begin_write!(p, dialect);
            // Lock order (see `counters`): the status is read without a lock and the final
            // update of the broadcast is guarded on it.
            let status: Option<Lifecycle> = sqlx::query_scalar("SELECT status FROM broadcasts WHERE id = $1")
                .bind(broadcast)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(status) = status else {
                return Err(RetryError::Db(DbError::NotFound));
            };
            if !status.finished() {
                return Err(RetryError::NotFinished(status));
            }
            // A failure the provider asked to wait for (retry_not_before) stays failed until then.
            let requeued: Vec<(ChannelId, Option<String>)> = sqlx::query_as(
                &format!("UPDATE deliveries SET state = {PENDING}, retry_round = retry_round + 1, attempts = 0, \
                 next_attempt_at = $2, claimed_until = NULL, failed_at = NULL, retry_not_before = NULL \
                 WHERE broadcast_id = $1 AND state = {FAILED} \
                 AND (retry_not_before IS NULL OR retry_not_before <= $2) RETURNING channel_id, error"),
            )
            .bind(broadcast)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            let total = requeued.len() as i64;
            if total > 0 {
                let mut tally = Tally::default();
                for (channel, reason) in requeued {
                    tally.add(broadcast, channel, Counter::Failed, -1);
                    tally.add_reason(broadcast, reason.as_deref().unwrap_or_default(), -1);
                }
                write_tally!(tx, tally);
                let reopened = sqlx::query(
                    &format!("UPDATE broadcasts SET status = {BROADCAST_SENDING}, finished_at = NULL, updated_at = $1 \
                     WHERE id = $2 AND status IN ({FINISHED})"),
                )
                .bind(now)
                .bind(broadcast)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if reopened == 0 {
                    tx.rollback().await?;
                    return Err(RetryError::NotFinished(Lifecycle::Sending));
                }
                audit_in!(tx, now, Some(actor), "retry-failed", "broadcast", broadcast, format!("{total} failed deliveries queued again"))?;
            }
            tx.commit().await?;
            Ok::<i64, RetryError>(total)
        })?;
        Ok(n)
    }
}

impl Db {
    /// Broadcast `b`'s failures that "Retry failed" leaves for later (the provider asked to
    /// wait): how many, and from when the first may go again.
    pub async fn held_failures(
        &self,
        b: i64,
        now: DateTime<Utc>,
    ) -> Result<(i64, Option<DateTime<Utc>>), DbError> {
        on_pool!(self, p => {
            let row: (i64, Option<DateTime<Utc>>) = sqlx::query_as(&format!(
                "SELECT COUNT(*), MIN(retry_not_before) FROM deliveries \
                 WHERE broadcast_id = $1 AND retry_not_before IS NOT NULL AND state = {FAILED} \
                 AND retry_not_before > $2"
            ))
            .bind(b)
            .bind(now)
            .fetch_one(p)
            .await?;
            Ok(row)
        })
    }

    /// The `limit` most recently started broadcasts, newest first.
    pub async fn recent_started(&self, limit: i64) -> Result<Vec<super::BroadcastRecord>, DbError> {
        let sql = format!(
            "SELECT {} FROM broadcasts WHERE started_at IS NOT NULL ORDER BY started_at DESC, id DESC LIMIT $1",
            super::broadcasts::COLUMNS
        );
        Ok(
            on_pool!(self, p => sqlx::query_as::<_, super::BroadcastRecord>(&sql)
            .bind(limit)
            .fetch_all(p)
            .await?),
        )
    }

    /// The per-channel counters of several broadcasts, by broadcast and channel.
    pub async fn channel_results_of(&self, ids: &[i64]) -> Result<Vec<ChannelCounts>, DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = ids
            .iter()
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let sql = format!(
            "SELECT k.broadcast_id, k.channel_id, c.name, c.kind, k.audience_total AS audience, \
             k.sent_count AS sent, k.delivered_count AS delivered, k.read_count AS read, \
             k.replied_count AS replied, k.failed_count AS failed \
             FROM broadcast_channel_counts k JOIN channels c ON c.id = k.channel_id \
             WHERE k.broadcast_id IN ({list}) ORDER BY k.broadcast_id, k.channel_id"
        );
        Ok(on_pool!(self, p => sqlx::query_as(&sql).fetch_all(p).await?))
    }
}

/// One broadcast's counters on one of its channels.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ChannelCounts {
    pub broadcast_id: i64,
    #[sqlx(flatten)]
    pub channel: ChannelRow,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_numbered_conditions() {
        let f = RecipientFilter {
            status: Some("failed".into()),
            tag: Some(3),
            assignee: Some(0),
            channel: Some(7),
        };
        let (sql, binds) = conditions(&f);
        assert_eq!(binds, vec![3, 7]);
        assert!(sql.contains("d.state = 'failed'"));
        assert!(sql.contains("ct.tag_id = $2"));
        assert!(sql.contains("c.assignee_id IS NULL"));
        assert!(sql.contains("d.channel_id = $3"));
        let (sql, binds) = conditions(&RecipientFilter::default());
        assert!(sql.is_empty() && binds.is_empty());
        // Only known statuses reach SQL (RecipientFilter::parse drops others).
        let odd = RecipientFilter {
            status: Some("x'; DROP TABLE deliveries; --".into()),
            ..Default::default()
        };
        assert!(conditions(&odd).0.is_empty());
    }
}
