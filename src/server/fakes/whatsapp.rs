//! A local stand-in for Meta's WhatsApp Cloud API, as strict as its documentation, for the
//! tests and the benchmark that send through the real WhatsApp adapter.
//!
//! What it does as Meta does:
//! - `POST /{version}/{phone-number-id}/messages` with `Authorization: Bearer <token>`: a wrong
//!   token is 401 (code 190), an unknown phone number id 400 (code 100), a body that is not
//!   JSON, lacks `messaging_product: "whatsapp"` or `to`, or has an empty or overlong text
//!   (4,096 characters) 400 (code 100). Anything else is accepted with a new `wamid.` id.
//! - `GET /{version}/{waba-id}/message_templates`: the configured templates, in pages
//!   (`limit`, the `after` cursor, `paging.next` while more follow). A template message must
//!   name an approved template in its language (132001; paused 132015, disabled 132016) and
//!   give its body exactly its parameters (132000; a named template's by `parameter_name`),
//!   none empty (131008). `biz_opaque_callback_data` is at most 512 characters (100).
//! - `POST /{version}/{phone-number-id}/media`: a type WhatsApp does not take or a file over its
//!   type's limit is refused (131053), and a media message must name an uploaded file of its
//!   kind (131053).
//! - **No idempotency**: every accepted request is a message on the customer's phone, whatever
//!   key or body it repeats. [`FakeWhatsApp::received`] counts them per recipient.
//! - **The 24-hour window**: a free-form (non-template) message to someone who has not written
//!   within 24 hours is accepted, then fails with a `failed` status webhook, error 131047.
//! - Status webhooks (`sent`, `delivered`, `read`; `failed` as above), each carrying the
//!   message's `biz_opaque_callback_data` when it had one, and a reply that quotes
//!   the message (`context.id`), signed with `X-Hub-Signature-256` under the app secret,
//!   posted to the configured webhook URL at once, shuffled and some of them twice (Meta gives
//!   no order and repeats a webhook it is unsure arrived). An answer other than 2xx is retried
//!   with a growing delay, as Meta does; those answers are counted.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::sync::mpsc;

use crate::model::template::placeholders;
use crate::server::channels::webhook::signature;
use crate::server::seed::Rng;

/// How the fake behaves.
#[derive(Debug, Clone)]
pub struct Config {
    pub phone_number_id: String,
    pub access_token: String,
    /// Signs the webhooks (the app secret Herald's channel holds).
    pub app_secret: String,
    /// Per mille of delivered messages also reported read.
    pub read_per_mille: u64,
    /// Per mille of delivered messages the customer answers, quoting the message.
    pub reply_per_mille: u64,
    /// Per mille of webhooks posted a second time.
    pub repeat_per_mille: u64,
    /// Webhooks posted at once.
    pub posters: usize,
    /// Refuse free-form messages outside the 24-hour window (as Meta does).
    pub enforce_window: bool,
    /// The business account whose templates `GET /{version}/{waba-id}/message_templates` lists.
    pub waba_id: String,
    /// Its templates, as the Message Templates API returns them (name, language, status,
    /// category, parameter_format, components).
    pub templates: Vec<serde_json::Value>,
    /// Meta's per-user marketing limit: how many marketing template messages one customer
    /// gets from businesses in the fake's life (its day); a further one is accepted, then fails
    /// with a `failed` status, error 131049. Meta publishes no number: `None` is no limit.
    pub marketing_per_user: Option<usize>,
    /// The number's throughput: messages a second (Meta's default tier is 80; a number is
    /// raised to 1,000 by Meta). Over it a message is refused with 130429 and not sent.
    pub per_number_per_sec: f64,
    /// Per mille of accepted messages whose answer is lost after they were sent: answered
    /// 500 with error 131000, or only after `hang` (past the client's timeout), in turn.
    pub ambiguous_per_mille: u64,
    pub hang: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            phone_number_id: "106540352242922".into(),
            access_token: "EAAG-fake-token".into(),
            app_secret: "fake-app-secret".into(),
            read_per_mille: 500,
            reply_per_mille: 200,
            repeat_per_mille: 100,
            posters: 16,
            enforce_window: true,
            waba_id: "102290129340398".into(),
            templates: Vec::new(),
            marketing_per_user: None,
            per_number_per_sec: 80.0,
            ambiguous_per_mille: 0,
            hang: Duration::from_secs(40),
        }
    }
}

