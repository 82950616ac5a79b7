//! What a broadcast costs: the workspace's price table (per message, per SMS segment, and for
//! WhatsApp per template category and phone prefix; empty by default) and the sums the
//! pre-flight and the results show. Money is kept in millionths of the currency's unit
//! (`0.0079` is 7,900), so a sum of a million messages is exact.

use serde::{Deserialize, Serialize};

/// Millionths of the currency's unit.
pub type Micros = i64;

/// One price: for `kind` (`sms`, `whatsapp`, `email`, `telegram`), for WhatsApp's template
/// `category` (`marketing`, `utility`, `authentication`, `service`), for phone numbers
/// starting with `prefix` (none: every other number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Price {
    pub kind: String,
    #[serde(default)]
    pub category: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
    /// Per message; per segment for SMS.
    pub micros: Micros,
}

/// The price table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prices {
    pub currency: String,
    pub lines: Vec<Price>,
}

impl Default for Prices {
    fn default() -> Self {
        Prices {
            currency: "USD".into(),
            lines: Vec::new(),
        }
    }
}

/// WhatsApp's pricing categories, as Meta names them in its status webhooks.
pub const CATEGORIES: [&str; 4] = ["marketing", "utility", "authentication", "service"];

/// Kinds of channel a price may name.
pub const PRICED_KINDS: [&str; 4] = ["sms", "whatsapp", "email", "telegram"];

/// Most lines in the table; most millionths one message may cost (1,000 units).
pub const MAX_LINES: usize = 200;
const MAX_MICROS: Micros = 1_000_000_000;

impl Prices {
    /// The price for `kind` (and `category` on WhatsApp) of a message to `address`: the line
    /// with the longest matching prefix, else the one without a prefix.
    pub fn find(&self, kind: &str, category: Option<&str>, address: &str) -> Option<&Price> {
        self.lines
            .iter()
            .filter(|p| p.kind == kind && (kind != "whatsapp" || p.category.as_deref() == category))
            .filter(|p| p.prefix.as_deref().is_none_or(|x| address.starts_with(x)))
            .max_by_key(|p| p.prefix.as_ref().map_or(0, |x| x.len()))
    }

    /// Whether any line prices `kind`.
    pub fn prices(&self, kind: &str) -> bool {
        self.lines.iter().any(|p| p.kind == kind)
    }

    /// The longest prefix any line of `kind` names (how much of an address decides its price).
    pub fn prefix_len(&self, kind: &str) -> usize {
        self.lines
            .iter()
            .filter(|p| p.kind == kind)
            .filter_map(|p| p.prefix.as_ref().map(|x| x.len()))
            .max()
            .unwrap_or(0)
    }

