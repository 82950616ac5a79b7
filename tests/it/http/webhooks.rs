//! The providers' webhooks: authenticated, stored once, moving deliveries forward.

use super::*;

#[tokio::test]
async fn the_sandbox_webhook_is_authenticated_refuses_bad_input_and_applies_stop() {
    let (app, t) = app().await;
    let channel =
        t.db.insert_channel(
            &herald::server::db::NewChannel {
                kind: "sandbox".into(),
                name: "Hook test".into(),
                config_json: r#"{"inbound_token":"s3cret-token"}"#.into(),
                rate_per_sec: 10,
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let path = format!("/webhooks/sandbox/{channel}");
    let hook = |token: &str, body: Vec<u8>| {
        Request::post(&path)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-herald-token", token)
            .body(Body::from(body))
            .unwrap()
    };
    let stop = br#"{"from": "+15551000000", "text": "STOP", "id": "sb-1"}"#.to_vec();
    assert_eq!(
        send(&app, hook("wrong", stop.clone())).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = send(&app, hook("s3cret-token", b"{\"from\": 1".to_vec())).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("expected JSON"), "{}", r.body);
    let big = format!(
        r#"{{"from": "+15551000000", "text": "{}"}}"#,
        "x".repeat(100_000)
    );
    assert_eq!(
        send(&app, hook("s3cret-token", big.into_bytes()))
            .await
            .status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let stranger = br#"{"from": "+19999999999", "text": "STOP"}"#.to_vec();
    assert_eq!(
        send(&app, hook("s3cret-token", stranger)).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let r = send(&app, hook("s3cret-token", stop)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["opted_out"], true);
    let customer = v["customer_id"].as_i64().unwrap();
    let outs = t.db.channel_opt_outs(customer).await.unwrap();
    assert_eq!(
        outs.iter().map(|o| o.0.as_str()).collect::<Vec<_>>(),
        ["sandbox"]
    );
    // The seeded sandbox channel's token is its own: this one's does not open it.
    let other = Request::post(format!("/webhooks/sandbox/{}", channel - 1))
        .header("x-herald-token", "s3cret-token")
        .body(Body::from(r#"{"from":"+15551000000","text":"hi"}"#))
        .unwrap();
    assert_ne!(send(&app, other).await.status, StatusCode::OK);
    t.cleanup().await;
}

#[tokio::test]
async fn telegram_updates_are_authenticated_stored_once_and_mark_replies() {
    use herald::server::db::NewChannel;
    let (app, t) = app().await;
    let now = chrono::Utc::now();
    let channel = t
        .db
        .insert_channel(
            &NewChannel {
                kind: "telegram".into(),
                name: "Bot".into(),
                config_json: r#"{"bot_token":"1:x","webhook_secret":"tg-secret-1","base_url":"http://127.0.0.1:9"}"#.into(),
                rate_per_sec: 30,
            },
            now,
        )
        .await
        .unwrap();
    let mut customer = None;
    for id in 1..200 {
        let r = t.db.recipient(id).await.unwrap().unwrap();
        if r.telegram_chat_id.is_some() {
            customer = Some(r);
            break;
        }
    }
    let customer = customer.expect("a demo customer with a Telegram chat");
    let chat = customer.telegram_chat_id.clone().unwrap();
    let path = format!("/webhooks/telegram/{channel}");
    let update = |update_id: i64, message_id: i64, reply_to: Option<i64>| {
        let mut m = serde_json::json!({
            "message_id": message_id, "date": 0, "text": "Yes please!",
            "chat": { "id": chat.parse::<i64>().unwrap(), "type": "private" },
            "from": { "id": 1, "is_bot": false, "first_name": "Ann" },
        });
        if let Some(r) = reply_to {
            m["reply_to_message"] = serde_json::json!({ "message_id": r, "date": 0, "chat": { "id": 1, "type": "private" } });
        }
        serde_json::json!({ "update_id": update_id, "message": m }).to_string()
    };

    for secret in [None, Some("wrong")] {
        let r = send(&app, telegram_update(&path, secret, &update(1, 10, None))).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    let r = send(&app, telegram_update(&path, Some("tg-secret-1"), "[1,2")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        t.db.inspect()
            .conversation(customer.id)
            .await
            .unwrap()
            .is_empty()
    );

    // A broadcast message on this channel, which the customer then answers by quoting it.
    let b = sent_on(
        &t,
        channel,
        customer.id,
        format!("{chat}:555"),
        |d| format!("x:{}", d),
        "telegram-key-0001",
    )
    .await;

    let r = send(
        &app,
        telegram_update(&path, Some("tg-secret-1"), &update(2, 11, Some(555))),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert!(v["replied"].is_i64(), "{v}");
    assert_eq!(
        t.db.inspect().counters(b).await.unwrap()[4],
        1,
        "one reply counted"
    );
    // Telegram sends the update again: nothing changes.
    let r = send(
        &app,
        telegram_update(&path, Some("tg-secret-1"), &update(2, 11, Some(555))),
    )
    .await;
    assert!(r.body.contains("repeat"), "{}", r.body);
    let convo = t.db.inspect().conversation(customer.id).await.unwrap();
    assert_eq!(convo.iter().filter(|m| m.0 == "in").count(), 1);
    assert_eq!(
        convo.last().unwrap().3.as_deref(),
        Some(format!("{chat}:11").as_str())
    );
    assert_eq!(t.db.inspect().counters(b).await.unwrap()[4], 1);
    // Unknown chats and updates without a message are acknowledged and dropped.
    let stranger = update(3, 12, None).replace(&chat, "999999999");
    let r = send(&app, telegram_update(&path, Some("tg-secret-1"), &stranger)).await;
    assert!(
        r.status == StatusCode::OK && r.body.contains("unknown chat"),
        "{}",
        r.body
    );
    let r = send(
        &app,
        telegram_update(
            &path,
            Some("tg-secret-1"),
            r#"{"update_id":4,"edited_message":{}}"#,
        ),
    )
    .await;
    assert!(r.status == StatusCode::OK && r.body.contains("ignored"));
    t.cleanup().await;
}

#[tokio::test]
async fn sms_callbacks_are_verified_move_deliveries_and_apply_stop() {
    use herald::server::channels::sms::signature;
    use herald::server::db::NewChannel;
    let (app, t) = app().await;
    let now = chrono::Utc::now();
    let channel = t
        .db
        .insert_channel(
            &NewChannel {
                kind: "sms".into(),
                name: "Texts".into(),
                config_json: r#"{"account_sid":"AC1","auth_token":"twilio-token","from":"+1555","base_url":"http://127.0.0.1:9"}"#.into(),
                rate_per_sec: 1,
            },
            now,
        )
        .await
        .unwrap();
    let path = format!("/webhooks/sms/{channel}");
    let url = format!("http://localhost{path}");
    let signed = |params: &[(&str, &str)], sig: Option<String>| {
        let owned: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let sig = sig.unwrap_or_else(|| signature("twilio-token", &url, &owned));
        Request::post(&path)
            .header(header::HOST, "localhost")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", sig)
            .body(Body::from(body))
            .unwrap()
    };
    // One SMS delivery, accepted as SM1.
    let ann = t.db.recipient(1).await.unwrap().unwrap();
    let b = sent_on(
        &t,
        channel,
        ann.id,
        "SM1".to_string(),
        |d| format!("SMx{}", d),
        "sms-key-0000000001",
    )
    .await;

    let delivered = [("MessageSid", "SM1"), ("MessageStatus", "delivered")];
    let r = send(&app, signed(&delivered, Some("forged".into()))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(t.db.inspect().counters(b).await.unwrap()[2], 0);
    let r = send(&app, signed(&delivered, None)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        t.db.inspect().counters(b).await.unwrap()[2],
        1,
        "delivered counted"
    );
    let r = send(&app, signed(&delivered, None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        t.db.inspect().counters(b).await.unwrap()[2],
        1,
        "a repeat changes nothing"
    );

    // The customer texts STOP: stored, opted out of SMS, and no reply (an opt-out).
    let phone = ann.phone.clone().unwrap();
    let stop = [
        ("MessageSid", "SMin1"),
        ("From", phone.as_str()),
        ("Body", "STOP"),
    ];
    let r = send(&app, signed(&stop, None)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers[header::CONTENT_TYPE], "text/xml");
    let after = t.db.recipient(ann.id).await.unwrap().unwrap();
    assert!(
        after
            .opted_out_kinds
            .contains(&herald::model::channel::ChannelKind::Sms)
    );
    assert_eq!(
        t.db.inspect().counters(b).await.unwrap()[4],
        0,
        "a stop word is an opt-out, not a reply"
    );
    let r = send(&app, signed(&[("Foo", "bar")], None)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    t.cleanup().await;
}

#[tokio::test]
async fn whatsapp_webhooks_verify_move_statuses_forward_and_attribute_replies() {
    use herald::server::channels::webhook::signature;
    use herald::server::db::NewChannel;
    let (app, t) = app().await;
    let now = chrono::Utc::now();
    let channel = t
        .db
        .insert_channel(
            &NewChannel {
                kind: "whatsapp".into(),
                name: "WA".into(),
                config_json: r#"{"phone_number_id":"1061","access_token":"EAAG","app_secret":"meta-app-secret","verify_token":"verify-me","base_url":"http://127.0.0.1:9"}"#.into(),
                rate_per_sec: 80,
            },
            now,
        )
        .await
        .unwrap();
    let path = format!("/webhooks/whatsapp/{channel}");
    // The handshake, with no session (providers have none).
    let r = send(
        &app,
        Request::get(format!(
            "{path}?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444"
        ))
        .body(Body::empty())
        .unwrap(),
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "1158201444"));
    let r = send(
        &app,
        Request::get(format!(
            "{path}?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1"
        ))
        .body(Body::empty())
        .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let mut customer = None;
    for id in 1..200 {
        let r = t.db.recipient(id).await.unwrap().unwrap();
        if r.whatsapp_id.is_some() {
            customer = Some(r);
            break;
        }
    }
    let customer = customer.expect("a demo customer on WhatsApp");
    let wa_id = customer.whatsapp_id.clone().unwrap();
    let b = sent_on(
        &t,
        channel,
        customer.id,
        "wamid.OURS".to_string(),
        |d| format!("wamid.{}", d),
        "wa-key-00000000001",
    )
    .await;

    let post_signed = |json: String, sig: Option<&str>| {
        let sig = sig
            .map(str::to_string)
            .unwrap_or_else(|| signature("meta-app-secret", json.as_bytes()));
        Request::post(&path)
            .header(header::CONTENT_TYPE, "application/json")
            .header("X-Hub-Signature-256", sig)
            .body(Body::from(json))
            .unwrap()
    };
    let statuses = |status: &str| {
        serde_json::json!({ "object": "whatsapp_business_account", "entry": [{ "id": "WABA", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": { "display_phone_number": "15550000", "phone_number_id": "1061" },
            "statuses": [{ "id": "wamid.OURS", "status": status, "timestamp": "1700000000", "recipient_id": wa_id }]
        }}]}]})
        .to_string()
    };
    let r = send(&app, post_signed(statuses("read"), Some("sha256=00"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = send(&app, post_signed(statuses("read"), None)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let read = t.db.inspect().counters(b).await.unwrap();
    assert_eq!((read[2], read[3]), (1, 1), "read counts as delivered too");
    // A late "delivered" after "read" changes nothing.
    send(&app, post_signed(statuses("delivered"), None)).await;
    assert_eq!(t.db.inspect().counters(b).await.unwrap(), read);

    // The customer answers, quoting our message: stored once, replied once.
    let inbound = serde_json::json!({ "object": "whatsapp_business_account", "entry": [{ "id": "WABA", "changes": [{ "field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": { "display_phone_number": "15550000", "phone_number_id": "1061" },
        "contacts": [{ "profile": { "name": "Ann" }, "wa_id": wa_id }],
        "messages": [{ "from": wa_id, "id": "wamid.THEIRS", "timestamp": "1700000100", "type": "text",
                       "text": { "body": "Count me in" }, "context": { "from": "15550000", "id": "wamid.OURS" } }]
    }}]}]})
    .to_string();
    for _ in 0..2 {
        let r = send(&app, post_signed(inbound.clone(), None)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    assert_eq!(t.db.inspect().counters(b).await.unwrap()[4], 1);
    let convo = t.db.inspect().conversation(customer.id).await.unwrap();
    assert_eq!(convo.iter().filter(|m| m.0 == "in").count(), 1);
    let r = send(&app, post_signed("[]".into(), None)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    t.cleanup().await;
}
