//! Channel adapters: one trait, one implementation per kind of channel. The test send and the
//! dispatcher hand an [`Outgoing`] message to [`Channel::send`]; the adapter speaks the
//! provider's protocol and says whether the provider accepted it, refused it for good, or
//! should be asked again later.

pub mod codes;
pub mod connection;
pub mod email;
pub mod endpoint;
pub mod sandbox;
pub mod send;
pub mod setup;
pub mod sms;
pub mod telegram;
pub mod webhook;
pub mod whatsapp;

use std::time::Duration;

use futures::future::BoxFuture;

use crate::model::channel::ChannelKind;
use crate::model::compose::AttachmentRef;

/// One message to one recipient, personalised already.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Stable per delivery, sent to the provider where the protocol allows, so that a resend
    /// after a crash is recognised and dropped by the provider.
    pub idempotency_key: String,
    /// The customer's address on this channel (phone, email, chat id, …).
    pub address: String,
    pub body: String,
    pub attachments: Vec<AttachmentRef>,
    /// Where a subject line exists (email): the broadcast's name.
    pub subject: String,
    /// A link that unsubscribes this customer from this kind of channel, where the channel
    /// carries one (email's `List-Unsubscribe`).
    pub unsubscribe_url: Option<String>,
    /// On WhatsApp: the approved template to send instead of the free text, filled in for
    /// this customer.
    pub template: Option<OutTemplate>,
    /// A message that goes as several provider requests (text, then each file): the parts an
    /// earlier attempt had accepted, skipped now, and those this attempt gets accepted.
    pub parts: Parts,
}

/// The parts of a message in several provider requests, numbered from 0 in the order the
/// adapter sends them: which were accepted before (not sent again), and which this attempt
/// gets accepted, noted as each is, so whatever ends the attempt the dispatcher records them.
#[derive(Debug, Clone, Default)]
pub struct Parts {
    /// (part, provider id) accepted by earlier attempts.
    pub done: Vec<(usize, String)>,
    /// (part, provider id) accepted by this attempt, as they are.
    pub accepted: std::sync::Arc<std::sync::Mutex<Vec<(usize, String)>>>,
    /// Told of each part as it is accepted (the dispatcher writes it down at once).
    pub notify: Option<tokio::sync::mpsc::UnboundedSender<(usize, String)>>,
}

impl Parts {
    /// Part `i`'s provider id when an earlier attempt sent it already.
    pub fn done(&self, i: usize) -> Option<&str> {
        self.done
            .iter()
            .find(|(p, _)| *p == i)
            .map(|(_, id)| id.as_str())
    }

    /// Notes that part `i` was accepted with `id`.
    pub fn accept(&self, i: usize, id: &str) {
        self.accepted
            .lock()
            .expect("parts lock")
            .push((i, id.to_string()));
        if let Some(tell) = &self.notify {
            let _ = tell.send((i, id.to_string()));
        }
    }

    /// Every part accepted so far, by this attempt and earlier ones, in order.
    pub fn all(&self) -> Vec<(usize, String)> {
        let mut all = self.done.clone();
        all.extend(self.accepted.lock().expect("parts lock").iter().cloned());
        all.sort();
        all.dedup_by_key(|(i, _)| *i);
        all
    }
}

