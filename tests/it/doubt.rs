//! Answers that may mean "sent": a provider that delivers a message and then loses the answer
//! (a gateway's 502 page, a 500 with WhatsApp's 131000, a hang past the client's timeout).
//! Counted at the strict fakes, which deduplicate nothing: nobody gets a message twice; on
//! Telegram, which cannot tell, every lost answer is an "unknown" delivery; on WhatsApp the
//! status webhooks, which echo the delivery's key, record them as sent.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use herald::model::audience::AudienceRule;
use herald::model::compose::{Compose, Intent};
use herald::model::{BroadcastId, ChannelId, Role, UserId};
use herald::server::clock::{Clock, SystemClock};
use herald::server::db::{Db, NewCustomer};
use herald::server::dispatch::{Dispatcher, Settings};
use herald::server::fakes::telegram::{self, FakeTelegram};
use herald::server::fakes::whatsapp::{self, FakeWhatsApp};

/// Recipients of each send: large enough that 2 % ambiguous answers are dozens.
const AUDIENCE: usize = 2_000;

/// `n` customers, each with a Telegram chat id and a WhatsApp id derived from `i`.
async fn customers(db: &Db, n: usize) {
    let people: Vec<NewCustomer> = (0..n)
        .map(|i| NewCustomer {
            name: format!("Person {i}"),
            telegram_chat_id: Some(format!("{}", 700_000 + i)),
            whatsapp_id: Some(format!("4915200{i:06}")),
            time_zone: "UTC".into(),
            ..Default::default()
        })
        .collect();
    for chunk in people.chunks(1000) {
        db.insert_customers_bulk(chunk, SystemClock.now())
            .await
            .unwrap();
    }
}

/// A broadcast to everyone on `channel`, sending now.
async fn send_now(db: &Db, channel: i64, body: &str) -> i64 {
    let now = SystemClock.now();
    let author = db
        .create_user("doubt@herald.test", "Doubt", Role::Staff, "x", now)
        .await
        .unwrap();
    let v = Compose {
        name: "Lost answers".into(),
        body: body.into(),
        audience: AudienceRule::default(),
        channel_ids: vec![channel],
        ..Default::default()
    }
    .validate(Intent::SendNow, now)
    .unwrap();
    db.create_broadcast(&v, UserId(author), "doubt-key-0000001", now)
        .await
        .unwrap()
        .0
}

/// Runs `dispatcher` until broadcast `b` finishes (or `limit` passes).
async fn until_finished(db: &Db, dispatcher: &Dispatcher, b: i64, limit: Duration) {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if dispatcher.round().await.unwrap().finished.contains(&b) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "broadcast {b} did not finish: {:?}",
        db.inspect().delivery_states(b).await
    );
}

fn dispatcher(db: &Db, settings: Settings) -> Dispatcher {
    Dispatcher::new(
        db.clone(),
        Arc::new(SystemClock),
        Default::default(),
        settings,
    )
}

/// Telegram keeps no key and reports nothing: each message delivered whose answer was lost is
/// "unknown — may have arrived", never sent again on its own; "Resend the unknown" sends
/// exactly those again (and those customers then have it twice, as the button warns).
async fn telegram_lost_answers_are_unknown_never_resent(db: &Db) {
    let config = telegram::Config {
        // The rate limits are Telegram's own in `telegram_is_sent_within_its_rate_limits`;
        // here the bot may send fast so that the test takes seconds.
        per_bot_per_sec: 5_000.0,
        ambiguous_per_mille: 20,
        hang: Duration::from_millis(1_500),
        ..telegram::Config::default()
    };
    let (fake, base) = FakeTelegram::start(config).await.unwrap();
    let mut channel = fake.channel(&base, 5_000);
    let mut settings: serde_json::Value = serde_json::from_str(&channel.config_json).unwrap();
    settings["timeout_ms"] = serde_json::json!(500);
    channel.config_json = settings.to_string();
    let tg = db
        .insert_channel(&channel, SystemClock.now())
        .await
        .unwrap();
    customers(db, AUDIENCE).await;
    let b = send_now(db, tg, "Hi {{first_name|there}}").await;
    let d = dispatcher(db, Settings::default());
    until_finished(db, &d, b, Duration::from_secs(120)).await;

    let received = fake.received();
    let lost = fake.ambiguous();
    assert!(
        lost.len() >= 10,
        "2 % of {AUDIENCE} answers lost: {}",
        lost.len()
    );
    assert_eq!(received.len(), AUDIENCE, "everyone got it");
    let twice: Vec<_> = received.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "got it twice: {twice:?}");
    let record = db.broadcast(b).await.unwrap();
    assert_eq!(
        record.unknown_count,
        lost.len() as i64,
        "unknown = lost answers"
    );
    assert_eq!(record.sent_count + record.unknown_count, AUDIENCE as i64);
    assert_eq!(record.failed_count, 0);
    let states: HashMap<String, i64> = db
        .inspect()
        .delivery_states(b)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(states.get("unknown").copied(), Some(lost.len() as i64));
    assert_eq!(
        db.inspect().counters(b).await.unwrap(),
        db.recount(b).await.unwrap()
    );

    // Staff resend them knowingly: exactly the unknown ones go again.
    let unknown_chats = lost.clone();
    let resent = db
        .resend_unknown(BroadcastId(b), UserId(1), SystemClock.now())
        .await
        .unwrap();
    assert_eq!(resent, lost.len() as i64);
    assert_eq!(db.broadcast(b).await.unwrap().unknown_count, 0);
    until_finished(db, &d, b, Duration::from_secs(60)).await;
    let again = fake.received();
    for chat in &unknown_chats {
        assert!(again[chat] >= 2, "{chat} was sent again");
    }
    let others = again
        .iter()
        .filter(|(c, n)| !unknown_chats.contains(c) && **n != 1);
    assert_eq!(others.count(), 0, "nobody else got anything more");
    assert_eq!(
        db.inspect().audit_count("resend-unknown", b).await.unwrap(),
        1
    );
}

