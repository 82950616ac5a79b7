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
const AUDIENCE: usize = 4_000;

/// `n` customers, each with a Telegram chat id and a WhatsApp id derived from `i`.
async fn customers(db: &Db, n: usize) {
    let people: Vec<NewCustomer> = (0..n)
        .map(|i| NewCustomer {
            name: format!("Person {i}"),
            telegram_chat_id: Some(format!("{}", 700_000 + i)),
            whatsapp_id: Some(format!("4915200{i:06}")),
            phone: Some(format!("+1888{i:07}")),
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
    send_now_with(db, channel, body, Vec::new()).await
}

/// [`send_now`] with files.
async fn send_now_with(
    db: &Db,
    channel: i64,
    body: &str,
    attachments: Vec<herald::model::compose::AttachmentRef>,
) -> i64 {
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
        attachments,
        ..Default::default()
    }
    .validate(Intent::SendNow, now)
    .unwrap();
    db.create_broadcast(&v, UserId(author), "doubt-key-0000001", now)
        .await
        .unwrap()
        .0
}

/// A photo in `t`'s attachments folder: the folder, and the file as a broadcast carries it.
fn photo(
    t: &crate::common::TestDb,
) -> (
    herald::server::files::Files,
    herald::model::compose::AttachmentRef,
) {
    let files = t.dir().join("attachments");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("p".repeat(32)), b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").unwrap();
    let photo = herald::model::compose::AttachmentRef {
        id: "p".repeat(32),
        name: "menu.png".into(),
        mime: "image/png".into(),
        size: 16,
    };
    (herald::server::files::Files::in_folder(&files), photo)
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

/// `channel` waiting at most `ms` for its provider's answer.
fn timing_out(
    mut channel: herald::server::db::NewChannel,
    ms: u64,
) -> herald::server::db::NewChannel {
    let mut settings: serde_json::Value = serde_json::from_str(&channel.config_json).unwrap();
    settings["timeout_ms"] = serde_json::json!(ms);
    channel.config_json = settings.to_string();
    channel
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
    let channel = timing_out(fake.channel(&base, 5_000), 500);
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
    eprintln!("{} of {AUDIENCE} answers lost at the fake", lost.len());
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
    let channel = timing_out(fake.channel(&base, 1_000), 500);
    let wa = db
        .insert_channel(&channel, SystemClock.now())
        .await
        .unwrap();
    let (_, addr) = crate::http::serve_state(db).await;
    fake.send_webhooks_to(vec![format!("http://{addr}/webhooks/whatsapp/{wa}")]);
    customers(db, AUDIENCE).await;
    let b = send_now(db, wa, "Hi {{first_name|there}}").await;
    // The default window (60 s): on PostgreSQL the webhooks of 4,000 sends queue up for
    // longer than 15 s on this machine, and a window shorter than the reports' backlog resends
    // what was sent (measured: 6 of 4,000 twice with 15 s).
    let d = dispatcher(db, Settings::default());
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
    eprintln!("{} of {AUDIENCE} answers lost at the fake", lost.len());
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
    a_request_starts_only_while_its_claim_holds,
    an_outcome_that_cannot_be_written_fails_alone,
    a_throttle_holds_the_whole_channel,
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

/// The fencing token at the point of no return: a request starts only if the database
/// confirms, at that moment, that its claim (the delivery, the attempt) still holds its lease.
async fn a_request_starts_only_while_its_claim_holds(db: &Db) {
    let (fake, base) = FakeTelegram::start(telegram::Config::default())
        .await
        .unwrap();
    let tg = db
        .insert_channel(&fake.channel(&base, 30), SystemClock.now())
        .await
        .unwrap();
    customers(db, 3).await;
    let b = send_now(db, tg, "Hi").await;
    let t0 = SystemClock.now();
    db.fire(b, t0, chrono::Duration::minutes(15)).await.unwrap();
    let lease = chrono::Duration::seconds(10);
    let first = db.claim_broadcast(b, 3, t0, t0 + lease, t0).await.unwrap();
    assert_eq!(first.len(), 3);
    let token = |c: &herald::server::db::Claimed| (c.id, c.attempts);
    // Within its lease the claim starts.
    assert_eq!(
        db.mark_started(&[token(&first[0])], t0).await.unwrap(),
        vec![first[0].id]
    );
    // Past its lease it does not, even though nobody took it over yet.
    let late = t0 + lease + chrono::Duration::seconds(1);
    assert!(
        db.mark_started(&[token(&first[1])], late)
            .await
            .unwrap()
            .is_empty()
    );
    // Taken over by another worker (a new attempt): the old claim neither starts nor renews.
    let again = db
        .claim_broadcast(b, 3, late, late + lease, late)
        .await
        .unwrap();
    let second = again.iter().find(|c| c.id == first[1].id).unwrap();
    assert_eq!(second.attempts, first[1].attempts + 1);
    assert!(
        db.mark_started(&[token(&first[1])], late)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        db.extend_claims(&[token(&first[1])], late, late + lease)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        db.mark_started(&[token(second)], late).await.unwrap(),
        vec![second.id]
    );
    // The one whose request started before its lease ran out is unknown on Telegram, never
    // claimed again.
    let state: Vec<(String, i64)> = db.inspect().delivery_states(b).await.unwrap();
    assert!(state.contains(&("unknown".to_string(), 1)), "{state:?}");
    assert!(again.iter().all(|c| c.id != first[0].id));
}

/// Another connection holds the database for 35 s in the middle of a send (SQLite's write
/// lock; on PostgreSQL the broadcast's counter row): the requests in flight are still read
/// as their answers come, so none times out and nobody gets anything twice.
async fn a_database_stall_mid_send_sends_nobody_anything_twice(t: &crate::common::TestDb) {
    let db = &t.db;
    let config = telegram::Config {
        per_bot_per_sec: 5_000.0,
        latency: Duration::from_millis(200),
        ..telegram::Config::default()
    };
    let (fake, base) = FakeTelegram::start(config).await.unwrap();
    let channel = timing_out(fake.channel(&base, 300), 2_000);
    let tg = db
        .insert_channel(&channel, SystemClock.now())
        .await
        .unwrap();
    customers(db, 600).await;
    let b = send_now(db, tg, "Hi {{first_name|there}}").await;
    let d = Arc::new(dispatcher(db, Settings::default()));
    d.clone().spawn();
    while fake.messages().len() < 100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stall = Duration::from_secs(35);
    if t.url.starts_with("sqlite") {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&t.url).await.unwrap();
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut c)
            .await
            .unwrap();
        tokio::time::sleep(stall).await;
        sqlx::query("COMMIT").execute(&mut c).await.unwrap();
    } else {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&t.url).await.unwrap();
        let mut tx = c.begin().await.unwrap();
        sqlx::query("SELECT id FROM broadcasts WHERE id = $1 FOR UPDATE")
            .bind(b)
            .execute(&mut *tx)
            .await
            .unwrap();
        tokio::time::sleep(stall).await;
        tx.commit().await.unwrap();
    }
    let start = std::time::Instant::now();
    while db.broadcast(b).await.unwrap().status != herald::model::Lifecycle::Sent {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "not sent: {:?}",
            db.inspect().delivery_states(b).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    d.stop();
    let received = fake.received();
    assert_eq!(received.len(), 600, "everyone got it");
    assert!(received.values().all(|n| *n == 1), "nobody twice");
    let record = db.broadcast(b).await.unwrap();
    assert_eq!(
        (record.sent_count, record.unknown_count),
        (600, 0),
        "no answer lost"
    );
}

#[tokio::test]
async fn sqlite_a_database_stall_mid_send_sends_nobody_anything_twice() {
    let t = crate::common::sqlite().await;
    a_database_stall_mid_send_sends_nobody_anything_twice(&t).await;
    t.cleanup().await;
}

#[tokio::test]
async fn postgres_a_database_stall_mid_send_sends_nobody_anything_twice() {
    let Some(t) = crate::common::postgres().await else {
        return;
    };
    a_database_stall_mid_send_sends_nobody_anything_twice(&t).await;
    t.cleanup().await;
}

/// An outcome the database refuses for good (here a trigger refuses one delivery's record)
/// fails that one delivery with the reason; the broadcast goes on and finishes.
async fn an_outcome_that_cannot_be_written_fails_alone(db: &Db) {
    let channel = db
        .insert_channel(
            &herald::server::db::NewChannel {
                kind: "sandbox".into(),
                name: "Poison sandbox".into(),
                config_json: "{}".into(),
                rate_per_sec: 10_000,
            },
            SystemClock.now(),
        )
        .await
        .unwrap();
    customers(db, 40).await;
    let b = send_now(db, channel, "Hi").await;
    d_fire(db, b).await;
    let victim: i64 = db.inspect().deliveries_of(b).await.unwrap()[7].0;
    let trigger = match db.dialect() {
        herald::server::db::Dialect::Sqlite => vec![format!(
            "CREATE TRIGGER poison BEFORE UPDATE OF state ON deliveries \
             WHEN NEW.id = {victim} AND NEW.state = 'sent' \
             BEGIN SELECT RAISE(ABORT, 'poisoned outcome'); END"
        )],
        herald::server::db::Dialect::Postgres => vec![
            format!(
                "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 IF NEW.id = {victim} AND NEW.state = 'sent' THEN RAISE EXCEPTION 'poisoned outcome'; END IF; \
                 RETURN NEW; END $$"
            ),
            "CREATE TRIGGER poison BEFORE UPDATE ON deliveries FOR EACH ROW EXECUTE FUNCTION poison()"
                .to_string(),
        ],
    };
    for sql in trigger {
        db.inspect().execute(&sql).await.unwrap();
    }
    let d = dispatcher(db, Settings::default());
    until_finished(db, &d, b, Duration::from_secs(60)).await;
    let rows = db.inspect().deliveries_of(b).await.unwrap();
    let failed: Vec<_> = rows.iter().filter(|r| r.3 == "failed").collect();
    assert_eq!(failed.len(), 1, "{rows:?}");
    assert_eq!(failed[0].0, victim);
    assert_eq!(rows.iter().filter(|r| r.3 == "sent").count(), 39);
    let reasons = db.failure_reasons(b, 5).await.unwrap().0;
    assert!(reasons[0].0.contains("could not record"), "{reasons:?}");
}

/// Fires broadcast `b` now (it was scheduled to send now).
async fn d_fire(db: &Db, b: i64) {
    db.fire(b, SystemClock.now(), chrono::Duration::minutes(15))
        .await
        .unwrap();
}

/// A text over Telegram's caption limit and a photo: two requests per customer. Each takes its
/// own rate token and the parts of one chat go a second apart, as Telegram asks, so the strict
/// fake (30 a second per bot, one a second per chat) answers almost no 429; a photo refused
/// with 429 is sent again alone, the text not repeated.
#[tokio::test]
async fn a_text_and_a_photo_reach_each_chat_once_each() {
    let t = crate::common::sqlite().await;
    let db = &t.db;
    let config = telegram::Config {
        throttle_first_file: true,
        ..telegram::Config::default()
    };
    let (fake, base) = FakeTelegram::start(config).await.unwrap();
    let tg = db
        .insert_channel(&fake.channel(&base, 30), SystemClock.now())
        .await
        .unwrap();
    customers(db, 20).await;
    let (files, photo) = photo(&t);
    let b = send_now_with(db, tg, &"Our spring menu. ".repeat(80), vec![photo]).await;
    let d = dispatcher(
        db,
        Settings {
            files,
            ..Settings::default()
        },
    );
    until_finished(db, &d, b, Duration::from_secs(90)).await;
    let mut by_chat: HashMap<String, Vec<String>> = HashMap::new();
    for m in fake.messages() {
        by_chat.entry(m.chat).or_default().push(m.method);
    }
    assert_eq!(by_chat.len(), 20);
    for (chat, methods) in &by_chat {
        assert_eq!(
            methods,
            &vec!["sendMessage".to_string(), "sendPhoto".to_string()],
            "{chat}: one text, then one photo"
        );
    }
    eprintln!(
        "{} answers 429 for 20 chats, 20 of them forced",
        fake.throttled()
    );
    // Each chat's first photo was refused once (20); beyond those, few if any 429s.
    assert!(fake.throttled() <= 20 + 5, "429s: {}", fake.throttled());
    let record = db.broadcast(b).await.unwrap();
    assert_eq!(
        (record.sent_count, record.failed_count, record.unknown_count),
        (20, 0, 0)
    );
    t.cleanup().await;
}

/// Each part of a message is written down as it is accepted, before the rest has gone: a
/// crash while the photo uploads leaves the text recorded, so a retry would not repeat it.
#[tokio::test]
async fn each_part_is_written_down_as_it_is_accepted() {
    let t = crate::common::sqlite().await;
    let db = &t.db;
    let config = telegram::Config {
        file_latency: Duration::from_secs(30),
        ..telegram::Config::default()
    };
    let (fake, base) = FakeTelegram::start(config).await.unwrap();
    let channel = timing_out(fake.channel(&base, 30), 60_000);
    let tg = db
        .insert_channel(&channel, SystemClock.now())
        .await
        .unwrap();
    customers(db, 3).await;
    let (files, photo) = photo(&t);
    let b = send_now_with(db, tg, &"Long. ".repeat(300), vec![photo]).await;
    let d = Arc::new(dispatcher(
        db,
        Settings {
            files,
            ..Settings::default()
        },
    ));
    d.clone().spawn();
    let start = std::time::Instant::now();
    loop {
        let rows = db.inspect().deliveries_of(b).await.unwrap();
        let texts = fake.messages().len();
        let noted = db
            .inspect()
            .execute(&format!(
                "UPDATE deliveries SET error = error WHERE broadcast_id = {b} AND state = 'sending' AND parts_sent LIKE '[[0,%'"
            ))
            .await
            .unwrap();
        if texts == 3 && noted == 3 {
            assert!(
                rows.iter().all(|r| r.3 == "sending"),
                "the photos are still on their way"
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "texts {texts}, noted {noted}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    d.stop();
    t.cleanup().await;
}

/// A throttle holds the channel's shared bucket: no instance is granted a token until the
/// provider's wait is over.
async fn a_throttle_holds_the_whole_channel(db: &Db) {
    let channel = db
        .insert_channel(
            &herald::server::db::NewChannel {
                kind: "sandbox".into(),
                name: "Throttled".into(),
                config_json: "{}".into(),
                rate_per_sec: 100,
            },
            SystemClock.now(),
        )
        .await
        .unwrap();
    let (granted, _) = db
        .take_send_tokens(channel, 100.0, 20.0, 5, 0)
        .await
        .unwrap();
    assert_eq!(granted, 5);
    db.hold_send_tokens(channel, Duration::from_secs(2))
        .await
        .unwrap();
    let (granted, wait) = db
        .take_send_tokens(channel, 100.0, 20.0, 5, 0)
        .await
        .unwrap();
    assert_eq!(granted, 0, "held");
    assert!(wait >= Duration::from_millis(1_800), "{wait:?}");
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let (granted, _) = db
        .take_send_tokens(channel, 100.0, 20.0, 5, 0)
        .await
        .unwrap();
    assert!(granted > 0, "free again after the wait");
}
