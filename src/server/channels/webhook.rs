//! The generic webhook channel: each message is a JSON POST to the customer's own system.
//!
//! ```text
//! POST <url>
//! Content-Type: application/json
//! Idempotency-Key: herald-delivery-42
//! X-Herald-Signature: sha256=<hex HMAC-SHA256 of the body with the channel's secret>
//!
//! {"id":"herald-delivery-42","to":"1234","text":"Hi Ann","attachments":[{"name":…,"mime":…,"size":…}]}
//! ```
//!
//! A 2xx answer is acceptance; its JSON may name the receiver's own message `id` and say
//! `"duplicate": true` when it had that key already. 429 and 5xx (and timeouts) are retried,
//! honouring `Retry-After`; any other answer fails the delivery with the receiver's words.

use std::time::Duration;

use futures::future::BoxFuture;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Accepted, Channel, Outgoing, SendError};
use crate::model::channel::ChannelKind;

/// The channel's settings (from `channels.config`).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    pub url: String,
    /// Signs each body (never sent, never shown back).
    pub secret: String,
    /// How long to wait for an answer, in milliseconds (default 10 s).
    pub timeout_ms: Option<u64>,
}

pub struct Webhook {
    settings: Settings,
    client: reqwest::Client,
}

impl Webhook {
    pub fn new(settings: Settings, client: reqwest::Client) -> Self {
        Webhook { settings, client }
    }
}

/// `sha256=<hex>` of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Seconds from a `Retry-After` header (the date form is not used by the receivers we know).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(|s| Duration::from_secs(s.min(3600)))
}

impl Channel for Webhook {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Webhook
    }

    fn send<'a>(&'a self, m: &'a Outgoing) -> BoxFuture<'a, Result<Accepted, SendError>> {
        Box::pin(async move {
            if self.settings.url.is_empty() {
                return Err(SendError::Permanent {
                    reason: "The webhook channel has no URL.".into(),
                });
            }
            let body = serde_json::json!({
                "id": m.idempotency_key,
                "to": m.address,
                "text": m.body,
                "attachments": m.attachments.iter().map(|a| serde_json::json!({
                    "name": a.name, "mime": a.mime, "size": a.size,
                })).collect::<Vec<_>>(),
            })
            .to_string();
            let answer = self
                .client
                .post(&self.settings.url)
                .timeout(Duration::from_millis(
                    self.settings.timeout_ms.unwrap_or(10_000),
                ))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("Idempotency-Key", &m.idempotency_key)
                .header(
                    "X-Herald-Signature",
                    signature(&self.settings.secret, body.as_bytes()),
                )
                .body(body)
                .send()
                .await;
            let response = answer.map_err(|e| super::no_answer("The receiver", &e))?;
            let status = response.status();
            let wait = retry_after(response.headers());
            let body = super::read_capped(response, super::ANSWER_CAP).await;
            let text = String::from_utf8_lossy(&body);
            if status.is_success() {
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                return Ok(Accepted {
                    provider_message_id: v
                        .get("id")
                        .and_then(|i| i.as_str())
                        .unwrap_or(&m.idempotency_key)
                        .to_string(),
                    replayed: v.get("duplicate").and_then(|d| d.as_bool()) == Some(true),
                });
            }
            let said: String = text.chars().take(200).collect();
            let reason = format!("HTTP {}: {}", status.as_u16(), said.trim());
            Err(super::refused(status.as_u16(), reason, wait))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_the_documented_example() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), RFC 4231-style
        // known answer.
        assert_eq!(
            signature("key", b"The quick brown fox jumps over the lazy dog"),
            "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }
}