/// A template message for one customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutTemplate {
    pub name: String,
    pub language: String,
    /// Its parameters are named (`{{first_name}}`), not positional (`{{1}}`).
    pub named: bool,
    /// Each body parameter's text, in the template's order: (placeholder, text).
    pub params: Vec<(String, String)>,
    /// The text header's parameter, if it has one: (placeholder, text).
    pub header: Vec<(String, String)>,
    /// A media header's file and Meta's type for it (`image`, `video`, `document`).
    pub header_media: Option<(&'static str, AttachmentRef)>,
    /// Each filled button: its index, `url` or `quick_reply`, and the URL's end or the payload.
    pub buttons: Vec<(usize, &'static str, String)>,
}

/// The provider took the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub provider_message_id: String,
    /// The provider had seen this idempotency key before and did not send it again.
    pub replayed: bool,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SendError {
    /// Worth retrying (timeouts, rate limits, provider errors), after `retry_after` if the
    /// provider said so.
    #[error("{reason}")]
    Transient {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// The channel sends faster than the provider takes (a documented throttle: 429, 130429,
    /// 20429): nothing was sent; the whole channel waits `retry_after`, then this delivery is
    /// tried again.
    #[error("{reason}")]
    Throttled {
        reason: String,
        retry_after: Duration,
    },
    /// Will not succeed by retrying; the delivery fails with this reason.
    #[error("{reason}")]
    Permanent { reason: String },
    /// The recipient cannot be reached on this channel any more (they blocked the bot, say):
    /// the delivery fails and the address is marked unreachable on this kind of channel.
    #[error("{reason}")]
    Unreachable { reason: String },
    /// This message could not reach the address now (not on WhatsApp, handset off, mailbox
    /// full): the delivery fails; after [`send::UNDELIVERABLE_LIMIT`] such failures the address
    /// is marked unreachable.
    #[error("{reason}")]
    Undeliverable { reason: String },
    /// The customer stopped these messages at the provider (STOP on SMS, WhatsApp's marketing
    /// opt-out): the delivery fails and the customer is opted out of this kind of channel.
    #[error("{reason}")]
    OptedOut { reason: String },
    /// Not sent now, and not retried by the dispatcher; "Retry failed" may send it again
    /// once `retry_in` has passed (WhatsApp's per-user marketing limit).
    #[error("{reason}")]
    NotNow { reason: String, retry_in: Duration },
    /// Every further message of the broadcast would fail the same way (a broken template, a
    /// revoked token): the broadcast pauses itself with this reason; the delivery waits.
    #[error("{reason}")]
    Systemic { reason: String },
    /// The request may have reached the provider and the answer was lost (a timeout after it
    /// went out, a reset, a 5xx, a gateway's error page, WhatsApp's 131000): never retried
    /// as if nothing was sent. What becomes of it is the channel's rule
    /// ([`crate::model::channel::AfterDoubt`]).
    #[error("{reason}")]
    MaybeSent { reason: String },
}

/// A connected channel that can send.
pub trait Channel: Send + Sync {
    fn kind(&self) -> ChannelKind;
    fn send<'a>(&'a self, message: &'a Outgoing) -> BoxFuture<'a, Result<Accepted, SendError>>;
    /// The provider requests sending `message` still takes (its parts not yet accepted): the
    /// rate tokens it needs.
    fn requests(&self, message: &Outgoing) -> u32 {
        let _ = message;
        1
    }
    /// The attachment bytes sending `message` holds in memory at once (taken from the
    /// process's budget before the request starts, see [`reserve`]); none for a channel that
    /// streams its files or sends them by id.
    fn memory(&self, message: &Outgoing) -> u64 {
        let _ = message;
        0
    }
}

/// A send's share of the attachment budget, held until it is dropped (after the provider's
/// answer). [`send::send_reserved`] takes one as proof that it was reserved.
pub struct Reserved(#[allow(dead_code)] Option<tokio::sync::SemaphorePermit<'static>>);

/// Waits until `sender` may hold `message`'s attachments in memory ([`Channel::memory`]).
/// The dispatcher waits for it before it notes that the request starts, so the time a send
/// is uncertain after a crash does not include the wait.
pub async fn reserve(sender: &dyn Channel, message: &Outgoing) -> Reserved {
    match sender.memory(message) {
        0 => Reserved(None),
        bytes => Reserved(Some(attachment_budget(bytes).await)),
    }
}

/// The adapter for a stored channel (`kind` and its settings JSON). Its endpoint must be
/// public unless `allow_private` (see [`endpoint`]). `public_url` is where providers reach
/// this Herald: an SMS names its status callback there.
pub fn adapter(
    channel_id: i64,
    kind: ChannelKind,
    config: &str,
    sandbox: &std::sync::Arc<sandbox::SandboxProvider>,
    files: &crate::server::files::Files,
    allow_private: bool,
    public_url: &str,
) -> Result<Box<dyn Channel>, String> {
    let settings = |name: &str| -> String {
        serde_json::from_str::<serde_json::Value>(config)
            .ok()
            .and_then(|v| v.get(name).and_then(|u| u.as_str()).map(str::to_string))
            .unwrap_or_default()
    };
    match kind {
        ChannelKind::Webhook => endpoint::check_url(&settings("url"), allow_private)?,
        ChannelKind::Email => endpoint::check_host(&settings("smtp_host"), allow_private)?,
        ChannelKind::Sandbox => {}
        _ => endpoint::check_url(&settings("base_url"), allow_private)?,
    }
    let client = endpoint::client(allow_private);
    match kind {
        ChannelKind::Sandbox => Ok(Box::new(sandbox::Sandbox::for_channel(
            sandbox.clone(),
            sandbox::Settings::from_config(config),
            channel_id,
        ))),
        ChannelKind::Telegram => Ok(Box::new(telegram::Telegram::new(
            serde_json::from_str(config).unwrap_or_default(),
            client,
            files.clone(),
        ))),
        ChannelKind::Whatsapp => Ok(Box::new(whatsapp::WhatsApp::new(
            serde_json::from_str(config).unwrap_or_default(),
            client,
            files.clone(),
        ))),
        ChannelKind::Sms => {
            let mut settings: sms::Settings = serde_json::from_str(config).unwrap_or_default();
            if settings.status_callback.trim().is_empty() {
                settings.status_callback = sms::status_callback_url(public_url, channel_id);
            }
            Ok(Box::new(sms::Sms::new(settings, client)))
        }
        ChannelKind::Webhook => Ok(Box::new(webhook::Webhook::new(
            serde_json::from_str(config).unwrap_or_default(),
            client,
        ))),
        ChannelKind::Email => Ok(Box::new(
            email::Email::new(
                serde_json::from_str(config).unwrap_or_default(),
                files.clone(),
            )
            .public_only(!allow_private),
        )),
    }
}

/// The most attachment bytes all sends of this process hold in memory at once, in MiB.
pub const ATTACHMENT_BUDGET_MIB: u32 = 256;

static ATTACHMENT_BUDGET: std::sync::LazyLock<tokio::sync::Semaphore> =
    std::sync::LazyLock::new(|| tokio::sync::Semaphore::new(ATTACHMENT_BUDGET_MIB as usize));

/// Waits until `bytes` of attachments may be read into memory (a file larger than the whole
/// budget takes all of it); held until the permit is dropped, after the provider's answer.
/// Sixty-four sends of ten 20 MB files would otherwise hold gigabytes at once.
pub async fn attachment_budget(bytes: u64) -> tokio::sync::SemaphorePermit<'static> {
    let mib = bytes
        .div_ceil(1024 * 1024)
        .clamp(1, u64::from(ATTACHMENT_BUDGET_MIB)) as u32;
    ATTACHMENT_BUDGET
        .acquire_many(mib)
        .await
        .expect("the attachment budget is never closed")
}

/// An HTTP client for what is not a channel's endpoint (local tools, fakes): pooled, and
/// like the adapters' it follows no redirects.
pub fn http_client() -> reqwest::Client {
    endpoint::client(true)
}

/// The longest provider text a reason keeps.
pub(crate) const SUMMARY_CHARS: usize = 240;

/// What a provider said, made fit to show to staff and store with a delivery: markup taken
/// out, control characters and runs of white space made single spaces, and cut to a short
/// summary. A provider (or whatever answers at its address) decides what it sends back; its
/// page must never reach Herald's pages or fill the database.
pub fn summary(said: &str) -> String {
    let mut text = String::with_capacity(said.len().min(4 * SUMMARY_CHARS));
    let mut in_tag = false;
    for c in said.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if in_tag => {}
            c if c.is_control() || c.is_whitespace() => text.push(' '),
            c => text.push(c),
        }
        if text.len() > 8 * SUMMARY_CHARS {
            break;
        }
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let joined = words.join(" ");
    if joined.chars().count() <= SUMMARY_CHARS {
        return joined;
    }
    let cut: String = joined.chars().take(SUMMARY_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}

impl SendError {
    /// The same error with its reason made a [`summary`]: what the dispatcher stores and the
    /// pages show.
    pub fn summarised(self) -> SendError {
        self.map_reason(|reason| summary(&reason))
    }

    /// The same error with `f` applied to its reason.
    pub fn map_reason(self, f: impl FnOnce(String) -> String) -> SendError {
        match self {
            SendError::Transient {
                reason,
                retry_after,
            } => SendError::Transient {
                reason: f(reason),
                retry_after,
            },
            SendError::Throttled {
                reason,
                retry_after,
            } => SendError::Throttled {
                reason: f(reason),
                retry_after,
            },
            SendError::Permanent { reason } => SendError::Permanent { reason: f(reason) },
            SendError::Unreachable { reason } => SendError::Unreachable { reason: f(reason) },
            SendError::Undeliverable { reason } => SendError::Undeliverable { reason: f(reason) },
            SendError::OptedOut { reason } => SendError::OptedOut { reason: f(reason) },
            SendError::NotNow { reason, retry_in } => SendError::NotNow {
                reason: f(reason),
                retry_in,
            },
            SendError::Systemic { reason } => SendError::Systemic { reason: f(reason) },
            SendError::MaybeSent { reason } => SendError::MaybeSent { reason: f(reason) },
        }
    }
}

/// A request that got no answer. Only one that never got a connection (refused, no route,
/// a connect timeout) proves nothing was sent and is worth retrying; once a connection was
/// made the request may have gone out, so a timeout, a reset or a broken answer may mean
/// "sent". `who` names the provider in the reason.
pub fn no_answer(who: &str, e: &reqwest::Error) -> SendError {
    if e.is_connect() || e.is_builder() {
        return SendError::Transient {
            reason: format!("{who} could not be reached."),
            retry_after: None,
        };
    }
    SendError::MaybeSent {
        reason: if e.is_timeout() {
            format!(
                "{who} did not answer in time after the request went out; it may have been sent."
            )
        } else {
            format!("{who}'s answer was lost after the request went out; it may have been sent.")
        },
    }
}

/// The most of a provider's (or a receiver's) answer Herald reads: any real answer to a send
/// fits many times over; a longer one is cut off (and then reads as unreadable).
pub const ANSWER_CAP: usize = 64 * 1024;

/// Up to `cap` bytes of `response`'s body, read as it arrives; the rest is never read.
pub async fn read_capped(mut response: reqwest::Response, cap: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < cap {
        let Ok(Some(chunk)) = response.chunk().await else {
            break;
        };
        let room = cap - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
    }
    body
}

/// The answer as JSON, read up to [`ANSWER_CAP`]; `None` when it is not JSON (or longer).
pub async fn read_json(response: reqwest::Response, cap: usize) -> Option<serde_json::Value> {
    serde_json::from_slice(&read_capped(response, cap).await).ok()
}

/// An answer that said "accepted" (2xx) but could not be read: the provider may have sent
/// it, and no id says which message it is.
pub fn unreadable(who: &str, status: u16) -> SendError {
    SendError::MaybeSent {
        reason: format!(
            "{who} answered {status} but its answer could not be read; it may have been sent."
        ),
    }
}

/// A refusal by HTTP status: 429 is a throttle (retried after `retry_after` if the provider
/// said); 5xx may come after the provider sent the message (a gateway's error page, a crash
/// after the send), so it may mean "sent"; anything else fails for good.
pub fn refused(status: u16, reason: String, retry_after: Option<std::time::Duration>) -> SendError {
    if status == 429 {
        SendError::Throttled {
            reason,
            retry_after: retry_after.unwrap_or(Duration::from_secs(1)),
        }
    } else if status >= 500 {
        SendError::MaybeSent {
            reason: format!("{reason} It may have been sent."),
        }
    } else {
        SendError::Permanent { reason }
    }
}

#[cfg(test)]
mod tests {
    use super::summary;

    #[test]
    fn provider_text_is_summarised_without_markup_or_control_characters() {
        assert_eq!(summary("  Bad\r\n  request\t"), "Bad request");
        let page = "<html><head><script>alert(1)</script></head><body><h1>502 Bad Gateway</h1><p>nginx</p></body></html>";
        let s = summary(page);
        assert!(!s.contains('<') && !s.contains("script>"), "{s}");
        assert!(s.contains("502 Bad Gateway"), "{s}");
        let long = "x".repeat(10_000);
        let s = summary(&long);
        assert_eq!(s.chars().count(), super::SUMMARY_CHARS);
        assert!(s.ends_with('…'));
        assert_eq!(summary("Ünïcödé ✓ fine"), "Ünïcödé ✓ fine");
    }
}
