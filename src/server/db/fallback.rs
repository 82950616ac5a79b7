//! Channel fallback: a delivery that failed for good, or was not delivered within its
//! broadcast's hours on a channel that reports delivery, moves to the next picked channel that
//! reaches the customer. The row stays the person's one outcome (so the counters keep counting
//! people); the channel it left is kept in `delivery_hops`, the chain the recipients table
//! shows. A delivery that may still arrive (pending, in flight, unknown) never moves.

use chrono::{DateTime, Utc};

use super::audience::{AudienceBind, Builder, bind_audience};
use super::counters::{Counter, Tally, write_tally};
use super::eligible::Eligibility;
use super::fire::{WavePlan, enabled_of};
use super::retry::retrying;
use super::states::{
    BROADCAST_SENDING, DELIVERED, EXPIRED, FAILED, PENDING, READ, SENT, UNKNOWN, reporting_kinds,
};
use super::{Db, DbError, Dialect, begin_write, on_pool};
use crate::model::channel::ChannelKind;
use crate::model::delivery::DeliveryState;
use crate::model::{BroadcastId, ChannelId};

/// A sending broadcast with a fallback, as the sweep reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackBroadcast {
    pub id: i64,
    /// Its channels, in its order.
    pub channel_ids: Vec<i64>,
    pub hours: i64,
    pub started_at: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// One channel a delivery left: its channel, the state it ended in there, why, and what the
/// provider reported about it afterwards.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Hop {
    pub delivery_id: i64,
    pub channel_id: i64,
    pub state: String,
    pub error: Option<String>,
    pub left_at: DateTime<Utc>,
    pub late: Option<String>,
}

/// What one sweep of a broadcast did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FellBack {
    /// Deliveries handed to a later channel.
    pub moved: u64,
    /// Deliveries no later channel can take (or that need none any more).
    pub closed: u64,
}

/// The ids of channels that report delivery among `picked`, as an SQL list (`-1` for none).
fn reporting(picked: &[(i64, ChannelKind)]) -> String {
    let ids: Vec<String> = picked
        .iter()
        .filter(|(_, k)| k.reports_delivery())
        .map(|(id, _)| id.to_string())
        .collect();
    if ids.is_empty() {
        "-1".into()
    } else {
        ids.join(", ")
    }
}

/// Deliveries `d` of broadcast `$1` that may fall back now (`$2`: sent before this and not
/// delivered is overdue).
fn candidates(reporting: &str) -> String {
    format!(
        "d.broadcast_id = $1 AND d.fallback_open AND d.replied_at IS NULL AND (d.state = {FAILED} \
         OR (d.state = {SENT} AND d.sent_at <= $2 AND d.channel_id IN ({reporting})))"
    )
}

/// The deliveries of `$broadcast` among `$cond` that `$target` reaches and whose channel is one
/// of `$earlier`: (id, channel, state, error).
macro_rules! reached_by {
    ($tx:expr, $dialect:expr, $broadcast:expr, $deadline:expr, $cond:expr, $target:expr, $earlier:expr, $e:expr) => {{
        let (target, earlier): (ChannelKind, &[i64]) = ($target, $earlier);
        let mut b = Builder { dialect: $dialect, first: 3, binds: Vec::new() };
        let reach = format!("{} AND {}", b.reach(target), b.consents(target, $e));
        let earlier = earlier.iter().map(i64::to_string).collect::<Vec<_>>().join(", ");
        let sql = format!(
            "SELECT d.id, d.channel_id, d.state, d.error FROM deliveries d JOIN customers c ON c.id = d.customer_id \
             WHERE {} AND d.channel_id IN ({earlier}) AND NOT c.opted_out AND {reach} ORDER BY d.id",
            $cond
        );
        let q = sqlx::query_as::<_, (i64, i64, String, Option<String>)>(&sql).bind($broadcast).bind($deadline);
        bind_audience!(q, b).fetch_all(&mut *$tx).await?
    }};
}

