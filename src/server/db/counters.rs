//! Broadcasts' counters, and the one order in which transactions take their locks.
//!
//! The counters (`broadcasts`, `broadcast_channel_counts`, `broadcast_timeline`) change in the
//! same transactions as the deliveries they count, so they are the hottest rows there are:
//! the dispatcher's record of every batch and every batch of provider reports and replies
//! update the same few rows. On PostgreSQL two transactions that lock the same rows in a
//! different order deadlock, and one of them is rolled back. Every transaction that changes
//! deliveries and counters therefore takes its locks in this order:
//!
//! 1. `deliveries` rows, by ascending id;
//! 2. rows only this transaction writes (new `messages`, `early_reports`, opt-outs, the audit log);
//! 3. `broadcast_failure_reasons`, by ascending (broadcast, reason key);
//! 4. `broadcast_channel_counts`, by ascending (broadcast, channel);
//! 6. `broadcast_timeline`, by ascending (broadcast, minute);
//! 7. `broadcasts`, by ascending id.
//!
//! Steps 3–7 are [`Tally::write_statements`], run last, just before the commit, so a counter
//! row is held for as short a time as possible. A transaction that needs a broadcast's status
//! first reads it without a lock and guards its final `UPDATE broadcasts` on it.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};

use super::states::{ACCEPTED, FAILED, REACHED, READ, UNKNOWN};
use super::{Db, DbError, Dialect, on_pool};
use crate::model::{BroadcastId, ChannelId};

/// The counter changes one transaction makes, gathered as it goes and written at its end.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Tally {
    /// (broadcast, channel) → [sent or further, delivered or further, read, replied, failed]
    channels: BTreeMap<(i64, i64), [i64; 5]>,
    /// (broadcast, minute) → [sent, delivered, read, replied]
    timeline: BTreeMap<(i64, i64), [i64; 4]>,
    /// (broadcast, reason key) → (reason, failures)
    reasons: BTreeMap<(i64, i64), (String, i64)>,
    /// broadcast → unknown deliveries (may have arrived; counted apart from the failed)
    unknown: BTreeMap<i64, i64>,
    /// (broadcast, channel) → deliveries that moved to (+) or from (−) the channel (fallback)
    audience: BTreeMap<(i64, i64), i64>,
}

/// A reason's key in `broadcast_failure_reasons`: FNV-1a of its text, kept to 63 bits so
/// both databases store it as a positive integer. Stable across versions and machines.
pub(crate) fn reason_key(reason: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in reason.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h >> 1) as i64
}

/// Adds to a broadcast's failures of one reason: ($1 broadcast, $2 key, $3 reason, $4 by).
pub(crate) const REASON_ADD: &str = "INSERT INTO broadcast_failure_reasons \
     (broadcast_id, reason_key, reason, failed) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (broadcast_id, reason_key) DO UPDATE SET \
     failed = broadcast_failure_reasons.failed + excluded.failed";

/// Which counter a change is to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Counter {
    Sent = 0,
    Delivered = 1,
    Read = 2,
    Replied = 3,
    Failed = 4,
}

impl Tally {
    /// Adds `by` to one counter of a broadcast on a channel (totals follow).
    pub fn add(&mut self, broadcast: BroadcastId, channel: ChannelId, counter: Counter, by: i64) {
        self.channels.entry((broadcast.0, channel.0)).or_default()[counter as usize] += by;
    }

    /// Adds `by` events of `counter` (not failures) at `minute` to a broadcast's timeline.
    pub fn add_timeline(&mut self, broadcast: BroadcastId, minute: i64, counter: Counter, by: i64) {
        if counter != Counter::Failed {
            self.timeline.entry((broadcast.0, minute)).or_default()[counter as usize] += by;
        }
    }

    /// Adds `by` to a broadcast's audience on a channel (a fallback moves people between
    /// channels; the broadcast's total stays).
    pub fn add_audience(&mut self, broadcast: BroadcastId, channel: ChannelId, by: i64) {
        *self.audience.entry((broadcast.0, channel.0)).or_default() += by;
    }

    /// Adds `by` to a broadcast's unknown deliveries.
    pub fn add_unknown(&mut self, broadcast: BroadcastId, by: i64) {
        *self.unknown.entry(broadcast.0).or_default() += by;
    }

    /// Adds `by` failures with `reason` to a broadcast's failures by reason.
    pub fn add_reason(&mut self, broadcast: BroadcastId, reason: &str, by: i64) {
        let entry = self
            .reasons
            .entry((broadcast.0, reason_key(reason)))
            .or_insert_with(|| (reason.to_string(), 0));
        entry.1 += by;
    }

    /// The broadcasts whose counters this changes.
    pub fn broadcasts(&self) -> std::collections::BTreeSet<i64> {
        let mut out: std::collections::BTreeSet<i64> = self.channels.keys().map(|k| k.0).collect();
        out.extend(self.unknown.keys().copied());
        out.extend(self.audience.keys().map(|k| k.0));
        out
    }

