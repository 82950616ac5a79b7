//! One claimed delivery, from the batch's reads to its provider's answer: the message for this
//! customer on this channel, the gates before the request (pause, stop, rate, memory, the
//! claim), and the request itself.

use std::collections::HashMap;
use std::sync::Arc;

use super::lease::Lease;
use super::{ChannelInfo, Dispatcher, delivery_key};
use crate::model::{BroadcastId, ChannelId, CustomerId};
use crate::server::channels::{Channel, Outgoing, SendError, send};
use crate::server::db::{Claimed, Content, DbError, Outcome, Recipient};

/// A delivery ready to go: its channel, the adapter, the message and the customer.
struct Ready {
    channel: Arc<ChannelInfo>,
    sender: Arc<dyn Channel>,
    message: Outgoing,
    customer: i64,
}

impl Dispatcher {
    /// The sends of a batch, each ready to run: the message, the customer and the channel
    /// read once for the whole batch.
    pub(super) async fn prepare(
        &self,
        claimed: Vec<Claimed>,
        lease: Arc<Lease>,
    ) -> Result<Vec<impl std::future::Future<Output = (Claimed, Outcome)> + '_>, DbError> {
        // What the batch needs, read once: each broadcast's message and each customer.
        let mut content: HashMap<(BroadcastId, i64), Arc<Content>> = HashMap::new();
        for c in &claimed {
            let key = (c.broadcast_id, c.variant);
            if let std::collections::hash_map::Entry::Vacant(e) = content.entry(key) {
                let message = self.db.broadcast_content(key.0.0, key.1).await?;
                e.insert(Arc::new(message));
            }
        }
        let ids: Vec<i64> = claimed.iter().map(|c| c.customer_id.0).collect();
        let people: HashMap<CustomerId, Recipient> = self
            .db
            .recipients(&ids)
            .await?
            .into_iter()
            .map(|r| (CustomerId(r.id), r))
            .collect();
        let mut channels: HashMap<ChannelId, Option<Arc<ChannelInfo>>> = HashMap::new();
        for c in &claimed {
            if let std::collections::hash_map::Entry::Vacant(e) = channels.entry(c.channel_id) {
                e.insert(self.channel(c.channel_id).await?);
            }
        }
        // Template broadcasts that send their own text to customers inside WhatsApp's 24-hour
        // window: who of the batch wrote to each channel's number within 24 hours.
        let mut asking: HashMap<ChannelId, Vec<i64>> = HashMap::new();
        for c in &claimed {
            let free = content
                .get(&(c.broadcast_id, c.variant))
                .is_some_and(|b| b.template.as_ref().is_some_and(|t| t.free_text_in_window));
            if free {
                asking
                    .entry(c.channel_id)
                    .or_default()
                    .push(c.customer_id.0);
            }
        }
        let since = self.clock.now() - chrono::Duration::hours(24);
        let mut in_window: std::collections::HashSet<(ChannelId, i64)> = Default::default();
        for (channel, customers) in asking {
            for id in self.db.wrote_since(channel.0, &customers, since).await? {
                in_window.insert((channel, id));
            }
        }
        Ok(claimed
            .into_iter()
            .map(|c| {
                let body = content.get(&(c.broadcast_id, c.variant)).cloned();
                let person = people.get(&c.customer_id).cloned();
                let channel = channels.get(&c.channel_id).cloned().flatten();
                let lease = lease.clone();
                let wrote = in_window.contains(&(c.channel_id, c.customer_id.0));
                async move {
                    let mut c = c;
                    let (outcome, parts) = self
                        .send_one(&c, body, person, channel, &lease, wrote)
                        .await;
                    if parts.is_some() {
                        c.parts_sent = parts;
                    }
                    (c, outcome)
                }
            })
            .collect())
    }

    /// Claimed delivery `c` ready to go; the outcome instead when it cannot go at all.
    fn message_for(
        &self,
        c: &Claimed,
        content: Option<Arc<Content>>,
        person: Option<Recipient>,
        channel: Option<Arc<ChannelInfo>>,
        in_window: bool,
    ) -> Result<Ready, Outcome> {
        let (Some(content), Some(person), Some(channel)) = (content, person, channel) else {
            return Err(Outcome::Failed {
                reason: "The customer or the channel no longer exists.".into(),
            });
        };
        let address = send::address(&person, channel.kind).map_err(|why| Outcome::Failed {
            reason: match why {
                send::Unreachable::OptedOut => {
                    "The customer opted out before the message was sent."
                }
                send::Unreachable::NoAddress => {
                    "The customer no longer has an address on this channel."
                }
            }
            .into(),
        })?;
        let sender = channel
            .sender
            .clone()
            .map_err(|reason| Outcome::Failed { reason })?;
        let mut message = send::outgoing(
            send::Message {
                idempotency_key: delivery_key(c.id, c.retry_round),
                body: crate::model::personalize::render(&content.body, &person.name),
                attachments: &content.attachments,
                subject: &content.name,
                // Inside the 24-hour window, where the broadcast asks for it, its own text.
                template: send::template_for(
                    content
                        .template
                        .as_ref()
                        .filter(|t| !(t.free_text_in_window && in_window)),
                    &person,
                    &content.attachments,
                ),
            },
            &person,
            channel.kind,
            address,
            &self.settings.links,
        );
        // The parts an earlier attempt got accepted are not sent again.
        message.parts.done = c
            .parts_sent
            .as_deref()
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or_default();
        Ok(Ready {
            channel,
            sender,
            message,
            customer: person.id,
        })
    }

    /// Whether a request of `c` may start now: not paused or stopping, and its claim not
    /// lost or nearly over (another worker may soon take it; it is released if still ours).
    fn may_go(&self, c: &Claimed, lease: &Lease) -> bool {
        !self.is_halted(c.broadcast_id)
            && !self.is_stopped()
            && lease.may_start(c.id, self.clock.now(), self.settings.lease)
    }

    /// Sends claimed delivery `c`: its outcome, and every part of it accepted so far (as
    /// JSON, to be recorded with the outcome; none for a message in one part).
    #[tracing::instrument(
        name = "send_one",
        level = "debug",
        skip_all,
        fields(delivery = c.id, broadcast = c.broadcast_id.0, channel = c.channel_id.0)
    )]
    pub(super) async fn send_one(
        &self,
        c: &Claimed,
        content: Option<Arc<Content>>,
        person: Option<Recipient>,
        channel: Option<Arc<ChannelInfo>>,
        lease: &Lease,
        in_window: bool,
    ) -> (Outcome, Option<String>) {
        if self.is_halted(c.broadcast_id) {
            return (Outcome::Released, None);
        }
        let Ready {
            channel,
            sender,
            mut message,
            customer,
        } = match self.message_for(c, content, person, channel, in_window) {
            Ok(m) => m,
            Err(outcome) => return (outcome, None),
        };
        // One rate token per provider request the message still takes.
        let requests = sender.requests(&message).max(1);
        for _ in 0..requests {
            if !self.send_token(c, &channel).await || !self.may_go(c, lease) {
                return (Outcome::Released, None);
            }
        }
        // Memory for its files first (an email's wait for the attachment budget can be long):
        // the start is written after it, so that a crash leaves the delivery uncertain only
        // for the request itself. Written down before the request: should this process die
        // before the outcome is recorded, the delivery is uncertain, not pending.
        let held = crate::server::channels::reserve(sender.as_ref(), &message).await;
        if !self.may_go(c, lease) || !self.note_start(c).await {
            return (Outcome::Released, None);
        }
        if requests > 1 {
            message.parts.notify = Some(self.note_parts(c, &message, requests - 1));
        }
        let now = self.clock.now();
        let result =
            send::send_reserved(&self.db, sender.as_ref(), customer, &message, &held, now).await;
        self.after_answer(c, &channel, &result).await;
        let parts = message.parts.all();
        let parts = (!parts.is_empty()).then(|| serde_json::to_string(&parts).unwrap_or_default());
        (self.outcome(c, channel.kind, result), parts)
    }

    /// Writes down the first `first` parts of `c`'s message still to go as the adapter has
    /// each accepted (with those an earlier attempt had), so that after a crash a retry sends
    /// only the rest. The last part needs no note of its own: the outcome records it.
    fn note_parts(
        &self,
        c: &Claimed,
        message: &Outgoing,
        first: u32,
    ) -> tokio::sync::mpsc::UnboundedSender<(usize, String)> {
        let (tell, mut told) = tokio::sync::mpsc::unbounded_channel::<(usize, String)>();
        let (db, claim, mut all) = (
            self.db.clone(),
            (c.id, c.attempts),
            message.parts.done.clone(),
        );
        tokio::spawn(async move {
            for _ in 0..first {
                let Some(part) = told.recv().await else {
                    return;
                };
                all.push(part);
                let json = serde_json::to_string(&all).unwrap_or_default();
                if let Err(e) = db.note_parts(claim, &json).await {
                    tracing::warn!(error = ?e, delivery = claim.0, "noting a part of a message failed");
                }
            }
        });
        tell
    }

    /// What an answer means beyond its delivery: a throttle holds the channel, a systemic
    /// refusal or the circuit breaker pauses the broadcast.
    async fn after_answer(
        &self,
        c: &Claimed,
        channel: &ChannelInfo,
        result: &Result<crate::server::channels::Accepted, SendError>,
    ) {
        if let Err(SendError::Throttled { retry_after, .. }) = result {
            self.hold_channel(c.channel_id, channel, *retry_after).await;
        }
        if let Err(SendError::Systemic { reason }) = result {
            self.pause_for(c.broadcast_id, reason.clone()).await;
        } else if let Some(why) = self.trip(c, channel.kind, result) {
            self.pause_for(c.broadcast_id, why).await;
        }
    }
}
