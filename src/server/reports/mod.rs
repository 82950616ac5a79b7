//! What providers report after a send: delivery statuses and replies. Webhooks
//! ([`crate::server::http::webhooks`]) read each provider's format into [`Report`]s;
//! [`ingest::Ingest`] batches them, many requests per transaction, into
//! [`Db::apply_events`](crate::server::db::Db::apply_events), which moves each delivery
//! forward through [`crate::model::delivery`]. A report that overtakes the record of its
//! send is kept as an early report and applied once the send is recorded.
//!
//! [`Report`]: crate::server::db::Report

pub mod ingest;
pub mod prices;

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

/// A failure a provider reported after accepting the message, with its code's row.
#[derive(Debug, Clone)]
pub struct ReportedFailure {
    pub provider_message_id: String,
    pub code: &'static crate::server::channels::codes::Code,
    pub reason: String,
}

/// What a provider's reported failures mean beyond the delivery's state, done once they are
/// stored: each failure's follow-up as its code's row says (pause the broadcast, opt the customer out, mark the address, wait before "Retry
/// failed"), the same as when the provider refuses a send at once.
pub async fn follow_up(
    state: &crate::server::AppState,
    channel_id: i64,
    kind: ChannelKind,
    failures: &[ReportedFailure],
) -> Result<(), DbError> {
    use crate::server::channels::codes::Meaning;
    let db = &state.db;
    let now = state.clock.now();
    for f in failures {
        let Some(crate::server::db::DeliveryRef {
            id: delivery,
            broadcast_id: broadcast,
            customer_id: customer,
        }) = db
            .delivery_by_provider(channel_id, &f.provider_message_id)
            .await?
        else {
            continue;
        };
        match f.code.meaning {
            Meaning::PauseBroadcast => {
                state.dispatcher.halt(broadcast.0);
                db.pause_for_provider(broadcast, &f.reason, now).await?;
            }
            Meaning::OptedOut => {
                let detail = format!("the provider said: {}", f.reason);
                db.opt_out_on(customer.0, kind, "opt-out", &detail, now)
                    .await?;
            }
            Meaning::Unreachable => {
                db.mark_unreachable(customer.0, kind, &f.reason, now)
                    .await?
            }
            Meaning::Undeliverable => {
                let failures = db.note_undeliverable(customer.0, kind, now).await?;
                if failures >= crate::server::channels::send::UNDELIVERABLE_LIMIT {
                    let why = format!("{failures} undeliverable answers, the last: {}", f.reason);
                    db.mark_unreachable(customer.0, kind, &why, now).await?;
                }
            }
            Meaning::NotNow { hours } => {
                let from = now + chrono::Duration::hours(i64::from(hours));
                db.hold_failure(delivery, from).await?;
            }
            Meaning::Retry
            | Meaning::MaybeSent
            | Meaning::Throttle
            | Meaning::BackOffRecipient
            | Meaning::Fail
            | Meaning::NeedsTemplate
            | Meaning::NotCharged => {}
        }
    }
    Ok(())
}
