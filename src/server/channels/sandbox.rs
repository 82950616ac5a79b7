//! The sandbox channel: a provider inside Herald, for trying it out and for tests. It accepts
//! every message to an address, remembers idempotency keys (a repeated key is a replay, not a
//! second message), and can be told to refuse a share of messages or to be slow.

use crate::model::ChannelId;
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
    /// Share of addresses refused for good ("the number does not exist"), 0.0–1.0.
    pub fail: f64,
    /// How long the provider takes to answer, in milliseconds.
    pub latency_ms: u64,
    /// The first this-many tries of each message are answered "busy, retry after 1 s" (a
    /// rate-limit answer, as real providers give).
    pub busy_first: u32,
    /// Of the messages it takes: the share reported delivered, the share of those reported
    /// read, and the share answered by the customer ("Thanks! 👍").
    pub delivered: f64,
    pub read: f64,
    pub reply: f64,
    /// Of the messages it takes, the share it reports failed afterwards (undeliverable).
    pub undelivered: f64,
    /// Reports arrive within this many milliseconds of each step before.
    pub report_delay_ms: u64,
}

/// Something the simulated provider reports about a message it took, `after` the send.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub channel_id: i64,
    pub provider_message_id: String,
    pub after: Duration,
    pub what: Reported,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Reported {
    Delivered,
    Read,
    /// Taken, then found undeliverable.
    Failed(String),
    /// The customer answered with this text.
    Reply(String),
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
    /// Where reports go (the server applies them as a provider's webhooks would); none: the
    /// provider reports nothing.
    reports: Mutex<Option<tokio::sync::mpsc::UnboundedSender<Report>>>,
    /// Idempotency key → tries answered "busy" so far.
    busy: Mutex<HashMap<String, u32>>,
}

impl SandboxProvider {
    /// Starts reporting: what the provider reports from now on arrives on the returned queue.
    pub fn report_to_queue(&self) -> tokio::sync::mpsc::UnboundedReceiver<Report> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        *self.reports.lock().expect("sandbox lock") = Some(tx);
        rx
    }

    /// Messages accepted (replays not counted).
    pub fn sent(&self) -> u64 {
        *self.sent.lock().expect("sandbox lock")
    }
}

pub struct Sandbox {
    provider: Arc<SandboxProvider>,
    settings: Settings,
    channel_id: i64,
}

impl Sandbox {
    pub fn new(provider: Arc<SandboxProvider>, settings: Settings) -> Self {
        Sandbox::for_channel(provider, settings, 0)
    }

    pub fn for_channel(
        provider: Arc<SandboxProvider>,
        settings: Settings,
        channel_id: i64,
    ) -> Self {
        Sandbox {
            provider,
            settings,
            channel_id,
        }
    }

    /// What this message's fate says the provider will report, and when.
    fn reports_for(&self, key: &str, id: &str) -> Vec<Report> {
        let s = &self.settings;
        let step = |salt: &str| {
            Duration::from_millis(
                (s.report_delay_ms as f64 * (0.2 + 0.8 * fate(&format!("{key}:{salt}:t")))) as u64,
            )
        };
        let mut out = Vec::new();
        let mut at = Duration::ZERO;
        let report = |what, after| Report {
            channel_id: self.channel_id,
            provider_message_id: id.to_string(),
            after,
            what,
        };
        if fate(&format!("{key}:undelivered")) < s.undelivered {
            at += step("undelivered");
            out.push(report(
                Reported::Failed("Sandbox: the handset is switched off (simulated).".into()),
                at,
            ));
            return out;
        }
        if fate(&format!("{key}:delivered")) < s.delivered {
            at += step("delivered");
            out.push(report(Reported::Delivered, at));
            if fate(&format!("{key}:read")) < s.read {
                at += step("read");
                out.push(report(Reported::Read, at));
            }
        }
        if fate(&format!("{key}:reply")) < s.reply {
            at += step("reply");
            out.push(report(Reported::Reply("Thanks! 👍".into()), at));
        }
        out
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
            // A dead number is dead for every message: the fate follows the address, so tests
            // and demos see the same customers refused each time.
            if fate(&format!("address:{}", message.address)) < self.settings.fail {
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
            let id = format!(
                "sbx-{}",
                &crate::server::accounts::auth::new_session_token()[..24]
            );
            seen.insert(message.idempotency_key.clone(), id.clone());
            *self.provider.sent.lock().expect("sandbox lock") += 1;
            drop(seen);
            if let Some(tx) = self.provider.reports.lock().expect("sandbox lock").as_ref() {
                for r in self.reports_for(&message.idempotency_key, &id) {
                    let _ = tx.send(r);
                }
            }
            Ok(Accepted {
                provider_message_id: id,
                replayed: false,
            })
        })
    }
}

