//! What the providers' error codes mean for Herald: one table per provider, as data. Each row
//! names a documented code, what Herald does about it ([`Meaning`]), and what staff read: the
//! plain words and what to do. The adapters look a refusal up here ([`whatsapp`],
//! [`twilio`], [`telegram`], [`smtp`]) and turn the row into a [`SendError`] with
//! [`Code::error`]; a code no table knows falls back to the HTTP status (429 and 5xx retried,
//! anything else failed with the provider's own words).
//!
//! The same tables read the codes in the providers' status reports (a WhatsApp `failed`
//! status's `errors[]`, Twilio's `ErrorCode`), so a failure reads the same whichever way it
//! arrived.

use std::time::Duration;

use super::SendError;

/// What a provider's refusal means for the delivery, the customer and the broadcast.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// A passing fault that proves nothing was sent: try this delivery again later.
    Retry,
    /// The provider failed after taking the request: it may have sent the message. Never
    /// retried as if nothing was sent ([`SendError::MaybeSent`]).
    MaybeSent,
    /// The channel sends faster than the provider takes: try again after a pause.
    Throttle,
    /// Too many messages to this one customer lately: try again later, this customer only.
    BackOffRecipient,
    /// This message cannot go as it is; not retried.
    Fail,
    /// The customer has not written in the last 24 hours: only an approved template may go.
    NeedsTemplate,
    /// The address cannot receive this message now; after repeated failures the address is
    /// marked unreachable.
    Undeliverable,
    /// The address is gone for good: failed, and the customer is marked unreachable on
    /// this kind of channel.
    Unreachable,
    /// The customer stopped these messages at the provider: failed, and the customer is
    /// opted out of this kind of channel.
    OptedOut,
    /// Not sent now; "Retry failed" may send it again after `hours`.
    NotNow { hours: u32 },
    /// Held back by the provider's experiment: not charged, not retried.
    NotCharged,
    /// Every further message of the broadcast would fail the same way (a broken template, a
    /// revoked token, the number's spam limit): the broadcast pauses at once.
    PauseBroadcast,
}

/// One documented code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    /// The provider's code as it appears in its answer (`131047`, `21610`, `5.1.`), or, for
    /// Telegram, the start of its description.
    pub code: &'static str,
    pub meaning: Meaning,
    /// What happened, in plain words.
    pub words: &'static str,
    /// What staff can do about it.
    pub todo: &'static str,
}

const fn row(
    code: &'static str,
    meaning: Meaning,
    words: &'static str,
    todo: &'static str,
) -> Code {
    Code {
        code,
        meaning,
        words,
        todo,
    }
}

use Meaning::*;

