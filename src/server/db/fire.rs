//! Firing due schedules: a broadcast's audience materialised into deliveries in one
//! `INSERT … SELECT`, missed schedules marked (or sent late on request), finished broadcasts
//! closed.

use crate::model::{BroadcastId, UserId};
use chrono::{DateTime, Utc};

use super::audience::{AudienceBind, AudienceSql, Builder, bind_audience};
use super::eligible::{Eligibility, left_out_sql};
use super::split::{Shape, Split};
use super::states::{
    BROADCAST_FAILED, BROADCAST_SENDING, BROADCAST_SENT, CANCELLED, FAILED, PENDING, SCHEDULED,
    SENT, WAITING,
};
use super::{Db, DbError, Dialect, audit_in, begin_write, on_pool};
use crate::model::Lifecycle;
use crate::model::audience::AudienceRule;
use crate::model::channel::ChannelKind;
use crate::model::compose::Timing;

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

/// A stored audience rule and channel list, as the broadcast row keeps them.
pub(super) fn parse_plan(audience: &str, channels: &str) -> (AudienceRule, Vec<i64>) {
    (
        serde_json::from_str(audience).unwrap_or_default(),
        serde_json::from_str(channels).unwrap_or_default(),
    )
}

/// When a broadcast's recipients may first get it, by phone prefix and time zone (computed
/// with the time zone database above storage, `server::waves`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WavePlan {
    /// The longest prefix first; the last group (`prefix: None`) is everyone else.
    pub groups: Vec<PrefixWaves>,
    /// The workspace's zone, which customers without a known zone of their own follow.
    pub default_zone: String,
}

/// The not-before times of customers whose phone starts with `prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefixWaves {
    pub prefix: Option<String>,
    /// For zones not named in `by_time` (the workspace's, and unknown names).
    pub default_at: DateTime<Utc>,
    /// Instants other than `default_at`, with the stored zone names that get them.
    pub by_time: Vec<(DateTime<Utc>, Vec<String>)>,
}

impl WavePlan {
    /// One moment for everyone, `at`.
    pub fn at_once(at: DateTime<Utc>) -> WavePlan {
        WavePlan {
            groups: vec![PrefixWaves {
                prefix: None,
                default_at: at,
                by_time: Vec::new(),
            }],
            default_zone: "UTC".into(),
        }
    }

    /// Each distinct instant with the zones it is for (the waves), earliest first.
    pub fn waves(&self) -> Vec<(DateTime<Utc>, Vec<String>)> {
        let mut out: std::collections::BTreeMap<DateTime<Utc>, Vec<String>> = Default::default();
        for g in &self.groups {
            let zones = out.entry(g.default_at).or_default();
            if !zones.contains(&self.default_zone) {
                zones.push(self.default_zone.clone());
            }
            for (at, names) in &g.by_time {
                let zones = out.entry(*at).or_default();
                for n in names {
                    if !zones.contains(n) {
                        zones.push(n.clone());
                    }
                }
            }
        }
        out.into_iter().collect()
    }
}

impl Builder {
    /// The not-before time of customer `c` under `plan`, as one `CASE` (a bound value when
    /// everyone gets the same).
    pub(super) fn waves(&mut self, plan: &WavePlan) -> String {
        let mut by_prefix = Vec::new();
        let mut otherwise = String::new();
        for g in &plan.groups {
            let mut whens = Vec::new();
            for (at, zones) in &g.by_time {
                let names: Vec<String> = zones
                    .iter()
                    .map(|z| self.bind(AudienceBind::Text(z.clone())))
                    .collect();
                let at = self.bind(AudienceBind::Time(*at));
                whens.push(format!(
                    "WHEN c.time_zone IN ({}) THEN {at}",
                    names.join(", ")
                ));
            }
            let default_at = self.bind(AudienceBind::Time(g.default_at));
            let value = if whens.is_empty() {
                default_at
            } else {
                format!("CASE {} ELSE {default_at} END", whens.join(" "))
            };
            match &g.prefix {
                Some(p) => {
                    let pattern = self.bind(AudienceBind::Text(format!("{p}%")));
                    by_prefix.push(format!("WHEN c.phone LIKE {pattern} THEN {value}"));
                }
                None => otherwise = value,
            }
        }
        if by_prefix.is_empty() {
            otherwise
        } else {
            format!("CASE {} ELSE {otherwise} END", by_prefix.join(" "))
        }
    }
}

