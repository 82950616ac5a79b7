//! Messages customers send in: found by address, stored once per provider id, a STOP applied
//! in the same transaction, and a reply marking the delivery it answers (or kept as an early
//! report when that send is not recorded yet).

use crate::model::{ChannelId, CustomerId};
use chrono::{DateTime, Utc};

use super::consent::write_consent;
use super::retry::retrying;
use super::states::ACCEPTED;
use super::{Applied, DeliveryEvent, Report};
use super::{Db, DbError, audit_in, on_pool};
use crate::model::channel::ChannelKind;
use crate::model::opt_out::{is_start_request, is_stop_request};

/// What storing an inbound message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    pub message_id: i64,
    /// The customer who sent it.
    pub customer_id: CustomerId,
    /// The message was a stop word, and the customer is now opted out on its channel kind.
    pub opted_out: bool,
    /// The delivery it was the first reply to, if any.
    pub replied: Option<i64>,
    /// The provider had sent this message before (same provider id): stored then, and the
    /// repeat changed nothing.
    pub repeat: bool,
}

/// An inbound message as [`Db::store_inbound`] left it.
pub(super) struct StoredInbound {
    message_id: i64,
    /// False when the provider sent it before (it was stored then).
    new: bool,
    opted_out: bool,
    /// The broadcast message it answers: (provider id, delivery if recorded).
    answers: Option<(String, Option<i64>)>,
}

/// A STOP message opts its customer out of the channel's kind (once), audited; whether it
/// did now.
macro_rules! opt_out_by_message {
    ($tx:expr, $customer:expr, $channel:expr, $message:expr, $body:expr, $now:expr) => {{
        let (customer_id, channel_id, message_id, body, now): (i64, i64, i64, &str, DateTime<Utc>) =
            ($customer, $channel, $message, $body, $now);
        let opted_out = sqlx::query(
            "INSERT INTO customer_opt_outs (customer_id, channel_kind, at, message_id) \
             SELECT $1, kind, $2, $3 FROM channels WHERE id = $4 ON CONFLICT DO NOTHING",
        )
        .bind(customer_id)
        .bind(now)
        .bind(message_id)
        .bind(channel_id)
        .execute(&mut *$tx)
        .await?
        .rows_affected()
            > 0;
        if opted_out {
            sqlx::query(
                "INSERT INTO audit_log (at, action, subject_type, subject_id, detail) \
                 SELECT $1, 'opt-out', 'customer', $2, 'replied “' || $3 || '” on ' || kind FROM channels WHERE id = $4",
            )
            .bind(now)
            .bind(customer_id)
            .bind(body.trim())
            .bind(channel_id)
            .execute(&mut *$tx)
            .await?;
        }
        opted_out
    }};
}

/// A customer's START on a channel: a marketing opt-in on its kind (source: the message), and
/// their STOP there lifted; recorded and audited.
macro_rules! opt_in_by_message {
    ($tx:expr, $customer:expr, $channel:expr, $body:expr, $now:expr) => {{
        let (customer_id, channel_id, body, now): (i64, i64, &str, DateTime<Utc>) =
            ($customer, $channel, $body, $now);
        let kind: Option<String> = sqlx::query_scalar("SELECT kind FROM channels WHERE id = $1")
            .bind(channel_id)
            .fetch_optional(&mut *$tx)
            .await?;
        let note = format!("replied “{}”", body.trim());
        if let Some(kind) = &kind {
            let change = super::ConsentChange {
                customer_id,
                kind,
                purpose: crate::model::consent::Purpose::Marketing,
                granted: true,
                source: crate::model::consent::Source::Inbound,
                note: Some(&note),
                actor: None,
            };
            write_consent!($tx, &change, now);
            sqlx::query(
                "DELETE FROM customer_opt_outs WHERE customer_id = $1 AND channel_kind = $2",
            )
            .bind(customer_id)
            .bind(kind)
            .execute(&mut *$tx)
            .await?;
        }
    }};
}

impl Db {
    /// The customer whose address on `kind` is `address` (the sandbox: phone, then email).
    pub async fn customer_by_address(
        &self,
        kind: ChannelKind,
        address: &str,
    ) -> Result<Option<i64>, DbError> {
        for column in kind.address_columns() {
            let sql = format!("SELECT id FROM customers WHERE {column} = $1 ORDER BY id LIMIT 1");
            let id: Option<i64> = on_pool!(self, p => sqlx::query_scalar(&sql).bind(address).fetch_optional(p).await?);
            if id.is_some() {
                return Ok(id);
            }
        }
        Ok(None)
    }

    /// A channel's kind and its settings JSON (secrets included: server side only).
    pub async fn channel_kind_and_config(
        &self,
        channel_id: i64,
    ) -> Result<Option<(ChannelKind, String)>, DbError> {
        let row: Option<(String, String)> = on_pool!(self, p => sqlx::query_as(
            "SELECT kind, config FROM channels WHERE id = $1",
        )
        .bind(channel_id)
        .fetch_optional(p)
        .await?);
        let Some((kind, config)) = row else {
            return Ok(None);
        };
        let config = self.open_config(&config, channel_id, &kind)?;
        Ok(ChannelKind::parse(&kind).map(|k| (k, config)))
    }

