//! The stored states as SQL literals, for SQL text (`d.state = {PENDING}`). They come from
//! the model's enums, so no query spells a state itself and a renamed state cannot leave a
//! query behind.

use crate::model::Lifecycle as L;
use crate::model::delivery::DeliveryState as D;

// deliveries.state
pub const PENDING: &str = D::Pending.sql();
pub const SENDING: &str = D::Sending.sql();
pub const SENT: &str = D::Sent.sql();
pub const DELIVERED: &str = D::Delivered.sql();
pub const READ: &str = D::Read.sql();
pub const FAILED: &str = D::Failed.sql();
/// Not sent before its broadcast's expiry.
pub const EXPIRED: &str = D::Expired.sql();
/// May have arrived; the provider cannot tell.
pub const UNKNOWN: &str = D::Unknown.sql();
/// Accepted by the provider: sent, delivered or read.
pub const ACCEPTED: &str = D::ACCEPTED_SQL;
/// Delivered or read.
pub const REACHED: &str = D::DELIVERED_SQL;
/// Pending or claimed: nobody has answered yet.
pub const WAITING: &str = D::WAITING_SQL;

// broadcasts.status
pub const DRAFT: &str = L::Draft.sql();
pub const SCHEDULED: &str = L::Scheduled.sql();
pub const BROADCAST_SENDING: &str = L::Sending.sql();
pub const BROADCAST_SENT: &str = L::Sent.sql();
pub const BROADCAST_FAILED: &str = L::Failed.sql();
pub const CANCELLED: &str = L::Cancelled.sql();
/// Draft or scheduled: open to edits.
pub const EDITABLE: &str = L::EDITABLE_SQL;
/// Scheduled or sending: can be paused or cancelled.
pub const STOPPABLE: &str = L::STOPPABLE_SQL;
/// Sent or failed.
pub const FINISHED: &str = L::FINISHED_SQL;
/// Not finished and not cancelled.
pub const OPEN: &str = L::OPEN_SQL;

/// The channel kinds whose providers report delivery, as an SQL list of their stored names
/// (`kind IN (…)`).
pub fn reporting_kinds() -> String {
    let kinds: Vec<String> = crate::model::channel::ChannelKind::ALL
        .into_iter()
        .filter(|k| k.reports_delivery())
        .map(|k| format!("'{}'", k.as_str()))
        .collect();
    kinds.join(", ")
}
