//! Saving, editing and copying broadcasts on SQLite and PostgreSQL.
#![cfg(feature = "ssr")]

mod common;

use chrono::{Duration, TimeZone, Utc};
use herald::model::audience::{AudienceRule, Condition, Field, Match, Op};
use herald::model::compose::{Compose, Intent};
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
        },
        channel_ids: vec![1],
        scheduled_at: Some(now() + Duration::days(2)),
        attachments: Vec::new(),
    }
}

async fn save_is_idempotent_edit_stops_at_start_and_copy_makes_a_draft(db: &Db) {
    seed::load(db, now()).await.unwrap();
    let staff = 2;
    let before = db.count_broadcasts().await.unwrap();
    let v = vip_sale().validate(Intent::Schedule, now()).unwrap();

    // A double-clicked save: one broadcast.
    let (id, created) = db
        .create_broadcast(&v, staff, "wizard-key-1", now())
        .await
        .unwrap();
    assert!(created);
    let (again, created_again) = db
        .create_broadcast(&v, staff, "wizard-key-1", now())
        .await
        .unwrap();
    assert_eq!((again, created_again), (id, false));
    assert_eq!(db.count_broadcasts().await.unwrap(), before + 1);
    let b = db.broadcast(id).await.unwrap();
    assert_eq!(b.status, "scheduled");
    assert_eq!(b.scheduled_at, v.scheduled_at);
    let (stored, status, _) = db.broadcast_for_edit(id).await.unwrap();
    assert_eq!(status, "scheduled");
    assert_eq!(stored.audience, vip_sale().audience);
    assert_eq!(stored.body, vip_sale().body);

    // Edit its time while it has not started.
    let later = Compose {
        scheduled_at: Some(now() + Duration::days(3)),
        ..vip_sale()
    }
    .validate(Intent::Schedule, now())
    .unwrap();
    db.update_broadcast(id, &later, staff, now()).await.unwrap();
    assert_eq!(
        db.broadcast(id).await.unwrap().scheduled_at,
        Some(now() + Duration::days(3))
    );
    assert_eq!(
        db.audit_trail("broadcast", id)
            .await
            .unwrap()
            .iter()
            .map(|(a, _, _)| a.as_str())
            .collect::<Vec<_>>(),
        vec!["edit", "create"]
    );

    // A broadcast that is sending cannot be rewritten; a sent one can be copied.
    let sent = db
        .insert_broadcast(&NewBroadcast {
            name: "October news".into(),
            body: "News".into(),
            status: "sent".into(),
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
        .update_broadcast(sent, &later, staff, now())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ComposeError::Started(s) if s == "sent"),
        "{err:?}"
    );
    assert!(matches!(
        db.update_broadcast(999_999, &later, staff, now()).await,
        Err(ComposeError::NotFound)
    ));
    let copy = db.copy_broadcast(sent, staff, now()).await.unwrap();
    let (c, status, from) = db.broadcast_for_edit(copy).await.unwrap();
    assert_eq!(status, "draft");
    assert_eq!(from, Some(sent));
    assert_eq!(c.name, "Copy of October news");
    assert_eq!(c.body, "News");
    assert_eq!(c.scheduled_at, None);
    assert_eq!(c.channel_ids, vec![1]);
    assert_eq!(c.audience.matching, Match::Any);
    assert!(c.audience.mentions(Field::RobotGroup, 2));
    assert!(db.broadcast(copy).await.unwrap().started_at.is_none());
}

on_both_backends!(save_is_idempotent_edit_stops_at_start_and_copy_makes_a_draft);
