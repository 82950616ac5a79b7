//! WhatsApp Cloud API.
//!
//! Sending: `POST {base}/{phone-number-id}/messages` with a bearer token and
//! `{"messaging_product":"whatsapp","to":…,"type":"text","text":{"body":…}}`. A file is first
//! uploaded (`POST {base}/{phone-number-id}/media`, multipart `file`, `type`,
//! `messaging_product`), once per channel and file (its media id is reused for 29 days), and then sent by its media id as `image`, `video`, `audio` or
//! `document` (by its type; others as documents), the text as its caption where WhatsApp
//! takes one. The answer's `messages[0].id` (a `wamid.…`) names the message.
//!
//! Errors: the code's row in [`codes::WHATSAPP`] decides (throttle, back off, fail, opt out,
//! pause the broadcast, 131000 "may have been sent" …); an unknown code goes by HTTP status
//! (429 retried, 5xx may mean "sent", others failed with Meta's words). A timeout or reset
//! after the request went out may mean "sent" too: the status webhooks, which echo the
//! delivery's key, tell.
//!
//! Webhooks: the GET verification handshake (`hub.mode=subscribe`, `hub.verify_token`,
//! `hub.challenge`), and POSTs signed with `X-Hub-Signature-256: sha256=<HMAC-SHA256 of the raw
//! body with the app secret>`, carrying `statuses` (sent, delivered, read, failed) and
//! `messages` (with `context.id` when the customer replied to one of ours).

use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;

use super::{Accepted, Channel, Outgoing, SendError, codes};
use crate::model::channel::ChannelKind;
use crate::model::compose::AttachmentRef;
use crate::model::media;

/// The channel's settings (from `channels.config`).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    pub phone_number_id: String,
    /// The WhatsApp Business Account the number belongs to: where its templates are listed.
    pub waba_id: String,
    pub access_token: String,
    /// Signs the webhooks Meta sends (`X-Hub-Signature-256`).
    pub app_secret: String,
    /// What Meta sends back in the verification handshake.
    pub verify_token: String,
    pub base_url: String,
    /// How long a call waits for Meta's answer (30 s unless set; not on the page).
    pub timeout_ms: Option<u64>,
}

pub struct WhatsApp {
    settings: Settings,
    client: reqwest::Client,
    files: crate::server::files::Files,
    /// Media ids of files uploaded already, by attachment id: each file goes up once per
    /// channel (the dispatcher keeps one adapter per channel), however many recipients and
    /// broadcasts carry it, until the id is old enough to expire.
    media: std::sync::Mutex<std::collections::HashMap<String, Arc<Uploaded>>>,
}

/// A file's upload: done once, by whichever send needs it first; the others wait for it.
type Uploaded = tokio::sync::OnceCell<(String, std::time::Instant)>;

/// The most of one page of templates Herald reads.
const TEMPLATE_PAGE_CAP: usize = 4 * 1024 * 1024;

/// Meta keeps an uploaded file's media id for 30 days; Herald uploads again after 29.
const MEDIA_ID_LIFETIME: Duration = Duration::from_secs(29 * 24 * 3600);

impl WhatsApp {
    pub fn new(
        settings: Settings,
        client: reqwest::Client,
        files: crate::server::files::Files,
    ) -> Self {
        WhatsApp {
            settings,
            client,
            files,
            media: Default::default(),
        }
    }

    /// The media id of `file`: uploaded now if no send uploaded it yet (or its id is about
    /// to expire); sends that need it meanwhile wait for that one upload.
    async fn media_id(&self, file: &AttachmentRef) -> Result<String, SendError> {
        let cell = {
            let mut media = self.media.lock().expect("media lock");
            let fresh = media
                .get(&file.id)
                .and_then(|c| c.get())
                .is_some_and(|(_, at)| at.elapsed() < MEDIA_ID_LIFETIME);
            if !fresh && media.get(&file.id).is_some_and(|c| c.initialized()) {
                media.remove(&file.id);
            }
            media.entry(file.id.clone()).or_default().clone()
        };
        let (id, _) = cell
            .get_or_try_init(|| async {
                let id = self.upload(file).await?;
                Ok::<_, SendError>((id, std::time::Instant::now()))
            })
            .await?;
        Ok(id.clone())
    }

