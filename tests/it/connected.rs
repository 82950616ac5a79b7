//! Channels connected the way staff connect them, from the channels page alone, against strict
//! fakes of the providers: whatever the provider needs to report back (an SMS's status
//! callback) Herald names itself.

use std::collections::HashMap;
use std::time::Duration;

use herald::model::compose::{Compose, Intent};
use herald::model::{BroadcastId, Role, UserId};

use herald::server::clock::{Clock, SystemClock};
use herald::server::db::NewCustomer;
use herald::server::fakes::twilio::{Config, FakeTwilio};

use crate::http::{post, send, serve_state};

/// The id of the channel named `name`.
async fn channel_named(db: &herald::server::db::Db, name: &str) -> i64 {
    let channels = db.channels().await.unwrap();
    channels.into_iter().find(|c| c.name == name).unwrap().id
}

/// An SMS channel made through `POST /channels` only: every message names its status
/// callback, and the results' delivered and failed equal what Twilio's signed callbacks said.
#[tokio::test]
async fn an_sms_channel_made_on_the_channels_page_hears_every_report() {
    let t = crate::common::sqlite().await;
    let db = &t.db;
    let now = SystemClock.now();
    herald::server::seed::load(db, now).await.unwrap();
    for (b, _) in db.sending_broadcasts().await.unwrap() {
        db.cancel_broadcast(BroadcastId(b), UserId(1), now)
            .await
            .unwrap();
    }
    // 2 % of the answers are lost (500) after the text went: the callbacks still name them.
    let (fake, base) = FakeTwilio::start(Config {
        ambiguous_per_mille: 20,
        ..Config::default()
    })
    .await
    .unwrap();
    let (state, addr) = serve_state(db).await;
    let app = herald::server::http::router(state.clone());
    // Requests come from Herald's own pages at its public address.
    let at = |mut req: axum::http::Request<axum::body::Body>| {
        req.headers_mut()
            .insert("origin", format!("http://{addr}").parse().unwrap());
        req
    };
    let login = format!(
        "email=admin%40herald.test&password={}",
        herald::server::seed::DEMO_PASSWORD
    );
    let r = send(&app, at(post("/api/login", &login, None, false))).await;
    let admin = r.headers["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let c = Config::default();
    let form = format!(
        "action=create&kind=sms&name=Texts&rate=200&cfg_sms_account_sid={}&cfg_sms_auth_token={}&cfg_sms_from={}&cfg_sms_base_url={}",
        enc(&c.account_sid),
        enc(&c.auth_token),
        enc("+15005550006"),
        enc(&base)
    );
    let r = send(&app, at(post("/channels", &form, Some(&admin), true))).await;
    assert!(
        r.headers["location"]
            .to_str()
            .unwrap()
            .contains("notice=Connected"),
        "{}",
        r.body
    );
    let sms = channel_named(db, "Texts").await;
    let page = send(&app, crate::http::get("/channels", Some(&admin)))
        .await
        .body;
    let callback = format!("http://{addr}/webhooks/sms/{sms}");
    assert!(
        page.contains(&callback),
        "the page shows where Twilio reports"
    );

    let people: Vec<NewCustomer> = (0..200)
        .map(|i| NewCustomer {
            name: format!("Texter {i}"),
            phone: Some(format!("+1444{i:07}")),
            time_zone: "UTC".into(),
            ..Default::default()
        })
        .collect();
    db.insert_customers_bulk(&people, now).await.unwrap();
    let author = db
        .create_user("sms@herald.test", "S", Role::Staff, "x", now)
        .await
        .unwrap();
    let v = Compose {
        name: "Texts".into(),
        body: "Hi {{first_name|there}}".into(),
        channel_ids: vec![sms],
        ..Default::default()
    }
    .validate(Intent::SendNow, now)
    .unwrap();
    let b = db
        .create_broadcast(&v, UserId(author), "sms-connected-0001", now)
        .await
        .unwrap()
        .0;
    let start = std::time::Instant::now();
    loop {
        if state
            .dispatcher
            .round()
            .await
            .unwrap()
            .finished
            .contains(&b)
        {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{:?}",
            db.inspect().delivery_states(b).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        fake.settle(Duration::from_secs(60)).await,
        "every callback answered"
    );
    let sent = fake.sent();
    assert!(!sent.is_empty());
    for s in &sent {
        let url = s.status_callback.as_deref().unwrap_or_default();
        assert!(
            url.starts_with(&format!("{callback}?delivery=herald-delivery-")),
            "{url:?}"
        );
    }
    let reported = fake.reported();
    let count = |status: &str| reported.values().filter(|s| *s == status).count() as i64;
    let record = db.broadcast(b).await.unwrap();
    assert_eq!(record.sent_count + record.failed_count, sent.len() as i64);
    assert_eq!(record.delivered_count, count("delivered"));
    assert_eq!(record.failed_count, count("undelivered"));
    assert!(count("undelivered") > 0, "the carrier lost some");
    let by_to: HashMap<&str, usize> = sent.iter().fold(HashMap::new(), |mut m, s| {
        *m.entry(s.to.as_str()).or_default() += 1;
        m
    });
    assert!(
        by_to.values().all(|n| *n == 1),
        "one text each, lost answers included"
    );
    assert_eq!((record.unknown_count, record.resent_count), (0, 0));

    // What Twilio billed, read back from each message resource once its price is set, and
    // the results' cost from it: counted at the fake.
    let mut rules = db.workspace_rules().await.unwrap().0;
    rules.prices.lines = herald::model::cost::parse_prices("sms 0.5").unwrap();
    db.save_workspace_rules(&rules, None, now).await.unwrap();
    let mut priced = 0;
    loop {
        let round = herald::server::reports::prices::read_once(&state, chrono::Duration::zero())
            .await
            .unwrap();
        if round == 0 {
            break;
        }
        priced += round;
    }
    let delivered: Vec<_> = sent
        .iter()
        .filter(|s| reported.get(&s.sid).map(String::as_str) == Some("delivered"))
        .collect();
    assert_eq!(priced, delivered.len());
    let billed: i64 = delivered
        .iter()
        .map(|s| {
            herald::model::fit::sms(&s.body).segments as i64 * Config::default().price_per_segment
        })
        .sum();
    let cost = herald::server::broadcast::cost::so_far(&state, b)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cost.lines.len(), 1, "every text priced as billed: {cost:?}");
    assert_eq!(cost.lines[0].billed, Some(billed));
    assert_eq!(cost.lines[0].count, delivered.len() as i64);
    assert_eq!(cost.total(), billed);
    t.cleanup().await;
}

/// A Telegram channel connected on the channels page registers Herald's webhook with
/// Telegram (`setWebhook`, with the channel's secret) when Herald's public address is https,
/// says exactly what is missing when it is not, and shows what `getWebhookInfo` says.
#[tokio::test]
async fn a_telegram_channel_registers_its_webhook_and_shows_its_state() {
    use herald::server::fakes::telegram::{self, FakeTelegram};
    let (fake, base) = FakeTelegram::start(telegram::Config::default())
        .await
        .unwrap();
    let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let form = |name: &str| {
        format!(
            "action=create&kind=telegram&name={name}&rate=&cfg_telegram_bot_token={}&cfg_telegram_webhook_secret=hook-secret_1&cfg_telegram_base_url={}",
            enc(&telegram::Config::default().bot_token),
            enc(&base)
        )
    };
    // Served at plain http: Telegram would refuse the webhook; the notice says what to do.
    let plain = crate::http::TestApp::new().await;
    let admin = plain.sign_in(Role::Admin).await;
    let r = plain
        .post_form("/channels", &form("Bot"), Some(&admin))
        .await;
    let notice = r.headers["location"].to_str().unwrap().to_string();
    assert!(notice.contains("https"), "{notice}");
    assert!(fake.webhook().is_none(), "nothing registered");

    // At an https public address: registered, with the secret, and the page says so.
    let app = crate::http::TestApp::with_config(|c| {
        c.public_url = Some("https://herald.example.com".into())
    })
    .await;
    let admin = app.sign_in(Role::Admin).await;
    let r = app.post_form("/channels", &form("Bot"), Some(&admin)).await;
    assert!(
        r.headers["location"]
            .to_str()
            .unwrap()
            .contains("Connected")
    );
    let id = channel_named(&app.t.db, "Bot").await;
    let url = format!("https://herald.example.com/webhooks/telegram/{id}");
    assert_eq!(
        fake.webhook(),
        Some((url.clone(), "hook-secret_1".to_string()))
    );
    let page = app.get("/channels", Some(&admin)).await.body;
    assert!(
        page.contains(&format!("Telegram sends replies to {url}")),
        "{page}"
    );
    plain.t.cleanup().await;
    app.t.cleanup().await;
}

/// A WhatsApp channel shows whether Meta verified its webhook: not at first, then once Meta's
/// handshake with the verify token came.
#[tokio::test]
async fn a_whatsapp_channel_shows_whether_meta_verified_its_webhook() {
    let app = crate::http::TestApp::new().await;
    let admin = app.sign_in(Role::Admin).await;
    let form = "action=create&kind=whatsapp&name=Verify%20me&rate=&cfg_whatsapp_phone_number_id=1061&cfg_whatsapp_waba_id=102290129340398&cfg_whatsapp_access_token=EAAG-token&cfg_whatsapp_app_secret=app-secret&cfg_whatsapp_verify_token=verify-me-please&cfg_whatsapp_base_url=http%3A%2F%2F127.0.0.1%3A9";
    let r = app.post_form("/channels", form, Some(&admin)).await;
    let notice = r.headers["location"].to_str().unwrap().to_string();
    assert!(notice.contains("Connected"), "{notice}");
    let id = channel_named(&app.t.db, "Verify me").await;
    let page = app.get("/channels", Some(&admin)).await.body;
    assert!(page.contains("Not verified by Meta yet"), "{page}");
    let r = app
        .get(
            &format!("/webhooks/whatsapp/{id}?hub.mode=subscribe&hub.verify_token=verify-me-please&hub.challenge=1158201444"),
            None,
        )
        .await;
    assert_eq!(r.body, "1158201444");
    let page = app.get("/channels", Some(&admin)).await.body;
    assert!(page.contains("Meta verified the webhook"), "{page}");
    app.t.cleanup().await;
}