/// `INSERT … SELECT` of one pending delivery per customer the rule reaches on `picked`
/// (`$1` broadcast, `$2` now, audience values from `$3`), on the first picked channel that
/// reaches them, each not before its wave's time under `plan`.
pub(super) fn materialise_sql(
    dialect: Dialect,
    rule: &AudienceRule,
    picked: &[(i64, ChannelKind)],
    plan: &WavePlan,
    e: &Eligibility,
    shape: Shape,
) -> (String, Vec<AudienceBind>) {
    let mut b = Builder {
        dialect,
        first: 3,
        binds: Vec::new(),
    };
    let wave = b.waves(plan);
    let (variant, wave) = match shape.split {
        Some(split) => split.columns(&mut b, wave),
        None => ("0".to_string(), wave),
    };
    let fallback = shape.fallback;
    let over = b.over_cap(e);
    if let [(id, kind)] = picked {
        // One channel (the usual case): reachability is a plain condition, which PostgreSQL
        // plans as an anti-join instead of a probe per customer. Rows go in customer order,
        // so the (broadcast, customer) index grows at its end instead of splitting pages.
        let rule_sql = b.rule(rule);
        let reach = format!("{} AND {}", b.reach(*kind), b.consents(*kind, e));
        let sql = format!(
            "INSERT INTO deliveries (broadcast_id, customer_id, channel_id, state, created_at, next_attempt_at, variant) \
             SELECT $1, c.id, CAST({id} AS BIGINT), {PENDING}, $2, {wave}, {variant} FROM customers c \
             WHERE NOT c.opted_out AND {rule_sql} AND {reach} AND NOT ({over}) ORDER BY c.id"
        );
        return (sql, b.binds);
    }
    let whens: Vec<String> = picked
        .iter()
        .map(|(id, k)| {
            let reach = format!("{} AND {}", b.reach(*k), b.consents(*k, e));
            format!("WHEN {reach} THEN CAST({id} AS BIGINT)")
        })
        .collect();
    let rule_sql = b.rule(rule);
    // With a fallback, a delivery on any but the last channel may move on later.
    let open = match (fallback, picked.last()) {
        (true, Some((last, _))) => format!("s.channel <> CAST({last} AS BIGINT)"),
        _ => "FALSE".to_string(),
    };
    let sql = format!(
        "INSERT INTO deliveries (broadcast_id, customer_id, channel_id, state, created_at, next_attempt_at, fallback_open, variant) \
         SELECT $1, s.id, s.channel, {PENDING}, $2, s.wave, {open}, s.variant FROM \
         (SELECT c.id, CASE {} ELSE NULL END AS channel, {wave} AS wave, {variant} AS variant FROM customers c \
          WHERE NOT c.opted_out AND {rule_sql} AND NOT ({over})) s WHERE s.channel IS NOT NULL ORDER BY s.id",
        whens.join(" ")
    );
    (sql, b.binds)
}

/// The broadcast's channels (`$ids`, in its order) that still exist and are enabled.
macro_rules! enabled_of {
    ($tx:expr, $ids:expr) => {{
        let mut picked: Vec<(i64, ChannelKind)> = Vec::new();
        for cid in $ids {
            let kind: Option<String> =
                sqlx::query_scalar("SELECT kind FROM channels WHERE id = $1 AND enabled")
                    .bind(cid)
                    .fetch_optional(&mut *$tx)
                    .await?;
            if let Some(k) = kind.as_deref().and_then(ChannelKind::parse) {
                picked.push((cid, k));
            }
        }
        picked
    }};
}
pub(super) use enabled_of;