/// WhatsApp echoes the delivery's key in its statuses: a message sent whose answer was lost
/// (500 with 131000, or a hang) is recorded as sent by its "sent" status, never sent again.
async fn whatsapp_lost_answers_are_reconciled_by_their_statuses(db: &Db) {
    let config = whatsapp::Config {
        per_number_per_sec: 1_000.0,
        ambiguous_per_mille: 20,
        hang: Duration::from_millis(1_500),
        enforce_window: false,
        ..whatsapp::Config::default()
    };
    let (fake, base) = FakeWhatsApp::start(config).await.unwrap();
    let mut channel = fake.channel(&base, 1_000);
    let mut settings: serde_json::Value = serde_json::from_str(&channel.config_json).unwrap();
    settings["timeout_ms"] = serde_json::json!(500);
    channel.config_json = settings.to_string();
    let wa = db
        .insert_channel(&channel, SystemClock.now())
        .await
        .unwrap();
    let addr = crate::http::serve_state(db).await;
    fake.send_webhooks_to(vec![format!("http://{addr}/webhooks/whatsapp/{wa}")]);
    customers(db, AUDIENCE).await;
    let b = send_now(db, wa, "Hi {{first_name|there}}").await;
    // A short window: the statuses of lost answers come within a second here.
    let d = dispatcher(
        db,
        Settings {
            reconcile: chrono::Duration::seconds(15),
            ..Settings::default()
        },
    );
    until_finished(db, &d, b, Duration::from_secs(120)).await;
    assert!(
        fake.settle(Duration::from_secs(60)).await,
        "webhooks answered"
    );

    let received = fake.received();
    let lost = fake.ambiguous();
    assert!(
        lost.len() >= 10,
        "2 % of {AUDIENCE} answers lost: {}",
        lost.len()
    );
    assert_eq!(received.len(), AUDIENCE, "everyone got it");
    let twice: Vec<_> = received.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "got it twice: {twice:?}");
    let record = db.broadcast(b).await.unwrap();
    assert_eq!(record.sent_count, AUDIENCE as i64, "each recorded as sent");
    assert_eq!((record.unknown_count, record.resent_count), (0, 0));
    let c = db.inspect().counters_by_channel(b).await.unwrap();
    assert_eq!(c.len(), 1);
    let _ = ChannelId(wa);
}

on_both_backends!(
    telegram_lost_answers_are_unknown_never_resent,
    whatsapp_lost_answers_are_reconciled_by_their_statuses,
);

/// Telegram's documented limits at the fake (30 a second per bot, one a second per chat)
/// answer 429 with `retry_after` and send nothing; at the channel's default rate Herald stays
/// within them.
#[tokio::test]
async fn telegram_is_sent_within_its_rate_limits() {
    let t = crate::common::sqlite().await;
    let db = &t.db;
    let (fake, base) = FakeTelegram::start(telegram::Config::default())
        .await
        .unwrap();
    let tg = db
        .insert_channel(&fake.channel(&base, 30), SystemClock.now())
        .await
        .unwrap();
    customers(db, 150).await;
    let b = send_now(db, tg, "Hi").await;
    let d = dispatcher(db, Settings::default());
    until_finished(db, &d, b, Duration::from_secs(60)).await;
    let received = fake.received();
    assert_eq!(received.len(), 150);
    assert!(received.values().all(|n| *n == 1), "once each");
    assert!(
        fake.throttled() <= 3,
        "at most a few 429s at the bucket's edge: {}",
        fake.throttled()
    );
    t.cleanup().await;
}
