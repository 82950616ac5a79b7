//! Telegram Bot API: `sendMessage` for text, and `sendPhoto` / `sendAudio` / `sendVideo` /
//! `sendVoice` / `sendAnimation` / `sendDocument` for files by their type (types Telegram does
//! not take natively, or over its 10 MB photo size, go as documents; over 50 MB cannot go), uploaded
//! once as multipart streamed from disk and then sent by Telegram's `file_id`. The first file carries the text
//! as its caption when the text fits (1,024 characters); otherwise the text goes first on its
//! own. Telegram keeps no idempotency keys, and reports neither delivery nor reads.
//!
//! Answers: `{"ok":true,"result":{"message_id":…}}`. Refusals go by [`codes::TELEGRAM`]: 429
//! with `parameters.retry_after` is a rate limit (retried then); "bot was blocked by the
//! user", "can't initiate conversation" and "chat not found" make the chat unreachable; 401
//! pauses the broadcast (the token is refused). A 5xx (a gateway's 502 page included), a
//! timeout or a reset after the request went out may mean "sent" ([`SendError::MaybeSent`]);
//! other errors fail with Telegram's description.

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
    pub bot_token: String,
    /// Telegram sends it back in `X-Telegram-Bot-Api-Secret-Token` on every webhook call.
    pub webhook_secret: String,
    pub base_url: String,
    /// How long a call waits for Telegram's answer (30 s unless set; not on the page).
    pub timeout_ms: Option<u64>,
}

impl Settings {
    fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.unwrap_or(30_000).clamp(100, 600_000))
    }
}

pub struct Telegram {
    settings: Settings,
    client: reqwest::Client,
    /// Where attachment files are kept (the data folder, or the shared bucket).
    files: crate::server::files::Files,
    /// Telegram's `file_id` of each file this bot sent already, by attachment id: a file goes
    /// up once (streamed from disk), and every further send names it by its id. Sends that
    /// need a file while its first send uploads it wait for that one.
    sent_files:
        std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::OnceCell<String>>>>,
}

/// Telegram's captions hold at most this many characters.
const CAPTION_MAX: usize = 1024;

impl Telegram {
    pub fn new(
        settings: Settings,
        client: reqwest::Client,
        files: crate::server::files::Files,
    ) -> Self {
        Telegram {
            settings,
            client,
            files,
            sent_files: Default::default(),
        }
    }

    fn url(&self, method: &str) -> String {
        let base = if self.settings.base_url.is_empty() {
            "https://api.telegram.org"
        } else {
            self.settings.base_url.trim_end_matches('/')
        };
        super::endpoint::api_url(base, &[&format!("bot{}", self.settings.bot_token), method])
    }

    /// A Bot API call; the id of the message it sent.
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<i64, SendError> {
        message_id(&self.call_for(request, self.settings.timeout()).await?)
    }