    /// The table as the Settings page's text area shows it, one price per line:
    /// `whatsapp marketing +49 0.1365`, `sms 0.0079`.
    pub fn text(&self) -> String {
        self.lines
            .iter()
            .map(|p| {
                let mut words = vec![p.kind.clone()];
                words.extend(p.category.clone());
                words.extend(p.prefix.clone());
                words.push(amount(p.micros));
                words.join(" ")
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Reads the table's text, one price per line (`kind [category] [+prefix] amount`); every
/// problem at once, each naming its line.
pub fn parse_prices(text: &str) -> Result<Vec<Price>, Vec<String>> {
    let (mut out, mut errors): (Vec<Price>, Vec<String>) = (Vec::new(), Vec::new());
    for (i, line) in text.lines().enumerate().take(MAX_LINES + 1) {
        let words: Vec<&str> = line.split_whitespace().take(5).collect();
        if words.is_empty() {
            continue;
        }
        match parse_line(&words) {
            Ok(p) if out.iter().any(|o| same_slot(o, &p)) => {
                errors.push(format!("Line {}: that price is listed twice.", i + 1))
            }
            Ok(p) => out.push(p),
            Err(e) => errors.push(format!("Line {}: {e}", i + 1)),
        }
    }
    if out.len() + errors.len() > MAX_LINES {
        errors.push(format!("At most {MAX_LINES} prices."));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn same_slot(a: &Price, b: &Price) -> bool {
    a.kind == b.kind && a.category == b.category && a.prefix == b.prefix
}

fn parse_line(words: &[&str]) -> Result<Price, String> {
    let kind = words[0].to_ascii_lowercase();
    if !PRICED_KINDS.contains(&kind.as_str()) {
        return Err(format!(
            "start with sms, whatsapp, email or telegram, not “{}”.",
            words[0].chars().take(20).collect::<String>()
        ));
    }
    let mut rest = &words[1..];
    let mut category = None;
    if kind == "whatsapp" {
        let c = rest
            .first()
            .map(|c| c.to_ascii_lowercase())
            .unwrap_or_default();
        if !CATEGORIES.contains(&c.as_str()) {
            return Err(
                "a WhatsApp price names its category: marketing, utility, authentication or service."
                    .into(),
            );
        }
        category = Some(c);
        rest = &rest[1..];
    }
    let mut prefix = None;
    if let [p, _] = rest {
        let digits = p.strip_prefix('+').unwrap_or("");
        if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("“{p}” is not a phone prefix like +1 or +44."));
        }
        prefix = Some(p.to_string());
        rest = &rest[1..];
    }
    let [amount] = rest else {
        return Err("write a price as “sms 0.0079” or “whatsapp marketing +49 0.1365”.".into());
    };
    let micros = parse_amount(amount)
        .filter(|m| *m <= MAX_MICROS)
        .ok_or_else(|| {
            format!("“{amount}” is not an amount like 0.0079 (at most 1000, six decimals).")
        })?;
    Ok(Price {
        kind,
        category,
        prefix,
        micros,
    })
}

/// `0.0079` as millionths; up to six decimals, never negative.
pub fn parse_amount(text: &str) -> Option<Micros> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || whole.len() > 6 || frac.len() > 6 || !digits(whole) || !digits(frac) {
        return None;
    }
    let frac: Micros = format!("{frac:0<6}").parse().ok()?;
    Some(whole.parse::<Micros>().ok()? * 1_000_000 + frac)
}

/// A price as written: `0.0079`, `0.025`, `1.00` (at least two decimals, no trailing zeros
/// beyond them).
pub fn amount(micros: Micros) -> String {
    let frac = format!("{:06}", micros.rem_euclid(1_000_000));
    let frac = frac.trim_end_matches('0');
    format!("{}.{frac:0<2}", micros.div_euclid(1_000_000))
}

/// A sum as money: rounded to cents, with thousands separated (`1,312.40`).
pub fn money(micros: Micros) -> String {
    let cents = (micros + 5_000).div_euclid(10_000);
    format!(
        "{}.{:02}",
        super::results::thousands(cents.div_euclid(100)),
        cents.rem_euclid(100)
    )
}

/// One part of a sum: `count` messages of `units` each (SMS segments; 1 elsewhere) at
/// `micros` a unit, named `label` (`WhatsApp marketing +49`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostLine {
    pub label: String,
    pub count: i64,
    pub units: i64,
    pub micros: Micros,
    /// Priced from the provider's own report (WhatsApp's category, Twilio's price).
    #[serde(default)]
    pub reported: bool,
    /// What the provider billed for these, all together (Twilio's `price`), instead of a
    /// price each.
    #[serde(default)]
    pub billed: Option<Micros>,
}

impl CostLine {
    pub fn total(&self) -> Micros {
        self.billed.unwrap_or(self.count * self.units * self.micros)
    }

    /// `SMS 2,100 × 2 segments × 0.0079`, or `SMS 2,100 as billed 33.18`.
    pub fn text(&self) -> String {
        let count = super::results::thousands(self.count);
        if let Some(b) = self.billed {
            return format!("{} {count} as billed {}", self.label, amount(b));
        }
        if self.units == 1 {
            format!("{} {count} × {}", self.label, amount(self.micros))
        } else {
            format!(
                "{} {count} × {} segments × {}",
                self.label,
                self.units,
                amount(self.micros)
            )
        }
    }
}

/// A broadcast's cost, estimated or so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cost {
    pub currency: String,
    pub lines: Vec<CostLine>,
    /// Channels (by how they are named) with messages the table has no price for, and how many.
    pub unpriced: Vec<(String, i64)>,
}

impl Cost {
    pub fn total(&self) -> Micros {
        self.lines.iter().map(CostLine::total).sum()
    }

    /// `≈ 312.40 USD: WhatsApp marketing 9,800 × 0.025; SMS 2,100 × 2 segments × 0.0079`,
    /// and what has no price.
    pub fn text(&self) -> String {
        let parts: Vec<String> = self.lines.iter().map(CostLine::text).collect();
        let mut out = format!("≈ {} {}", money(self.total()), self.currency);
        if !parts.is_empty() {
            out.push_str(": ");
            out.push_str(&parts.join("; "));
        }
        out.push('.');
        for (what, n) in &self.unpriced {
            out.push_str(&format!(
                " {} on {what} have no price in the table.",
                super::results::thousands(*n)
            ));
        }
        out
    }

