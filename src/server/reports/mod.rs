//! What providers report after a send: delivery statuses and replies. Webhooks
//! ([`crate::server::http::webhooks`]) read each provider's format into [`Report`]s;
//! [`ingest::Ingest`] batches them, many requests per transaction, into
//! [`Db::apply_events`](crate::server::db::Db::apply_events), which moves each delivery
//! forward through [`crate::model::delivery`]. A report that overtakes the record of its
//! send is kept as an early report and applied once the send is recorded.
//!
//! [`Report`]: crate::server::db::Report

pub mod ingest;

use chrono::{DateTime, Utc};

use crate::model::channel::ChannelKind;
use crate::server::db::{Db, DbError, Inbound};

/// A message a customer sent in, as a provider's webhook names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundMessage {
    pub channel_id: crate::model::ChannelId,
    pub kind: ChannelKind,
    /// The sender's address on that kind of channel (phone, WhatsApp id, chat id).
    pub from: String,
    pub text: String,
    /// The provider's id for it, so a repeated webhook stores it once.
    pub provider_id: Option<String>,
    /// The provider id of the message it answers, when the provider says.
    pub answers: Option<String>,
}

/// Stores `m` in its sender's conversation (a STOP opts them out on that kind, a reply marks
/// the delivery it answers); `None` when the sender is not a customer (dropped).
pub async fn take_in(
    db: &Db,
    m: InboundMessage,
    now: DateTime<Utc>,
) -> Result<Option<Inbound>, DbError> {
    let Some(customer) = db.customer_by_address(m.kind, &m.from).await? else {
        return Ok(None);
    };
    db.record_inbound_reply(
        m.channel_id,
        crate::model::CustomerId(customer),
        &m.text,
        m.provider_id.as_deref(),
        m.answers.as_deref(),
        now,
    )
    .await
    .map(Some)
}
