//! Schema changes SQLite's migrations cannot make, run after them at every start (each does
//! nothing once done).

use sqlx::SqlitePool;

use super::DbError;

/// The end of the delivery states the first schema's CHECK listed, as it spells them, and the
/// same with the states added since.
fn state_lists() -> (String, String) {
    use crate::model::delivery::DeliveryState as D;
    let old = format!("{}, {})", D::Read.sql(), D::Failed.sql());
    let new = format!(
        "{}, {}, {}, {})",
        D::Read.sql(),
        D::Failed.sql(),
        D::Expired.sql(),
        D::Unknown.sql()
    );
    (old, new)
}

/// Lets `deliveries.state` take `expired` and `unknown` on an SQLite database made before
/// them. A CHECK cannot be changed by ALTER TABLE, and rebuilding the table would cascade
/// into the messages that name their delivery, so this is SQLite's documented procedure for
/// loosening a constraint: the table's stored definition is rewritten with `writable_schema`
/// and the schema version raised, in one transaction, so every connection reads the new
/// definition before its next statement. Loosening it cannot make a stored row invalid.
pub(super) async fn widen_delivery_states(pool: &SqlitePool) -> Result<(), DbError> {
    let mut conn = pool.acquire().await?;
    let sql: Option<String> = sqlx::query_scalar(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'deliveries'",
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(sql) = sql else {
        return Ok(());
    };
    let (old, new) = state_lists();
    if sql.contains(&new) || !sql.contains(&old) {
        return Ok(());
    }
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    let done: Result<(), DbError> = async {
        let version: i64 = sqlx::query_scalar("PRAGMA schema_version")
            .fetch_one(&mut *conn)
            .await?;
        sqlx::query("PRAGMA writable_schema = ON")
            .execute(&mut *conn)
            .await?;
        sqlx::query(
            "UPDATE sqlite_master SET sql = replace(sql, $1, $2) \
             WHERE type = 'table' AND name = 'deliveries'",
        )
        .bind(&old)
        .bind(&new)
        .execute(&mut *conn)
        .await?;
        sqlx::query(&format!("PRAGMA schema_version = {}", version + 1))
            .execute(&mut *conn)
            .await?;
        sqlx::query("PRAGMA writable_schema = OFF")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
    .await;
    match done {
        Ok(()) => {
            sqlx::query("COMMIT").execute(&mut *conn).await?;
            let check: String = sqlx::query_scalar("PRAGMA integrity_check")
                .fetch_one(&mut *conn)
                .await?;
            if check != "ok" {
                return Err(DbError::Task(format!(
                    "the database failed its integrity check after the deliveries' states were widened: {check}"
                )));
            }
            tracing::info!("deliveries' states widened: expired and unknown are allowed");
            Ok(())
        }
        Err(e) => {
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
            Err(e)
        }
    }
}
