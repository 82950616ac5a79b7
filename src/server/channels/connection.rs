//! What each provider needs in order to report back to Herald, set up from the channels page
//! alone, and what the page says of it: Telegram's webhook registered with `setWebhook` (and
//! its state from `getWebhookInfo`), WhatsApp's verify-token handshake done or not, and the
//! SMS status callback Herald names on every message.

use crate::model::channel::{ChannelKind, ChannelView};
use crate::server::AppState;

use super::{endpoint, telegram};

/// Where providers reach this Herald: `public-url`, else the address it serves.
fn public_url(state: &AppState) -> String {
    state
        .config
        .public_url
        .clone()
        .unwrap_or_else(|| state.links.public_url.clone())
        .trim_end_matches('/')
        .to_string()
}

/// Channel `id`'s Telegram adapter, from its stored settings.
async fn telegram_of(state: &AppState, id: i64) -> Result<telegram::Telegram, String> {
    let Ok(Some((ChannelKind::Telegram, config))) = state.db.channel_kind_and_config(id).await
    else {
        return Err("The channel could not be read.".into());
    };
    let settings: telegram::Settings = serde_json::from_str(&config).unwrap_or_default();
    endpoint::check_url(&settings.base_url, state.config.allow_private_endpoints)?;
    Ok(telegram::Telegram::new(
        settings,
        endpoint::client(state.config.allow_private_endpoints),
        // Checking a connection reads no file.
        crate::server::files::Files::local(std::path::Path::new("data")),
    ))
}

/// After a channel is connected or saved: what was set up at the provider, as the end of the
/// notice. A Telegram channel registers Herald's webhook (with its secret), which Telegram
/// takes only at an https address.
pub async fn after_save(state: &AppState, kind: ChannelKind, id: i64) -> String {
    if kind != ChannelKind::Telegram {
        return String::new();
    }
    let base = public_url(state);
    if !base.starts_with("https://") {
        return format!(
            " Telegram sends replies only to an https address, and Herald's public address is {base}: set public-url (HERALD_PUBLIC_URL) to Herald's https address and save the channel again. Until then replies on Telegram do not reach Herald."
        );
    }
    let url = format!("{base}/webhooks/telegram/{id}");
    match telegram_of(state, id).await {
        Ok(bot) => match bot.set_webhook(&url).await {
            Ok(()) => format!(" Telegram now sends replies to {url}."),
            Err(e) => format!(" Telegram did not take the webhook {url}: {e}"),
        },
        Err(e) => format!(" The webhook was not registered: {e}"),
    }
}

/// What the channels page says of channel `c`'s connection back to Herald, if anything.
pub async fn status(state: &AppState, c: &ChannelView) -> Option<String> {
    let url = c.webhook_url.clone().unwrap_or_default();
    match c.kind {
        ChannelKind::Telegram => Some(telegram_status(state, c.id, &url).await),
        ChannelKind::Whatsapp => Some(match state.db.webhook_verified_at(c.id).await {
            Ok(Some(at)) => format!(
                "Meta verified the webhook {url} on {}.",
                at.format("%d %b %Y, %H:%M UTC")
            ),
            _ => format!(
                "Not verified by Meta yet: in Meta's App Dashboard (WhatsApp → Configuration) set the Callback URL to {url} and the Verify token to this channel's, and subscribe to messages and message_template_status_update."
            ),
        }),
        ChannelKind::Sms => Some(format!(
            "Every message names its status callback, {url}, so Twilio reports each one; nothing to set for reports. For replies, set the number's \"A message comes in\" webhook to {url}."
        )),
        _ => None,
    }
}

/// Telegram's `getWebhookInfo`, in words.
async fn telegram_status(state: &AppState, id: i64, url: &str) -> String {
    let info = match telegram_of(state, id).await {
        Ok(bot) => bot.webhook_info().await,
        Err(e) => Err(e),
    };
    let info = match info {
        Ok(info) => info,
        Err(e) => return format!("Telegram could not be asked about the webhook: {e}"),
    };
    let registered = info["url"].as_str().unwrap_or_default();
    let waiting = info["pending_update_count"].as_i64().unwrap_or(0);
    let error = info["last_error_message"]
        .as_str()
        .map(|e| format!(" Its last error: {}", super::summary(e)))
        .unwrap_or_default();
    if registered.is_empty() {
        return format!(
            "No webhook is registered with Telegram: save the channel with public-url set to Herald's https address, so that Herald registers {url}."
        );
    }
    if registered != url {
        return format!(
            "Telegram sends replies to {}, not to {url}: save the channel to register Herald's.",
            super::summary(registered)
        );
    }
    format!("Telegram sends replies to {url}; {waiting} updates waiting.{error}")
}