    fn url(&self, what: &str) -> String {
        let base = if self.settings.base_url.is_empty() {
            "https://graph.facebook.com/v21.0"
        } else {
            self.settings.base_url.trim_end_matches('/')
        };
        super::endpoint::api_url(base, &[self.settings.phone_number_id.trim(), what])
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<serde_json::Value, SendError> {
        self.call_capped(request, super::ANSWER_CAP).await
    }

    /// A Graph API call whose answer is read up to `cap` bytes.
    async fn call_capped(
        &self,
        request: reqwest::RequestBuilder,
        cap: usize,
    ) -> Result<serde_json::Value, SendError> {
        let response = request
            .bearer_auth(&self.settings.access_token)
            .timeout(Duration::from_millis(
                self.settings
                    .timeout_ms
                    .unwrap_or(30_000)
                    .clamp(100, 600_000),
            ))
            .send()
            .await
            .map_err(|e| super::no_answer("WhatsApp", &e))?;
        let status = response.status().as_u16();
        let wait = super::webhook::retry_after(response.headers());
        let read = super::read_json(response, cap).await;
        if (200..300).contains(&status) {
            return read.ok_or_else(|| super::unreadable("WhatsApp", status));
        }
        Err(refusal(status, &read.unwrap_or_default()["error"], wait))
    }

    /// Uploads a file; its media id.
    async fn upload(&self, file: &AttachmentRef) -> Result<String, SendError> {
        let missing = || SendError::Permanent {
            reason: format!("The attachment {} is missing on the server.", file.name),
        };
        // Read from the store as it goes up: never held whole.
        let opened = self
            .files
            .open(crate::server::files::ATTACHMENTS, &file.id)
            .await
            .map_err(|_| missing())?
            .ok_or_else(missing)?;
        let body = reqwest::Body::wrap_stream(opened.bytes);
        let part = reqwest::multipart::Part::stream_with_length(body, opened.size)
            .file_name(file.name.clone())
            .mime_str(&file.mime)
            .map_err(|_| SendError::Permanent {
                reason: format!("The attachment {} has an unusable type.", file.name),
            })?;
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", file.mime.clone())
            .part("file", part);
        // An upload whose answer was lost sent the customer nothing: it is simply made again.
        let v = self
            .call(self.client.post(self.url("media")).multipart(form))
            .await
            .map_err(|e| match e {
                SendError::MaybeSent { reason } => SendError::Transient {
                    reason,
                    retry_after: None,
                },
                e => e,
            })?;
        v["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| SendError::Permanent {
                reason: "WhatsApp's upload answer had no media id.".into(),
            })
    }

    async fn message(&self, body: serde_json::Value) -> Result<String, SendError> {
        let v = self
            .call(self.client.post(self.url("messages")).json(&body))
            .await?;
        v["messages"][0]["id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| SendError::MaybeSent {
                reason: "WhatsApp accepted the request but its answer named no message; it may have been sent.".into(),
            })
    }
}

/// Most pages a template sync reads (100 templates each): a business account holds at most a
/// few hundred (Meta's limit is 250 per account, 6,000 with translations).
const TEMPLATE_PAGES: usize = 100;

impl WhatsApp {
    /// Every template of the channel's business account (`GET {base}/{waba-id}/message_templates`,
    /// all pages, following the `after` cursor on the channel's own base URL).
    pub async fn templates(&self) -> Result<Vec<crate::model::template::Template>, String> {
        if self.settings.waba_id.trim().is_empty() || self.settings.access_token.is_empty() {
            return Err(
                "Enter the WhatsApp Business Account ID and the access token first.".into(),
            );
        }
        let base = if self.settings.base_url.is_empty() {
            "https://graph.facebook.com/v21.0"
        } else {
            self.settings.base_url.trim_end_matches('/')
        };
        let url =
            super::endpoint::api_url(base, &[self.settings.waba_id.trim(), "message_templates"]);
        let fields = "name,language,status,category,parameter_format,components,quality_score";
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..TEMPLATE_PAGES {
            let mut query = vec![("fields", fields.to_string()), ("limit", "100".into())];
            if let Some(a) = &after {
                query.push(("after", a.clone()));
            }
            // A page of 100 templates with their components is larger than an answer to a send.
            let v = self
                .call_capped(self.client.get(&url).query(&query), TEMPLATE_PAGE_CAP)
                .await
                .map_err(|e| e.to_string())?;
            for t in v["data"].as_array().into_iter().flatten() {
                if let Some(t) = crate::model::template::Template::from_graph(t) {
                    out.push(t);
                }
            }
            // Meta gives `paging.next` only while more pages follow.
            match (
                v["paging"]["next"].as_str(),
                v["paging"]["cursors"]["after"].as_str(),
            ) {
                (Some(_), Some(a)) if !a.is_empty() => after = Some(a.to_string()),
                _ => return Ok(out),
            }
        }
        Ok(out)
    }
}

