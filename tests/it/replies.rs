//! What counts as a reply: a message quoting a broadcast message, or else the first message a
//! customer sends on the channel within the reply window after it. A stop word is an opt-out,
//! never a reply.

use chrono::Duration;
use herald::model::compose::{Compose, Intent};
use herald::model::{ChannelId, CustomerId, Role, UserId};
use herald::server::clock::{Clock, SystemClock};
use herald::server::db::{Db, NewChannel, NewCustomer, Outcome};

async fn replies_are_the_first_message_after_a_send_and_stop_is_not_one(db: &Db) {
    let now = SystemClock.now();
    let channel = db
        .insert_channel(
            &NewChannel {
                kind: "sandbox".into(),
                name: "Replies".into(),
                config_json: "{}".into(),
                rate_per_sec: 100,
            },
            now,
        )
        .await
        .unwrap();
    let people: Vec<NewCustomer> = (0..4)
        .map(|i| NewCustomer {
            name: format!("Person {i}"),
            phone: Some(format!("+1777000{i:04}")),
            time_zone: "UTC".into(),
            ..Default::default()
        })
        .collect();
    db.insert_customers_bulk(&people, now).await.unwrap();
    let author = db
        .create_user("replies@herald.test", "R", Role::Staff, "x", now)
        .await
        .unwrap();
    let v = Compose {
        name: "Replies".into(),
        body: "Hi".into(),
        channel_ids: vec![channel],
        ..Default::default()
    }
    .validate(Intent::SendNow, now)
    .unwrap();
    let b = db
        .create_broadcast(&v, UserId(author), "replies-key-00001", now)
        .await
        .unwrap()
        .0;
    db.fire(b, now, Duration::minutes(15)).await.unwrap();
    let claimed = db
        .claim_broadcast(b, 10, now, now + Duration::seconds(60), now)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 4);
    let outcomes: Vec<_> = claimed
        .iter()
        .map(|c| {
            let pid = format!("sb-{}", c.id);
            (
                c.clone(),
                Outcome::Sent {
                    provider_message_id: pid,
                    replayed: false,
                },
            )
        })
        .collect();
    db.record(&outcomes, now).await.unwrap();
    let ch = ChannelId(channel);
    let person = |i: usize| claimed[i].customer_id;
    let write = |who: CustomerId, text: &'static str, n: u32, at: chrono::DateTime<chrono::Utc>| {
        let id = format!("in-{}-{n}", who.0);
        async move {
            db.record_inbound_reply(ch, who, text, Some(&id), None, at)
                .await
                .unwrap()
        }
    };
    let later = now + Duration::minutes(5);
    // STOP opts out and is no reply.
    let stop = write(person(0), "STOP", 1, later).await;
    assert!(stop.opted_out);
    assert_eq!(stop.replied, None, "a stop word is not a reply");
    // The first message after the send is the reply.
    let first = write(person(1), "Thanks, see you!", 1, later).await;
    assert_eq!(first.replied, Some(claimed[1].id));
    // A message after a STOP is not the first one after the send: no reply either.
    let after_stop = write(
        person(0),
        "sorry, what was that?",
        2,
        later + Duration::minutes(1),
    )
    .await;
    assert_eq!(after_stop.replied, None);
    // Past the window (one hour here), nothing is a reply.
    let narrow = db.clone().with_reply_window(1);
    let late = narrow
        .record_inbound_reply(
            ch,
            person(2),
            "hello?",
            Some("in-late"),
            None,
            now + Duration::hours(2),
        )
        .await
        .unwrap();
    assert_eq!(late.replied, None);
    let counters = db.inspect().counters(b).await.unwrap();
    assert_eq!(counters[4], 1, "one reply counted");
    assert_eq!(counters, db.recount(b).await.unwrap());
}

on_both_backends!(replies_are_the_first_message_after_a_send_and_stop_is_not_one);
