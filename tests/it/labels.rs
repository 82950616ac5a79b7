//! Tags and robot groups: create, rename, delete, and the refusal while a broadcast uses one.

use chrono::Utc;
use herald::server::db::{AuditEntry, Db, LabelError, LabelKind, NewBroadcast, NewCustomer};

/// The audit entry every label change takes (written in the change's transaction).
fn audit() -> AuditEntry {
    AuditEntry::new(Utc::now(), None, "label", "tag", None).detail("test")
}

fn broadcast(name: &str, status: &str, audience: String) -> NewBroadcast {
    NewBroadcast {
        name: name.into(),
        body: "hi".into(),
        status: herald::model::Lifecycle::parse(status).expect("a stored status"),
        paused: false,
        audience_json: audience,
        channel_ids_json: "[]".into(),
        scheduled_at: Some(Utc::now()),
        started_at: None,
        finished_at: None,
        created_at: Utc::now(),
        created_by: None,
    }
}

async fn labels_are_created_renamed_and_deleted_unless_in_use(db: &Db) {
    for kind in [LabelKind::Tag, LabelKind::RobotGroup] {
        let id = db.create_label(kind, "Spring", &audit()).await.unwrap();
        assert!(matches!(
            db.create_label(kind, "Spring", &audit()).await,
            Err(LabelError::Exists)
        ));
        // The audit entry is written in the change's transaction: the refused copy left none.
        if kind == LabelKind::Tag {
            let trail = db.inspect().audit_trail("tag", id).await.unwrap();
            assert_eq!(trail.len(), 1, "{trail:?}");
            assert_eq!(trail[0].0, "label");
        }
        db.rename_label(kind, id, "Spring 2027", &audit())
            .await
            .unwrap();
        let other = db.create_label(kind, "Other", &audit()).await.unwrap();
        assert!(matches!(
            db.rename_label(kind, other, "Spring 2027", &audit()).await,
            Err(LabelError::Exists)
        ));
        assert!(matches!(
            db.rename_label(kind, 999_999, "x", &audit()).await,
            Err(LabelError::NotFound)
        ));
        let names: Vec<String> = db
            .labels(kind)
            .await
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert_eq!(names, vec!["Other", "Spring 2027"]);

        // A scheduled broadcast's audience names it: refused, with the broadcast's name.
        let field = if kind == LabelKind::Tag {
            "tag"
        } else {
            "robot_group"
        };
        let rule = format!(
            r#"{{"match":"all","conditions":[{{"field":"{field}","op":"is","id":{id}}}]}}"#
        );
        db.inspect()
            .insert_broadcast(&broadcast(
                &format!("Spring launch {field}"),
                "scheduled",
                rule,
            ))
            .await
            .unwrap();
        match db.delete_label(kind, id, &audit()).await {
            Err(LabelError::InUse(name)) => assert_eq!(name, format!("Spring launch {field}")),
            other => panic!("expected InUse, got {other:?}"),
        }
        assert_eq!(db.labels(kind).await.unwrap().len(), 2, "nothing deleted");
        // A finished broadcast naming a label does not keep it.
        let rule = format!(
            r#"{{"match":"any","conditions":[{{"field":"{field}","op":"is_not","id":{other}}}]}}"#
        );
        db.inspect()
            .insert_broadcast(&broadcast("Old newsletter", "sent", rule))
            .await
            .unwrap();
        db.delete_label(kind, other, &audit()).await.unwrap();
        assert!(matches!(
            db.delete_label(kind, other, &audit()).await,
            Err(LabelError::NotFound)
        ));
        assert_eq!(
            db.labels(kind).await.unwrap().len(),
            1,
            "the one in use stays"
        );
    }
}

/// Audiences name labels by id: once deleted, a label's id names nothing else (SQLite would
/// hand the largest rowid out again without AUTOINCREMENT, migration 0028).
async fn a_deleted_label_s_id_is_never_handed_out_again(db: &Db) {
    for kind in [LabelKind::Tag, LabelKind::RobotGroup] {
        let old = db.create_label(kind, "Old", &audit()).await.unwrap();
        db.delete_label(kind, old, &audit()).await.unwrap();
        let new = db.create_label(kind, "New", &audit()).await.unwrap();
        assert!(new > old, "{kind:?}: the id {old} was handed out again");
    }
}

async fn deleting_a_tag_removes_it_from_customers(db: &Db) {
    let tag = db
        .create_label(LabelKind::Tag, "Temp", &audit())
        .await
        .unwrap();
    db.insert_customers_bulk(
        &[NewCustomer {
            name: "Ann".into(),
            phone: Some("+15550000001".into()),
            time_zone: "UTC".into(),
            tag_ids: vec![tag],
            ..Default::default()
        }],
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(
        db.labels(LabelKind::Tag).await.unwrap()[0].customers,
        1,
        "one customer carries it"
    );
    db.delete_label(LabelKind::Tag, tag, &audit())
        .await
        .unwrap();
    assert_eq!(
        db.inspect().count_customers_tagged("Temp").await.unwrap(),
        0
    );
    assert_eq!(db.count_customers().await.unwrap(), 1, "the customer stays");
}

on_both_backends!(
    labels_are_created_renamed_and_deleted_unless_in_use,
    deleting_a_tag_removes_it_from_customers,
    a_deleted_label_s_id_is_never_handed_out_again,
);
