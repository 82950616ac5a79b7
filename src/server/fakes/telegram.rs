//! A local stand-in for Telegram's Bot API, as strict as its documentation and as unreliable
//! as a network in practice, for the tests and the benchmark that send through the real
//! Telegram adapter.
//!
//! What it does as Telegram does:
//! - `POST /bot{token}/{method}` with JSON, form or multipart parameters; a wrong token is
//!   401 `Unauthorized`, an unknown method 404 `Not Found`. `sendMessage` needs a `chat_id`
//!   and a text of 1 to 4,096 characters; `sendPhoto`, `sendDocument`, `sendVideo`,
//!   `sendAudio`, `sendVoice` and `sendAnimation` take an uploaded file or the `file_id` of a
//!   file sent before (an unknown id is refused), with a caption of at most 1,024 characters.
//! - **Rate limits**: about 30 messages a second per bot (a bucket of 30 refilled at 30 a
//!   second) and one a second per chat. A request over either is refused with 429, "Too Many
//!   Requests: retry after N" and `parameters.retry_after`, and sends nothing.
//! - **No idempotency**: every accepted request is a message in the chat, whatever it repeats.
//! - **Lost answers**: `ambiguous_per_mille` of the accepted messages are delivered and then
//!   answered with a gateway's 502 page, or only after `hang` (past the client's timeout),
//!   in turn. [`FakeTelegram::ambiguous`] counts them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;

use crate::server::seed::Rng;

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct Config {
    pub bot_token: String,
    /// Messages a second the bot may send (and the burst it may send at once).
    pub per_bot_per_sec: f64,
    /// Messages a second one chat may receive.
    pub per_chat_per_sec: f64,
    /// Per mille of accepted messages whose answer is lost (502 page or a hang).
    pub ambiguous_per_mille: u64,
    /// How long a hanging answer waits before it comes (after the client gave up).
    pub hang: Duration,
    /// How long every answer takes (the Bot API's round trip).
    pub latency: Duration,
    /// How much longer a file's answer takes (an upload).
    pub file_latency: Duration,
    /// Each chat's first file is refused once with 429 (sending nothing), as a busy bot's may
    /// be: what a retry then sends shows.
    pub throttle_first_file: bool,
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bot_token: "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw".into(),
            per_bot_per_sec: 30.0,
            per_chat_per_sec: 1.0,
            ambiguous_per_mille: 0,
            hang: Duration::from_secs(40),
            latency: Duration::ZERO,
            file_latency: Duration::ZERO,
            throttle_first_file: false,
            seed: 0x7e1e,
        }
    }
}

/// One message a chat received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub chat: String,
    pub message_id: i64,
    /// `sendMessage`, `sendPhoto`, …
    pub method: String,
    /// The text, or the caption of a file.
    pub text: String,
    /// The file's id (new for an upload).
    pub file_id: Option<String>,
    /// When the chat got it (this machine's clock).
    pub at: chrono::DateTime<chrono::Utc>,
}

/// A token bucket: `tokens` now, refilled at `rate` a second up to `capacity`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(capacity: f64) -> Self {
        Bucket {
            tokens: capacity,
            at: Instant::now(),
        }
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self, rate: f64, capacity: f64) -> Result<(), Duration> {
        let now = Instant::now();
        self.tokens =
            (self.tokens + now.duration_since(self.at).as_secs_f64() * rate).min(capacity);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / rate))
        }
    }
}

struct Inner {
    messages: Vec<Message>,
    bot: Bucket,
    chats: HashMap<String, Bucket>,
    files: HashSet<String>,
    next_id: HashMap<String, i64>,
    rng: Rng,
    /// Chats whose message was delivered and its answer lost, in order.
    ambiguous: Vec<String>,
    /// Chats whose first file was refused already (`throttle_first_file`).
    throttled_files: HashSet<String>,
    /// The webhook registered: (url, secret token, allowed updates).
    webhook: Option<(String, String, serde_json::Value)>,
}

/// The running fake; its base URL is what a Herald Telegram channel's `base_url` takes.
pub struct FakeTelegram {
    config: Config,
    inner: Mutex<Inner>,
    throttled: AtomicU64,
    calls: AtomicU64,
}

