//! The WhatsApp Cloud API adapter against a local fake of the Graph API that checks each
//! request and answers as Meta documents, errors included.

use std::sync::{Arc, Mutex};

use axum::extract::{Path, Request};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use herald::model::compose::AttachmentRef;
use herald::server::channels::whatsapp::{Settings, WhatsApp, carried_as};
use herald::server::channels::{Channel, Outgoing, SendError, http_client};

type Calls = Arc<Mutex<Vec<(String, String, String, String)>>>;

async fn fake_graph() -> (String, Calls) {
    let calls: Calls = Default::default();
    let log = calls.clone();
    let app = axum::Router::new().route(
        "/v21.0/{pnid}/{what}",
        post(move |Path((pnid, what)): Path<(String, String)>, req: Request| {
            let log = log.clone();
            async move {
                let auth = req.headers().get("authorization").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
                assert_eq!(pnid, "1061");
                let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap();
                let text = String::from_utf8_lossy(&body).into_owned();
                log.lock().unwrap().push((what.clone(), auth.clone(), text.clone(), String::new()));
                if auth != "Bearer EAAG-token" {
                    return (StatusCode::UNAUTHORIZED, r#"{"error":{"message":"Invalid OAuth access token.","type":"OAuthException","code":190}}"#).into_response();
                }
                if what == "media" {
                    return (StatusCode::OK, r#"{"id":"media-77"}"#).into_response();
                }
                if text.contains("\"to\":\"1429\"") {
                    return (StatusCode::BAD_REQUEST, r#"{"error":{"message":"(#130429) Rate limit hit","type":"OAuthException","code":130429,"fbtrace_id":"x"}}"#).into_response();
                }
                if text.contains("\"to\":\"1026\"") {
                    return (StatusCode::BAD_REQUEST, r#"{"error":{"message":"Message Undeliverable.","type":"OAuthException","code":131026,"fbtrace_id":"x"}}"#).into_response();
                }
                let n = log.lock().unwrap().len();
                (StatusCode::OK, format!(r#"{{"messaging_product":"whatsapp","contacts":[{{"input":"x","wa_id":"x"}}],"messages":[{{"id":"wamid.{n}"}}]}}"#)).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v21.0"), calls)
}

fn out(to: &str, files: Vec<AttachmentRef>) -> Outgoing {
    Outgoing {
        parts: Default::default(),
        subject: String::new(),
        unsubscribe_url: None,
        template: None,
        idempotency_key: "herald-delivery-9".into(),
        address: to.into(),
        body: "Hi Ann 🌷".into(),
        attachments: files,
    }
}

#[tokio::test]
async fn text_and_media_go_as_the_cloud_api_documents_and_errors_are_read() {
    let (base, calls) = fake_graph().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("d".repeat(32)), b"%PDF-1.7\n").unwrap();
    let wa = WhatsApp::new(
        Settings {
            phone_number_id: "1061".into(),
            waba_id: String::new(),
            access_token: "EAAG-token".into(),
            app_secret: "s".into(),
            verify_token: "v".into(),
            base_url: base,
            timeout_ms: None,
        },
        http_client(),
        herald::server::files::Files::in_folder(dir.path()),
    );
    let a = wa.send(&out("4915112345678", vec![])).await.unwrap();
    assert_eq!(a.provider_message_id, "wamid.1");
    {
        let c = calls.lock().unwrap();
        assert_eq!(c[0].0, "messages");
        assert_eq!(c[0].1, "Bearer EAAG-token");
        let v: serde_json::Value = serde_json::from_str(&c[0].2).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "messaging_product": "whatsapp", "recipient_type": "individual", "to": "4915112345678",
                "type": "text", "text": { "preview_url": false, "body": "Hi Ann 🌷" },
                "biz_opaque_callback_data": "herald-delivery-9"
            })
        );
    }
    // A PDF: uploaded first, then sent by its media id as a document with the text as caption.
    let pdf = AttachmentRef {
        id: "d".repeat(32),
        name: "menu.pdf".into(),
        mime: "application/pdf".into(),
        size: 9,
    };
    wa.send(&out("4915112345678", vec![pdf])).await.unwrap();
    {
        let c = calls.lock().unwrap();
        assert_eq!(c[1].0, "media");
        assert!(
            c[1].2
                .contains("name=\"messaging_product\"\r\n\r\nwhatsapp")
        );
        assert!(c[1].2.contains("name=\"file\"; filename=\"menu.pdf\""));
        let v: serde_json::Value = serde_json::from_str(&c[2].2).unwrap();
        assert_eq!(v["type"], "document");
        assert_eq!(
            v["document"],
            serde_json::json!({ "id": "media-77", "caption": "Hi Ann 🌷", "filename": "menu.pdf" })
        );
    }
    let file = |mime: &str| AttachmentRef {
        id: "f".repeat(32),
        name: "f".into(),
        mime: mime.into(),
        size: 1,
    };
    assert_eq!(carried_as(&file("image/jpeg")).unwrap(), "image");
    assert_eq!(carried_as(&file("audio/ogg")).unwrap(), "audio");
    assert_eq!(carried_as(&file("text/plain")).unwrap(), "document");
    assert!(
        carried_as(&file("text/vcard")).is_err(),
        "WhatsApp takes no vCard files"
    );
    assert!(
        matches!(wa.send(&out("1429", vec![])).await, Err(SendError::Throttled { reason, .. }) if reason.contains("130429"))
    );
    // 131026 reads as its row in the codes table: undeliverable, in plain words.
    assert!(matches!(
        wa.send(&out("1026", vec![])).await.unwrap_err(),
        SendError::Undeliverable { reason }
            if reason.starts_with("WhatsApp 131026: ") && reason.contains("may not be on WhatsApp")
    ));
}

/// Templates are read from the business account, every page, as Meta lists them; the fake
/// refuses a template message that does not fit its template, with Meta's codes.
#[tokio::test]
async fn templates_are_synced_page_by_page_and_template_sends_are_checked() {
    use herald::server::fakes::whatsapp::{Config, FakeWhatsApp};
    let mut templates: Vec<serde_json::Value> = (0..130)
        .map(|i| {
            serde_json::json!({
                "name": format!("offer_{i:03}"), "language": "en_US", "status": "APPROVED",
                "category": "MARKETING", "parameter_format": "POSITIONAL", "id": i.to_string(),
                "components": [{ "type": "BODY", "text": "Hi {{1}}, {{2}} off" }]
            })
        })
        .collect();
    templates[3] = serde_json::json!({
        "name": "offer_003", "language": "en_US", "status": "APPROVED", "category": "MARKETING",
        "parameter_format": "NAMED",
        "components": [{ "type": "BODY", "text": "Hi {{first_name}}, {{discount}} off" }]
    });
    templates[1]["status"] = "PAUSED".into();
    templates[2]["status"] = "DISABLED".into();
    let config = Config {
        templates,
        ..Config::default()
    };
    let (fake, base) = FakeWhatsApp::start(config.clone()).await.unwrap();
    let settings = Settings {
        phone_number_id: config.phone_number_id.clone(),
        waba_id: config.waba_id.clone(),
        access_token: config.access_token.clone(),
        app_secret: config.app_secret.clone(),
        verify_token: "v".into(),
        base_url: base.clone(),
        timeout_ms: None,
    };
    let wa = WhatsApp::new(
        settings.clone(),
        http_client(),
        herald::server::files::Files::in_folder(&std::env::temp_dir()),
    );
    let got = wa.templates().await.unwrap();
    assert_eq!(got.len(), 130, "all two pages of 100");
    assert_eq!(got[0].body_parameters(), vec!["1", "2"]);
    assert_eq!(got[1].status, "PAUSED");
    // Without the account id, nothing is asked.
    let none = WhatsApp::new(
        Settings {
            waba_id: String::new(),
            ..settings.clone()
        },
        http_client(),
        herald::server::files::Files::in_folder(&std::env::temp_dir()),
    );
    assert!(
        none.templates()
            .await
            .unwrap_err()
            .contains("Business Account ID")
    );
    // A wrong token is Meta's 190.
    let wrong = WhatsApp::new(
        Settings {
            access_token: "nope".into(),
            ..settings
        },
        http_client(),
        herald::server::files::Files::in_folder(&std::env::temp_dir()),
    );
    assert!(wrong.templates().await.unwrap_err().contains("190"));

    // Template messages as Meta checks them.
    let send = |name: &str, params: Vec<&str>| {
        let body = serde_json::json!({
            "messaging_product": "whatsapp", "to": "4915100000001", "type": "template",
            "template": { "name": name, "language": { "code": "en_US" }, "components": [
                { "type": "body", "parameters": params.iter().map(|p| serde_json::json!({ "type": "text", "text": p })).collect::<Vec<_>>() }
            ] }
        });
        let url = format!("{base}/{}/messages", config.phone_number_id);
        let token = config.access_token.clone();
        async move {
            let r = http_client()
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let v: serde_json::Value = r.json().await.unwrap();
            v["error"]["code"].as_i64()
        }
    };
    assert_eq!(
        send("offer_000", vec!["Ann", "20%"]).await,
        None,
        "accepted"
    );
    assert_eq!(send("offer_000", vec!["Ann"]).await, Some(132000));
    assert_eq!(send("offer_000", vec!["Ann", " "]).await, Some(131008));
    assert_eq!(send("offer_001", vec!["Ann", "20%"]).await, Some(132015));
    assert_eq!(send("offer_002", vec!["Ann", "20%"]).await, Some(132016));
    assert_eq!(send("no_such", vec!["Ann", "20%"]).await, Some(132001));
    // A named template's parameters must name its placeholders.
    let named = |names: [&str; 2]| {
        let body = serde_json::json!({
            "messaging_product": "whatsapp", "to": "4915100000001", "type": "template",
            "template": { "name": "offer_003", "language": { "code": "en_US" }, "components": [
                { "type": "body", "parameters": names.iter().map(|n| serde_json::json!({ "type": "text", "parameter_name": n, "text": "x" })).collect::<Vec<_>>() }
            ] }
        });
        let url = format!("{base}/{}/messages", config.phone_number_id);
        let token = config.access_token.clone();
        async move {
            let r = http_client()
                .post(url)
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            let v: serde_json::Value = r.json().await.unwrap();
            v["error"]["code"].as_i64()
        }
    };
    assert_eq!(named(["discount", "first_name"]).await, None, "accepted");
    assert_eq!(named(["discount", "last_name"]).await, Some(132000));
    assert_eq!(
        fake.accepted().len(),
        2,
        "only the fitting ones are messages"
    );
}

/// A file goes up to WhatsApp once per channel, however many recipients it is sent to at
/// once: the other sends wait for that upload and reuse its media id.
#[tokio::test]
async fn media_is_uploaded_once_and_its_id_reused() {
    let (base, calls) = fake_graph().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("e".repeat(32)), b"%PDF-1.7\n").unwrap();
    let wa = WhatsApp::new(
        Settings {
            phone_number_id: "1061".into(),
            waba_id: String::new(),
            access_token: "EAAG-token".into(),
            app_secret: "s".into(),
            verify_token: "v".into(),
            base_url: base,
            timeout_ms: None,
        },
        http_client(),
        herald::server::files::Files::in_folder(dir.path()),
    );
    let pdf = AttachmentRef {
        id: "e".repeat(32),
        name: "menu.pdf".into(),
        mime: "application/pdf".into(),
        size: 9,
    };
    let messages: Vec<Outgoing> = (0..8)
        .map(|i| out(&format!("49151000000{i}"), vec![pdf.clone()]))
        .collect();
    let sent = futures::future::join_all(messages.iter().map(|m| wa.send(m))).await;
    assert!(sent.iter().all(|r| r.is_ok()), "{sent:?}");
    let c = calls.lock().unwrap();
    assert_eq!(c.iter().filter(|c| c.0 == "media").count(), 1, "one upload");
    let sent_with: Vec<serde_json::Value> = c
        .iter()
        .filter(|c| c.0 == "messages")
        .map(|c| serde_json::from_str::<serde_json::Value>(&c.2).unwrap()["document"]["id"].clone())
        .collect();
    assert_eq!(sent_with.len(), 8);
    assert!(sent_with.iter().all(|id| id == "media-77"), "{sent_with:?}");
}

/// A template with a media header, a dynamic URL button and a quick reply, sent by the adapter
/// as Meta documents it (the header's file uploaded once, by its media id) and checked by the
/// strict fake: a header or button left out is refused as Meta refuses it, and the fake's
/// per-user marketing limit fails the message after it is accepted (131049).
#[tokio::test]
async fn template_headers_buttons_and_the_marketing_limit() {
    use herald::server::channels::OutTemplate;
    use herald::server::fakes::whatsapp::{Config, FakeWhatsApp};
    let config = Config {
        templates: vec![serde_json::json!({
            "name": "sale", "language": "en", "status": "APPROVED", "category": "MARKETING",
            "components": [
                { "type": "HEADER", "format": "IMAGE" },
                { "type": "BODY", "text": "Hi {{1}}" },
                { "type": "BUTTONS", "buttons": [
                    { "type": "QUICK_REPLY", "text": "Not for me" },
                    { "type": "URL", "text": "Shop", "url": "https://shop.example/s/{{1}}" }
                ] }
            ]
        })],
        marketing_per_user: Some(1),
        ..Config::default()
    };
    let (fake, base) = FakeWhatsApp::start(config.clone()).await.unwrap();
    let wa_base = base.clone();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f".repeat(32)), b"\xff\xd8\xff\xe0jpeg").unwrap();
    let wa = WhatsApp::new(
        Settings {
            phone_number_id: config.phone_number_id.clone(),
            waba_id: config.waba_id.clone(),
            access_token: config.access_token.clone(),
            app_secret: config.app_secret.clone(),
            verify_token: "v".into(),
            base_url: base,
            timeout_ms: None,
        },
        http_client(),
        herald::server::files::Files::in_folder(dir.path()),
    );
    let photo = AttachmentRef {
        id: "f".repeat(32),
        name: "sale.jpg".into(),
        mime: "image/jpeg".into(),
        size: 8,
    };
    let template = OutTemplate {
        name: "sale".into(),
        language: "en".into(),
        named: false,
        params: vec![("1".into(), "Ann".into())],
        header: Vec::new(),
        header_media: Some(("image", photo.clone())),
        buttons: vec![
            (0, "quick_reply", "not-for-me".into()),
            (1, "url", "spring".into()),
        ],
    };
    let message = |to: &str, t: OutTemplate| Outgoing {
        parts: Default::default(),
        template: Some(t),
        ..out(to, vec![photo.clone()])
    };
    let sent = wa.send(&message("4915100000001", template.clone())).await;
    assert!(sent.is_ok(), "{sent:?}");
    let body = fake.accepted()[0].body.clone();
    let components = body["template"]["components"].as_array().unwrap().clone();
    assert_eq!(components[0]["type"], "header");
    assert_eq!(components[0]["parameters"][0]["type"], "image");
    assert!(
        components[0]["parameters"][0]["image"]["id"].is_string(),
        "{body}"
    );
    assert_eq!(components[2]["sub_type"], "quick_reply");
    assert_eq!(components[2]["parameters"][0]["payload"], "not-for-me");
    assert_eq!(components[3]["sub_type"], "url");
    assert_eq!(components[3]["index"], "1");
    assert_eq!(components[3]["parameters"][0]["text"], "spring");

    // Without the header's file, or the URL button's end: refused as Meta refuses them.
    let refused = |t: OutTemplate| {
        let m = message("4915100000002", t);
        let wa = &wa;
        async move { wa.send(&m).await.unwrap_err().to_string() }
    };
    let no_header = OutTemplate {
        header_media: None,
        ..template.clone()
    };
    assert!(refused(no_header).await.contains("132012"));
    let no_link = OutTemplate {
        buttons: vec![(0, "quick_reply", "x".into())],
        ..template.clone()
    };
    assert!(refused(no_link).await.contains("132000"));
    assert_eq!(fake.accepted().len(), 1, "refused ones are no messages");

    // A second marketing template to the same customer: accepted, then failed with 131049.
    let again = wa
        .send(&message("4915100000001", template.clone()))
        .await
        .unwrap();
    let other = wa.send(&message("4915100000003", template)).await.unwrap();
    let plans = fake.plans();
    assert_eq!(plans[&again.provider_message_id].code, 131049);
    assert!(plans[&again.provider_message_id].failed);
    assert!(
        !plans[&other.provider_message_id].failed,
        "another customer's first"
    );

    // Uploads and media messages as Meta checks them: a type WhatsApp does not take, or an id
    // that names no uploaded file of the message's kind, is 131053.
    let code = |r: reqwest::Response| async move {
        r.json::<serde_json::Value>().await.unwrap()["error"]["code"].as_i64()
    };
    let upload = |mime: &'static str| {
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", mime)
            .part(
                "file",
                reqwest::multipart::Part::bytes(b"GIF89a".to_vec()).file_name("a"),
            );
        http_client()
            .post(format!("{}/{}/media", wa_base, config.phone_number_id))
            .bearer_auth(&config.access_token)
            .multipart(form)
            .send()
    };
    assert_eq!(code(upload("image/gif").await.unwrap()).await, Some(131053));
    assert_eq!(code(upload("image/png").await.unwrap()).await, None);
    let pdf_id = upload("application/pdf")
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let media_message = |kind: &str, id: &str| {
        http_client()
            .post(format!("{}/{}/messages", wa_base, config.phone_number_id))
            .bearer_auth(&config.access_token)
            .json(&serde_json::json!({
                "messaging_product": "whatsapp", "to": "4915100000009", "type": kind,
                kind: { "id": id }
            }))
            .send()
    };
    assert_eq!(
        code(media_message("image", &pdf_id).await.unwrap()).await,
        Some(131053)
    );
    assert_eq!(
        code(media_message("document", "404").await.unwrap()).await,
        Some(131053)
    );
    assert_eq!(
        code(media_message("document", &pdf_id).await.unwrap()).await,
        None
    );
}