    /// A Bot API call; its `result`.
    async fn call_for(
        &self,
        request: reqwest::RequestBuilder,
        timeout: Duration,
    ) -> Result<serde_json::Value, SendError> {
        let response = request
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| super::no_answer("Telegram", &e))?;
        let status = response.status().as_u16();
        let v = super::read_json(response, super::ANSWER_CAP)
            .await
            .unwrap_or_default();
        if v["ok"].as_bool() == Some(true) {
            return Ok(v["result"].clone());
        }
        if (200..300).contains(&status) {
            // "Accepted", but not in words Herald can read: it may have been sent.
            return Err(super::unreadable("Telegram", status));
        }
        let code = v["error_code"].as_u64().unwrap_or(status as u64);
        let description = v["description"]
            .as_str()
            .unwrap_or("no description")
            .to_string();
        let retry_after = v["parameters"]["retry_after"]
            .as_u64()
            .map(|s| Duration::from_secs(s.min(3600)));
        if let Some(row) = codes::telegram(code, &description) {
            return Err(row.error("Telegram", retry_after));
        }
        let reason = format!("Telegram {code}: {description}");
        Err(super::refused(code.min(999) as u16, reason, retry_after))
    }

    /// Sends `file` to `chat`: by its `file_id` once this bot has sent it, else uploaded,
    /// streamed from disk (never read whole into memory).
    async fn send_file(
        &self,
        chat: &str,
        file: &AttachmentRef,
        caption: Option<&str>,
    ) -> Result<i64, SendError> {
        let (method, field) = carried_as(file)?;
        let cell = {
            let mut sent = self.sent_files.lock().expect("sent files lock");
            sent.entry(file.id.clone()).or_default().clone()
        };
        let form = |file_part: reqwest::multipart::Part| {
            let mut form = reqwest::multipart::Form::new()
                .text("chat_id", chat.to_string())
                .part(field, file_part);
            if let Some(c) = caption {
                form = form.text("caption", c.to_string());
            }
            form
        };
        let mut uploaded: Option<i64> = None;
        let file_id = cell
            .get_or_try_init(|| async {
                let part = self.streamed(file).await?;
                // A large upload takes longer than a text: a minute per 10 MB, at least 30 s.
                let timeout = self.settings.timeout()
                    + Duration::from_secs(file.size / (10 * 1024 * 1024) * 60);
                let result = self
                    .call_for(
                        self.client.post(self.url(method)).multipart(form(part)),
                        timeout,
                    )
                    .await?;
                uploaded = Some(message_id(&result)?);
                sent_file_id(&result, field).ok_or_else(|| SendError::Permanent {
                    reason: "Telegram's answer named no file id.".into(),
                })
            })
            .await?;
        if let Some(id) = uploaded {
            return Ok(id);
        }
        self.call(
            self.client
                .post(self.url(method))
                .multipart(form(reqwest::multipart::Part::text(file_id.clone()))),
        )
        .await
    }

    /// The file as a multipart part read from the store as it is sent.
    async fn streamed(&self, file: &AttachmentRef) -> Result<reqwest::multipart::Part, SendError> {
        let missing = || SendError::Permanent {
            reason: format!("The attachment {} is missing on the server.", file.name),
        };
        let opened = self
            .files
            .open(crate::server::files::ATTACHMENTS, &file.id)
            .await
            .map_err(|_| missing())?
            .ok_or_else(missing)?;
        let body = reqwest::Body::wrap_stream(opened.bytes);
        reqwest::multipart::Part::stream_with_length(body, opened.size)
            .file_name(file.name.clone())
            .mime_str(&file.mime)
            .map_err(|_| SendError::Permanent {
                reason: format!("The attachment {} has an unusable type.", file.name),
            })
    }
}

impl Telegram {
    /// Registers Herald's webhook with Telegram (`setWebhook`): where updates go, the secret
    /// Telegram sends back in `X-Telegram-Bot-Api-Secret-Token`, and the updates wanted.
    pub async fn set_webhook(&self, url: &str) -> Result<(), String> {
        let body = serde_json::json!({
            "url": url,
            "secret_token": self.settings.webhook_secret,
            "allowed_updates": ["message"],
        });
        self.call_for(
            self.client.post(self.url("setWebhook")).json(&body),
            Duration::from_secs(10),
        )
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
    }

    /// Telegram's view of the webhook (`getWebhookInfo`): its URL, pending updates, last error.
    pub async fn webhook_info(&self) -> Result<serde_json::Value, String> {
        self.call_for(
            self.client.post(self.url("getWebhookInfo")),
            Duration::from_secs(5),
        )
        .await
        .map_err(|e| e.to_string())
    }
}

/// The id of the message a call's `result` describes.
fn message_id(result: &serde_json::Value) -> Result<i64, SendError> {
    result["message_id"]
        .as_i64()
        .ok_or_else(|| SendError::Permanent {
            reason: "Telegram's answer had no message id.".into(),
        })
}

