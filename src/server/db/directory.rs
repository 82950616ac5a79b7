//! Customers, tags, robot reply groups and channels (what the demo data needs so far).

use chrono::{DateTime, Utc};

use super::{AuditEntry, Db, DbError, audit_in, begin_write, on_pool};

/// A customer to insert, with the tags and robot groups it belongs to.
#[derive(Debug, Clone, Default)]
pub struct NewCustomer {
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub whatsapp_id: Option<String>,
    pub telegram_chat_id: Option<String>,
    pub assignee_id: Option<i64>,
    pub time_zone: String,
    pub opted_out: bool,
    pub tag_ids: Vec<i64>,
    pub group_ids: Vec<i64>,
}

/// A channel to connect.
#[derive(Debug, Clone)]
pub struct NewChannel {
    pub kind: String,
    pub name: String,
    pub config_json: String,
    pub rate_per_sec: i64,
}

/// Inserts channel `$c` in transaction `$tx`, its settings sealed for its new id; the id.
macro_rules! insert_sealed {
    ($db:expr, $tx:expr, $c:expr, $now:expr) => {{
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO channels (kind, name, config, rate_per_sec, created_at) \
             VALUES ($1, $2, '', $3, $4) RETURNING id",
        )
        .bind(&$c.kind)
        .bind(&$c.name)
        .bind($c.rate_per_sec)
        .bind($now)
        .fetch_one(&mut *$tx)
        .await?;
        sqlx::query("UPDATE channels SET config = $1 WHERE id = $2")
            .bind($db.seal_config(&$c.config_json, id, &$c.kind))
            .bind(id)
            .execute(&mut *$tx)
            .await?;
        id
    }};
}

impl Db {
    pub async fn insert_tag(&self, name: &str) -> Result<i64, DbError> {
        let id: i64 = on_pool!(self, p => sqlx::query_scalar("INSERT INTO tags (name) VALUES ($1) RETURNING id")
            .bind(name)
            .fetch_one(p)
            .await?);
        Ok(id)
    }

    pub async fn insert_robot_group(&self, name: &str) -> Result<i64, DbError> {
        let id: i64 = on_pool!(self, p => sqlx::query_scalar("INSERT INTO robot_groups (name) VALUES ($1) RETURNING id")
            .bind(name)
            .fetch_one(p)
            .await?);
        Ok(id)
    }

    pub async fn insert_channel(&self, c: &NewChannel, now: DateTime<Utc>) -> Result<i64, DbError> {
        let id = on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let id = insert_sealed!(self, tx, c, now);
            tx.commit().await?;
            id
        });
        Ok(id)
    }

    /// Connects a channel someone set up on the channels page, with `audit` (its time is the
    /// channel's creation) in the same transaction.
    pub async fn connect_channel(
        &self,
        c: &NewChannel,
        audit: &AuditEntry,
    ) -> Result<i64, DbError> {
        let id: i64 = on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let id = insert_sealed!(self, tx, c, audit.at);
            audit_in!(tx, &audit.about(id))?;
            tx.commit().await?;
            id
        });
        Ok(id)
    }

    pub async fn count_customers(&self) -> Result<i64, DbError> {
        let n: i64 = on_pool!(self, p => sqlx::query_scalar("SELECT COUNT(*) FROM customers").fetch_one(p).await?);
        Ok(n)
    }
}
