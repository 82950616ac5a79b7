//! One instance's clock ahead: two instances of the real binary on one PostgreSQL, the second
//! with its clock 45 s and then 10 minutes ahead (`HERALD_CLOCK_SKEW_SECONDS`). Herald keeps
//! to the database's clock, so the skewed one steals no live claim, fires no schedule early,
//! nobody gets anything twice (counted at the strict Telegram fake), and killing the skewed
//! one leaves nothing stuck for longer than the lease.

use std::time::{Duration, Instant};

use chrono::Utc;
use herald::model::compose::{Compose, Intent};
use herald::model::{Lifecycle, Role, UserId};
use herald::server::db::{Db, NewCustomer};
use herald::server::fakes::telegram::{Config, FakeTelegram};

use crate::common;
use crate::deploy::start_with;

/// The lease the instances hold claims for: shorter than the first skew, so an instance that
/// read its own clock would think every live claim of the other had run out.
const LEASE: &str = "30";

async fn schedule(db: &Db, channel: i64, author: i64, at: chrono::DateTime<Utc>, key: &str) -> i64 {
    let now = Utc::now();
    let v = Compose {
        name: format!("Skew {key}"),
        body: "Hi {{first_name|there}}".into(),
        channel_ids: vec![channel],
        scheduled_at: Some(at),
        ..Default::default()
    }
    .validate(Intent::Schedule, now)
    .unwrap();
    db.create_broadcast(&v, UserId(author), key, now)
        .await
        .unwrap()
        .0
}

async fn until_sent(db: &Db, id: i64, limit: Duration) {
    let start = Instant::now();
    while db.broadcast(id).await.unwrap().status != Lifecycle::Sent {
        assert!(
            start.elapsed() < limit,
            "not sent after {limit:?}: {:?}",
            db.inspect().delivery_states(id).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_instance_with_its_clock_ahead_steals_nothing_and_fires_nothing_early() {
    let Some(t) = common::postgres().await else {
        return;
    };
    let config = Config {
        per_bot_per_sec: 1_000.0,
        latency: Duration::from_millis(100),
        ..Config::default()
    };
    let (fake, base) = FakeTelegram::start(config).await.unwrap();
    let now = Utc::now();
    let tg =
        t.db.insert_channel(&fake.channel(&base, 100), now)
            .await
            .unwrap();
    let people: Vec<NewCustomer> = (0..1_500)
        .map(|i| NewCustomer {
            name: format!("Person {i}"),
            telegram_chat_id: Some(format!("{}", 900_000 + i)),
            time_zone: "UTC".into(),
            ..Default::default()
        })
        .collect();
    t.db.insert_customers_bulk(&people, now).await.unwrap();
    let author =
        t.db.create_user("ops@herald.test", "Ops", Role::Admin, "x", now)
            .await
            .unwrap();
    let settings = [("HERALD_DISPATCH_LEASE_SECONDS", LEASE)];
    let skewed = |s: &'static str| {
        [
            ("HERALD_DISPATCH_LEASE_SECONDS", LEASE),
            ("HERALD_CLOCK_SKEW_SECONDS", s),
        ]
    };

    // 45 s ahead: both send one broadcast, due in 10 s.
    let first_at = Utc::now() + chrono::Duration::seconds(10);
    let first = schedule(&t.db, tg, author, first_at, "skew-first-000001").await;
    let _a = start_with(&t, &settings);
    let mut b = start_with(&t, &skewed("45"));
    until_sent(&t.db, first, Duration::from_secs(90)).await;
    let messages = fake.messages();
    let earliest = messages.iter().map(|m| m.at).min().unwrap();
    assert!(
        earliest >= first_at - chrono::Duration::milliseconds(500),
        "fired {:?} early",
        first_at - earliest
    );
    let record = t.db.broadcast(first).await.unwrap();
    assert_eq!(
        (record.sent_count, record.unknown_count, record.resent_count),
        (1_500, 0, 0),
        "no live claim was taken over"
    );
    let received = fake.received();
    assert_eq!(received.len(), 1_500);
    assert!(received.values().all(|n| *n == 1), "nobody twice");

    // Ten minutes ahead: it fires nothing early; killed mid-send, it leaves nothing stuck.
    b.kill();
    let second_at = Utc::now() + chrono::Duration::seconds(8);
    let second = schedule(&t.db, tg, author, second_at, "skew-second-00001").await;
    let mut b = start_with(&t, &skewed("600"));
    while fake.messages().len() < 1_500 + 300 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let earliest = fake.messages()[1_500..].iter().map(|m| m.at).min().unwrap();
    assert!(
        earliest >= second_at - chrono::Duration::milliseconds(500),
        "fired {:?} early",
        second_at - earliest
    );
    b.kill();
    // The killed one's claims run out after the lease, by the database's clock.
    until_sent(&t.db, second, Duration::from_secs(75)).await;
    let received = fake.received();
    assert!(
        received.values().all(|n| *n <= 2),
        "nobody got the second broadcast twice"
    );
    let record = t.db.broadcast(second).await.unwrap();
    assert_eq!(
        record.sent_count + record.unknown_count,
        1_500,
        "nothing stuck"
    );
    // Every delivery recorded sent reached its chat; an unknown one may or may not have.
    let got_both = received.values().filter(|n| **n == 2).count() as i64;
    assert!(
        got_both >= record.sent_count,
        "{got_both} < {}",
        record.sent_count
    );
    assert!(got_both <= record.sent_count + record.unknown_count);
    eprintln!(
        "killed mid-send 10 min ahead: {} sent, {} unknown (in flight at the kill)",
        record.sent_count, record.unknown_count
    );
    t.cleanup().await;
}
