//! Chat events: a stored chat message wakes the pages that show that conversation, in this
//! process (SQLite) and in every instance sharing one PostgreSQL (LISTEN/NOTIFY).

use crate::common;
use herald::model::{ChannelId, CustomerId, UserId};

use std::time::Duration;

use herald::server::db::{Db, NewChannel, Outbound};
use tokio::sync::broadcast::Receiver;

async fn channel(db: &Db) -> i64 {
    db.insert_channel(
        &NewChannel {
            kind: "sandbox".into(),
            name: "Events sandbox".into(),
            config_json: "{}".into(),
            rate_per_sec: 10,
        },
        chrono::Utc::now(),
    )
    .await
    .unwrap()
}

/// The next customer announced, within two seconds.
async fn next(rx: &mut Receiver<i64>) -> i64 {
    tokio::time::timeout(Duration::from_secs(2), rx.recv())
        .await
        .expect("announced within 2 s")
        .unwrap()
}

/// `writer` stores an inbound message, a reply and another customer's message; `reader`'s
/// stream names each customer in turn, and nothing more.
async fn messages_are_announced(reader: &Db, writer: &Db) {
    let now = chrono::Utc::now();
    herald::server::seed::load(reader, now).await.unwrap();
    let ch = channel(writer).await;
    let mut rx = reader.chat_events().await;
    writer
        .record_inbound(
            ChannelId(ch),
            CustomerId(1),
            "Is the sale still on?",
            Some("in-1"),
            now,
        )
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await, 1);
    writer
        .record_outbound(
            CustomerId(2),
            ChannelId(ch),
            "Yes, until Sunday.",
            "out-1",
            UserId(1),
            Outbound::Reply,
            now,
        )
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await, 2);
    writer
        .record_inbound(ChannelId(ch), CustomerId(3), "STOP", Some("in-2"), now)
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await, 3);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "one announcement per message"
    );
}

#[tokio::test]
async fn sqlite_announces_chat_messages_in_process() {
    let t = common::sqlite().await;
    messages_are_announced(&t.db, &t.db).await;
    t.cleanup().await;
}

#[tokio::test]
async fn postgres_announces_chat_messages_to_another_instance() {
    let Some(t) = common::postgres().await else {
        return;
    };
    // Another instance: its own pool on the same database.
    let other = Db::connect(&t.url).await.unwrap();
    messages_are_announced(&t.db, &other).await;
    other.close().await;
    t.cleanup().await;
}

/// Two instances on one PostgreSQL: instance B's dispatcher sends a broadcast while a page on
/// instance A follows its list row. Each time B has recorded more, A's page shows it within
/// a second, through B's announcements and A's one LISTEN connection (A sends nothing).
#[tokio::test]
async fn postgres_a_page_on_one_instance_follows_another_instance_s_sending() {
    use herald::model::compose::{Compose, Intent};
    use herald::server::dispatch::{Dispatcher, Settings};
    use herald::server::live::Topic;
    let Some(t) = common::postgres().await else {
        return;
    };
    // Instance B: its own pool, events and memory on the same database, sharing the key.
    let b_db = Db::connect(&t.url)
        .await
        .unwrap()
        .with_sealer(herald::server::db::secrets::Sealer::from_base64(common::SECRET_KEY).unwrap());
    let (a, _) = crate::http::serve_state(&t.db).await;
    let now = chrono::Utc::now();
    let people: Vec<herald::server::db::NewCustomer> = (0..150)
        .map(|i| herald::server::db::NewCustomer {
            name: format!("Live {i}"),
            phone: Some(format!("+4917{i:07}")),
            time_zone: "UTC".into(),
            ..Default::default()
        })
        .collect();
    t.db.insert_customers_bulk(&people, now).await.unwrap();
    let sandbox =
        t.db.insert_channel(
            &NewChannel {
                kind: "sandbox".into(),
                name: "Paced sandbox".into(),
                config_json: "{}".into(),
                rate_per_sec: 50,
            },
            now,
        )
        .await
        .unwrap();
    let author =
        t.db.create_user(
            "live@herald.test",
            "L",
            herald::model::Role::Staff,
            "x",
            now,
        )
        .await
        .unwrap();
    let v = Compose {
        name: "Live".into(),
        body: "Hello".into(),
        channel_ids: vec![sandbox],
        ..Default::default()
    }
    .validate(Intent::SendNow, now)
    .unwrap();
    let (id, _) =
        t.db.create_broadcast(&v, UserId(author), "live-key-000000001", now)
            .await
            .unwrap();
    let viewer = herald::model::CurrentUser {
        id: UserId(author),
        email: "live@herald.test".into(),
        name: "L".into(),
        role: herald::model::Role::Staff,
        time_zone: "UTC".into(),
    };
    let rx = a.live.follow(&a, Topic::Row(id), &viewer).await.unwrap();
    let shown = || -> i64 {
        let v: serde_json::Value = serde_json::from_str(&rx.borrow()).unwrap();
        v["state"]["sent"].as_i64().unwrap_or(0)
    };
    let b = std::sync::Arc::new(Dispatcher::new(
        b_db.clone(),
        std::sync::Arc::new(herald::server::clock::SystemClock),
        Default::default(),
        Settings::default(),
    ));
    b.clone().spawn();
    let (mut seen, mut worst) = (std::collections::BTreeSet::new(), Duration::ZERO);
    let start = std::time::Instant::now();
    loop {
        let truth = b_db.broadcast(id).await.unwrap().sent_count;
        let asked = std::time::Instant::now();
        while shown() < truth {
            assert!(
                asked.elapsed() < Duration::from_secs(1),
                "A shows {} a second after B recorded {truth}",
                shown()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        worst = worst.max(asked.elapsed());
        seen.insert(shown());
        if truth == 150 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "B never finished: {:?} {:?}",
            b_db.broadcast(id).await.unwrap(),
            b_db.inspect().delivery_states(id).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    b.stop();
    eprintln!(
        "A followed B within {worst:?}; it showed {} different counts",
        seen.len()
    );
    assert!(seen.len() >= 4, "progress, not only the end: {seen:?}");
    b_db.close().await;
    t.cleanup().await;
}

/// The LISTEN connection is cut (as a database restart or a network blip would): the listener
/// listens again, says so to whoever follows (they read again once), and hears later
/// announcements.
#[tokio::test]
async fn postgres_a_dropped_listen_connection_is_made_again() {
    let Some(t) = common::postgres().await else {
        return;
    };
    let other = Db::connect(&t.url).await.unwrap();
    let mut rx = t.db.broadcast_events().await;
    other.announce_broadcast(42).await;
    assert_eq!(next(&mut rx).await, 42);
    let cut = t
        .db
        .inspect()
        .numbers(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity \
             WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()",
        )
        .await
        .unwrap()[0];
    assert!(cut >= 1, "a LISTEN connection was there to cut");
    assert_eq!(
        next(&mut rx).await,
        herald::server::db::RESYNC,
        "read again once"
    );
    assert!(t.db.listener_reconnects() >= 1);
    other.announce_broadcast(43).await;
    let mut got = next(&mut rx).await;
    while got == herald::server::db::RESYNC {
        got = next(&mut rx).await;
    }
    assert_eq!(got, 43);
    other.close().await;
    t.cleanup().await;
}
