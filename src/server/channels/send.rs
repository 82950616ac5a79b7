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
    /// On WhatsApp, the template to send instead of the free text, filled in already.
    pub template: Option<super::OutTemplate>,
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
        parts: Default::default(),
        idempotency_key: message.idempotency_key,
        address,
        body: message.body,
        attachments: message.attachments.to_vec(),
        subject: message.subject.to_string(),
        unsubscribe_url: (kind == ChannelKind::Email)
            .then(|| links.unsubscribe_url(person.id, kind)),
        template: message.template.filter(|_| kind == ChannelKind::Whatsapp),
    }
}

/// The template message `choice` makes for `person`: each parameter from their fields, or its
/// fallback; the header's file from `attachments`.
pub fn template_for(
    choice: Option<&crate::model::template::TemplateChoice>,
    person: &Recipient,
    attachments: &[AttachmentRef],
) -> Option<super::OutTemplate> {
    let choice = choice?;
    let field = |f: &str| -> Option<String> {
        match f {
            "first_name" => person.name.split_whitespace().next().map(str::to_string),
            "name" => Some(person.name.clone()),
            other => person.column(other).map(str::to_string),
        }
    };
    let (mut params, mut header, mut buttons) = (Vec::new(), Vec::new(), Vec::new());
    for (key, text) in choice.values(&field) {
        if let Some(p) = key.strip_prefix("header.") {
            header.push((p.to_string(), text));
        } else if let Some(i) = key.strip_prefix("url.").and_then(|i| i.parse().ok()) {
            buttons.push((i, "url", text));
        } else if let Some(i) = key.strip_prefix("reply.").and_then(|i| i.parse().ok()) {
            // A quick reply left empty goes without a payload: WhatsApp then reports the
            // button's text.
            if !text.is_empty() {
                buttons.push((i, "quick_reply", text));
            }
        } else {
            params.push((key, text));
        }
    }
    buttons.sort_by_key(|(i, _, _)| *i);
    let header_media = choice
        .header_media
        .as_ref()
        .and_then(|id| attachments.iter().find(|a| a.id == *id))
        .and_then(|a| Some((super::whatsapp::carried_as(a).ok()?, a.clone())));
    Some(super::OutTemplate {
        name: choice.name.clone(),
        language: choice.language.clone(),
        // Positional placeholders are numbers; named ones are not.
        named: params
            .iter()
            .chain(header.iter())
            .any(|(p, _)| !p.bytes().all(|b| b.is_ascii_digit())),
        params,
        header,
        header_media,
        buttons,
    })
}

/// How many "undeliverable" answers for one address make it unreachable on its kind.
pub const UNDELIVERABLE_LIMIT: i64 = 3;

/// Sends `message` through `sender`; a refusal's reason comes back as a short plain summary
/// ([`super::summary`]), as it is stored and shown. What the provider says about the address
/// is remembered: gone for good marks the customer unreachable on that kind, a STOP at the
/// provider opts them out of it, and repeated "undeliverable" answers mark it unreachable too
/// (each in a task of its own, so a caller's unpolled future never holds a database lock).
pub async fn send(
    db: &Db,
    sender: &dyn Channel,
    customer: i64,
    message: &Outgoing,
    now: DateTime<Utc>,
) -> Result<Accepted, SendError> {
    let held = super::reserve(sender, message).await;
    send_reserved(db, sender, customer, message, &held, now).await
}

/// [`send`] with the message's share of the attachment budget already held.
pub async fn send_reserved(
    db: &Db,
    sender: &dyn Channel,
    customer: i64,
    message: &Outgoing,
    _held: &super::Reserved,
    now: DateTime<Utc>,
) -> Result<Accepted, SendError> {
    let result = bounded(sender.send(message).await.map_err(SendError::summarised));
    let kind = sender.kind();
    let note = match &result {
        Err(SendError::Unreachable { reason }) => Some((Note::Unreachable, reason.clone())),
        Err(SendError::OptedOut { reason }) => Some((Note::OptedOut, reason.clone())),
        Err(SendError::Undeliverable { reason }) => Some((Note::Undeliverable, reason.clone())),
        _ => None,
    };
    if let Some((note, why)) = note {
        let db = db.clone();
        let marked = tokio::spawn(async move {
            match note {
                Note::Unreachable => db.mark_unreachable(customer, kind, &why, now).await,
                Note::OptedOut => db
                    .opt_out_on(
                        customer,
                        kind,
                        "opt-out",
                        &format!("the provider said: {why}"),
                        now,
                    )
                    .await
                    .map(|_| ()),
                Note::Undeliverable => {
                    let failures = db.note_undeliverable(customer, kind, now).await?;
                    if failures >= UNDELIVERABLE_LIMIT {
                        let why = format!("{failures} undeliverable answers, the last: {why}");
                        db.mark_unreachable(customer, kind, &why, now).await?;
                    }
                    Ok(())
                }
            }
        })
        .await;
        match marked {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = ?e, "noting what the provider said of an address failed")
            }
            Err(e) => {
                tracing::warn!(error = ?e, "noting what the provider said of an address failed")
            }
        }
    }
    result
}

/// The longest provider message id Herald keeps (WhatsApp's are about 60 characters).
pub const PROVIDER_ID_MAX: usize = 200;

/// An acceptance whose message id is longer than Herald keeps cannot be matched with the
/// provider's reports, nor stored whole: it is an answer Herald cannot read.
fn bounded(result: Result<Accepted, SendError>) -> Result<Accepted, SendError> {
    match result {
        Ok(a) if a.provider_message_id.len() > PROVIDER_ID_MAX => Err(SendError::MaybeSent {
            reason: format!(
                "The provider accepted it but named it with an id longer than {PROVIDER_ID_MAX} characters; it may have been sent."
            ),
        }),
        other => other,
    }
}

/// What a refusal says about the address.
#[derive(Debug, Clone, Copy)]
enum Note {
    Unreachable,
    OptedOut,
    Undeliverable,
}
