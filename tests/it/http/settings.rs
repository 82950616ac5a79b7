//! The workspace's Settings page and the wizard's timing, through the router: only admins read
//! or change the rules, every change is audited with what changed, a refused save comes back
//! with what was typed; a local-time broadcast is stored with its wall-clock time and its first
//! wave, and only an admin's form can let a broadcast through quiet hours.

use super::*;
use chrono::TimeZone;
use herald::model::Role;

fn encode(s: &str) -> String {
    herald::model::list_query::encode_component(s)
}

#[tokio::test]
async fn only_admins_change_the_rules_and_every_change_is_audited() {
    let app = TestApp::new().await;
    let staff = app.sign_in(Role::Staff).await;
    let manager = app.sign_in(Role::Manager).await;
    let admin = app.sign_in(Role::Admin).await;
    let form = format!(
        "time_zone=Europe%2FBerlin&quiet=on&quiet_from=22%3A00&quiet_to=07%3A30&prefixes={}",
        encode("+1 21:00-08:00\n+44 none")
    );
    for cookie in [&staff, &manager] {
        let r = app.post_form("/settings", &form, Some(cookie)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        let page = app.get("/settings", Some(cookie)).await.body;
        assert!(!page.contains("Save settings"), "{page}");
    }
    let r = app.post_form("/settings", &form, Some(&admin)).await;
    let to = assert_redirect_to(&r, "/settings?notice=");
    assert!(to.contains("Europe%2FBerlin"), "{to}");
    let (rules, updated) = app.t.db.workspace_rules().await.unwrap();
    assert_eq!(rules.time_zone, "Europe/Berlin");
    assert_eq!(rules.quiet.unwrap().label(), "22:00–07:30");
    assert_eq!(rules.quiet_by_prefix.len(), 2);
    assert!(updated.is_some());
    let audit = app.t.db.inspect().audit_entries("settings").await.unwrap();
    let last = audit.last().unwrap();
    assert!(last.0.is_some(), "the admin is named");
    assert!(
        last.1.contains("quiet hours off → 22:00–07:30"),
        "{audit:?}"
    );
    let page = app.get("/settings", Some(&admin)).await.body;
    assert!(
        page.contains("value=\"22:00\"") && page.contains("+44 none"),
        "{page}"
    );

    // The same form again changes nothing and audits nothing.
    app.post_form("/settings", &form, Some(&admin)).await;
    assert_eq!(
        app.t
            .db
            .inspect()
            .audit_entries("settings")
            .await
            .unwrap()
            .len(),
        audit.len()
    );

    // A bad zone and a bad line: refused, nothing stored, what was typed comes back.
    let bad = format!(
        "time_zone=Mars%2FOlympus&quiet=on&quiet_from=22%3A00&quiet_to=07%3A30&prefixes={}",
        encode("+1 late")
    );
    let r = app.post_form("/settings", &bad, Some(&admin)).await;
    let to = assert_redirect_to(&r, "/settings?typed=1");
    let page = app.get(&to, Some(&admin)).await.body;
    assert!(
        page.contains("Mars/Olympus") && page.contains("+1 late"),
        "{page}"
    );
    assert!(
        page.contains("not a time zone") && page.contains("Line 1"),
        "{page}"
    );
    assert_eq!(app.t.db.workspace_rules().await.unwrap().0, rules);
}

#[tokio::test]
async fn a_local_time_broadcast_keeps_its_wall_clock_and_goes_first_where_it_is_earliest() {
    let app = TestApp::new().await;
    let staff = app.sign_in(Role::Staff).await;
    let admin = app.sign_in(Role::Admin).await;
    let step1 = "step=1&key=k0123456789abcdefLOCAL&name=Morning&body=Hi&timing_shown=1\
                 &send_at=2099-06-01T10%3A00&send_mode=local&expire_hours=48&go=next";
    let r = app
        .post_form("/broadcasts/wizard", step1, Some(&staff))
        .await;
    let to = assert_redirect_to(&r, "/broadcasts/");
    let id: i64 = to.split('/').nth(2).unwrap().parse().unwrap();
    let (c, _, _) = app.t.db.broadcast_for_edit(id).await.unwrap();
    let local = chrono::NaiveDateTime::parse_from_str("2099-06-01T10:00", "%Y-%m-%dT%H:%M");
    assert_eq!(c.timing.local_at, Some(local.unwrap()));
    assert_eq!(c.timing.expire_hours, Some(48));
    // The demo's customers live as far east as Sydney (UTC+10 in June): 00:00 UTC.
    let first = chrono::Utc.with_ymd_and_hms(2099, 6, 1, 0, 0, 0).unwrap();
    assert_eq!(c.scheduled_at, Some(first));
    let page = app
        .get(&format!("/broadcasts/{id}/edit?step=1"), Some(&staff))
        .await
        .body;
    assert!(page.contains("value=\"2099-06-01T10:00\""), "{page}");
    assert!(!page.contains("id=\"quiet_exempt\""), "staff cannot exempt");

    // Staff cannot let it through quiet hours; an admin can, with a reason, audited.
    let exempt = format!("step=1&id={id}&timing_shown=1&quiet_exempt=Outage&go=stay");
    let r = app
        .post_form("/broadcasts/wizard", &exempt, Some(&staff))
        .await;
    assert!(location(&r).contains("Only an admin"), "{}", location(&r));
    assert_eq!(
        app.t
            .db
            .broadcast_for_edit(id)
            .await
            .unwrap()
            .0
            .timing
            .quiet_exempt,
        None
    );
    app.post_form("/broadcasts/wizard", &exempt, Some(&admin))
        .await;
    let c = app.t.db.broadcast_for_edit(id).await.unwrap().0;
    assert_eq!(c.timing.quiet_exempt.as_deref(), Some("Outage"));
    assert_eq!(c.timing.local_at, Some(local.unwrap()), "the time stays");
    assert_eq!(
        app.t
            .db
            .inspect()
            .audit_count("quiet-hours-exempt", id)
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn staff_record_a_customers_consent_with_a_note_and_the_page_shows_it() {
    let app = TestApp::new().await;
    let staff = app.sign_in(Role::Staff).await;
    let id = app
        .t
        .db
        .inspect()
        // One the demo's data gave no consent (six in seven opted in "by import").
        .numbers("SELECT MIN(id) FROM customers WHERE id % 7 = 0")
        .await
        .unwrap()[0];
    let path = format!("/customers/{id}/consent");
    let r = app
        .post_form(
            &path,
            "kind=sms&purpose=marketing&granted=yes&note=",
            Some(&staff),
        )
        .await;
    assert!(
        location(&r).contains("Say how you know"),
        "{}",
        location(&r)
    );
    assert!(
        app.t.db.consents_of(id).await.unwrap().is_empty(),
        "nothing recorded"
    );
    let form = "kind=sms&purpose=marketing&granted=yes&note=Asked%20on%20the%20phone";
    let r = app.post_form(&path, form, Some(&staff)).await;
    assert_redirect_to(&r, &format!("/customers/{id}?notice="));
    let page = app
        .get(&format!("/customers/{id}"), Some(&staff))
        .await
        .body;
    assert!(
        page.contains("opted in") && page.contains("a staff member: Asked on the phone"),
        "{page}"
    );
    let audit = app.t.db.inspect().audit_entries("consent").await.unwrap();
    assert_eq!(audit.len(), 1);
    assert!(
        audit[0].0.is_some() && audit[0].1.contains("sms marketing given via staff"),
        "{audit:?}"
    );
    let form = "kind=sms&purpose=marketing&granted=no&note=Asked%20to%20stop%20by%20email";
    app.post_form(&path, form, Some(&staff)).await;
    let now = app.t.db.consents_of(id).await.unwrap();
    assert_eq!(now.len(), 1, "the latest word, one per kind and purpose");
    assert!(!now[0].2, "withdrawn");
}
