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
        raw.starts_with("sealed:v1:") && !raw.contains("SECRETTOKEN") && !raw.contains("telegram"),
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
