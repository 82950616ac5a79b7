//! The workspace's sending rules, set by admins on the Settings page: the time zone for
//! customers without one, and quiet hours in the recipient's local time (with overrides by
//! phone number prefix, as US rules want for +1 numbers). Later rules (consent, caps, prices,
//! approval) join this one record.

use serde::{Deserialize, Serialize};

/// Minutes since local midnight.
pub type Minute = u16;

/// A daily window of local time, `[start, end)`; it wraps midnight when `end <= start`
/// (21:00–08:00).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub start: Minute,
    pub end: Minute,
}

impl Window {
    /// Whether local time `m` (minutes since midnight) falls inside.
    pub fn contains(self, m: Minute) -> bool {
        if self.start == self.end {
            return false;
        }
        if self.start < self.end {
            self.start <= m && m < self.end
        } else {
            m >= self.start || m < self.end
        }
    }

    /// `21:00–08:00`.
    pub fn label(self) -> String {
        format!("{}–{}", hhmm(self.start), hhmm(self.end))
    }

    /// `21:00-08:00` (or with an en dash); `None` when it is not two times.
    pub fn parse(text: &str) -> Option<Window> {
        let (a, b) = text.trim().split_once(['-', '–'])?;
        let (start, end) = (parse_hhmm(a)?, parse_hhmm(b)?);
        (start != end).then_some(Window { start, end })
    }
}

/// `m` minutes after midnight as `08:05`.
pub fn hhmm(m: Minute) -> String {
    format!("{:02}:{:02}", m / 60, m % 60)
}

/// `8:05` or `08:05` as minutes after midnight.
pub fn parse_hhmm(text: &str) -> Option<Minute> {
    let (h, m) = text.trim().split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && (1..=2).contains(&text.trim().split(':').next()?.len()))
        .then_some(h * 60 + m)
}

/// Quiet hours for phone numbers starting with `prefix` (`+1`): their own window, or none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixQuiet {
    pub prefix: String,
    pub window: Option<Window>,
}

/// The workspace's rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rules {
    /// For customers without a (known) time zone of their own.
    pub time_zone: String,
    /// No broadcast reaches anyone in this window of their local time (unless an admin
    /// exempts it); what falls inside waits for its end.
    pub quiet: Option<Window>,
    /// Overrides by phone number prefix; the longest matching prefix wins.
    #[serde(default)]
    pub quiet_by_prefix: Vec<PrefixQuiet>,
    /// The kinds of channel (`whatsapp`, `sms` …) on which a marketing broadcast reaches only
    /// customers who opted in there (Meta and the carriers require it for WhatsApp and SMS).
    #[serde(default = "consent_by_default")]
    pub consent_kinds: Vec<String>,
    /// At most this many marketing broadcasts per customer in a rolling window.
    #[serde(default)]
    pub frequency_cap: Option<Cap>,
    /// What messages cost, for the pre-flight's estimate and the results (empty: not shown).
    #[serde(default)]
    pub prices: super::cost::Prices,
    /// Broadcasts this large or costly need an admin's approval (none: off).
    #[serde(default)]
    pub approval: Option<Approval>,
}

/// "Broadcasts reaching more than `customers` customers, or costing more than `cost`, need
/// an admin's approval"; either may be left out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub customers: Option<i64>,
    pub cost: Option<super::cost::Micros>,
}

impl Approval {
    /// Why a broadcast reaching `customers` at `cost` needs approval, if it does.
    pub fn needed(
        self,
        customers: i64,
        cost: super::cost::Micros,
        currency: &str,
    ) -> Option<String> {
        use super::cost::money;
        use super::results::thousands;
        if let Some(n) = self.customers.filter(|n| customers > *n) {
            return Some(format!(
                "it reaches {} customers, more than the {} the workspace allows without approval",
                thousands(customers),
                thousands(n)
            ));
        }
        self.cost.filter(|c| cost > *c).map(|c| {
            format!(
                "it costs about {} {currency}, more than the {} {currency} the workspace allows without approval",
                money(cost),
                money(c)
            )
        })
    }

