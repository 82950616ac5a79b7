//! The Telegram adapter against a local fake of the Bot API that checks each request's shape
//! and answers as Telegram does, errors included.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Request};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use herald::model::compose::AttachmentRef;
use herald::server::channels::telegram::{Settings, Telegram, carried_as};
use herald::server::channels::{Channel, Outgoing, SendError, http_client};

/// (method, content type, body as text) of each call.
type Calls = Arc<Mutex<Vec<(String, String, String)>>>;

async fn fake_telegram(token: &'static str) -> (String, Calls) {
    let calls: Calls = Default::default();
    let log = calls.clone();
    let app = axum::Router::new().route(
        "/{bot}/{method}",
        post(move |Path((bot, method)): Path<(String, String)>, req: Request| {
            let log = log.clone();
            async move {
                assert_eq!(bot, format!("bot{token}"), "the token is in the path");
                let ct = req.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
                let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap();
                let text = String::from_utf8_lossy(&body).into_owned();
                log.lock().unwrap().push((method.clone(), ct, text.clone()));
                let n = log.lock().unwrap().len() as i64;
                let chat = if text.contains("\"chat_id\":\"403\"") || text.contains("\r\n\r\n403\r\n") { 403 } else { 0 };
                if chat == 403 {
                    return (StatusCode::FORBIDDEN, r#"{"ok":false,"error_code":403,"description":"Forbidden: bot was blocked by the user"}"#).into_response();
                }
                if text.contains("slow down") {
                    return (StatusCode::TOO_MANY_REQUESTS, r#"{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 5","parameters":{"retry_after":5}}"#).into_response();
                }
                if text.contains("broken") {
                    return (StatusCode::BAD_REQUEST, r#"{"ok":false,"error_code":400,"description":"Bad Request: chat not found"}"#).into_response();
                }
                // As Telegram answers: a sent file is described with its file_id (a photo in
                // several sizes, the largest last).
                let file = match method.as_str() {
                    "sendPhoto" => format!(r#","photo":[{{"file_id":"AgAC-small-{n}","width":90}},{{"file_id":"AgAC-photo-{n}","width":800}}]"#),
                    "sendDocument" => format!(r#","document":{{"file_id":"BQAC-doc-{n}","file_name":"menu.pdf"}}"#),
                    _ => String::new(),
                };
                (StatusCode::OK, format!(r#"{{"ok":true,"result":{{"message_id":{},"chat":{{"id":42}},"date":0{file}}}}}"#, 100 + n)).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), calls)
}

fn out(to: &str, body: &str, attachments: Vec<AttachmentRef>) -> Outgoing {
    Outgoing {
        parts: Default::default(),
        subject: String::new(),
        unsubscribe_url: None,
        template: None,
        idempotency_key: "herald-delivery-1".into(),
        address: to.into(),
        body: body.into(),
        attachments,
    }
}

#[tokio::test]
async fn text_and_files_go_by_the_methods_telegram_documents() {
    let (base, calls) = fake_telegram("123:ABC").await;
    let dir = tempfile::tempdir().unwrap();
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    std::fs::write(dir.path().join("a".repeat(32)), &png).unwrap();
    std::fs::write(dir.path().join("b".repeat(32)), b"%PDF-1.7\n").unwrap();
    let tg = Telegram::new(
        Settings {
            bot_token: "123:ABC".into(),
            webhook_secret: "s".into(),
            base_url: base,
            timeout_ms: None,
        },
        http_client(),
        herald::server::files::Files::in_folder(dir.path()),
    );
    // Text alone: sendMessage with chat_id and text; the id is made unique by the chat.
    let a = tg.send(&out("42", "Hi Ann 🎉", vec![])).await.unwrap();
    assert_eq!(a.provider_message_id, "42:101");
    {
        let c = calls.lock().unwrap();
        assert_eq!(c[0].0, "sendMessage");
        assert!(c[0].1.starts_with("application/json"));
        let v: serde_json::Value = serde_json::from_str(&c[0].2).unwrap();
        assert_eq!(
            v,
            serde_json::json!({ "chat_id": "42", "text": "Hi Ann 🎉" })
        );
    }
    // A photo carries the text as its caption; a PDF goes as a document.
    let files = vec![
        AttachmentRef {
            id: "a".repeat(32),
            name: "sale.png".into(),
            mime: "image/png".into(),
            size: 16,
        },
        AttachmentRef {
            id: "b".repeat(32),
            name: "menu.pdf".into(),
            mime: "application/pdf".into(),
            size: 9,
        },
    ];
    let a = tg
        .send(&out("42", "Our menu", files.clone()))
        .await
        .unwrap();
    assert_eq!(a.provider_message_id, "42:102", "the first message's id");
    {
        let c = calls.lock().unwrap();
        assert_eq!(
            (c[1].0.as_str(), c[2].0.as_str()),
            ("sendPhoto", "sendDocument")
        );
        assert!(c[1].1.starts_with("multipart/form-data"));
        assert!(
            c[1].2.contains("name=\"photo\"; filename=\"sale.png\""),
            "{}",
            c[1].2
        );
        assert!(c[1].2.contains("name=\"caption\"\r\n\r\nOur menu"));
        assert!(c[2].2.contains("name=\"document\"; filename=\"menu.pdf\""));
        assert!(!c[2].2.contains("caption"), "the caption goes once");
    }
    // To the next chat the same files go by their file_id: nothing is uploaded again.
    tg.send(&out("43", "Our menu", files.clone()))
        .await
        .unwrap();
    {
        let c = calls.lock().unwrap();
        assert_eq!(
            (c[3].0.as_str(), c[4].0.as_str()),
            ("sendPhoto", "sendDocument")
        );
        assert!(
            c[3].2.contains("name=\"photo\"\r\n\r\nAgAC-photo-2\r\n"),
            "{}",
            c[3].2
        );
        assert!(!c[3].2.contains("filename="), "not uploaded again");
        assert!(
            c[4].2.contains("name=\"document\"\r\n\r\nBQAC-doc-3\r\n"),
            "{}",
            c[4].2
        );
    }
    // Too large for a bot (50 MB): refused before anything goes; a large photo is a document.
    let mut huge = files[1].clone();
    huge.size = 51 * 1024 * 1024;
    let before = calls.lock().unwrap().len();
    let refused = tg.send(&out("44", "Big", vec![huge])).await.unwrap_err();
    assert!(refused.to_string().contains("50 MB"), "{refused}");
    assert_eq!(calls.lock().unwrap().len(), before, "nothing sent");
    let mut photo = files[0].clone();
    photo.size = 11 * 1024 * 1024;
    assert_eq!(carried_as(&photo).unwrap(), ("sendDocument", "document"));
    let typed = |mime: &str| AttachmentRef {
        mime: mime.into(),
        ..files[0].clone()
    };
    assert_eq!(
        carried_as(&typed("audio/ogg")).unwrap(),
        ("sendVoice", "voice")
    );
    assert_eq!(
        carried_as(&typed("video/mp4")).unwrap(),
        ("sendVideo", "video")
    );
    assert_eq!(
        carried_as(&typed("image/gif")).unwrap(),
        ("sendAnimation", "animation")
    );
    assert_eq!(
        carried_as(&typed("text/vcard")).unwrap(),
        ("sendDocument", "document")
    );

    // Blocked, rate-limited, refused.
    assert!(matches!(
        tg.send(&out("403", "Hi", vec![])).await,
        Err(SendError::Unreachable { reason }) if reason.contains("blocked the bot")
    ));
    assert_eq!(
        tg.send(&out("42", "slow down", vec![])).await.unwrap_err(),
        SendError::Throttled {
            reason: "Telegram: Too many messages from the bot. Nothing: Herald waits as long as Telegram asks."
                .into(),
            retry_after: Duration::from_secs(5),
        }
    );
    assert_eq!(
        tg.send(&out("42", "broken", vec![])).await.unwrap_err(),
        SendError::Unreachable {
            reason:
                "Telegram: No Telegram chat has this id. Check the customer's Telegram chat id."
                    .into()
        }
    );
}
