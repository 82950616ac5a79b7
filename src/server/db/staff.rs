//! Staff accounts as admins manage them: invitations, roles, deactivation, passwords and the
//! one-time tokens that set them. The last active admin can be neither demoted nor
//! deactivated; that is checked inside the change's transaction, with the admins locked, so
//! two admins demoting each other at once cannot both succeed.

use chrono::{DateTime, Utc};

use super::{AuditEntry, Db, DbError, Dialect, audit_in, begin_write, on_pool};
use crate::model::{Role, UserId};

/// One account on the staff page.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StaffRecord {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: String,
    pub created_at: DateTime<Utc>,
    pub deactivated_at: Option<DateTime<Utc>>,
    /// A password is set (an invited account has none until its invitation is used).
    pub has_password: bool,
}

/// Why a change to an account was refused.
#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    #[error("an account with that email already exists")]
    Exists,
    #[error("no such account")]
    NotFound,
    #[error("it is the last active admin: make someone else an admin first")]
    LastAdmin,
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for StaffError {
    fn from(e: sqlx::Error) -> Self {
        if e.as_database_error()
            .is_some_and(|d| d.kind() == sqlx::error::ErrorKind::UniqueViolation)
        {
            StaffError::Exists
        } else {
            StaffError::Db(DbError::Sqlx(e))
        }
    }
}

/// Sets account `$user`'s password hash (`""`: none) and ends all its sessions, in `$tx`.
macro_rules! replace_password {
    ($tx:expr, $user:expr, $hash:expr) => {{
        sqlx::query("UPDATE staff_users SET password_hash = $1 WHERE id = $2")
            .bind($hash)
            .bind($user)
            .execute(&mut *$tx)
            .await?;
        sqlx::query("DELETE FROM sessions WHERE user_id = $1")
            .bind($user)
            .execute(&mut *$tx)
            .await?;
    }};
}

/// Ends account `$user`'s sessions and password links, in `$tx` (it is being deactivated).
macro_rules! shut_out {
    ($tx:expr, $user:expr) => {{
        for table in ["sessions", "password_tokens"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                .bind($user)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}

/// What a one-time password token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    /// A new account's first password.
    Invite,
    /// A password an admin reset.
    Reset,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::Invite => "invite",
            TokenPurpose::Reset => "reset",
        }
    }
}

/// In transaction `$tx`: refuses with `LastAdmin` when account `$id` is an active admin and
/// no other active admin remains. Locks the admins first (PostgreSQL; SQLite's write lock is
/// already held), so concurrent demotions queue.
macro_rules! keep_an_admin {
    ($tx:expr, $dialect:expr, $id:expr) => {{
        let lock = if $dialect == Dialect::Postgres { " FOR UPDATE" } else { "" };
        let admins: Vec<i64> = sqlx::query_scalar(&format!(
            "SELECT id FROM staff_users WHERE role = $1 AND deactivated_at IS NULL ORDER BY id{lock}"
        ))
        .bind(Role::Admin.as_str())
        .fetch_all(&mut *$tx)
        .await?;
        if admins == [$id] {
            $tx.rollback().await?;
            return Err(StaffError::LastAdmin);
        }
    }};
}

