//! Opting out by message: a customer who answers with nothing but a stop word is not sent
//! broadcasts on that channel again.

/// Stop words in the languages our customers write in most (compared in lower case).
const STOP_WORDS: &[&str] = &[
    // English, and what SMS carriers treat as opt-out keywords.
    "stop",
    "stopall",
    "unsubscribe",
    "cancel",
    "end",
    "quit",
    "optout",
    "opt out",
    "opt-out",
    // German, Dutch, Scandinavian.
    "stopp",
    "abmelden",
    "abbestellen",
    "afmelden",
    "uitschrijven",
    "avsluta",
    "afmeld",
    // French.
    "arret",
    "arrêt",
    "arrête",
    "arreter",
    "arrêter",
    "désabonner",
    "desabonner",
    "désinscription",
    // Spanish, Portuguese, Italian.
    "alto",
    "baja",
    "parar",
    "pare",
    "cancelar",
    "sair",
    "basta",
    "disiscrivi",
    "annulla",
    // Polish, Turkish, Russian, Ukrainian.
    "wypisz",
    "dur",
    "iptal",
    "стоп",
    "отписаться",
    "відписатися",
    // Chinese, Japanese, Korean, Arabic, Hindi.
    "退订",
    "退訂",
    "取消订阅",
    "配信停止",
    "停止",
    "수신거부",
    "إلغاء",
    "توقف",
    "रोकें",
];

/// Whether `text` as a whole asks to stop: one stop word, any case, with surrounding spaces,
/// quotes and end punctuation ignored ("Stop!", " UNSUBSCRIBE. "). "Please stop calling me"
/// is a conversation, not an opt-out.
pub fn is_stop_request(text: &str) -> bool {
    let trimmed = text.trim().trim_matches(|c: char| {
        c.is_whitespace() || matches!(c, '.' | '!' | '?' | '"' | '\'' | '“' | '”' | '。' | '！')
    });
    if trimmed.is_empty() || trimmed.chars().count() > 40 {
        return false;
    }
    let lower = trimmed.to_lowercase();
    let collapsed = lower.split_whitespace().collect::<Vec<_>>().join(" ");
    STOP_WORDS.contains(&collapsed.as_str())
}

/// Words that ask to get messages again (SMS carriers' opt-in keywords), compared in lower case.
const START_WORDS: &[&str] = &["start", "unstop", "subscribe", "opt in", "opt-in", "optin"];

/// Whether `text` as a whole asks to get messages (again): one opt-in word, as
/// [`is_stop_request`] reads stop words ("START", "Unstop.").
pub fn is_start_request(text: &str) -> bool {
    let trimmed = text.trim().trim_matches(|c: char| {
        c.is_whitespace() || matches!(c, '.' | '!' | '?' | '"' | '\'' | '“' | '”')
    });
    if trimmed.is_empty() || trimmed.chars().count() > 20 {
        return false;
    }
    let lower = trimmed.to_lowercase();
    let collapsed = lower.split_whitespace().collect::<Vec<_>>().join(" ");
    START_WORDS.contains(&collapsed.as_str())
}

#[cfg(test)]
mod start_tests {
    use super::is_start_request;

    #[test]
    fn start_words_alone_opt_in() {
        for yes in ["START", " Unstop. ", "opt in", "Subscribe!"] {
            assert!(is_start_request(yes), "{yes}");
        }
        for no in ["start the order please", "", "stop", "restart"] {
            assert!(!is_start_request(no), "{no}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::is_stop_request;

    #[test]
    fn the_whole_text_must_be_a_stop_word() {
        for yes in [
            "STOP",
            "stop",
            " Stop! ",
            "Unsubscribe.",
            "UNSUBSCRIBE",
            "\"stop\"",
            "Stopp",
            "ARRÊT",
            "Baja",
            "СТОП",
            "退订",
            "opt   out",
            "End",
        ] {
            assert!(is_stop_request(yes), "{yes:?} should opt out");
        }
        for no in [
            "",
            "   ",
            "please stop",
            "stop it",
            "don't stop",
            "stopping",
            "unsubscribe me later",
            "STOP STOP",
            "What is the end date?",
            "🛑",
        ] {
            assert!(!is_stop_request(no), "{no:?} should not opt out");
        }
    }
}