/// Keeps each of `$rows` as a hop and moves it to `$target` (pending, not before its quiet
/// hours end under `$plan`); the counters follow in `$tally`.
macro_rules! move_to {
    ($tx:expr, $dialect:expr, $broadcast:expr, $now:expr, $rows:expr, $target:expr, $open:expr, $plan:expr, $tally:expr) => {{
        let (rows, target, now): (&[(i64, i64, String, Option<String>)], i64, DateTime<Utc>) = ($rows, $target, $now);
        for chunk in rows.chunks(500) {
            let ids = chunk.iter().map(|r| r.0.to_string()).collect::<Vec<_>>().join(", ");
            sqlx::query(&format!(
                "INSERT INTO delivery_hops (delivery_id, broadcast_id, channel_id, state, provider_message_id, error, sent_at, left_at) \
                 SELECT id, broadcast_id, channel_id, state, provider_message_id, error, sent_at, $1 FROM deliveries \
                 WHERE id IN ({ids})"
            ))
            .bind(now)
            .execute(&mut *$tx)
            .await?;
            let mut b = Builder { dialect: $dialect, first: 3, binds: Vec::new() };
            let wave = b.waves($plan);
            let sql = format!(
                "UPDATE deliveries SET channel_id = $1, fallback_open = $2, hops = hops + 1, state = {PENDING}, \
                 next_attempt_at = (SELECT {wave} FROM customers c WHERE c.id = deliveries.customer_id), \
                 provider_message_id = NULL, error = NULL, attempts = 0, claimed_until = NULL, \
                 sent_at = NULL, delivered_at = NULL, read_at = NULL, failed_at = NULL, started_at = NULL, \
                 retry_round = 0, retry_not_before = NULL, uncertain = FALSE, parts_sent = NULL, \
                 pricing_category = NULL, billable = NULL, provider_errors = NULL, \
                 provider_price_micros = NULL, provider_price_unit = NULL, price_reads = 0 WHERE id IN ({ids})"
            );
            let q = sqlx::query(&sql).bind(target).bind($open);
            bind_audience!(q, b).execute(&mut *$tx).await?;
        }
        for (_, from, state, error) in rows {
            let b = BroadcastId($broadcast);
            match DeliveryState::parse(state) {
                Some(DeliveryState::Failed) => {
                    $tally.add(b, ChannelId(*from), Counter::Failed, -1);
                    $tally.add_reason(b, error.as_deref().unwrap_or_default(), -1);
                }
                _ => $tally.add(b, ChannelId(*from), Counter::Sent, -1),
            }
            $tally.add_audience(b, ChannelId(*from), -1);
            $tally.add_audience(b, ChannelId(target), 1);
        }
        rows.len() as u64
    }};
}

impl Db {
    /// Sending, unpaused broadcasts with a fallback.
    pub async fn fallback_broadcasts(&self) -> Result<Vec<FallbackBroadcast>, DbError> {
        type Row = (
            i64,
            String,
            i64,
            Option<DateTime<Utc>>,
            Option<DateTime<Utc>>,
        );
        let rows: Vec<Row> = on_pool!(self, p => sqlx::query_as(
            &format!("SELECT id, channel_ids, fallback_hours, started_at, expires_at FROM broadcasts \
             WHERE status = {BROADCAST_SENDING} AND NOT paused AND fallback_hours IS NOT NULL ORDER BY id"),
        )
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .map(
                |(id, channels, hours, started, expires_at)| FallbackBroadcast {
                    id,
                    channel_ids: serde_json::from_str(&channels).unwrap_or_default(),
                    hours,
                    started_at: started.unwrap_or_default(),
                    expires_at,
                },
            )
            .collect())
    }

