//! The kinds of channel Herald sends on.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    /// A simulated provider, for trying Herald out and for tests.
    Sandbox,
    Whatsapp,
    Telegram,
    Email,
    Sms,
    Webhook,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 6] = [
        ChannelKind::Sandbox,
        ChannelKind::Whatsapp,
        ChannelKind::Telegram,
        ChannelKind::Email,
        ChannelKind::Sms,
        ChannelKind::Webhook,
    ];

    /// As stored in `channels.kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Sandbox => "sandbox",
            ChannelKind::Whatsapp => "whatsapp",
            ChannelKind::Telegram => "telegram",
            ChannelKind::Email => "email",
            ChannelKind::Sms => "sms",
            ChannelKind::Webhook => "webhook",
        }
    }

    pub fn parse(s: &str) -> Option<ChannelKind> {
        ChannelKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The customers columns that can hold a customer's address on this kind of channel, in
    /// the order they are tried (none: every customer can be reached, as with a webhook to the
    /// customer's own system).
    pub fn address_columns(self) -> &'static [&'static str] {
        match self {
            ChannelKind::Whatsapp => &["whatsapp_id"],
            ChannelKind::Telegram => &["telegram_chat_id"],
            ChannelKind::Email => &["email"],
            ChannelKind::Sms => &["phone"],
            // The sandbox pretends to deliver to whichever of phone or email a customer has.
            ChannelKind::Sandbox => &["phone", "email"],
            ChannelKind::Webhook => &[],
        }
    }
}