    /// Adds `count` messages priced by `price` (or to what has no price, under `channel`).
    pub fn add(
        &mut self,
        label: String,
        count: i64,
        units: i64,
        price: Option<Micros>,
        reported: bool,
    ) {
        if count == 0 {
            return;
        }
        let Some(micros) = price else {
            match self.unpriced.iter_mut().find(|(l, _)| *l == label) {
                Some((_, n)) => *n += count,
                None => self.unpriced.push((label, count)),
            }
            return;
        };
        let same = |l: &&mut CostLine| {
            l.label == label && l.units == units && l.micros == micros && l.reported == reported
        };
        match self.lines.iter_mut().find(same) {
            Some(l) => l.count += count,
            None => self.lines.push(CostLine {
                label,
                count,
                units,
                micros,
                reported,
                billed: None,
            }),
        }
    }

    /// Adds `count` messages for which the provider billed `billed` in all.
    pub fn add_billed(&mut self, label: String, count: i64, billed: Micros) {
        if count == 0 {
            return;
        }
        match self
            .lines
            .iter_mut()
            .find(|l| l.label == label && l.billed.is_some())
        {
            Some(l) => {
                l.count += count;
                l.billed = Some(l.billed.unwrap_or(0) + billed);
            }
            None => self.lines.push(CostLine {
                label,
                count,
                units: 1,
                micros: 0,
                reported: true,
                billed: Some(billed),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_read_and_written_exactly() {
        assert_eq!(parse_amount("0.0079"), Some(7_900));
        assert_eq!(parse_amount("0.025"), Some(25_000));
        assert_eq!(parse_amount("12"), Some(12_000_000));
        for bad in ["", ".5", "-1", "1e3", "0.0000001", "1,5", "0.00 79"] {
            assert_eq!(parse_amount(bad), None, "{bad}");
        }
        assert_eq!(amount(7_900), "0.0079");
        assert_eq!(amount(25_000), "0.025");
        assert_eq!(amount(1_000_000), "1.00");
        assert_eq!(money(312_404_999), "312.40");
        assert_eq!(money(312_405_000), "312.41");
        assert_eq!(money(1_312_400_000), "1,312.40");
    }

    #[test]
    fn the_table_is_read_line_by_line_and_the_longest_prefix_wins() {
        let lines = parse_prices(
            "whatsapp marketing 0.025\nwhatsapp marketing +49 0.1365\n\nsms 0.0079\nsms +1 0.0083\nemail 0.0001",
        )
        .unwrap();
        let p = Prices {
            currency: "USD".into(),
            lines,
        };
        assert_eq!(
            p.find("whatsapp", Some("marketing"), "+4917012")
                .unwrap()
                .micros,
            136_500
        );
        assert_eq!(
            p.find("whatsapp", Some("marketing"), "+3312")
                .unwrap()
                .micros,
            25_000
        );
        assert_eq!(p.find("whatsapp", Some("utility"), "+3312"), None);
        assert_eq!(p.find("sms", None, "+1555").unwrap().micros, 8_300);
        assert_eq!(p.find("telegram", None, ""), None);
        assert_eq!(p.prefix_len("sms"), 2);
        assert_eq!(parse_prices(&p.text()).unwrap(), p.lines);
        let e =
            parse_prices("fax 1\nwhatsapp 0.1\nsms 49 0.1\nsms -1\nsms 0.1\nsms 0.2").unwrap_err();
        assert_eq!(e.len(), 5, "{e:?}");
        assert!(
            e[0].starts_with("Line 1") && e[4].contains("twice"),
            "{e:?}"
        );
    }

    #[test]
    fn a_cost_reads_as_the_issue_writes_it() {
        let mut c = Cost {
            currency: "USD".into(),
            ..Cost::default()
        };
        c.add("WhatsApp marketing".into(), 9_800, 1, Some(25_000), false);
        c.add("SMS".into(), 2_000, 2, Some(7_900), false);
        c.add("SMS".into(), 100, 2, Some(7_900), false);
        c.add("Telegram".into(), 40, 1, None, false);
        c.add_billed("SMS as Twilio".into(), 0, 0);
        assert_eq!(c.lines.len(), 2, "nothing billed for none");
        assert_eq!(c.total(), 9_800 * 25_000 + 2_100 * 2 * 7_900);
        assert_eq!(
            c.text(),
            "≈ 278.18 USD: WhatsApp marketing 9,800 × 0.025; SMS 2,100 × 2 segments × 0.0079. 40 on Telegram have no price in the table."
        );
    }
}
