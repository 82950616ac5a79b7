//! Customers' consent: the latest word per kind of channel and purpose, and every change.

use chrono::{DateTime, Utc};

use super::{Db, DbError, audit_in, begin_write, on_pool};
use crate::model::UserId;
use crate::model::consent::{Purpose, Source};

/// One change of a customer's consent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentChange<'a> {
    pub customer_id: i64,
    /// The kind of channel (`sms`).
    pub kind: &'a str,
    pub purpose: Purpose,
    pub granted: bool,
    pub source: Source,
    pub note: Option<&'a str>,
    pub actor: Option<UserId>,
}

/// A customer's latest word on a kind and purpose: (kind, purpose, granted, source, note, at).
pub type ConsentRow = (String, Purpose, bool, Source, Option<String>, DateTime<Utc>);

/// Writes consent change `$c` in transaction `$tx`: the latest word, the history and the
/// audit log.
macro_rules! write_consent {
    ($tx:expr, $c:expr, $now:expr) => {{
        let (c, now): (&$crate::server::db::ConsentChange<'_>, DateTime<Utc>) = ($c, $now);
        sqlx::query(
            "INSERT INTO customer_consents (customer_id, channel_kind, purpose, granted, source, note, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (customer_id, channel_kind, purpose) \
             DO UPDATE SET granted = $4, source = $5, note = $6, at = $7",
        )
        .bind(c.customer_id)
        .bind(c.kind)
        .bind(c.purpose)
        .bind(c.granted)
        .bind(c.source)
        .bind(c.note)
        .bind(now)
        .execute(&mut *$tx)
        .await?;
        sqlx::query(
            "INSERT INTO consent_changes (customer_id, channel_kind, purpose, granted, source, note, actor_id, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(c.customer_id)
        .bind(c.kind)
        .bind(c.purpose)
        .bind(c.granted)
        .bind(c.source)
        .bind(c.note)
        .bind(c.actor)
        .bind(now)
        .execute(&mut *$tx)
        .await?;
        let word = if c.granted { "given" } else { "withdrawn" };
        let detail = format!(
            "{} {} {word} via {}{}",
            c.kind,
            c.purpose.as_str(),
            c.source.as_str(),
            c.note.map(|n| format!(": {n}")).unwrap_or_default()
        );
        audit_in!($tx, now, c.actor, "consent", "customer", c.customer_id, detail)?;
    }};
}
pub(super) use write_consent;

impl Db {
    /// Records `c` as the customer's latest word on its kind and purpose, in the history, and
    /// in the audit log, in one transaction.
    pub async fn record_consent(
        &self,
        c: &ConsentChange<'_>,
        now: DateTime<Utc>,
    ) -> Result<(), DbError> {
        on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            write_consent!(tx, c, now);
            tx.commit().await?;
        });
        Ok(())
    }

    /// A customer's latest word on each kind and purpose.
    pub async fn consents_of(&self, customer_id: i64) -> Result<Vec<ConsentRow>, DbError> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT channel_kind, purpose, granted, source, note, at FROM customer_consents \
             WHERE customer_id = $1 ORDER BY channel_kind, purpose",
        )
        .bind(customer_id)
        .fetch_all(p)
        .await?))
    }

    /// The demo's consent: six in seven customers with a WhatsApp id or a phone opted in to
    /// marketing there, as if by the import that brought them.
    pub async fn demo_consents(&self, now: DateTime<Utc>) -> Result<(), DbError> {
        for (kind, column) in [("whatsapp", "whatsapp_id"), ("sms", "phone")] {
            let sql = format!(
                "INSERT INTO customer_consents (customer_id, channel_kind, purpose, granted, source, note, at) \
                 SELECT id, $1, $2, TRUE, $3, 'demo data', $4 FROM customers \
                 WHERE {column} IS NOT NULL AND id % 7 <> 0 ON CONFLICT DO NOTHING"
            );
            on_pool!(self, p => sqlx::query(&sql)
                .bind(kind)
                .bind(Purpose::Marketing)
                .bind(Source::Import)
                .bind(now)
                .execute(p)
                .await
                .map(|_| ())?);
        }
        Ok(())
    }
}
