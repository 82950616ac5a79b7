//! The dispatcher's storage: firing due schedules (materialising the audience into deliveries
//! in one `INSERT … SELECT`), claiming batches of deliveries under a lease, recording what the
//! providers said, and finishing broadcasts. Every step is one short transaction, so a crash at
//! any moment leaves a state the next round continues from.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::audience::{AudienceBind, Builder};
use super::counters::{Counter, Tally, write_tally};
use super::retry::retrying;
use super::{Db, DbError, Dialect, audit_in, on_pool};
use crate::model::audience::AudienceRule;
use crate::model::channel::ChannelKind;
use crate::model::compose::AttachmentRef;
use crate::model::delivery::{self, DeliveryState};

/// A delivery a worker holds: it may send it until the lease ends.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Claimed {
    pub id: i64,
    pub broadcast_id: i64,
    pub customer_id: i64,
    pub channel_id: i64,
    /// The attempt this claim is (1 = first). A later claim of the same delivery has a higher
    /// number, so a worker whose lease ran out cannot record over the newer one.
    pub attempts: i64,
    /// 0 for the broadcast's own send; 1, 2, … for each "Retry failed".
    pub retry_round: i64,
}

/// What became of one claimed delivery.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The provider took it (`replayed`: it had it already, from a claim before a crash).
    Sent {
        provider_message_id: String,
        replayed: bool,
    },
    /// Try again at `at`.
    Retry { reason: String, at: DateTime<Utc> },
    /// Given up, with the provider's reason.
    Failed { reason: String },
    /// Not sent (the broadcast was paused or cancelled meanwhile): back to pending, the attempt
    /// not counted.
    Released,
}

/// What firing a due broadcast did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fired {
    /// Deliveries created (the broadcast is sending, or sent at once if there were none).
    Started { deliveries: i64 },
    /// Later than the grace period: marked missed, not sent.
    Missed,
    /// Another instance fired it first, or it changed meanwhile (paused, edited, cancelled).
    Skipped,
}

/// What a provider reported about a message it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryEvent {
    Delivered,
    Read,
    /// It could not be delivered after all.
    Failed {
        reason: String,
    },
    /// The customer answered it with the stored message `message_id`.
    Replied {
        message_id: i64,
    },
}

impl DeliveryEvent {
    /// How an early report keeps it: (event, reason, reply message).
    fn stored(&self) -> (&'static str, Option<&str>, Option<i64>) {
        match self {
            DeliveryEvent::Delivered => ("delivered", None, None),
            DeliveryEvent::Read => ("read", None, None),
            DeliveryEvent::Failed { reason } => ("failed", Some(reason.as_str()), None),
            DeliveryEvent::Replied { message_id } => ("replied", None, Some(*message_id)),
        }
    }

    /// An early report as kept.
    fn from_stored(event: &str, reason: Option<String>, message: Option<i64>) -> Self {
        match (event, message) {
            ("read", _) => DeliveryEvent::Read,
            ("failed", _) => DeliveryEvent::Failed {
                reason: reason.unwrap_or_default(),
            },
            ("replied", Some(message_id)) => DeliveryEvent::Replied { message_id },
            _ => DeliveryEvent::Delivered,
        }
    }
}

/// Adds to a broadcast's timeline: ($1 broadcast, $2 minute, $3 sent, $4 delivered, $5 read,
/// $6 replied).
pub(crate) const TIMELINE_ADD: &str = "INSERT INTO broadcast_timeline \
     (broadcast_id, minute, sent_count, delivered_count, read_count, replied_count) \
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (broadcast_id, minute) DO UPDATE SET \
     sent_count = broadcast_timeline.sent_count + excluded.sent_count, \
     delivered_count = broadcast_timeline.delivered_count + excluded.delivered_count, \
     read_count = broadcast_timeline.read_count + excluded.read_count, \
     replied_count = broadcast_timeline.replied_count + excluded.replied_count";

/// The timeline's minute of `t`: whole minutes since 1970 (UTC).
pub fn minute(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(60)
}

/// The five counters after the audience, recounted from the deliveries (sent or further,
/// delivered or further, read, replied, failed).
const RECOUNT: &str = "COALESCE(SUM(CASE WHEN state IN ('sent', 'delivered', 'read') THEN 1 ELSE 0 END), 0), \
     COALESCE(SUM(CASE WHEN state IN ('delivered', 'read') THEN 1 ELSE 0 END), 0), \
     COALESCE(SUM(CASE WHEN state = 'read' THEN 1 ELSE 0 END), 0), \
     COALESCE(SUM(CASE WHEN replied_at IS NOT NULL THEN 1 ELSE 0 END), 0), \
     COALESCE(SUM(CASE WHEN state = 'failed' THEN 1 ELSE 0 END), 0)";

/// A provider's report on one message it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub channel_id: i64,
    pub provider_message_id: String,
    pub event: DeliveryEvent,
    pub at: DateTime<Utc>,
}

/// What applying a report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The delivery moved forward (its broadcast's counters with it).
    Moved,
    /// Already there or further (a repeat, or a late report after a later one).
    Unchanged,
    /// No delivery has that provider id on that channel.
    Unknown,
}

/// A stored audience rule and channel list, as the broadcast row keeps them.
fn parse_plan(audience: &str, channels: &str) -> (AudienceRule, Vec<i64>) {
    (
        serde_json::from_str(audience).unwrap_or_default(),
        serde_json::from_str(channels).unwrap_or_default(),
    )
}

/// What a broadcast sends: its name (an email's subject), message and files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Content {
    pub name: String,
    pub body: String,
    pub attachments: Vec<AttachmentRef>,
}

/// A kept early report: (id, channel, provider message id, event, reason, at, reply message).
type EarlyRow = (
    i64,
    i64,
    String,
    String,
    Option<String>,
    DateTime<Utc>,
    Option<i64>,
);

/// A delivery a batch of reports names, as stored (and locked).
struct Stored {
    id: i64,
    broadcast: i64,
    channel: i64,
    state: DeliveryState,
    replied: bool,
}

/// What a batch of reports does to one delivery.
struct Change {
    id: i64,
    stored: DeliveryState,
    new: DeliveryState,
    delivered_at: Option<DateTime<Utc>>,
    read_at: Option<DateTime<Utc>>,
    failed_at: Option<DateTime<Utc>>,
    error: Option<String>,
    replied_at: Option<DateTime<Utc>>,
}

/// A batch of reports worked out against the deliveries they name.
struct Folded {
    /// One per report.
    results: Vec<Applied>,
    /// The deliveries that change, by ascending id.
    changes: Vec<Change>,
    /// (reply message, delivery it answers, broadcast)
    links: Vec<(i64, i64, i64)>,
    tally: Tally,
}

