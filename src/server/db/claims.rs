//! Claiming batches of deliveries under a lease (and extending it while the work is alive),
//! and what a claimed broadcast sends.

use chrono::{DateTime, Utc};

use super::counters::{Tally, write_tally};
use super::retry::retrying;
use super::states::{BROADCAST_SENDING, PENDING, SENDING, UNKNOWN};
use super::{Db, DbError, Dialect, begin_write, on_pool};
use crate::model::channel::AfterDoubt;
use crate::model::compose::AttachmentRef;
use crate::model::{BroadcastId, ChannelId, CustomerId};

/// A delivery a worker holds: it may send it until the lease ends.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub broadcast_id: BroadcastId,
    pub customer_id: CustomerId,
    pub channel_id: ChannelId,
    /// The attempt this claim is (1 = first). A later claim of the same delivery has a higher
    /// number, so a worker whose lease ran out cannot record over the newer one.
    pub attempts: i64,
    /// 0 for the broadcast's own send; 1, 2, … for each "Retry failed".
    pub retry_round: i64,
    /// An earlier claim's provider request may have reached the provider before its worker
    /// died, and no report named it: this claim sends it again.
    pub uncertain: bool,
    /// A message in several provider requests: the parts accepted so far, as JSON
    /// `[[part, provider id], …]`, which this claim does not send again; after its send, what
    /// to record.
    pub parts_sent: Option<String>,
    /// The variant of the message it sends (0 is A).
    pub variant: i64,
}

/// What a broadcast sends: its name (an email's subject), message and files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Content {
    pub name: String,
    pub body: String,
    pub attachments: Vec<AttachmentRef>,
    /// On WhatsApp, the approved template it sends.
    pub template: Option<crate::model::template::TemplateChoice>,
}

/// Why a delivery cut off mid-request is unknown.
const CUT_OFF: &str = "Herald stopped, or lost its claim, while this message's request was in \
     flight, and the channel cannot tell whether it arrived. It may have arrived.";

/// The claim's three statements: settling cut-off sends on channels that cannot tell
/// (`$1` broadcast, `$2` now, `$3` reason), and claiming lapsed leases, then due pending
/// deliveries (`$1` lease end, `$2` now, `$3` broadcast, `$4` limit; lapsed: `$5` the
/// uncertain-before time).
pub(super) fn claim_sql(dialect: Dialect) -> (String, String, String) {
    // An uncertain delivery on a channel that cannot tell is never taken again: it is
    // settled as unknown first (`settle`).
    let untold = format!(
        "SELECT id FROM channels WHERE kind IN ({})",
        AfterDoubt::UNTOLD_KINDS_SQL
    );
    // Two walks, each an index range: leases that ran out (`deliveries_claimed`), then
    // pending deliveries whose time has come (`deliveries_due`, by not-before time), so
    // deliveries waiting for a later wave are never read.
    let live = format!(
        "EXISTS (SELECT 1 FROM broadcasts x WHERE x.id = $3 AND x.status = {BROADCAST_SENDING} AND NOT x.paused)"
    );
    let lapsed = format!(
        "SELECT d.id FROM deliveries d WHERE d.broadcast_id = $3 AND d.state = {SENDING} \
         AND d.claimed_until < $2 \
         AND (d.started_at IS NULL OR (d.started_at < $5 AND d.channel_id NOT IN ({untold}))) \
         AND {live} ORDER BY d.id LIMIT $4"
    );
    let due = format!(
        "SELECT d.id FROM deliveries d WHERE d.broadcast_id = $3 AND d.state = {PENDING} \
         AND d.next_attempt_at <= $2 AND {live} \
         ORDER BY d.next_attempt_at, d.id LIMIT $4"
    );
    let lock = match dialect {
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR UPDATE OF d SKIP LOCKED",
    };
    let settle = format!(
        "UPDATE deliveries SET state = {UNKNOWN}, claimed_until = NULL, error = $3 \
         WHERE id IN (SELECT d.id FROM deliveries d WHERE d.broadcast_id = $1 \
           AND d.state = {SENDING} AND d.claimed_until < $2 AND d.started_at IS NOT NULL \
           AND d.channel_id IN ({untold}) ORDER BY d.id{lock}) \
         RETURNING broadcast_id"
    );
    // The SET expressions read the row as it was: `uncertain` says whether this claim
    // takes over a request that may have reached the provider.
    let update = |pick: &str| {
        format!(
            "UPDATE deliveries SET state = {SENDING}, claimed_until = $1, attempts = attempts + 1, \
             uncertain = CASE WHEN state = {SENDING} AND started_at IS NOT NULL THEN TRUE ELSE FALSE END, \
             started_at = NULL \
             WHERE id IN ({pick}{lock}) \
             RETURNING id, broadcast_id, customer_id, channel_id, attempts, retry_round, uncertain, parts_sent, variant"
        )
    };
    let (update_lapsed, update_due) = (update(&lapsed), update(&due));
    (settle, update_lapsed, update_due)
}

