//! Staff accounts and sign-in sessions.

use chrono::{DateTime, Utc};

use super::{Db, DbError, on_pool};
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
}

impl UserRecord {
    /// The browser-safe view of this account; `None` if the stored role is unknown.
    pub fn to_current(&self) -> Option<CurrentUser> {
        Some(CurrentUser {
            id: self.id,
            email: self.email.clone(),
            name: self.name.clone(),
            role: Role::parse(&self.role)?,
            time_zone: self.time_zone.clone(),
        })
    }
}

const USER_COLUMNS: &str = "id, email, name, role, password_hash, time_zone";

impl Db {
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

    pub async fn set_user_time_zone(&self, user_id: i64, tz: &str) -> Result<(), DbError> {
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
        user_id: i64,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), DbError> {
        on_pool!(self, p => {
            sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
                .bind(now)
                .execute(p)
                .await?;
            sqlx::query(
                "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(token_hash)
            .bind(user_id)
            .bind(now)
            .bind(expires_at)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// The user behind an unexpired session, if any.
    pub async fn session_user(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<UserRecord>, DbError> {
        let sql = "SELECT u.id, u.email, u.name, u.role, u.password_hash, u.time_zone \
                   FROM sessions s JOIN staff_users u ON u.id = s.user_id \
                   WHERE s.token_hash = $1 AND s.expires_at > $2";
        let u = on_pool!(self, p => sqlx::query_as::<_, UserRecord>(sql)
            .bind(token_hash)
            .bind(now)
            .fetch_optional(p)
            .await?);
        Ok(u)
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

    /// Appends to the audit log.
    pub async fn audit(
        &self,
        at: DateTime<Utc>,
        actor_id: Option<i64>,
        action: &str,
        subject_type: &str,
        subject_id: Option<i64>,
        detail: &str,
    ) -> Result<(), DbError> {
        on_pool!(self, p => {
            sqlx::query(
                "INSERT INTO audit_log (at, actor_id, action, subject_type, subject_id, detail) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(at)
            .bind(actor_id)
            .bind(action)
            .bind(subject_type)
            .bind(subject_id)
            .bind(detail)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// The newest audit entries for a subject, as (action, actor id, detail), newest first.
    pub async fn audit_trail(
        &self,
        subject_type: &str,
        subject_id: i64,
    ) -> Result<Vec<(String, Option<i64>, String)>, DbError> {
        let rows = on_pool!(self, p => sqlx::query_as::<_, (String, Option<i64>, String)>(
            "SELECT action, actor_id, detail FROM audit_log \
             WHERE subject_type = $1 AND subject_id = $2 ORDER BY id DESC",
        )
        .bind(subject_type)
        .bind(subject_id)
        .fetch_all(p)
        .await?);
        Ok(rows)
    }
}
