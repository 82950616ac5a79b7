//! Retargeting by outcome on SQLite and PostgreSQL: the set a follow-up freezes equals an
//! independent recount of the original's outcomes, the follow-up's audience is that set
//! (narrowed by its conditions, opted-out customers left out), and later outcomes do not
//! change it.

use chrono::{DateTime, TimeZone, Utc};
use herald::model::UserId;
use herald::model::audience::{AudienceRule, Condition, Field, Match, Op};
use herald::model::channel::ChannelKind;
use herald::model::compose::{Compose, Intent};
use herald::model::retarget::Outcome;
use herald::server::db::{Db, NewChannel, NewCustomer};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 8, 12, 0, 0).unwrap()
}

/// Twenty customers with a phone, the even ones tagged "Even"; a broadcast to all of them on
/// a sandbox channel whose deliveries are written in a spread of states: its id, the tag.
async fn original(db: &Db) -> (i64, i64) {
    let even = db.ensure_tag("Even").await.unwrap();
    let people: Vec<NewCustomer> = (0..20)
        .map(|i| NewCustomer {
            name: format!("Follow {i}"),
            phone: Some(format!("+4930{i:06}")),
            time_zone: "UTC".into(),
            tag_ids: if i % 2 == 0 { vec![even] } else { Vec::new() },
            ..Default::default()
        })
        .collect();
    db.insert_customers_bulk(&people, t0()).await.unwrap();
    let channel = db
        .insert_channel(
            &NewChannel {
                kind: "sandbox".into(),
                name: "Sandbox".into(),
                config_json: "{}".into(),
                rate_per_sec: 10,
            },
            t0(),
        )
        .await
        .unwrap();
    let v = Compose {
        name: "Original".into(),
        body: "Hello".into(),
        channel_ids: vec![channel],
        ..Default::default()
    }
    .validate(Intent::Draft, t0())
    .unwrap();
    let author = db
        .create_user(
            "follow@herald.test",
            "F",
            herald::model::Role::Staff,
            "x",
            t0(),
        )
        .await
        .unwrap();
    let (id, _) = db
        .create_broadcast(&v, UserId(author), "retarget-0001", t0())
        .await
        .unwrap();
    let customers = db
        .inspect()
        .numbers("SELECT id FROM customers WHERE name LIKE 'Follow %' ORDER BY id")
        .await
        .unwrap();
    // By position: sent, delivered, read, read and replied, failed, expired, unknown, pending.
    let states = [
        "sent",
        "delivered",
        "read",
        "read",
        "failed",
        "expired",
        "unknown",
        "pending",
    ];
    let rows: Vec<String> = customers
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let state = states[i % states.len()];
            let replied = if i % states.len() == 3 {
                "'2026-12-08T13:00:00Z'"
            } else {
                "NULL"
            };
            format!("({id}, {c}, {channel}, '{state}', '2026-12-08T12:00:00Z', {replied})")
        })
        .collect();
    db.inspect()
        .execute(&format!(
            "INSERT INTO deliveries (broadcast_id, customer_id, channel_id, state, created_at, replied_at) VALUES {}",
            rows.join(", ")
        ))
        .await
        .unwrap();
    (id, even)
}

/// The recount, in SQL of the test's own: the customers of broadcast `id` with `outcome`.
async fn recount(db: &Db, id: i64, outcome: Outcome) -> Vec<i64> {
    let when = match outcome {
        Outcome::NotRead => "state IN ('sent', 'delivered') AND replied_at IS NULL",
        Outcome::NotReplied => "state IN ('sent', 'delivered', 'read') AND replied_at IS NULL",
        Outcome::Replied => "replied_at IS NOT NULL",
        Outcome::Failed => "state = 'failed'",
        Outcome::NotReached => "state NOT IN ('delivered', 'read') AND replied_at IS NULL",
    };
    db.inspect()
        .numbers(&format!(
            "SELECT customer_id FROM deliveries WHERE broadcast_id = {id} AND {when} ORDER BY customer_id"
        ))
        .await
        .unwrap()
}

async fn a_follow_up_s_audience_is_the_frozen_outcome_narrowed_by_its_conditions(db: &Db) {
    let (id, even) = original(db).await;
    for outcome in Outcome::ALL {
        let expected = recount(db, id, outcome).await;
        let (set, size) = db.freeze_outcome(id, outcome, t0()).await.unwrap();
        assert_eq!(size, expected.len() as i64, "{outcome:?}");
        assert!(size > 0, "{outcome:?}: the spread has some of each");
        let frozen = AudienceRule {
            frozen: Some(set),
            ..AudienceRule::default()
        };
        let mut got = db
            .inspect()
            .audience_ids(&frozen, &[ChannelKind::Sms])
            .await
            .unwrap();
        got.sort();
        assert_eq!(got, expected, "{outcome:?}");
        // Narrowed by "tag is Even": the even-numbered of them.
        let narrowed = AudienceRule {
            matching: Match::All,
            conditions: vec![Condition {
                field: Field::Tag,
                op: Op::Is,
                id: even,
            }],
            frozen: Some(set),
        };
        let evens = db
            .inspect()
            .numbers(&format!(
                "SELECT customer_id FROM customer_tags WHERE tag_id = {even} ORDER BY customer_id"
            ))
            .await
            .unwrap();
        let mut got = db
            .inspect()
            .audience_ids(&narrowed, &[ChannelKind::Sms])
            .await
            .unwrap();
        got.sort();
        let want: Vec<i64> = expected
            .iter()
            .copied()
            .filter(|c| evens.contains(c))
            .collect();
        assert_eq!(got, want, "{outcome:?} and Even");
    }
    // Frozen: a later read does not change a set already made.
    let (set, size) = db.freeze_outcome(id, Outcome::NotRead, t0()).await.unwrap();
    db.inspect()
        .execute(&format!(
            "UPDATE deliveries SET state = 'read' WHERE broadcast_id = {id}"
        ))
        .await
        .unwrap();
    let frozen = AudienceRule {
        frozen: Some(set),
        ..AudienceRule::default()
    };
    let got = db
        .inspect()
        .audience_ids(&frozen, &[ChannelKind::Sms])
        .await
        .unwrap();
    assert_eq!(got.len() as i64, size);
    assert_eq!(
        db.freeze_outcome(id, Outcome::NotRead, t0())
            .await
            .unwrap()
            .1,
        0
    );
}

on_both_backends!(a_follow_up_s_audience_is_the_frozen_outcome_narrowed_by_its_conditions);
