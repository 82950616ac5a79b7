//! Follow-ups in storage: freezing the recipients of a broadcast with a given outcome into a
//! set (one `INSERT … SELECT` over its deliveries, in the transaction that records the set),
//! reading a set back, and the links between a broadcast and its follow-ups.

use chrono::{DateTime, Utc};

use super::states::{ACCEPTED, DELIVERED, FAILED, REACHED, SENT};
use super::{Db, DbError, begin_write, on_pool};
use crate::model::retarget::Outcome;

/// Which of a broadcast's deliveries `d` have `outcome`.
fn condition(outcome: Outcome) -> String {
    match outcome {
        Outcome::NotRead => format!("d.state IN ({SENT}, {DELIVERED}) AND d.replied_at IS NULL"),
        Outcome::NotReplied => format!("d.state IN ({ACCEPTED}) AND d.replied_at IS NULL"),
        Outcome::Replied => "d.replied_at IS NOT NULL".into(),
        Outcome::Failed => format!("d.state = {FAILED}"),
        Outcome::NotReached => format!("d.state NOT IN ({REACHED}) AND d.replied_at IS NULL"),
    }
}

/// A frozen set as stored: (broadcast, its name, outcome, size, frozen at).
pub type SetRow = (i64, String, String, i64, DateTime<Utc>);

impl Db {
    /// Freezes the recipients of broadcast `id` with `outcome`, as they are now, into a new
    /// set: its id and size.
    pub async fn freeze_outcome(
        &self,
        id: i64,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) -> Result<(i64, i64), DbError> {
        let members = format!(
            "INSERT INTO audience_set_members (set_id, customer_id) \
             SELECT DISTINCT $1, d.customer_id FROM deliveries d WHERE d.broadcast_id = $2 AND {}",
            condition(outcome)
        );
        on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let set: i64 = sqlx::query_scalar(
                "INSERT INTO audience_sets (broadcast_id, outcome, created_at) VALUES ($1, $2, $3) RETURNING id",
            )
            .bind(id)
            .bind(outcome.as_str())
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let size = sqlx::query(&members)
                .bind(set)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected() as i64;
            sqlx::query("UPDATE audience_sets SET size = $1 WHERE id = $2")
                .bind(size)
                .bind(set)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok((set, size))
        })
    }

    /// Set `id` as stored, with its broadcast's name.
    pub async fn audience_set(&self, id: i64) -> Result<Option<SetRow>, DbError> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT s.broadcast_id, b.name, s.outcome, s.size, s.created_at FROM audience_sets s \
             JOIN broadcasts b ON b.id = s.broadcast_id WHERE s.id = $1",
        )
        .bind(id)
        .fetch_optional(p)
        .await?))
    }

    /// Marks broadcast `id` as a follow-up of `of`.
    pub async fn set_follow_up_of(&self, id: i64, of: i64) -> Result<(), DbError> {
        on_pool!(self, p => {
            sqlx::query("UPDATE broadcasts SET follow_up_of = $1 WHERE id = $2")
                .bind(of)
                .bind(id)
                .execute(p)
                .await?;
            Ok::<(), DbError>(())
        })?;
        Ok(())
    }

    /// The follow-ups of broadcast `id` (id, name), oldest first, and what it follows up.
    pub async fn follow_up_links(
        &self,
        id: i64,
    ) -> Result<(Vec<(i64, String)>, Option<(i64, String)>), DbError> {
        let ups: Vec<(i64, String)> = on_pool!(self, p => sqlx::query_as(
            "SELECT id, name FROM broadcasts WHERE follow_up_of = $1 ORDER BY id",
        )
        .bind(id)
        .fetch_all(p)
        .await?);
        let of: Option<(i64, String)> = on_pool!(self, p => sqlx::query_as(
            "SELECT o.id, o.name FROM broadcasts b JOIN broadcasts o ON o.id = b.follow_up_of WHERE b.id = $1",
        )
        .bind(id)
        .fetch_optional(p)
        .await?);
        Ok((ups, of))
    }
}
