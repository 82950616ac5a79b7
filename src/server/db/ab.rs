//! A/B tests in storage: each variant's counts for the results and the winner, and the
//! winner handed to the recipients who waited for it (the split itself is `split`).

use chrono::{DateTime, Utc};

use super::audience::{AudienceBind, Builder, bind_audience};
use super::fire::WavePlan;
use super::states::{BROADCAST_SENDING, DELIVERED, FAILED, PENDING, READ, SENT};
use super::{Db, DbError, audit_in, begin_write, on_pool};
use crate::model::ab::{self, AbPlan};
use crate::model::results::ChannelRow;

/// A sending broadcast whose test waits for its winner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbDue {
    pub id: i64,
    pub plan: AbPlan,
    pub started_at: DateTime<Utc>,
}

/// What was decided about a test: the winner (0 is A), when, and why.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AbDecision {
    pub winner: i64,
    pub decided_at: DateTime<Utc>,
    pub reason: String,
}

/// One variant's counts on one channel.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct VariantRow {
    /// 0 is A; -1 the recipients still waiting for the winner.
    pub variant: i64,
    #[sqlx(flatten)]
    pub channel: ChannelRow,
}

impl Db {
    /// Broadcast `id`'s deliveries counted per variant and channel (from the deliveries
    /// themselves: a test's figures are read when its results are, not kept as counters).
    pub async fn variant_rows(&self, id: i64) -> Result<Vec<VariantRow>, DbError> {
        let sum = |cond: &str| format!("SUM(CASE WHEN {cond} THEN 1 ELSE 0 END)");
        let sql = format!(
            "SELECT d.variant, d.channel_id, c.name, c.kind, COUNT(*) AS audience, \
             {} AS sent, {} AS delivered, {} AS read, {} AS replied, {} AS failed \
             FROM deliveries d JOIN channels c ON c.id = d.channel_id WHERE d.broadcast_id = $1 \
             GROUP BY d.variant, d.channel_id, c.name, c.kind ORDER BY d.variant, d.channel_id",
            sum(&format!("d.state IN ({SENT}, {DELIVERED}, {READ})")),
            sum(&format!("d.state IN ({DELIVERED}, {READ})")),
            sum(&format!("d.state = {READ}")),
            sum("d.replied_at IS NOT NULL"),
            sum(&format!("d.state = {FAILED}")),
        );
        Ok(on_pool!(self, p => sqlx::query_as(&sql).bind(id).fetch_all(p).await?))
    }

    /// Sending broadcasts whose test share waits for a winner that is due by `now`.
    pub async fn ab_due(&self, now: DateTime<Utc>) -> Result<Vec<AbDue>, DbError> {
        let rows: Vec<(i64, String, Option<DateTime<Utc>>)> = on_pool!(self, p => sqlx::query_as(
            &format!("SELECT id, ab, started_at FROM broadcasts WHERE status = {BROADCAST_SENDING} \
             AND ab_variants > 1 AND ab_decided_at IS NULL AND ab IS NOT NULL ORDER BY id"),
        )
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .filter_map(|(id, stored, started)| {
                let plan: AbPlan = serde_json::from_str(&stored).ok()?;
                let started_at = started?;
                plan.test_share?;
                let due = started_at + chrono::Duration::hours(i64::from(plan.wait_hours));
                (due <= now).then_some(AbDue {
                    id,
                    plan,
                    started_at,
                })
            })
            .collect())
    }

    /// Records `winner` (0 is A) of broadcast `id`'s test with `reason`, and hands it to the
    /// recipients who waited for it, each not before their time under `plan`. Once only,
    /// however many instances decide: how many recipients it went to (`None` when another
    /// decision came first).
    pub async fn decide_ab(
        &self,
        id: i64,
        winner: i64,
        reason: &str,
        now: DateTime<Utc>,
        plan: &WavePlan,
    ) -> Result<Option<u64>, DbError> {
        let dialect = self.dialect();
        on_pool!(self, p => {
            let mut tx = begin_write!(p, dialect);
            let won = sqlx::query(&format!(
                "UPDATE broadcasts SET ab_winner = $1, ab_decided_at = $2, ab_reason = $3 \
                 WHERE id = $4 AND ab_decided_at IS NULL AND status = {BROADCAST_SENDING}"
            ))
            .bind(winner)
            .bind(now)
            .bind(reason)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if won == 0 {
                tx.rollback().await?;
                return Ok(None);
            }
            let mut b = Builder { dialect, first: 3, binds: Vec::new() };
            let wave = b.waves(plan);
            let sql = format!(
                "UPDATE deliveries SET variant = $1, \
                 next_attempt_at = (SELECT {wave} FROM customers c WHERE c.id = deliveries.customer_id) \
                 WHERE broadcast_id = $2 AND variant < 0 AND state = {PENDING}"
            );
            let q = sqlx::query(&sql).bind(winner).bind(id);
            let moved = bind_audience!(q, b).execute(&mut *tx).await?.rows_affected();
            let note = format!("{} to {moved}: {reason}", ab::letter(winner as usize));
            audit_in!(tx, now, None::<i64>, "ab-winner", "broadcast", id, note)?;
            tx.commit().await?;
            Ok(Some(moved))
        })
    }

    /// What was decided about broadcast `id`'s test, if anything yet.
    pub async fn ab_decision(&self, id: i64) -> Result<Option<AbDecision>, DbError> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT ab_winner AS winner, ab_decided_at AS decided_at, ab_reason AS reason \
             FROM broadcasts WHERE id = $1 AND ab_decided_at IS NOT NULL",
        )
        .bind(id)
        .fetch_optional(p)
        .await?))
    }

    /// Broadcast `id`'s A/B test as stored, if it has one.
    pub async fn ab_plan(&self, id: i64) -> Result<Option<AbPlan>, DbError> {
        let stored: Option<Option<String>> = on_pool!(self, p => sqlx::query_scalar(
            "SELECT ab FROM broadcasts WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(p)
        .await?);
        Ok(stored
            .flatten()
            .and_then(|s| serde_json::from_str::<AbPlan>(&s).ok())
            .filter(|p| p.count() > 1))
    }
}
