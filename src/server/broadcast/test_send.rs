//! A test send: the composed message, personalised, to one customer the sender names, on the
//! first picked channel that reaches them; it is stored in that customer's conversation.

use crate::model::CurrentUser;
use crate::model::audience::AudienceRule;
use crate::model::channel::ChannelKind;
use crate::model::compose::Compose;
use crate::model::{ChannelId, CustomerId};
use crate::server::AppState;

/// Who a test send goes to.
pub enum Who {
    /// The customer whose email is the signed-in person's.
    Me,
    /// A customer's exact name, phone or email, as typed.
    Typed(String),
}

/// Sends the composed message, personalised, to one customer on the first picked channel
/// that reaches them, through that channel's adapter; stores it in the customer's
/// conversation. Returns what to tell the person, or why it was not sent.
pub async fn test_send(
    state: &AppState,
    user: &CurrentUser,
    broadcast: Option<i64>,
    compose: &Compose,
    who: Who,
) -> Result<String, String> {
    use crate::server::channels::{SendError, adapter, send};
    let db = &state.db;
    if compose.body.trim().is_empty() && compose.attachments.is_empty() {
        return Err("Write the message or attach a file before sending a test.".into());
    }
    if let Some(p) = crate::model::personalize::problem(&compose.body) {
        return Err(p);
    }
    let id = customer(state, user, &who).await?;
    let Some(recipient) = db.recipient(id).await.map_err(unavailable)? else {
        return Err("That customer no longer exists.".into());
    };
    let (channel_id, channel_name, kind) = channel(state, compose, &recipient).await?;
    let Some((_, config)) = db
        .channel_kind_and_config(channel_id)
        .await
        .map_err(unavailable)?
    else {
        return Err("That channel no longer exists.".into());
    };
    let Ok(address) = send::address(&recipient, kind) else {
        return Err(format!(
            "{} cannot be reached on {channel_name} (no address there, or opted out).",
            recipient.name
        ));
    };
    let body = crate::model::personalize::render(&compose.body, &recipient.name);
    // As the dispatcher does: inside the 24-hour window, where the broadcast asks for it, the
    // customer gets its own text instead of the template.
    let in_window = compose
        .template
        .as_ref()
        .is_some_and(|t| t.free_text_in_window)
        && db
            .wrote_since(
                channel_id,
                &[recipient.id],
                state.clock.now() - chrono::Duration::hours(24),
            )
            .await
            .map_err(unavailable)?
            .contains(&recipient.id);
    let message = test_message(
        state, broadcast, compose, &recipient, kind, &address, &body, in_window,
    );
    let channel = adapter(
        channel_id,
        kind,
        &config,
        &state.sandbox,
        &state.files,
        state.config.allow_private_endpoints,
        &state.links.public_url,
    )?;
    match send::send(
        db,
        channel.as_ref(),
        recipient.id,
        &message,
        state.clock.now(),
    )
    .await
    {
        Ok(accepted) => {
            db.record_outbound(
                CustomerId(recipient.id),
                ChannelId(channel_id),
                &body,
                &accepted.provider_message_id,
                user.id,
                crate::server::db::Outbound::Test(broadcast),
                state.clock.now(),
            )
            .await
            .map_err(unavailable)?;
            Ok(format!(
                "Test sent to {} ({address}) on {channel_name}.",
                recipient.name
            ))
        }
        Err(SendError::Transient { reason, .. } | SendError::Throttled { reason, .. }) => {
            Err(format!(
                "{channel_name} could not take the test just now ({reason}); try again in a moment."
            ))
        }
        Err(SendError::MaybeSent { reason }) => Err(format!(
            "{channel_name} did not confirm the test ({reason}) Look whether {} got it before sending it again.",
            recipient.name
        )),
        Err(
            SendError::Permanent { reason }
            | SendError::Undeliverable { reason }
            | SendError::NotNow { reason, .. }
            | SendError::Systemic { reason },
        ) => Err(format!("{channel_name} refused the test: {reason}")),
        Err(SendError::Unreachable { reason } | SendError::OptedOut { reason }) => Err(format!(
            "{} cannot be reached on {channel_name} any more: {reason}",
            recipient.name
        )),
    }
}

