//! Recording what the providers said about a claimed batch, in one transaction in the lock
//! order (`counters`), then applying the early reports about the ids just written.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::claims::Claimed;
use super::counters::{Counter, Tally, minute, write_tally};
use super::reports::EarlyRow;
use super::retry::retrying;
use super::states::{FAILED, PENDING, SENDING, SENT, UNKNOWN};
use super::{Db, DbError, Dialect, on_pool};
use crate::model::{BroadcastId, ChannelId};

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
    /// Failed for now, with the provider's reason; "Retry failed" sends it again only from
    /// `retry_from` (WhatsApp's per-user marketing limit).
    NotNow {
        reason: String,
        retry_from: DateTime<Utc>,
    },
    /// Not sent (the broadcast was paused or cancelled meanwhile): back to pending, the attempt
    /// not counted.
    Released,
    /// The request may have reached a provider whose reports name the delivery: it stays
    /// uncertain (its claim over, its start kept) until a report records it as sent, and is
    /// claimed again only once the reconciliation window passed with none.
    Uncertain { reason: String },
    /// The request may have reached a provider that cannot tell: unknown — may have arrived,
    /// never sent again on its own.
    Unknown { reason: String },
}

/// Locks deliveries `$ids` by ascending id (PostgreSQL; see `counters`), before statements
/// that would touch them in whatever order their plans choose.
macro_rules! lock_deliveries {
    ($tx:expr, $ids:expr) => {{
        let mut ids: Vec<i64> = $ids.collect();
        ids.sort_unstable();
        for chunk in ids.chunks(1000) {
            let list = chunk
                .iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(",");
            sqlx::query(&format!(
                "SELECT id FROM deliveries WHERE id IN ({list}) ORDER BY id FOR UPDATE"
            ))
            .execute(&mut *$tx)
            .await?;
        }
    }};
}

/// Records the accepted sends `$sent` (delivery, provider id), 500 to a statement, each only
/// if it is still the claim that sent it; counts them in `$tally`.
macro_rules! record_sent {
    ($tx:expr, $sent:expr, $now:expr, $tally:expr) => {{
        let (sent, now, tally): (&[(&Claimed, &str)], DateTime<Utc>, &mut Tally) = ($sent, $now, $tally);
        let set_sent = format!("SET state = {SENT}, provider_message_id = v.pid, sent_at = $1, claimed_until = NULL, error = NULL");
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
                 AND deliveries.state = {SENDING} AND deliveries.attempts = v.attempts \
                 RETURNING deliveries.broadcast_id, deliveries.channel_id"
            ));
            let mut q = sqlx::query_as(&sql).bind(now);
            for (c, pid) in chunk {
                q = q.bind(c.id).bind(c.attempts).bind(*pid);
            }
            let moved: Vec<(BroadcastId, ChannelId)> = q.fetch_all(&mut *$tx).await?;
            for (b, ch) in moved {
                tally.add(b, ch, Counter::Sent, 1);
                tally.add_timeline(b, minute(now), Counter::Sent, 1);
            }
        }
    }};
}

