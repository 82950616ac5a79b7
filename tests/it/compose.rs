//! Saving, editing and copying broadcasts on SQLite and PostgreSQL.

use chrono::{Duration, TimeZone, Utc};
use herald::model::audience::{AudienceRule, Condition, Field, Match, Op};
use herald::model::compose::{Compose, Intent};
use herald::model::{BroadcastId, ChannelId, CustomerId, UserId};
use herald::server::db::{ComposeError, Db, NewBroadcast};
use herald::server::seed;

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
}

fn vip_sale() -> Compose {
    Compose {
        name: "Winter sale".into(),
        body: "Hi {{first_name}} ❄️ 20% off this week".into(),
        audience: AudienceRule {
            matching: Match::All,
            conditions: vec![Condition {
                field: Field::Tag,
                op: Op::Is,
                id: 1,
            }],
            frozen: None,
        },
        channel_ids: vec![1],
        scheduled_at: Some(now() + Duration::days(2)),
        attachments: Vec::new(),
        template: None,
        timing: Default::default(),
        purpose: Default::default(),
        ab: None,
    }
}

async fn save_is_idempotent_edit_stops_at_start_and_copy_makes_a_draft(db: &Db) {
    seed::load(db, now()).await.unwrap();
    let staff = 2;
    let before = db.count_broadcasts().await.unwrap();
    let v = vip_sale().validate(Intent::Schedule, now()).unwrap();

    // A double-clicked save: one broadcast.
    let (id, created) = db
        .create_broadcast(&v, UserId(staff), "wizard-key-1", now())
        .await
        .unwrap();
    assert!(created);
    let (again, created_again) = db
        .create_broadcast(&v, UserId(staff), "wizard-key-1", now())
        .await
        .unwrap();
    assert_eq!((again, created_again), (id, false));
    assert_eq!(db.count_broadcasts().await.unwrap(), before + 1);
    let b = db.broadcast(id).await.unwrap();
    assert_eq!(b.status, herald::model::Lifecycle::Scheduled);
    assert_eq!(b.scheduled_at, v.scheduled_at);
    let (stored, status, _) = db.broadcast_for_edit(id).await.unwrap();
    assert_eq!(status, herald::model::Lifecycle::Scheduled);
    assert_eq!(stored.audience, vip_sale().audience);
    assert_eq!(stored.body, vip_sale().body);

    // Edit its time while it has not started.
    let later = Compose {
        scheduled_at: Some(now() + Duration::days(3)),
        ..vip_sale()
    }
    .validate(Intent::Schedule, now())
    .unwrap();
    db.update_broadcast(BroadcastId(id), &later, UserId(staff), now())
        .await
        .unwrap();
    assert_eq!(
        db.broadcast(id).await.unwrap().scheduled_at,
        Some(now() + Duration::days(3))
    );
    assert_eq!(
        db.inspect()
            .audit_trail("broadcast", id)
            .await
            .unwrap()
            .iter()
            .map(|(a, _, _)| a.as_str())
            .collect::<Vec<_>>(),
        vec!["edit", "create"]
    );

    // A broadcast that is sending cannot be rewritten; a sent one can be copied.
    let sent = db
        .inspect()
        .insert_broadcast(&NewBroadcast {
            name: "October news".into(),
            body: "News".into(),
            status: herald::model::Lifecycle::Sent,
            paused: false,
            audience_json:
                r#"{"match":"any","conditions":[{"field":"robot_group","op":"is","id":2}]}"#.into(),
            channel_ids_json: "[1]".into(),
            scheduled_at: Some(now() - Duration::days(30)),
            started_at: Some(now() - Duration::days(30)),
            finished_at: Some(now() - Duration::days(30)),
            created_at: now() - Duration::days(31),
            created_by: Some(staff),
        })
        .await
        .unwrap();
    let err = db
        .update_broadcast(BroadcastId(sent), &later, UserId(staff), now())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ComposeError::Started(s) if *s == herald::model::Lifecycle::Sent),
        "{err:?}"
    );
    assert!(matches!(
        db.update_broadcast(BroadcastId(999_999), &later, UserId(staff), now())
            .await,
        Err(ComposeError::NotFound)
    ));
    let copy = db
        .copy_broadcast(BroadcastId(sent), UserId(staff), now())
        .await
        .unwrap();
    let (c, status, from) = db.broadcast_for_edit(copy).await.unwrap();
    assert_eq!(status, herald::model::Lifecycle::Draft);
    assert_eq!(from, Some(sent));
    assert_eq!(c.name, "Copy of October news");
    assert_eq!(c.body, "News");
    assert_eq!(c.scheduled_at, None);
    assert_eq!(c.channel_ids, vec![1]);
    assert_eq!(c.audience.matching, Match::Any);
    assert!(c.audience.mentions(Field::RobotGroup, 2));
    assert!(db.broadcast(copy).await.unwrap().started_at.is_none());
}

