//! The sandbox channel: a provider inside Herald, for trying it out and for tests. It accepts
//! every message to an address, remembers idempotency keys (a repeated key is a replay, not a
//! second message), and can be told to refuse a share of messages or to be slow.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;

use super::{Accepted, Channel, Outgoing, SendError};
use crate::model::channel::ChannelKind;

/// The channel's settings (from `channels.config`).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Share of messages refused for good, 0.0–1.0.
    pub fail: f64,
    /// How long the provider takes to answer, in milliseconds.
    pub latency_ms: u64,
    /// The first this-many tries of each message are answered "busy, retry after 1 s" (a
    /// rate-limit answer, as real providers give).
    pub busy_first: u32,
}

impl Settings {
    /// Reads what it knows of the JSON; anything unreadable means the defaults.
    pub fn from_config(config: &str) -> Settings {
        serde_json::from_str(config).unwrap_or_default()
    }
}

/// The simulated provider's memory, shared by every sandbox channel of the process.
#[derive(Default)]
pub struct SandboxProvider {
    /// Idempotency key → the provider message id it was given.
    seen: Mutex<HashMap<String, String>>,
    sent: Mutex<u64>,
    /// Idempotency key → tries answered "busy" so far.
    busy: Mutex<HashMap<String, u32>>,
}

impl SandboxProvider {
    /// Messages accepted (replays not counted).
    pub fn sent(&self) -> u64 {
        *self.sent.lock().expect("sandbox lock")
    }
}

pub struct Sandbox {
    provider: Arc<SandboxProvider>,
    settings: Settings,
}

impl Sandbox {
    pub fn new(provider: Arc<SandboxProvider>, settings: Settings) -> Self {
        Sandbox { provider, settings }
    }
}

/// A stable fraction in [0, 1) from the key, so a retried message meets the same fate.
fn fate(key: &str) -> f64 {
    use sha2::{Digest, Sha256};
    let h = Sha256::digest(key.as_bytes());
    u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as f64 / (u32::MAX as f64 + 1.0)
}

impl Channel for Sandbox {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Sandbox
    }

    fn send<'a>(&'a self, message: &'a Outgoing) -> BoxFuture<'a, Result<Accepted, SendError>> {
        Box::pin(async move {
            if self.settings.latency_ms > 0 {
                tokio::time::sleep(Duration::from_millis(self.settings.latency_ms)).await;
            }
            if message.address.trim().is_empty() {
                return Err(SendError::Permanent {
                    reason: "The recipient has no address on this channel.".into(),
                });
            }
            if self.settings.busy_first > 0 {
                let mut busy = self.provider.busy.lock().expect("sandbox lock");
                let tries = busy.entry(message.idempotency_key.clone()).or_insert(0);
                if *tries < self.settings.busy_first {
                    *tries += 1;
                    return Err(SendError::Transient {
                        reason: "Sandbox: too many requests (429, simulated).".into(),
                        retry_after: Some(Duration::from_secs(1)),
                    });
                }
            }
            if fate(&message.idempotency_key) < self.settings.fail {
                return Err(SendError::Permanent {
                    reason: "Sandbox: the recipient's number does not exist (simulated).".into(),
                });
            }
            let mut seen = self.provider.seen.lock().expect("sandbox lock");
            if let Some(id) = seen.get(&message.idempotency_key) {
                return Ok(Accepted {
                    provider_message_id: id.clone(),
                    replayed: true,
                });
            }
            let id = format!("sbx-{}", &crate::server::auth::new_session_token()[..24]);
            seen.insert(message.idempotency_key.clone(), id.clone());
            *self.provider.sent.lock().expect("sandbox lock") += 1;
            Ok(Accepted {
                provider_message_id: id,
                replayed: false,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(key: &str) -> Outgoing {
        Outgoing {
            idempotency_key: key.into(),
            address: "+15550001".into(),
            body: "Hi".into(),
            attachments: Vec::new(),
        }
    }

    #[tokio::test]
    async fn a_repeated_key_is_a_replay_and_failures_follow_the_rate() {
        let provider = Arc::new(SandboxProvider::default());
        let ok = Sandbox::new(provider.clone(), Settings::default());
        let first = ok.send(&message("d-1")).await.unwrap();
        let again = ok.send(&message("d-1")).await.unwrap();
        assert!(!first.replayed && again.replayed);
        assert_eq!(first.provider_message_id, again.provider_message_id);
        assert_eq!(provider.sent(), 1);
        let half = Sandbox::new(provider.clone(), Settings::from_config(r#"{"fail":0.5}"#));
        let mut failed = 0;
        for i in 0..1000 {
            if half.send(&message(&format!("k-{i}"))).await.is_err() {
                failed += 1;
            }
        }
        assert!((400..600).contains(&failed), "{failed} of 1000 failed");
        let none = Outgoing {
            address: " ".into(),
            ..message("x")
        };
        assert!(matches!(
            ok.send(&none).await,
            Err(SendError::Permanent { .. })
        ));
    }
}