/// The one customer `who` names.
async fn customer(state: &AppState, user: &CurrentUser, who: &Who) -> Result<i64, String> {
    let db = &state.db;
    let ids = match who {
        Who::Me => db.find_customers(&user.email, 2).await,
        Who::Typed(t) => db.find_customers(t, 2).await,
    }
    .map_err(unavailable)?;
    let id = match (ids.as_slice(), who) {
        ([one], _) => *one,
        ([], Who::Me) => {
            return Err(format!(
                "No customer has your email ({}). Add yourself on the Customers page, or send the test to a customer you choose.",
                user.email
            ));
        }
        ([], Who::Typed(t)) if t.trim().is_empty() => {
            return Err(
                "Enter the name, phone or email of the customer to send the test to.".into(),
            );
        }
        ([], Who::Typed(t)) => {
            return Err(format!(
                "No customer is called or has the phone or email “{}”. Enter it exactly as on the Customers page.",
                t.trim()
            ));
        }
        (_, _) => {
            return Err(
                "Several customers have that name; enter their phone or email instead.".into(),
            );
        }
    };
    Ok(id)
}

/// The first picked channel that reaches `recipient`: (id, name, kind).
async fn channel(
    state: &AppState,
    compose: &Compose,
    recipient: &crate::server::db::Recipient,
) -> Result<(i64, String, ChannelKind), String> {
    let db = &state.db;
    let channels = db.enabled_channels().await.map_err(unavailable)?;
    let picked: Vec<(i64, String, ChannelKind)> = compose
        .channel_ids
        .iter()
        .filter_map(|cid| {
            channels
                .iter()
                .find(|c| c.id == *cid)
                .map(|c| (c.id, c.name.clone(), c.kind))
        })
        .collect();
    if picked.is_empty() {
        return Err("Pick a channel first: the test goes out the way the broadcast will.".into());
    }
    let kinds: Vec<ChannelKind> = picked.iter().map(|(_, _, k)| *k).collect();
    let everyone = AudienceRule::default();
    let Some(kind) = everyone.reaches(&recipient.facts(), &kinds) else {
        return Err(format!(
            "{} cannot be reached on the picked channels (no address there, or opted out).",
            recipient.name
        ));
    };
    picked
        .into_iter()
        .find(|(_, _, k)| *k == kind)
        .ok_or_else(|| "The channel reaching them is not a picked one.".to_string())
}

/// The test message for `recipient`, with a key of its own (a test is never a replay): the
/// template, unless `in_window`.
#[allow(clippy::too_many_arguments)]
fn test_message(
    state: &AppState,
    broadcast: Option<i64>,
    compose: &Compose,
    recipient: &crate::server::db::Recipient,
    kind: ChannelKind,
    address: &str,
    body: &str,
    in_window: bool,
) -> crate::server::channels::Outgoing {
    use crate::server::channels::send;
    send::outgoing(
        send::Message {
            idempotency_key: format!(
                "test-{}-{}",
                broadcast.unwrap_or(0),
                &crate::server::accounts::auth::new_session_token()[..16]
            ),
            body: body.to_string(),
            attachments: &compose.attachments,
            subject: &compose.name,
            template: send::template_for(
                compose.template.as_ref().filter(|_| !in_window),
                recipient,
                &compose.attachments,
            ),
        },
        recipient,
        kind,
        address.to_string(),
        &state.links,
    )
}

/// What to say when the database fails during a test send (the cause is logged).
fn unavailable(e: crate::server::db::DbError) -> String {
    tracing::error!(error = ?e, "test send lookup failed");
    "The test could not be sent; please try again.".to_string()
}
