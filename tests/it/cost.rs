//! Cost and approval in storage, on SQLite and PostgreSQL: the pre-flight's counts per picked
//! channel and number prefix follow the firing's consent conditions (counted by hand here),
//! and an approval is submitted, decided, voided by a changed fingerprint and undone.

use chrono::{DateTime, TimeZone, Utc};
use herald::model::audience::{AudienceRule, Condition, Field, Match, Op};
use herald::model::channel::ChannelKind;
use herald::model::compose::{Compose, Intent};
use herald::model::consent::{Purpose, Source};
use herald::model::{Lifecycle, UserId};
use herald::server::db::{ConsentChange, Db, Eligibility, NewCustomer};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 8, 12, 0, 0).unwrap()
}

/// Three Germans on WhatsApp and SMS (one opted in to marketing on WhatsApp), two US numbers
/// on SMS only, all tagged "Priced"; the tag's rule.
async fn priced_customers(db: &Db) -> AudienceRule {
    let tag = db.ensure_tag("Priced").await.unwrap();
    let person = |i: usize, phone: String, wa: Option<String>| NewCustomer {
        name: format!("Priced {i}"),
        phone: Some(phone),
        email: None,
        whatsapp_id: wa,
        telegram_chat_id: None,
        assignee_id: None,
        time_zone: "UTC".into(),
        opted_out: false,
        tag_ids: vec![tag],
        group_ids: Vec::new(),
    };
    let mut rows: Vec<NewCustomer> = (0..3)
        .map(|i| person(i, format!("+4917000{i:04}"), Some(format!("4917000{i:04}"))))
        .collect();
    rows.extend((3..5).map(|i| person(i, format!("+1555000{i:04}"), None)));
    db.insert_customers_bulk(&rows, t0()).await.unwrap();
    let first = db
        .inspect()
        .numbers("SELECT id FROM customers WHERE name = 'Priced 0'")
        .await
        .unwrap()[0];
    let change = ConsentChange {
        customer_id: first,
        kind: "whatsapp",
        purpose: Purpose::Marketing,
        granted: true,
        source: Source::Staff,
        note: Some("asked in the shop"),
        actor: None,
    };
    db.record_consent(&change, t0()).await.unwrap();
    AudienceRule {
        matching: Match::All,
        conditions: vec![Condition {
            field: Field::Tag,
            op: Op::Is,
            id: tag,
        }],
        frozen: None,
    }
}

async fn the_pre_flight_counts_follow_consent_and_the_number_s_start(db: &Db) {
    let rule = priced_customers(db).await;
    let picked = [(1, ChannelKind::Whatsapp), (2, ChannelKind::Sms)];
    let mut groups = db
        .cost_groups(&rule, &picked, &Eligibility::default(), &[3, 2])
        .await
        .unwrap();
    groups.sort();
    // Without a consent rule WhatsApp reaches all three Germans; SMS the two Americans.
    assert_eq!(groups, vec![(0, "+49".into(), 3), (1, "+1".into(), 2)]);
    // Marketing needs an opt-in on WhatsApp: the two Germans without one go by SMS.
    let e = Eligibility {
        purpose: Purpose::Marketing,
        consent_kinds: vec![ChannelKind::Whatsapp],
        cap: None,
    };
    let mut groups = db.cost_groups(&rule, &picked, &e, &[3, 2]).await.unwrap();
    groups.sort();
    assert_eq!(
        groups,
        vec![
            (0, "+49".into(), 1),
            (1, "+1".into(), 2),
            (1, "+4".into(), 2)
        ]
    );
    // What quiet hours would hold is worked out per (zone, first matching prefix).
    let mut zones = db
        .zone_prefix_counts(&rule, &picked, &e, &["+4917".into(), "+49".into()])
        .await
        .unwrap();
    zones.sort();
    assert_eq!(zones, vec![("UTC".into(), -1, 2), ("UTC".into(), 0, 3)]);
}

async fn an_approval_is_submitted_decided_voided_by_an_edit_and_undone(db: &Db) {
    let v = Compose {
        name: "Big one".into(),
        body: "Hello".into(),
        ..Default::default()
    }
    .validate(Intent::Draft, t0())
    .unwrap();
    let admin = db
        .create_user(
            "approver@herald.test",
            "A",
            herald::model::Role::Admin,
            "x",
            t0(),
        )
        .await
        .unwrap();
    let (id, _) = db
        .create_broadcast(&v, UserId(admin), "approval-0001", t0())
        .await
        .unwrap();
    assert_eq!(db.approval_of(id).await.unwrap(), None);
    let at = t0() + chrono::Duration::days(1);
    assert!(
        db.submit_for_approval(id, Some(at), "too many", UserId(admin), t0())
            .await
            .unwrap()
    );
    let a = db.approval_of(id).await.unwrap().unwrap();
    assert_eq!(
        (a.approval.as_str(), a.note.as_deref()),
        ("pending", Some("too many"))
    );
    assert_eq!(db.broadcast(id).await.unwrap().scheduled_at, Some(at));
    assert!(
        db.decide_approval(id, true, "fine", "h1", UserId(admin), t0())
            .await
            .unwrap()
    );
    let a = db.approval_of(id).await.unwrap().unwrap();
    assert_eq!(a.approval, "approved");
    assert_eq!(a.decided_by.as_deref(), Some("A"));
    assert_eq!(a.hash.as_deref(), Some("h1"));
    // The same content: kept. Changed content: voided, audited.
    assert!(
        !db.void_changed_approval(id, "h1", UserId(admin), t0())
            .await
            .unwrap()
    );
    assert!(
        db.void_changed_approval(id, "h2", UserId(admin), t0())
            .await
            .unwrap()
    );
    assert_eq!(db.approval_of(id).await.unwrap(), None);
    assert_eq!(
        db.inspect().audit_count("approval-void", id).await.unwrap(),
        1
    );
    // Undo works on a scheduled broadcast only, once.
    assert!(!db.undo_send(id, UserId(admin), t0()).await.unwrap());
    let sandbox = db
        .insert_channel(
            &herald::server::db::NewChannel {
                kind: "sandbox".into(),
                name: "Sandbox".into(),
                config_json: "{}".into(),
                rate_per_sec: 10,
            },
            t0(),
        )
        .await
        .unwrap();
    let scheduled = Compose {
        name: "Big one".into(),
        body: "Hello".into(),
        channel_ids: vec![sandbox],
        ..Default::default()
    }
    .validate(Intent::SendNow, t0())
    .unwrap();
    db.update_broadcast(
        herald::model::BroadcastId(id),
        &scheduled,
        UserId(admin),
        t0(),
    )
    .await
    .unwrap();
    assert_eq!(db.broadcast(id).await.unwrap().status, Lifecycle::Scheduled);
    assert!(db.undo_send(id, UserId(admin), t0()).await.unwrap());
    assert_eq!(db.broadcast(id).await.unwrap().status, Lifecycle::Draft);
    assert!(!db.undo_send(id, UserId(admin), t0()).await.unwrap());
}

on_both_backends!(
    the_pre_flight_counts_follow_consent_and_the_number_s_start,
    an_approval_is_submitted_decided_voided_by_an_edit_and_undone,
);