impl Db {
    /// Claims up to `limit` deliveries of broadcast `b` (if it is sending and not paused):
    /// pending ones whose retry time has come, and ones whose lease ran out (their worker
    /// died). A delivery whose lease ran out after its provider request started is uncertain
    /// (the provider may have it): it is taken again only if that request started before
    /// `uncertain_before` (no report named it within the reconciliation window), and then
    /// counts as sent again after a crash (`resent_count`). Each claim counts an attempt and
    /// holds a lease until `lease_until`. On PostgreSQL, rows another instance is claiming
    /// are skipped, not waited for.
    pub async fn claim_broadcast(
        &self,
        b: i64,
        limit: i64,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        uncertain_before: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, DbError> {
        let (settle, update_lapsed, update_due) = claim_sql(self.dialect());
        let mut claimed: Vec<Claimed> = on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let settled: Vec<BroadcastId> = sqlx::query_scalar(&settle)
                .bind(b)
                .bind(now)
                .bind(CUT_OFF)
                .fetch_all(&mut *tx)
                .await?;
            let mut rows: Vec<Claimed> = Vec::new();
            for (sql, lapsed) in [(&update_lapsed, true), (&update_due, false)] {
                let left = limit - rows.len() as i64;
                if left <= 0 {
                    break;
                }
                let q = sqlx::query_as(sql).bind(lease_until).bind(now).bind(b).bind(left);
                let q = if lapsed { q.bind(uncertain_before) } else { q };
                let more: Vec<Claimed> = q.fetch_all(&mut *tx).await?;
                rows.extend(more);
            }
            let resent = rows.iter().filter(|c| c.uncertain).count() as i64;
            if resent > 0 {
                sqlx::query("UPDATE broadcasts SET resent_count = resent_count + $1 WHERE id = $2")
                    .bind(resent)
                    .bind(b)
                    .execute(&mut *tx)
                    .await?;
            }
            let mut tally = Tally::default();
            for broadcast in settled {
                tally.add_unknown(broadcast, 1);
            }
            write_tally!(tx, tally);
            tx.commit().await?;
            Ok::<Vec<Claimed>, DbError>(rows)
        })?;
        claimed.sort_by_key(|c| c.id);
        Ok(claimed)
    }

    /// Extends the lease of claimed deliveries (id, attempt) still held by that claim to
    /// `until`: the worker is alive and still sending or recording them. Returns the ids
    /// extended; one missing lost its claim (its lease ran out at `now` and another worker
    /// may hold it), and none of its requests may start.
    pub async fn extend_claims(
        &self,
        held: &[(i64, i64)],
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<Vec<i64>, DbError> {
        self.set_on_claims("claimed_until", "extending a lease", held, now, until)
            .await
    }

    /// The point of no return: notes that the provider requests of claimed deliveries (id,
    /// attempt) start at `at`, for those whose claim still holds at that moment (the same
    /// attempt, still being sent, its lease not over). Should the worker die before their
    /// outcome is recorded, they are uncertain (perhaps sent), not pending. Returns the ids
    /// marked: only their requests may start.
    pub async fn mark_started(
        &self,
        held: &[(i64, i64)],
        at: DateTime<Utc>,
    ) -> Result<Vec<i64>, DbError> {
        self.set_on_claims("started_at", "noting sends that start", held, at, at)
            .await
    }

    /// Sets `column` to `value` on the deliveries (id, attempt) still held by that claim at
    /// `now` (the fencing token: the attempt, the state and the lease); their ids.
    async fn set_on_claims(
        &self,
        column: &str,
        what: &'static str,
        held: &[(i64, i64)],
        now: DateTime<Utc>,
        value: DateTime<Utc>,
    ) -> Result<Vec<i64>, DbError> {
        let dialect = self.dialect();
        let mut out = Vec::new();
        for chunk in held.chunks(500) {
            let values = (0..chunk.len())
                .map(|i| format!("(${}, ${})", 3 + 2 * i, 4 + 2 * i))
                .collect::<Vec<_>>()
                .join(",");
            // Locked by ascending id before the update (see `counters`).
            let lock = if dialect == Dialect::Postgres {
                " ORDER BY d.id FOR UPDATE OF d"
            } else {
                ""
            };
            let sql = format!(
                "WITH v(id, attempts) AS (VALUES {values}) UPDATE deliveries SET {column} = $1 \
                 WHERE id IN (SELECT d.id FROM deliveries d JOIN v ON d.id = v.id AND d.attempts = v.attempts \
                 WHERE d.state = {SENDING} AND d.claimed_until > $2{lock}) RETURNING id"
            );
            let ids: Vec<i64> = retrying(what, || {
                let sql = sql.as_str();
                async move {
                    let r = on_pool!(self, p => {
                        let mut q = sqlx::query_scalar(sql).bind(value).bind(now);
                        for (id, attempts) in chunk {
                            q = q.bind(id).bind(attempts);
                        }
                        q.fetch_all(p).await?
                    });
                    Ok::<Vec<i64>, DbError>(r)
                }
            })
            .await?;
            out.extend(ids);
        }
        Ok(out)
    }

    /// The parts of claimed delivery (id, attempt) accepted so far (`parts_sent`'s JSON),
    /// written as each is accepted while that claim holds it; never a shorter list over a
    /// longer one.
    pub async fn note_parts(&self, (id, attempt): (i64, i64), parts: &str) -> Result<(), DbError> {
        let sql = format!(
            "UPDATE deliveries SET parts_sent = $1 WHERE id = $2 AND attempts = $3 \
             AND state = {SENDING} AND (parts_sent IS NULL OR LENGTH(parts_sent) < LENGTH($1))"
        );
        retrying("noting the parts of a message", || {
            let sql = sql.as_str();
            async move {
                on_pool!(self, p => sqlx::query(sql)
                    .bind(parts)
                    .bind(id)
                    .bind(attempt)
                    .execute(p)
                    .await
                    .map(|_| ())?);
                Ok::<(), DbError>(())
            }
        })
        .await
    }

    /// A broadcast's message and files: its own (`variant` 0, A) or variant `variant`'s of
    /// its A/B test (the broadcast's own when it has no such variant).
    pub async fn broadcast_content(&self, id: i64, variant: i64) -> Result<Content, DbError> {
        type Row = (String, String, String, Option<String>, Option<String>);
        let row: Option<Row> = on_pool!(self, p => sqlx::query_as(
            "SELECT name, body, attachments, template, ab FROM broadcasts WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(p)
        .await?);
        let Some((name, body, files, template, ab)) = row else {
            return Ok(Content::default());
        };
        let mut content = Content {
            name,
            body,
            attachments: serde_json::from_str(&files).unwrap_or_default(),
            template: template.and_then(|t| serde_json::from_str(&t).ok()),
        };
        let chosen = usize::try_from(variant).ok().and_then(|n| {
            let plan: crate::model::ab::AbPlan = serde_json::from_str(ab.as_deref()?).ok()?;
            plan.variants.into_iter().nth(n.checked_sub(1)?)
        });
        if let Some(v) = chosen {
            content.body = v.body;
            content.attachments = v.attachments;
            content.template = v.template;
        }
        Ok(content)
    }
}