/// One message the fake accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub wamid: String,
    pub to: String,
    pub body: serde_json::Value,
}

/// What the fake decided to report about a message.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Plan {
    pub delivered: bool,
    pub read: bool,
    pub replied: bool,
    /// Failed: with 131047 (outside the 24-hour window) or 131049 (the marketing limit).
    pub failed: bool,
    /// The failure's code; 0 when it did not fail.
    pub code: i64,
}

/// What kind of message the fake accepted, for what it reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// Text or media: only inside the 24-hour window.
    FreeForm,
    /// A marketing template: counted against the per-user marketing limit.
    Marketing,
    /// Any other template.
    Template,
}

#[derive(Default)]
struct Inner {
    accepted: Vec<Accepted>,
    plans: HashMap<String, Plan>,
    /// Customers who wrote within the last 24 hours.
    window_open: HashSet<String>,
    /// Marketing template messages each customer got.
    marketing: HashMap<String, usize>,
    /// Uploaded files by media id: their MIME type.
    media: HashMap<String, String>,
    rng: Option<Rng>,
    /// Where status and message webhooks go (Herald's `/webhooks/whatsapp/{channel}`);
    /// several (one per instance behind a load balancer) take turns.
    webhook_urls: Vec<String>,
    /// The number's throughput bucket: tokens, and when they were counted.
    throughput: Option<(f64, std::time::Instant)>,
    /// Recipients of messages sent whose answer was lost, one entry per such message.
    ambiguous: Vec<String>,
    /// Requests refused for the number's throughput.
    throttled: u64,
}

/// The running fake; its base URL is what a Herald channel's `base_url` setting takes.
pub struct FakeWhatsApp {
    config: Config,
    inner: Mutex<Inner>,
    hooks: mpsc::UnboundedSender<String>,
    /// Webhooks queued and not yet answered with 2xx.
    unanswered: AtomicU64,
    /// Webhook answers other than 2xx (each retried).
    refused: AtomicU64,
    posted: AtomicU64,
    next_id: AtomicU64,
}

impl FakeWhatsApp {
    /// Starts the fake on a free loopback port; returns it with its base URL
    /// (`http://127.0.0.1:port/v21.0`).
    pub async fn start(config: Config) -> std::io::Result<(Arc<FakeWhatsApp>, String)> {
        let (hooks, queue) = mpsc::unbounded_channel();
        let fake = Arc::new(FakeWhatsApp {
            inner: Mutex::new(Inner {
                rng: Some(Rng::new(0x5741)),
                ..Inner::default()
            }),
            config,
            hooks,
            unanswered: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            posted: AtomicU64::new(0),
            next_id: AtomicU64::new(1),
        });
        tokio::spawn(post_webhooks(fake.clone(), queue));
        let app = axum::Router::new()
            .route("/{version}/{phone}/messages", post(messages))
            .route(
                "/{version}/{phone}/media",
                post(media).layer(axum::extract::DefaultBodyLimit::max(110 << 20)),
            )
            .route(
                "/{version}/{waba}/message_templates",
                axum::routing::get(message_templates),
            )
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok((fake, format!("http://{addr}/v21.0")))
    }

    /// A Herald WhatsApp channel that sends to this fake (at `base_url`, as [`start`] gave it)
    /// at `rate` messages a second, with the fake's credentials and app secret.
    ///
    /// [`start`]: FakeWhatsApp::start
    pub fn channel(&self, base_url: &str, rate: i64) -> crate::server::db::NewChannel {
        let c = &self.config;
        crate::server::db::NewChannel {
            kind: "whatsapp".into(),
            name: "WhatsApp".into(),
            config_json: serde_json::json!({
                "phone_number_id": c.phone_number_id, "access_token": c.access_token,
                "app_secret": c.app_secret, "verify_token": "verify", "base_url": base_url,
                "waba_id": c.waba_id,
            })
            .to_string(),
            rate_per_sec: rate,
        }
    }

