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

crate::stored_as_text!(ChannelKind);

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

/// One setting a kind of channel needs (stored in the channel's JSON settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    pub key: &'static str,
    pub label: &'static str,
    /// Credentials: stored, never sent back to the browser or logged; shown masked.
    pub secret: bool,
    /// Filled in when left empty on connecting.
    pub default: &'static str,
    /// Where or how the channel sends (a URL, a host, a port, an id in the provider's URL,
    /// the SMTP security): changing it requires entering the secrets again, so stored
    /// credentials cannot be pointed at another host, path or in clear.
    pub endpoint: bool,
    /// What a value must look like.
    pub shape: Shape,
}

/// The form of a setting's value, checked when a channel is saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Text,
    /// Digits only (Meta's ids).
    Digits,
    /// Letters and digits only (Twilio's account SID).
    Word,
    /// One of these words.
    OneOf(&'static [&'static str]),
}

impl Shape {
    /// Why `value` does not have this shape, if it does not.
    pub fn check(self, value: &str) -> Result<(), String> {
        let ok = match self {
            Shape::Text => true,
            Shape::Digits => value.bytes().all(|b| b.is_ascii_digit()),
            Shape::Word => value.bytes().all(|b| b.is_ascii_alphanumeric()),
            Shape::OneOf(words) => words.contains(&value),
        };
        match (ok, self) {
            (true, _) => Ok(()),
            (false, Shape::Digits) => Err("digits only".into()),
            (false, Shape::Word) => Err("letters and digits only".into()),
            (false, Shape::OneOf(words)) => Err(format!("one of {}", words.join(", "))),
            (false, Shape::Text) => Ok(()),
        }
    }
}

const fn field(key: &'static str, label: &'static str) -> FieldSpec {
    FieldSpec {
        key,
        label,
        secret: false,
        default: "",
        endpoint: false,
        shape: Shape::Text,
    }
}

/// A setting that is part of the provider's URL (an id), of `shape`.
const fn id_in_url(key: &'static str, label: &'static str, shape: Shape) -> FieldSpec {
    FieldSpec {
        endpoint: true,
        shape,
        ..field(key, label)
    }
}

const fn secret(key: &'static str, label: &'static str) -> FieldSpec {
    FieldSpec {
        secret: true,
        ..field(key, label)
    }
}

const fn with_default(key: &'static str, label: &'static str, default: &'static str) -> FieldSpec {
    FieldSpec {
        default,
        ..field(key, label)
    }
}

const fn endpoint(key: &'static str, label: &'static str, default: &'static str) -> FieldSpec {
    FieldSpec {
        endpoint: true,
        ..with_default(key, label, default)
    }
}

impl ChannelKind {
    /// How the kind is called on the page.
    pub fn label(self) -> &'static str {
        match self {
            ChannelKind::Sandbox => "Sandbox (simulated)",
            ChannelKind::Whatsapp => "WhatsApp Cloud API",
            ChannelKind::Telegram => "Telegram bot",
            ChannelKind::Email => "Email (SMTP)",
            ChannelKind::Sms => "SMS (Twilio-style API)",
            ChannelKind::Webhook => "Webhook (your own system)",
        }
    }

    /// Messages per second by default: the provider's published limit (WhatsApp Cloud API
    /// 80/s per number, Telegram bots 30/s, Twilio long codes 1/s), a cautious SMTP rate, and
    /// what Herald's own sandbox and webhook handle comfortably.
    pub fn default_rate(self) -> i64 {
        match self {
            ChannelKind::Sandbox => 200,
            ChannelKind::Whatsapp => 80,
            ChannelKind::Telegram => 30,
            ChannelKind::Email => 10,
            ChannelKind::Sms => 1,
            ChannelKind::Webhook => 100,
        }
    }

    /// The settings a channel of this kind needs.
    pub fn fields(self) -> &'static [FieldSpec] {
        const WHATSAPP: &[FieldSpec] = &[
            id_in_url("phone_number_id", "Phone number ID", Shape::Digits),
            id_in_url(
                "waba_id",
                "WhatsApp Business Account ID (for its templates)",
                Shape::Digits,
            ),
            secret("access_token", "Access token"),
            secret("app_secret", "App secret (verifies webhooks)"),
            secret("verify_token", "Webhook verify token"),
            endpoint(
                "base_url",
                "API base URL",
                "https://graph.facebook.com/v21.0",
            ),
        ];
        const TELEGRAM: &[FieldSpec] = &[
            secret("bot_token", "Bot token"),
            secret("webhook_secret", "Webhook secret token"),
            endpoint("base_url", "API base URL", "https://api.telegram.org"),
        ];
        const EMAIL: &[FieldSpec] = &[
            endpoint("smtp_host", "SMTP host", ""),
            FieldSpec {
                shape: Shape::Digits,
                ..endpoint("smtp_port", "SMTP port", "587")
            },
            field("username", "User name"),
            secret("password", "Password"),
            field("from", "From address"),
            FieldSpec {
                endpoint: true,
                shape: Shape::OneOf(&["starttls", "tls", "none"]),
                ..with_default("security", "Security: starttls, tls or none", "starttls")
            },
            with_default(
                "max_message_mb",
                "Largest message the server takes, in MB",
                "25",
            ),
        ];
        const SMS: &[FieldSpec] = &[
            id_in_url("account_sid", "Account SID", Shape::Word),
            secret("auth_token", "Auth token"),
            field("from", "From number"),
            endpoint("base_url", "API base URL", "https://api.twilio.com"),
        ];
        const WEBHOOK: &[FieldSpec] = &[
            endpoint("url", "URL", ""),
            secret("secret", "Signing secret"),
        ];
        match self {
            ChannelKind::Sandbox => &[],
            ChannelKind::Whatsapp => WHATSAPP,
            ChannelKind::Telegram => TELEGRAM,
            ChannelKind::Email => EMAIL,
            ChannelKind::Sms => SMS,
            ChannelKind::Webhook => WEBHOOK,
        }
    }

    /// Whether this kind's providers report that a message reached the person's device or
    /// mailbox (Telegram, plain SMTP and the generic webhook do not).
    pub fn reports_delivery(self) -> bool {
        matches!(
            self,
            ChannelKind::Sandbox | ChannelKind::Whatsapp | ChannelKind::Sms
        )
    }

    /// Whether this kind's providers report reads (only WhatsApp, and the sandbox).
    pub fn reports_reads(self) -> bool {
        matches!(self, ChannelKind::Sandbox | ChannelKind::Whatsapp)
    }

    /// Whether providers of this kind call back (status reports, replies) at a webhook URL.
    pub fn has_inbound_webhook(self) -> bool {
        !matches!(self, ChannelKind::Email | ChannelKind::Webhook)
    }

    /// What Herald can learn later about a request whose answer was lost (a timeout after it
    /// went out, a reset, a 5xx, a crash): the rule for an uncertain delivery on this kind.
    pub fn after_doubt(self) -> AfterDoubt {
        match self {
            // Meta echoes `biz_opaque_callback_data` in each status; Twilio posts the
            // StatusCallback, whose URL names the delivery.
            ChannelKind::Whatsapp | ChannelKind::Sms => AfterDoubt::Reports,
            // The receiver keeps the Idempotency-Key (the sandbox too): a repeat is dropped.
            ChannelKind::Webhook | ChannelKind::Sandbox => AfterDoubt::ReceiverDeduplicates,
            // The Bot API and plain SMTP keep no key and report nothing.
            ChannelKind::Telegram | ChannelKind::Email => AfterDoubt::Nothing,
        }
    }
}