impl Db {
    /// Every account, active ones first, then by name.
    pub async fn list_staff(&self) -> Result<Vec<StaffRecord>, DbError> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT id, email, name, role, created_at, deactivated_at, password_hash <> '' AS has_password \
             FROM staff_users ORDER BY deactivated_at IS NOT NULL, name, id",
        )
        .fetch_all(p)
        .await?))
    }

    /// How many accounts can sign in as admin.
    pub async fn count_active_admins(&self) -> Result<i64, DbError> {
        Ok(on_pool!(self, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM staff_users WHERE role = $1 AND deactivated_at IS NULL",
        )
        .bind(Role::Admin.as_str())
        .fetch_one(p)
        .await?))
    }

    /// A new account (`password_hash` empty: it signs in only once its invitation is used).
    pub async fn create_staff(
        &self,
        email: &str,
        name: &str,
        role: Role,
        password_hash: &str,
        audit: &AuditEntry,
    ) -> Result<i64, StaffError> {
        let id = on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO staff_users (email, name, role, password_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id",
            )
            .bind(email.trim().to_lowercase())
            .bind(name)
            .bind(role.as_str())
            .bind(password_hash)
            .bind(audit.at)
            .fetch_one(&mut *tx)
            .await?;
            audit_in!(tx, &audit.about(id))?;
            tx.commit().await?;
            id
        });
        Ok(id)
    }

    /// Gives account `id` the role `role`; an admin who is the last active one keeps it.
    pub async fn set_staff_role(
        &self,
        id: i64,
        role: Role,
        audit: &AuditEntry,
    ) -> Result<(), StaffError> {
        let dialect = self.dialect();
        on_pool!(self, p => {
            let mut tx = begin_write!(p, dialect);
            if role != Role::Admin {
                keep_an_admin!(tx, dialect, id);
            }
            let n = sqlx::query("UPDATE staff_users SET role = $1 WHERE id = $2")
                .bind(role.as_str())
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                tx.rollback().await?;
                return Err(StaffError::NotFound);
            }
            audit_in!(tx, audit)?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Deactivates account `id` (its sessions and password tokens end with it) or, with
    /// `active`, lets it sign in again. Broadcasts and audit entries stay theirs.
    pub async fn set_staff_active(
        &self,
        id: i64,
        active: bool,
        audit: &AuditEntry,
    ) -> Result<(), StaffError> {
        let dialect = self.dialect();
        on_pool!(self, p => {
            let mut tx = begin_write!(p, dialect);
            if !active {
                keep_an_admin!(tx, dialect, id);
            }
            let n = sqlx::query("UPDATE staff_users SET deactivated_at = $1 WHERE id = $2")
                .bind((!active).then_some(audit.at))
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n == 0 {
                tx.rollback().await?;
                return Err(StaffError::NotFound);
            }
            if !active {
                shut_out!(tx, id);
            }
            audit_in!(tx, audit)?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Stores a one-time token (by its hash) that sets account `user`'s password until
    /// `expires_at`; earlier tokens of that account stop working. A reset also ends the
    /// account's sessions and its old password at once (whoever may know it).
    pub async fn create_password_token(
        &self,
        token_hash: &str,
        user: i64,
        purpose: TokenPurpose,
        expires_at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<(), DbError> {
        on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            sqlx::query("DELETE FROM password_tokens WHERE user_id = $1 OR expires_at <= $2")
                .bind(user)
                .bind(audit.at)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO password_tokens (token_hash, user_id, purpose, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(token_hash)
            .bind(user)
            .bind(purpose.as_str())
            .bind(audit.at)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            if purpose == TokenPurpose::Reset {
                replace_password!(tx, user, "");
            }
            audit_in!(tx, audit)?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// The active account an unexpired password token belongs to (the token stays valid).
    pub async fn password_token_user(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(i64, String)>, DbError> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT u.id, u.email FROM password_tokens t JOIN staff_users u ON u.id = t.user_id \
             WHERE t.token_hash = $1 AND t.expires_at > $2 AND u.deactivated_at IS NULL",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(p)
        .await?))
    }

    /// Uses a password token once: sets its account's password to `password_hash` and ends
    /// every session of that account. `None` when the token is unknown, used or expired.
    pub async fn use_password_token(
        &self,
        token_hash: &str,
        password_hash: &str,
        audit: &AuditEntry,
    ) -> Result<Option<i64>, DbError> {
        let user = on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let user: Option<i64> = sqlx::query_scalar(
                "DELETE FROM password_tokens WHERE token_hash = $1 AND expires_at > $2 \
                 AND user_id IN (SELECT id FROM staff_users WHERE deactivated_at IS NULL) \
                 RETURNING user_id",
            )
            .bind(token_hash)
            .bind(audit.at)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(user) = user else {
                tx.rollback().await?;
                return Ok(None);
            };
            replace_password!(tx, user, password_hash);
            let mut entry = audit.about(user);
            entry.actor = Some(UserId(user));
            audit_in!(tx, &entry)?;
            tx.commit().await?;
            Some(user)
        });
        Ok(user)
    }

    /// Sets account `user`'s password and ends its sessions except `keep` (the session that
    /// changed it).
    pub async fn set_password(
        &self,
        user: UserId,
        password_hash: &str,
        keep: &str,
        audit: &AuditEntry,
    ) -> Result<(), DbError> {
        on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            sqlx::query("UPDATE staff_users SET password_hash = $1 WHERE id = $2")
                .bind(password_hash)
                .bind(user)
                .execute(&mut *tx)
                .await?;
            sqlx::query("DELETE FROM sessions WHERE user_id = $1 AND token_hash <> $2")
                .bind(user)
                .bind(keep)
                .execute(&mut *tx)
                .await?;
            audit_in!(tx, audit)?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// Marks accounts `ids` as made by `--demo`.
    pub async fn mark_demo_accounts(&self, ids: &[i64]) -> Result<(), DbError> {
        for id in ids {
            on_pool!(self, p => sqlx::query("UPDATE staff_users SET demo = TRUE WHERE id = $1")
                .bind(id)
                .execute(p)
                .await
                .map(|_| ())?);
        }
        Ok(())
    }

    /// Deactivates the demo accounts still active (their sessions and links end), or with
    /// `active` lets them sign in again; the emails of those changed, each change audited.
    pub async fn set_demo_accounts_active(
        &self,
        active: bool,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, DbError> {
        let (action, detail) = if active {
            ("reactivate", "a demo account: Herald started with --demo")
        } else {
            (
                "deactivate",
                "a demo account: Herald started without --demo",
            )
        };
        let changed = on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let rows: Vec<(i64, String)> = sqlx::query_as(
                "UPDATE staff_users SET deactivated_at = $1 \
                 WHERE demo = TRUE AND (deactivated_at IS NULL) = $2 RETURNING id, email",
            )
            .bind((!active).then_some(now))
            .bind(!active)
            .fetch_all(&mut *tx)
            .await?;
            for (id, _) in &rows {
                shut_out!(tx, id);
                audit_in!(tx, now, None::<i64>, action, "staff_user", Some(*id), detail)?;
            }
            tx.commit().await?;
            rows.into_iter().map(|(_, email)| email).collect::<Vec<_>>()
        });
        Ok(changed)
    }
}
