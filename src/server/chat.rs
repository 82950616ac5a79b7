//! The chat with one customer: the conversation across channels (stored messages and the
//! broadcasts that reached them), replies through the same channel adapters the dispatcher
//! uses, "assign to me", unread marking, and following new messages as they arrive.

use crate::model::{ChannelId, CustomerId};

use chrono::{DateTime, Utc};

use crate::model::AppError;
use crate::model::CurrentUser;
use crate::model::channel::ChannelKind;
use crate::model::chat::{ChatMessage, ChatView};
use crate::model::delivery::DeliveryState;
use crate::model::results::state_label;
use crate::server::AppState;
use crate::server::channels::{SendError, adapter, send};
use crate::server::chat_hub::LIVE_BATCH;
use crate::server::db::{ChatRecord, Db, Outbound};
use crate::server::timefmt;
use futures::StreamExt;

/// Longest reply accepted (the longest the providers take in one message is 4,096).
pub const MAX_REPLY: usize = 4096;

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

/// Messages the chat page shows at once; earlier ones are a link away.
pub const CHAT_PAGE: i64 = 100;

/// The chat page's data for `viewer`: the newest [`CHAT_PAGE`] messages (before message
/// `before`, if given). Opening it marks the chat seen when `mark_seen` (a navigation from
/// Herald's own pages, not a link on another site).
pub async fn view(
    state: &AppState,
    viewer: &CurrentUser,
    id: i64,
    before: Option<i64>,
    mark_seen: bool,
) -> Result<ChatView, AppError> {
    let db = &state.db;
    let (customer, _, _) = db.customer_for_edit(id).await?;
    let tz = timefmt::zone(&viewer.time_zone);
    let seen = if mark_seen {
        db.chat_seen(id, state.clock.now()).await?
    } else {
        Some(state.clock.now())
    };
    let mut records = db.chat_messages(id, 0, before, CHAT_PAGE + 1).await?;
    let earlier = (records.len() as i64 > CHAT_PAGE).then(|| {
        records.remove(0);
        records.first().map_or(0, |r| r.id)
    });
    let last_message_id = records.last().map(|r| r.id).unwrap_or(0);
    // The broadcasts that reached them, within the page's stretch of time.
    let from = earlier.and(records.first().map(|r| r.created_at));
    let until = before.and(records.last().map(|r| r.created_at));
    let mut timed: Vec<(DateTime<Utc>, ChatMessage)> = records
        .into_iter()
        .map(|r| (r.created_at, message(r, tz, seen)))
        .collect();
    let name = customer.name.clone();
    for d in db.customer_deliveries(id).await? {
        if from.is_some_and(|f| d.at < f) || until.is_some_and(|u| d.at > u) {
            continue;
        }
        timed.push((d.at, delivery_line(d, &name, tz)));
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
        earlier,
        before,
    })
}

/// A broadcast message that reached the customer, as a line of the conversation.
fn delivery_line(
    d: crate::server::db::DeliveryRecord,
    name: &str,
    tz: chrono_tz::Tz,
) -> ChatMessage {
    let status = match (d.state, &d.error) {
        (DeliveryState::Failed, Some(e)) => format!("Failed: {e}"),
        (s, _) => state_label(s).to_string(),
    };
    ChatMessage {
        key: format!("d{}", d.id),
        message_id: 0,
        inbound: false,
        body: crate::model::personalize::render(&d.body, name),
        channel: d.channel,
        at: timefmt::local(d.at, tz),
        broadcast: Some((d.broadcast_id, d.broadcast)),
        staff: None,
        status: Some(status),
        unread: false,
    }
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
        &state.files,
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

/// The messages of `customer`'s conversation stored after message `after` (at most the newest
/// [`LIVE_BATCH`] of those already there), in batches as they arrive (the first at once,
/// possibly empty), in `viewer`'s time zone. The conversation's one poller ([`ChatHub`]) wakes
/// on the database's chat events (LISTEN/NOTIFY on PostgreSQL), so a message taken in by
/// another instance arrives at once too. Reading them marks the conversation seen.
pub async fn follow(
    state: &AppState,
    viewer: &CurrentUser,
    customer: i64,
    after: i64,
) -> impl futures::Stream<Item = Vec<ChatMessage>> + use<> {
    let tz = timefmt::zone(&viewer.time_zone);
    let db: Db = state.db.clone();
    let batches = state
        .chat
        .subscribe(&db, state.clock.clone(), customer)
        .await;
    let first: Vec<ChatRecord> = match db
        .chat_messages(customer, after.max(0), None, LIVE_BATCH)
        .await
    {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = ?e, "chat events: reading messages failed");
            Vec::new()
        }
    };
    if !first.is_empty() {
        let _ = db.chat_seen(customer, state.clock.now()).await;
    }
    let last = first.last().map_or(after.max(0), |r| r.id);
    let opening = futures::stream::once(async move { (first, last) });
    let live = futures::stream::unfold((batches, last), move |(mut batches, last)| {
        let db = db.clone();
        async move {
            use tokio::sync::broadcast::error::RecvError;
            let rows: Vec<ChatRecord> = match batches.recv().await {
                Ok(batch) => batch.iter().filter(|r| r.id > last).cloned().collect(),
                // Fell behind the poller: read what came since, once.
                Err(RecvError::Lagged(_)) => db
                    .chat_messages(customer, last, None, LIVE_BATCH)
                    .await
                    .unwrap_or_default(),
                Err(RecvError::Closed) => return None,
            };
            let now_last = rows.last().map_or(last, |r| r.id);
            Some(((rows, now_last), (batches, now_last)))
        }
    });
    opening
        .chain(live)
        .map(move |(rows, _)| rows.into_iter().map(|r| message(r, tz, None)).collect())
}
