//! "Resend the unknown": staff send again, knowingly, the deliveries whose request may have
//! reached a provider that cannot tell (some of those customers may then get it twice).

use chrono::{DateTime, Utc};

use super::counters::{Tally, write_tally};
use super::states::{BROADCAST_SENDING, CANCELLED, FINISHED, PENDING, UNKNOWN};
use super::{Db, DbError, audit_in, begin_write, on_pool};
use crate::model::{BroadcastId, Lifecycle, UserId};

/// Why "Resend the unknown" did nothing.
#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    #[error(
        "Only a sending or finished broadcast's unknown deliveries can be resent; this one is {0}."
    )]
    NotStarted(Lifecycle),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for ResendError {
    fn from(e: sqlx::Error) -> Self {
        ResendError::Db(e.into())
    }
}

impl Db {
    /// Broadcast `b`'s unknown deliveries go back to pending as a new round (a new key), the
    /// counters lose them as unknown, and a finished broadcast sends again; audited. Returns
    /// how many were queued again.
    pub async fn resend_unknown(
        &self,
        broadcast: BroadcastId,
        actor: UserId,
        now: DateTime<Utc>,
    ) -> Result<i64, ResendError> {
        let dialect = self.dialect();
        on_pool!(self, p => {
            let mut tx = begin_write!(p, dialect);
            // Lock order (see `counters`): the status is read without a lock and the final
            // update of the broadcast is guarded on it.
            let status: Option<Lifecycle> = sqlx::query_scalar("SELECT status FROM broadcasts WHERE id = $1")
                .bind(broadcast)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(status) = status else {
                return Err(ResendError::Db(DbError::NotFound));
            };
            if !(status.finished() || status == Lifecycle::Sending) {
                return Err(ResendError::NotStarted(status));
            }
            let total = sqlx::query(&format!(
                "UPDATE deliveries SET state = {PENDING}, retry_round = retry_round + 1, attempts = 0, \
                 next_attempt_at = $2, claimed_until = NULL, started_at = NULL, uncertain = FALSE \
                 WHERE broadcast_id = $1 AND state = {UNKNOWN}"
            ))
            .bind(broadcast)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected() as i64;
            if total > 0 {
                let mut tally = Tally::default();
                tally.add_unknown(broadcast, -total);
                write_tally!(tx, tally);
                let guard = if status.finished() { FINISHED } else { BROADCAST_SENDING };
                let open = sqlx::query(&format!(
                    "UPDATE broadcasts SET status = {BROADCAST_SENDING}, finished_at = NULL, updated_at = $1 \
                     WHERE id = $2 AND status IN ({guard}) AND status <> {CANCELLED}"
                ))
                .bind(now)
                .bind(broadcast)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if open == 0 {
                    tx.rollback().await?;
                    return Err(ResendError::NotStarted(Lifecycle::Cancelled));
                }
                let detail = format!("{total} deliveries whose arrival was unknown sent again");
                audit_in!(tx, now, Some(actor), "resend-unknown", "broadcast", broadcast, detail)?;
            }
            tx.commit().await?;
            Ok::<i64, ResendError>(total)
        })
    }
}
