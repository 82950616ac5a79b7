//! WhatsApp message templates as Meta's Message Templates API describes them
//! (`GET /{waba-id}/message_templates`): what Herald keeps of each, and what a broadcast
//! must fill in (the body's and header's parameters, positional `{{1}}` or named `{{name}}`).

use serde::{Deserialize, Serialize};

/// One template in one language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub name: String,
    /// Meta's language code (`en_US`, `de`).
    pub language: String,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION`.
    pub category: String,
    /// `APPROVED`, `PENDING`, `REJECTED`, `PAUSED` or `DISABLED`.
    pub status: String,
    /// Meta's quality rating (`GREEN`, `YELLOW`, `RED`, `UNKNOWN`).
    pub quality: String,
    /// `POSITIONAL` or `NAMED`.
    pub parameter_format: String,
    /// The components (header, body, footer, buttons) as Meta sent them, JSON.
    pub components: String,
}

impl Template {
    /// A template from one entry of the Message Templates API's `data`; `None` when it lacks
    /// a name or a language.
    pub fn from_graph(v: &serde_json::Value) -> Option<Template> {
        let text = |key: &str| v[key].as_str().unwrap_or_default().to_string();
        let (name, language) = (text("name"), text("language"));
        if name.is_empty() || language.is_empty() {
            return None;
        }
        Some(Template {
            name,
            language,
            category: text("category").to_uppercase(),
            status: text("status").to_uppercase(),
            quality: v["quality_score"]["score"]
                .as_str()
                .unwrap_or("UNKNOWN")
                .to_uppercase(),
            parameter_format: match v["parameter_format"].as_str() {
                Some(f) if f.eq_ignore_ascii_case("named") => "NAMED".into(),
                _ => "POSITIONAL".into(),
            },
            components: v["components"].to_string(),
        })
    }

    /// Whether a broadcast may send it now.
    pub fn approved(&self) -> bool {
        self.status == "APPROVED"
    }

    fn component(&self, kind: &str) -> Option<serde_json::Value> {
        let all: serde_json::Value = serde_json::from_str(&self.components).ok()?;
        all.as_array()?
            .iter()
            .find(|c| {
                c["type"]
                    .as_str()
                    .is_some_and(|t| t.eq_ignore_ascii_case(kind))
            })
            .cloned()
    }

    /// The body's text, with its `{{…}}` placeholders.
    pub fn body(&self) -> String {
        self.component("BODY")
            .and_then(|c| c["text"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// The body's parameters in order: `1`, `2`, … or their names.
    pub fn body_parameters(&self) -> Vec<String> {
        placeholders(&self.body())
    }

    /// A header's format (`TEXT`, `IMAGE`, `VIDEO`, `DOCUMENT`, `LOCATION`), if it has one.
    pub fn header_format(&self) -> Option<String> {
        self.component("HEADER")
            .and_then(|c| c["format"].as_str().map(str::to_uppercase))
    }
}

/// The distinct `{{…}}` placeholders of `text`, in the order they first appear.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim().to_string();
        if !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !out.contains(&name)
        {
            out.push(name);
        }
        rest = &after[end + 2..];
    }
    out
}

/// Where a template parameter's text comes from, per recipient.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", content = "value", rename_all = "snake_case")]
pub enum ParamSource {
    /// A customer field: `first_name`, `name`, `phone` or `email`.
    Field(String),
    /// The same text for everyone.
    Text(String),
}

/// The customer fields a parameter can take, with their labels.
pub const PARAM_FIELDS: &[(&str, &str)] = &[
    ("first_name", "First name"),
    ("name", "Full name"),
    ("phone", "Phone"),
    ("email", "Email"),
];

/// One parameter of the chosen template: its placeholder, where its text comes from, and the
/// text used when the customer has none (WhatsApp refuses an empty parameter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParamChoice {
    pub name: String,
    pub source: ParamSource,
    #[serde(default)]
    pub fallback: String,
}

/// The approved template a broadcast sends on WhatsApp, and how its parameters are filled.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TemplateChoice {
    pub name: String,
    pub language: String,
    #[serde(default)]
    pub params: Vec<ParamChoice>,
}

impl TemplateChoice {
    /// What keeps it from going with `template` (as synced): each problem in plain words.
    pub fn problems(&self, template: Option<&Template>) -> Vec<String> {
        let Some(t) = template else {
            return vec![format!(
                "The template {} ({}) is not among the channel's templates: read them again or choose another.",
                self.name, self.language
            )];
        };
        let mut out = Vec::new();
        if !t.approved() {
            out.push(format!(
                "The template {} is {}: only an approved template can be sent.",
                t.name,
                t.status.to_lowercase()
            ));
        }
        for p in t.body_parameters() {
            match self.params.iter().find(|c| c.name == p) {
                None => out.push(format!("Choose what fills {{{{{p}}}}}.")),
                Some(c) => match &c.source {
                    ParamSource::Text(text) if text.trim().is_empty() => {
                        out.push(format!("Type the text for {{{{{p}}}}}."))
                    }
                    ParamSource::Field(f) if !PARAM_FIELDS.iter().any(|(k, _)| k == f) => {
                        out.push(format!("Choose a customer field for {{{{{p}}}}}."))
                    }
                    ParamSource::Field(_) if c.fallback.trim().is_empty() => out.push(format!(
                        "Give {{{{{p}}}}} a fallback for customers without that field: WhatsApp refuses an empty parameter."
                    )),
                    _ => {}
                },
            }
        }
        out
    }

    /// Each parameter's text for one customer (`field` gives their fields): the field, or
    /// the fallback when they have none.
    pub fn values(&self, field: &dyn Fn(&str) -> Option<String>) -> Vec<(String, String)> {
        self.params
            .iter()
            .map(|p| {
                let text = match &p.source {
                    ParamSource::Text(t) => t.trim().to_string(),
                    ParamSource::Field(f) => field(f)
                        .map(|v| v.trim().to_string())
                        .filter(|v| !v.is_empty())
                        .unwrap_or_else(|| p.fallback.trim().to_string()),
                };
                (p.name.clone(), text)
            })
            .collect()
    }
}

/// `text` with its `{{…}}` placeholders filled from `values` (a preview of the body).
pub fn fill(text: &str, values: &[(String, String)]) -> String {
    let mut out = text.to_string();
    for (name, value) in values {
        for spelled in [format!("{{{{{name}}}}}"), format!("{{{{ {name} }}}}")] {
            out = out.replace(&spelled, value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_read_as_meta_lists_them() {
        let v = serde_json::json!({
            "name": "spring_offer", "language": "en_US", "status": "APPROVED",
            "category": "MARKETING", "parameter_format": "POSITIONAL", "id": "1",
            "quality_score": { "score": "GREEN" },
            "components": [
                { "type": "HEADER", "format": "IMAGE" },
                { "type": "BODY", "text": "Hi {{1}}, {{2}} off until {{3}}. Hi again {{1}}!" },
                { "type": "FOOTER", "text": "Reply STOP to opt out" }
            ]
        });
        let t = Template::from_graph(&v).unwrap();
        assert_eq!(
            (t.name.as_str(), t.language.as_str()),
            ("spring_offer", "en_US")
        );
        assert!(t.approved());
        assert_eq!(t.quality, "GREEN");
        assert_eq!(t.body_parameters(), vec!["1", "2", "3"]);
        assert_eq!(t.header_format().as_deref(), Some("IMAGE"));
        let named = serde_json::json!({
            "name": "order", "language": "de", "status": "PAUSED", "category": "UTILITY",
            "parameter_format": "NAMED",
            "components": [{ "type": "BODY", "text": "Order {{order_id}} for {{ first_name }}" }]
        });
        let t = Template::from_graph(&named).unwrap();
        assert_eq!(t.body_parameters(), vec!["order_id", "first_name"]);
        assert!(!t.approved());
        assert_eq!(t.quality, "UNKNOWN");
        assert!(Template::from_graph(&serde_json::json!({ "name": "x" })).is_none());
        assert_eq!(placeholders("{{}} {{a b}} {{ok}} {{unclosed"), vec!["ok"]);
    }

    #[test]
    fn a_choice_names_what_is_missing_and_fills_in_fallbacks() {
        let t = Template::from_graph(&serde_json::json!({
            "name": "spring", "language": "en_US", "status": "APPROVED", "category": "MARKETING",
            "components": [{ "type": "BODY", "text": "Hi {{1}}, {{2}} off" }]
        }))
        .unwrap();
        let mut c = TemplateChoice {
            name: "spring".into(),
            language: "en_US".into(),
            params: vec![ParamChoice {
                name: "1".into(),
                source: ParamSource::Field("first_name".into()),
                fallback: "".into(),
            }],
        };
        let p = c.problems(Some(&t));
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("fallback") && p[1].contains("{{2}}"), "{p:?}");
        c.params[0].fallback = "there".into();
        c.params.push(ParamChoice {
            name: "2".into(),
            source: ParamSource::Text("20%".into()),
            fallback: String::new(),
        });
        assert!(c.problems(Some(&t)).is_empty());
        assert!(c.problems(None)[0].contains("not among"));
        let values = c.values(&|f| (f == "first_name").then(|| "Ann".to_string()));
        assert_eq!(fill(&t.body(), &values), "Hi Ann, 20% off");
        let values = c.values(&|_| None);
        assert_eq!(fill(&t.body(), &values), "Hi there, 20% off");
    }
}
