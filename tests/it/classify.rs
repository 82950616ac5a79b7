//! Each adapter sorts a provider's answer into sent, maybe sent (the request may have reached
//! the provider: never retried as if nothing was sent) and not sent (retried or failed), against
//! the strict fakes, which deliver a message and then lose the answer when told to.

use std::time::Duration;

use herald::server::channels::{Channel, Outgoing, SendError, http_client};
use herald::server::fakes::{telegram, twilio, whatsapp};

fn out(to: &str) -> Outgoing {
    Outgoing {
        parts: Default::default(),
        idempotency_key: "herald-delivery-9".into(),
        address: to.into(),
        body: "Hi".into(),
        attachments: Vec::new(),
        subject: String::new(),
        unsubscribe_url: None,
        template: None,
    }
}

/// The WhatsApp adapter with the fake's credentials at `base`, files in `files`.
fn whatsapp_adapter(
    config: &whatsapp::Config,
    base: &str,
    files: herald::server::files::Files,
    timeout_ms: Option<u64>,
) -> herald::server::channels::whatsapp::WhatsApp {
    herald::server::channels::whatsapp::WhatsApp::new(
        herald::server::channels::whatsapp::Settings {
            phone_number_id: config.phone_number_id.clone(),
            waba_id: String::new(),
            access_token: config.access_token.clone(),
            app_secret: config.app_secret.clone(),
            verify_token: "v".into(),
            base_url: base.into(),
            timeout_ms,
        },
        http_client(),
        files,
    )
}

/// What kind of answer `r` is.
fn kind(r: &Result<herald::server::channels::Accepted, SendError>) -> &'static str {
    match r {
        Ok(_) => "sent",
        Err(SendError::MaybeSent { .. }) => "maybe sent",
        Err(SendError::Transient { .. }) => "not sent, retried",
        Err(SendError::Throttled { .. }) => "not sent, throttled",
        Err(SendError::Systemic { .. }) => "not sent, pause",
        Err(_) => "not sent, failed",
    }
}

#[tokio::test]
async fn telegram_answers_are_sent_maybe_sent_or_not_sent() {
    use herald::server::channels::telegram::{Settings, Telegram};
    let config = telegram::Config {
        ambiguous_per_mille: 1000,
        hang: Duration::from_secs(2),
        ..telegram::Config::default()
    };
    let (fake, base) = telegram::FakeTelegram::start(config.clone()).await.unwrap();
    let bot = |base: &str, token: &str| {
        Telegram::new(
            Settings {
                bot_token: token.into(),
                webhook_secret: String::new(),
                base_url: base.into(),
                timeout_ms: Some(300),
            },
            http_client(),
            herald::server::files::Files::in_folder(&std::env::temp_dir()),
        )
    };
    let tg = bot(&base, &config.bot_token);
    // Delivered, then a gateway's 502 page; delivered, then no answer in time.
    assert_eq!(kind(&tg.send(&out("5001")).await), "maybe sent");
    assert_eq!(kind(&tg.send(&out("5002")).await), "maybe sent");
    assert_eq!(fake.messages().len(), 2, "both were delivered");
    // One a second per chat: the second at once is refused and sends nothing.
    let (calm, calm_base) = telegram::FakeTelegram::start(telegram::Config::default())
        .await
        .unwrap();
    let tg = bot(&calm_base, &config.bot_token);
    assert_eq!(kind(&tg.send(&out("6001")).await), "sent");
    assert_eq!(kind(&tg.send(&out("6001")).await), "not sent, throttled");
    assert_eq!(kind(&tg.send(&out("")).await), "not sent, failed");
    assert_eq!(
        kind(&bot(&calm_base, "1:wrong").send(&out("6002")).await),
        "not sent, pause"
    );
    assert_eq!(calm.messages().len(), 1);
    // Nothing listens: no connection, nothing sent.
    assert_eq!(
        kind(
            &bot("http://127.0.0.1:9", &config.bot_token)
                .send(&out("6003"))
                .await
        ),
        "not sent, retried"
    );
}