/// The `file_id` of the file a message carries: a photo's largest size, else the file's.
fn sent_file_id(result: &serde_json::Value, field: &str) -> Option<String> {
    let object = if field == "photo" {
        result["photo"].as_array().and_then(|sizes| sizes.last())?
    } else {
        ["document", "video", "audio", "voice", "animation"]
            .iter()
            .map(|k| &result[*k])
            .find(|v| v.is_object())?
    };
    object["file_id"].as_str().map(str::to_string)
}

/// The Bot API method and its file field for `file` by [`media::telegram`]'s rules (what
/// Telegram shows only as a document goes by `sendDocument`); why it cannot go at all.
pub fn carried_as(file: &AttachmentRef) -> Result<(&'static str, &'static str), SendError> {
    match media::telegram(file) {
        media::Carry::Native(field) => Ok((
            match field {
                "photo" => "sendPhoto",
                "animation" => "sendAnimation",
                "video" => "sendVideo",
                "audio" => "sendAudio",
                _ => "sendVoice",
            },
            field,
        )),
        media::Carry::Document => Ok(("sendDocument", "document")),
        media::Carry::Cannot(reason) => Err(SendError::Permanent { reason }),
    }
}

impl Channel for Telegram {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Telegram
    }

    fn send<'a>(&'a self, m: &'a Outgoing) -> BoxFuture<'a, Result<Accepted, SendError>> {
        Box::pin(async move {
            if self.settings.bot_token.is_empty() {
                return Err(SendError::Permanent {
                    reason: "The Telegram channel has no bot token.".into(),
                });
            }
            // A file Telegram cannot carry fails the message before any part of it goes.
            for file in &m.attachments {
                carried_as(file)?;
            }
            let chat = m.address.as_str();
            let mut first: Option<String> = None;
            let mut sent_here = false;
            for (i, part) in plan(m).into_iter().enumerate() {
                if let Some(id) = m.parts.done(i) {
                    first.get_or_insert_with(|| id.to_string());
                    continue;
                }
                // Telegram takes one message a second in a chat.
                if sent_here {
                    tokio::time::sleep(PER_CHAT_GAP).await;
                }
                let id = match part {
                    Part::Text(text) => {
                        let body = serde_json::json!({ "chat_id": chat, "text": text });
                        self.call(self.client.post(self.url("sendMessage")).json(&body))
                            .await?
                    }
                    Part::File(file, caption) => self.send_file(chat, file, caption).await?,
                };
                // Telegram numbers messages per chat: the chat makes the id unique.
                let id = format!("{chat}:{id}");
                m.parts.accept(i, &id);
                first.get_or_insert(id);
                sent_here = true;
            }
            let id = first.ok_or_else(|| SendError::Permanent {
                reason: "Nothing to send.".into(),
            })?;
            Ok(Accepted {
                provider_message_id: id,
                replayed: false,
            })
        })
    }

    fn requests(&self, m: &Outgoing) -> u32 {
        let parts = plan(m).len();
        (0..parts).filter(|i| m.parts.done(*i).is_none()).count() as u32
    }
}

/// The wait between two messages of one delivery in a chat: Telegram takes one a second.
const PER_CHAT_GAP: Duration = Duration::from_millis(1_050);

/// One provider request of a message.
enum Part<'a> {
    Text(&'a str),
    /// A file, with the text as its caption or none.
    File(&'a AttachmentRef, Option<&'a str>),
}

/// The requests `m` takes, in order: the text on its own unless it rides as the first file's
/// caption (it fits in 1,024 characters), then each file.
fn plan(m: &Outgoing) -> Vec<Part<'_>> {
    let text = m.body.trim();
    let caption_fits = !text.is_empty() && text.chars().count() <= CAPTION_MAX;
    let mut parts = Vec::new();
    if !text.is_empty() && (m.attachments.is_empty() || !caption_fits) {
        parts.push(Part::Text(text));
    }
    for (i, file) in m.attachments.iter().enumerate() {
        let caption = (i == 0 && caption_fits && parts.is_empty()).then_some(text);
        parts.push(Part::File(file, caption));
    }
    parts
}