/// A call's parameters, however they were sent, and the file part's size if one was uploaded.
#[derive(Debug, Default)]
struct Params {
    fields: HashMap<String, String>,
    uploaded: Option<(String, usize)>,
}

const FILE_METHODS: [(&str, &str); 6] = [
    ("sendPhoto", "photo"),
    ("sendDocument", "document"),
    ("sendVideo", "video"),
    ("sendAudio", "audio"),
    ("sendVoice", "voice"),
    ("sendAnimation", "animation"),
];

impl FakeTelegram {
    /// Starts the fake on a free loopback port; returns it with its base URL.
    pub async fn start(config: Config) -> std::io::Result<(Arc<FakeTelegram>, String)> {
        let fake = Arc::new(FakeTelegram {
            inner: Mutex::new(Inner {
                messages: Vec::new(),
                bot: Bucket::full(config.per_bot_per_sec.max(1.0)),
                chats: HashMap::new(),
                files: HashSet::new(),
                next_id: HashMap::new(),
                rng: Rng::new(config.seed),
                ambiguous: Vec::new(),
                throttled_files: HashSet::new(),
                webhook: None,
            }),
            config,
            throttled: AtomicU64::new(0),
            calls: AtomicU64::new(0),
        });
        let app = axum::Router::new()
            .route(
                "/{bot}/{method}",
                post(call).layer(axum::extract::DefaultBodyLimit::max(60 << 20)),
            )
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok((fake, format!("http://{addr}")))
    }

