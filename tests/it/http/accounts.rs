//! Accounts through the router: invitations and password links, roles, deactivation, a
//! person's own password, and the limits on signing in.

use super::*;

const STRONG: &str = "violet kettle harbour 93";

/// A sign-in attempt from a script: the reply as it comes.
async fn try_sign_in(app: &TestApp, email: &str, password: &str) -> Reply {
    let form = format!("email={}&password={}", encode(email), encode(password));
    send(&app.router, post("/api/login", &form, None, false)).await
}

fn encode(s: &str) -> String {
    herald::model::list_query::encode_component(s)
}

/// The password link an admin's form post produced (shown once on the staff page).
async fn link_after(app: &TestApp, admin: &str, r: &Reply) -> String {
    let loc = assert_redirect_to(r, "/staff?flash=");
    let flash = loc.trim_start_matches("/staff?flash=");
    let page = send(
        &app.router,
        post(
            "/api/staff/page",
            &format!("flash={flash}"),
            Some(admin),
            false,
        ),
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let v: serde_json::Value = serde_json::from_str(&page.body).unwrap();
    let link = v["flash"][1]
        .as_str()
        .expect("the link is shown")
        .to_string();
    assert!(
        link.starts_with("http://herald.test/password?token="),
        "{link}"
    );
    assert!(!loc.contains("token"), "the link never travels in a URL");
    let again = send(
        &app.router,
        post(
            "/api/staff/page",
            &format!("flash={flash}"),
            Some(admin),
            false,
        ),
    )
    .await;
    assert!(
        again.body.contains("\"flash\":null"),
        "shown once: {}",
        again.body
    );
    link.trim_start_matches("http://herald.test").to_string()
}

#[tokio::test]
async fn an_invitation_link_sets_a_password_once() {
    let app = TestApp::new().await;
    let admin = app.sign_in(Role::Admin).await;
    let staff = app.sign_in(Role::Staff).await;
    let invite = "action=invite&name=Nia+Okafor&email=Nia%40Herald.test&role=staff";
    let r = app.post_form("/staff", invite, Some(&staff)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "staff cannot invite");
    let page = app.get("/staff", Some(&staff)).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("not allowed") && !page.body.contains("admin@herald.test"));
    let page = app.get("/staff", Some(&admin)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("staff@herald.test") && page.body.contains("Invite someone"));
    let r = app.post_form("/staff", invite, Some(&admin)).await;
    let link = link_after(&app, &admin, &r).await;
    let token = link.trim_start_matches("/password?token=").to_string();

    // Invited, no password yet: signing in fails like any wrong password.
    let r = try_sign_in(&app, "nia@herald.test", "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    let page = app.get(&link, None).await;
    assert_eq!(page.status, StatusCode::OK, "the link works signed out");
    assert!(page.body.contains("nia@herald.test"), "{}", page.body);
    let weak = format!("token={token}&new=password1234&again=password1234");
    let r = app.post_form("/password", &weak, None).await;
    assert!(
        location(&r).contains("too easy to guess"),
        "{}",
        location(&r)
    );
    let differ = format!("token={token}&new={}&again=other", encode(STRONG));
    assert!(location(&app.post_form("/password", &differ, None).await).contains("differ"));
    let good = format!("token={token}&new={0}&again={0}", encode(STRONG));
    let r = app.post_form("/password", &good, None).await;
    assert_redirect_to(&r, "/login?notice=");
    assert_eq!(
        try_sign_in(&app, "nia@herald.test", STRONG).await.status,
        StatusCode::OK
    );

    let r = app.post_form("/password", &good, None).await;
    assert!(
        location(&r).contains("used or has expired"),
        "once: {}",
        location(&r)
    );
    let used = app.get(&link, None).await;
    assert!(used.body.contains("This link does not work"));
    let audit = app
        .state
        .db
        .inspect()
        .audit_entries("invite")
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
    app.t.cleanup().await;
}

#[tokio::test]
async fn roles_change_and_deactivation_signs_out_at_once_but_the_last_admin_stays() {
    let app = TestApp::new().await;
    let admin = app.sign_in(Role::Admin).await;
    let staff = app.sign_in(Role::Staff).await;
    let ids = app.state.db.list_staff().await.unwrap();
    let id_of = |email: &str| ids.iter().find(|s| s.email == email).unwrap().id;
    let (admin_id, staff_id) = (id_of("admin@herald.test"), id_of("staff@herald.test"));

    let r = app
        .post_form(
            "/staff",
            &format!("action=role&id={admin_id}&role=manager"),
            Some(&admin),
        )
        .await;
    assert!(
        location(&r).contains("last active admin"),
        "{}",
        location(&r)
    );
    let r = app
        .post_form(
            "/staff",
            &format!("action=deactivate&id={admin_id}&confirmed=yes"),
            Some(&admin),
        )
        .await;
    assert!(
        location(&r).contains("your own account"),
        "{}",
        location(&r)
    );

    let r = app
        .post_form(
            "/staff",
            &format!("action=role&id={staff_id}&role=manager"),
            Some(&admin),
        )
        .await;
    assert_redirect_to(&r, "/staff?notice=");
    let me = send(&app.router, post("/api/me", "", Some(&staff), false)).await;
    assert!(
        me.body.contains("\"manager\""),
        "the new role holds at once: {}",
        me.body
    );

    // Unanswered, deactivating only asks.
    let r = app
        .post_form(
            "/staff",
            &format!("action=deactivate&id={staff_id}"),
            Some(&admin),
        )
        .await;
    assert_redirect_to(&r, &format!("/staff?confirm={staff_id}"));
    let me = send(&app.router, post("/api/me", "", Some(&staff), false)).await;
    assert!(
        me.body.contains("\"manager\""),
        "still signed in: {}",
        me.body
    );
    let r = app
        .post_form(
            "/staff",
            &format!("action=deactivate&id={staff_id}&confirmed=yes"),
            Some(&admin),
        )
        .await;
    assert_redirect_to(&r, "/staff?notice=");
    let r = app.get("/", Some(&staff)).await;
    assert_redirect_to(&r, "/login");
    let r = try_sign_in(&app, "staff@herald.test", seed::DEMO_PASSWORD).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.body.contains("Wrong email or password"),
        "no hint it exists: {}",
        r.body
    );

    let r = app
        .post_form(
            "/staff",
            &format!("action=reactivate&id={staff_id}"),
            Some(&admin),
        )
        .await;
    assert_redirect_to(&r, "/staff?notice=");
    assert_eq!(
        try_sign_in(&app, "staff@herald.test", seed::DEMO_PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
    let listed = app.state.db.list_staff().await.unwrap();
    assert_eq!(listed.len(), ids.len(), "nobody was removed");
    app.t.cleanup().await;
}

#[tokio::test]
async fn a_reset_link_replaces_the_password_and_ends_the_old_sessions() {
    let app = TestApp::new().await;
    let admin = app.sign_in(Role::Admin).await;
    let staff = app.sign_in(Role::Staff).await;
    let staff_id = app
        .state
        .db
        .user_by_email("staff@herald.test")
        .await
        .unwrap()
        .unwrap()
        .id;
    let r = app
        .post_form(
            "/staff",
            &format!("action=reset&id={staff_id}"),
            Some(&admin),
        )
        .await;
    let link = link_after(&app, &admin, &r).await;
    assert_eq!(
        app.get("/", Some(&staff)).await.status,
        StatusCode::OK,
        "until it is used"
    );
    let token = link.trim_start_matches("/password?token=");
    let r = app
        .post_form(
            "/password",
            &format!("token={token}&new={0}&again={0}", encode(STRONG)),
            None,
        )
        .await;
    assert_redirect_to(&r, "/login?notice=");
    assert_redirect_to(&app.get("/", Some(&staff)).await, "/login");
    assert_eq!(
        try_sign_in(&app, "staff@herald.test", seed::DEMO_PASSWORD)
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        try_sign_in(&app, "staff@herald.test", STRONG).await.status,
        StatusCode::OK
    );
    app.t.cleanup().await;
}

#[tokio::test]
async fn everyone_changes_their_own_password_and_their_other_sessions_end() {
    let app = TestApp::new().await;
    let here = app.sign_in(Role::Manager).await;
    let elsewhere = app.sign_in(Role::Manager).await;
    let change = |current: &str, new: &str, again: &str| {
        format!(
            "current={}&new={}&again={}",
            encode(current),
            encode(new),
            encode(again)
        )
    };
    let r = app
        .post_form(
            "/account/password",
            &change("wrong", STRONG, STRONG),
            Some(&here),
        )
        .await;
    assert!(location(&r).contains("current password is not right"));
    let r = app
        .post_form(
            "/account/password",
            &change(seed::DEMO_PASSWORD, "short", "short"),
            Some(&here),
        )
        .await;
    assert!(location(&r).contains("at least 12"));
    let r = app
        .post_form(
            "/account/password",
            &change(seed::DEMO_PASSWORD, STRONG, STRONG),
            Some(&here),
        )
        .await;
    assert_redirect_to(&r, "/account?notice=");
    assert_eq!(
        app.get("/", Some(&here)).await.status,
        StatusCode::OK,
        "this session stays"
    );
    assert_redirect_to(&app.get("/", Some(&elsewhere)).await, "/login");
    assert_eq!(
        try_sign_in(&app, "manager@herald.test", STRONG)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.post_form("/account/password", "current=x&new=y&again=y", None)
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    app.t.cleanup().await;
}

#[tokio::test]
async fn the_eleventh_attempt_in_a_minute_is_refused_and_failures_are_audited() {
    let app = TestApp::new().await;
    let unknown = try_sign_in(&app, "nobody@herald.test", "wrong password").await;
    let wrong = try_sign_in(&app, "admin@herald.test", "wrong password").await;
    assert_eq!(unknown.status, wrong.status);
    assert_eq!(
        unknown.body, wrong.body,
        "an unknown account reads the same"
    );
    for _ in 0..9 {
        let r = try_sign_in(&app, "admin@herald.test", "wrong password").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
    let r = try_sign_in(&app, "admin@herald.test", seed::DEMO_PASSWORD).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.body.contains("Try again in"), "{}", r.body);
    assert!(!r.headers.contains_key(header::SET_COOKIE));
    // Other accounts are not held up.
    assert_eq!(
        try_sign_in(&app, "staff@herald.test", seed::DEMO_PASSWORD)
            .await
            .status,
        StatusCode::OK
    );
    let failed = app
        .state
        .db
        .inspect()
        .audit_entries("sign_in_failed")
        .await
        .unwrap();
    assert_eq!(failed.len(), 11);
    assert!(failed[0].1.contains("nobody@herald.test"));
    assert_eq!(
        app.state
            .db
            .inspect()
            .audit_entries("sign_in")
            .await
            .unwrap()
            .len(),
        1
    );
    app.t.cleanup().await;
}