/// One pending delivery per customer the rule reaches (on the first picked channel that
/// reaches them), and each channel's audience counted; the number of deliveries.
macro_rules! materialise {
    ($tx:expr, $dialect:expr, $id:expr, $now:expr, $rule:expr, $picked:expr, $plan:expr, $e:expr, $shape:expr) => {{
        let (id, now, picked): (i64, DateTime<Utc>, &[(i64, ChannelKind)]) = ($id, $now, $picked);
        let (sql, binds) = materialise_sql($dialect, $rule, picked, $plan, $e, $shape);
        let mut q = sqlx::query(&sql).bind(id).bind(now);
        for b in &binds {
            q = match b {
                AudienceBind::Id(v) => q.bind(*v),
                AudienceBind::Kind(k) => q.bind(*k),
                AudienceBind::Text(t) => q.bind(t.clone()),
                AudienceBind::Time(t) => q.bind(*t),
            };
        }
        let n = q.execute(&mut *$tx).await?.rows_affected() as i64;
        if let [(only, _)] = picked[..] {
            // One channel has them all: no need to count again.
            sqlx::query(
                "INSERT INTO broadcast_channel_counts (broadcast_id, channel_id, audience_total) \
                 VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(only)
            .bind(n)
            .execute(&mut *$tx)
            .await?;
        } else {
            sqlx::query(
                "INSERT INTO broadcast_channel_counts (broadcast_id, channel_id, audience_total) \
                 SELECT broadcast_id, channel_id, COUNT(*) FROM deliveries WHERE broadcast_id = $1 \
                 GROUP BY broadcast_id, channel_id",
            )
            .bind(id)
            .execute(&mut *$tx)
            .await?;
        }
        n
    }};
}

/// Turns scheduled broadcast `$id` Sending at `$now`, with its expiry and fallback from
/// `$timing`; whether it was still scheduled.
macro_rules! start_sending {
    ($tx:expr, $id:expr, $now:expr, $timing:expr) => {{
        let (id, now, timing): (i64, DateTime<Utc>, &Timing) = ($id, $now, $timing);
        let expires = timing
            .expire_hours
            .map(|h| now + chrono::Duration::hours(i64::from(h)));
        sqlx::query(&format!(
            "UPDATE broadcasts SET status = {BROADCAST_SENDING}, started_at = $1, updated_at = $1, \
             expires_at = $3, fallback_hours = $4 WHERE id = $2 AND status = {SCHEDULED}"
        ))
        .bind(now)
        .bind(id)
        .bind(expires)
        .bind(timing.fallback_hours.map(i64::from))
        .execute(&mut *$tx)
        .await?
        .rows_affected()
            > 0
    }};
}

/// Marks a broadcast due at `at` and found at `now` missed (and audits it); whether it was.
macro_rules! mark_missed {
    ($tx:expr, $id:expr, $at:expr, $now:expr) => {{
        let (id, at, now): (i64, DateTime<Utc>, DateTime<Utc>) = ($id, $at, $now);
        let n = sqlx::query(&format!(
            "UPDATE broadcasts SET missed_at = $1, updated_at = $1 WHERE id = $2 \
             AND status = {SCHEDULED} AND missed_at IS NULL"
        ))
        .bind(now)
        .bind(id)
        .execute(&mut *$tx)
        .await?
        .rows_affected();
        audit_in!(
            $tx,
            now,
            None::<i64>,
            "missed",
            "broadcast",
            id,
            format!("due at {at}, found at {now}")
        )?;
        n > 0
    }};
}

/// A delivery of `broadcasts` that may yet fall back: failed for good, or sent on a channel
/// that reports delivery and not delivered yet, with a later channel to try.
static MAY_FALL_BACK: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT 1 FROM deliveries d WHERE d.broadcast_id = broadcasts.id AND d.fallback_open \
         AND d.replied_at IS NULL AND (d.state = {FAILED} OR (d.state = {SENT} AND d.channel_id IN \
         (SELECT id FROM channels WHERE kind IN ({}))))",
        super::states::reporting_kinds()
    )
});

/// A due broadcast as firing reads it: its time, audience, channels, timing and A/B test.
type DuePlan = (
    Option<DateTime<Utc>>,
    String,
    String,
    Option<String>,
    Option<String>,
);

/// Records who broadcast `$id` left out (reachable and matched, without a delivery).
macro_rules! write_left_out {
    ($tx:expr, $dialect:expr, $id:expr, $rule:expr, $picked:expr, $e:expr) => {{
        let (sql, binds) = left_out_sql($dialect, $rule, $picked, $e);
        let q = sqlx::query(&sql).bind($id);
        let a = AudienceSql {
            clause: String::new(),
            binds,
        };
        bind_audience!(q, a).execute(&mut *$tx).await?;
    }};
}

/// Most zone names a wave's row keeps (the rest are counted).
const WAVE_ZONES_SHOWN: usize = 3;