/// Applies each report in order to the state so far ([`crate::model::delivery::after`]), so a
/// repeat or a late report within the batch changes nothing either; gathers the counter
/// changes.
fn fold_reports(reports: &[Report], found: &HashMap<(i64, &str), Stored>) -> Folded {
    let mut results = Vec::with_capacity(reports.len());
    let mut links = Vec::new();
    let mut tally = Tally::default();
    // delivery id → (replied so far, change so far)
    let mut work: HashMap<i64, (bool, Change)> = HashMap::new();
    for r in reports {
        let Some(d) = found.get(&(r.channel_id, r.provider_message_id.as_str())) else {
            results.push(Applied::Unknown);
            continue;
        };
        let (replied, change) = work.entry(d.id).or_insert_with(|| {
            (
                d.replied,
                Change {
                    id: d.id,
                    stored: d.state,
                    new: d.state,
                    delivered_at: None,
                    read_at: None,
                    failed_at: None,
                    error: None,
                    replied_at: None,
                },
            )
        });
        let report = match &r.event {
            DeliveryEvent::Replied { message_id } => {
                links.push((*message_id, d.id, d.broadcast));
                if *replied {
                    results.push(Applied::Unchanged);
                } else {
                    *replied = true;
                    change.replied_at = Some(r.at);
                    tally.add(d.broadcast, d.channel, Counter::Replied, 1);
                    tally.add_timeline(d.broadcast, minute(r.at), Counter::Replied, 1);
                    results.push(Applied::Moved);
                }
                continue;
            }
            DeliveryEvent::Delivered => delivery::Report::Delivered,
            DeliveryEvent::Read => delivery::Report::Read,
            DeliveryEvent::Failed { .. } => delivery::Report::Failed,
        };
        let Some(new) = delivery::after(change.new, report) else {
            results.push(Applied::Unchanged);
            continue;
        };
        let [sent, delivered, read, failed] = delivery::counter_change(change.new, new);
        for (counter, by) in [
            (Counter::Sent, sent),
            (Counter::Delivered, delivered),
            (Counter::Read, read),
            (Counter::Failed, failed),
        ] {
            if by != 0 {
                tally.add(d.broadcast, d.channel, counter, by);
            }
        }
        if delivered > 0 {
            tally.add_timeline(d.broadcast, minute(r.at), Counter::Delivered, 1);
        }
        if read > 0 {
            tally.add_timeline(d.broadcast, minute(r.at), Counter::Read, 1);
        }
        match &r.event {
            DeliveryEvent::Delivered => change.delivered_at = Some(r.at),
            DeliveryEvent::Read => {
                change.delivered_at.get_or_insert(r.at);
                change.read_at = Some(r.at);
            }
            DeliveryEvent::Failed { reason } => {
                change.failed_at = Some(r.at);
                change.error = Some(reason.clone());
            }
            DeliveryEvent::Replied { .. } => {}
        }
        change.new = new;
        results.push(Applied::Moved);
    }
    let mut changes: Vec<Change> = work
        .into_values()
        .map(|(_, c)| c)
        .filter(|c| c.new != c.stored || c.replied_at.is_some())
        .collect();
    changes.sort_by_key(|c| c.id);
    Folded {
        results,
        changes,
        links,
        tally,
    }
}