    /// Posts webhooks to these URLs from now on (none: no webhooks).
    pub fn send_webhooks_to(&self, urls: Vec<String>) {
        self.lock().webhook_urls = urls;
    }

    /// The customer `wa_id` wrote to the business just now: free-form messages may go to them
    /// for 24 hours.
    pub fn customer_wrote(&self, wa_id: &str) {
        self.lock().window_open.insert(wa_id.to_string());
    }

    /// The customer `wa_id` writes `text` to the business now, as a customer does on their
    /// phone: the 24-hour window opens, and the message goes to Herald as Meta's webhook.
    pub fn customer_writes(&self, wa_id: &str, text: &str) {
        self.customer_wrote(wa_id);
        let n = self.next_id.fetch_add(1, Ordering::SeqCst);
        let hook = self.envelope(serde_json::json!({
            "messaging_product": "whatsapp", "metadata": self.metadata(),
            "contacts": [{ "profile": { "name": "Customer" }, "wa_id": wa_id }],
            "messages": [{
                "from": wa_id, "id": format!("wamid.in.w{n}"), "timestamp": unix_now().to_string(),
                "type": "text", "text": { "body": text }
            }]
        }));
        if !self.lock().webhook_urls.is_empty() {
            self.unanswered.fetch_add(1, Ordering::SeqCst);
            let _ = self.hooks.send(hook);
        }
    }

    /// Every message accepted, in order.
    pub fn accepted(&self) -> Vec<Accepted> {
        self.lock().accepted.clone()
    }

