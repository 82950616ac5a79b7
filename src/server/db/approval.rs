//! Approval before sending, as stored on the broadcast: staff submit a draft the workspace's
//! rule says needs an admin's look (`pending`, with why and the time it should go); an admin
//! approves or rejects it with a comment; the approved content's fingerprint is kept, and an
//! edit that changes it voids the approval (a scheduled broadcast goes back to draft). Every
//! step is audited in its own transaction.

use chrono::{DateTime, Utc};

use super::states::{DRAFT, SCHEDULED};
use super::{Db, DbError, audit_in, begin_write, on_pool};
use crate::model::UserId;

/// The stored approvals (bound, never spelled in SQL: `pending` is also a delivery's state).
pub const PENDING: &str = "pending";
pub const APPROVED: &str = "approved";
pub const REJECTED: &str = "rejected";

/// A broadcast's approval as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ApprovalRecord {
    /// `pending`, `approved` or `rejected`.
    pub approval: String,
    /// Why it needs approval (pending), or the admin's comment.
    pub note: Option<String>,
    /// Who decided, by name.
    pub decided_by: Option<String>,
    pub at: Option<DateTime<Utc>>,
    /// The approved content's fingerprint.
    pub hash: Option<String>,
}

impl Db {
    /// Broadcast `id`'s approval, if anyone asked for one.
    pub async fn approval_of(&self, id: i64) -> Result<Option<ApprovalRecord>, DbError> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT b.approval, b.approval_note AS note, u.name AS decided_by, b.approval_at AS at, \
             b.approval_hash AS hash FROM broadcasts b LEFT JOIN staff_users u ON u.id = b.approval_by \
             WHERE b.id = $1 AND b.approval IS NOT NULL",
        )
        .bind(id)
        .fetch_optional(p)
        .await?))
    }

    /// Staff submit draft `id` for approval, to go at `send_at` (none: at once when
    /// approved), because of `reason`. Whether it was a draft to submit.
    pub async fn submit_for_approval(
        &self,
        id: i64,
        send_at: Option<DateTime<Utc>>,
        reason: &str,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let sql = format!(
            "UPDATE broadcasts SET approval = $5, approval_note = $1, approval_by = NULL, \
             approval_at = $2, approval_hash = NULL, scheduled_at = $3, updated_at = $2 \
             WHERE id = $4 AND status = {DRAFT}"
        );
        on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let n = sqlx::query(&sql)
                .bind(reason)
                .bind(now)
                .bind(send_at)
                .bind(id)
                .bind(PENDING)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                audit_in!(tx, now, actor, "submit-for-approval", "broadcast", id, reason)?;
            }
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    /// An admin's decision on draft `id`: approved (its content's fingerprint `hash` kept) or
    /// rejected, with `comment`. Whether it was a draft to decide on.
    pub async fn decide_approval(
        &self,
        id: i64,
        approve: bool,
        comment: &str,
        hash: &str,
        admin: UserId,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let (state, action) = if approve {
            (APPROVED, "approve")
        } else {
            (REJECTED, "reject")
        };
        let sql = format!(
            "UPDATE broadcasts SET approval = $1, approval_note = $2, approval_by = $3, \
             approval_at = $4, approval_hash = $5, updated_at = $4 WHERE id = $6 AND status = {DRAFT}"
        );
        on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let n = sqlx::query(&sql)
                .bind(state)
                .bind(comment)
                .bind(admin)
                .bind(now)
                .bind(approve.then_some(hash))
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                audit_in!(tx, now, admin, action, "broadcast", id, comment)?;
            }
            tx.commit().await?;
            Ok(n == 1)
        })
    }

    /// Voids broadcast `id`'s approval when its content no longer has the approved
    /// fingerprint (`hash` is the content's now); a scheduled one goes back to draft. Whether
    /// it did.
    pub async fn void_changed_approval(
        &self,
        id: i64,
        hash: &str,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let sql = format!(
            "UPDATE broadcasts SET approval = NULL, approval_note = NULL, approval_by = NULL, \
             approval_at = NULL, approval_hash = NULL, updated_at = $1, \
             status = CASE WHEN status = {SCHEDULED} THEN {DRAFT} ELSE status END \
             WHERE id = $2 AND approval = $4 AND approval_hash <> $3 \
             AND status IN ({DRAFT}, {SCHEDULED})"
        );
        on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let n = sqlx::query(&sql)
                .bind(now)
                .bind(id)
                .bind(hash)
                .bind(APPROVED)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                let why = "edited after approval; it needs approval again";
                audit_in!(tx, now, actor, "approval-void", "broadcast", id, why)?;
            }
            tx.commit().await?;
            Ok(n == 1)
        })
    }
}

impl Db {
    /// Undoes "Send now" (or any schedule) of broadcast `id` before it starts: back to a
    /// draft without a time, audited. Whether it was still waiting.
    pub async fn undo_send(
        &self,
        id: i64,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let sql = format!(
            "UPDATE broadcasts SET status = {DRAFT}, scheduled_at = NULL, missed_at = NULL, \
             updated_at = $1 WHERE id = $2 AND status = {SCHEDULED}"
        );
        on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let n = sqlx::query(&sql)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 1 {
                audit_in!(tx, now, actor, "undo-send", "broadcast", id, "")?;
            }
            tx.commit().await?;
            Ok(n == 1)
        })
    }
}
