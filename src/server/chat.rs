//! The chat with one customer: the conversation across channels (stored messages and the
//! broadcasts that reached them), replies through the same channel adapters the dispatcher
//! uses, "assign to me", unread marking, and following new messages as they arrive.

use crate::model::{ChannelId, CustomerId};
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::model::AppError;
use crate::model::CurrentUser;
use crate::model::channel::ChannelKind;
use crate::model::chat::{ChatMessage, ChatView};
use crate::model::delivery::DeliveryState;
use crate::model::results::state_label;
use crate::server::AppState;
use crate::server::channels::{SendError, adapter, send};
use crate::server::db::{ChatRecord, Db, DbError, Outbound};
use crate::server::timefmt;

/// Longest reply accepted (the longest the providers take in one message is 4,096).
pub const MAX_REPLY: usize = 4096;

/// How often the event stream looks for new messages unasked (announcements can be lost when
/// a PostgreSQL connection drops); otherwise it looks when a message is announced.
const LOOK_ANYWAY: Duration = Duration::from_secs(5);

fn message(r: ChatRecord, tz: chrono_tz::Tz, seen: Option<DateTime<Utc>>) -> ChatMessage {
    let inbound = r.direction == "in";
    ChatMessage {
        key: format!("m{}", r.id),
        message_id: r.id,
        inbound,
        unread: inbound && seen.is_none_or(|s| r.created_at > s),
        body: r.body,
        channel: r.channel.unwrap_or_default(),
        at: timefmt::local(r.created_at, tz),
        broadcast: r.broadcast_id.zip(r.broadcast),
        staff: r.staff,
        status: None,
    }
}

/// The chat page's data for `viewer`; opening it marks the chat seen.
pub async fn view(state: &AppState, viewer: &CurrentUser, id: i64) -> Result<ChatView, AppError> {
    let db = &state.db;
    let (customer, _, _) = db.customer_for_edit(id).await?;
    let tz = timefmt::zone(&viewer.time_zone);
    let seen = db.chat_seen(id, state.clock.now()).await?;
    let records = db.chat_messages(id, 0).await?;
    let last_message_id = records.last().map(|r| r.id).unwrap_or(0);
    let mut timed: Vec<(DateTime<Utc>, ChatMessage)> = records
        .into_iter()
        .map(|r| (r.created_at, message(r, tz, seen)))
        .collect();
    let name = customer.name.clone();
    for d in db.customer_deliveries(id).await? {
        let status = match (d.state, &d.error) {
            (DeliveryState::Failed, Some(e)) => format!("Failed: {e}"),
            (s, _) => state_label(s).to_string(),
        };
        timed.push((
            d.at,
            ChatMessage {
                key: format!("d{}", d.id),
                message_id: 0,
                inbound: false,
                body: crate::model::personalize::render(&d.body, &name),
                channel: d.channel,
                at: timefmt::local(d.at, tz),
                broadcast: Some((d.broadcast_id, d.broadcast)),
                staff: None,
                status: Some(status),
                unread: false,
            },
        ));
    }
    timed.sort_by_key(|a| a.0);
    let reply_channel = match db.reply_channel(id).await? {
        Some(c) => match db.channel(c).await? {
            Some(c) if c.enabled => Ok(c.name),
            Some(c) => Err(format!(
                "Their channel “{}” is disabled; enable it on the Channels page to reply.",
                c.name
            )),
            None => Err("Their channel no longer exists.".into()),
        },
        None => Err("They have not written and no broadcast reached them yet.".into()),
    };
    Ok(ChatView {
        customer_id: id,
        assigned_to_me: customer.assignee_id == Some(viewer.id.0),
        assignee: customer.assignee,
        name,
        messages: timed.into_iter().map(|(_, m)| m).collect(),
        reply_channel,
        can_reply: viewer.role.can_edit(),
        last_message_id,
    })
}

/// A reply's text, trimmed, or why it cannot be sent.
fn checked_reply(body: &str) -> Result<&str, AppError> {
    let body = body.trim();
    if body.is_empty() {
        return Err(AppError::BadRequest("Write a message first.".into()).with_status());
    }
    if body.chars().count() > MAX_REPLY {
        return Err(AppError::BadRequest(format!(
            "A reply can be at most {MAX_REPLY} characters."
        ))
        .with_status());
    }
    Ok(body)
}

/// Who a reply goes to and on which channel (the one they last used): the customer, the
/// channel's id, kind, name and settings; or why there is none.
async fn reply_target(
    state: &AppState,
    id: i64,
) -> Result<
    (
        crate::server::db::Recipient,
        i64,
        ChannelKind,
        String,
        String,
    ),
    AppError,
> {
    let db = &state.db;
    let conflict = |m: String| AppError::Conflict(m).with_status();
    let Some(person) = db.recipient(id).await? else {
        return Err(AppError::NotFound("No such customer.".into()).with_status());
    };
    let Some(channel_id) = db.reply_channel(id).await? else {
        return Err(conflict(
            "They have not written and no broadcast reached them yet.".into(),
        ));
    };
    let Some(crate::server::db::ChannelRecord {
        kind,
        name,
        config,
        enabled,
        ..
    }) = db.channel(channel_id).await?
    else {
        return Err(conflict("Their channel no longer exists.".into()));
    };
    let kind = ChannelKind::parse(&kind).unwrap_or(ChannelKind::Sandbox);
    if !enabled {
        return Err(conflict(format!("The channel “{name}” is disabled.")));
    }
    Ok((person, channel_id, kind, name, config))
}