    /// Messages each recipient got.
    pub fn received(&self) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        for a in &self.lock().accepted {
            *out.entry(a.to.clone()).or_default() += 1;
        }
        out
    }

    /// What the fake reports (or reported) about each message, by wamid.
    pub fn plans(&self) -> HashMap<String, Plan> {
        self.lock().plans.clone()
    }

    /// Webhooks queued or being retried, not yet answered with 2xx.
    pub fn unanswered(&self) -> u64 {
        self.unanswered.load(Ordering::SeqCst)
    }

    /// Webhook answers other than 2xx so far.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }

    /// Webhook requests answered with 2xx so far.
    pub fn posted(&self) -> u64 {
        self.posted.load(Ordering::SeqCst)
    }

    /// Waits until every webhook was answered with 2xx (or `limit` passed); whether they were.
    pub async fn settle(&self, limit: Duration) -> bool {
        let start = std::time::Instant::now();
        while self.unanswered() > 0 {
            if start.elapsed() > limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Keeps an accepted message; whether its answer is to be lost (the how-manyth such).
    fn take(&self, wamid: &str, to: &str, body: &serde_json::Value) -> Option<usize> {
        let mut inner = self.lock();
        inner.accepted.push(Accepted {
            wamid: wamid.to_string(),
            to: to.to_string(),
            body: body.clone(),
        });
        let lost = self.config.ambiguous_per_mille > 0 && {
            let mut rng = inner.rng.take().unwrap_or_else(|| Rng::new(1));
            let lost = rng.per_mille(self.config.ambiguous_per_mille);
            inner.rng = Some(rng);
            lost
        };
        if lost {
            inner.ambiguous.push(to.to_string());
        }
        lost.then_some(inner.ambiguous.len())
    }

    /// Recipients of messages sent whose answer was lost (500 131000 or a hang), one entry
    /// per such message.
    pub fn ambiguous(&self) -> Vec<String> {
        self.lock().ambiguous.clone()
    }

    /// Messages refused for the number's throughput (130429).
    pub fn throttled(&self) -> u64 {
        self.lock().throttled
    }

    /// Takes one message of the number's throughput (a bucket of a second's worth); false
    /// when it is used up.
    fn admit(&self) -> bool {
        let rate = self.config.per_number_per_sec.max(1.0);
        let mut inner = self.lock();
        let now = std::time::Instant::now();
        let (tokens, at) = inner.throughput.unwrap_or((rate, now));
        let tokens = (tokens + now.duration_since(at).as_secs_f64() * rate).min(rate);
        if tokens >= 1.0 {
            inner.throughput = Some((tokens - 1.0, now));
            true
        } else {
            inner.throughput = Some((tokens, now));
            inner.throttled += 1;
            false
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues the webhooks about an accepted message, shuffled, some twice.
    fn report(&self, wamid: &str, to: &str, sent: Sent, callback: Option<&str>) {
        let mut inner = self.lock();
        let outside =
            self.config.enforce_window && sent == Sent::FreeForm && !inner.window_open.contains(to);
        let over_limit = sent == Sent::Marketing
            && self.config.marketing_per_user.is_some_and(|limit| {
                let got = inner.marketing.entry(to.to_string()).or_default();
                *got += 1;
                *got > limit
            });
        let mut rng = inner.rng.take().unwrap_or_else(|| Rng::new(1));
        let plan = if outside || over_limit {
            Plan {
                failed: true,
                code: if outside { 131047 } else { 131049 },
                ..Plan::default()
            }
        } else {
            Plan {
                delivered: true,
                read: rng.per_mille(self.config.read_per_mille),
                replied: rng.per_mille(self.config.reply_per_mille),
                failed: false,
                code: 0,
            }
        };
        inner.plans.insert(wamid.to_string(), plan);
        if inner.webhook_urls.is_empty() {
            inner.rng = Some(rng);
            return;
        }
        let mut hooks = vec![self.status(wamid, to, "sent", callback, 0)];
        if plan.failed {
            hooks.push(self.status(wamid, to, "failed", callback, plan.code));
        }
        if plan.delivered {
            hooks.push(self.status(wamid, to, "delivered", callback, 0));
        }
        if plan.read {
            hooks.push(self.status(wamid, to, "read", callback, 0));
        }
        if plan.replied {
            let n = self.next_id.fetch_add(1, Ordering::SeqCst);
            hooks.push(self.reply(wamid, to, n));
        }
        for i in 0..hooks.len() {
            if rng.per_mille(self.config.repeat_per_mille) {
                hooks.push(hooks[i].clone());
            }
        }
        // Fisher–Yates: Meta promises no order.
        for i in (1..hooks.len()).rev() {
            let j = rng.below(i as u64 + 1) as usize;
            hooks.swap(i, j);
        }
        inner.rng = Some(rng);
        drop(inner);
        for h in hooks {
            self.unanswered.fetch_add(1, Ordering::SeqCst);
            let _ = self.hooks.send(h);
        }
    }

    fn envelope(&self, value: serde_json::Value) -> String {
        serde_json::json!({
            "object": "whatsapp_business_account",
            "entry": [{ "id": "102290129340398", "changes": [{ "field": "messages", "value": value }] }]
        })
        .to_string()
    }

    fn metadata(&self) -> serde_json::Value {
        serde_json::json!({ "display_phone_number": "15550783881", "phone_number_id": self.config.phone_number_id })
    }

    fn status(
        &self,
        wamid: &str,
        to: &str,
        status: &str,
        callback: Option<&str>,
        code: i64,
    ) -> String {
        let mut s = serde_json::json!({
            "id": wamid, "status": status, "timestamp": unix_now().to_string(), "recipient_id": to,
        });
        // Meta returns the message's `biz_opaque_callback_data` in each of its statuses.
        if let Some(data) = callback {
            s["biz_opaque_callback_data"] = serde_json::Value::String(data.to_string());
        }
        if status == "failed" && code == 131049 {
            s["errors"] = serde_json::json!([{
                "code": 131049, "title": "This message was not delivered to maintain healthy ecosystem engagement.",
                "message": "This message was not delivered to maintain healthy ecosystem engagement.",
                "error_data": { "details": "In order to maintain a healthy ecosystem engagement, the message failed to be delivered." },
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"
            }]);
        } else if status == "failed" {
            s["errors"] = serde_json::json!([{
                "code": 131047, "title": "Re-engagement message",
                "message": "Re-engagement message",
                "error_data": { "details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number." },
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/"
            }]);
        } else {
            s["pricing"] = serde_json::json!({ "billable": true, "pricing_model": "PMP", "category": "marketing", "type": "regular" });
        }
        self.envelope(serde_json::json!({
            "messaging_product": "whatsapp", "metadata": self.metadata(), "statuses": [s]
        }))
    }

    fn reply(&self, wamid: &str, to: &str, n: u64) -> String {
        self.envelope(serde_json::json!({
            "messaging_product": "whatsapp", "metadata": self.metadata(),
            "contacts": [{ "profile": { "name": "Customer" }, "wa_id": to }],
            "messages": [{
                "from": to, "id": format!("wamid.in.{n}"), "timestamp": unix_now().to_string(),
                "type": "text", "text": { "body": "Thanks, sounds good!" },
                "context": { "from": "15550783881", "id": wamid }
            }]
        }))
    }
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn graph_error(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({
            "error": { "message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEfGhIjK" }
        })),
    )
        .into_response()
}

/// The checks every Graph API call gets: the token and the phone number id.
fn check_caller(fake: &FakeWhatsApp, phone: &str, headers: &HeaderMap) -> Option<Response> {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth != format!("Bearer {}", fake.config.access_token) {
        return Some(graph_error(
            StatusCode::UNAUTHORIZED,
            190,
            "Invalid OAuth access token - Cannot parse access token",
        ));
    }
    if phone != fake.config.phone_number_id {
        return Some(graph_error(
            StatusCode::BAD_REQUEST,
            100,
            &format!(
                "Unsupported post request. Object with ID '{phone}' does not exist, cannot be loaded due to missing permissions, or does not support this operation."
            ),
        ));
    }
    None
}

async fn messages(
    State(fake): State<Arc<FakeWhatsApp>>,
    Path((_version, phone)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(r) = check_caller(&fake, &phone, &headers) {
        return r;
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return graph_error(StatusCode::BAD_REQUEST, 100, "Invalid parameter");
    };
    if v["messaging_product"] != "whatsapp" {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            "(#100) The parameter messaging_product is required.",
        );
    }
    let Some(to) = v["to"]
        .as_str()
        .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '+'))
    else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            "(#100) The parameter to is required.",
        );
    };
    let kind = v["type"].as_str().unwrap_or("text");
    if kind == "text" {
        let text = v["text"]["body"].as_str().unwrap_or_default();
        if text.trim().is_empty() {
            return graph_error(
                StatusCode::BAD_REQUEST,
                100,
                "(#100) Param text['body'] must be at least 1 character long",
            );
        }
        if text.chars().count() > 4096 {
            return graph_error(
                StatusCode::BAD_REQUEST,
                100,
                "(#100) Param text['body'] must be at most 4096 characters long.",
            );
        }
    }
    if v["biz_opaque_callback_data"]
        .as_str()
        .is_some_and(|d| d.chars().count() > 512)
    {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            "(#100) Param biz_opaque_callback_data must be at most 512 characters long.",
        );
    }
    if matches!(kind, "image" | "video" | "audio" | "document") {
        let id = v[kind]["id"].as_str().unwrap_or_default();
        if !media_fits(&fake, kind, id) {
            return graph_error(
                StatusCode::BAD_REQUEST,
                131053,
                "(#131053) Media upload error: no uploaded file of this type has that id",
            );
        }
    }
    let sent = if kind == "template" {
        match check_template(&fake, &v["template"]) {
            Err((status, code, message)) => return graph_error(status, code, message),
            Ok(category) if category == "MARKETING" => Sent::Marketing,
            Ok(_) => Sent::Template,
        }
    } else {
        Sent::FreeForm
    };
    if !fake.admit() {
        return graph_error(
            StatusCode::BAD_REQUEST,
            130429,
            "(#130429) Rate limit hit: Cloud API message throughput has been reached.",
        );
    }
    let wamid = format!(
        "wamid.HBgL{:012}",
        fake.next_id.fetch_add(1, Ordering::SeqCst)
    );
    let to = to.trim_start_matches('+').to_string();
    let lost = fake.take(&wamid, &to, &v);
    let callback = v["biz_opaque_callback_data"].as_str();
    fake.report(&wamid, &to, sent, callback);
    let answer = axum::Json(serde_json::json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": to, "wa_id": to }],
        "messages": [{ "id": wamid }]
    }))
    .into_response();
    lost_or(&fake, lost, answer).await
}