/// WhatsApp Cloud API (Meta's error codes).
pub const WHATSAPP: &[Code] = &[
    row(
        "0",
        PauseBroadcast,
        "The access token was refused.",
        "Enter a new access token on the channels page, then resume.",
    ),
    row(
        "190",
        PauseBroadcast,
        "The access token has expired.",
        "Enter a new access token on the channels page, then resume.",
    ),
    row(
        "10",
        PauseBroadcast,
        "The app lacks permission to send from this number.",
        "Grant whatsapp_business_messaging to the app, then resume.",
    ),
    row(
        "200",
        PauseBroadcast,
        "The app lacks permission to send from this number.",
        "Grant whatsapp_business_messaging to the app, then resume.",
    ),
    row(
        "4",
        Throttle,
        "Too many API calls from this app.",
        "Nothing: Herald waits and tries again.",
    ),
    row(
        "80007",
        Throttle,
        "The business account's rate limit was reached.",
        "Nothing: Herald waits and tries again.",
    ),
    row(
        "130429",
        Throttle,
        "The number's throughput limit was reached.",
        "Nothing: Herald slows down and tries again; lower the channel's rate if it recurs.",
    ),
    row(
        "131056",
        BackOffRecipient,
        "Too many messages to this customer in a short time.",
        "Nothing: Herald tries this customer again later.",
    ),
    row(
        "131047",
        NeedsTemplate,
        "More than 24 hours since the customer last wrote: only an approved template may go.",
        "Send with a message template.",
    ),
    row(
        "131026",
        Undeliverable,
        "The message could not be delivered: the number may not be on WhatsApp.",
        "Check the number with the customer; after repeated failures Herald stops sending there.",
    ),
    row(
        "131049",
        NotNow { hours: 24 },
        "Meta held the message back to keep this customer's marketing engagement healthy.",
        "Not retried now; \"Retry failed\" can send it after 24 hours.",
    ),
    row(
        "131050",
        OptedOut,
        "The customer stopped marketing messages from this business on WhatsApp.",
        "Nothing: Herald no longer sends them WhatsApp broadcasts.",
    ),
    row(
        "131048",
        PauseBroadcast,
        "The number hit WhatsApp's spam rate limit: too many of its messages were blocked or reported.",
        "Review the message and audience; resume later.",
    ),
    row(
        "131031",
        PauseBroadcast,
        "The business account is locked.",
        "Resolve the account's policy issue with Meta, then resume.",
    ),
    row(
        "131042",
        PauseBroadcast,
        "A payment problem on the business account.",
        "Fix the payment method in Meta's Business Manager, then resume.",
    ),
    row(
        "132000",
        PauseBroadcast,
        "The template's parameter count does not match its approved text.",
        "Check the template's parameters in the broadcast, then resume.",
    ),
    row(
        "132001",
        PauseBroadcast,
        "The template does not exist in this language, or is not approved.",
        "Choose an approved template and language, then resume.",
    ),
    row(
        "132005",
        PauseBroadcast,
        "The template's text is too long once filled in.",
        "Shorten the parameters, then resume.",
    ),
    row(
        "132007",
        PauseBroadcast,
        "The filled-in template breaks WhatsApp's format policy.",
        "Change the parameters, then resume.",
    ),
    row(
        "132012",
        PauseBroadcast,
        "A template parameter has the wrong format.",
        "Check the template's parameters in the broadcast, then resume.",
    ),
    row(
        "132015",
        PauseBroadcast,
        "The template is paused for low quality.",
        "Edit the template in WhatsApp Manager or choose another, then resume.",
    ),
    row(
        "132016",
        PauseBroadcast,
        "The template is disabled.",
        "Choose another template, then resume.",
    ),
    row(
        "130472",
        NotCharged,
        "Held back by Meta's marketing message experiment: not charged.",
        "Nothing: it is not retried.",
    ),
    row(
        "131051",
        Fail,
        "WhatsApp does not support this kind of message.",
        "Change the message.",
    ),
    row(
        "131052",
        Fail,
        "WhatsApp could not download the customer's media.",
        "Ask the customer to send it again.",
    ),
    row(
        "131053",
        Fail,
        "WhatsApp could not upload the attachment.",
        "Check the attachment's type and size.",
    ),
    row(
        "131009",
        Fail,
        "A parameter of the message is not valid.",
        "Check the message and its attachments.",
    ),
    row(
        "131000",
        MaybeSent,
        "Something went wrong at WhatsApp after it took the message; it may have been sent.",
        "Nothing: Herald waits for WhatsApp's report on it before sending it again.",
    ),
    row(
        "131016",
        MaybeSent,
        "WhatsApp was overloaded while it took the message; it may have been sent.",
        "Nothing: Herald waits for WhatsApp's report on it before sending it again.",
    ),
    row(
        "133004",
        Retry,
        "The number's server is briefly unavailable.",
        "Nothing: Herald tries again.",
    ),
];