    /// Hands the deliveries of broadcast `b` that may fall back at `now` to the next of its
    /// channels (in its order, enabled) that reaches each customer under `e`, not before
    /// their quiet hours end under `plan`; closes those no later channel takes. One
    /// transaction (run again on a passing failure), so two instances never move one twice.
    pub async fn fall_back(
        &self,
        b: &FallbackBroadcast,
        now: DateTime<Utc>,
        plan: &WavePlan,
        e: &Eligibility,
    ) -> Result<FellBack, DbError> {
        retrying("falling back to the next channel", move || {
            self.fall_back_once(b, now, plan, e)
        })
        .await
    }

    /// Whether anything of broadcast `b` is due to fall back at `now` (before the channels
    /// that reach each one are known).
    pub async fn may_fall_back_now(
        &self,
        b: &FallbackBroadcast,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let deadline = now - chrono::Duration::hours(b.hours);
        let list = b.channel_ids.iter().map(i64::to_string).collect::<Vec<_>>();
        let reporting = format!(
            "SELECT id FROM channels WHERE id IN ({}) AND kind IN ({})",
            if list.is_empty() {
                "-1".to_string()
            } else {
                list.join(", ")
            },
            reporting_kinds()
        );
        let found: Option<i64> = on_pool!(self, p => sqlx::query_scalar(&format!(
            "SELECT d.id FROM deliveries d WHERE {} LIMIT 1",
            candidates(&reporting)
        ))
        .bind(b.id)
        .bind(deadline)
        .fetch_optional(p)
        .await?);
        Ok(found.is_some())
    }

    async fn fall_back_once(
        &self,
        b: &FallbackBroadcast,
        now: DateTime<Utc>,
        plan: &WavePlan,
        e: &Eligibility,
    ) -> Result<FellBack, DbError> {
        let dialect = self.dialect();
        let deadline = now - chrono::Duration::hours(b.hours);
        let expired = b.expires_at.is_some_and(|t| t <= now);
        on_pool!(self, p => {
            let mut tx = begin_write!(p, dialect);
            let picked = enabled_of!(tx, b.channel_ids.iter().copied());
            let cond = candidates(&reporting(&picked));
            if dialect == Dialect::Postgres {
                // Every row this may move, locked first by ascending id (the lock order).
                sqlx::query(&format!("SELECT d.id FROM deliveries d WHERE {cond} ORDER BY d.id FOR UPDATE"))
                    .bind(b.id).bind(deadline).fetch_all(&mut *tx).await?;
            }
            let mut tally = Tally::default();
            let mut done = FellBack::default();
            for k in 1..picked.len() {
                if expired {
                    break;
                }
                let (target, kind) = picked[k];
                let earlier: Vec<i64> = picked[..k].iter().map(|(id, _)| *id).collect();
                let rows = reached_by!(tx, dialect, b.id, deadline, cond, kind, &earlier, e);
                let open = k + 1 < picked.len();
                done.moved += move_to!(tx, dialect, b.id, now, &rows, target, open, plan, tally);
            }
            // Past its expiry (`$3`) nothing falls back any more; before it, what no later
            // channel took, and what needs no fallback.
            done.closed = sqlx::query(&format!(
                "UPDATE deliveries SET fallback_open = FALSE WHERE broadcast_id = $1 AND fallback_open \
                 AND ($3 OR state IN ({FAILED}, {DELIVERED}, {READ}, {UNKNOWN}, {EXPIRED}) OR (state = {SENT} AND sent_at <= $2))"
            ))
            .bind(b.id)
            .bind(deadline)
            .bind(expired)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            write_tally!(tx, tally);
            tx.commit().await?;
            if done.moved > 0 {
                self.note_progress(b.id);
            }
            Ok(done)
        })
    }