/// The answer to a message sent: `answer`, unless it is one whose answer is lost (the `n`th
/// such): then a 500 with 131000 or, in turn, `answer` after the hang.
async fn lost_or(fake: &FakeWhatsApp, lost: Option<usize>, answer: Response) -> Response {
    match lost {
        // Sent, and then Meta's side failed before it answered.
        Some(n) if n % 2 == 1 => graph_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            131000,
            "(#131000) Something went wrong",
        ),
        Some(_) => {
            tokio::time::sleep(fake.config.hang).await;
            answer
        }
        None => answer,
    }
}

/// What Meta answers a template message that does not fit its template: no such name or
/// language, or not approved (132001), paused (132015), disabled (132016), the body's
/// parameter count (132000), a header or button of the wrong kind (132012), an empty parameter
/// (131008); else the template's category.
fn check_template(
    fake: &FakeWhatsApp,
    t: &serde_json::Value,
) -> Result<String, (StatusCode, i64, &'static str)> {
    let named = |x: &serde_json::Value| x.as_str().is_some_and(|s| !s.is_empty());
    if !named(&t["name"]) || !named(&t["language"]["code"]) {
        return Err((
            StatusCode::BAD_REQUEST,
            100,
            "(#100) The parameters template['name'] and template['language']['code'] are required.",
        ));
    }
    let known = fake
        .config
        .templates
        .iter()
        .find(|k| k["name"] == t["name"] && k["language"] == t["language"]["code"]);
    let Some(known) = known.and_then(crate::model::template::Template::from_graph) else {
        return Err((
            StatusCode::NOT_FOUND,
            132001,
            "(#132001) Template name does not exist in the translation",
        ));
    };
    match known.status.as_str() {
        "APPROVED" => {}
        "PAUSED" => {
            return Err((
                StatusCode::BAD_REQUEST,
                132015,
                "(#132015) Template is Paused",
            ));
        }
        "DISABLED" => {
            return Err((
                StatusCode::BAD_REQUEST,
                132016,
                "(#132016) Template is disabled",
            ));
        }
        _ => {
            return Err((
                StatusCode::NOT_FOUND,
                132001,
                "(#132001) Template name does not exist in the translation",
            ));
        }
    }
    let components: Vec<&serde_json::Value> =
        t["components"].as_array().into_iter().flatten().collect();
    let of = |kind: &str| -> Vec<&serde_json::Value> {
        components
            .iter()
            .copied()
            .filter(|c| {
                c["type"]
                    .as_str()
                    .is_some_and(|k| k.eq_ignore_ascii_case(kind))
            })
            .collect()
    };
    let params = |c: Option<&&serde_json::Value>| -> Vec<serde_json::Value> {
        c.and_then(|c| c["parameters"].as_array())
            .cloned()
            .unwrap_or_default()
    };
    let count_mismatch = || {
        (
            StatusCode::BAD_REQUEST,
            132000,
            "(#132000) Number of parameters does not match the expected number of params",
        )
    };
    let format_mismatch = || {
        (
            StatusCode::BAD_REQUEST,
            132012,
            "(#132012) Parameter format does not match format in the created template",
        )
    };
    // The header: a media header needs its file (by id or link) of the header's type; a text
    // header exactly its placeholder.
    let header = params(of("header").first());
    let mut texts: Vec<serde_json::Value> = Vec::new();
    if let Some(media) = known.header_media() {
        let ok = header.len() == 1
            && header[0]["type"] == media
            && (header[0][media]["id"]
                .as_str()
                .is_some_and(|i| media_fits(fake, media, i))
                || header[0][media]["link"]
                    .as_str()
                    .is_some_and(|l| l.starts_with("https://")));
        if !ok {
            return Err(format_mismatch());
        }
    } else {
        let want = placeholders(&known.header_text());
        if header.len() != want.len() {
            return Err(count_mismatch());
        }
        if header.iter().any(|p| p["type"] != "text") {
            return Err(format_mismatch());
        }
        if known.parameter_format == "NAMED" && !names_match(&header, want) {
            return Err(count_mismatch());
        }
        texts.extend(header);
    }
    let given = params(of("body").first());
    if given.len() != known.body_parameters().len() {
        return Err(count_mismatch());
    }
    // A named template's parameters each name one of its placeholders.
    if known.parameter_format == "NAMED" && !names_match(&given, known.body_parameters()) {
        return Err(count_mismatch());
    }
    texts.extend(given);
    // Buttons: each dynamic URL button takes exactly one text (the end of its link); a quick
    // reply may take a payload; no other button takes anything.
    let buttons = known.buttons();
    let sent = of("button");
    for b in &buttons {
        let dynamic = b.kind == "URL" && !placeholders(&b.url).is_empty();
        let here: Vec<&&serde_json::Value> = sent
            .iter()
            .filter(|c| c["index"].as_str() == Some(b.index.to_string().as_str()))
            .collect();
        if dynamic && here.is_empty() {
            return Err(count_mismatch());
        }
    }
    for c in &sent {
        let index: Option<usize> = c["index"].as_str().and_then(|i| i.parse().ok());
        let Some(b) = index.and_then(|i| buttons.iter().find(|b| b.index == i)) else {
            return Err(count_mismatch());
        };
        let p = params(Some(c));
        match (c["sub_type"].as_str(), b.kind.as_str()) {
            (Some("url"), "URL") if !placeholders(&b.url).is_empty() => {
                if p.len() != 1 || p[0]["type"] != "text" {
                    return Err(count_mismatch());
                }
                texts.push(p[0].clone());
            }
            (Some("quick_reply"), "QUICK_REPLY") => {
                if p.len() != 1
                    || p[0]["type"] != "payload"
                    || p[0]["payload"].as_str().is_none_or(|s| s.is_empty())
                {
                    return Err(format_mismatch());
                }
            }
            _ => return Err(format_mismatch()),
        }
    }
    if texts
        .iter()
        .any(|p| p["text"].as_str().is_none_or(|s| s.trim().is_empty()))
    {
        return Err((
            StatusCode::BAD_REQUEST,
            131008,
            "(#131008) Required parameter is missing",
        ));
    }
    Ok(known.category.clone())
}

