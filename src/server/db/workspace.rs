//! The workspace's sending rules (one row of JSON), the zones its customers live in, and what
//! the rules do to a broadcast once it sends: its waves and its expiry.

use chrono::{DateTime, Utc};

use super::states::{BROADCAST_SENDING, EXPIRED, PENDING};
use super::{Db, DbError, audit_in, begin_write, on_pool};
use crate::model::UserId;
use crate::model::audience::AudienceRule;
use crate::model::compose::Timing;
use crate::model::consent::Purpose;
use crate::model::workspace::Rules;

/// The next wave of a sending broadcast.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextWave {
    pub at: DateTime<Utc>,
    /// The zones it is for, as stored (`Europe/Berlin, Europe/Paris and 2 more`).
    pub zones: String,
    /// Deliveries not yet sent.
    pub waiting: i64,
}

/// Why an expired delivery was not sent.
const EXPIRED_REASON: &str = "Not sent before the broadcast's expiry.";

impl Db {
    /// The workspace's rules, with who last changed them and when (the defaults until an
    /// admin saves them).
    pub async fn workspace_rules(
        &self,
    ) -> Result<(Rules, Option<(DateTime<Utc>, Option<String>)>), DbError> {
        let row: Option<(String, DateTime<Utc>, Option<String>)> = on_pool!(self, p => sqlx::query_as(
            "SELECT w.rules, w.updated_at, u.name FROM workspace_settings w \
             LEFT JOIN staff_users u ON u.id = w.updated_by WHERE w.id = 1",
        )
        .fetch_optional(p)
        .await?);
        Ok(match row {
            // Written by Herald itself; an unreadable value reads as the defaults.
            Some((rules, at, by)) => (
                serde_json::from_str(&rules).unwrap_or_default(),
                Some((at, by)),
            ),
            None => (Rules::default(), None),
        })
    }

    /// Stores the workspace's rules and audits what changed (nothing when nothing did).
    pub async fn save_workspace_rules(
        &self,
        rules: &Rules,
        by: Option<UserId>,
        now: DateTime<Utc>,
    ) -> Result<String, DbError> {
        let (old, _) = self.workspace_rules().await?;
        let changes = rules.changes_from(&old);
        let text = serde_json::to_string(rules).expect("plain data serialises");
        on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            sqlx::query(
                "INSERT INTO workspace_settings (id, rules, updated_at, updated_by) VALUES (1, $1, $2, $3) \
                 ON CONFLICT (id) DO UPDATE SET rules = $1, updated_at = $2, updated_by = $3",
            )
            .bind(&text)
            .bind(now)
            .bind(by)
            .execute(&mut *tx)
            .await?;
            if !changes.is_empty() {
                audit_in!(tx, now, by, "settings", "workspace", 1_i64, changes.as_str())?;
            }
            tx.commit().await?;
        });
        Ok(changes)
    }

    /// Every distinct time zone name customers have, in order.
    pub async fn customer_zones(&self) -> Result<Vec<String>, DbError> {
        Ok(on_pool!(self, p => sqlx::query_scalar(
            "SELECT DISTINCT time_zone FROM customers ORDER BY time_zone",
        )
        .fetch_all(p)
        .await?))
    }

    /// A broadcast's timing (the default for one that has none), its purpose, and the time
    /// zones of the customers its audience matches.
    pub async fn broadcast_timing(
        &self,
        id: i64,
    ) -> Result<(Timing, Purpose, Vec<String>), DbError> {
        let row: Option<(Option<String>, String, Purpose)> = on_pool!(self, p => sqlx::query_as(
            "SELECT timing, audience, purpose FROM broadcasts WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(p)
        .await?);
        let Some((timing, audience, purpose)) = row else {
            return Ok(Default::default());
        };
        let rule: AudienceRule = serde_json::from_str(&audience).unwrap_or_default();
        let timing = timing
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        Ok((timing, purpose, self.audience_zones(&rule).await?))
    }

    /// The next wave of broadcast `id` after `now`, if it is waiting for one: the earliest
    /// not-before time of its pending deliveries that is one of its waves (a walk of the due
    /// index, not of its deliveries).
    pub async fn next_wave(
        &self,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<NextWave>, DbError> {
        let next: Option<(DateTime<Utc>, String)> = on_pool!(self, p => sqlx::query_as(
            &format!("SELECT w.at, w.zones FROM broadcast_waves w WHERE w.broadcast_id = $1 AND w.at > $2 \
             AND EXISTS (SELECT 1 FROM deliveries d WHERE d.broadcast_id = $1 AND d.state = {PENDING} \
               AND d.next_attempt_at = w.at) ORDER BY w.at LIMIT 1"),
        )
        .bind(id)
        .bind(now)
        .fetch_optional(p)
        .await?);
        let Some((at, zones)) = next else {
            return Ok(None);
        };
        let waiting: i64 = on_pool!(self, p => sqlx::query_scalar(
            &format!("SELECT COUNT(*) FROM deliveries WHERE broadcast_id = $1 AND state = {PENDING} \
             AND next_attempt_at > $2"),
        )
        .bind(id)
        .bind(now)
        .fetch_one(p)
        .await?);
        Ok(Some(NextWave { at, zones, waiting }))
    }

    /// Sending broadcasts whose expiry has come: their pending deliveries expire (counted
    /// apart from failures). Returns how many expired.
    pub async fn expire_due(&self, now: DateTime<Utc>) -> Result<i64, DbError> {
        let due: Vec<i64> = on_pool!(self, p => sqlx::query_scalar(
            &format!("SELECT id FROM broadcasts WHERE status = {BROADCAST_SENDING} AND expires_at <= $1"),
        )
        .bind(now)
        .fetch_all(p)
        .await?);
        let mut total = 0;
        for id in due {
            let expired = on_pool!(self, p => {
                let mut tx = begin_write!(p, self.dialect());
                let n = sqlx::query(&format!(
                    "UPDATE deliveries SET state = {EXPIRED}, error = $1, claimed_until = NULL \
                     WHERE broadcast_id = $2 AND state = {PENDING}"
                ))
                .bind(EXPIRED_REASON)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected() as i64;
                if n > 0 {
                    sqlx::query("UPDATE broadcasts SET expired_count = expired_count + $1 WHERE id = $2")
                        .bind(n)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    audit_in!(tx, now, None::<i64>, "expired", "broadcast", id, format!("{n} deliveries"))?;
                }
                tx.commit().await?;
                n
            });
            total += expired;
            if expired > 0 {
                self.note_progress(id);
            }
        }
        Ok(total)
    }
}
