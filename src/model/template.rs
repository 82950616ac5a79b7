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

    /// A text header's text, with its placeholder (Meta allows one).
    pub fn header_text(&self) -> String {
        match self.header_format().as_deref() {
            Some("TEXT") => self
                .component("HEADER")
                .and_then(|c| c["text"].as_str().map(str::to_string))
                .unwrap_or_default(),
            _ => String::new(),
        }
    }

    /// The media a header needs at send time: `image`, `video` or `document` (Meta's
    /// parameter type), if the header is media.
    pub fn header_media(&self) -> Option<&'static str> {
        match self.header_format().as_deref() {
            Some("IMAGE") => Some("image"),
            Some("VIDEO") => Some("video"),
            Some("DOCUMENT") => Some("document"),
            _ => None,
        }
    }

    /// The footer's text.
    pub fn footer(&self) -> String {
        self.component("FOOTER")
            .and_then(|c| c["text"].as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// The buttons, in Meta's order (their index is what a send names).
    pub fn buttons(&self) -> Vec<Button> {
        let Some(c) = self.component("BUTTONS") else {
            return Vec::new();
        };
        c["buttons"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(index, b)| Button {
                index,
                kind: b["type"].as_str().unwrap_or_default().to_uppercase(),
                text: b["text"].as_str().unwrap_or_default().to_string(),
                url: b["url"].as_str().unwrap_or_default().to_string(),
            })
            .collect()
    }

    /// Everything a send fills in, in the order the wizard asks: the header's parameter, the
    /// body's, each dynamic URL button's suffix, each quick reply's payload.
    pub fn slots(&self) -> Vec<Slot> {
        let mut out: Vec<Slot> = placeholders(&self.header_text())
            .into_iter()
            .map(|p| Slot {
                key: format!("header.{p}"),
                label: format!("Header {{{{{p}}}}}"),
                required: true,
            })
            .collect();
        out.extend(self.body_parameters().into_iter().map(|p| Slot {
            label: format!("{{{{{p}}}}}"),
            key: p,
            required: true,
        }));
        for b in self.buttons() {
            if b.kind == "URL" && !placeholders(&b.url).is_empty() {
                out.push(Slot {
                    key: format!("url.{}", b.index),
                    label: format!("the end of the “{}” button's link ({})", b.text, b.url),
                    required: true,
                });
            } else if b.kind == "QUICK_REPLY" {
                out.push(Slot {
                    key: format!("reply.{}", b.index),
                    label: format!("the “{}” quick reply's payload (optional)", b.text),
                    required: false,
                });
            }
        }
        out
    }
}

/// One button of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Button {
    pub index: usize,
    /// `URL`, `QUICK_REPLY`, `PHONE_NUMBER`, `COPY_CODE`, …
    pub kind: String,
    pub text: String,
    /// A URL button's link, with a `{{1}}` at its end when the send completes it.
    pub url: String,
}

/// One thing a template send fills in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// How a choice names it: the body's placeholder (`1`, `first_name`), `header.1`, a URL
    /// button's `url.1`, a quick reply's `reply.0` (by the button's index).
    pub key: String,
    pub label: String,
    /// WhatsApp refuses the message without it (a quick reply's payload may be left out).
    pub required: bool,
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
    /// Each slot's choice ([`Template::slots`]; `name` is the slot's key).
    #[serde(default)]
    pub params: Vec<ParamChoice>,
    /// A media header's file: the id of one of the broadcast's attachments.
    #[serde(default)]
    pub header_media: Option<String>,
    /// Customers who wrote to the channel's number within 24 hours get the broadcast's own
    /// text (and files) instead of the template.
    #[serde(default)]
    pub free_text_in_window: bool,
}