/// Whether `given` name (`parameter_name`) exactly the placeholders `want`, in any order.
fn names_match(given: &[serde_json::Value], mut want: Vec<String>) -> bool {
    let mut names: Vec<String> = given
        .iter()
        .filter_map(|p| p["parameter_name"].as_str().map(str::to_string))
        .collect();
    names.sort_unstable();
    want.sort_unstable();
    names == want
}

/// `GET /{version}/{waba-id}/message_templates`: the templates, `limit` to a page (25 by
/// default), with `paging.cursors.after` and `paging.next` while more follow.
async fn message_templates(
    State(fake): State<Arc<FakeWhatsApp>>,
    Path((version, waba)): Path<(String, String)>,
    headers: HeaderMap,
    axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>,
) -> Response {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if auth != format!("Bearer {}", fake.config.access_token) {
        return graph_error(StatusCode::UNAUTHORIZED, 190, "Invalid OAuth access token");
    }
    if waba != fake.config.waba_id {
        return graph_error(StatusCode::BAD_REQUEST, 100, "Unsupported get request.");
    }
    let limit: usize = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(25)
        .clamp(1, 100);
    let start: usize = match q.get("after") {
        // The cursor is the position, base64 as Meta's look.
        Some(a) => {
            use base64::Engine;
            let Some(n) = base64::engine::general_purpose::STANDARD
                .decode(a)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .and_then(|s| s.parse().ok())
            else {
                return graph_error(StatusCode::BAD_REQUEST, 100, "Invalid parameter");
            };
            n
        }
        None => 0,
    };
    let all = &fake.config.templates;
    let page: Vec<serde_json::Value> = all.iter().skip(start).take(limit).cloned().collect();
    let end = start + page.len();
    let cursor = |n: usize| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(n.to_string())
    };
    let mut paging =
        serde_json::json!({ "cursors": { "before": cursor(start), "after": cursor(end) } });
    if end < all.len() {
        paging["next"] = serde_json::Value::String(format!(
            "https://graph.facebook.com/{version}/{waba}/message_templates?limit={limit}&after={}",
            cursor(end)
        ));
    }
    axum::Json(serde_json::json!({ "data": page, "paging": paging })).into_response()
}