    pub fn label(self, currency: &str) -> String {
        let mut parts = Vec::new();
        if let Some(n) = self.customers {
            parts.push(format!(
                "reaching more than {} customers",
                super::results::thousands(n)
            ));
        }
        if let Some(c) = self.cost {
            parts.push(format!(
                "costing more than {} {currency}",
                super::cost::money(c)
            ));
        }
        format!("approval for broadcasts {}", parts.join(" or "))
    }
}

/// "At most `max` marketing broadcasts per customer per `days` days".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cap {
    pub max: u32,
    pub days: u32,
}

impl Cap {
    pub fn label(self) -> String {
        let s = |n: u32| if n == 1 { "" } else { "s" };
        format!(
            "at most {} marketing broadcast{} per customer per {} day{}",
            self.max,
            s(self.max),
            self.days,
            s(self.days)
        )
    }
}

/// The kinds of channel whose marketing may need an opt-in, as the Settings form names them.
pub const CONSENT_KINDS: [&str; 4] = ["whatsapp", "sms", "email", "telegram"];

/// Most days a frequency cap may span, and most broadcasts it may allow.
pub const MAX_CAP_DAYS: u32 = 90;
pub const MAX_CAP_BROADCASTS: u32 = 100;

/// WhatsApp and SMS: opt-in required for marketing, as Meta and the carriers require.
pub fn consent_by_default() -> Vec<String> {
    vec!["whatsapp".into(), "sms".into()]
}

/// The quiet hours a new workspace starts with: 21:00–08:00, as US rules allow marketing
/// texts only between 8:00 and 21:00 at the recipient's location.
pub const DEFAULT_QUIET: Window = Window {
    start: 21 * 60,
    end: 8 * 60,
};

/// Most per-prefix overrides.
pub const MAX_PREFIXES: usize = 50;

impl Default for Rules {
    fn default() -> Self {
        Rules {
            time_zone: "UTC".into(),
            quiet: Some(DEFAULT_QUIET),
            quiet_by_prefix: Vec::new(),
            consent_kinds: consent_by_default(),
            frequency_cap: None,
            prices: Default::default(),
            approval: None,
        }
    }
}