/// Whether `file` can be a template's `media` header (`image`, `video`, `document`): a file
/// WhatsApp carries as that kind ([`super::media::whatsapp`], sizes included), a document
/// header taking a PDF only.
pub fn fits_header(media: &str, file: &super::media::AttachmentRef) -> bool {
    match super::media::whatsapp(file) {
        super::media::Carry::Native(kind) => kind == media,
        super::media::Carry::Document => media == "document" && file.mime == "application/pdf",
        super::media::Carry::Cannot(_) => false,
    }
}

impl TemplateChoice {
    /// What keeps it from going with `template` (as synced), the broadcast carrying
    /// `attachments`: each problem in plain words.
    pub fn problems(
        &self,
        template: Option<&Template>,
        attachments: &[super::media::AttachmentRef],
    ) -> Vec<String> {
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
        if let Some(media) = t.header_media() {
            let file = self
                .header_media
                .as_ref()
                .and_then(|id| attachments.iter().find(|a| a.id == *id));
            match file {
                None => out.push(format!(
                    "Choose the {media} for the template's header from the broadcast's attachments{}.",
                    if attachments.iter().any(|a| fits_header(media, a)) {
                        ""
                    } else {
                        " (attach one on step 1 first)"
                    }
                )),
                Some(f) if !fits_header(media, f) => out.push(format!(
                    "The header takes {}: {} is not one.",
                    match media {
                        "image" => "a JPEG or PNG image up to 5 MB",
                        "video" => "an MP4 or 3GPP video up to 16 MB",
                        _ => "a PDF document up to 100 MB",
                    },
                    f.name
                )),
                Some(_) => {}
            }
        }
        for slot in t.slots() {
            let p = &slot.label;
            match self.params.iter().find(|c| c.name == slot.key) {
                None if slot.required => out.push(format!("Choose what fills {p}.")),
                None => {}
                Some(c) => match &c.source {
                    ParamSource::Text(text) if text.trim().is_empty() && slot.required => {
                        out.push(format!("Type the text for {p}."))
                    }
                    ParamSource::Field(f) if !PARAM_FIELDS.iter().any(|(k, _)| k == f) => {
                        out.push(format!("Choose a customer field for {p}."))
                    }
                    ParamSource::Field(_) if c.fallback.trim().is_empty() => out.push(format!(
                        "Give {p} a fallback for customers without that field: WhatsApp refuses an empty parameter."
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

/// The template as WhatsApp shows it to one customer: the header (its text, or the file's
/// name in brackets), the body, the footer and the buttons' labels, one per line.
pub fn render(t: &Template, values: &[(String, String)], header_file: Option<&str>) -> Vec<String> {
    let header_values: Vec<(String, String)> = values
        .iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("header.")
                .map(|k| (k.to_string(), v.clone()))
        })
        .collect();
    let mut out = Vec::new();
    if let Some(media) = t.header_media() {
        out.push(format!(
            "[{media}: {}]",
            header_file.unwrap_or("none chosen")
        ));
    } else if !t.header_text().is_empty() {
        out.push(fill(&t.header_text(), &header_values));
    }
    out.push(fill(&t.body(), values));
    if !t.footer().is_empty() {
        out.push(t.footer());
    }
    let buttons: Vec<String> = t
        .buttons()
        .into_iter()
        .map(|b| {
            let link = values
                .iter()
                .find(|(k, _)| *k == format!("url.{}", b.index))
                .map(|(_, v)| format!(" → {}", fill(&b.url, &[("1".into(), v.clone())])))
                .unwrap_or_default();
            format!("[{}{link}]", b.text)
        })
        .collect();
    if !buttons.is_empty() {
        out.push(buttons.join(" "));
    }
    out
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
            ..TemplateChoice::default()
        };
        let p = c.problems(Some(&t), &[]);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("fallback") && p[1].contains("{{2}}"), "{p:?}");
        c.params[0].fallback = "there".into();
        c.params.push(ParamChoice {
            name: "2".into(),
            source: ParamSource::Text("20%".into()),
            fallback: String::new(),
        });
        assert!(c.problems(Some(&t), &[]).is_empty());
        assert!(c.problems(None, &[])[0].contains("not among"));
        let values = c.values(&|f| (f == "first_name").then(|| "Ann".to_string()));
        assert_eq!(fill(&t.body(), &values), "Hi Ann, 20% off");
        let values = c.values(&|_| None);
        assert_eq!(fill(&t.body(), &values), "Hi there, 20% off");
    }

    #[test]
    fn headers_and_buttons_are_slots_and_render_as_whatsapp_shows_them() {
        use crate::model::media::AttachmentRef;
        let t = Template::from_graph(&serde_json::json!({
            "name": "sale", "language": "en", "status": "APPROVED", "category": "MARKETING",
            "components": [
                { "type": "HEADER", "format": "IMAGE" },
                { "type": "BODY", "text": "Hi {{1}}" },
                { "type": "FOOTER", "text": "Reply STOP to stop" },
                { "type": "BUTTONS", "buttons": [
                    { "type": "QUICK_REPLY", "text": "Not for me" },
                    { "type": "URL", "text": "Shop", "url": "https://shop.example/s/{{1}}" },
                    { "type": "URL", "text": "Home", "url": "https://shop.example/" }
                ] }
            ]
        }))
        .unwrap();
        let keys: Vec<String> = t.slots().into_iter().map(|s| s.key).collect();
        assert_eq!(keys, vec!["1", "reply.0", "url.1"]);
        assert!(!t.slots()[1].required && t.slots()[2].required);
        let photo = AttachmentRef {
            id: "a1".into(),
            name: "sale.jpg".into(),
            mime: "image/jpeg".into(),
            size: 10,
        };
        let pdf = AttachmentRef {
            id: "a2".into(),
            name: "terms.pdf".into(),
            mime: "application/pdf".into(),
            size: 10,
        };
        let mut c = TemplateChoice {
            name: "sale".into(),
            language: "en".into(),
            params: vec![ParamChoice {
                name: "1".into(),
                source: ParamSource::Text("Ann".into()),
                fallback: String::new(),
            }],
            ..TemplateChoice::default()
        };
        let p = c.problems(Some(&t), &[photo.clone(), pdf.clone()]);
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(p[0].contains("image for the template's header"), "{p:?}");
        assert!(p[1].contains("Shop"), "{p:?}");
        assert!(c.problems(Some(&t), std::slice::from_ref(&pdf))[0].contains("attach one"));
        c.header_media = Some("a2".into());
        assert!(
            c.problems(Some(&t), &[photo.clone(), pdf.clone()])[0].contains("terms.pdf is not")
        );
        c.header_media = Some("a1".into());
        c.params.push(ParamChoice {
            name: "url.1".into(),
            source: ParamSource::Text("spring".into()),
            fallback: String::new(),
        });
        assert!(
            c.problems(Some(&t), std::slice::from_ref(&photo))
                .is_empty()
        );
        let shown = render(&t, &c.values(&|_| None), Some("sale.jpg"));
        assert_eq!(
            shown,
            vec![
                "[image: sale.jpg]",
                "Hi Ann",
                "Reply STOP to stop",
                "[Not for me] [Shop → https://shop.example/s/spring] [Home]"
            ]
        );
        let text_header = Template::from_graph(&serde_json::json!({
            "name": "t", "language": "en", "status": "APPROVED",
            "components": [{ "type": "HEADER", "format": "TEXT", "text": "For {{1}}" },
                           { "type": "BODY", "text": "Body {{1}}" }]
        }))
        .unwrap();
        let keys: Vec<String> = text_header.slots().into_iter().map(|s| s.key).collect();
        assert_eq!(keys, vec!["header.1", "1"]);
        let values = vec![
            ("header.1".to_string(), "Bo".to_string()),
            ("1".to_string(), "x".to_string()),
        ];
        assert_eq!(
            render(&text_header, &values, None),
            vec!["For Bo", "Body x"]
        );
    }
}