#[tokio::test]
async fn whatsapp_answers_are_sent_maybe_sent_or_not_sent() {
    let config = whatsapp::Config {
        ambiguous_per_mille: 1000,
        hang: Duration::from_secs(2),
        per_number_per_sec: 2.0,
        enforce_window: false,
        ..whatsapp::Config::default()
    };
    let (fake, base) = whatsapp::FakeWhatsApp::start(config.clone()).await.unwrap();
    let wa = |base: &str| {
        whatsapp_adapter(
            &config,
            base,
            herald::server::files::Files::in_folder(&std::env::temp_dir()),
            Some(300),
        )
    };
    let sender = wa(&base);
    // Sent, then 500 with 131000; sent, then no answer in time.
    assert_eq!(
        kind(&sender.send(&out("4915100000001")).await),
        "maybe sent"
    );
    assert_eq!(
        kind(&sender.send(&out("4915100000002")).await),
        "maybe sent"
    );
    assert_eq!(fake.accepted().len(), 2);
    // The number's throughput used up: 130429, nothing sent.
    assert_eq!(
        kind(&sender.send(&out("4915100000003")).await),
        "not sent, throttled"
    );
    assert_eq!(fake.accepted().len(), 2);
    assert_eq!(
        kind(&wa("http://127.0.0.1:9").send(&out("4915100000004")).await),
        "not sent, retried"
    );
}

#[tokio::test]
async fn sms_answers_are_sent_maybe_sent_or_not_sent() {
    use herald::server::channels::sms::{Settings, Sms};
    let config = twilio::Config {
        ambiguous_per_mille: 1000,
        ..twilio::Config::default()
    };
    let (fake, base) = twilio::FakeTwilio::start(config.clone()).await.unwrap();
    let sms = |base: &str, token: &str| {
        Sms::new(
            Settings {
                account_sid: config.account_sid.clone(),
                auth_token: token.into(),
                from: "+15005550006".into(),
                base_url: base.into(),
                status_callback: String::new(),
            },
            http_client(),
        )
    };
    // Sent, then 500.
    assert_eq!(
        kind(
            &sms(&base, &config.auth_token)
                .send(&out("+14155550100"))
                .await
        ),
        "maybe sent"
    );
    assert_eq!(fake.sent().len(), 1);
    assert_eq!(
        kind(&sms(&base, "wrong").send(&out("+14155550101")).await),
        "not sent, pause"
    );
    assert_eq!(
        kind(
            &sms("http://127.0.0.1:9", &config.auth_token)
                .send(&out("+14155550102"))
                .await
        ),
        "not sent, retried"
    );
    assert_eq!(fake.sent().len(), 1);
}

/// A free-form WhatsApp message in two parts (a text too long for a caption is not the case
/// here: audio takes no caption, so the text goes first on its own): only the last part names
/// the delivery, so no status of an earlier part can record the whole as sent.
#[tokio::test]
async fn only_the_last_part_of_a_whatsapp_message_names_the_delivery() {
    use herald::model::compose::AttachmentRef;
    let config = whatsapp::Config {
        enforce_window: false,
        ..whatsapp::Config::default()
    };
    let (fake, base) = whatsapp::FakeWhatsApp::start(config.clone()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a".repeat(32)), b"ID3\x03\0\0\0\0\0\0audio").unwrap();
    let wa = whatsapp_adapter(
        &config,
        &base,
        herald::server::files::Files::in_folder(dir.path()),
        None,
    );
    let mut m = out("4915100000042");
    m.attachments = vec![AttachmentRef {
        id: "a".repeat(32),
        name: "jingle.mp3".into(),
        mime: "audio/mpeg".into(),
        size: 14,
    }];
    let sent = wa.send(&m).await.unwrap();
    let accepted = fake.accepted();
    assert_eq!(accepted.len(), 2, "the text, then the audio");
    assert_eq!(accepted[0].body["type"], "text");
    assert!(accepted[0].body.get("biz_opaque_callback_data").is_none());
    assert_eq!(
        accepted[1].body["biz_opaque_callback_data"],
        "herald-delivery-9"
    );
    assert_eq!(
        sent.provider_message_id, accepted[1].wamid,
        "the recorded id is the last part's"
    );
    assert_eq!(m.parts.all().len(), 2, "both parts noted as accepted");
}