impl Rules {
    /// The overrides as the Settings page's text area shows them, one per line:
    /// `+1 21:00-08:00`, or `+44 none`.
    pub fn prefixes_text(&self) -> String {
        self.quiet_by_prefix
            .iter()
            .map(|p| {
                let w = p.window.map(|w| w.label()).unwrap_or_else(|| "none".into());
                format!("{} {w}", p.prefix)
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// What differs from `old`, for the audit log.
    pub fn changes_from(&self, old: &Rules) -> String {
        let quiet = |q: Option<Window>| q.map(|w| w.label()).unwrap_or_else(|| "off".into());
        let mut out = Vec::new();
        if self.time_zone != old.time_zone {
            out.push(format!("time zone {} → {}", old.time_zone, self.time_zone));
        }
        if self.quiet != old.quiet {
            out.push(format!(
                "quiet hours {} → {}",
                quiet(old.quiet),
                quiet(self.quiet)
            ));
        }
        if self.consent_kinds != old.consent_kinds {
            let list = |k: &[String]| {
                if k.is_empty() {
                    "none".to_string()
                } else {
                    k.join(", ")
                }
            };
            out.push(format!(
                "opt-in required for marketing on {} → {}",
                list(&old.consent_kinds),
                list(&self.consent_kinds)
            ));
        }
        if self.frequency_cap != old.frequency_cap {
            let cap = |c: Option<Cap>| c.map(|c| c.label()).unwrap_or_else(|| "no cap".into());
            out.push(format!(
                "frequency cap {} → {}",
                cap(old.frequency_cap),
                cap(self.frequency_cap)
            ));
        }
        if self.prices != old.prices {
            out.push(format!(
                "prices ({}) [{}] → ({}) [{}]",
                old.prices.currency,
                old.prices.text().replace('\n', "; "),
                self.prices.currency,
                self.prices.text().replace('\n', "; ")
            ));
        }
        if self.approval != old.approval {
            let a = |r: &Rules| {
                r.approval
                    .map(|a| a.label(&r.prices.currency))
                    .unwrap_or_else(|| "no approval".into())
            };
            out.push(format!("{} → {}", a(old), a(self)));
        }
        if self.quiet_by_prefix != old.quiet_by_prefix {
            out.push(format!(
                "quiet hours by prefix [{}] → [{}]",
                old.prefixes_text().replace('\n', "; "),
                self.prefixes_text().replace('\n', "; ")
            ));
        }
        out.join(", ")
    }
}

/// Reads the overrides' text (one `+prefix window|none` per line); every problem at once,
/// each naming its line.
pub fn parse_prefixes(text: &str) -> Result<Vec<PrefixQuiet>, Vec<String>> {
    let mut out: Vec<PrefixQuiet> = Vec::new();
    let mut errors = Vec::new();
    for (i, line) in text.lines().enumerate().take(MAX_PREFIXES + 1) {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let n = i + 1;
        let (prefix, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let digits = prefix.strip_prefix('+').unwrap_or("");
        if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            errors.push(format!(
                "Line {n}: “{prefix}” is not a phone prefix like +1 or +44."
            ));
            continue;
        }
        let window = match rest.trim() {
            "none" | "off" => None,
            w => match Window::parse(w) {
                Some(w) => Some(w),
                None => {
                    errors.push(format!(
                        "Line {n}: write the quiet hours as 21:00-08:00, or “none”."
                    ));
                    continue;
                }
            },
        };
        if out.iter().any(|p| p.prefix == prefix) {
            errors.push(format!("Line {n}: {prefix} is listed twice."));
            continue;
        }
        out.push(PrefixQuiet {
            prefix: prefix.to_string(),
            window,
        });
    }
    if out.len() + errors.len() > MAX_PREFIXES {
        errors.push(format!("At most {MAX_PREFIXES} prefixes."));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// The Settings page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SettingsPage {
    pub rules: Rules,
    /// Who changed them last and when, in the viewer's time zone.
    pub updated: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_wrap_midnight() {
        let w = Window::parse("21:00-08:00").unwrap();
        assert!(w.contains(21 * 60) && w.contains(23 * 60 + 59) && w.contains(0));
        assert!(w.contains(8 * 60 - 1) && !w.contains(8 * 60) && !w.contains(20 * 60 + 59));
        let day = Window::parse(" 9:30 – 17:00 ").unwrap();
        assert!(day.contains(9 * 60 + 30) && !day.contains(17 * 60) && !day.contains(60));
        assert_eq!(day.label(), "09:30–17:00");
        for bad in [
            "",
            "21:00",
            "25:00-08:00",
            "21:60-08:00",
            "21:00-21:00",
            "211:00-08:00",
        ] {
            assert_eq!(Window::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn prefixes_are_read_line_by_line_with_every_problem_named() {
        let p = parse_prefixes("+1 21:00-08:00\n\n+44 none\n").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[1].window, None);
        let rules = Rules {
            quiet_by_prefix: p,
            ..Rules::default()
        };
        assert_eq!(
            parse_prefixes(&rules.prefixes_text()).unwrap(),
            rules.quiet_by_prefix
        );
        let e = parse_prefixes("1 21:00-08:00\n+1 late\n+44 none\n+44 none").unwrap_err();
        assert_eq!(e.len(), 3, "{e:?}");
        assert!(e[0].starts_with("Line 1") && e[1].starts_with("Line 2") && e[2].contains("twice"));
        let many: String = (0..60).map(|i| format!("+{} none\n", 100 + i)).collect();
        assert!(parse_prefixes(&many).unwrap_err()[0].contains("At most"));
    }

    #[test]
    fn changes_name_what_differs() {
        let old = Rules::default();
        let new = Rules {
            time_zone: "Europe/Berlin".into(),
            quiet: None,
            ..Rules::default()
        };
        assert_eq!(
            new.changes_from(&old),
            "time zone UTC → Europe/Berlin, quiet hours 21:00–08:00 → off"
        );
        assert_eq!(old.changes_from(&old), "");
    }
}
