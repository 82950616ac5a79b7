//! What a provider's answer means for a claimed delivery: sent, failed, retried later, or —
//! when the request may have reached the provider — the channel's rule for doubt.

use super::{Dispatcher, backoff};
use crate::model::channel::{AfterDoubt, ChannelKind};
use crate::server::channels::{Accepted, SendError};
use crate::server::db::{Claimed, Outcome};

impl Dispatcher {
    /// What the provider's answer means for delivery `c` on a channel of `kind`: sent, failed
    /// for good, tried again later (with backoff) until its attempts run out, or — when the
    /// request may have reached the provider — what the channel's rule for doubt says.
    pub(super) fn outcome(
        &self,
        c: &Claimed,
        kind: ChannelKind,
        result: Result<Accepted, SendError>,
    ) -> Outcome {
        match result {
            Err(SendError::MaybeSent { reason }) => self.doubt(c, kind, reason),
            Ok(a) => Outcome::Sent {
                provider_message_id: a.provider_message_id,
                replayed: a.replayed,
            },
            Err(
                SendError::Permanent { reason }
                | SendError::Unreachable { reason }
                | SendError::Undeliverable { reason }
                | SendError::OptedOut { reason },
            ) => Outcome::Failed { reason },
            Err(SendError::NotNow { reason, retry_in }) => Outcome::NotNow {
                reason,
                retry_from: self.clock.now()
                    + chrono::Duration::from_std(retry_in).unwrap_or(chrono::Duration::days(1)),
            },
            // The broadcast is paused: the delivery waits for the resume, as a retry.
            Err(SendError::Systemic { reason }) => Outcome::Retry {
                reason,
                at: self.clock.now(),
            },
            // Nothing was sent, and the whole channel waits (see `deliver`): never given up on.
            Err(SendError::Throttled {
                reason,
                retry_after,
            }) => Outcome::Retry {
                reason,
                at: self.clock.now()
                    + chrono::Duration::from_std(retry_after)
                        .unwrap_or(chrono::Duration::seconds(1)),
            },
            Err(SendError::Transient { reason, .. })
                if c.attempts >= self.settings.max_attempts =>
            {
                Outcome::Failed {
                    reason: format!("Gave up after {} attempts: {reason}", c.attempts),
                }
            }
            Err(SendError::Transient {
                reason,
                retry_after,
            }) => {
                let wait = backoff(&self.settings, c.attempts, retry_after, c.id as u64);
                Outcome::Retry {
                    reason,
                    at: self.clock.now() + wait,
                }
            }
        }
    }

    /// A request of `c` that may have reached the provider, by the channel's rule
    /// ([`AfterDoubt`]): wait for the provider's report, send again to a receiver that drops
    /// repeats, or unknown. A delivery whose answers were lost on every attempt is unknown
    /// too (a late report still records it as sent).
    pub(super) fn doubt(&self, c: &Claimed, kind: ChannelKind, reason: String) -> Outcome {
        let out_of_attempts = c.attempts >= self.settings.max_attempts;
        match kind.after_doubt() {
            AfterDoubt::Reports if !out_of_attempts => Outcome::Uncertain { reason },
            AfterDoubt::ReceiverDeduplicates if !out_of_attempts => Outcome::Retry {
                at: self.clock.now() + backoff(&self.settings, c.attempts, None, c.id as u64),
                reason,
            },
            AfterDoubt::Nothing => Outcome::Unknown { reason },
            // The receiver would have dropped a repeat: it failed as a refusal does.
            AfterDoubt::ReceiverDeduplicates => Outcome::Failed {
                reason: format!("Gave up after {} attempts: {reason}", c.attempts),
            },
            AfterDoubt::Reports => Outcome::Unknown {
                reason: format!(
                    "No answer on any of {} attempts; it may have arrived. The last: {reason}",
                    c.attempts
                ),
            },
        }
    }
}
