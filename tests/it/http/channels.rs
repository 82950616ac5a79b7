//! The channels page: connecting and managing channels, secrets kept.

use super::*;

#[tokio::test]
async fn admins_connect_and_manage_channels_and_secrets_never_come_back() {
    let (app, t) = app().await;
    let admin = sign_in(&app, "admin@herald.test").await;
    let staff = sign_in(&app, "staff@herald.test").await;
    let location = |r: &Reply| r.headers[header::LOCATION].to_str().unwrap().to_string();
    let page = send(&app, get("/channels", Some(&staff))).await.body;
    assert!(
        page.contains("Admins connect and manage channels."),
        "{page}"
    );
    let create = "action=create&kind=telegram&name=Support%20bot&rate=&cfg_telegram_bot_token=123456%3ASECRETTOKENabcd&cfg_telegram_webhook_secret=whsecret-long-value&cfg_whatsapp_base_url=https%3A%2F%2Fwrong.example";
    let r = send(&app, post("/channels", create, Some(&staff), true)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = send(&app, post("/channels", create, Some(&admin), true)).await;
    assert!(
        location(&r).contains("notice=Connected"),
        "{}",
        location(&r)
    );
    let herald::server::db::ChannelRecord {
        id,
        kind,
        name,
        config,
        enabled,
        rate_per_sec: rate,
    } =
        t.db.channels()
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.name == "Support bot")
            .unwrap();
    assert_eq!(
        (kind.as_str(), name.as_str(), enabled, rate),
        ("telegram", "Support bot", true, 30)
    );
    let v: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(v["bot_token"], "123456:SECRETTOKENabcd");
    // At rest the settings are sealed: the column holds no secret, nor any setting in clear.
    let raw =
        t.db.inspect()
            .stored_channel_config(id)
            .await
            .unwrap()
            .unwrap();
    assert!(
        raw.starts_with("sealed:v2:") && !raw.contains("SECRETTOKEN") && !raw.contains("telegram"),
        "{raw}"
    );
    assert_eq!(
        v["base_url"], "https://api.telegram.org",
        "the other kinds' fields are ignored"
    );

    let page = send(&app, get("/channels", Some(&admin))).await.body;
    assert!(
        !page.contains("SECRETTOKEN") && !page.contains("whsecret"),
        "secrets leaked"
    );
    assert!(
        page.contains("data-setting=\"bot_token\">set<"),
        "a secret shows only that it is set: {page}"
    );
    assert!(page.contains(&format!("/webhooks/telegram/{id}")), "{page}");

    // An empty secret keeps the stored one; the rate and name change.
    let update = format!(
        "action=update&id={id}&name=Support%20bot%202&rate=5&cfg_bot_token=&cfg_webhook_secret=&cfg_base_url="
    );
    let r = send(&app, post("/channels", &update, Some(&admin), true)).await;
    assert!(location(&r).contains("notice=Saved"), "{}", location(&r));
    let c = t.db.channel(id).await.unwrap().unwrap();
    assert_eq!((c.name.as_str(), c.rate_per_sec), ("Support bot 2", 5));
    assert!(c.config.contains("SECRETTOKENabcd"));

    // Pointing the stored token at another host needs the secrets typed again.
    let moved = format!(
        "action=update&id={id}&name=Support%20bot%202&rate=5&cfg_bot_token=&cfg_webhook_secret=&cfg_base_url=https%3A%2F%2Fcollector.example"
    );
    let r = send(&app, post("/channels", &moved, Some(&admin), true)).await;
    let to = location(&r);
    assert!(
        to.contains("error=") && to.contains("enter%20its%20secrets%20again"),
        "{to}"
    );
    let c = t.db.channel(id).await.unwrap().unwrap();
    assert!(!c.config.contains("collector.example"), "nothing was saved");

    // Disabled: the wizard no longer offers it.
    let r = send(
        &app,
        post(
            "/channels",
            &format!("action=toggle&id={id}"),
            Some(&admin),
            true,
        ),
    )
    .await;
    assert!(location(&r).contains("Disabled"), "{}", location(&r));
    assert!(
        !t.db
            .enabled_channels()
            .await
            .unwrap()
            .iter()
            .any(|c| c.id == id)
    );

    // Missing settings are named; nothing is stored.
    let before = t.db.channels().await.unwrap().len();
    let r = send(
        &app,
        post(
            "/channels",
            "action=create&kind=sms&name=Texts",
            Some(&admin),
            true,
        ),
    )
    .await;
    assert!(location(&r).contains("error=Fill%20in"), "{}", location(&r));
    assert_eq!(t.db.channels().await.unwrap().len(), before);

    // A test message through the sandbox reaches the customer's conversation.
    let sandbox = t.db.enabled_channels().await.unwrap()[0].id;
    let ann = t.db.recipient(1).await.unwrap().unwrap();
    let test = format!(
        "action=test&id={sandbox}&test_to={}",
        herald::model::list_query::encode_component(ann.phone.as_deref().unwrap())
    );
    let r = send(&app, post("/channels", &test, Some(&admin), true)).await;
    assert!(
        location(&r).contains("notice=Test%20sent%20to"),
        "{}",
        location(&r)
    );
    let convo = t.db.inspect().conversation(ann.id).await.unwrap();
    assert!(
        convo
            .last()
            .unwrap()
            .1
            .starts_with("Test message from Herald")
    );
    t.cleanup().await;
}

