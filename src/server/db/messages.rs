//! Customers as recipients (who someone typed, their addresses) and the messages sent to them
//! outside a broadcast's deliveries (test sends, chat replies), and the chat's reads.

use crate::model::{ChannelId, CustomerId, UserId};
use chrono::{DateTime, Utc};

use super::states::{ACCEPTED, FAILED};
use super::{Db, DbError, audit_in, begin_write, on_pool};
use crate::model::audience::CustomerFacts;
use crate::model::channel::ChannelKind;

/// Why staff sent a message outside a broadcast's deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outbound {
    /// A test send of the broadcast being composed (if it is saved already).
    Test(Option<i64>),
    /// A reply from the chat.
    Reply,
}

/// A stored message as the chat shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ChatRecord {
    pub id: i64,
    pub direction: String,
    pub body: String,
    pub channel: Option<String>,
    pub created_at: DateTime<Utc>,
    pub broadcast_id: Option<i64>,
    pub broadcast: Option<String>,
    pub staff: Option<String>,
}

/// A broadcast delivery to one customer, as the chat shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryRecord {
    pub id: i64,
    pub broadcast_id: i64,
    pub broadcast: String,
    pub body: String,
    pub channel: String,
    pub state: crate::model::delivery::DeliveryState,
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

/// A customer with what it takes to reach them.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipient {
    pub id: i64,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub whatsapp_id: Option<String>,
    pub telegram_chat_id: Option<String>,
    pub opted_out: bool,
    /// Kinds the customer opted out of by message.
    pub opted_out_kinds: Vec<ChannelKind>,
}

impl Recipient {
    pub fn column(&self, name: &str) -> Option<&str> {
        match name {
            "phone" => self.phone.as_deref(),
            "email" => self.email.as_deref(),
            "whatsapp_id" => self.whatsapp_id.as_deref(),
            "telegram_chat_id" => self.telegram_chat_id.as_deref(),
            _ => None,
        }
        .filter(|v| !v.is_empty())
    }

    /// The customer's address on `kind`, as the dispatcher picks it (the first address
    /// column set; a kind without address columns uses the customer id).
    pub fn address(&self, kind: ChannelKind) -> Option<String> {
        let columns = kind.address_columns();
        if columns.is_empty() {
            return Some(self.id.to_string());
        }
        columns
            .iter()
            .find_map(|c| self.column(c))
            .map(str::to_string)
    }

    /// What the audience rules need to know of this customer (tags and groups aside).
    pub fn facts(&self) -> CustomerFacts {
        CustomerFacts {
            tags: Vec::new(),
            groups: Vec::new(),
            opted_out: self.opted_out,
            addresses: ChannelKind::ALL
                .into_iter()
                .filter(|k| {
                    !k.address_columns().is_empty()
                        && k.address_columns().iter().any(|c| self.column(c).is_some())
                })
                .collect(),
            opted_out_kinds: self.opted_out_kinds.clone(),
        }
    }
}

type RecipientRow = (
    i64,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
);

impl Db {
    /// Customers someone means by `who`: an exact email (any case), phone or name. Each lookup
    /// uses an index; at most `limit` ids.
    pub async fn find_customers(&self, who: &str, limit: i64) -> Result<Vec<i64>, DbError> {
        let who = who.trim();
        if who.is_empty() {
            return Ok(Vec::new());
        }
        for (sql, value) in [
            (
                "SELECT id FROM customers WHERE email = $1 ORDER BY id LIMIT $2",
                who.to_lowercase(),
            ),
            (
                "SELECT id FROM customers WHERE email = $1 ORDER BY id LIMIT $2",
                who.to_string(),
            ),
            (
                "SELECT id FROM customers WHERE phone = $1 ORDER BY id LIMIT $2",
                who.to_string(),
            ),
            (
                "SELECT id FROM customers WHERE name = $1 ORDER BY id LIMIT $2",
                who.to_string(),
            ),
        ] {
            let ids: Vec<i64> = on_pool!(self, p => sqlx::query_scalar(sql)
                .bind(&value)
                .bind(limit)
                .fetch_all(p)
                .await?);
            if !ids.is_empty() {
                return Ok(ids);
            }
        }
        Ok(Vec::new())
    }

