//! Editing one customer: the form's fields as typed, and their validation (parse, don't
//! validate: what comes out is a customer that can be stored).

use serde::{Deserialize, Serialize};

/// The edit form's fields exactly as typed (kept on errors so nothing is lost).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerForm {
    pub name: String,
    pub phone: String,
    pub email: String,
    pub whatsapp_id: String,
    pub telegram_chat_id: String,
    /// Comma-separated tag names.
    pub tags: String,
    pub groups: Vec<String>,
    /// A staff id, or empty for nobody.
    pub assignee: String,
    pub time_zone: String,
    pub opted_out: bool,
    /// The customer's version when the form was opened: a save is refused if it changed since.
    #[serde(default)]
    pub version: i64,
}

/// What the edit page needs: the stored values as a form, and the choices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerEdit {
    pub id: i64,
    pub form: CustomerForm,
    pub all_groups: Vec<String>,
    /// Staff accounts as (id, name).
    pub staff: Vec<(i64, String)>,
    /// Known IANA time zone names, for suggestions.
    pub zones: Vec<String>,
    pub can_edit: bool,
    /// Channel kinds the customer opted out of by message (e.g. "sms since 26 Nov 2026").
    pub channel_opt_outs: Vec<String>,
    /// The customer's word on each kind of channel and purpose.
    #[serde(default)]
    pub consents: Vec<super::consent::ConsentLine>,
}

/// A customer ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidCustomer {
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub whatsapp_id: Option<String>,
    pub telegram_chat_id: Option<String>,
    pub tags: Vec<String>,
    pub groups: Vec<String>,
    pub assignee_id: Option<i64>,
    pub time_zone: String,
    pub opted_out: bool,
}

/// `s` trimmed, or `None` when that leaves nothing.
fn optional(s: &str) -> Option<&str> {
    Some(s.trim()).filter(|s| !s.is_empty())
}

/// A phone number in E.164 form: `+`, then 7 to 15 digits (spaces, dashes, dots and brackets
/// typed between them are dropped).
pub fn parse_phone(s: &str) -> Result<String, String> {
    let s = s.trim();
    let digits: String = s
        .chars()
        .skip(1)
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
        .collect();
    if s.starts_with('+')
        && (7..=15).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
    {
        Ok(format!("+{digits}"))
    } else {
        Err(format!(
            "“{s}” is not a phone number: use + and the country code, e.g. +44 20 7946 0958."
        ))
    }
}

/// A WhatsApp id: the phone number's 7 to 15 digits (a leading `+` is dropped).
pub fn parse_whatsapp_id(s: &str) -> Result<String, String> {
    let w = s.trim().trim_start_matches('+');
    if (7..=15).contains(&w.len()) && w.bytes().all(|b| b.is_ascii_digit()) {
        Ok(w.to_string())
    } else {
        Err(format!(
            "“{w}” is not a WhatsApp id: use the phone number's digits, without +."
        ))
    }
}

/// A Telegram chat id: a whole number (group chats are negative).
pub fn parse_telegram_chat_id(s: &str) -> Result<String, String> {
    let t = s.trim();
    match t.parse::<i64>() {
        Ok(_) => Ok(t.to_string()),
        Err(_) => Err(format!(
            "“{t}” is not a Telegram chat id: it is a whole number."
        )),
    }
}

/// An email address, lowercased: one `@`, something before it, a dotted domain after it.
pub fn parse_email(s: &str) -> Result<String, String> {
    let s = s.trim().to_lowercase();
    let ok = s.len() <= 254
        && !s.chars().any(|c| c.is_whitespace() || c == ',' || c == ';')
        && match s.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            }
            None => false,
        };
    if ok {
        Ok(s)
    } else {
        Err(format!("“{s}” is not an email address."))
    }
}