/// Stores a broadcast's waves: each instant with the zones it is for.
macro_rules! write_waves {
    ($tx:expr, $id:expr, $waves:expr) => {{
        for (at, zones) in $waves {
            let mut label = zones
                .iter()
                .take(WAVE_ZONES_SHOWN)
                .cloned()
                .collect::<Vec<_>>()
                .join(", ");
            if zones.len() > WAVE_ZONES_SHOWN {
                label.push_str(&format!(" and {} more", zones.len() - WAVE_ZONES_SHOWN));
            }
            sqlx::query(
                "INSERT INTO broadcast_waves (broadcast_id, at, zones) VALUES ($1, $2, $3)",
            )
            .bind($id)
            .bind(at)
            .bind(label)
            .execute(&mut *$tx)
            .await?;
        }
    }};
}

impl Db {
    /// Scheduled, unpaused broadcasts whose time has come, oldest first.
    pub async fn due_broadcasts(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<(i64, DateTime<Utc>)>, DbError> {
        let rows = on_pool!(self, p => sqlx::query_as(
            &format!("SELECT id, scheduled_at FROM broadcasts WHERE status = {SCHEDULED} AND NOT paused \
             AND missed_at IS NULL AND scheduled_at <= $1 ORDER BY scheduled_at, id LIMIT 100"),
        )
        .bind(now)
        .fetch_all(p)
        .await?);
        Ok(rows)
    }

    /// The database server's clock now (PostgreSQL's `clock_timestamp()`; SQLite's, which is
    /// this machine's C library clock, not the process's own).
    pub async fn server_time(&self) -> Result<DateTime<Utc>, DbError> {
        match self.dialect() {
            super::Dialect::Postgres => {
                Ok(on_pool!(self, p => sqlx::query_scalar::<_, DateTime<Utc>>(
                "SELECT clock_timestamp()",
            )
            .fetch_one(p)
            .await?))
            }
            super::Dialect::Sqlite => {
                let micros: i64 = on_pool!(self, p => sqlx::query_scalar(
                    "SELECT CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)",
                )
                .fetch_one(p)
                .await?);
                Ok(DateTime::from_timestamp_micros(micros).unwrap_or_default())
            }
        }
    }

    /// The earliest time a scheduled broadcast is due, if any (the dispatcher sleeps until then).
    pub async fn next_due(&self) -> Result<Option<DateTime<Utc>>, DbError> {
        let t: Option<DateTime<Utc>> = on_pool!(self, p => sqlx::query_scalar(
            &format!("SELECT MIN(scheduled_at) FROM broadcasts WHERE status = {SCHEDULED} AND NOT paused \
             AND missed_at IS NULL"),
        )
        .fetch_one(p)
        .await?);
        Ok(t)
    }

    /// [`Db::fire_with`] at one moment for everyone, `now` (demo data, tools and tests).
    pub async fn fire(
        &self,
        id: i64,
        now: DateTime<Utc>,
        grace: chrono::Duration,
    ) -> Result<Fired, DbError> {
        let plan = WavePlan::at_once(now);
        self.fire_with(id, now, grace, &plan, &Eligibility::default())
            .await
    }

    /// Fires broadcast `id` if it is still due: later than `grace` → missed; otherwise it turns
    /// Sending and its audience becomes one pending delivery per recipient, on the first of
    /// its channels that reaches them, each not before its time under `plan` — all in one
    /// transaction, so it happens once however many instances try.
    pub async fn fire_with(
        &self,
        id: i64,
        now: DateTime<Utc>,
        grace: chrono::Duration,
        plan: &WavePlan,
        e: &Eligibility,
    ) -> Result<Fired, DbError> {
        let dialect = self.dialect();
        let withdrawals = self.any_withdrawal().await?;
        on_pool!(self, p => {
            let mut tx = begin_write!(p, dialect);
            let row: Option<DuePlan> = sqlx::query_as(
                &format!("SELECT scheduled_at, audience, channel_ids, timing, ab FROM broadcasts WHERE id = $1 \
                 AND status = {SCHEDULED} AND NOT paused AND missed_at IS NULL AND scheduled_at <= $2"),
            )
            .bind(id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let Some((Some(at), audience, channels, timing, ab)) = row else {
                tx.rollback().await?;
                return Ok(Fired::Skipped);
            };
            if now - at > grace {
                let missed = mark_missed!(tx, id, at, now);
                tx.commit().await?;
                return Ok(if missed { Fired::Missed } else { Fired::Skipped });
            }
            let timing: Timing = timing.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
            let fallback = timing.fallback_hours;
            if !start_sending!(tx, id, now, &timing) {
                tx.rollback().await?;
                return Ok(Fired::Skipped);
            }
            let (rule, channel_ids) = parse_plan(&audience, &channels);
            let picked = enabled_of!(tx, channel_ids);
            let deliveries = if picked.is_empty() {
                0
            } else {
                let shape = Shape { fallback: fallback.is_some(), split: Split::of(id, ab.as_deref()) };
                materialise!(tx, dialect, id, now, &rule, &picked, plan, e, shape)
            };
            let kinds: Vec<ChannelKind> = picked.iter().map(|(_, k)| *k).collect();
            if !picked.is_empty() && (withdrawals || e.restricts(&kinds)) {
                write_left_out!(tx, dialect, id, &rule, &picked, e);
            }
            let waves = plan.waves();
            if deliveries > 0 && (waves.len() > 1 || waves.iter().any(|(at, _)| *at > now)) {
                write_waves!(tx, id, waves);
            }
            // Nobody to send to: done at once.
            let finish = if deliveries == 0 {
                format!(", status = {BROADCAST_SENT}, finished_at = $2")
            } else {
                String::new()
            };
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
            &format!("SELECT id, channel_ids FROM broadcasts WHERE status = {BROADCAST_SENDING} AND NOT paused ORDER BY started_at, id"),
        )
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(id, c)| (id, serde_json::from_str(&c).unwrap_or_default()))
            .collect())
    }

    /// Sending broadcasts with nothing pending or in flight become Sent (or Failed, when every
    /// delivery failed). Returns the ones finished.
    pub async fn finish_done(&self, now: DateTime<Utc>) -> Result<Vec<i64>, DbError> {
        let ids: Vec<i64> = on_pool!(self, p => sqlx::query_scalar(
            &format!("UPDATE broadcasts SET status = CASE WHEN failed_count >= audience_total THEN {BROADCAST_FAILED} ELSE {BROADCAST_SENT} END, \
             finished_at = $1, updated_at = $1 \
             WHERE status = {BROADCAST_SENDING} AND NOT EXISTS (SELECT 1 FROM deliveries d \
               WHERE d.broadcast_id = broadcasts.id AND d.state IN ({WAITING})) \
             AND (fallback_hours IS NULL OR NOT EXISTS ({})) \
             RETURNING id", *MAY_FALL_BACK),
        )
        .bind(now)
        .fetch_all(p)
        .await?);
        for id in &ids {
            self.announce_broadcast(*id).await;
            // Nothing of a finished broadcast falls back any more.
            on_pool!(self, p => {
                sqlx::query(
                    "UPDATE deliveries SET fallback_open = FALSE WHERE broadcast_id = $1 AND fallback_open",
                )
                .bind(id)
                .execute(p)
                .await?;
            });
        }
        Ok(ids)
    }

    /// Broadcasts whose deliveries must not start now: sending ones that are paused, and
    /// cancelled ones. Workers check this before each provider request.
    pub async fn halted_broadcasts(&self) -> Result<Vec<i64>, DbError> {
        let ids: Vec<i64> = on_pool!(self, p => sqlx::query_scalar(
            &format!("SELECT id FROM broadcasts WHERE (status = {BROADCAST_SENDING} AND paused) OR status = {CANCELLED}"),
        )
        .fetch_all(p)
        .await?);
        Ok(ids)
    }

    /// Sets a broadcast's final status and time (demo data and tools; the dispatcher finishes
    /// broadcasts with [`Db::finish_done`]).
    pub async fn mark_finished(
        &self,
        id: i64,
        status: Lifecycle,
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

    /// A missed broadcast goes now: its time becomes `now` and the mark is cleared. `false`
    /// if it was not waiting as missed.
    pub async fn send_missed_now(
        &self,
        id: BroadcastId,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let done = on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let n = sqlx::query(
                &format!("UPDATE broadcasts SET scheduled_at = $1, missed_at = NULL, updated_at = $1 \
                 WHERE id = $2 AND status = {SCHEDULED} AND missed_at IS NOT NULL"),
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
}
