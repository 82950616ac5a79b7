//! The SMS adapter against a local fake of a Twilio-style Messages API.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Request};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use herald::model::compose::AttachmentRef;
use herald::server::channels::sms::{Settings, Sms};
use herald::server::channels::{Channel, Outgoing, SendError, http_client};

type Calls = Arc<Mutex<Vec<(String, Option<String>, Vec<(String, String)>)>>>;

async fn fake_twilio() -> (String, Calls) {
    let calls: Calls = Default::default();
    let log = calls.clone();
    let app = axum::Router::new().route(
        "/2010-04-01/Accounts/{sid}/Messages.json",
        post(move |Path(sid): Path<String>, req: Request| {
            let log = log.clone();
            async move {
                let auth = req
                    .headers()
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_string());
                let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                    .await
                    .unwrap();
                let form: Vec<(String, String)> =
                    form_urlencoded::parse(&body).into_owned().collect();
                log.lock().unwrap().push((sid, auth, form.clone()));
                let to = form
                    .iter()
                    .find(|(k, _)| k == "To")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                match to.as_str() {
                    "+1000" => (
                        StatusCode::BAD_REQUEST,
                        r#"{"code":21211,"message":"Invalid 'To' Phone Number","status":400}"#,
                    )
                        .into_response(),
                    "+1429" => (
                        StatusCode::TOO_MANY_REQUESTS,
                        [("retry-after", "3")],
                        r#"{"code":20429,"message":"Too Many Requests","status":429}"#,
                    )
                        .into_response(),
                    _ => (
                        StatusCode::CREATED,
                        r#"{"sid":"SM0123456789abcdef","status":"queued"}"#,
                    )
                        .into_response(),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), calls)
}

fn out(to: &str) -> Outgoing {
    Outgoing {
        parts: Default::default(),
        subject: String::new(),
        unsubscribe_url: None,
        template: None,
        idempotency_key: "herald-delivery-3".into(),
        address: to.into(),
        body: "Hi Bo, 20% off today".into(),
        attachments: vec![AttachmentRef {
            id: "c".repeat(32),
            name: "menu.pdf".into(),
            mime: "application/pdf".into(),
            size: 9,
        }],
    }
}

#[tokio::test]
async fn sends_a_form_with_basic_auth_and_reads_twilio_answers() {
    let (base, calls) = fake_twilio().await;
    let sms = Sms::new(
        Settings {
            account_sid: "AC123".into(),
            auth_token: "tok".into(),
            from: "+15550000".into(),
            base_url: base,
            status_callback: "https://herald.example/webhooks/sms/4".into(),
        },
        http_client(),
    );
    let a = sms.send(&out("+15551234")).await.unwrap();
    assert_eq!(a.provider_message_id, "SM0123456789abcdef");
    {
        let c = calls.lock().unwrap();
        let (sid, auth, form) = &c[0];
        assert_eq!(sid, "AC123");
        // Basic base64("AC123:tok")
        assert_eq!(auth.as_deref(), Some("Basic QUMxMjM6dG9r"));
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("To"), Some("+15551234"));
        assert_eq!(get("From"), Some("+15550000"));
        assert_eq!(get("Body"), Some("Hi Bo, 20% off today\n(Files: menu.pdf)"));
        // The callback names the delivery, so a status after a crash records the send.
        assert_eq!(
            get("StatusCallback"),
            Some("https://herald.example/webhooks/sms/4?delivery=herald-delivery-3")
        );
    }
    // 21211 reads as its row in the codes table: the number is unusable.
    assert_eq!(
        sms.send(&out("+1000")).await.unwrap_err(),
        SendError::Unreachable {
            reason:
                "SMS 21211: The phone number is not valid. Correct the customer's phone number."
                    .into()
        }
    );
    assert_eq!(
        sms.send(&out("+1429")).await.unwrap_err(),
        SendError::Throttled {
            reason:
                "SMS 20429: Too many requests to Twilio. Nothing: Herald waits and tries again."
                    .into(),
            retry_after: Duration::from_secs(3)
        }
    );
}