impl CustomerForm {
    /// Checks every field; all problems at once, each with the field it belongs to. The time
    /// zone's name is checked by the server (the zone database stays off the browser).
    pub fn validate(&self) -> Result<ValidCustomer, Vec<(&'static str, String)>> {
        let mut errors = Vec::new();
        let name = self.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 200 {
            errors.push(("name", "Enter a name of up to 200 characters.".to_string()));
        }
        let phone = optional(&self.phone)
            .map(parse_phone)
            .transpose()
            .unwrap_or_else(|e| {
                errors.push(("phone", e));
                None
            });
        let email = optional(&self.email)
            .map(parse_email)
            .transpose()
            .unwrap_or_else(|e| {
                errors.push(("email", e));
                None
            });
        let whatsapp_id = optional(&self.whatsapp_id)
            .map(parse_whatsapp_id)
            .transpose()
            .unwrap_or_else(|e| {
                errors.push(("whatsapp_id", e));
                None
            });
        let telegram_chat_id = optional(&self.telegram_chat_id)
            .map(parse_telegram_chat_id)
            .transpose()
            .unwrap_or_else(|e| {
                errors.push(("telegram_chat_id", e));
                None
            });
        let mut tags: Vec<String> = Vec::new();
        for t in self
            .tags
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            if t.chars().count() > 100 {
                errors.push((
                    "tags",
                    format!("The tag “{t}” is longer than 100 characters."),
                ));
            } else if !tags.iter().any(|x| x == t) {
                tags.push(t.to_string());
            }
        }
        let assignee_id = match self.assignee.trim() {
            "" => None,
            a => match a.parse::<i64>() {
                Ok(id) => Some(id),
                Err(_) => {
                    errors.push(("assignee", "Choose an assignee from the list.".into()));
                    None
                }
            },
        };
        let time_zone = self.time_zone.trim().to_string();
        if time_zone.is_empty() {
            errors.push(("time_zone", "Choose a time zone.".into()));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(ValidCustomer {
            name,
            phone,
            email,
            whatsapp_id,
            telegram_chat_id,
            tags,
            groups: self.groups.clone(),
            assignee_id,
            time_zone,
            opted_out: self.opted_out,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form() -> CustomerForm {
        CustomerForm {
            name: " Ada Lovelace ".into(),
            phone: "+44 (20) 7946-0958".into(),
            email: "Ada@Example.COM".into(),
            tags: "VIP, New ,VIP,,".into(),
            assignee: "2".into(),
            time_zone: "Europe/London".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_good_form_is_normalised() {
        let v = form().validate().unwrap();
        assert_eq!(v.name, "Ada Lovelace");
        assert_eq!(v.phone.as_deref(), Some("+442079460958"));
        assert_eq!(v.email.as_deref(), Some("ada@example.com"));
        assert_eq!(v.tags, vec!["VIP", "New"]);
        assert_eq!(v.assignee_id, Some(2));
        assert_eq!(v.whatsapp_id, None);
    }

    #[test]
    fn every_bad_field_is_reported_at_once() {
        let f = CustomerForm {
            name: "  ".into(),
            phone: "12345".into(),
            email: "nobody@nowhere".into(),
            whatsapp_id: "+4479".into(),
            telegram_chat_id: "abc".into(),
            assignee: "x".into(),
            time_zone: "".into(),
            ..Default::default()
        };
        let fields: Vec<&str> = f
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(
            fields,
            vec![
                "name",
                "phone",
                "email",
                "whatsapp_id",
                "telegram_chat_id",
                "assignee",
                "time_zone"
            ]
        );
    }

    #[test]
    fn phones_and_emails_parse_strictly() {
        assert_eq!(parse_phone("+1 555 010 0000"), Ok("+15550100000".into()));
        for bad in [
            "5550100",
            "+12",
            "+1234567890123456",
            "+44 20 ABCD",
            "++4420794609",
        ] {
            assert!(parse_phone(bad).is_err(), "{bad}");
        }
        for bad in [
            "a@b",
            "@b.com",
            "a@.com",
            "a@b.com.",
            "a b@c.com",
            "a@b@c.com",
            "a@b.com,c@d.com",
        ] {
            assert!(parse_email(bad).is_err(), "{bad}");
        }
    }
}
