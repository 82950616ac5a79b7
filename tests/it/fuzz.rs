//! Fuzzing that must not panic, bounded so it runs in every CI: the wizard's form parser
//! (audience conditions included), the CSV importer's header and preview, the list and
//! customer query parsers, the customer form, `next=` after sign-in, and every provider's
//! webhook parser through the real router with correctly signed random payloads (so the
//! parsers, not the signature check, see them). `PROPTEST_CASES` raises the bound.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};

fn cases(n: u32) -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(n),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Text with the characters parsers trip over: quotes, separators, control characters,
/// multibyte letters, percent signs and digits.
fn nasty() -> impl Strategy<Value = String> + Clone {
    proptest::collection::vec(
        prop_oneof![
            Just("\"".to_string()),
            Just(",".to_string()),
            Just(";".to_string()),
            Just("\n".to_string()),
            Just("\r".to_string()),
            Just("\u{feff}".to_string()),
            Just("%".to_string()),
            Just(":".to_string()),
            Just("_".to_string()),
            Just("-1".to_string()),
            Just("99999999999999999999".to_string()),
            Just("tag:3".to_string()),
            Just("robot_group:1".to_string()),
            "[a-z0-9 ]{0,6}",
            "\\PC{0,3}",
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

#[test]
fn the_wizard_form_parser_takes_any_fields() {
    let names = prop_oneof![
        Just("step".to_string()),
        Just("name".to_string()),
        Just("body".to_string()),
        Just("match".to_string()),
        Just("send_at".to_string()),
        Just("channel".to_string()),
        Just("attachment".to_string()),
        Just("go".to_string()),
        (
            0usize..2000,
            prop_oneof![Just("field"), Just("op"), Just("id"), Just("x")]
        )
            .prop_map(|(n, part)| format!("cond_{n}_{part}")),
        (any::<i64>()).prop_map(|n| format!("prio_{n}")),
        nasty(),
    ];
    let fields = proptest::collection::vec((names, nasty()), 0..30);
    TestRunner::new(cases(256))
        .run(&fields, |fields| {
            let _ = herald::server::broadcast::compose::parse(&fields);
            Ok(())
        })
        .unwrap();
}

#[test]
fn the_csv_importer_reads_any_file() {
    use herald::model::import::Mapping;
    use herald::server::customers::import;
    let file = proptest::collection::vec(proptest::collection::vec(nasty(), 0..6), 0..8).prop_map(
        |rows| {
            rows.iter()
                .map(|cells| cells.join(","))
                .collect::<Vec<_>>()
                .join("\n")
        },
    );
    let bytes = prop_oneof![
        file.clone().prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..300),
        file.prop_map(|f| format!("name,phone,email,tags,time_zone,opted_out\n{f}").into_bytes()),
    ];
    TestRunner::new(cases(256))
        .run(&bytes, |bytes| {
            if let Ok(header) = import::read_header(bytes.as_slice()) {
                let names: Vec<&str> = header.iter().map(String::as_str).collect();
                let mapping = Mapping::from_header(&names).ok();
                let _ = import::preview(bytes.as_slice(), mapping.as_ref(), &|_| true, &|_| false);
            }
            let _ = import::preview(bytes.as_slice(), None, &|_| false, &|_| true);
            Ok(())
        })
        .unwrap();
}

/// The import's bound holds for any bytes, measured against the csv crate's own reading: a
/// refused file has a record (as csv reads it) over the bound, and a file with a record more
/// than its line break over the bound is refused, naming a line.
#[test]
fn the_csv_readers_bound_holds_for_any_file() {
    use herald::server::customers::import_limits::Bounded;
    use std::io::Read;
    let piece = prop_oneof![
        Just(b"\"".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b",".to_vec()),
        Just(b"\r\n".to_vec()),
        proptest::collection::vec(b'a'..=b'z', 0..40),
    ];
    let bytes = proptest::collection::vec(piece, 0..60).prop_map(|p| p.concat());
    TestRunner::new(cases(512))
        .run(&bytes, |bytes| {
            let limit = 32;
            let read = Bounded::with_limit(bytes.as_slice(), limit).read_to_end(&mut Vec::new());
            // The longest record as the csv crate reads it, its line break included.
            let mut csv = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(bytes.as_slice());
            let (mut record, mut longest, mut end) = (csv::ByteRecord::new(), 0u64, 0u64);
            while let Ok(true) = csv.read_byte_record(&mut record) {
                // From where the last record ended, past the blank lines csv skips.
                let mut start = end;
                while matches!(bytes.get(start as usize), Some(b'\r' | b'\n')) {
                    start += 1;
                }
                end = csv.position().byte();
                longest = longest.max(end.saturating_sub(start));
            }
            match read {
                Ok(_) => prop_assert!(longest <= limit as u64 + 2, "{longest} bytes passed"),
                Err(e) => {
                    prop_assert!(longest > limit as u64, "refused at {longest}");
                    prop_assert!(e.to_string().starts_with("line "), "{e}");
                }
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn list_customer_and_sign_in_parameters_take_any_text() {
    use herald::model::customer_edit::CustomerForm;
    use herald::model::list_query::RawListParams;
    use herald::model::{CustomerQuery, ListQuery};
    let text = proptest::option::of(nasty());
    let all = (
        (
            text.clone(),
            text.clone(),
            text.clone(),
            text.clone(),
            text.clone(),
        ),
        proptest::collection::vec(nasty(), 10),
    );
    TestRunner::new(cases(256))
        .run(&all, |((q, sort, dir, after, before), f)| {
            let raw = RawListParams {
                q: q.clone(),
                sort,
                dir,
                after: after.clone(),
                before: before.clone(),
            };
            let (query, _) = ListQuery::parse(&raw);
            let _ = query.href(query.anchor);
            let _ = CustomerQuery::parse(q.as_deref(), after.as_deref(), before.as_deref(), None);
            let form = CustomerForm {
                name: f[0].clone(),
                phone: f[1].clone(),
                email: f[2].clone(),
                whatsapp_id: f[3].clone(),
                telegram_chat_id: f[4].clone(),
                tags: f[5].clone(),
                groups: vec![f[6].clone()],
                assignee: f[7].clone(),
                time_zone: f[8].clone(),
                opted_out: f[9].is_empty(),
                version: 0,
            };
            let _ = form.validate();
            let next = herald::server::accounts::safe_next(Some(&f[0]));
            prop_assert!(next.starts_with('/') && !next.starts_with("//"), "{next}");
            Ok(())
        })
        .unwrap();
}

/// JSON shaped like the providers' webhooks: their keys, nested, with any values.
fn provider_json() -> impl Strategy<Value = serde_json::Value> {
    let key = prop_oneof![
        Just("object"),
        Just("entry"),
        Just("changes"),
        Just("field"),
        Just("value"),
        Just("statuses"),
        Just("messages"),
        Just("id"),
        Just("status"),
        Just("recipient_id"),
        Just("timestamp"),
        Just("errors"),
        Just("code"),
        Just("from"),
        Just("text"),
        Just("body"),
        Just("context"),
        Just("type"),
        Just("update_id"),
        Just("message"),
        Just("chat"),
        Just("message_id"),
        Just("reply_to_message"),
        Just("date"),
        Just("my_chat_member"),
        Just("new_chat_member"),
        Just("to"),
        Just("event"),
        Just("key"),
        Just("reply"),
        Just("pricing"),
        Just("metadata"),
    ];
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::json!(f)),
        nasty().prop_map(serde_json::Value::from),
        prop_oneof![
            Just("delivered"),
            Just("read"),
            Just("failed"),
            Just("sent"),
            Just("text"),
            Just("whatsapp_business_account")
        ]
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            proptest::collection::vec((key.clone(), inner), 0..6).prop_map(|pairs| {
                serde_json::Value::Object(
                    pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                )
            }),
        ]
    })
}

#[test]
fn every_webhook_parser_takes_any_signed_payload() {
    use herald::server::channels::{sms, webhook};
    use herald::server::db::NewChannel;
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (router, state, t) = rt.block_on(async {
        let (state, t) = super::http::app_state_with(|_| {}).await;
        (herald::server::http::router(state.clone()), state, t)
    });
    let channel = |kind: &str, config: serde_json::Value| {
        rt.block_on(state.db.insert_channel(
            &NewChannel {
                kind: kind.into(),
                name: format!("Fuzz {kind}"),
                config_json: config.to_string(),
                rate_per_sec: 1,
            },
            chrono::Utc::now(),
        ))
        .unwrap()
    };
    let wa = channel(
        "whatsapp",
        serde_json::json!({"phone_number_id": "1", "access_token": "x", "app_secret": "meta-secret", "verify_token": "v", "base_url": "http://127.0.0.1:9"}),
    );
    let tg = channel(
        "telegram",
        serde_json::json!({"bot_token": "1:x", "webhook_secret": "tg-secret", "base_url": "http://127.0.0.1:9"}),
    );
    let sm = channel(
        "sms",
        serde_json::json!({"account_sid": "AC1", "auth_token": "twilio-token", "from": "+1555", "base_url": "http://127.0.0.1:9"}),
    );
    let sandbox_token = {
        let c = rt.block_on(state.db.channel(1)).unwrap().unwrap();
        let v: serde_json::Value = serde_json::from_str(&c.config).unwrap();
        v["inbound_token"].as_str().unwrap_or_default().to_string()
    };
    let send = |req: Request<Body>| {
        use tower::ServiceExt;
        let status = rt.block_on(router.clone().oneshot(req)).unwrap().status();
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR);
        status
    };
    let sms_params = proptest::collection::vec(
        (
            prop_oneof![
                Just("MessageSid"),
                Just("MessageStatus"),
                Just("From"),
                Just("To"),
                Just("Body"),
                Just("ErrorCode"),
                Just("SmsSid")
            ]
            .prop_map(str::to_string),
            nasty(),
        ),
        0..8,
    );
    let payloads = (provider_json(), sms_params);
    TestRunner::new(cases(96))
        .run(&payloads, |(json, params)| {
            let body = json.to_string();
            send(
                Request::post(format!("/webhooks/whatsapp/{wa}"))
                    .header(header::CONTENT_TYPE, "application/json")
                    .header(
                        "X-Hub-Signature-256",
                        webhook::signature("meta-secret", body.as_bytes()),
                    )
                    .body(Body::from(body.clone()))
                    .unwrap(),
            );
            send(
                Request::post(format!("/webhooks/telegram/{tg}"))
                    .header(header::CONTENT_TYPE, "application/json")
                    .header("X-Telegram-Bot-Api-Secret-Token", "tg-secret")
                    .body(Body::from(body.clone()))
                    .unwrap(),
            );
            send(
                Request::post("/webhooks/sandbox/1")
                    .header(header::CONTENT_TYPE, "application/json")
                    .header("X-Herald-Token", &sandbox_token)
                    .body(Body::from(body))
                    .unwrap(),
            );
            let path = format!("/webhooks/sms/{sm}");
            let url = format!("http://localhost{path}");
            let form = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&params)
                .finish();
            send(
                Request::post(&path)
                    .header(header::HOST, "localhost")
                    .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(
                        "X-Twilio-Signature",
                        sms::signature("twilio-token", &url, &params),
                    )
                    .body(Body::from(form))
                    .unwrap(),
            );
            Ok(())
        })
        .unwrap();
    rt.block_on(t.cleanup());
}