/// Twilio Programmable Messaging.
pub const TWILIO: &[Code] = &[
    row(
        "20003",
        PauseBroadcast,
        "Twilio refused the account SID or auth token.",
        "Enter the account's credentials on the channels page, then resume.",
    ),
    row(
        "20429",
        Throttle,
        "Too many requests to Twilio.",
        "Nothing: Herald waits and tries again.",
    ),
    row(
        "21610",
        OptedOut,
        "The customer replied STOP to this number.",
        "Nothing: Herald no longer sends them SMS. They can reply START.",
    ),
    row(
        "21211",
        Unreachable,
        "The phone number is not valid.",
        "Correct the customer's phone number.",
    ),
    row(
        "21614",
        Unreachable,
        "The number is not a mobile number.",
        "Correct the customer's phone number.",
    ),
    row(
        "21612",
        Fail,
        "Twilio cannot route a message from this number to that one.",
        "Check the sender number's capabilities for that country.",
    ),
    row(
        "21408",
        PauseBroadcast,
        "The account may not send to this region.",
        "Enable the region in Twilio's geographic permissions, then resume.",
    ),
    row(
        "30003",
        Undeliverable,
        "The handset is unreachable (switched off or out of coverage).",
        "Nothing now; after repeated failures Herald stops sending there.",
    ),
    row(
        "30005",
        Unreachable,
        "The number is unknown to the carrier.",
        "Correct the customer's phone number.",
    ),
    row(
        "30006",
        Unreachable,
        "The number is a landline or unreachable by this carrier.",
        "Correct the customer's phone number.",
    ),
    row(
        "30007",
        Fail,
        "The carrier filtered the message as spam.",
        "Review the message; register the sender for this traffic.",
    ),
    row(
        "30001",
        Retry,
        "Twilio's queue overflowed.",
        "Nothing: Herald tries again.",
    ),
];

/// Telegram Bot API: no codes beyond HTTP's, so the rows are the starts of its descriptions.
pub const TELEGRAM: &[Code] = &[
    row(
        "Forbidden: bot was blocked by the user",
        Unreachable,
        "The customer blocked the bot.",
        "Nothing: Herald no longer sends them Telegram messages.",
    ),
    row(
        "Forbidden: bot can't initiate conversation with a user",
        Unreachable,
        "The customer never started a chat with the bot.",
        "Ask the customer to open the bot and press Start.",
    ),
    row(
        "Forbidden: user is deactivated",
        Unreachable,
        "The customer's Telegram account is deleted.",
        "Nothing: Herald no longer sends them Telegram messages.",
    ),
    row(
        "Bad Request: chat not found",
        Unreachable,
        "No Telegram chat has this id.",
        "Check the customer's Telegram chat id.",
    ),
    row(
        "Unauthorized",
        PauseBroadcast,
        "Telegram refused the bot token.",
        "Enter the bot's token on the channels page, then resume.",
    ),
    row(
        "Too Many Requests",
        Throttle,
        "Too many messages from the bot.",
        "Nothing: Herald waits as long as Telegram asks.",
    ),
];

/// SMTP enhanced status codes (RFC 3463): the rows are code prefixes, most specific first.
pub const SMTP: &[Code] = &[
    row(
        "5.1.",
        Unreachable,
        "No such mailbox at that address.",
        "Correct the customer's email address.",
    ),
    row(
        "5.2.2",
        Undeliverable,
        "The customer's mailbox is full.",
        "Nothing now; after repeated failures Herald stops sending there.",
    ),
    row(
        "5.3.4",
        PauseBroadcast,
        "The message is larger than the mail server takes.",
        "Remove or shrink files, or set the channel's largest message to the server's, then resume.",
    ),
    row(
        "5.7.",
        Fail,
        "The receiving server refused the message by policy.",
        "Check the sender's SPF, DKIM and DMARC, and the message.",
    ),
    row(
        "5.",
        Fail,
        "The receiving server refused the message.",
        "See the server's words.",
    ),
    row(
        "4.",
        Retry,
        "The receiving server asked to try later.",
        "Nothing: Herald tries again.",
    ),
];

/// The row for a WhatsApp error code.
pub fn whatsapp(code: i64) -> Option<&'static Code> {
    let code = code.to_string();
    WHATSAPP.iter().find(|r| r.code == code)
}

