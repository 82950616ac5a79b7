//! What a message becomes on each kind of channel, before it is sent: the SMS segment count
//! and encoding (GSM 03.38 7-bit: 160 characters in one segment, 153 per segment of a longer
//! message, the extension characters `^{}\[~]|€` and form feed counting double; anything else
//! forces UCS-2: 70 UTF-16 units, 67 per segment), WhatsApp's and Telegram's 4,096-character
//! text and 1,024-character caption. Shared by the editor (live, in the browser) and the
//! server's check before sending.

use super::channel::ChannelKind;

/// GSM 03.38's basic character set (one septet each).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?\
¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Its extension table (an escape and a septet: two each).
const GSM_EXTENSION: &str = "^{}\\[~]|€\u{000C}";

/// The longest SMS body Herald sends (Twilio's limit: 1,600 characters, about 10 segments).
pub const SMS_MAX_CHARS: usize = 1600;
/// WhatsApp's and Telegram's longest text message.
pub const TEXT_MAX_CHARS: usize = 4096;
/// WhatsApp's and Telegram's longest caption under a file.
pub const CAPTION_MAX_CHARS: usize = 1024;

/// How an SMS is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// An SMS body measured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsFit {
    pub encoding: Encoding,
    /// Septets (GSM-7) or UTF-16 units (UCS-2).
    pub units: usize,
    pub segments: usize,
    /// The characters that force UCS-2 (each once, in order, at most 5).
    pub forcing: Vec<char>,
    /// GSM extension characters, which count double (each once, at most 5).
    pub doubled: Vec<char>,
}

fn gsm_cost(c: char) -> Option<usize> {
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if GSM_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

fn push_once(list: &mut Vec<char>, c: char) {
    if list.len() < 5 && !list.contains(&c) {
        list.push(c);
    }
}

/// How many segments `costs` take, `single` fitting one message and `each` per part of a
/// longer one; a character is never split across two parts.
fn segments(costs: impl Iterator<Item = usize> + Clone, single: usize, each: usize) -> usize {
    let total: usize = costs.clone().sum();
    if total == 0 {
        return 0;
    }
    if total <= single {
        return 1;
    }
    let (mut parts, mut used) = (1, 0);
    for cost in costs {
        if used + cost > each {
            parts += 1;
            used = 0;
        }
        used += cost;
    }
    parts
}

/// `text` as an SMS: its encoding, length and segments.
pub fn sms(text: &str) -> SmsFit {
    let (mut forcing, mut doubled) = (Vec::new(), Vec::new());
    for c in text.chars() {
        match gsm_cost(c) {
            None => push_once(&mut forcing, c),
            Some(2) => push_once(&mut doubled, c),
            _ => {}
        }
    }
    if forcing.is_empty() {
        let costs = text.chars().map(|c| gsm_cost(c).unwrap_or(1));
        SmsFit {
            encoding: Encoding::Gsm7,
            units: costs.clone().sum(),
            segments: segments(costs, 160, 153),
            forcing,
            doubled,
        }
    } else {
        let costs = text.chars().map(char::len_utf16);
        SmsFit {
            encoding: Encoding::Ucs2,
            units: costs.clone().sum(),
            segments: segments(costs, 70, 67),
            forcing,
            doubled: Vec::new(),
        }
    }
}

/// What a message becomes on one kind of channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelFit {
    pub kind: ChannelKind,
    /// One line: "2 SMS segments, UCS-2 (forced by 🎉)", "312 of 4,096 characters".
    pub summary: String,
    /// Why it cannot go as it is (over a hard limit), if so.
    pub refused: Option<String>,
}

fn thousands(n: usize) -> String {
    super::results::thousands(n as i64)
}