    /// The channels the deliveries `ids` left, in order, by delivery.
    pub async fn hops_of(&self, ids: &[i64]) -> Result<Vec<Hop>, DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = ids
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        Ok(on_pool!(self, p => sqlx::query_as(&format!(
            "SELECT delivery_id, channel_id, state, error, left_at, late FROM delivery_hops \
             WHERE delivery_id IN ({list}) ORDER BY delivery_id, id"
        ))
        .fetch_all(p)
        .await?))
    }

    /// Per channel of broadcast `b`: (channel, deliveries that left it, deliveries that came
    /// to it by fallback, of those the ones reached — delivered, or accepted where the channel
    /// reports no delivery).
    pub async fn fallback_by_channel(&self, b: i64) -> Result<Vec<(i64, i64, i64, i64)>, DbError> {
        let left: Vec<(i64, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT channel_id, COUNT(*) FROM delivery_hops WHERE broadcast_id = $1 GROUP BY channel_id",
        )
        .bind(b)
        .fetch_all(p)
        .await?);
        let came: Vec<(i64, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT channel_id, COUNT(*) FROM deliveries WHERE broadcast_id = $1 AND hops > 0 GROUP BY channel_id",
        )
        .bind(b)
        .fetch_all(p)
        .await?);
        let reached = self.fallback_reached(b).await?;
        let mut out: std::collections::BTreeMap<i64, (i64, i64, i64)> = Default::default();
        for (c, n) in left {
            out.entry(c).or_default().0 = n;
        }
        for (c, n) in came {
            out.entry(c).or_default().1 = n;
        }
        for (c, n) in reached {
            out.entry(c).or_default().2 = n;
        }
        Ok(out.into_iter().map(|(c, (l, f, r))| (c, l, f, r)).collect())
    }

    /// Per channel of broadcast `b`, the deliveries that came by fallback and reached the
    /// customer (delivered, or accepted on a channel that reports no delivery).
    async fn fallback_reached(&self, b: i64) -> Result<Vec<(i64, i64)>, DbError> {
        let kinds = reporting_kinds();
        Ok(on_pool!(self, p => sqlx::query_as(&format!(
            "SELECT d.channel_id, COUNT(*) FROM deliveries d JOIN channels ch ON ch.id = d.channel_id \
             WHERE d.broadcast_id = $1 AND d.hops > 0 AND (d.state IN ({DELIVERED}, {READ}) \
             OR (d.state = {SENT} AND ch.kind NOT IN ({kinds}))) GROUP BY d.channel_id"
        ))
        .bind(b)
        .fetch_all(p)
        .await?))
    }
}

/// Of `$reports` whose delivery was not found (`$results` says Unknown), the ones about a
/// message a delivery left behind when it fell back: noted on its hop ("then reported
/// delivered") and counted as applied, so they are not kept as early reports. How many.
macro_rules! note_late_hops {
    ($tx:expr, $reports:expr, $results:expr) => {{
        use $crate::server::db::{Applied, DeliveryEvent};
        let (reports, results): (&[$crate::server::db::Report], &mut Vec<Applied>) =
            ($reports, $results);
        let mut noted = 0u64;
        for (r, a) in reports.iter().zip(results.iter_mut()) {
            if *a != Applied::Unknown {
                continue;
            }
            let late = match &r.event {
                DeliveryEvent::Delivered => "delivered",
                DeliveryEvent::Read => "read",
                DeliveryEvent::Failed { .. } => "failed",
                DeliveryEvent::Replied { .. } => "a reply",
            };
            // "delivered" after a read or a reply says nothing new.
            let n = sqlx::query(
                "UPDATE delivery_hops SET late = CASE WHEN late IS NULL OR $1 <> $4 THEN $1 ELSE late END \
                 WHERE channel_id = $2 AND provider_message_id = $3",
            )
            .bind(late)
            .bind(r.channel_id)
            .bind(&r.provider_message_id)
            .bind("delivered")
            .execute(&mut *$tx)
            .await?
            .rows_affected();
            if n > 0 {
                *a = Applied::Unchanged;
                noted += 1;
            }
        }
        noted
    }};
}
pub(super) use note_late_hops;