/// Records the other outcomes one by one (retry later, failed, released), each only if it is
/// still the claim that sent it; counts the failures in `$tally`.
macro_rules! record_rest {
    ($tx:expr, $rest:expr, $now:expr, $tally:expr) => {{
        let (rest, now, tally): (&[&(Claimed, Outcome)], DateTime<Utc>, &mut Tally) = ($rest, $now, $tally);
        let retry = format!(
            "UPDATE deliveries SET state = {PENDING}, error = $1, next_attempt_at = $2, \
             claimed_until = NULL, parts_sent = COALESCE($5, parts_sent) \
             WHERE id = $3 AND state = {SENDING} AND attempts = $4"
        );
        let fail = format!(
            "UPDATE deliveries SET state = {FAILED}, error = $1, failed_at = $2, \
             retry_not_before = $6, claimed_until = NULL, parts_sent = COALESCE($5, parts_sent) \
             WHERE id = $3 AND state = {SENDING} AND attempts = $4"
        );
        let release = format!(
            "UPDATE deliveries SET state = {PENDING}, claimed_until = NULL, attempts = attempts - 1 \
             WHERE id = $1 AND state = {SENDING} AND attempts = $2"
        );
        // The claim ends now; the start stays, so the window counts from the request.
        let uncertain = format!(
            "UPDATE deliveries SET error = $1, claimed_until = $2, \
             parts_sent = COALESCE($5, parts_sent) \
             WHERE id = $3 AND state = {SENDING} AND attempts = $4"
        );
        let unknown = format!(
            "UPDATE deliveries SET state = {UNKNOWN}, error = $1, claimed_until = NULL, \
             next_attempt_at = $2, parts_sent = COALESCE($5, parts_sent) \
             WHERE id = $3 AND state = {SENDING} AND attempts = $4"
        );
        for (c, outcome) in rest {
            let no_time: Option<DateTime<Utc>> = None;
            let q = match outcome {
                Outcome::Sent { .. } => continue,
                Outcome::Retry { reason, at } => sqlx::query(&retry).bind(reason).bind(*at),
                Outcome::Failed { reason } => sqlx::query(&fail).bind(reason).bind(now),
                Outcome::NotNow { reason, .. } => sqlx::query(&fail).bind(reason).bind(now),
                Outcome::Released => sqlx::query(&release),
                Outcome::Uncertain { reason } => sqlx::query(&uncertain).bind(reason).bind(now),
                Outcome::Unknown { reason } => sqlx::query(&unknown).bind(reason).bind(no_time),
            };
            let q = q.bind(c.id).bind(c.attempts);
            let q = match outcome {
                Outcome::Released => q,
                _ => q.bind(c.parts_sent.as_deref()),
            };
            let q = match outcome {
                Outcome::Failed { .. } => q.bind(no_time),
                Outcome::NotNow { retry_from, .. } => q.bind(Some(*retry_from)),
                _ => q,
            };
            let changed = q.execute(&mut *$tx).await?.rows_affected();
            if changed > 0
                && let Outcome::Failed { reason } | Outcome::NotNow { reason, .. } = outcome
            {
                tally.add(c.broadcast_id, c.channel_id, Counter::Failed, 1);
                tally.add_reason(c.broadcast_id, reason, 1);
            }
            if changed > 0 && matches!(outcome, Outcome::Unknown { .. }) {
                tally.add_unknown(c.broadcast_id, 1);
            }
        }
    }};
}

/// Records a delivery in state `from` as sent because a report named it: ($1 provider id,
/// $2 at, $3 delivery, $4 channel, $5 round); its broadcast.
fn reported_sent(from: &str) -> String {
    format!(
        "UPDATE deliveries SET state = {SENT}, provider_message_id = $1, sent_at = $2, \
         claimed_until = NULL, error = NULL \
         WHERE id = $3 AND channel_id = $4 AND retry_round = $5 AND state = {from} \
         RETURNING broadcast_id"
    )
}

impl Db {
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
        let mut broadcasts: Vec<i64> = results.iter().map(|(c, _)| c.broadcast_id.0).collect();
        broadcasts.dedup();
        for b in broadcasts {
            self.note_progress(b);
        }
        let recorded: Vec<(ChannelId, &str)> = results
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
    pub(super) async fn record_once(
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
        on_pool!(self, p => {
            let mut tx = p.begin().await?;
            if dialect == Dialect::Postgres {
                lock_deliveries!(tx, results.iter().map(|(c, _)| c.id));
            }
            let mut tally = Tally::default();
            record_sent!(tx, &sent, now, &mut tally);
            record_rest!(tx, &rest, now, &mut tally);
            write_tally!(tx, tally);
            tx.commit().await?;
            Ok::<(), DbError>(())
        })
    }