/// Connecting a WhatsApp channel with its business account reads its templates (every
/// page); the page lists them, "Read templates from WhatsApp" reads them again, and Meta's
/// template status webhook changes a template's status at once.
#[tokio::test]
async fn whatsapp_templates_are_read_on_connect_listed_and_follow_status_webhooks() {
    use axum::body::Body;
    use axum::http::Request;
    use herald::server::channels::webhook::signature;
    use herald::server::fakes::whatsapp::{Config, FakeWhatsApp};
    let templates: Vec<serde_json::Value> = (0..30)
        .map(|i| {
            serde_json::json!({
                "name": format!("spring_{i:02}"), "language": "en_US", "status": "APPROVED",
                "category": "MARKETING", "parameter_format": "NAMED",
                "components": [{ "type": "BODY", "text": "Hi {{first_name}}, {{discount}} off" }]
            })
        })
        .collect();
    let config = Config {
        templates,
        ..Config::default()
    };
    let (_fake, base) = FakeWhatsApp::start(config.clone()).await.unwrap();
    let (app, t) = app().await;
    let admin = sign_in(&app, "admin@herald.test").await;
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let create = format!(
        "action=create&kind=whatsapp&name=Shop%20WhatsApp&rate=&cfg_whatsapp_phone_number_id={}&cfg_whatsapp_waba_id={}&cfg_whatsapp_access_token={}&cfg_whatsapp_app_secret={}&cfg_whatsapp_verify_token=verify-token-1&cfg_whatsapp_base_url={}",
        config.phone_number_id,
        config.waba_id,
        enc(&config.access_token),
        enc(&config.app_secret),
        enc(&base)
    );
    let r = send(&app, post("/channels", &create, Some(&admin), true)).await;
    let location = r.headers[header::LOCATION].to_str().unwrap().to_string();
    assert!(
        location.contains("Read%2030%20message%20templates")
            || location.contains("Read+30+message+templates"),
        "{location}"
    );
    let channel =
        t.db.channels()
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.name == "Shop WhatsApp")
            .unwrap()
            .id;
    assert_eq!(t.db.templates(channel).await.unwrap().len(), 30);
    let page = send(&app, get("/channels", Some(&admin))).await.body;
    assert!(page.contains("spring_00") && page.contains("spring_29"));
    assert!(page.contains("first_name, discount"), "parameters listed");

    // Two scheduled broadcasts, one sending the template Meta is about to pause.
    let scheduled = |template: &str, key: &str| {
        let v = herald::model::compose::Compose {
            name: format!("Using {template}"),
            body: "Hi".into(),
            channel_ids: vec![channel],
            scheduled_at: Some(chrono::Utc::now() + chrono::Duration::days(1)),
            template: Some(herald::model::template::TemplateChoice {
                name: template.into(),
                language: "en_US".into(),
                params: Vec::new(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .validate(herald::model::compose::Intent::Schedule, chrono::Utc::now())
        .unwrap();
        let db = t.db.clone();
        let key = key.to_string();
        async move {
            db.create_broadcast(&v, herald::model::UserId(1), &key, chrono::Utc::now())
                .await
                .unwrap()
                .0
        }
    };
    let hit = scheduled("spring_07", "uses-spring-07-key-1").await;
    let spared = scheduled("spring_08", "uses-spring-08-key-1").await;

    // Meta pauses one: its status follows at once, and the broadcast sending it pauses.
    let update = serde_json::json!({ "object": "whatsapp_business_account", "entry": [{ "id": config.waba_id, "changes": [{
        "field": "message_template_status_update",
        "value": { "event": "PAUSED", "message_template_id": 7, "message_template_name": "spring_07",
                   "message_template_language": "en_US", "reason": "LOW_QUALITY" } }] }] })
    .to_string();
    let req = Request::post(format!("/webhooks/whatsapp/{channel}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            "X-Hub-Signature-256",
            signature(&config.app_secret, update.as_bytes()),
        )
        .body(Body::from(update))
        .unwrap();
    assert_eq!(send(&app, req).await.status, StatusCode::OK);
    let paused: Vec<_> =
        t.db.templates(channel)
            .await
            .unwrap()
            .into_iter()
            .filter(|t| t.status == "PAUSED")
            .map(|t| t.name)
            .collect();
    assert_eq!(paused, vec!["spring_07"]);
    let b = t.db.broadcast(hit).await.unwrap();
    assert!(b.paused, "the broadcast sending it paused");
    assert!(
        b.pause_reason
            .unwrap_or_default()
            .contains("paused the template spring_07"),
        "with the reason"
    );
    assert!(
        !t.db.broadcast(spared).await.unwrap().paused,
        "the other goes on"
    );

    // Read again on demand: the account's list is the truth again.
    let sync = format!("action=sync&id={channel}");
    let r = send(&app, post("/channels", &sync, Some(&admin), true)).await;
    let location = r.headers[header::LOCATION].to_str().unwrap().to_string();
    assert!(location.contains("notice="), "{location}");
    assert!(
        t.db.templates(channel)
            .await
            .unwrap()
            .iter()
            .all(|t| t.status == "APPROVED")
    );
    // Staff cannot ask for it.
    let staff = sign_in(&app, "staff@herald.test").await;
    let r = send(&app, post("/channels", &sync, Some(&staff), true)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
}