fn listed(chars: &[char]) -> String {
    chars
        .iter()
        .map(|c| match c {
            '\n' => "a line break".to_string(),
            '\u{000C}' => "a form feed".to_string(),
            c => c.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `text` (as it will be sent, personalised) on `kind`, with files or without.
pub fn fit(kind: ChannelKind, text: &str, with_files: bool) -> ChannelFit {
    let chars = text.chars().count();
    let (summary, refused) = match kind {
        ChannelKind::Sms => sms_line(text, chars),
        ChannelKind::Whatsapp | ChannelKind::Telegram => {
            let mut line = format!(
                "{} of {} characters",
                thousands(chars),
                thousands(TEXT_MAX_CHARS)
            );
            if with_files && chars > CAPTION_MAX_CHARS {
                line.push_str(&format!(
                    "; too long for a caption ({}), so the text goes as its own message before the files",
                    thousands(CAPTION_MAX_CHARS)
                ));
            }
            let refused = (chars > TEXT_MAX_CHARS).then(|| {
                format!(
                    "{} takes at most {} characters in a message; this one has {}.",
                    kind.label(),
                    thousands(TEXT_MAX_CHARS),
                    thousands(chars)
                )
            });
            (line, refused)
        }
        ChannelKind::Email | ChannelKind::Webhook | ChannelKind::Sandbox => {
            (format!("{} characters", thousands(chars)), None)
        }
    };
    ChannelFit {
        kind,
        summary,
        refused,
    }
}

fn sms_line(text: &str, chars: usize) -> (String, Option<String>) {
    let s = sms(text);
    let plural = if s.segments == 1 { "" } else { "s" };
    let mut line = match s.encoding {
        Encoding::Gsm7 => format!(
            "{} SMS segment{plural}, GSM-7, {} characters",
            s.segments,
            thousands(s.units)
        ),
        Encoding::Ucs2 => format!(
            "{} SMS segment{plural}, UCS-2 (70 per segment, not 160) because of {}",
            s.segments,
            listed(&s.forcing)
        ),
    };
    if !s.doubled.is_empty() {
        line.push_str(&format!("; {} count double", listed(&s.doubled)));
    }
    let refused = (chars > SMS_MAX_CHARS).then(|| {
        format!(
            "An SMS takes at most {} characters; this one has {}.",
            thousands(SMS_MAX_CHARS),
            thousands(chars)
        )
    });
    (line, refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gsm7_fits_160_then_153_per_segment() {
        assert_eq!(sms("").segments, 0);
        let one = "a".repeat(160);
        assert_eq!(
            (sms(&one).encoding, sms(&one).segments),
            (Encoding::Gsm7, 1)
        );
        assert_eq!(sms(&"a".repeat(161)).segments, 2);
        assert_eq!(sms(&"a".repeat(306)).segments, 2);
        assert_eq!(sms(&"a".repeat(307)).segments, 3);
        // Accents in the GSM set stay 7-bit: "Café à Zürich" is one GSM-7 segment.
        let cafe = sms("Café à Zürich, 5 € off");
        assert_eq!(cafe.encoding, Encoding::Gsm7);
        assert_eq!(cafe.doubled, vec!['€']);
        assert_eq!(cafe.units, 23, "the euro sign counts two septets");
    }

    #[test]
    fn extension_characters_count_double_and_never_straddle_a_boundary() {
        assert_eq!(sms(&"{".repeat(80)).units, 160);
        assert_eq!(sms(&"{".repeat(80)).segments, 1);
        assert_eq!(sms(&"{".repeat(81)).segments, 2);
        // 152 septets, then a two-septet character: it goes whole into the second part.
        let text = format!("{}€{}", "a".repeat(152), "b".repeat(10));
        assert_eq!(sms(&text).units, 164);
        assert_eq!(sms(&text).segments, 2);
        let edge = format!("{}€{}", "a".repeat(152), "b".repeat(152));
        assert_eq!(sms(&edge).segments, 3, "152 | 2+151 | 1");
    }

    #[test]
    fn an_emoji_forces_ucs2_at_70_then_67() {
        let hi = format!("{} 🎉", "a".repeat(60));
        let s = sms(&hi);
        assert_eq!(s.encoding, Encoding::Ucs2);
        assert_eq!(s.forcing, vec!['🎉']);
        assert_eq!(s.units, 63, "an emoji is two UTF-16 units");
        assert_eq!(s.segments, 1);
        assert_eq!(sms(&"é".repeat(70)).segments, 1, "é is GSM");
        assert_eq!(sms(&"ж".repeat(70)).segments, 1);
        assert_eq!(sms(&"ж".repeat(71)).segments, 2);
        assert_eq!(sms(&"ж".repeat(134)).segments, 2);
        assert_eq!(sms(&"ж".repeat(135)).segments, 3);
        // A 150-character text that fits one GSM segment takes three once an emoji is in it.
        let plain = "a".repeat(148);
        assert_eq!(sms(&plain).segments, 1);
        assert_eq!(sms(&format!("{plain} 😀")).segments, 3);
        // A surrogate pair is never split: 66 units, then an emoji, fills two parts.
        let split = format!("{}😀{}", "ж".repeat(66), "ж".repeat(10));
        assert_eq!(sms(&split).segments, 2);
    }

    #[test]
    fn each_kind_says_what_the_message_becomes_and_refuses_only_past_a_hard_limit() {
        let f = fit(ChannelKind::Sms, &format!("{} 🎉", "a".repeat(100)), false);
        assert!(
            f.summary.starts_with("2 SMS segments, UCS-2"),
            "{}",
            f.summary
        );
        assert!(f.summary.contains("🎉"), "{}", f.summary);
        assert!(f.refused.is_none());
        assert!(
            fit(ChannelKind::Sms, &"a".repeat(1601), false)
                .refused
                .is_some()
        );
        let long = "a".repeat(1200);
        let w = fit(ChannelKind::Whatsapp, &long, true);
        assert!(
            w.summary.contains("1,200 of 4,096") && w.summary.contains("own message"),
            "{}",
            w.summary
        );
        assert!(w.refused.is_none());
        let t = fit(ChannelKind::Telegram, &"a".repeat(4097), false);
        assert!(t.refused.unwrap().contains("4,096"));
    }
}