    /// A provider reported on messages that name their delivery (WhatsApp's
    /// `biz_opaque_callback_data`, the key in an SMS status callback's URL) before Herald
    /// recorded their send: (delivery, retry round, provider id). Each such delivery of
    /// `channel_id` that is still being sent in that round — its worker about to record it,
    /// or dead after the request — is recorded as sent with that id, counted once, and the
    /// early reports about it applied. Another report of it, or the worker's own record,
    /// then changes nothing more. Returns how many were recorded.
    pub async fn reconcile_sent(
        &self,
        channel_id: ChannelId,
        named: &[(i64, i64, String)],
        now: DateTime<Utc>,
    ) -> Result<usize, DbError> {
        if named.is_empty() {
            return Ok(0);
        }
        // Most reports name a send recorded already: a read finds the few still being sent,
        // so only they cost a write.
        let list = named
            .iter()
            .map(|n| n.0.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let open: Vec<i64> = on_pool!(self, p => sqlx::query_scalar(&format!(
            "SELECT id FROM deliveries WHERE id IN ({list}) AND state IN ({SENDING}, {UNKNOWN})"
        ))
        .fetch_all(p)
        .await?);
        if open.is_empty() {
            return Ok(0);
        }
        let mut sorted: Vec<&(i64, i64, String)> =
            named.iter().filter(|n| open.contains(&n.0)).collect();
        sorted.sort_by_key(|n| n.0);
        sorted.dedup_by_key(|n| n.0);
        let sorted = &sorted[..];
        let recorded: Vec<String> = retrying("recording reported sends", move || async move {
            // Still being sent, or given up on as unknown: the report says it went out.
            let (from_sending, from_unknown) = (reported_sent(SENDING), reported_sent(UNKNOWN));
            on_pool!(self, p => {
                let mut tx = super::begin_write!(p, self.dialect());
                let mut tally = Tally::default();
                let mut recorded = Vec::new();
                // One row at a time in ascending id: the lock order (`counters`).
                for (id, round, pid) in sorted {
                    let mut moved: Option<BroadcastId> = None;
                    for (sql, was_unknown) in [(&from_sending, false), (&from_unknown, true)] {
                        moved = sqlx::query_scalar(sql)
                            .bind(pid)
                            .bind(now)
                            .bind(id)
                            .bind(channel_id)
                            .bind(round)
                            .fetch_optional(&mut *tx)
                            .await?;
                        if let Some(b) = moved {
                            if was_unknown {
                                tally.add_unknown(b, -1);
                            }
                            break;
                        }
                    }
                    if let Some(b) = moved {
                        tally.add(b, channel_id, Counter::Sent, 1);
                        tally.add_timeline(b, minute(now), Counter::Sent, 1);
                        recorded.push(pid.clone());
                    }
                }
                write_tally!(tx, tally);
                tx.commit().await?;
                Ok::<Vec<String>, DbError>(recorded)
            })
        })
        .await?;
        let pids: Vec<(ChannelId, &str)> =
            recorded.iter().map(|p| (channel_id, p.as_str())).collect();
        if !pids.is_empty()
            && let Err(e) = self.apply_early_reports_for(&pids).await
        {
            tracing::warn!(error = %e, "applying early provider reports failed");
        }
        Ok(recorded.len())
    }

    /// Applies the reports that arrived before these (channel, provider id) messages were
    /// recorded. Looks only at the messages just recorded (an indexed lookup), so a backlog of
    /// reports that never match costs the dispatcher nothing; one probe when there are none.
    pub(super) async fn apply_early_reports_for(
        &self,
        recorded: &[(ChannelId, &str)],
    ) -> Result<usize, DbError> {
        let mut by_channel: HashMap<i64, Vec<&str>> = HashMap::new();
        for (channel, pid) in recorded {
            by_channel.entry(channel.0).or_default().push(pid);
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
}
