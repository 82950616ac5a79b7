//! Whether the message fits each picked channel, before it is scheduled: measured as it will be
//! sent to the audience's longest name (personalisation makes it longer), with the broadcast's
//! files. Lines for the pre-flight, and the reasons that keep it from being scheduled.

use crate::model::channel::ChannelKind;
use crate::model::compose::Compose;
use crate::model::fit::fit;
use crate::model::personalize;

/// What the message becomes on each of `kinds` (once each), and what goes over a hard limit.
pub fn text_fit(
    compose: &Compose,
    kinds: &[ChannelKind],
    longest_name: &str,
) -> (Vec<String>, Vec<String>) {
    let text = personalize::render(compose.body.trim_end(), longest_name);
    let (mut lines, mut refused) = (Vec::new(), Vec::new());
    let mut seen = Vec::new();
    for kind in kinds {
        if seen.contains(kind) || text.is_empty() {
            continue;
        }
        seen.push(*kind);
        // A template carries WhatsApp's text unless free text goes inside the window.
        let templated = compose
            .template
            .as_ref()
            .is_some_and(|t| !t.free_text_in_window);
        if *kind == ChannelKind::Whatsapp && templated {
            continue;
        }
        let f = fit(*kind, &text, !compose.attachments.is_empty());
        match kind {
            ChannelKind::Sms | ChannelKind::Whatsapp | ChannelKind::Telegram => {
                lines.push(format!("{}: {}.", short(*kind), f.summary));
            }
            ChannelKind::Email => lines.push(format!(
                "Email: subject “{}”, {}.",
                compose.name.trim(),
                f.summary
            )),
            _ => {}
        }
        if let Some(why) = f.refused {
            refused.push(format!(
                "{why} Shorten the message or leave {} out.",
                short(*kind)
            ));
        }
    }
    (lines, refused)
}

fn short(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Sms => "SMS",
        ChannelKind::Whatsapp => "WhatsApp",
        ChannelKind::Telegram => "Telegram",
        ChannelKind::Email => "email",
        ChannelKind::Webhook => "the webhook",
        ChannelKind::Sandbox => "the sandbox",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_name_decides_and_only_hard_limits_refuse() {
        let compose = Compose {
            body: format!("Hi {{{{name}}}}, {}", "a".repeat(1590)),
            ..Compose::default()
        };
        let kinds = [
            ChannelKind::Sms,
            ChannelKind::Telegram,
            ChannelKind::Sms,
            ChannelKind::Email,
        ];
        let (lines, refused) = text_fit(&compose, &kinds, "Ann");
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[2].starts_with("Email: subject “"), "{lines:?}");
        assert!(refused.is_empty(), "{refused:?}");
        let (_, refused) = text_fit(&compose, &kinds, &"Bartholomew ".repeat(2));
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(refused[0].contains("leave SMS out"), "{refused:?}");
    }
}