/// The row for a Twilio error code.
pub fn twilio(code: i64) -> Option<&'static Code> {
    let code = code.to_string();
    TWILIO.iter().find(|r| r.code == code)
}

/// The row for a Telegram error, by its description (or the HTTP status for 401 and 429).
pub fn telegram(status: u64, description: &str) -> Option<&'static Code> {
    match status {
        401 => return TELEGRAM.iter().find(|r| r.code == "Unauthorized"),
        429 => return TELEGRAM.iter().find(|r| r.code == "Too Many Requests"),
        _ => {}
    }
    TELEGRAM.iter().find(|r| description.contains(r.code))
}

/// The row for an SMTP enhanced status code (`5.1.1`), by its longest matching prefix.
pub fn smtp(enhanced: &str) -> Option<&'static Code> {
    SMTP.iter()
        .filter(|r| enhanced.starts_with(r.code))
        .max_by_key(|r| r.code.len())
}

impl Code {
    /// The reason staff read for this row: the provider and code, the plain words, and what
    /// to do. The same for every delivery it happens to, so failures group by it.
    pub fn reason(&self, provider: &str) -> String {
        let code = if provider == "Telegram" {
            String::new()
        } else {
            format!(" {}", self.code.trim_end_matches('.'))
        };
        format!("{provider}{code}: {} {}", self.words, self.todo)
    }