/// Applies the provider's reports as they fall due, the way a real provider's webhooks would
/// arrive: each after its delay. A report about a send not recorded yet (the provider can be
/// quicker than the dispatcher's bookkeeping) is tried again each second for a while.
pub fn apply_reports(
    db: crate::server::db::Db,
    clock: Arc<dyn crate::server::clock::Clock>,
    mut queue: tokio::sync::mpsc::UnboundedReceiver<Report>,
) {
    tokio::spawn(async move {
        while let Some(report) = queue.recv().await {
            let (db, clock) = (db.clone(), clock.clone());
            tokio::spawn(async move {
                tokio::time::sleep(report.after).await;
                for _ in 0..60 {
                    match apply_report(&db, &report, clock.now()).await {
                        Ok(true) => return,
                        Ok(false) => tokio::time::sleep(Duration::from_secs(1)).await,
                        Err(e) => {
                            tracing::warn!(error = ?e, "applying a sandbox report failed; trying again");
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                }
            });
        }
    });
}

/// Applies one report; `false` when its message is not known yet.
pub async fn apply_report(
    db: &crate::server::db::Db,
    r: &Report,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, crate::server::db::DbError> {
    use crate::server::db::{Applied, DeliveryEvent};
    let event = match &r.what {
        Reported::Delivered => DeliveryEvent::Delivered,
        Reported::Read => DeliveryEvent::Read,
        Reported::Failed(reason) => DeliveryEvent::Failed {
            reason: reason.clone(),
        },
        Reported::Reply(text) => {
            let Some(delivery) = db
                .delivery_by_provider(r.channel_id, &r.provider_message_id)
                .await?
            else {
                return Ok(false);
            };
            db.record_inbound_reply(
                ChannelId(r.channel_id),
                delivery.customer_id,
                text,
                None,
                Some(&r.provider_message_id),
                now,
            )
            .await?;
            return Ok(true);
        }
    };
    Ok(db
        .apply_event(r.channel_id, &r.provider_message_id, &event, now)
        .await?
        != Applied::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(key: &str) -> Outgoing {
        Outgoing {
            parts: Default::default(),
            subject: String::new(),
            unsubscribe_url: None,
            template: None,
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
            let to_someone = Outgoing {
                parts: Default::default(),
                address: format!("+1555{i:07}"),
                ..message(&format!("k-{i}"))
            };
            if half.send(&to_someone).await.is_err() {
                failed += 1;
            }
        }
        assert!((400..600).contains(&failed), "{failed} of 1000 failed");
        let none = Outgoing {
            parts: Default::default(),
            address: " ".into(),
            ..message("x")
        };
        let mut queue = provider.report_to_queue();
        let reporting = Sandbox::for_channel(
            provider.clone(),
            Settings::from_config(
                r#"{"delivered":0.9,"read":0.5,"reply":0.2,"report_delay_ms":1000}"#,
            ),
            7,
        );
        let (mut delivered, mut read, mut replies) = (0, 0, 0);
        for i in 0..1000 {
            reporting.send(&message(&format!("r-{i}"))).await.unwrap();
            let mut last = Duration::ZERO;
            while let Ok(r) = queue.try_recv() {
                assert_eq!(r.channel_id, 7);
                assert!(r.after >= last && r.after <= Duration::from_millis(3000));
                last = r.after;
                match r.what {
                    Reported::Delivered => delivered += 1,
                    Reported::Read => read += 1,
                    Reported::Reply(_) => replies += 1,
                    Reported::Failed(_) => {}
                }
            }
        }
        assert!((850..950).contains(&delivered), "{delivered}");
        assert!((350..550).contains(&read), "{read}");
        assert!((150..250).contains(&replies), "{replies}");
        // A replay reports nothing new.
        reporting.send(&message("r-1")).await.unwrap();
        assert!(queue.try_recv().is_err());
        assert!(matches!(
            ok.send(&none).await,
            Err(SendError::Permanent { .. })
        ));
    }
}