/// What becomes of a delivery whose request may have reached the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AfterDoubt {
    /// The provider's reports name the delivery: it stays uncertain until one does (then it
    /// is sent), and is sent again only if none came within the reconciliation window.
    Reports,
    /// The receiver drops a repeat of the same key: sending it again is safe, so it is
    /// retried like a refusal.
    ReceiverDeduplicates,
    /// Nothing will tell: it is never sent again on its own; it is "unknown — may have
    /// arrived", and staff may resend those knowingly.
    Nothing,
}

impl AfterDoubt {
    /// The kinds of channel whose uncertain deliveries become unknown, as an SQL list.
    pub const UNTOLD_KINDS_SQL: &'static str = "'telegram', 'email'";
}

/// A stored secret as the page shows it: only whether it is set, nothing of the value.
pub fn mask(secret: &str) -> String {
    if secret.is_empty() {
        String::new()
    } else {
        "set".to_string()
    }
}

/// A connected channel as the channels page shows it (secrets masked).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelView {
    pub id: i64,
    pub kind: ChannelKind,
    pub name: String,
    pub enabled: bool,
    pub rate_per_sec: i64,
    /// (key, label, shown value, secret?) for each of the kind's settings.
    pub settings: Vec<(String, String, String, bool)>,
    /// Where the provider must send its webhooks, if it sends any.
    pub webhook_url: Option<String>,
    /// A WhatsApp channel's message templates, as last synced.
    pub templates: Vec<crate::model::template::Template>,
    /// What the provider needs to report back, and whether it is set (the webhook Telegram
    /// has, Meta's verification, the SMS status callback).
    pub connection: Option<String>,
}

/// The channels page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelsPage {
    pub channels: Vec<ChannelView>,
    /// Admins connect and change channels; others are told so.
    pub can_manage: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_say_only_whether_a_secret_is_set() {
        assert_eq!(mask(""), "");
        assert_eq!(mask("short"), "set");
        assert_eq!(mask("123456:ABCDEFGHIJKLmnop"), "set");
    }

    #[test]
    fn every_kind_that_sends_somewhere_names_where_and_has_a_secret() {
        for k in ChannelKind::ALL {
            if k == ChannelKind::Sandbox {
                continue;
            }
            assert!(k.fields().iter().any(|f| f.endpoint), "{k:?}");
            assert!(k.fields().iter().any(|f| f.secret), "{k:?}");
        }
    }

    #[test]
    fn uncertain_deliveries_follow_what_each_provider_can_tell() {
        use AfterDoubt::*;
        let rules: Vec<(ChannelKind, AfterDoubt)> = ChannelKind::ALL
            .iter()
            .map(|k| (*k, k.after_doubt()))
            .collect();
        assert_eq!(
            rules,
            vec![
                (ChannelKind::Sandbox, ReceiverDeduplicates),
                (ChannelKind::Whatsapp, Reports),
                (ChannelKind::Telegram, Nothing),
                (ChannelKind::Email, Nothing),
                (ChannelKind::Sms, Reports),
                (ChannelKind::Webhook, ReceiverDeduplicates),
            ]
        );
        let untold: Vec<String> = ChannelKind::ALL
            .iter()
            .filter(|k| k.after_doubt() == Nothing)
            .map(|k| format!("'{}'", k.as_str()))
            .collect();
        assert_eq!(AfterDoubt::UNTOLD_KINDS_SQL, untold.join(", "));
    }

    #[test]
    fn every_kind_has_a_rate_and_secret_fields_are_marked() {
        for k in ChannelKind::ALL {
            assert!(k.default_rate() >= 1);
        }
        assert_eq!(ChannelKind::Whatsapp.default_rate(), 80);
        assert_eq!(ChannelKind::Telegram.default_rate(), 30);
        assert!(
            ChannelKind::Telegram
                .fields()
                .iter()
                .any(|f| f.key == "bot_token" && f.secret)
        );
    }
}
