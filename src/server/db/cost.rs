//! The counts a broadcast's cost is made of. Before sending: the customers each picked channel
//! will reach, by the start of their number, under the same consent and cap conditions the
//! firing uses (one grouped query over the audience). After: the messages the providers
//! accepted, by channel, by what WhatsApp reported of each (its pricing category, whether it
//! is billable) and by the start of the number (one grouped query over the broadcast's
//! deliveries). Only as much of a number as the price table's longest prefix is read, so the
//! groups stay few.

use super::audience::{AudienceBind, AudienceSql, Builder, bind_audience};
use super::eligible::Eligibility;
use super::states::ACCEPTED;
use super::{Db, DbError, on_pool};
use crate::model::audience::AudienceRule;
use crate::model::channel::ChannelKind;

/// The first `len` characters of the number `kind` sends to in row `c` (WhatsApp ids carry no
/// `+`), `''` when the price does not depend on it.
fn head(kind: ChannelKind, len: usize) -> String {
    let address = match kind {
        ChannelKind::Whatsapp => "('+' || c.whatsapp_id)",
        ChannelKind::Sms => "c.phone",
        _ => return "''".into(),
    };
    if len == 0 {
        return "''".into();
    }
    format!("COALESCE(SUBSTR({address}, 1, {len}), '')")
}

/// Accepted messages of one channel with the same price.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SentGroup {
    pub channel_id: i64,
    pub kind: String,
    /// WhatsApp's reported `pricing.category`, if a report said.
    pub category: Option<String>,
    /// WhatsApp's reported `pricing.billable`, if a report said.
    pub billable: Option<bool>,
    /// The start of the number.
    pub head: String,
    pub count: i64,
    /// Of them, how many the provider billed in the table's currency, and for how much.
    pub billed: i64,
    pub billed_micros: i64,
}

impl Db {
    /// The pre-flight: (index into `picked`, start of the number, customers) for the
    /// customers `rule` matches whom `e` lets the first of `picked` that may reach them
    /// reach. `lens[i]`: how much of a number decides the price on `picked[i]`.
    pub async fn cost_groups(
        &self,
        rule: &AudienceRule,
        picked: &[(i64, ChannelKind)],
        e: &Eligibility,
        lens: &[usize],
    ) -> Result<Vec<(i64, String, i64)>, DbError> {
        if picked.is_empty() {
            return Ok(Vec::new());
        }
        let mut b = Builder {
            dialect: self.dialect(),
            first: 1,
            binds: Vec::new(),
        };
        let over = b.over_cap(e);
        let (mut slots, mut heads) = (Vec::new(), Vec::new());
        for (i, (_, k)) in picked.iter().enumerate() {
            let reach = format!("{} AND {}", b.reach(*k), b.consents(*k, e));
            slots.push(format!("WHEN {reach} THEN {i}"));
            heads.push(format!(
                "WHEN {i} THEN {}",
                head(*k, lens.get(i).copied().unwrap_or(0))
            ));
        }
        let rule_sql = b.rule(rule);
        // The outer query reads the inner one's rows as `c`, so the heads' `c.phone` and
        // `c.whatsapp_id` are the customer's.
        let sql = format!(
            "SELECT CAST(c.slot AS BIGINT), CASE c.slot {heads} ELSE '' END, COUNT(*) FROM \
             (SELECT CASE {slots} ELSE -1 END AS slot, c.phone, c.whatsapp_id FROM customers c \
              WHERE NOT c.opted_out AND {rule_sql} AND NOT ({over})) c \
             WHERE c.slot >= 0 GROUP BY 1, 2",
            slots = slots.join(" "),
            heads = heads.join(" "),
        );
        let a = AudienceSql {
            clause: String::new(),
            binds: b.binds,
        };
        let rows: Vec<(i64, String, i64)> =
            on_pool!(self, p => bind_audience!(sqlx::query_as(&sql), a).fetch_all(p).await?);
        Ok(rows)
    }

    /// The messages of broadcast `id` the providers accepted, grouped by what their price
    /// depends on; `len` characters of each number are read.
    pub async fn sent_groups(
        &self,
        id: i64,
        len: usize,
        currency: &str,
    ) -> Result<Vec<SentGroup>, DbError> {
        let (wa, sms) = (
            head(ChannelKind::Whatsapp, len),
            head(ChannelKind::Sms, len),
        );
        let sql = format!(
            "SELECT d.channel_id, ch.kind, d.pricing_category AS category, d.billable, \
             CASE ch.kind WHEN 'whatsapp' THEN {wa} WHEN 'sms' THEN {sms} ELSE '' END AS head, \
             COUNT(*) AS count, \
             CAST(COUNT(CASE WHEN d.provider_price_unit = $2 THEN 1 END) AS BIGINT) AS billed, \
             CAST(COALESCE(SUM(CASE WHEN d.provider_price_unit = $2 THEN d.provider_price_micros END), 0) AS BIGINT) AS billed_micros \
             FROM deliveries d JOIN channels ch ON ch.id = d.channel_id \
             JOIN customers c ON c.id = d.customer_id \
             WHERE d.broadcast_id = $1 AND d.state IN ({ACCEPTED}) GROUP BY 1, 2, 3, 4, 5"
        );
        Ok(on_pool!(self, p => sqlx::query_as(&sql).bind(id).bind(currency).fetch_all(p).await?))
    }

    /// Up to `limit` Twilio messages (sids `SM…`) sent before `before` whose price is still to
    /// be read: (delivery, channel, sid), through the partial index `deliveries_unpriced`.
    pub async fn unpriced_texts(
        &self,
        before: chrono::DateTime<chrono::Utc>,
        limit: i64,
    ) -> Result<Vec<(i64, i64, String)>, DbError> {
        Ok(on_pool!(self, p => sqlx::query_as(&format!(
            "SELECT id, channel_id, provider_message_id FROM deliveries \
             WHERE provider_price_micros IS NULL AND price_reads < 5 AND provider_message_id LIKE 'SM%' \
             AND state IN ({ACCEPTED}) AND sent_at < $1 ORDER BY id LIMIT $2"
        ))
        .bind(before)
        .bind(limit)
        .fetch_all(p)
        .await?))
    }

    /// What the provider billed for delivery `id` (millionths of `unit`), or that it had no
    /// price yet (`None`: one read more).
    pub async fn note_price(&self, id: i64, price: Option<(i64, &str)>) -> Result<(), DbError> {
        on_pool!(self, p => {
            match price {
                Some((micros, unit)) => sqlx::query(
                    "UPDATE deliveries SET provider_price_micros = $1, provider_price_unit = $2 WHERE id = $3",
                )
                .bind(micros)
                .bind(unit)
                .bind(id)
                .execute(p)
                .await?,
                None => sqlx::query("UPDATE deliveries SET price_reads = price_reads + 1 WHERE id = $1")
                    .bind(id)
                    .execute(p)
                    .await?,
            };
            Ok::<(), DbError>(())
        })?;
        Ok(())
    }
}
