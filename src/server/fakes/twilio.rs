//! A local stand-in for Twilio's Messages API, as strict as its documentation, for the tests
//! that send SMS through the real adapter and read Twilio's status callbacks back.
//!
//! What it does as Twilio does:
//! - `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded, with HTTP basic auth
//!   (account SID and auth token): a wrong one is 401 with code 20003; a missing `To` is 400
//!   with 21604, a missing `From` 21603, an empty `Body` 21602. Accepted is 201 with the new
//!   message's `sid` (`SM…`) and `status: queued`.
//! - **No idempotency**: every accepted request is a text on the customer's phone.
//! - **Status callbacks**: when the request named a `StatusCallback`, Twilio posts to it, form
//!   encoded and signed with `X-Twilio-Signature` (HMAC-SHA1 under the auth token over the
//!   URL and the sorted parameters): `sent`, then `delivered`, or `undelivered` with
//!   `ErrorCode` 30003 for `undelivered_per_mille` of them. Without one, nobody hears back.
//! - **Lost answers**: `ambiguous_per_mille` of the accepted messages are answered 500 (their
//!   callbacks still come).
//! - **Price**: `GET /2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}.json` answers the
//!   message resource, whose `price` (a negative decimal string, in `price_unit`) is null
//!   until its final status is known ("populated after the message has been sent; may not be
//!   immediately available"), then `price_per_segment` × its `num_segments`. An unknown sid is
//!   404 with code 20404.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use base64::Engine;

use crate::server::channels::sms::signature;
use crate::server::seed::Rng;

#[derive(Debug, Clone)]
pub struct Config {
    pub account_sid: String,
    pub auth_token: String,
    /// Per mille of messages the carrier does not deliver (`undelivered`, 30003).
    pub undelivered_per_mille: u64,
    /// Per mille of accepted messages answered 500 (sent all the same).
    pub ambiguous_per_mille: u64,
    /// What one segment costs, in millionths of a US dollar.
    pub price_per_segment: i64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            account_sid: "AC0123456789abcdef0123456789abcdef".into(),
            auth_token: "twilio-auth-token-fake".into(),
            undelivered_per_mille: 50,
            ambiguous_per_mille: 0,
            price_per_segment: 7_900,
        }
    }
}

/// One text the fake accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub sid: String,
    pub to: String,
    pub body: String,
    /// The `StatusCallback` the request named.
    pub status_callback: Option<String>,
}

#[derive(Default)]
struct Inner {
    sent: Vec<Sent>,
    /// The final status each callback reported, by sid (`delivered`, `undelivered`).
    reported: HashMap<String, String>,
    /// Each message's index in `sent`, by sid.
    by_sid: HashMap<String, usize>,
    /// The messages whose final status is known (their price is set), by sid.
    finals: HashMap<String, String>,
    rng: Option<Rng>,
}

pub struct FakeTwilio {
    config: Config,
    inner: Mutex<Inner>,
    /// Callbacks not yet answered with 2xx.
    unanswered: AtomicU64,
    next: AtomicU64,
}