    /// The failures-by-reason changes, in the lock order: (broadcast, key, reason, by).
    pub fn reason_changes(&self) -> impl Iterator<Item = (i64, i64, &str, i64)> {
        self.reasons
            .iter()
            .filter(|(_, (_, by))| *by != 0)
            .map(|(&(b, key), (reason, by))| (b, key, reason.as_str(), *by))
    }

    /// The statements that write the counter changes after the failures by reason, in the
    /// lock order above, each with its (all integer) parameters.
    pub fn write_statements(&self) -> Vec<(&'static str, Vec<i64>)> {
        let mut out = Vec::new();
        // [the five per-channel counters, unknown]
        let mut totals: BTreeMap<i64, [i64; 6]> = BTreeMap::new();
        for (&broadcast, &unknown) in &self.unknown {
            totals.entry(broadcast).or_default()[5] += unknown;
        }
        let mut per_channel: BTreeMap<(i64, i64), ([i64; 5], i64)> = BTreeMap::new();
        for (&key, c) in &self.channels {
            per_channel.entry(key).or_default().0 = *c;
        }
        for (&key, by) in &self.audience {
            per_channel.entry(key).or_default().1 = *by;
        }
        for ((broadcast, channel), (c, audience)) in per_channel {
            if c == [0; 5] && audience == 0 {
                continue;
            }
            let t = totals.entry(broadcast).or_default();
            for (total, add) in t.iter_mut().zip(&c) {
                *total += add;
            }
            if audience != 0 {
                out.push((CHANNEL_AUDIENCE_ADD, vec![broadcast, channel, audience]));
            }
            if c == [0; 5] {
                continue;
            }
            out.push((
                "UPDATE broadcast_channel_counts SET sent_count = sent_count + $1, \
                 delivered_count = delivered_count + $2, read_count = read_count + $3, \
                 replied_count = replied_count + $4, failed_count = failed_count + $5 \
                 WHERE broadcast_id = $6 AND channel_id = $7",
                vec![c[0], c[1], c[2], c[3], c[4], broadcast, channel],
            ));
        }
        for (&(broadcast, minute), t) in &self.timeline {
            if *t == [0; 4] {
                continue;
            }
            out.push((
                TIMELINE_ADD,
                vec![broadcast, minute, t[0], t[1], t[2], t[3]],
            ));
        }
        for (broadcast, c) in totals {
            if c == [0; 6] {
                continue;
            }
            out.push((
                "UPDATE broadcasts SET sent_count = sent_count + $1, \
                 delivered_count = delivered_count + $2, read_count = read_count + $3, \
                 replied_count = replied_count + $4, failed_count = failed_count + $5, \
                 unknown_count = unknown_count + $6 WHERE id = $7",
                vec![c[0], c[1], c[2], c[3], c[4], c[5], broadcast],
            ));
        }
        out
    }
}

/// Runs a [`Tally`]'s statements inside the open transaction `$tx`.
macro_rules! write_tally {
    ($tx:expr, $tally:expr) => {{
        for (broadcast, key, reason, by) in $tally.reason_changes() {
            sqlx::query($crate::server::db::counters::REASON_ADD)
                .bind(broadcast)
                .bind(key)
                .bind(reason)
                .bind(by)
                .execute(&mut *$tx)
                .await?;
        }
        for (sql, binds) in $tally.write_statements() {
            let mut q = sqlx::query(sql);
            for b in binds {
                q = q.bind(b);
            }
            q.execute(&mut *$tx).await?;
        }
    }};
}
pub(crate) use write_tally;

/// Adds to a broadcast's audience on a channel, making its row if the channel had none:
/// ($1 broadcast, $2 channel, $3 by).
const CHANNEL_AUDIENCE_ADD: &str = "INSERT INTO broadcast_channel_counts \
     (broadcast_id, channel_id, audience_total) VALUES ($1, $2, $3) \
     ON CONFLICT (broadcast_id, channel_id) DO UPDATE SET \
     audience_total = broadcast_channel_counts.audience_total + excluded.audience_total";

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
pub(super) static RECOUNT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "COALESCE(SUM(CASE WHEN state IN ({ACCEPTED}) THEN 1 ELSE 0 END), 0), \
         COALESCE(SUM(CASE WHEN state IN ({REACHED}) THEN 1 ELSE 0 END), 0), \
         COALESCE(SUM(CASE WHEN state = {READ} THEN 1 ELSE 0 END), 0), \
         COALESCE(SUM(CASE WHEN replied_at IS NOT NULL THEN 1 ELSE 0 END), 0), \
         COALESCE(SUM(CASE WHEN state = {FAILED} THEN 1 ELSE 0 END), 0)"
    )
});

