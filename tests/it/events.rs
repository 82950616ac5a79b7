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
