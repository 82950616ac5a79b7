//! Telegram Bot API: `sendMessage` for text, and `sendPhoto` / `sendAudio` / `sendVideo` /
//! `sendVoice` / `sendAnimation` / `sendDocument` for files by their type (types Telegram does
//! not take natively go as documents), uploaded as multipart. The first file carries the text
//! as its caption when the text fits (1,024 characters); otherwise the text goes first on its
//! own. Telegram keeps no idempotency keys, and reports neither delivery nor reads.
//!
//! Answers: `{"ok":true,"result":{"message_id":…}}`. Refusals go by [`codes::TELEGRAM`]: 429
//! with `parameters.retry_after` is a rate limit (retried then); "bot was blocked by the
//! user", "can't initiate conversation" and "chat not found" make the chat unreachable; 401
//! pauses the broadcast (the token is refused); otherwise 5xx is retried and other errors
//! fail with Telegram's description.

use std::path::PathBuf;
use std::time::Duration;

use futures::future::BoxFuture;

use super::{Accepted, Channel, Outgoing, SendError, codes};
use crate::model::channel::ChannelKind;
use crate::model::compose::AttachmentRef;

/// The channel's settings (from `channels.config`).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(default)]
pub struct Settings {
    pub bot_token: String,
    /// Telegram sends it back in `X-Telegram-Bot-Api-Secret-Token` on every webhook call.
    pub webhook_secret: String,
    pub base_url: String,
}

pub struct Telegram {
    settings: Settings,
    client: reqwest::Client,
    /// Where attachment files are kept (`<data-dir>/attachments`).
    files: PathBuf,
}

/// Telegram's captions hold at most this many characters.
const CAPTION_MAX: usize = 1024;

impl Telegram {
    pub fn new(settings: Settings, client: reqwest::Client, files: PathBuf) -> Self {
        Telegram {
            settings,
            client,
            files,
        }
    }

    fn url(&self, method: &str) -> String {
        let base = if self.settings.base_url.is_empty() {
            "https://api.telegram.org"
        } else {
            self.settings.base_url.trim_end_matches('/')
        };
        format!("{base}/bot{}/{method}", self.settings.bot_token)
    }

    async fn call(&self, request: reqwest::RequestBuilder) -> Result<i64, SendError> {
        let response = request
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .map_err(|e| super::no_answer("Telegram", &e))?;
        let status = response.status().as_u16();
        let v: serde_json::Value = response.json().await.unwrap_or_default();
        if v["ok"].as_bool() == Some(true) {
            return v["result"]["message_id"]
                .as_i64()
                .ok_or_else(|| SendError::Permanent {
                    reason: "Telegram's answer had no message id.".into(),
                });
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

    async fn send_file(
        &self,
        chat: &str,
        file: &AttachmentRef,
        caption: Option<&str>,
    ) -> Result<i64, SendError> {
        let (method, field) = method_for(&file.mime);
        let _held = super::attachment_budget(file.size).await;
        let bytes = tokio::fs::read(self.files.join(&file.id))
            .await
            .map_err(|_| SendError::Permanent {
                reason: format!("The attachment {} is missing on the server.", file.name),
            })?;
        let part = reqwest::multipart::Part::bytes(bytes)
            .file_name(file.name.clone())
            .mime_str(&file.mime)
            .map_err(|_| SendError::Permanent {
                reason: format!("The attachment {} has an unusable type.", file.name),
            })?;
        let mut form = reqwest::multipart::Form::new()
            .text("chat_id", chat.to_string())
            .part(field, part);
        if let Some(c) = caption {
            form = form.text("caption", c.to_string());
        }
        self.call(self.client.post(self.url(method)).multipart(form))
            .await
    }
}

/// The Bot API method and its file field for a MIME type.
pub fn method_for(mime: &str) -> (&'static str, &'static str) {
    match mime {
        "image/png" | "image/jpeg" => ("sendPhoto", "photo"),
        "image/gif" => ("sendAnimation", "animation"),
        "video/mp4" => ("sendVideo", "video"),
        "audio/mpeg" | "audio/mp4" | "audio/x-m4a" => ("sendAudio", "audio"),
        "audio/ogg" => ("sendVoice", "voice"),
        _ => ("sendDocument", "document"),
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
            let chat = m.address.as_str();
            let text = m.body.trim();
            let caption_fits = !text.is_empty() && text.chars().count() <= CAPTION_MAX;
            let mut first: Option<i64> = None;
            if !text.is_empty() && (m.attachments.is_empty() || !caption_fits) {
                let body = serde_json::json!({ "chat_id": chat, "text": text });
                first = Some(
                    self.call(self.client.post(self.url("sendMessage")).json(&body))
                        .await?,
                );
            }
            for (i, file) in m.attachments.iter().enumerate() {
                let caption = (i == 0 && caption_fits && first.is_none()).then_some(text);
                let id = self.send_file(chat, file, caption).await?;
                first.get_or_insert(id);
            }
            let id = first.ok_or_else(|| SendError::Permanent {
                reason: "Nothing to send.".into(),
            })?;
            Ok(Accepted {
                // Telegram numbers messages per chat: the chat makes the id unique.
                provider_message_id: format!("{chat}:{id}"),
                replayed: false,
            })
        })
    }
}