impl FakeTwilio {
    /// Starts the fake on a free loopback port; returns it with its base URL.
    pub async fn start(config: Config) -> std::io::Result<(Arc<FakeTwilio>, String)> {
        let fake = Arc::new(FakeTwilio {
            config,
            inner: Mutex::new(Inner {
                rng: Some(Rng::new(0x5715)),
                ..Inner::default()
            }),
            unanswered: AtomicU64::new(0),
            next: AtomicU64::new(1),
        });
        let app = axum::Router::new()
            .route("/2010-04-01/Accounts/{sid}/Messages.json", post(messages))
            .route(
                "/2010-04-01/Accounts/{sid}/Messages/{message}",
                axum::routing::get(message),
            )
            .with_state(fake.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok((fake, format!("http://{addr}")))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every text accepted, in order.
    pub fn sent(&self) -> Vec<Sent> {
        self.lock().sent.clone()
    }

    /// The final status each callback reported and Herald answered with 2xx, by sid.
    pub fn reported(&self) -> HashMap<String, String> {
        self.lock().reported.clone()
    }

    /// Waits until every callback was answered with 2xx (or `limit` passed); whether it was.
    pub async fn settle(&self, limit: Duration) -> bool {
        let start = std::time::Instant::now();
        while self.unanswered.load(Ordering::SeqCst) > 0 {
            if start.elapsed() > limit {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }

    /// Posts `status` for message `sid` to `url`, signed, until it is answered with 2xx (a
    /// few tries).
    async fn callback(self: Arc<Self>, url: String, sid: String, to: String, status: &str) -> bool {
        let mut params: Vec<(String, String)> = vec![
            ("MessageSid".into(), sid.clone()),
            ("MessageStatus".into(), status.into()),
            ("AccountSid".into(), self.config.account_sid.clone()),
            ("To".into(), to),
        ];
        if status == "undelivered" {
            params.push(("ErrorCode".into(), "30003".into()));
        }
        let sig = signature(&self.config.auth_token, &url, &params);
        let client = crate::server::channels::http_client();
        for _ in 0..20 {
            let answer = client
                .post(&url)
                .header("X-Twilio-Signature", &sig)
                .form(&params)
                .timeout(Duration::from_secs(15))
                .send()
                .await;
            if answer.is_ok_and(|r| r.status().is_success()) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    }
}

fn error(status: StatusCode, code: i64, message: &str) -> Response {
    (
        status,
        axum::Json(serde_json::json!({
            "code": code, "message": message, "status": status.as_u16(),
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
        })),
    )
        .into_response()
}

/// Whether the request's basic auth is the account's SID and token.
fn authorised(fake: &FakeTwilio, sid: &str, headers: &HeaderMap) -> bool {
    let want = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        fake.config.account_sid, fake.config.auth_token
    ));
    sid == fake.config.account_sid
        && headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == format!("Basic {want}"))
}

async fn messages(
    State(fake): State<Arc<FakeTwilio>>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !authorised(&fake, &sid, &headers) {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let form: HashMap<String, String> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| form.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let (Some(to), Some(_from)) = (field("To"), field("From")) else {
        let (code, what) = if field("To").is_none() {
            (21604, "A 'To' phone number is required.")
        } else {
            (21603, "A 'From' phone number is required.")
        };
        return error(StatusCode::BAD_REQUEST, code, what);
    };
    let Some(text) = field("Body") else {
        return error(StatusCode::BAD_REQUEST, 21602, "Message body is required.");
    };
    let sid = format!("SM{:032x}", fake.next.fetch_add(1, Ordering::SeqCst));
    let callback = field("StatusCallback").map(str::to_string);
    let (undelivered, lost) = {
        let mut inner = fake.lock();
        let at = inner.sent.len();
        inner.by_sid.insert(sid.clone(), at);
        inner.sent.push(Sent {
            sid: sid.clone(),
            to: to.to_string(),
            body: text.to_string(),
            status_callback: callback.clone(),
        });
        let mut rng = inner.rng.take().unwrap_or_else(|| Rng::new(1));
        let out = (
            rng.per_mille(fake.config.undelivered_per_mille),
            rng.per_mille(fake.config.ambiguous_per_mille),
        );
        inner.rng = Some(rng);
        out
    };
    if let Some(url) = callback {
        fake.unanswered.fetch_add(1, Ordering::SeqCst);
        let (fake, sid, to) = (fake.clone(), sid.clone(), to.to_string());
        tokio::spawn(async move {
            fake.clone()
                .callback(url.clone(), sid.clone(), to.clone(), "sent")
                .await;
            let status = if undelivered {
                "undelivered"
            } else {
                "delivered"
            };
            fake.lock().finals.insert(sid.clone(), status.to_string());
            if fake.clone().callback(url, sid.clone(), to, status).await {
                fake.lock().reported.insert(sid, status.to_string());
            }
            fake.unanswered.fetch_sub(1, Ordering::SeqCst);
        });
    }
    if lost {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            20500,
            "Internal Server Error",
        );
    }
    (
        StatusCode::CREATED,
        axum::Json(serde_json::json!({
            "sid": sid, "status": "queued", "to": to, "body": text,
            "account_sid": fake.config.account_sid,
        })),
    )
        .into_response()
}

/// `GET …/Messages/{MessageSid}.json`: the message resource, its price once its final status
/// is known.
async fn message(
    State(fake): State<Arc<FakeTwilio>>,
    Path((account, message)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if !authorised(&fake, &account, &headers) {
        return error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    }
    let msid = message.strip_suffix(".json").unwrap_or(&message);
    let inner = fake.lock();
    let Some(m) = inner.by_sid.get(msid).map(|i| &inner.sent[*i]) else {
        return error(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        );
    };
    let segments = crate::model::fit::sms(&m.body).segments.max(1) as i64;
    let done = inner.finals.get(msid);
    let price = done.map(|_| {
        let micros = segments * fake.config.price_per_segment;
        format!("-{}.{:05}", micros / 1_000_000, (micros % 1_000_000) / 10)
    });
    axum::Json(serde_json::json!({
        "sid": m.sid, "to": m.to, "body": m.body,
        "status": done.map(String::as_str).unwrap_or("sent"),
        "num_segments": segments.to_string(),
        "price": price, "price_unit": "USD",
        "account_sid": fake.config.account_sid,
    }))
    .into_response()
}