impl Db {
    /// Scheduled, unpaused broadcasts whose time has come, oldest first.
    pub async fn due_broadcasts(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(i64, DateTime<Utc>)>, DbError> {
        let rows = on_pool!(self, p => sqlx::query_as(
            "SELECT id, scheduled_at FROM broadcasts WHERE status = 'scheduled' AND NOT paused \
             AND missed_at IS NULL AND scheduled_at <= $1 ORDER BY scheduled_at, id LIMIT 100",
        )
        .bind(now)
        .fetch_all(p)
        .await?);
        Ok(rows)
    }

    /// The earliest time a scheduled broadcast is due, if any (the dispatcher sleeps until then).
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, DbError> {
        let t: Option<DateTime<Utc>> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT MIN(scheduled_at) FROM broadcasts WHERE status = 'scheduled' AND NOT paused \
             AND missed_at IS NULL",
        )
        .fetch_one(p)
        .await?);
        Ok(t)
    }

    /// Fires broadcast `id` if it is still due: later than `grace` → missed; otherwise it turns
    /// Sending and its audience becomes one pending delivery per recipient, on the first of
    /// its channels that reaches them — all in one transaction, so it happens once however
    /// many instances try.
    pub async fn fire(
        &self,
        id: i64,
        now: DateTime<Utc>,
        grace: chrono::Duration,
    ) -> Result<Fired, DbError> {
        let dialect = self.dialect();
        on_pool!(self, p => {
            let mut tx = match dialect {
                Dialect::Sqlite => p.begin_with("BEGIN IMMEDIATE").await?,
                Dialect::Postgres => p.begin().await?,
            };
            let row: Option<(Option<DateTime<Utc>>, String, String)> = sqlx::query_as(
                "SELECT scheduled_at, audience, channel_ids FROM broadcasts WHERE id = $1 \
                 AND status = 'scheduled' AND NOT paused AND missed_at IS NULL AND scheduled_at <= $2",
            )
            .bind(id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((Some(at), audience, channels)) = row else {
                tx.rollback().await?;
                return Ok(Fired::Skipped);
            };
            if now - at > grace {
                let n = sqlx::query(
                    "UPDATE broadcasts SET missed_at = $1, updated_at = $1 WHERE id = $2 AND status = 'scheduled' AND missed_at IS NULL",
                )
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                audit_in!(tx, now, None::<i64>, "missed", "broadcast", id, format!("due at {at}, found at {now}"))?;
                tx.commit().await?;
                return Ok(if n > 0 { Fired::Missed } else { Fired::Skipped });
            }
            let claimed = sqlx::query(
                "UPDATE broadcasts SET status = 'sending', started_at = $1, updated_at = $1 \
                 WHERE id = $2 AND status = 'scheduled'",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed == 0 {
                tx.rollback().await?;
                return Ok(Fired::Skipped);
            }
            let (rule, channel_ids) = parse_plan(&audience, &channels);
            // The broadcast's channels that still exist and are enabled, in its order.
            let mut picked: Vec<(i64, ChannelKind)> = Vec::new();
            for cid in channel_ids {
                let kind: Option<String> = sqlx::query_scalar(
                    "SELECT kind FROM channels WHERE id = $1 AND enabled",
                )
                .bind(cid)
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(k) = kind.as_deref().and_then(ChannelKind::parse) {
                    picked.push((cid, k));
                }
            }
            let deliveries = if picked.is_empty() {
                0
            } else {
                let (sql, binds) = materialise_sql(dialect, &rule, &picked);
                let mut q = sqlx::query(&sql).bind(id).bind(now);
                for b in &binds {
                    q = match b {
                        AudienceBind::Id(v) => q.bind(*v),
                        AudienceBind::Kind(k) => q.bind(*k),
                    };
                }
                let n = q.execute(&mut *tx).await?.rows_affected() as i64;
                if let [(only, _)] = picked[..] {
                    // One channel has them all: no need to count again.
                    sqlx::query(
                        "INSERT INTO broadcast_channel_counts (broadcast_id, channel_id, audience_total) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(id)
                    .bind(only)
                    .bind(n)
                    .execute(&mut *tx)
                    .await?;
                } else {
                    sqlx::query(
                        "INSERT INTO broadcast_channel_counts (broadcast_id, channel_id, audience_total) \
                         SELECT broadcast_id, channel_id, COUNT(*) FROM deliveries WHERE broadcast_id = $1 \
                         GROUP BY broadcast_id, channel_id",
                    )
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                n
            };
            // Nobody to send to: done at once.
            let finish = if deliveries == 0 { ", status = 'sent', finished_at = $2" } else { "" };
            sqlx::query(&format!(
                "UPDATE broadcasts SET audience_total = $1{finish} WHERE id = $3"
            ))
            .bind(deliveries)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            audit_in!(tx, now, None::<i64>, "start", "broadcast", id, format!("{deliveries} deliveries"))?;
            tx.commit().await?;
            Ok(Fired::Started { deliveries })
        })
    }

    /// Sending, unpaused broadcasts with their channel ids, the longest-running first.
    pub async fn sending_broadcasts(&self) -> Result<Vec<(i64, Vec<i64>)>, DbError> {
        let rows: Vec<(i64, String)> = on_pool!(self, p => sqlx::query_as(
            "SELECT id, channel_ids FROM broadcasts WHERE status = 'sending' AND NOT paused ORDER BY started_at, id",
        )
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(id, c)| (id, serde_json::from_str(&c).unwrap_or_default()))
            .collect())
    }

    /// Claims up to `limit` deliveries of sending, unpaused broadcasts, the longest-running
    /// first.
    pub async fn claim(
        &self,
        limit: i64,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, DbError> {
        let mut out = Vec::new();
        for (b, _) in self.sending_broadcasts().await? {
            let room = limit - out.len() as i64;
            if room <= 0 {
                break;
            }
            out.extend(self.claim_broadcast(b, room, now, lease_until).await?);
        }
        Ok(out)
    }

    /// Claims up to `limit` deliveries of broadcast `b` (if it is sending and not paused):
    /// pending ones whose retry time has come, and ones whose lease ran out (their worker
    /// died). Each claim counts an attempt and holds a lease until `lease_until`. On
    /// PostgreSQL, rows another instance is claiming are skipped, not waited for.
    pub async fn claim_broadcast(
        &self,
        b: i64,
        limit: i64,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, DbError> {
        let pick = "SELECT d.id FROM deliveries d WHERE d.broadcast_id = $3 AND \
             ((d.state = 'pending' AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= $2)) \
              OR (d.state = 'sending' AND d.claimed_until < $2)) \
             AND EXISTS (SELECT 1 FROM broadcasts x WHERE x.id = $3 AND x.status = 'sending' AND NOT x.paused) \
             ORDER BY d.id LIMIT $4";
        let mut claimed: Vec<Claimed> = match &self.pool {
            super::Pool::Sqlite(p) => {
                let mut tx = p.begin_with("BEGIN IMMEDIATE").await?;
                let rows = sqlx::query_as(&format!(
                    "UPDATE deliveries SET state = 'sending', claimed_until = $1, attempts = attempts + 1 \
                     WHERE id IN ({pick}) \
                     RETURNING id, broadcast_id, customer_id, channel_id, attempts, retry_round"
                ))
                .bind(lease_until)
                .bind(now)
                .bind(b)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                rows
            }
            super::Pool::Postgres(p) => {
                sqlx::query_as(&format!(
                    "UPDATE deliveries SET state = 'sending', claimed_until = $1, attempts = attempts + 1 \
                     WHERE id IN ({pick} FOR UPDATE OF d SKIP LOCKED) \
                     RETURNING id, broadcast_id, customer_id, channel_id, attempts, retry_round"
                ))
                .bind(lease_until)
                .bind(now)
                .bind(b)
                .bind(limit)
                .fetch_all(p)
                .await?
            }
        };
        claimed.sort_by_key(|c| c.id);
        Ok(claimed)
    }

    /// Extends the lease of claimed deliveries (id, attempt) still held by that claim to
    /// `until`: the worker is alive and still sending or recording them. Returns how many.
    pub async fn extend_claims(
        &self,
        held: &[(i64, i64)],
        until: DateTime<Utc>,
    ) -> Result<u64, DbError> {
        let dialect = self.dialect();
        let mut n = 0;
        for chunk in held.chunks(500) {
            let values = (0..chunk.len())
                .map(|i| format!("(${}, ${})", 2 + 2 * i, 3 + 2 * i))
                .collect::<Vec<_>>()
                .join(",");
            // Locked by ascending id before the update (see `counters`).
            let lock = if dialect == Dialect::Postgres {
                " ORDER BY d.id FOR UPDATE OF d"
            } else {
                ""
            };
            let sql = format!(
                "WITH v(id, attempts) AS (VALUES {values}) UPDATE deliveries SET claimed_until = $1 \
                 WHERE id IN (SELECT d.id FROM deliveries d JOIN v ON d.id = v.id AND d.attempts = v.attempts \
                 WHERE d.state = 'sending'{lock})"
            );
            n += retrying("extending a lease", || {
                let sql = sql.as_str();
                async move {
                    let r = on_pool!(self, p => {
                        let mut q = sqlx::query(sql).bind(until);
                        for (id, attempts) in chunk {
                            q = q.bind(id).bind(attempts);
                        }
                        q.execute(p).await?.rows_affected()
                    });
                    Ok::<u64, DbError>(r)
                }
            })
            .await?;
        }
        Ok(n)
    }

    /// Records what became of claimed deliveries, with the broadcasts' counters, in one
    /// transaction (run again if it fails for a passing reason). A delivery no longer held by
    /// that claim (its lease ran out and another worker took it) is left alone, so running it
    /// twice changes nothing more than once.
    pub async fn record(
        &self,
        results: &[(Claimed, Outcome)],
        now: DateTime<Utc>,
    ) -> Result<(), DbError> {
        if results.is_empty() {
            return Ok(());
        }
        let mut sorted: Vec<&(Claimed, Outcome)> = results.iter().collect();
        sorted.sort_by_key(|(c, _)| c.id);
        let results = &sorted[..];
        retrying("recording sends", move || self.record_once(results, now)).await?;
        let recorded: Vec<(i64, &str)> = results
            .iter()
            .filter_map(|(c, o)| match o {
                Outcome::Sent {
                    provider_message_id,
                    ..
                } => Some((c.channel_id, provider_message_id.as_str())),
                _ => None,
            })
            .collect();
        if !recorded.is_empty()
            && let Err(e) = self.apply_early_reports_for(&recorded).await
        {
            // Kept: the minute sweep applies them.
            tracing::warn!(error = %e, "applying early provider reports failed");
        }
        Ok(())
    }

    /// [`Db::record`]'s transaction, for outcomes in ascending delivery id.
    async fn record_once(
        &self,
        results: &[&(Claimed, Outcome)],
        now: DateTime<Utc>,
    ) -> Result<(), DbError> {
        // Accepted ones, the bulk, in one statement; the rest one by one.
        let sent: Vec<(&Claimed, &str)> = results
            .iter()
            .filter_map(|(c, o)| match o {
                Outcome::Sent {
                    provider_message_id,
                    ..
                } => Some((c, provider_message_id.as_str())),
                _ => None,
            })
            .collect();
        let rest: Vec<&(Claimed, Outcome)> = results
            .iter()
            .copied()
            .filter(|(_, o)| !matches!(o, Outcome::Sent { .. }))
            .collect();
        let dialect = self.dialect();
        let set_sent = "SET state = 'sent', provider_message_id = v.pid, sent_at = $1, claimed_until = NULL, error = NULL";
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            if dialect == Dialect::Postgres {
                // Lock order (see `counters`): the deliveries first, by id, before the
                // statements below touch them in whatever order their plans choose.
                let ids: Vec<i64> = results.iter().map(|(c, _)| c.id).collect();
                for chunk in ids.chunks(1000) {
                    let list = chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
                    sqlx::query(&format!(
                        "SELECT id FROM deliveries WHERE id IN ({list}) ORDER BY id FOR UPDATE"
                    ))
                    .execute(&mut *tx)
                    .await?;
                }
            }
            let mut tally = Tally::default();
            for chunk in sent.chunks(500) {
                // One VALUES list of (id, attempt, provider id); both databases take it.
                let mut sql = String::from("WITH v(id, attempts, pid) AS (VALUES ");
                for i in 0..chunk.len() {
                    if i > 0 {
                        sql.push(',');
                    }
                    let n = 2 + 3 * i;
                    sql.push_str(&format!("(${n}, ${}, ${})", n + 1, n + 2));
                }
                sql.push_str(&format!(
                    ") UPDATE deliveries {set_sent} FROM v WHERE deliveries.id = v.id \
                     AND deliveries.state = 'sending' AND deliveries.attempts = v.attempts \
                     RETURNING deliveries.broadcast_id, deliveries.channel_id"
                ));
                let mut q = sqlx::query_as(&sql).bind(now);
                for (c, pid) in chunk {
                    q = q.bind(c.id).bind(c.attempts).bind(*pid);
                }
                let moved: Vec<(i64, i64)> = q.fetch_all(&mut *tx).await?;
                for (b, ch) in moved {
                    tally.add(b, ch, Counter::Sent, 1);
                    tally.add_timeline(b, minute(now), Counter::Sent, 1);
                }
            }
            for (c, outcome) in rest {
                let q = match outcome {
                    Outcome::Sent { .. } => continue,
                    Outcome::Retry { reason, at } => sqlx::query(
                        "UPDATE deliveries SET state = 'pending', error = $1, next_attempt_at = $2, \
                         claimed_until = NULL WHERE id = $3 AND state = 'sending' AND attempts = $4",
                    )
                    .bind(reason)
                    .bind(*at),
                    Outcome::Failed { reason } => sqlx::query(
                        "UPDATE deliveries SET state = 'failed', error = $1, failed_at = $2, \
                         claimed_until = NULL WHERE id = $3 AND state = 'sending' AND attempts = $4",
                    )
                    .bind(reason)
                    .bind(now),
                    Outcome::Released => sqlx::query(
                        "UPDATE deliveries SET state = 'pending', claimed_until = NULL, attempts = attempts - 1 \
                         WHERE id = $1 AND state = 'sending' AND attempts = $2",
                    ),
                };
                let changed = q
                    .bind(c.id)
                    .bind(c.attempts)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if changed > 0 && matches!(outcome, Outcome::Failed { .. }) {
                    tally.add(c.broadcast_id, c.channel_id, Counter::Failed, 1);
                }
            }
            write_tally!(tx, tally);
            tx.commit().await?;
            Ok::<(), DbError>(())
        })
    }

    /// Applies the reports that arrived before these (channel, provider id) messages were
    /// recorded. Looks only at the messages just recorded (an indexed lookup), so a backlog of
    /// reports that never match costs the dispatcher nothing; one probe when there are none.
    async fn apply_early_reports_for(&self, recorded: &[(i64, &str)]) -> Result<usize, DbError> {
        let mut by_channel: HashMap<i64, Vec<&str>> = HashMap::new();
        for (channel, pid) in recorded {
            by_channel.entry(*channel).or_default().push(pid);
        }
        let rows: Vec<EarlyRow> = on_pool!(self, p => {
            let any: Option<i64> = sqlx::query_scalar("SELECT id FROM early_reports LIMIT 1")
                .fetch_optional(p)
                .await?;
            let mut rows = Vec::new();
            if any.is_some() {
                for (channel, pids) in &by_channel {
                    for chunk in pids.chunks(500) {
                        let list = (0..chunk.len())
                            .map(|i| format!("${}", i + 2))
                            .collect::<Vec<_>>()
                            .join(",");
                        // Only those whose message is recorded (and visible) by now.
                        let sql = format!(
                            "SELECT e.id, e.channel_id, e.provider_message_id, e.event, e.reason, e.at, e.message_id \
                             FROM early_reports e JOIN deliveries d \
                               ON d.channel_id = e.channel_id AND d.provider_message_id = e.provider_message_id \
                             WHERE e.channel_id = $1 AND e.provider_message_id IN ({list}) ORDER BY e.id"
                        );
                        let mut q = sqlx::query_as::<_, EarlyRow>(&sql).bind(channel);
                        for pid in chunk {
                            q = q.bind(*pid);
                        }
                        rows.extend(q.fetch_all(p).await?);
                    }
                }
            }
            rows
        });
        self.apply_early_rows(rows).await
    }

    /// The periodic sweep: applies early reports whose message is recorded by now (one that
    /// raced the recording on another instance), and forgets those older than a week (reports
    /// about messages outside broadcasts, such as test sends and chat replies).
    pub async fn sweep_early_reports(&self, now: DateTime<Utc>) -> Result<usize, DbError> {
        let rows: Vec<EarlyRow> = on_pool!(self, p => {
            sqlx::query("DELETE FROM early_reports WHERE at < $1")
                .bind(now - chrono::Duration::days(7))
                .execute(p)
                .await?;
            sqlx::query_as::<_, EarlyRow>(
                "SELECT e.id, e.channel_id, e.provider_message_id, e.event, e.reason, e.at, e.message_id \
                 FROM early_reports e JOIN deliveries d \
                   ON d.channel_id = e.channel_id AND d.provider_message_id = e.provider_message_id \
                 ORDER BY e.id LIMIT 1000",
            )
            .fetch_all(p)
            .await?
        });
        self.apply_early_rows(rows).await
    }

    /// Applies early reports and removes them, in one transaction (forward-only, so one that
    /// two instances both apply changes things once).
    async fn apply_early_rows(&self, rows: Vec<EarlyRow>) -> Result<usize, DbError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let reports: Vec<Report> = rows
            .into_iter()
            .map(|(_, channel_id, pid, event, reason, at, message)| Report {
                channel_id,
                provider_message_id: pid,
                event: DeliveryEvent::from_stored(&event, reason, message),
                at,
            })
            .collect();
        let (reports, ids) = (&reports[..], &ids[..]);
        retrying("applying early reports", move || {
            self.apply_events_once(reports, Some(ids))
        })
        .await?;
        Ok(ids.len())
    }

    /// Sending broadcasts with nothing pending or in flight become Sent (or Failed, when every
    /// delivery failed). Returns the ones finished.
    pub async fn finish_done(&self, now: DateTime<Utc>) -> Result<Vec<i64>, DbError> {
        let ids: Vec<i64> = on_pool!(self, p => sqlx::query_scalar(
            "UPDATE broadcasts SET status = CASE WHEN failed_count >= audience_total THEN 'failed' ELSE 'sent' END, \
             finished_at = $1, updated_at = $1 \
             WHERE status = 'sending' AND NOT EXISTS (SELECT 1 FROM deliveries d \
               WHERE d.broadcast_id = broadcasts.id AND d.state IN ('pending', 'sending')) \
             RETURNING id",
        )
        .bind(now)
        .fetch_all(p)
        .await?);
        Ok(ids)
    }

    /// Broadcasts whose deliveries must not start now: sending ones that are paused, and
    /// cancelled ones. Workers check this before each provider request.
    pub async fn halted_broadcasts(&self) -> Result<Vec<i64>, DbError> {
        let ids: Vec<i64> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT id FROM broadcasts WHERE (status = 'sending' AND paused) OR status = 'cancelled'",
        )
        .fetch_all(p)
        .await?);
        Ok(ids)
    }

    /// Takes up to `want` of `channel`'s send tokens from the bucket every instance shares
    /// (refilling at `per_second`, holding at most `capacity`), after putting back `returned`
    /// unused ones; one short transaction with the row locked. Returns how many were granted
    /// and, when none, how long until one is due.
    /// The time is the database server's on PostgreSQL, so instances' clocks need not agree.
    pub async fn take_send_tokens(
        &self,
        channel: i64,
        per_second: f64,
        capacity: f64,
        want: u32,
        returned: u32,
    ) -> Result<(u32, std::time::Duration), DbError> {
        let dialect = self.dialect();
        let now_sql = match dialect {
            Dialect::Postgres => "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT",
            Dialect::Sqlite => "CAST(unixepoch('subsec') * 1000000 AS INTEGER)",
        };
        let read = format!(
            "SELECT tokens, refilled_us, {now_sql} FROM channel_rate_buckets WHERE channel_id = $1"
        );
        let select = match dialect {
            Dialect::Postgres => format!("{read} FOR UPDATE"),
            Dialect::Sqlite => read.clone(),
        };
        // The bucket as read (tokens, when counted, now), with `returned` put back.
        let take_from = |(tokens, refilled_us, now_us): (f64, i64, i64)| {
            take_tokens(
                tokens + returned as f64,
                (now_us - refilled_us).max(0) as f64 / 1e6,
                per_second,
                capacity,
                want,
            )
        };
        // A look without a lock first: while the bucket is empty, waiting senders write
        // nothing (on SQLite every write transaction contends with the rest of the app).
        let peek: Option<(f64, i64, i64)> = on_pool!(self, p => sqlx::query_as(&read)
            .bind(channel)
            .fetch_optional(p)
            .await?);
        if let Some(look) = peek.map(take_from)
            && look.granted == 0
            && returned == 0
        {
            return Ok((0, look.wait));
        }
        Ok(on_pool!(self, p => {
            let mut tx = match dialect {
                Dialect::Sqlite => p.begin_with("BEGIN IMMEDIATE").await?,
                Dialect::Postgres => p.begin().await?,
            };
            let mut row: Option<(f64, i64, i64)> =
                sqlx::query_as(&select).bind(channel).fetch_optional(&mut *tx).await?;
            if row.is_none() {
                // A channel's first send anywhere: its bucket starts full.
                sqlx::query(&format!(
                    "INSERT INTO channel_rate_buckets (channel_id, tokens, refilled_us) \
                     VALUES ($1, $2, {now_sql}) ON CONFLICT (channel_id) DO NOTHING"
                ))
                .bind(channel)
                .bind(capacity)
                .execute(&mut *tx)
                .await?;
                row = Some(sqlx::query_as(&select).bind(channel).fetch_one(&mut *tx).await?);
            }
            let bucket = row.unwrap_or_default();
            let (_, refilled_us, now_us) = bucket;
            let take = take_from(bucket);
            sqlx::query(
                "UPDATE channel_rate_buckets SET tokens = $1, refilled_us = $2 WHERE channel_id = $3",
            )
            .bind(take.left)
            .bind(now_us.max(refilled_us))
            .bind(channel)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            (take.granted, take.wait)
        }))
    }

    /// Applies a provider's report on message `provider_message_id` of `channel_id`. States
    /// only move forward: a repeated report, or "delivered" after "read", changes nothing.
    /// The broadcast's counters change in the same transaction (a read message counts as
    /// delivered too; a message that fails after acceptance is no longer a success).
    pub async fn apply_event(
        &self,
        channel_id: i64,
        provider_message_id: &str,
        event: &DeliveryEvent,
        at: DateTime<Utc>,
    ) -> Result<Applied, DbError> {
        let one = [Report {
            channel_id,
            provider_message_id: provider_message_id.to_string(),
            event: event.clone(),
            at,
        }];
        Ok(self.apply_events(&one).await?[0])
    }

    /// [`Db::apply_event`] for many reports in one transaction (webhook ingestion groups the
    /// reports that arrive together), applied in order, so a repeat within the batch changes
    /// nothing either. A report about a message not recorded yet is kept and applied once it
    /// is. Run again if it fails for a passing reason. One result per report.
    pub async fn apply_events(&self, reports: &[Report]) -> Result<Vec<Applied>, DbError> {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        let results = retrying("applying provider reports", move || {
            self.apply_events_once(reports, None)
        })
        .await?;
        // Reports kept as early ones may have raced the record of their send: that record,
        // once committed, looks for early reports, but not for ones committed after its look.
        // Looking again now that these are committed closes the gap: whichever of the two
        // commits last sees the other's rows.
        let kept: Vec<(i64, &str)> = reports
            .iter()
            .zip(&results)
            .filter(|(_, a)| **a == Applied::Unknown)
            .map(|(r, _)| (r.channel_id, r.provider_message_id.as_str()))
            .collect();
        if !kept.is_empty()
            && let Err(e) = self.apply_early_reports_for(&kept).await
        {
            tracing::warn!(error = %e, "applying early provider reports failed");
        }
        Ok(results)
    }

    /// One transaction of [`Db::apply_events`]. With `early`, the reports are kept early
    /// reports (those ids): the ones applied are removed in the same transaction, and none is
    /// kept again.
    async fn apply_events_once(
        &self,
        reports: &[Report],
        early: Option<&[i64]>,
    ) -> Result<Vec<Applied>, DbError> {
        let dialect = self.dialect();
        let mut channels: Vec<i64> = reports.iter().map(|r| r.channel_id).collect();
        channels.sort_unstable();
        channels.dedup();
        let mut pids: Vec<&str> = reports
            .iter()
            .map(|r| r.provider_message_id.as_str())
            .collect();
        pids.sort_unstable();
        pids.dedup();
        on_pool!(self, p => {
            // Reads, then writes: on SQLite the write lock is taken up front (a deferred
            // transaction could not upgrade while another writer works); on PostgreSQL the
            // rows are locked as they are read, by ascending id (see `counters`).
            let mut tx = match dialect {
                Dialect::Sqlite => p.begin_with("BEGIN IMMEDIATE").await?,
                Dialect::Postgres => p.begin().await?,
            };
            // SQLite has no row locks (its write lock is taken): no order needed, and an
            // ORDER BY id there would walk the whole table by rowid instead of the index.
            let lock = if dialect == Dialect::Postgres { " ORDER BY id FOR UPDATE" } else { "" };
            let channel_list = channels.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
            // (channel, provider id) → the delivery as stored
            let mut found: HashMap<(i64, &str), Stored> = HashMap::new();
            for chunk in pids.chunks(1000) {
                let list = (1..=chunk.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(",");
                let sql = format!(
                    "SELECT id, broadcast_id, channel_id, state, \
                     CAST(CASE WHEN replied_at IS NULL THEN 0 ELSE 1 END AS BIGINT), provider_message_id FROM deliveries \
                     WHERE channel_id IN ({channel_list}) AND provider_message_id IN ({list}){lock}"
                );
                let mut q = sqlx::query_as::<_, (i64, i64, i64, String, i64, String)>(&sql);
                for pid in chunk {
                    q = q.bind(*pid);
                }
                for (id, broadcast, channel, state, replied, pid) in q.fetch_all(&mut *tx).await? {
                    let Some(state) = DeliveryState::parse(&state) else { continue };
                    let Some(pid) = chunk.iter().find(|p| **p == pid) else { continue };
                    found.insert((channel, pid), Stored { id, broadcast, channel, state, replied: replied != 0 });
                }
            }
            let folded = fold_reports(reports, &found);
            if early.is_none() {
                let unknown = reports.iter().zip(&folded.results).filter(|(_, a)| **a == Applied::Unknown);
                for (r, _) in unknown {
                    // Perhaps the send is not recorded yet: kept, and applied once it is.
                    let (event, reason, message) = r.event.stored();
                    sqlx::query(
                        "INSERT INTO early_reports (channel_id, provider_message_id, event, reason, at, message_id) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(r.channel_id)
                    .bind(&r.provider_message_id)
                    .bind(event)
                    .bind(reason)
                    .bind(r.at)
                    .bind(message)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            let kept_any = folded.results.contains(&Applied::Unknown);
            if folded.changes.is_empty() && folded.links.is_empty() && !kept_any && early.is_none() {
                tx.rollback().await?;
                return Ok(folded.results);
            }
            // One UPDATE per 200 deliveries; the rows are locked, so the state read holds.
            for chunk in folded.changes.chunks(200) {
                let mut sql = String::from("WITH v(id, new, dat, rat, fat, err, pat) AS (VALUES ");
                for i in 0..chunk.len() {
                    if i > 0 {
                        sql.push(',');
                    }
                    let n = 1 + 7 * i;
                    sql.push_str(&format!(
                        "(${n}, ${}, ${}, ${}, ${}, ${}, ${})",
                        n + 1, n + 2, n + 3, n + 4, n + 5, n + 6
                    ));
                }
                sql.push_str(
                    ") UPDATE deliveries SET state = v.new, \
                     delivered_at = COALESCE(deliveries.delivered_at, v.dat), \
                     read_at = COALESCE(v.rat, deliveries.read_at), \
                     failed_at = COALESCE(v.fat, deliveries.failed_at), \
                     error = COALESCE(v.err, deliveries.error), \
                     replied_at = COALESCE(deliveries.replied_at, v.pat) \
                     FROM v WHERE deliveries.id = v.id",
                );
                let mut q = sqlx::query(&sql);
                for c in chunk {
                    q = q
                        .bind(c.id)
                        .bind(c.new.as_str())
                        .bind(c.delivered_at)
                        .bind(c.read_at)
                        .bind(c.failed_at)
                        .bind(&c.error)
                        .bind(c.replied_at);
                }
                q.execute(&mut *tx).await?;
            }
            // A reply's message now names the delivery it answers.
            for (message, delivery, broadcast) in &folded.links {
                sqlx::query("UPDATE messages SET broadcast_id = $1, delivery_id = $2 WHERE id = $3")
                    .bind(broadcast)
                    .bind(delivery)
                    .bind(message)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(ids) = early {
                // Only those applied (their delivery found); the others stay for later.
                let ids: Vec<i64> = ids
                    .iter()
                    .zip(&folded.results)
                    .filter(|(_, a)| **a != Applied::Unknown)
                    .map(|(id, _)| *id)
                    .collect();
                for chunk in ids.chunks(1000) {
                    sqlx::query(&format!(
                        "DELETE FROM early_reports WHERE id IN ({})",
                        chunk.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
                    ))
                    .execute(&mut *tx)
                    .await?;
                }
            }
            write_tally!(tx, folded.tally);
            tx.commit().await?;
            Ok(folded.results)
        })
    }

    /// The counters as a full recount of the deliveries gives them: (audience, sent or
    /// further, delivered or further, read, replied, failed). Tests compare it with the
    /// maintained counters.
    pub async fn recount(&self, broadcast: i64) -> Result<[i64; 6], DbError> {
        let row: (i64, i64, i64, i64, i64, i64) = on_pool!(self, p => sqlx::query_as(
            &format!("SELECT COUNT(*), {RECOUNT} FROM deliveries WHERE broadcast_id = $1"),
        )
        .bind(broadcast)
        .fetch_one(p)
        .await?);
        Ok([row.0, row.1, row.2, row.3, row.4, row.5])
    }

    /// Rewrites broadcast `id`'s counters (totals and per channel) from its deliveries: a
    /// repair tool, and how the benchmark settles the states it writes in bulk.
    pub async fn rebuild_counters(&self, id: i64) -> Result<(), DbError> {
        let minute = |col: &str| match self.dialect() {
            Dialect::Sqlite => format!("CAST(strftime('%s', {col}) AS INTEGER) / 60"),
            Dialect::Postgres => format!("FLOOR(EXTRACT(EPOCH FROM {col}) / 60)::BIGINT"),
        };
        let timeline = format!(
            "INSERT INTO broadcast_timeline (broadcast_id, minute, sent_count, delivered_count, read_count, replied_count) \
             SELECT {id}, minute, SUM(s), SUM(d), SUM(r), SUM(p) FROM ( \
               SELECT {} AS minute, 1 AS s, 0 AS d, 0 AS r, 0 AS p FROM deliveries WHERE broadcast_id = {id} AND sent_at IS NOT NULL \
               UNION ALL SELECT {}, 0, 1, 0, 0 FROM deliveries WHERE broadcast_id = {id} AND delivered_at IS NOT NULL AND state IN ('delivered', 'read') \
               UNION ALL SELECT {}, 0, 0, 1, 0 FROM deliveries WHERE broadcast_id = {id} AND read_at IS NOT NULL AND state = 'read' \
               UNION ALL SELECT {}, 0, 0, 0, 1 FROM deliveries WHERE broadcast_id = {id} AND replied_at IS NOT NULL \
             ) t GROUP BY minute",
            minute("sent_at"),
            minute("delivered_at"),
            minute("read_at"),
            minute("replied_at")
        );
        let totals = self.recount(id).await?;
        let per_channel = self.recount_by_channel(id).await?;
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            sqlx::query(
                "UPDATE broadcasts SET audience_total = $1, sent_count = $2, delivered_count = $3, \
                 read_count = $4, replied_count = $5, failed_count = $6 WHERE id = $7",
            )
            .bind(totals[0]).bind(totals[1]).bind(totals[2]).bind(totals[3]).bind(totals[4]).bind(totals[5])
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM broadcast_channel_counts WHERE broadcast_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM broadcast_timeline WHERE broadcast_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&timeline).execute(&mut *tx).await?;
            for (channel, c) in &per_channel {
                sqlx::query(
                    "INSERT INTO broadcast_channel_counts (broadcast_id, channel_id, audience_total, sent_count, \
                     delivered_count, read_count, replied_count, failed_count) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(id).bind(channel).bind(c[0]).bind(c[1]).bind(c[2]).bind(c[3]).bind(c[4]).bind(c[5])
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok::<(), DbError>(())
        })?;
        Ok(())
    }

    /// Broadcast `id`'s timeline: (minute, [sent, delivered, read, replied]) by minute.
    pub async fn timeline(&self, id: i64) -> Result<Vec<(i64, [i64; 4])>, DbError> {
        let rows: Vec<(i64, i64, i64, i64, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT minute, sent_count, delivered_count, read_count, replied_count \
             FROM broadcast_timeline WHERE broadcast_id = $1 ORDER BY minute",
        )
        .bind(id)
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .map(|r| (r.0, [r.1, r.2, r.3, r.4]))
            .collect())
    }

    /// Sets a broadcast's final status and time (demo data and tools; the dispatcher finishes
    /// broadcasts with [`Db::finish_done`]).
    pub async fn mark_finished(
        &self,
        id: i64,
        status: &str,
        at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        on_pool!(self, p => {
            sqlx::query(
                "UPDATE broadcasts SET status = $1, finished_at = $2, updated_at = $2 WHERE id = $3",
            )
            .bind(status)
            .bind(at)
            .bind(id)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Runs one SQL statement as given: for tools and benchmarks that shape data in bulk.
    pub async fn execute(&self, sql: &str) -> Result<u64, DbError> {
        Ok(on_pool!(self, p => sqlx::query(sql).execute(p).await?.rows_affected()))
    }

    /// [`Db::recount`] per channel, by channel id.
    pub async fn recount_by_channel(
        &self,
        broadcast: i64,
    ) -> Result<Vec<(i64, [i64; 6])>, DbError> {
        self.per_channel(
            &format!(
                "SELECT channel_id, COUNT(*), {RECOUNT} FROM deliveries WHERE broadcast_id = $1 \
                 GROUP BY channel_id ORDER BY channel_id"
            ),
            broadcast,
        )
        .await
    }

    /// The maintained per-channel counters, in [`Db::recount_by_channel`]'s shape.
    pub async fn counters_by_channel(
        &self,
        broadcast: i64,
    ) -> Result<Vec<(i64, [i64; 6])>, DbError> {
        self.per_channel(
            "SELECT channel_id, audience_total, sent_count, delivered_count, read_count, replied_count, failed_count \
             FROM broadcast_channel_counts WHERE broadcast_id = $1 ORDER BY channel_id",
            broadcast,
        )
        .await
    }

    /// Rows of (channel, six counters) from `sql` with `$1` = `broadcast`.
    async fn per_channel(
        &self,
        sql: &str,
        broadcast: i64,
    ) -> Result<Vec<(i64, [i64; 6])>, DbError> {
        type Row = (i64, i64, i64, i64, i64, i64, i64);
        let rows: Vec<Row> =
            on_pool!(self, p => sqlx::query_as(sql).bind(broadcast).fetch_all(p).await?);
        Ok(rows
            .into_iter()
            .map(|r| (r.0, [r.1, r.2, r.3, r.4, r.5, r.6]))
            .collect())
    }

    /// The maintained counters, in [`Db::recount`]'s order.
    pub async fn counters(&self, broadcast: i64) -> Result<[i64; 6], DbError> {
        let row: (i64, i64, i64, i64, i64, i64) = on_pool!(self, p => sqlx::query_as(
            "SELECT audience_total, sent_count, delivered_count, read_count, replied_count, failed_count \
             FROM broadcasts WHERE id = $1",
        )
        .bind(broadcast)
        .fetch_one(p)
        .await?);
        Ok([row.0, row.1, row.2, row.3, row.4, row.5])
    }

    /// The delivery (id, customer) a provider's message id on `channel_id` belongs to.
    pub async fn delivery_by_provider(
        &self,
        channel_id: i64,
        provider_message_id: &str,
    ) -> Result<Option<(i64, i64)>, DbError> {
        let row = on_pool!(self, p => sqlx::query_as(
            "SELECT id, customer_id FROM deliveries WHERE channel_id = $1 AND provider_message_id = $2",
        )
        .bind(channel_id)
        .bind(provider_message_id)
        .fetch_optional(p)
        .await?);
        Ok(row)
    }

    /// A missed broadcast goes now: its time becomes `now` and the mark is cleared. `false`
    /// if it was not waiting as missed.
    pub async fn send_missed_now(
        &self,
        id: i64,
        actor: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let done = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let n = sqlx::query(
                "UPDATE broadcasts SET scheduled_at = $1, missed_at = NULL, updated_at = $1 \
                 WHERE id = $2 AND status = 'scheduled' AND missed_at IS NOT NULL",
            )
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n > 0 {
                audit_in!(tx, now, actor, "send-missed-now", "broadcast", id, "")?;
            }
            tx.commit().await?;
            n > 0
        });
        Ok(done)
    }

    /// How many audit entries of `action` a broadcast has.
    pub async fn audit_count(&self, action: &str, broadcast: i64) -> Result<i64, DbError> {
        let n = on_pool!(self, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action = $1 AND subject_type = 'broadcast' AND subject_id = $2",
        )
        .bind(action)
        .bind(broadcast)
        .fetch_one(p)
        .await?);
        Ok(n)
    }

    /// PostgreSQL: `VACUUM ANALYZE` the customers and their labels (what autovacuum does after
    /// a bulk load). SQLite: `ANALYZE`.
    pub async fn maintain(&self) -> Result<(), DbError> {
        match &self.pool {
            super::Pool::Postgres(p) => {
                for t in [
                    "customers",
                    "customer_tags",
                    "customer_robot_groups",
                    "customer_opt_outs",
                ] {
                    sqlx::query(&format!("VACUUM ANALYZE {t}"))
                        .execute(p)
                        .await?;
                }
            }
            super::Pool::Sqlite(p) => {
                sqlx::query("ANALYZE").execute(p).await?;
            }
        }
        Ok(())
    }

    /// The id of the (first) broadcast called `name`.
    pub async fn broadcast_id_by_name(&self, name: &str) -> Result<i64, DbError> {
        let id = on_pool!(self, p => sqlx::query_scalar(
            "SELECT id FROM broadcasts WHERE name = $1 ORDER BY id LIMIT 1",
        )
        .bind(name)
        .fetch_one(p)
        .await?);
        Ok(id)
    }

    /// A broadcast's message and files.
    pub async fn broadcast_content(&self, id: i64) -> Result<Content, DbError> {
        let row: Option<(String, String, String)> = on_pool!(self, p => sqlx::query_as(
            "SELECT name, body, attachments FROM broadcasts WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(p)
        .await?);
        Ok(row
            .map(|(name, body, files)| Content {
                name,
                body,
                attachments: serde_json::from_str(&files).unwrap_or_default(),
            })
            .unwrap_or_default())
    }

    /// Every delivery of `broadcast` as (id, customer, channel, state, provider message id), by
    /// id.
    pub async fn deliveries_of(
        &self,
        broadcast: i64,
    ) -> Result<Vec<(i64, i64, i64, String, Option<String>)>, DbError> {
        let rows = on_pool!(self, p => sqlx::query_as(
            "SELECT id, customer_id, channel_id, state, provider_message_id FROM deliveries \
             WHERE broadcast_id = $1 ORDER BY id",
        )
        .bind(broadcast)
        .fetch_all(p)
        .await?);
        Ok(rows)
    }

    /// Deliveries of `broadcast` by state, for tests and the results page.
    pub async fn delivery_states(&self, broadcast: i64) -> Result<Vec<(String, i64)>, DbError> {
        let rows = on_pool!(self, p => sqlx::query_as(
            "SELECT state, COUNT(*) FROM deliveries WHERE broadcast_id = $1 GROUP BY state ORDER BY state",
        )
        .bind(broadcast)
        .fetch_all(p)
        .await?);
        Ok(rows)
    }
}

/// `INSERT … SELECT` of one pending delivery per customer the rule reaches on `picked`
/// (`$1` broadcast, `$2` now, audience values from `$3`), on the first picked channel that
/// reaches them.
fn materialise_sql(
    dialect: Dialect,
    rule: &AudienceRule,
    picked: &[(i64, ChannelKind)],
) -> (String, Vec<AudienceBind>) {
    let mut b = Builder {
        dialect,
        first: 3,
        binds: Vec::new(),
    };
    if let [(id, kind)] = picked {
        // One channel (the usual case): reachability is a plain condition, which PostgreSQL
        // plans as an anti-join instead of a probe per customer. Rows go in customer order,
        // so the (broadcast, customer) index grows at its end instead of splitting pages.
        let rule_sql = b.rule(rule);
        let reach = b.reach(*kind);
        let sql = format!(
            "INSERT INTO deliveries (broadcast_id, customer_id, channel_id, state, created_at) \
             SELECT $1, c.id, CAST({id} AS BIGINT), 'pending', $2 FROM customers c \
             WHERE NOT c.opted_out AND {rule_sql} AND {reach} ORDER BY c.id"
        );
        return (sql, b.binds);
    }
    let whens: Vec<String> = picked
        .iter()
        .map(|(id, k)| format!("WHEN {} THEN CAST({id} AS BIGINT)", b.reach(*k)))
        .collect();
    let rule_sql = b.rule(rule);
    let sql = format!(
        "INSERT INTO deliveries (broadcast_id, customer_id, channel_id, state, created_at) \
         SELECT $1, s.id, s.channel, 'pending', $2 FROM \
         (SELECT c.id, CASE {} ELSE NULL END AS channel FROM customers c \
          WHERE NOT c.opted_out AND {rule_sql}) s WHERE s.channel IS NOT NULL ORDER BY s.id",
        whens.join(" ")
    );
    (sql, b.binds)
}

/// What a take from a token bucket gives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Take {
    pub granted: u32,
    /// Tokens left in the bucket.
    pub left: f64,
    /// With nothing granted, how long until the next whole token.
    pub wait: std::time::Duration,
}

/// A token bucket's arithmetic: `tokens` held `elapsed` seconds ago, refilled at `per_second`
/// up to `capacity`; up to `want` whole tokens taken now.
pub fn take_tokens(tokens: f64, elapsed: f64, per_second: f64, capacity: f64, want: u32) -> Take {
    let per_second = per_second.max(f64::MIN_POSITIVE);
    let available = (tokens + elapsed.max(0.0) * per_second).min(capacity.max(1.0));
    let granted = (available.floor().max(0.0) as u64).min(want as u64) as u32;
    let left = available - granted as f64;
    let wait = if granted > 0 {
        std::time::Duration::ZERO
    } else {
        std::time::Duration::from_secs_f64(((1.0 - left) / per_second).clamp(0.0, 3600.0))
    };
    Take {
        granted,
        left,
        wait,
    }
}

#[cfg(test)]
mod bucket_tests {
    use super::take_tokens;
    use std::time::Duration;

    #[test]
    fn a_bucket_grants_what_has_refilled_up_to_its_capacity() {
        // Full: the capacity at most, then nothing until a token refills.
        let t = take_tokens(20.0, 0.0, 100.0, 20.0, 50);
        assert_eq!((t.granted, t.left), (20, 0.0));
        let t = take_tokens(t.left, 0.0, 100.0, 20.0, 50);
        assert_eq!(t.granted, 0);
        assert!(t.wait.abs_diff(Duration::from_millis(10)) < Duration::from_micros(1));
        // 55 ms later: five and a half tokens, five of them whole.
        let t = take_tokens(0.0, 0.055, 100.0, 20.0, 50);
        assert_eq!(t.granted, 5);
        assert!((t.left - 0.5).abs() < 1e-9);
        // Never more than asked, and an idle hour fills only to the capacity.
        assert_eq!(take_tokens(0.0, 3600.0, 100.0, 20.0, 3).granted, 3);
        assert_eq!(take_tokens(0.0, 3600.0, 100.0, 20.0, 500).granted, 20);
        // One a second: a whole second per token; a clock that went back refills nothing.
        let t = take_tokens(0.25, -5.0, 1.0, 1.0, 1);
        assert_eq!(t.granted, 0);
        assert_eq!(t.wait, Duration::from_millis(750));
    }
}
