//! The channels' token buckets, one row per channel shared by every instance.

use super::{Db, DbError, Dialect, begin_write, on_pool};

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

impl Db {
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
        // A bucket held by a throttle (`refilled_us` ahead of now) grants nothing until then.
        let held_for = |(_, refilled_us, now_us): (f64, i64, i64)| {
            std::time::Duration::from_micros((refilled_us - now_us).max(0) as u64)
        };
        // A look without a lock first: while the bucket is empty, waiting senders write
        // nothing (on SQLite every write transaction contends with the rest of the app).
        let peek: Option<(f64, i64, i64)> = on_pool!(self, p => sqlx::query_as(&read)
            .bind(channel)
            .fetch_optional(p)
            .await?);
        if let Some(bucket) = peek
            && let look = take_from(bucket)
            && look.granted == 0
            && returned == 0
        {
            return Ok((0, look.wait + held_for(bucket)));
        }
        Ok(on_pool!(self, p => {
            let mut tx = begin_write!(p, dialect);
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
            (take.granted, take.wait + held_for(bucket))
        }))
    }

    /// A provider throttled `channel`: its bucket is held empty for `wait` (no instance is
    /// granted a token before then), then refills from nothing.
    pub async fn hold_send_tokens(
        &self,
        channel: i64,
        wait: std::time::Duration,
    ) -> Result<(), DbError> {
        let (now_sql, max) = match self.dialect() {
            Dialect::Postgres => (
                "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT",
                "GREATEST",
            ),
            Dialect::Sqlite => ("CAST(unixepoch('subsec') * 1000000 AS INTEGER)", "MAX"),
        };
        let sql = format!(
            "UPDATE channel_rate_buckets SET tokens = 0, \
             refilled_us = {max}(refilled_us, {now_sql} + $1) WHERE channel_id = $2"
        );
        let wait_us = wait.as_micros().min(3_600_000_000) as i64;
        on_pool!(self, p => sqlx::query(&sql).bind(wait_us).bind(channel).execute(p).await.map(|_| ())?);
        Ok(())
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