    /// Stores a message a customer sent on `channel_id`. If its whole text is a stop word, the
    /// customer is opted out on that channel's kind, in the same transaction.
    pub async fn record_inbound(
        &self,
        channel_id: ChannelId,
        customer_id: CustomerId,
        body: &str,
        provider_message_id: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Inbound, DbError> {
        self.record_inbound_reply(
            channel_id,
            customer_id,
            body,
            provider_message_id,
            None,
            now,
        )
        .await
    }

    /// [`Db::record_inbound`] for a message that may answer a broadcast: the delivery whose
    /// provider id is `reply_to` (the provider's reply context), else the customer's latest
    /// delivery on this channel sent within the reply window (`reply-window-hours`, 72 by
    /// default) when this is the first message they sent on the channel since it, is marked
    /// replied (once; its broadcast's reply counter goes up in the same transaction). A stop
    /// word is an opt-out, never a reply. A reply quoting a
    /// message whose send is not recorded yet is applied once it is. A message the provider
    /// sends again (same provider id) is stored once; the repeat changes nothing.
    pub async fn record_inbound_reply(
        &self,
        channel_id: ChannelId,
        customer_id: CustomerId,
        body: &str,
        provider_message_id: Option<&str>,
        reply_to: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Inbound, DbError> {
        let stored = retrying("storing an inbound message", move || {
            self.store_inbound(
                channel_id,
                customer_id,
                body,
                provider_message_id,
                reply_to,
                now,
            )
        })
        .await?;
        let mut replied = None;
        if let Some((pid, delivery)) = &stored.answers {
            let report = Report {
                channel_id: channel_id.0,
                provider_message_id: pid.clone(),
                event: DeliveryEvent::Replied {
                    message_id: stored.message_id,
                },
                at: now,
            };
            if self.apply_events(&[report]).await?[0] == Applied::Moved {
                replied = *delivery;
            }
        }
        if stored.new {
            self.announce_chat(customer_id.0).await;
        }
        Ok(Inbound {
            message_id: stored.message_id,
            customer_id,
            opted_out: stored.opted_out,
            replied,
            repeat: !stored.new,
        })
    }

    /// The message of [`Db::record_inbound_reply`] stored (once) with its opt-out, and the
    /// broadcast message it answers: (its provider id, the delivery if recorded).
    async fn store_inbound(
        &self,
        channel_id: ChannelId,
        customer_id: CustomerId,
        body: &str,
        provider_message_id: Option<&str>,
        reply_to: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<StoredInbound, DbError> {
        let stop = is_stop_request(body);
        let since = now - self.reply_window;
        Ok(on_pool!(self, p => {
            let mut tx = p.begin().await?;
            let inserted: Option<i64> = sqlx::query_scalar(
                "INSERT INTO messages (customer_id, channel_id, direction, body, provider_message_id, created_at) \
                 VALUES ($1, $2, 'in', $3, $4, $5) ON CONFLICT (channel_id, provider_message_id) \
                 WHERE direction = 'in' AND provider_message_id IS NOT NULL DO NOTHING RETURNING id",
            )
            .bind(customer_id)
            .bind(channel_id)
            .bind(body)
            .bind(provider_message_id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
            let new = inserted.is_some();
            let message_id = match inserted {
                Some(id) => id,
                None => sqlx::query_scalar(
                    "SELECT id FROM messages WHERE channel_id = $1 AND provider_message_id = $2 AND direction = 'in'",
                )
                .bind(channel_id)
                .bind(provider_message_id)
                .fetch_one(&mut *tx)
                .await?,
            };
            let opted_out = stop && new && opt_out_by_message!(tx, customer_id.0, channel_id.0, message_id, body, now);
            if new && is_start_request(body) {
                opt_in_by_message!(tx, customer_id.0, channel_id.0, body, now);
            }
            // Which broadcast message it answers: the one it quotes (perhaps not recorded
            // yet), else the latest within the window.
            let answers: Option<(String, Option<i64>)> = match reply_to {
                _ if stop => None,
                Some(r) => {
                    let delivery: Option<i64> = sqlx::query_scalar(
                        "SELECT id FROM deliveries WHERE channel_id = $1 AND provider_message_id = $2 AND customer_id = $3",
                    )
                    .bind(channel_id)
                    .bind(r)
                    .bind(customer_id)
                    .fetch_optional(&mut *tx)
                    .await?;
                    Some((r.to_string(), delivery))
                }
                // Unquoted: the latest message sent within the window, if this is the first
                // message the customer sent on this channel since it.
                None => sqlx::query_as::<_, (String, i64)>(
                    &format!("SELECT d.provider_message_id, d.id FROM deliveries d WHERE d.customer_id = $1 AND d.channel_id = $2 \
                     AND d.sent_at IS NOT NULL AND d.sent_at >= $3 AND d.state IN ({ACCEPTED}) \
                     AND d.provider_message_id IS NOT NULL \
                     AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.customer_id = d.customer_id \
                       AND m.channel_id = d.channel_id AND m.direction = 'in' \
                       AND m.created_at >= d.sent_at AND m.id < $4) \
                     ORDER BY d.sent_at DESC, d.id DESC LIMIT 1"),
                )
                .bind(customer_id)
                .bind(channel_id)
                .bind(since)
                .bind(message_id)
                .fetch_optional(&mut *tx)
                .await?
                .map(|(pid, id)| (pid, Some(id))),
            };
            tx.commit().await?;
            StoredInbound { message_id, new, opted_out, answers }
        }))
    }
}
