//! End to end across real channel adapters: one broadcast reaches customers on WhatsApp,
//! Telegram, email and SMS (local fakes of the Graph API, the Bot API and Twilio, and a real
//! SMTP server), sent by the dispatcher; then the providers' webhooks report deliveries,
//! reads, a failure and replies through the real router, and the broadcast's results are
//! what happened, equal to a full recount.

use herald::model::UserId;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, Request};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::post;
use herald::model::Role;
use herald::model::audience::AudienceRule;
use herald::model::compose::{Compose, Intent};
use herald::server::channels::webhook::signature as meta_signature;
use herald::server::clock::{Clock, SystemClock};
use herald::server::db::{Db, NewChannel, NewCustomer};
use herald::server::dispatch::{Dispatcher, Settings};
use herald::server::{AppState, config, http as serve};
use http_body_util::BodyExt;
use mailin_embedded::response::OK;
use mailin_embedded::{Handler, Response, Server, SslConfig};
use tower::ServiceExt;

/// Every request a fake provider received: (provider, recipient).
type Log = Arc<Mutex<Vec<(&'static str, String)>>>;

async fn serve_fake(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

/// The Graph API: `wamid.<to>` for each text message.
async fn fake_graph(log: Log) -> String {
    serve_fake(axum::Router::new().route(
        "/v21.0/{pnid}/messages",
        post(move |req: Request| {
            let log = log.clone();
            async move {
                let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap();
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                assert_eq!(v["messaging_product"], "whatsapp");
                let to = v["to"].as_str().unwrap().to_string();
                log.lock().unwrap().push(("whatsapp", to.clone()));
                axum::Json(serde_json::json!({ "messaging_product": "whatsapp", "contacts": [{ "input": to, "wa_id": to }], "messages": [{ "id": format!("wamid.{to}") }] }))
            }
        }),
    ))
    .await
    .to_string()
        + "/v21.0"
}

/// The Bot API: message ids from 100 on.
async fn fake_telegram(log: Log) -> String {
    serve_fake(axum::Router::new().route(
        "/{bot}/sendMessage",
        post(move |Path(bot): Path<String>, req: Request| {
            let log = log.clone();
            async move {
                assert_eq!(bot, "bot77:tg-token");
                let body = axum::body::to_bytes(req.into_body(), 1 << 20).await.unwrap();
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                let chat = v["chat_id"].as_str().unwrap().to_string();
                let n = {
                    let mut l = log.lock().unwrap();
                    l.push(("telegram", chat.clone()));
                    l.len()
                };
                axum::Json(serde_json::json!({ "ok": true, "result": { "message_id": 100 + n, "chat": { "id": chat.parse::<i64>().unwrap() }, "date": 0 } }))
            }
        }),
    ))
    .await
}

/// Twilio's Messages API: `SM<digits of To>`.
async fn fake_twilio(log: Log) -> String {
    serve_fake(axum::Router::new().route(
        "/2010-04-01/Accounts/{sid}/Messages.json",
        post(move |req: Request| {
            let log = log.clone();
            async move {
                let body = axum::body::to_bytes(req.into_body(), 1 << 20)
                    .await
                    .unwrap();
                let form: Vec<(String, String)> =
                    form_urlencoded::parse(&body).into_owned().collect();
                let to = form.iter().find(|(k, _)| k == "To").unwrap().1.clone();
                log.lock().unwrap().push(("sms", to.clone()));
                let sid = format!("SM{}", to.trim_start_matches('+'));
                (
                    StatusCode::CREATED,
                    axum::Json(serde_json::json!({ "sid": sid, "status": "queued" })),
                )
                    .into_response()
            }
        }),
    ))
    .await
}

#[derive(Clone)]
struct Smtp(Log);

impl Handler for Smtp {
    fn rcpt(&mut self, to: &str) -> Response {
        self.0.lock().unwrap().push(("email", to.to_string()));
        OK
    }
}

fn smtp_server(log: Log) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut server = Server::new(Smtp(log));
    server
        .with_ssl(SslConfig::None)
        .unwrap()
        .with_tcp_listener(listener);
    std::thread::spawn(move || {
        let _ = server.serve();
    });
    port
}

async fn channel(db: &Db, kind: &str, config: serde_json::Value) -> i64 {
    db.insert_channel(
        &NewChannel {
            kind: kind.into(),
            name: format!("{kind} channel"),
            config_json: config.to_string(),
            rate_per_sec: 1000,
        },
        SystemClock.now(),
    )
    .await
    .unwrap()
}

async fn call(app: &axum::Router, req: axum::http::Request<Body>) -> (StatusCode, String) {
    let res = app.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = res.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn a_broadcast_on_four_kinds_of_channel_reports_true_results(db: &Db) {
    let log: Log = Default::default();
    let now = SystemClock.now();
    let wa = channel(
        db,
        "whatsapp",
        serde_json::json!({ "phone_number_id": "1061", "access_token": "EAAG", "app_secret": "meta-secret", "verify_token": "v", "base_url": fake_graph(log.clone()).await }),
    )
    .await;
    let tg = channel(
        db,
        "telegram",
        serde_json::json!({ "bot_token": "77:tg-token", "webhook_secret": "tg-secret", "base_url": fake_telegram(log.clone()).await }),
    )
    .await;
    let email = channel(
        db,
        "email",
        serde_json::json!({ "smtp_host": "127.0.0.1", "smtp_port": smtp_server(log.clone()), "security": "none", "from": "News <news@shop.test>" }),
    )
    .await;
    let sms = channel(
        db,
        "sms",
        serde_json::json!({ "account_sid": "AC1", "auth_token": "twilio-token", "from": "+15550000", "base_url": fake_twilio(log.clone()).await }),
    )
    .await;

    // Three customers per kind; everyone has a phone, so the channel order decides.
    let mut people = Vec::new();
    for i in 0..12 {
        let phone = format!("+1666000{i:04}");
        let mut c = NewCustomer {
            name: format!("Person {i}"),
            phone: Some(phone),
            time_zone: "UTC".into(),
            ..Default::default()
        };
        match i / 3 {
            0 => c.whatsapp_id = Some(format!("4915100{i:04}")),
            1 => c.telegram_chat_id = Some(format!("9100{i:04}")),
            2 => c.email = Some(format!("person{i}@example.com")),
            _ => {}
        }
        people.push(c);
    }
    db.insert_customers_bulk(&people, now).await.unwrap();
    let author = db
        .create_user("e2e@herald.test", "E2E", Role::Staff, "x", now)
        .await
        .unwrap();
    let v = Compose {
        name: "Spring menu".into(),
        body: "Hi {{first_name|there}}, our spring menu is out.".into(),
        audience: AudienceRule::default(),
        channel_ids: vec![wa, tg, email, sms],
        ..Default::default()
    }
    .validate(Intent::SendNow, now)
    .unwrap();
    let b = db
        .create_broadcast(&v, UserId(author), "e2e-key-000000001", now)
        .await
        .unwrap()
        .0;

    // The dispatcher sends it through the four adapters.
    let dispatcher = Dispatcher::new(
        db.clone(),
        Arc::new(SystemClock),
        Default::default(),
        Settings::default(),
    );
    let mut finished = false;
    for _ in 0..50 {
        if dispatcher.round().await.unwrap().finished.contains(&b) {
            finished = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(finished, "{:?}", db.inspect().delivery_states(b).await);
    let mut reached: Vec<(&str, String)> = log.lock().unwrap().clone();
    reached.sort();
    let count = |kind: &str| reached.iter().filter(|(k, _)| *k == kind).count();
    assert_eq!(
        (
            count("whatsapp"),
            count("telegram"),
            count("email"),
            count("sms")
        ),
        (3, 3, 3, 3),
        "{reached:?}"
    );
    assert_eq!(
        db.inspect().counters(b).await.unwrap(),
        [12, 12, 0, 0, 0, 0]
    );
    let rows = db.inspect().deliveries_of(b).await.unwrap();
    let ids_on = |ch: i64| -> Vec<String> {
        rows.iter()
            .filter(|r| r.2 == ch)
            .map(|r| r.4.clone().unwrap())
            .collect()
    };
    let (wa_ids, tg_ids, email_ids, sms_ids) = (ids_on(wa), ids_on(tg), ids_on(email), ids_on(sms));
    assert!(
        email_ids
            .iter()
            .all(|m| m.starts_with("<herald-delivery-") && m.ends_with("@shop.test>"))
    );

    // The providers call back through the real router.
    let (leptos_options, mut conf) = config::load(std::path::Path::new("Leptos.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    conf.data_dir = dir.path().to_path_buf();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let app = serve::router(AppState {
        dispatcher: Arc::new(dispatcher),
        ..herald::server::startup::state(
            leptos_options,
            conf,
            herald::server::startup::Parts {
                db: db.clone(),
                clock,
                links: Default::default(),
            },
        )
    });

    // WhatsApp: all three delivered, two read (one "delivered" arriving late), one reply
    // quoting the broadcast message.
    let wa_hook = |value: serde_json::Value| {
        let json = serde_json::json!({ "object": "whatsapp_business_account", "entry": [{ "id": "WABA", "changes": [{ "field": "messages", "value": value }]}]}).to_string();
        axum::http::Request::post(format!("/webhooks/whatsapp/{wa}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                "X-Hub-Signature-256",
                meta_signature("meta-secret", json.as_bytes()),
            )
            .body(Body::from(json))
            .unwrap()
    };
    let status = |id: &str, s: &str| serde_json::json!({ "id": id, "status": s, "timestamp": "1700000000", "recipient_id": "x" });
    let (code, body) = call(
        &app,
        wa_hook(serde_json::json!({ "messaging_product": "whatsapp", "statuses": [
            status(&wa_ids[0], "read"), status(&wa_ids[1], "delivered"), status(&wa_ids[2], "delivered"),
            status(&wa_ids[0], "delivered"), status(&wa_ids[1], "read")
        ]})),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");
    let from = wa_ids[2].trim_start_matches("wamid.");
    let (code, body) = call(
        &app,
        wa_hook(serde_json::json!({ "messaging_product": "whatsapp",
            "contacts": [{ "profile": { "name": "Person 2" }, "wa_id": from }],
            "messages": [{ "from": from, "id": "wamid.IN1", "timestamp": "1700000100", "type": "text",
                           "text": { "body": "Book me a table" }, "context": { "from": "15550000", "id": wa_ids[2] } }]
        })),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");

    // Telegram: one reply to the broadcast message (Telegram reports no delivery or read).
    let (chat, message_id) = tg_ids[1].split_once(':').unwrap();
    let update = serde_json::json!({ "update_id": 1, "message": {
        "message_id": 9001, "date": 0, "text": "Yes!",
        "chat": { "id": chat.parse::<i64>().unwrap(), "type": "private" },
        "from": { "id": 1, "is_bot": false, "first_name": "Person" },
        "reply_to_message": { "message_id": message_id.parse::<i64>().unwrap(), "date": 0, "chat": { "id": 1, "type": "private" } }
    }});
    let (code, body) = call(
        &app,
        axum::http::Request::post(format!("/webhooks/telegram/{tg}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header("X-Telegram-Bot-Api-Secret-Token", "tg-secret")
            .body(Body::from(update.to_string()))
            .unwrap(),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{body}");

    // SMS: two delivered, one undelivered after all (Twilio-signed callbacks).
    for (sid, st) in [
        (&sms_ids[0], "delivered"),
        (&sms_ids[1], "delivered"),
        (&sms_ids[2], "undelivered"),
    ] {
        let path = format!("/webhooks/sms/{sms}");
        let params = vec![
            ("MessageSid".to_string(), sid.clone()),
            ("MessageStatus".to_string(), st.to_string()),
            ("ErrorCode".to_string(), "30003".to_string()),
        ];
        let sig = herald::server::channels::sms::signature(
            "twilio-token",
            &format!("http://herald.test{path}"),
            &params,
        );
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&params)
            .finish();
        let (code, text) = call(
            &app,
            axum::http::Request::post(&path)
                .header(header::HOST, "herald.test")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header("X-Twilio-Signature", sig)
                .body(Body::from(body))
                .unwrap(),
        )
        .await;
        assert_eq!(code, StatusCode::OK, "{text}");
    }

    // Results: audience 12; successful 11 (12 accepted, one SMS undelivered later); delivered
    // 3 WhatsApp + 2 SMS; read 2; replied 2; failed 1. Equal to a recount of the rows.
    let counters = db.inspect().counters(b).await.unwrap();
    assert_eq!(counters, [12, 11, 5, 2, 2, 1]);
    assert_eq!(counters, db.recount(b).await.unwrap());
    let by_channel = db.inspect().counters_by_channel(b).await.unwrap();
    assert_eq!(by_channel, db.recount_by_channel(b).await.unwrap());
    let mut expected = vec![
        (wa, [3, 3, 3, 2, 1, 0]),
        (tg, [3, 3, 0, 0, 1, 0]),
        (email, [3, 3, 0, 0, 0, 0]),
        (sms, [3, 2, 2, 0, 0, 1]),
    ];
    expected.sort();
    assert_eq!(by_channel, expected);
    let states = db.inspect().delivery_states(b).await.unwrap();
    let failed: Vec<_> = db
        .inspect()
        .deliveries_of(b)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.3 == "failed")
        .collect();
    assert_eq!(failed.len(), 1, "{states:?}");
    assert_eq!(failed[0].4.as_deref(), Some(sms_ids[2].as_str()));
    // Email and Telegram deliveries stay "sent": those providers report nothing further.
    for r in db.inspect().deliveries_of(b).await.unwrap() {
        if r.2 == email || r.2 == tg {
            assert_eq!(r.3, "sent");
        }
    }
    assert_eq!(email_ids.len(), 3);
}

on_both_backends!(a_broadcast_on_four_kinds_of_channel_reports_true_results);