/// What a refusal means: its code's row in [`codes::WHATSAPP`], else by HTTP status with
/// Meta's own words.
pub fn refusal(status: u16, error: &serde_json::Value, wait: Option<Duration>) -> SendError {
    match error_reason(error, status as i64) {
        (_, Some(row)) => row.error("WhatsApp", wait),
        (reason, None) => super::refused(status, reason, wait),
    }
}

/// How Herald words a WhatsApp error object (an answer's `error`, a status's `errors[0]`):
/// its code's row in [`codes::WHATSAPP`] (a sub-code can say more, but the code decides), else
/// its code, title or message and details as Meta wrote them; `code` when it names none.
pub fn error_reason(
    error: &serde_json::Value,
    code: i64,
) -> (String, Option<&'static codes::Code>) {
    let code = error["code"].as_i64().unwrap_or(code);
    if let Some(row) = codes::whatsapp(code) {
        return (row.reason("WhatsApp"), Some(row));
    }
    let said = error["title"]
        .as_str()
        .or_else(|| error["message"].as_str())
        .unwrap_or("no message");
    let details = error["error_data"]["details"]
        .as_str()
        .map(|d| format!(" ({d})"))
        .unwrap_or_default();
    (
        super::summary(&format!("WhatsApp {code}: {said}{details}")),
        None,
    )
}

/// WhatsApp's message type for `file` by [`media::whatsapp`]'s rules (`document` for the
/// document types); why it cannot go at all.
pub fn carried_as(file: &AttachmentRef) -> Result<&'static str, SendError> {
    match media::whatsapp(file) {
        media::Carry::Native(kind) => Ok(kind),
        media::Carry::Document => Ok("document"),
        media::Carry::Cannot(reason) => Err(SendError::Permanent { reason }),
    }
}

/// One message of a free-form WhatsApp send.
enum Part<'a> {
    Text(&'a str),
    /// A file, with the text as its caption or none.
    File(&'a AttachmentRef, Option<&'a str>),
}

/// The messages a free-form `m` takes, in order: the text on its own unless it rides as the
/// first file's caption (audio takes none), then each file.
fn plan(m: &Outgoing) -> Vec<Part<'_>> {
    let text = m.body.trim();
    let captioned = !text.is_empty()
        && m.attachments
            .first()
            .is_some_and(|f| !matches!(carried_as(f), Ok("audio")));
    let mut parts = Vec::new();
    if !text.is_empty() && !captioned {
        parts.push(Part::Text(text));
    }
    for (i, file) in m.attachments.iter().enumerate() {
        parts.push(Part::File(file, (i == 0 && captioned).then_some(text)));
    }
    parts
}

impl WhatsApp {
    /// The message sending `file` (uploaded once per channel) to `m`'s recipient.
    async fn media_message(
        &self,
        m: &Outgoing,
        file: &AttachmentRef,
        caption: Option<&str>,
    ) -> Result<serde_json::Value, SendError> {
        let media = self.media_id(file).await?;
        let kind = carried_as(file)?;
        let mut object = serde_json::json!({ "id": media });
        if let Some(text) = caption {
            object["caption"] = serde_json::Value::String(text.to_string());
        }
        if kind == "document" {
            object["filename"] = serde_json::Value::String(file.name.clone());
        }
        Ok(serde_json::json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": m.address,
            "type": kind,
            kind: object,
        }))
    }
}