/// `POST /{version}/{phone-number-id}/media`: multipart `messaging_product`, `type` and
/// `file`. As Meta checks an upload: a type WhatsApp does not take, or a file over its type's
/// limit, is refused (131053); the media id names the file's type for the messages that send
/// it.
async fn media(
    State(fake): State<Arc<FakeWhatsApp>>,
    Path((_version, phone)): Path<(String, String)>,
    headers: HeaderMap,
    multipart: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    if let Some(r) = check_caller(&fake, &phone, &headers) {
        return r;
    }
    let Ok(mut multipart) = multipart else {
        return graph_error(StatusCode::BAD_REQUEST, 100, "Invalid parameter");
    };
    let (mut product, mut mime, mut size) = (String::new(), String::new(), None);
    while let Ok(Some(field)) = multipart.next_field().await {
        match field.name().unwrap_or_default() {
            "messaging_product" => product = field.text().await.unwrap_or_default(),
            "type" => mime = field.text().await.unwrap_or_default(),
            "file" => size = field.bytes().await.ok().map(|b| b.len() as u64),
            _ => {}
        }
    }
    let Some(size) = size.filter(|_| product == "whatsapp" && !mime.is_empty()) else {
        return graph_error(
            StatusCode::BAD_REQUEST,
            100,
            "(#100) The parameters messaging_product, type and file are required.",
        );
    };
    let file = crate::model::media::AttachmentRef {
        id: String::new(),
        name: "file".into(),
        mime: mime.clone(),
        size,
    };
    if let crate::model::media::Carry::Cannot(_) = crate::model::media::whatsapp(&file) {
        return graph_error(
            StatusCode::BAD_REQUEST,
            131053,
            "(#131053) Media upload error: the file type is not supported or the file is too large",
        );
    }
    let n = fake.next_id.fetch_add(1, Ordering::SeqCst);
    let id = format!("{}", 4_490_709_327_384_033u64 + n);
    fake.lock().media.insert(id.clone(), mime);
    axum::Json(serde_json::json!({ "id": id })).into_response()
}