    pub async fn recipient(&self, id: i64) -> Result<Option<Recipient>, DbError> {
        let row: Option<RecipientRow> = on_pool!(self, p => sqlx::query_as(
            "SELECT id, name, phone, email, whatsapp_id, telegram_chat_id, opted_out \
             FROM customers WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(p)
        .await?);
        let Some((id, name, phone, email, whatsapp_id, telegram_chat_id, opted_out)) = row else {
            return Ok(None);
        };
        let kinds = self.channel_opt_outs(id).await?;
        Ok(Some(Recipient {
            id,
            name,
            phone,
            email,
            whatsapp_id,
            telegram_chat_id,
            opted_out,
            opted_out_kinds: kinds
                .into_iter()
                .filter_map(|(k, _)| ChannelKind::parse(&k))
                .collect(),
        }))
    }

    /// The customers `ids` (any order; missing ones left out), with their opt-outs: two
    /// queries for a whole batch.
    pub async fn recipients(&self, ids: &[i64]) -> Result<Vec<Recipient>, DbError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let rows: Vec<RecipientRow> = on_pool!(self, p => sqlx::query_as(&format!(
            "SELECT id, name, phone, email, whatsapp_id, telegram_chat_id, opted_out \
             FROM customers WHERE id IN ({list})"
        ))
        .fetch_all(p)
        .await?);
        let outs: Vec<(i64, String)> = on_pool!(self, p => sqlx::query_as(&format!(
            "SELECT customer_id, channel_kind FROM customer_opt_outs WHERE customer_id IN ({list})"
        ))
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .map(
                |(id, name, phone, email, whatsapp_id, telegram_chat_id, opted_out)| Recipient {
                    id,
                    name,
                    phone,
                    email,
                    whatsapp_id,
                    telegram_chat_id,
                    opted_out,
                    opted_out_kinds: outs
                        .iter()
                        .filter(|(c, _)| *c == id)
                        .filter_map(|(_, k)| ChannelKind::parse(k))
                        .collect(),
                },
            )
            .collect())
    }

