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
}
