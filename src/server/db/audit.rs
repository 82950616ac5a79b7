//! Reading the audit log (entries are written by `audit_in!` in each change's transaction;
//! the database refuses to change or delete one).

use chrono::{DateTime, Utc};

use super::{Db, DbError, on_pool};

/// What to read: `actor` 0 means entries without a person; times are UTC.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<i64>,
    pub action: Option<String>,
    pub subject: Option<String>,
    pub subject_id: Option<i64>,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub before: Option<i64>,
}

/// One entry with the name and email of whoever made it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor_id: Option<i64>,
    pub actor_name: Option<String>,
    pub actor_email: Option<String>,
    pub action: String,
    pub subject_type: String,
    pub subject_id: Option<i64>,
    pub detail: String,
}

impl Db {
    /// Up to `limit` entries matching `f`, newest first.
    pub async fn audit_log(
        &self,
        f: &AuditFilter,
        limit: i64,
    ) -> Result<Vec<AuditRecord>, DbError> {
        let mut sql = String::from(
            "SELECT a.id, a.at, a.actor_id, u.name AS actor_name, u.email AS actor_email, a.action, \
             a.subject_type, a.subject_id, a.detail FROM audit_log a \
             LEFT JOIN staff_users u ON u.id = a.actor_id WHERE 1 = 1",
        );
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        match f.actor {
            Some(0) => sql.push_str(" AND a.actor_id IS NULL"),
            Some(_) => sql.push_str(&format!(" AND a.actor_id = {}", next())),
            None => {}
        }
        for (part, on) in [
            (" AND a.action = ", f.action.is_some()),
            (" AND a.subject_type = ", f.subject.is_some()),
            (" AND a.subject_id = ", f.subject_id.is_some()),
            (" AND a.at >= ", f.from.is_some()),
            (" AND a.at < ", f.until.is_some()),
            (" AND a.id < ", f.before.is_some()),
        ] {
            if on {
                sql.push_str(part);
                sql.push_str(&next());
            }
        }
        sql.push_str(&format!(" ORDER BY a.id DESC LIMIT {}", next()));
        Ok(on_pool!(self, p => {
            let mut q = sqlx::query_as::<_, AuditRecord>(&sql);
            if let Some(a) = f.actor.filter(|a| *a != 0) {
                q = q.bind(a);
            }
            if let Some(a) = &f.action {
                q = q.bind(a);
            }
            if let Some(s) = &f.subject {
                q = q.bind(s);
            }
            if let Some(s) = f.subject_id {
                q = q.bind(s);
            }
            if let Some(t) = f.from {
                q = q.bind(t);
            }
            if let Some(t) = f.until {
                q = q.bind(t);
            }
            if let Some(b) = f.before {
                q = q.bind(b);
            }
            q.bind(limit).fetch_all(p).await?
        }))
    }

    /// The actions and the kinds of subject the log holds, for the page's filters.
    pub async fn audit_choices(&self) -> Result<(Vec<String>, Vec<String>), DbError> {
        Ok(on_pool!(self, p => {
            let actions = sqlx::query_scalar("SELECT DISTINCT action FROM audit_log ORDER BY action")
                .fetch_all(p)
                .await?;
            let subjects = sqlx::query_scalar("SELECT DISTINCT subject_type FROM audit_log ORDER BY subject_type")
                .fetch_all(p)
                .await?;
            (actions, subjects)
        }))
    }
}