    /// A Herald Telegram channel that sends to this fake at `rate` messages a second.
    pub fn channel(&self, base_url: &str, rate: i64) -> crate::server::db::NewChannel {
        crate::server::db::NewChannel {
            kind: "telegram".into(),
            name: "Telegram".into(),
            config_json: serde_json::json!({
                "bot_token": self.config.bot_token, "webhook_secret": "fake-webhook-secret",
                "base_url": base_url,
            })
            .to_string(),
            rate_per_sec: rate,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every message the chats received, in order.
    pub fn messages(&self) -> Vec<Message> {
        self.lock().messages.clone()
    }

    /// Messages each chat received.
    pub fn received(&self) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        for m in &self.lock().messages {
            *out.entry(m.chat.clone()).or_default() += 1;
        }
        out
    }

    /// The chats whose message was delivered and its answer lost, one entry per such message.
    pub fn ambiguous(&self) -> Vec<String> {
        self.lock().ambiguous.clone()
    }

    /// The webhook registered by `setWebhook`: (url, secret token).
    pub fn webhook(&self) -> Option<(String, String)> {
        self.lock().webhook.clone().map(|(u, s, _)| (u, s))
    }

    /// Requests refused with 429.
    pub fn throttled(&self) -> u64 {
        self.throttled.load(Ordering::SeqCst)
    }

    /// Requests made.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    /// Takes the bot's and the chat's tokens, or says how many seconds to wait.
    fn admit(&self, inner: &mut Inner, chat: &str) -> Result<(), u64> {
        let (bot_rate, chat_rate) = (self.config.per_bot_per_sec, self.config.per_chat_per_sec);
        let seconds = |d: Duration| d.as_secs_f64().ceil().max(1.0) as u64;
        let mut chat_bucket = *inner
            .chats
            .entry(chat.to_string())
            .or_insert_with(|| Bucket::full(1.0));
        chat_bucket.take(chat_rate, 1.0).map_err(seconds)?;
        inner
            .bot
            .take(bot_rate, bot_rate.max(1.0))
            .map_err(seconds)?;
        inner.chats.insert(chat.to_string(), chat_bucket);
        Ok(())
    }
}

fn refusal(status: StatusCode, description: &str, retry_after: Option<u64>) -> Response {
    let mut v = serde_json::json!({
        "ok": false, "error_code": status.as_u16(), "description": description,
    });
    if let Some(s) = retry_after {
        v["parameters"] = serde_json::json!({ "retry_after": s });
    }
    (status, axum::Json(v)).into_response()
}

/// Reads a call's parameters from JSON, a form, or multipart (where a file part is an upload).
async fn params(req: Request) -> Option<Params> {
    let ct = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut out = Params::default();
    if ct.starts_with("multipart/form-data") {
        use axum::extract::FromRequest;
        let mut form = axum::extract::Multipart::from_request(req, &())
            .await
            .ok()?;
        while let Ok(Some(field)) = form.next_field().await {
            let name = field.name().unwrap_or_default().to_string();
            if field.file_name().is_some() {
                let size = field.bytes().await.ok()?.len();
                out.uploaded = Some((name, size));
            } else {
                out.fields.insert(name, field.text().await.ok()?);
            }
        }
        return Some(out);
    }
    let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.ok()?;
    let value: serde_json::Value = if ct.starts_with("application/json") {
        serde_json::from_slice(&body).ok()?
    } else {
        serde_json::to_value(
            form_urlencoded::parse(&body)
                .into_owned()
                .collect::<HashMap<_, _>>(),
        )
        .ok()?
    };
    for (k, v) in value.as_object()? {
        let text = match v {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        out.fields.insert(k.clone(), text);
    }
    Some(out)
}

/// `setWebhook` as Telegram checks it: an HTTPS URL, a secret token of 1 to 256 of
/// `A-Z a-z 0-9 _ -`.
fn set_webhook(fake: &FakeTelegram, p: &Params) -> Response {
    let url = p.fields.get("url").cloned().unwrap_or_default();
    if !url.starts_with("https://") {
        return refusal(
            StatusCode::BAD_REQUEST,
            "Bad Request: bad webhook: An HTTPS URL must be provided for webhook",
            None,
        );
    }
    let secret = p.fields.get("secret_token").cloned().unwrap_or_default();
    let fine = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if !secret.is_empty() && (secret.len() > 256 || !secret.chars().all(fine)) {
        return refusal(
            StatusCode::BAD_REQUEST,
            "Bad Request: secret token contains unallowed characters",
            None,
        );
    }
    let allowed = p
        .fields
        .get("allowed_updates")
        .and_then(|a| serde_json::from_str(a).ok())
        .unwrap_or(serde_json::Value::Array(Vec::new()));
    fake.lock().webhook = Some((url, secret, allowed));
    axum::Json(serde_json::json!({ "ok": true, "result": true, "description": "Webhook was set" }))
        .into_response()
}

/// What a call asks for is valid as Telegram checks it: the refusal's description otherwise.
fn check(fake: &FakeTelegram, method: &str, p: &Params) -> Result<(), &'static str> {
    if p.fields.get("chat_id").is_none_or(|c| c.trim().is_empty()) {
        return Err("Bad Request: chat_id is empty");
    }
    if method == "sendMessage" {
        let text = p.fields.get("text").map(|t| t.trim()).unwrap_or_default();
        if text.is_empty() {
            return Err("Bad Request: message text is empty");
        }
        if text.chars().count() > 4096 {
            return Err("Bad Request: message is too long");
        }
        return Ok(());
    }
    let field = FILE_METHODS
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(_, f)| *f);
    let Some(field) = field else {
        return Err("Not Found");
    };
    if p.fields
        .get("caption")
        .is_some_and(|c| c.chars().count() > 1024)
    {
        return Err("Bad Request: message caption is too long");
    }
    match (&p.uploaded, p.fields.get(field)) {
        (Some((name, size)), _) if name == field && *size > 0 => Ok(()),
        (None, Some(id)) if fake.lock().files.contains(id) => Ok(()),
        (None, Some(_)) => Err("Bad Request: wrong file identifier/HTTP URL specified"),
        _ => Err("Bad Request: there is no file in the request"),
    }
}

