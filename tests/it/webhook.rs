//! The webhook channel against a local receiver: the exact request (body, idempotency key,
//! signature) and how each kind of answer is read.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use herald::model::compose::AttachmentRef;
use herald::server::channels::webhook::{Settings, Webhook, signature};
use herald::server::channels::{Channel, Outgoing, SendError, http_client};

type Seen = Arc<Mutex<Vec<(HeaderMap, String)>>>;
/// An answer: status, headers, body.
type Answer = (u16, Vec<(&'static str, &'static str)>, &'static str);

/// A receiver answering each request with the next of `answers`.
async fn receiver(answers: Vec<Answer>) -> (String, Seen) {
    let seen: Seen = Default::default();
    let log = seen.clone();
    let answers = Arc::new(Mutex::new(answers.into_iter()));
    let app = axum::Router::new().route(
        "/in",
        post(move |headers: HeaderMap, body: String| {
            let (log, answers) = (log.clone(), answers.clone());
            async move {
                log.lock().unwrap().push((headers, body));
                let (status, headers, body) = answers.lock().unwrap().next().unwrap();
                let mut r = (StatusCode::from_u16(status).unwrap(), body).into_response();
                for (k, v) in headers {
                    r.headers_mut().insert(k, v.parse().unwrap());
                }
                r
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/in"), seen)
}

fn message() -> Outgoing {
    Outgoing {
        parts: Default::default(),
        subject: String::new(),
        unsubscribe_url: None,
        template: None,
        idempotency_key: "herald-delivery-7".into(),
        address: "42".into(),
        body: "Hi Ann 🎉".into(),
        attachments: vec![AttachmentRef {
            id: "a".repeat(32),
            name: "menu.pdf".into(),
            mime: "application/pdf".into(),
            size: 1234,
        }],
    }
}

#[tokio::test]
async fn sends_the_documented_request_and_reads_each_answer() {
    let (url, seen) = receiver(vec![
        (200, vec![], r#"{"id":"their-1","duplicate":false}"#),
        (200, vec![], r#"{"id":"their-1","duplicate":true}"#),
        (429, vec![("retry-after", "7")], "slow down"),
        (503, vec![], "maintenance"),
        (400, vec![], r#"{"error":"unknown customer 42"}"#),
        (200, vec![], "not json"),
    ])
    .await;
    let hook = Webhook::new(
        Settings {
            url,
            secret: "s3cret".into(),
            timeout_ms: Some(2_000),
        },
        http_client(),
    );
    let m = message();
    let first = hook.send(&m).await.unwrap();
    assert_eq!(first.provider_message_id, "their-1");
    assert!(!first.replayed);
    assert!(
        hook.send(&m).await.unwrap().replayed,
        "a repeat is a replay"
    );
    assert_eq!(
        hook.send(&m).await.unwrap_err(),
        SendError::Throttled {
            reason: "HTTP 429: slow down".into(),
            retry_after: Duration::from_secs(7)
        }
    );
    // A 5xx may come after the receiver took it: maybe sent (the dispatcher sends it again,
    // as the receiver drops a repeat of the key).
    assert!(matches!(
        hook.send(&m).await,
        Err(SendError::MaybeSent { .. })
    ));
    assert_eq!(
        hook.send(&m).await.unwrap_err(),
        SendError::Permanent {
            reason: r#"HTTP 400: {"error":"unknown customer 42"}"#.into()
        }
    );
    // Accepted without an id of theirs: our key names it.
    assert_eq!(
        hook.send(&m).await.unwrap().provider_message_id,
        "herald-delivery-7"
    );

    let (headers, body) = seen.lock().unwrap()[0].clone();
    assert_eq!(headers["idempotency-key"], "herald-delivery-7");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(
        headers["x-herald-signature"].to_str().unwrap(),
        signature("s3cret", body.as_bytes())
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "id": "herald-delivery-7", "to": "42", "text": "Hi Ann 🎉",
            "attachments": [{ "name": "menu.pdf", "mime": "application/pdf", "size": 1234 }]
        })
    );
}

#[tokio::test]
async fn an_unreachable_or_silent_receiver_is_worth_retrying() {
    let hook = Webhook::new(
        Settings {
            url: "http://127.0.0.1:9/nothing-listens".into(),
            secret: "x".into(),
            timeout_ms: Some(500),
        },
        http_client(),
    );
    assert!(matches!(
        hook.send(&message()).await,
        Err(SendError::Transient { .. })
    ));
    let no_url = Webhook::new(Settings::default(), http_client());
    assert!(matches!(
        no_url.send(&message()).await,
        Err(SendError::Permanent { .. })
    ));
}

/// A receiver that answers 200 and then streams without end: Herald reads the first 64 KB of
/// any answer and no more, so the send is read at once instead of running into its timeout
/// (with the whole answer in memory).
#[tokio::test]
async fn an_endless_answer_is_read_only_up_to_its_cap() {
    let app = axum::Router::new().route(
        "/in",
        post(|| async {
            let chunk = bytes_of(16 * 1024);
            let endless =
                futures::stream::repeat_with(move || Ok::<_, std::io::Error>(chunk.clone()));
            axum::body::Body::from_stream(endless)
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let hook = Webhook::new(
        Settings {
            url: format!("http://{addr}/in"),
            secret: "x".into(),
            timeout_ms: Some(20_000),
        },
        http_client(),
    );
    let started = std::time::Instant::now();
    let sent = hook.send(&message()).await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "read for {:?}",
        started.elapsed()
    );
    let accepted = sent.expect("a 2xx answer is accepted");
    assert_eq!(accepted.provider_message_id, "herald-delivery-7");
}

fn bytes_of(n: usize) -> axum::body::Bytes {
    axum::body::Bytes::from(vec![b' '; n])
}