/// Sends `body` to the customer on the channel they last used, through its adapter, and
/// stores it in the conversation. The refusal says why in words staff can act on.
pub async fn reply(
    state: &AppState,
    user: &CurrentUser,
    id: i64,
    body: &str,
) -> Result<ChatMessage, AppError> {
    let body = checked_reply(body)?;
    let db = &state.db;
    let conflict = |m: String| AppError::Conflict(m).with_status();
    let (person, channel_id, kind, name, config) = reply_target(state, id).await?;
    let address = send::address(&person, kind).map_err(|why| {
        conflict(match why {
            send::Unreachable::OptedOut => {
                format!("{} opted out of messages on {name}.", person.name)
            }
            send::Unreachable::NoAddress => format!("{} has no address on {name}.", person.name),
        })
    })?;
    let sender = adapter(
        channel_id,
        kind,
        &config,
        &state.sandbox,
        &crate::server::broadcast::attachments::folder(state),
        state.config.allow_private_endpoints,
        &state.links.public_url,
    )
    .map_err(conflict)?;
    let subject = format!("Re: your message to {}", user.name);
    let outgoing = send::outgoing(
        send::Message {
            idempotency_key: format!(
                "herald-reply-{}",
                &crate::server::accounts::auth::new_session_token()[..24]
            ),
            body: body.to_string(),
            attachments: &[],
            subject: &subject,
            // A live reply answers someone who wrote: free text inside their window.
            template: None,
        },
        &person,
        kind,
        address,
        &state.links,
    );
    let sent = send::send(db, sender.as_ref(), person.id, &outgoing, state.clock.now()).await;
    let accepted = sent.map_err(|e| {
        conflict(match e {
            SendError::Transient { reason, .. } | SendError::Throttled { reason, .. } => {
                format!("{name} could not take it just now ({reason}); try again in a moment.")
            }
            SendError::MaybeSent { reason } => format!(
                "{name} did not confirm it ({reason}) Look whether {} got it before sending it again.",
                person.name
            ),
            SendError::Permanent { reason }
            | SendError::Undeliverable { reason }
            | SendError::NotNow { reason, .. }
            | SendError::Systemic { reason } => format!("{name} refused it: {reason}"),
            SendError::Unreachable { reason } | SendError::OptedOut { reason } => format!(
                "{} cannot be reached on {name} any more: {reason}",
                person.name
            ),
        })
    })?;
    let now = state.clock.now();
    let message_id = db
        .record_outbound(
            CustomerId(id),
            ChannelId(channel_id),
            body,
            &accepted.provider_message_id,
            user.id,
            Outbound::Reply,
            now,
        )
        .await?;
    Ok(ChatMessage {
        key: format!("m{message_id}"),
        message_id,
        inbound: false,
        body: body.to_string(),
        channel: name,
        at: timefmt::local(now, timefmt::zone(&user.time_zone)),
        broadcast: None,
        staff: Some(user.name.clone()),
        status: None,
        unread: false,
    })
}

/// Returns when `customer`'s conversation gained a message (by any instance), or after
/// [`LOOK_ANYWAY`] in case an announcement was lost.
async fn wait_for_customer(wake: &mut tokio::sync::broadcast::Receiver<i64>, customer: i64) {
    use tokio::sync::broadcast::error::RecvError;
    let _ = tokio::time::timeout(LOOK_ANYWAY, async {
        loop {
            match wake.recv().await {
                Ok(c) if c == customer => return,
                Ok(_) => {}
                // Missed some: one of them may be ours.
                Err(RecvError::Lagged(_)) => return,
                Err(RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    })
    .await;
}

/// The messages of `customer`'s conversation stored after message `after`, in batches as they
/// arrive (the first batch at once, possibly empty), in `viewer`'s time zone. It wakes on the
/// database's chat events (LISTEN/NOTIFY on PostgreSQL), so a message taken in by another
/// instance arrives at once too. Reading them marks the conversation seen: the page is open.
pub async fn follow(
    state: &AppState,
    viewer: &CurrentUser,
    customer: i64,
    after: i64,
) -> impl futures::Stream<Item = Vec<ChatMessage>> + use<> {
    let tz = timefmt::zone(&viewer.time_zone);
    let db: Db = state.db.clone();
    let clock = state.clock.clone();
    // Subscribed before the first read, so a message stored in between still wakes it.
    let wake = db.chat_events().await;
    futures::stream::unfold(
        (db, after.max(0), true, wake),
        move |(db, after, first, mut wake)| {
            let clock = clock.clone();
            async move {
                if !first {
                    wait_for_customer(&mut wake, customer).await;
                }
                let batch: Result<Vec<ChatRecord>, DbError> =
                    db.chat_messages(customer, after).await;
                let (messages, last) = match batch {
                    Ok(rows) if !rows.is_empty() => {
                        let last = rows.last().map(|r| r.id).unwrap_or(after);
                        let _ = db.chat_seen(customer, clock.now()).await;
                        let messages = rows.into_iter().map(|r| message(r, tz, None)).collect();
                        (messages, last)
                    }
                    Ok(_) => (Vec::new(), after),
                    Err(e) => {
                        tracing::warn!(error = ?e, "chat events: reading messages failed");
                        (Vec::new(), after)
                    }
                };
                Some((messages, (db, last, false, wake)))
            }
        },
    )
}
