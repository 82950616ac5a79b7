//! Staff accounts in storage, on SQLite and PostgreSQL: the last active admin stays one
//! (also when two admins demote each other at once), deactivation ends sessions and keeps
//! history, and password tokens work once, until they expire.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use herald::model::{Role, UserId};
use herald::server::accounts::auth::token_hash;
use herald::server::db::{AuditEntry, Db, StaffError, TokenPurpose};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 6, 1, 9, 0, 0).unwrap()
}

fn entry(action: &'static str) -> AuditEntry {
    AuditEntry::new(t0(), None, action, "staff_user", None)
}

async fn account(db: &Db, email: &str, role: Role) -> i64 {
    db.create_staff(email, email, role, "hash", &entry("create_account"))
        .await
        .unwrap()
}

async fn session(db: &Db, user: i64, token: &str) {
    db.create_session(
        &token_hash(token),
        UserId(user),
        t0() + TimeDelta::hours(12),
        &entry("sign_in"),
    )
    .await
    .unwrap();
}

async fn the_last_active_admin_is_kept(db: &Db) {
    let a = account(db, "a@example.com", Role::Admin).await;
    let s = account(db, "s@example.com", Role::Staff).await;
    assert!(matches!(
        db.set_staff_role(a, Role::Manager, &entry("change_role"))
            .await,
        Err(StaffError::LastAdmin)
    ));
    assert!(matches!(
        db.set_staff_active(a, false, &entry("deactivate")).await,
        Err(StaffError::LastAdmin)
    ));
    // A second admin makes the first one free to go.
    db.set_staff_role(s, Role::Admin, &entry("change_role"))
        .await
        .unwrap();
    db.set_staff_active(a, false, &entry("deactivate"))
        .await
        .unwrap();
    assert_eq!(db.count_active_admins().await.unwrap(), 1);
    assert!(matches!(
        db.set_staff_role(s, Role::Staff, &entry("change_role"))
            .await,
        Err(StaffError::LastAdmin)
    ));
    assert!(matches!(
        db.set_staff_role(9_999, Role::Staff, &entry("change_role"))
            .await,
        Err(StaffError::NotFound)
    ));
    assert!(matches!(
        db.create_staff(
            "S@Example.com ",
            "x",
            Role::Staff,
            "",
            &entry("create_account")
        )
        .await,
        Err(StaffError::Exists)
    ));
}

async fn two_admins_demoting_each_other_at_once_leave_one(db: &Db) {
    for round in 0..5 {
        let a = account(db, &format!("a{round}@example.com"), Role::Admin).await;
        let b = account(db, &format!("b{round}@example.com"), Role::Admin).await;
        let e = entry("change_role");
        let (x, y) = tokio::join!(
            db.set_staff_role(a, Role::Staff, &e),
            db.set_staff_role(b, Role::Staff, &e),
        );
        assert!(
            x.is_ok() != y.is_ok(),
            "round {round}: exactly one demotion goes through ({x:?}, {y:?})"
        );
        assert_eq!(db.count_active_admins().await.unwrap(), 1);
        // Back to no admins for the next round.
        let left = if x.is_ok() { b } else { a };
        db.inspect()
            .execute(&format!(
                "UPDATE staff_users SET role = 'staff' WHERE id = {left}"
            ))
            .await
            .unwrap();
    }
}

async fn deactivating_ends_sessions_and_keeps_the_account(db: &Db) {
    let _admin = account(db, "admin@example.com", Role::Admin).await;
    let s = account(db, "s@example.com", Role::Staff).await;
    session(db, s, "t1").await;
    session(db, s, "t2").await;
    let now = t0() + TimeDelta::minutes(1);
    assert!(
        db.session_user(&token_hash("t1"), now, TimeDelta::days(1))
            .await
            .unwrap()
            .is_some()
    );
    db.set_staff_active(s, false, &entry("deactivate"))
        .await
        .unwrap();
    for t in ["t1", "t2"] {
        assert!(
            db.session_user(&token_hash(t), now, TimeDelta::days(1))
                .await
                .unwrap()
                .is_none(),
            "{t} ended"
        );
    }
    let listed = db.list_staff().await.unwrap();
    let row = listed
        .iter()
        .find(|r| r.id == s)
        .expect("the account stays");
    assert!(row.deactivated_at.is_some());
    db.set_staff_active(s, true, &entry("reactivate"))
        .await
        .unwrap();
    let listed = db.list_staff().await.unwrap();
    assert!(
        listed
            .iter()
            .find(|r| r.id == s)
            .unwrap()
            .deactivated_at
            .is_none()
    );
    assert!(
        db.session_user(&token_hash("t1"), now, TimeDelta::days(1))
            .await
            .unwrap()
            .is_none(),
        "sessions stay ended"
    );
}

async fn a_password_token_works_once_until_it_expires(db: &Db) {
    let s = account(db, "s@example.com", Role::Staff).await;
    session(db, s, "old-session").await;
    let expires = t0() + TimeDelta::hours(24);
    db.create_password_token(
        &token_hash("first"),
        s,
        TokenPurpose::Reset,
        expires,
        &entry("reset_password"),
    )
    .await
    .unwrap();
    db.create_password_token(
        &token_hash("second"),
        s,
        TokenPurpose::Reset,
        expires,
        &entry("reset_password"),
    )
    .await
    .unwrap();
    let at = |m: i64| {
        AuditEntry::new(
            t0() + TimeDelta::minutes(m),
            None,
            "set_password",
            "staff_user",
            None,
        )
    };
    assert_eq!(
        db.use_password_token(&token_hash("first"), "new-hash", &at(1))
            .await
            .unwrap(),
        None,
        "a newer token replaces the older"
    );
    assert!(
        db.password_token_user(&token_hash("second"), t0())
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        db.use_password_token(&token_hash("second"), "new-hash", &at(2))
            .await
            .unwrap(),
        Some(s)
    );
    assert_eq!(
        db.use_password_token(&token_hash("second"), "other", &at(3))
            .await
            .unwrap(),
        None,
        "once"
    );
    assert!(
        db.session_user(
            &token_hash("old-session"),
            t0() + TimeDelta::minutes(4),
            TimeDelta::days(1)
        )
        .await
        .unwrap()
        .is_none(),
        "a new password ends the old sessions"
    );
    let u = db.user_by_email("s@example.com").await.unwrap().unwrap();
    assert_eq!(u.password_hash, "new-hash");
    db.create_password_token(
        &token_hash("late"),
        s,
        TokenPurpose::Invite,
        t0() + TimeDelta::hours(1),
        &entry("invite"),
    )
    .await
    .unwrap();
    let late = AuditEntry::new(
        t0() + TimeDelta::hours(2),
        None,
        "set_password",
        "staff_user",
        None,
    );
    assert_eq!(
        db.use_password_token(&token_hash("late"), "x", &late)
            .await
            .unwrap(),
        None,
        "expired"
    );
}

on_both_backends!(
    the_last_active_admin_is_kept,
    two_admins_demoting_each_other_at_once_leave_one,
    deactivating_ends_sessions_and_keeps_the_account,
    a_password_token_works_once_until_it_expires,
    the_audit_log_refuses_changes_and_removals,
);

async fn the_audit_log_refuses_changes_and_removals(db: &Db) {
    db.audit(&entry("sign_in")).await.unwrap();
    for sql in [
        "UPDATE audit_log SET detail = 'rewritten'",
        "DELETE FROM audit_log",
    ] {
        let e = db.inspect().execute(sql).await.unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    assert_eq!(
        db.inspect().audit_entries("sign_in").await.unwrap().len(),
        1
    );
}
