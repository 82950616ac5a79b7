//! Uploads nothing uses are swept after the grace period (attachments no broadcast carries,
//! files left without a record, imports never started), and admins see the space taken.

use super::*;
use chrono::{TimeDelta, Utc};
use herald::server::storage::{self, GRACE};

#[tokio::test]
async fn the_sweep_removes_old_unused_uploads_and_keeps_the_rest() {
    let app = TestApp::new().await;
    let state = &app.state;
    let db = &state.db;
    let dir = state.config.data_dir.join("attachments");
    std::fs::create_dir_all(&dir).unwrap();
    let author = db
        .user_by_email("staff@herald.test")
        .await
        .unwrap()
        .unwrap()
        .id;
    let now = Utc::now();
    let old = now - GRACE - TimeDelta::hours(1);
    let add = |id: &'static str, at| async move {
        std::fs::write(dir_of(state).join(id), b"%PDF-1.7\n").unwrap();
        db.insert_attachment(
            id,
            "menu.pdf",
            "application/pdf",
            9,
            herald::model::UserId(author),
            at,
        )
        .await
        .unwrap();
    };
    let (unused, carried, recent) = (
        "a".repeat(32).leak() as &'static str,
        "b".repeat(32).leak() as &'static str,
        "c".repeat(32).leak() as &'static str,
    );
    add(unused, old).await;
    add(carried, old).await;
    add(recent, now - TimeDelta::hours(1)).await;
    db.inspect()
        .execute(&format!(
            "UPDATE broadcasts SET attachments = '[{{\"id\":\"{carried}\"}}]' WHERE id = (SELECT MIN(id) FROM broadcasts)"
        ))
        .await
        .unwrap();
    // A file whose upload broke off before its record, two days old.
    let orphan = "d".repeat(32);
    let file = std::fs::File::create(dir.join(&orphan)).unwrap();
    file.set_modified(std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400))
        .unwrap();

    let swept = storage::sweep(state, now).await.unwrap();
    assert_eq!(swept.attachments, 2, "{swept:?}");
    assert!(!dir.join(unused).exists() && !dir.join(&orphan).exists());
    assert!(dir.join(carried).exists() && dir.join(recent).exists());
    assert!(db.attachment(unused).await.unwrap().is_none());
    assert!(db.attachment(carried).await.unwrap().is_some());
    assert!(db.attachment(recent).await.unwrap().is_some());
    assert_eq!(storage::sweep(state, now).await.unwrap().attachments, 0);

    // Admins see the space taken; staff do not see the page.
    let admin = app.sign_in(Role::Admin).await;
    let page = app.get("/staff", Some(&admin)).await.body;
    assert!(
        page.contains("Storage") && page.contains("18 B in 2 files"),
        "{page}"
    );
    let staff = app.sign_in(Role::Staff).await;
    assert_eq!(
        app.get("/staff", Some(&staff)).await.status,
        StatusCode::FORBIDDEN
    );

    // An import uploaded and never started goes too (here with no grace at all).
    let csv = "name,phone\nNora Sweep,+44 20 7946 0199\n";
    let r = send(&app.router, upload(csv.as_bytes(), &staff, None)).await;
    let preview = location(&r);
    assert!(preview.starts_with("/customers/import/"), "{preview}");
    assert_eq!(state.imports.waiting().0, 1);
    assert_eq!(
        state.imports.sweep(std::time::Duration::ZERO),
        (1, csv.len() as u64)
    );
    assert_eq!(state.imports.waiting(), (0, 0));
    app.t.cleanup().await;
}

fn dir_of(state: &herald::server::AppState) -> std::path::PathBuf {
    state.config.data_dir.join("attachments")
}