    /// The refusal this row means. `retry_after` is what the provider asked to wait.
    pub fn error(&self, provider: &str, retry_after: Option<Duration>) -> SendError {
        let reason = self.reason(provider);
        match self.meaning {
            Retry => SendError::Transient {
                reason,
                retry_after,
            },
            MaybeSent => SendError::MaybeSent { reason },
            Throttle => SendError::Throttled {
                reason,
                retry_after: retry_after.unwrap_or(Duration::from_secs(1)),
            },
            BackOffRecipient => SendError::Transient {
                reason,
                // Meta: wait before sending to this customer again (pair rate, about one
                // message every 6 seconds).
                retry_after: retry_after.or(Some(Duration::from_secs(60))),
            },
            Fail | NeedsTemplate | NotCharged => SendError::Permanent { reason },
            Undeliverable => SendError::Undeliverable { reason },
            Unreachable => SendError::Unreachable { reason },
            OptedOut => SendError::OptedOut { reason },
            NotNow { hours } => SendError::NotNow {
                reason,
                retry_in: Duration::from_secs(u64::from(hours) * 3600),
            },
            PauseBroadcast => SendError::Systemic { reason },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(e: &SendError) -> &'static str {
        match e {
            SendError::Transient { .. } => "transient",
            SendError::Throttled { .. } => "throttled",
            SendError::Permanent { .. } => "permanent",
            SendError::Unreachable { .. } => "unreachable",
            SendError::Undeliverable { .. } => "undeliverable",
            SendError::OptedOut { .. } => "opted-out",
            SendError::NotNow { .. } => "not-now",
            SendError::Systemic { .. } => "systemic",
            SendError::MaybeSent { .. } => "maybe-sent",
        }
    }

    #[test]
    fn whatsapp_codes_mean_what_meta_documents() {
        let cases = [
            (130429, "throttled"),
            (131056, "transient"),
            (131047, "permanent"),
            (131026, "undeliverable"),
            (131049, "not-now"),
            (131050, "opted-out"),
            (131048, "systemic"),
            (132000, "systemic"),
            (132001, "systemic"),
            (132012, "systemic"),
            (132015, "systemic"),
            (132016, "systemic"),
            (130472, "permanent"),
            (131000, "maybe-sent"),
            (131016, "maybe-sent"),
            (190, "systemic"),
        ];
        for (code, want) in cases {
            let row = whatsapp(code).unwrap_or_else(|| panic!("{code} has a row"));
            assert_eq!(kind(&row.error("WhatsApp", None)), want, "{code}");
        }
        assert!(whatsapp(999_999).is_none());
        // 131049 may be retried after a day, and says so.
        match whatsapp(131049).map(|r| r.error("WhatsApp", None)) {
            Some(SendError::NotNow { retry_in, reason }) => {
                assert_eq!(retry_in, Duration::from_secs(24 * 3600));
                assert!(reason.contains("24 hours"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        // A throttle waits at least what the provider asked.
        match whatsapp(130429).map(|r| r.error("WhatsApp", Some(Duration::from_secs(9)))) {
            Some(SendError::Throttled { retry_after, .. }) => {
                assert_eq!(retry_after, Duration::from_secs(9))
            }
            other => panic!("{other:?}"),
        }
        // The pair rate waits for this customer, not a second.
        match whatsapp(131056).map(|r| r.error("WhatsApp", None)) {
            Some(SendError::Transient { retry_after, .. }) => {
                assert!(retry_after >= Some(Duration::from_secs(6)))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn twilio_codes_mean_what_twilio_documents() {
        let cases = [
            (21610, "opted-out"),
            (21211, "unreachable"),
            (21614, "unreachable"),
            (30003, "undeliverable"),
            (30005, "unreachable"),
            (30006, "unreachable"),
            (30007, "permanent"),
            (20429, "throttled"),
            (20003, "systemic"),
        ];
        for (code, want) in cases {
            let row = twilio(code).unwrap_or_else(|| panic!("{code} has a row"));
            assert_eq!(kind(&row.error("SMS", None)), want, "{code}");
        }
    }

    #[test]
    fn telegram_descriptions_mean_what_telegram_says() {
        let cases = [
            (403, "Forbidden: bot was blocked by the user", "unreachable"),
            (
                403,
                "Forbidden: bot can't initiate conversation with a user",
                "unreachable",
            ),
            (403, "Forbidden: user is deactivated", "unreachable"),
            (400, "Bad Request: chat not found", "unreachable"),
            (401, "Unauthorized", "systemic"),
            (429, "Too Many Requests: retry after 7", "throttled"),
        ];
        for (status, said, want) in cases {
            let row = telegram(status, said).unwrap_or_else(|| panic!("{said} has a row"));
            assert_eq!(kind(&row.error("Telegram", None)), want, "{said}");
        }
        assert!(telegram(400, "Bad Request: message text is empty").is_none());
    }

    #[test]
    fn smtp_codes_match_their_longest_prefix() {
        assert_eq!(smtp("5.1.1").map(|r| r.meaning), Some(Unreachable));
        assert_eq!(smtp("5.1.10").map(|r| r.meaning), Some(Unreachable));
        assert_eq!(smtp("5.2.2").map(|r| r.meaning), Some(Undeliverable));
        assert_eq!(smtp("5.7.1").map(|r| r.meaning), Some(Fail));
        // Every email of the broadcast carries the same files: all of them would be refused.
        assert_eq!(smtp("5.3.4").map(|r| r.meaning), Some(PauseBroadcast));
        assert_eq!(smtp("5.3.0").map(|r| r.meaning), Some(Fail));
        assert_eq!(smtp("4.2.2").map(|r| r.meaning), Some(Retry));
        assert_eq!(smtp("2.0.0"), None);
    }

    #[test]
    fn every_row_reads_in_plain_words_short_enough_to_keep_whole() {
        for (provider, table) in [
            ("WhatsApp", WHATSAPP),
            ("SMS", TWILIO),
            ("Telegram", TELEGRAM),
            ("Email", SMTP),
        ] {
            let mut seen = std::collections::HashSet::new();
            for r in table {
                assert!(seen.insert(r.code), "{provider} {} twice", r.code);
                let reason = r.reason(provider);
                assert!(
                    reason.chars().count() <= super::super::SUMMARY_CHARS,
                    "{reason} is cut when stored"
                );
                assert!(r.words.ends_with('.') && r.todo.ends_with('.'), "{reason}");
                assert_eq!(super::super::summary(&reason), reason);
            }
        }
    }
}