impl WhatsApp {
    /// The components of template message `t` filled in: its header (a text parameter, or a
    /// media header's file uploaded once), its body's parameters and its buttons'.
    async fn template_components(
        &self,
        t: &super::OutTemplate,
    ) -> Result<Vec<serde_json::Value>, SendError> {
        let text_params = |params: &[(String, String)]| -> Vec<serde_json::Value> {
            params
                .iter()
                .map(|(name, text)| {
                    let mut p = serde_json::json!({ "type": "text", "text": text });
                    if t.named {
                        p["parameter_name"] = serde_json::Value::String(name.clone());
                    }
                    p
                })
                .collect()
        };
        let mut components = Vec::new();
        if let Some((kind, file)) = &t.header_media {
            let media = self.media_id(file).await?;
            let mut object = serde_json::json!({ "id": media });
            if *kind == "document" {
                object["filename"] = serde_json::Value::String(file.name.clone());
            }
            components.push(serde_json::json!({
                "type": "header",
                "parameters": [{ "type": kind, *kind: object }],
            }));
        } else if !t.header.is_empty() {
            components.push(
                serde_json::json!({ "type": "header", "parameters": text_params(&t.header) }),
            );
        }
        if !t.params.is_empty() {
            components
                .push(serde_json::json!({ "type": "body", "parameters": text_params(&t.params) }));
        }
        for (index, sub_type, value) in &t.buttons {
            let parameter = if *sub_type == "url" {
                serde_json::json!({ "type": "text", "text": value })
            } else {
                serde_json::json!({ "type": "payload", "payload": value })
            };
            components.push(serde_json::json!({
                "type": "button",
                "sub_type": sub_type,
                "index": index.to_string(),
                "parameters": [parameter],
            }));
        }
        Ok(components)
    }
}

impl Channel for WhatsApp {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Whatsapp
    }

    fn requests(&self, m: &Outgoing) -> u32 {
        if m.template.is_some() {
            return 1;
        }
        let parts = plan(m).len();
        (0..parts).filter(|i| m.parts.done(*i).is_none()).count() as u32
    }

    fn send<'a>(&'a self, m: &'a Outgoing) -> BoxFuture<'a, Result<Accepted, SendError>> {
        Box::pin(async move {
            if self.settings.phone_number_id.is_empty() || self.settings.access_token.is_empty() {
                return Err(SendError::Permanent {
                    reason: "The WhatsApp channel is missing its phone number id or token.".into(),
                });
            }
            let key = serde_json::Value::String(m.idempotency_key.clone());
            // A file WhatsApp cannot carry fails the message before any part of it goes.
            if m.template.is_none() {
                for file in &m.attachments {
                    carried_as(file)?;
                }
            }
            if let Some(t) = &m.template {
                // The template message shape Meta documents; the (only) message names the
                // delivery as the free text's last part does.
                let components = self.template_components(t).await?;
                let id = self
                    .message(serde_json::json!({
                        "messaging_product": "whatsapp",
                        "recipient_type": "individual",
                        "to": m.address,
                        "type": "template",
                        "template": {
                            "name": t.name,
                            "language": { "code": t.language },
                            "components": components,
                        },
                        "biz_opaque_callback_data": key,
                    }))
                    .await?;
                return Ok(Accepted {
                    provider_message_id: id,
                    replayed: false,
                });
            }
            // Each part is a message of its own; only the last names the delivery
            // (`biz_opaque_callback_data`, which Meta returns in each of its statuses), so a
            // status records the delivery as sent only once every part went out, and its id
            // is the one Herald records.
            let parts = plan(m);
            let mut last: Option<String> = None;
            for (i, part) in parts.iter().enumerate() {
                if let Some(id) = m.parts.done(i) {
                    last = Some(id.to_string());
                    continue;
                }
                let mut body = match part {
                    Part::Text(text) => serde_json::json!({
                        "messaging_product": "whatsapp",
                        "recipient_type": "individual",
                        "to": m.address,
                        "type": "text",
                        "text": { "preview_url": false, "body": text },
                    }),
                    Part::File(file, caption) => self.media_message(m, file, *caption).await?,
                };
                if i + 1 == parts.len() {
                    body["biz_opaque_callback_data"] = key.clone();
                }
                let id = self.message(body).await?;
                m.parts.accept(i, &id);
                last = Some(id);
            }
            let id = last.ok_or_else(|| SendError::Permanent {
                reason: "Nothing to send.".into(),
            })?;
            Ok(Accepted {
                provider_message_id: id,
                replayed: false,
            })
        })
    }
}