impl Db {
    /// The counters as a full recount of the deliveries gives them: (audience, sent or
    /// further, delivered or further, read, replied, failed). Tests compare it with the
    /// maintained counters.
    pub async fn recount(&self, broadcast: i64) -> Result<[i64; 6], DbError> {
        let row: (i64, i64, i64, i64, i64, i64) = on_pool!(self, p => sqlx::query_as(
            &format!("SELECT COUNT(*), {} FROM deliveries WHERE broadcast_id = $1", *RECOUNT),
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
               UNION ALL SELECT {}, 0, 1, 0, 0 FROM deliveries WHERE broadcast_id = {id} AND delivered_at IS NOT NULL AND state IN ({REACHED}) \
               UNION ALL SELECT {}, 0, 0, 1, 0 FROM deliveries WHERE broadcast_id = {id} AND read_at IS NOT NULL AND state = {READ} \
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
                &format!("UPDATE broadcasts SET audience_total = $1, sent_count = $2, delivered_count = $3, \
                 read_count = $4, replied_count = $5, failed_count = $6, \
                 unknown_count = (SELECT COUNT(*) FROM deliveries WHERE broadcast_id = $7 AND state = {UNKNOWN}) \
                 WHERE id = $7"),
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

    /// Broadcast `id`'s failures grouped by reason, most first (at most `limit`), and the
    /// number of other reasons left out.
    pub async fn failure_reasons(
        &self,
        id: i64,
        limit: i64,
    ) -> Result<(Vec<(String, i64)>, i64), DbError> {
        let mut rows: Vec<(String, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT reason, failed FROM broadcast_failure_reasons \
             WHERE broadcast_id = $1 AND failed > 0 ORDER BY failed DESC, reason LIMIT $2",
        )
        .bind(id)
        .bind(limit + 1)
        .fetch_all(p)
        .await?);
        let more = if rows.len() as i64 > limit {
            rows.truncate(limit as usize);
            let n: i64 = on_pool!(self, p => sqlx::query_scalar(
                "SELECT COUNT(*) FROM broadcast_failure_reasons WHERE broadcast_id = $1 AND failed > 0",
            )
            .bind(id)
            .fetch_one(p)
            .await?);
            n - limit
        } else {
            0
        };
        Ok((rows, more))
    }

    /// [`Db::recount`] per channel, by channel id.
    pub async fn recount_by_channel(
        &self,
        broadcast: i64,
    ) -> Result<Vec<(i64, [i64; 6])>, DbError> {
        self.per_channel(
            &format!(
                "SELECT channel_id, COUNT(*), {} FROM deliveries WHERE broadcast_id = $1 \
                 GROUP BY channel_id ORDER BY channel_id",
                *RECOUNT
            ),
            broadcast,
        )
        .await
    }

    /// Rows of (channel, six counters) from `sql` with `$1` = `broadcast`.
    pub(super) async fn per_channel(
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_written_channels_then_timeline_then_broadcasts_each_in_key_order() {
        let mut t = Tally::default();
        t.add(BroadcastId(9), ChannelId(2), Counter::Sent, 3);
        t.add(BroadcastId(4), ChannelId(7), Counter::Read, 1);
        t.add(BroadcastId(9), ChannelId(1), Counter::Failed, 1);
        t.add(BroadcastId(4), ChannelId(7), Counter::Replied, 2);
        t.add_timeline(BroadcastId(9), 100, Counter::Sent, 3);
        t.add_timeline(BroadcastId(4), 101, Counter::Read, 1);
        t.add_timeline(BroadcastId(4), 99, Counter::Replied, 2);
        t.add_timeline(BroadcastId(4), 99, Counter::Failed, 5);
        t.add_unknown(BroadcastId(2), 1);
        let s = t.write_statements();
        let kinds: Vec<(&str, Vec<i64>)> = s
            .iter()
            .map(|(sql, b)| {
                let table = if sql.contains("broadcast_channel_counts") {
                    "channel"
                } else if sql.contains("broadcast_timeline") {
                    "timeline"
                } else {
                    "broadcast"
                };
                (table, b.clone())
            })
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("channel", vec![0, 0, 1, 2, 0, 4, 7]),
                ("channel", vec![0, 0, 0, 0, 1, 9, 1]),
                ("channel", vec![3, 0, 0, 0, 0, 9, 2]),
                ("timeline", vec![4, 99, 0, 0, 0, 2]),
                ("timeline", vec![4, 101, 0, 0, 1, 0]),
                ("timeline", vec![9, 100, 3, 0, 0, 0]),
                ("broadcast", vec![0, 0, 0, 0, 0, 1, 2]),
                ("broadcast", vec![0, 0, 1, 2, 0, 0, 4]),
                ("broadcast", vec![3, 0, 0, 0, 1, 0, 9]),
            ]
        );
        assert!(Tally::default().write_statements().is_empty());
    }
}
