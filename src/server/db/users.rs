//! Staff accounts and sign-in sessions.

use crate::model::UserId;
use chrono::{DateTime, Utc};

use super::{AuditEntry, Db, DbError, audit_in, begin_write, on_pool};
use crate::model::{CurrentUser, Role};

/// A staff account as stored (the password hash never leaves the server).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRecord {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: String,
    pub password_hash: String,
    pub time_zone: String,
    pub deactivated_at: Option<DateTime<Utc>>,
    /// When the session it was found by was last used (only from [`Db::session_user`]).
    #[sqlx(default)]
    pub session_seen_at: Option<DateTime<Utc>>,
}

impl UserRecord {
    /// The browser-safe view of this account; `None` if the stored role is unknown.
    pub fn to_current(&self) -> Option<CurrentUser> {
        Some(CurrentUser {
            id: UserId(self.id),
            email: self.email.clone(),
            name: self.name.clone(),
            role: Role::parse(&self.role)?,
            time_zone: self.time_zone.clone(),
        })
    }
}

const USER_COLUMNS: &str = "id, email, name, role, password_hash, time_zone, deactivated_at";

impl Db {
    /// No accounts, customers, tags, robot groups, channels or broadcasts yet: a database
    /// the demo data may be loaded into.
    pub async fn holds_nothing(&self) -> Result<bool, DbError> {
        let tables = [
            "staff_users",
            "customers",
            "tags",
            "robot_groups",
            "channels",
            "broadcasts",
        ];
        let sql = tables
            .iter()
            .map(|t| format!("SELECT COUNT(*) AS n FROM (SELECT 1 FROM {t} LIMIT 1) x"))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let found: Vec<i64> = on_pool!(self, p => sqlx::query_scalar(&sql).fetch_all(p).await?);
        Ok(found.iter().all(|n| *n == 0))
    }

    pub async fn count_users(&self) -> Result<i64, DbError> {
        let n: i64 = on_pool!(self, p => sqlx::query_scalar("SELECT COUNT(*) FROM staff_users").fetch_one(p).await?);
        Ok(n)
    }

    pub async fn create_user(
        &self,
        email: &str,
        name: &str,
        role: Role,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<i64, DbError> {
        let sql = "INSERT INTO staff_users (email, name, role, password_hash, created_at) \
                   VALUES ($1, $2, $3, $4, $5) RETURNING id";
        let id: i64 = on_pool!(self, p => sqlx::query_scalar(sql)
            .bind(email.trim().to_lowercase())
            .bind(name)
            .bind(role.as_str())
            .bind(password_hash)
            .bind(now)
            .fetch_one(p)
            .await?);
        Ok(id)
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, DbError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM staff_users WHERE email = $1");
        let email = email.trim().to_lowercase();
        let u = on_pool!(self, p => sqlx::query_as::<_, UserRecord>(&sql).bind(&email).fetch_optional(p).await?);
        Ok(u)
    }

    pub async fn set_user_time_zone(&self, user_id: UserId, tz: &str) -> Result<(), DbError> {
        on_pool!(self, p => {
            sqlx::query("UPDATE staff_users SET time_zone = $1 WHERE id = $2")
                .bind(tz)
                .bind(user_id)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Stores a new session (by the hash of its token) and drops expired ones.
    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: UserId,
        expires_at: DateTime<Utc>,
        audit: &AuditEntry,
    ) -> Result<(), DbError> {
        let now = audit.at;
        on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                .bind(now)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(token_hash)
            .bind(user_id)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            audit_in!(tx, audit)?;
            tx.commit().await?;
        });
        Ok(())
    }

    /// The user behind a session that has neither expired nor gone unused for `idle`, if any.
    pub async fn session_user(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
        idle: chrono::Duration,
    ) -> Result<Option<UserRecord>, DbError> {
        let sql = "SELECT u.id, u.email, u.name, u.role, u.password_hash, u.time_zone, u.deactivated_at, \
                   COALESCE(s.last_seen_at, s.created_at) AS session_seen_at \
                   FROM sessions s JOIN staff_users u ON u.id = s.user_id \
                   WHERE s.token_hash = $1 AND s.expires_at > $2 AND u.deactivated_at IS NULL \
                   AND COALESCE(s.last_seen_at, s.created_at) > $3";
        let u = on_pool!(self, p => sqlx::query_as::<_, UserRecord>(sql)
            .bind(token_hash)
            .bind(now)
            .bind(now - idle)
            .fetch_optional(p)
            .await?);
        Ok(u)
    }

    /// Notes that a session was used at `now` (unless it was noted within the last minute).
    pub async fn touch_session(&self, token_hash: &str, now: DateTime<Utc>) -> Result<(), DbError> {
        on_pool!(self, p => {
            sqlx::query(
                "UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2 \
                 AND (last_seen_at IS NULL OR last_seen_at < $3)",
            )
            .bind(now)
            .bind(token_hash)
            .bind(now - chrono::Duration::minutes(1))
            .execute(p)
            .await?;
        });
        Ok(())
    }

    pub async fn delete_session(&self, token_hash: &str) -> Result<(), DbError> {
        on_pool!(self, p => {
            sqlx::query("DELETE FROM sessions WHERE token_hash = $1")
                .bind(token_hash)
                .execute(p)
                .await?;
        });
        Ok(())
    }

    /// Appends to the audit log on its own (for what has no transaction of its own to join).
    pub async fn audit(&self, entry: &AuditEntry) -> Result<(), DbError> {
        on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            audit_in!(tx, entry)?;
            tx.commit().await?;
        });
        Ok(())
    }
}