    /// Stores a message staff sent to a customer outside a broadcast's deliveries (a test
    /// send of broadcast `about`), with an audit entry.
    #[allow(clippy::too_many_arguments)]
    pub async fn record_outbound(
        &self,
        customer_id: CustomerId,
        channel_id: ChannelId,
        body: &str,
        provider_message_id: &str,
        staff_user_id: UserId,
        about: Outbound,
        now: DateTime<Utc>,
    ) -> Result<i64, DbError> {
        let id = on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO messages (customer_id, channel_id, direction, body, provider_message_id, staff_user_id, created_at) \
                 VALUES ($1, $2, 'out', $3, $4, $5, $6) RETURNING id",
            )
            .bind(customer_id)
            .bind(channel_id)
            .bind(body)
            .bind(provider_message_id)
            .bind(staff_user_id)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            let (action, detail) = match about {
                Outbound::Test(Some(b)) => ("test-send", format!("test of broadcast {b}, message {id}")),
                Outbound::Test(None) => ("test-send", format!("message {id}")),
                Outbound::Reply => ("chat-reply", format!("message {id}")),
            };
            audit_in!(tx, now, staff_user_id, action, "customer", customer_id, detail)?;
            tx.commit().await?;
            id
        });
        self.announce_chat(customer_id.0).await;
        Ok(id)
    }

    /// The customer cannot be reached on `kind` any more (the provider said so): like an
    /// opt-out on that kind, so audiences leave them out there; audited with the reason.
    pub async fn mark_unreachable(
        &self,
        customer_id: i64,
        kind: ChannelKind,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<(), DbError> {
        let detail = format!("unreachable on {}: {reason}", kind.as_str());
        self.opt_out_on(customer_id, kind, "unreachable", &detail, now)
            .await
            .map(|_| ())
    }

    /// A provider answered that `customer_id`'s address on `kind` could not receive a message
    /// now (not on WhatsApp, handset off, mailbox full): how many times it has said so.
    pub async fn note_undeliverable(
        &self,
        customer_id: i64,
        kind: ChannelKind,
        now: DateTime<Utc>,
    ) -> Result<i64, DbError> {
        on_pool!(self, p => {
            let n: i64 = sqlx::query_scalar(
                "INSERT INTO address_failures (customer_id, channel_kind, failures, last_at) \
                 VALUES ($1, $2, 1, $3) ON CONFLICT (customer_id, channel_kind) DO UPDATE SET \
                 failures = address_failures.failures + 1, last_at = excluded.last_at \
                 RETURNING failures",
            )
            .bind(customer_id)
            .bind(kind.as_str())
            .bind(now)
            .fetch_one(p)
            .await?;
            Ok(n)
        })
    }

    /// Leaves `customer_id` out of audiences on `kind` from now on (an unsubscribe link, an
    /// address the provider gave up on); audited as `action` the first time. Whether this
    /// changed anything.
    pub async fn opt_out_on(
        &self,
        customer_id: i64,
        kind: ChannelKind,
        action: &str,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let changed = on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let n = sqlx::query(
                "INSERT INTO customer_opt_outs (customer_id, channel_kind, at) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(customer_id)
            .bind(kind.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n > 0 {
                audit_in!(tx, now, None::<i64>, action, "customer", customer_id, detail)?;
            }
            tx.commit().await?;
            Ok::<bool, DbError>(n > 0)
        })?;
        Ok(changed)
    }

    /// Lifts customer `customer_id`'s opt-out on `kind` (they chose it again on their
    /// preference page), audited; whether there was one.
    pub async fn lift_opt_out(
        &self,
        customer_id: i64,
        kind: ChannelKind,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let changed = on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let n = sqlx::query("DELETE FROM customer_opt_outs WHERE customer_id = $1 AND channel_kind = $2")
                .bind(customer_id)
                .bind(kind.as_str())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n > 0 {
                let detail = format!("chose {} again on the preference page", kind.as_str());
                audit_in!(tx, now, None::<i64>, "opt-in", "customer", customer_id, detail)?;
            }
            tx.commit().await?;
            Ok::<bool, DbError>(n > 0)
        })?;
        Ok(changed)
    }

    /// The server key called `name`, made from `fresh` the first time any instance asks.
    pub async fn server_key(&self, name: &str, fresh: &str) -> Result<String, DbError> {
        let context = format!("server-key:{name}");
        let stored: String = on_pool!(self, p => {
            sqlx::query("INSERT INTO server_keys (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(name)
                .bind(self.sealer.seal(fresh, &context))
                .execute(p)
                .await?;
            sqlx::query_scalar("SELECT value FROM server_keys WHERE name = $1")
                .bind(name)
                .fetch_one(p)
                .await?
        });
        if crate::server::db::secrets::Sealer::is_sealed(&stored) {
            return Ok(self.sealer.open(&stored, &context)?);
        }
        // Kept in clear by an older Herald: sealed now, so a dump cannot forge with it.
        let plain = self.sealer.open_legacy(&stored, &context)?;
        on_pool!(self, p => sqlx::query("UPDATE server_keys SET value = $1 WHERE name = $2 AND value = $3")
            .bind(self.sealer.seal(&plain, &context))
            .bind(name)
            .bind(&stored)
            .execute(p)
            .await
            .map(|_| ())?);
        Ok(plain)
    }

    /// The newest `limit` of the customer's messages after message `after` (and before
    /// `before`, if given), oldest first: a page of the conversation, never all of it.
    pub async fn chat_messages(
        &self,
        customer_id: i64,
        after: i64,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<ChatRecord>, DbError> {
        Ok(on_pool!(self, p => sqlx::query_as(
            "SELECT * FROM (SELECT m.id, m.direction, m.body, ch.name AS channel, m.created_at, \
             m.broadcast_id, b.name AS broadcast, u.name AS staff \
             FROM messages m LEFT JOIN channels ch ON ch.id = m.channel_id \
             LEFT JOIN broadcasts b ON b.id = m.broadcast_id \
             LEFT JOIN staff_users u ON u.id = m.staff_user_id \
             WHERE m.customer_id = $1 AND m.id > $2 AND m.id < $3 \
             ORDER BY m.id DESC LIMIT $4) page ORDER BY id",
        )
        .bind(customer_id)
        .bind(after)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit)
        .fetch_all(p)
        .await?))
    }

    /// The broadcasts that went out (or failed) to the customer, oldest first.
    pub async fn customer_deliveries(
        &self,
        customer_id: i64,
    ) -> Result<Vec<DeliveryRecord>, DbError> {
        Ok(on_pool!(self, p => sqlx::query_as(&format!(
            "SELECT d.id, d.broadcast_id, b.name AS broadcast, b.body, ch.name AS channel, d.state, d.error, \
             COALESCE(d.sent_at, d.failed_at, d.created_at) AS at \
             FROM deliveries d JOIN broadcasts b ON b.id = d.broadcast_id JOIN channels ch ON ch.id = d.channel_id \
             WHERE d.customer_id = $1 AND d.state IN ({ACCEPTED}, {FAILED}) ORDER BY d.id",
        ))
        .bind(customer_id)
        .fetch_all(p)
        .await?))
    }

    /// Marks the customer's chat seen now; returns when it was seen before (messages that came
    /// in after that are unread).
    pub async fn chat_seen(
        &self,
        customer_id: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<DateTime<Utc>>, DbError> {
        Ok(on_pool!(self, p => {
            let before: Option<Option<DateTime<Utc>>> =
                sqlx::query_scalar("SELECT chat_seen_at FROM customers WHERE id = $1")
                    .bind(customer_id)
                    .fetch_optional(p)
                    .await?;
            sqlx::query("UPDATE customers SET chat_seen_at = $1 WHERE id = $2")
                .bind(now)
                .bind(customer_id)
                .execute(p)
                .await?;
            before.flatten()
        }))
    }

    /// The channel a reply to the customer goes out on: the one they last wrote on, else the
    /// last one a broadcast reached them on.
    pub async fn reply_channel(&self, customer_id: i64) -> Result<Option<i64>, DbError> {
        Ok(on_pool!(self, p => {
            let inbound: Option<i64> = sqlx::query_scalar(
                "SELECT channel_id FROM messages WHERE customer_id = $1 AND direction = 'in' \
                 AND channel_id IS NOT NULL ORDER BY id DESC LIMIT 1",
            )
            .bind(customer_id)
            .fetch_optional(p)
            .await?;
            match inbound {
                Some(c) => Some(c),
                None => sqlx::query_scalar(&format!(
                    "SELECT channel_id FROM deliveries WHERE customer_id = $1 \
                     AND state IN ({ACCEPTED}) ORDER BY id DESC LIMIT 1",
                ))
                .bind(customer_id)
                .fetch_optional(p)
                .await?,
            }
        }))
    }

    /// Makes `staff_user_id` the customer's assignee, audited.
    pub async fn assign_customer(
        &self,
        customer_id: CustomerId,
        staff_user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        Ok(on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let n = sqlx::query("UPDATE customers SET assignee_id = $1, version = version + 1 WHERE id = $2")
                .bind(staff_user_id)
                .bind(customer_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n > 0 {
                audit_in!(tx, now, staff_user_id, "assign", "customer", customer_id, "assigned to themselves from the chat")?;
            }
            tx.commit().await?;
            n > 0
        }))
    }
}