async fn recipients_are_found_exactly_and_test_messages_join_their_conversation(db: &Db) {
    use herald::model::channel::ChannelKind;
    seed::load(db, now()).await.unwrap();
    let one = db.recipient(1).await.unwrap().unwrap();
    let phone = one.phone.clone().unwrap();
    assert_eq!(db.find_customers(&phone, 2).await.unwrap(), vec![1]);
    assert_eq!(
        db.find_customers(&format!("  {phone} "), 2).await.unwrap(),
        vec![1]
    );
    if let Some(email) = &one.email {
        assert_eq!(
            db.find_customers(&email.to_uppercase(), 2).await.unwrap(),
            vec![1]
        );
    }
    assert!(db.find_customers(&one.name, 5).await.unwrap().contains(&1));
    assert!(db.find_customers("", 2).await.unwrap().is_empty());
    assert!(
        db.find_customers("no such person", 2)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(one.address(ChannelKind::Sms), Some(phone.clone()));
    assert_eq!(one.address(ChannelKind::Sandbox), Some(phone.clone()));
    assert_eq!(one.address(ChannelKind::Webhook), Some("1".to_string()));
    assert!(one.facts().addresses.contains(&ChannelKind::Sandbox));

    let channel = db.enabled_channels().await.unwrap()[0].id;
    db.record_inbound(ChannelId(channel), CustomerId(1), "stop", None, now())
        .await
        .unwrap();
    let after = db.recipient(1).await.unwrap().unwrap();
    assert_eq!(after.opted_out_kinds, vec![ChannelKind::Sandbox]);
    // A provider saying the address is dead (a blocked bot) works like an opt-out there.
    for _ in 0..2 {
        db.mark_unreachable(
            1,
            ChannelKind::Telegram,
            "Telegram 403: bot was blocked",
            now(),
        )
        .await
        .unwrap();
    }
    let mut kinds = db.recipient(1).await.unwrap().unwrap().opted_out_kinds;
    kinds.sort_by_key(|k| k.as_str());
    assert_eq!(kinds, vec![ChannelKind::Sandbox, ChannelKind::Telegram]);
    let id = db
        .record_outbound(
            CustomerId(1),
            ChannelId(channel),
            "Hi Ann",
            "sbx-1",
            UserId(2),
            herald::server::db::Outbound::Test(Some(7)),
            now() + Duration::seconds(1),
        )
        .await
        .unwrap();
    assert!(id > 0);
    let convo = db.inspect().conversation(1).await.unwrap();
    assert_eq!(
        convo
            .iter()
            .map(|m| (m.0.as_str(), m.1.as_str()))
            .collect::<Vec<_>>(),
        vec![("in", "stop"), ("out", "Hi Ann")]
    );
}
on_both_backends!(
    save_is_idempotent_edit_stops_at_start_and_copy_makes_a_draft,
    recipients_are_found_exactly_and_test_messages_join_their_conversation
);