/// Whether media message `kind` (`image`, `video`, `audio`, `document`) may send media id
/// `id`: an id the fake gave for a file of that kind.
fn media_fits(fake: &FakeWhatsApp, kind: &str, id: &str) -> bool {
    let Some(mime) = fake.lock().media.get(id).cloned() else {
        return false;
    };
    let file = crate::model::media::AttachmentRef {
        id: String::new(),
        name: String::new(),
        mime,
        size: 0,
    };
    match crate::model::media::whatsapp(&file) {
        crate::model::media::Carry::Native(k) => k == kind,
        crate::model::media::Carry::Document => kind == "document",
        crate::model::media::Carry::Cannot(_) => false,
    }
}

/// Posts the queued webhooks, `posters` at a time, each until it is answered with 2xx.
async fn post_webhooks(fake: Arc<FakeWhatsApp>, mut queue: mpsc::UnboundedReceiver<String>) {
    let client = crate::server::channels::http_client();
    let slots = Arc::new(tokio::sync::Semaphore::new(fake.config.posters.max(1)));
    let mut turn = 0usize;
    while let Some(body) = queue.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let urls = fake.lock().webhook_urls.clone();
        if urls.is_empty() {
            fake.unanswered.fetch_sub(1, Ordering::SeqCst);
            continue;
        }
        turn += 1;
        let (fake, client) = (fake.clone(), client.clone());
        tokio::spawn(async move {
            let sig = signature(&fake.config.app_secret, body.as_bytes());
            let mut wait = Duration::from_millis(50);
            for attempt in 0.. {
                let url = &urls[(turn + attempt) % urls.len()];
                let answer = client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("x-hub-signature-256", &sig)
                    .body(body.clone())
                    .timeout(Duration::from_secs(30))
                    .send()
                    .await;
                match answer {
                    Ok(r) if r.status().is_success() => {
                        fake.posted.fetch_add(1, Ordering::SeqCst);
                        break;
                    }
                    // An answer that is not 2xx (a server error): counted, and tried again.
                    Ok(_) => {
                        fake.refused.fetch_add(1, Ordering::SeqCst);
                    }
                    // No answer (Herald not listening yet, or restarting): tried again.
                    Err(_) => {}
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(2));
            }
            fake.unanswered.fetch_sub(1, Ordering::SeqCst);
            drop(slot);
        });
    }
}