async fn call(
    State(fake): State<Arc<FakeTelegram>>,
    Path((bot, method)): Path<(String, String)>,
    req: Request,
) -> Response {
    fake.calls.fetch_add(1, Ordering::SeqCst);
    if bot != format!("bot{}", fake.config.bot_token) {
        return refusal(StatusCode::UNAUTHORIZED, "Unauthorized", None);
    }
    let Some(p) = params(req).await else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "Bad Request: can't parse request",
            None,
        );
    };
    match method.as_str() {
        "setWebhook" => return set_webhook(&fake, &p),
        "getWebhookInfo" => {
            let hook = fake.lock().webhook.clone().unwrap_or_default();
            return axum::Json(serde_json::json!({ "ok": true, "result": {
                "url": hook.0, "has_custom_certificate": false, "pending_update_count": 0,
                "allowed_updates": hook.2,
            }}))
            .into_response();
        }
        _ => {}
    }
    if let Err(why) = check(&fake, &method, &p) {
        let status = if why == "Not Found" {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::BAD_REQUEST
        };
        return refusal(status, why, None);
    }
    let chat = p.fields["chat_id"].trim().to_string();
    if !fake.config.latency.is_zero() {
        tokio::time::sleep(fake.config.latency).await;
    }
    if method != "sendMessage" && !fake.config.file_latency.is_zero() {
        tokio::time::sleep(fake.config.file_latency).await;
    }
    let (result, lost) = {
        let mut inner = fake.lock();
        let first_file = method != "sendMessage" && fake.config.throttle_first_file;
        let admitted = if first_file && inner.throttled_files.insert(chat.clone()) {
            Err(1)
        } else {
            fake.admit(&mut inner, &chat)
        };
        if let Err(wait) = admitted {
            drop(inner);
            fake.throttled.fetch_add(1, Ordering::SeqCst);
            let said = format!("Too Many Requests: retry after {wait}");
            return refusal(StatusCode::TOO_MANY_REQUESTS, &said, Some(wait));
        }
        let result = deliver(&mut inner, &method, &chat, &p);
        let lost = inner.rng.per_mille(fake.config.ambiguous_per_mille);
        if lost {
            inner.ambiguous.push(chat.clone());
        }
        (result, lost.then_some(inner.ambiguous.len()))
    };
    match lost {
        Some(n) if n % 2 == 1 => (
            StatusCode::BAD_GATEWAY,
            [("content-type", "text/html")],
            "<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>",
        )
            .into_response(),
        Some(_) => {
            tokio::time::sleep(fake.config.hang).await;
            axum::Json(serde_json::json!({ "ok": true, "result": result })).into_response()
        }
        None => axum::Json(serde_json::json!({ "ok": true, "result": result })).into_response(),
    }
}

/// Puts the message in the chat; the `result` Telegram answers with.
fn deliver(inner: &mut Inner, method: &str, chat: &str, p: &Params) -> serde_json::Value {
    let id = {
        let next = inner.next_id.entry(chat.to_string()).or_insert(0);
        *next += 1;
        *next
    };
    let mut result = serde_json::json!({
        "message_id": id, "date": chrono::Utc::now().timestamp(),
        "chat": { "id": chat.parse::<i64>().unwrap_or(0), "type": "private" },
    });
    let mut file_id = None;
    let text;
    if method == "sendMessage" {
        text = p.fields["text"].clone();
        result["text"] = serde_json::Value::String(text.clone());
    } else {
        let field = FILE_METHODS
            .iter()
            .find(|(m, _)| *m == method)
            .map(|(_, f)| *f)
            .unwrap_or("document");
        let fid = match (&p.uploaded, p.fields.get(field)) {
            (Some(_), _) | (None, None) => format!("{field}-{chat}-{id}"),
            (None, Some(known)) => known.clone(),
        };
        inner.files.insert(fid.clone());
        result[field] = if field == "photo" {
            serde_json::json!([
                { "file_id": format!("{fid}-small"), "width": 90, "height": 90 },
                { "file_id": fid, "width": 800, "height": 800 },
            ])
        } else {
            serde_json::json!({ "file_id": fid })
        };
        text = p.fields.get("caption").cloned().unwrap_or_default();
        file_id = Some(fid);
    }
    inner.messages.push(Message {
        chat: chat.to_string(),
        message_id: id,
        method: method.to_string(),
        text,
        file_id,
        at: chrono::Utc::now(),
    });
    result
}
