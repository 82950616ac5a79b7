//! The one send path for a single message, shared by the dispatcher (a broadcast's delivery),
//! the chat (a staff reply) and the test send: whether the customer can be reached on the
//! channel, the message as the adapter takes it, and the send itself, which also remembers an
//! address the provider says is gone for good.

use chrono::{DateTime, Utc};

use super::{Accepted, Channel, Outgoing, SendError};
use crate::model::channel::ChannelKind;
use crate::model::compose::AttachmentRef;
use crate::server::customers::unsubscribe::Links;
use crate::server::db::{Db, Recipient};

/// Why a message cannot go to a customer on a channel at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    /// Opted out of everything, or of this kind of channel.
    OptedOut,
    /// No address on this kind of channel.
    NoAddress,
}

/// The customer's address on `kind`, unless they opted out of it or have none.
pub fn address(person: &Recipient, kind: ChannelKind) -> Result<String, Unreachable> {
    if person.opted_out || person.opted_out_kinds.contains(&kind) {
        return Err(Unreachable::OptedOut);
    }
    person.address(kind).ok_or(Unreachable::NoAddress)
}

/// What one message carries besides its address.
pub struct Message<'a> {
    pub idempotency_key: String,
    pub body: String,
    pub attachments: &'a [AttachmentRef],
    pub subject: &'a str,
}

/// The message for `person` at `address` on `kind`: an email also carries the customer's
/// unsubscribe link.
pub fn outgoing(
    message: Message<'_>,
    person: &Recipient,
    kind: ChannelKind,
    address: String,
    links: &Links,
) -> Outgoing {
    Outgoing {
        idempotency_key: message.idempotency_key,
        address,
        body: message.body,
        attachments: message.attachments.to_vec(),
        subject: message.subject.to_string(),
        unsubscribe_url: (kind == ChannelKind::Email)
            .then(|| links.unsubscribe_url(person.id, kind)),
    }
}

/// Sends `message` through `sender`; a refusal's reason comes back as a short plain summary
/// ([`super::summary`]), as it is stored and shown. When the provider says the address is gone
/// for good, the customer is marked unreachable on that kind (in a task of its own, so a caller's
/// unpolled future never holds a database lock).
pub async fn send(
    db: &Db,
    sender: &dyn Channel,
    customer: i64,
    message: &Outgoing,
    now: DateTime<Utc>,
) -> Result<Accepted, SendError> {
    let result = sender.send(message).await.map_err(SendError::summarised);
    if let Err(SendError::Unreachable { reason }) = &result {
        let (db, kind, why) = (db.clone(), sender.kind(), reason.clone());
        let marked =
            tokio::spawn(async move { db.mark_unreachable(customer, kind, &why, now).await }).await;
        match marked {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::warn!(error = ?e, "marking an address unreachable failed"),
            Err(e) => tracing::warn!(error = ?e, "marking an address unreachable failed"),
        }
    }
    result
}
