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
        link.starts_with("http://herald.test/password#token="),
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

/// Opens a password link as the page's script does; the cookie that keeps it open.
async fn open_link(app: &TestApp, link: &str) -> String {
    let r = app
        .post_form("/password/link", &format!("link={}", encode(link)), None)
        .await;
    assert_redirect_to(&r, "/password");
    let cookie = r.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_string()
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

    // Invited, no password yet: signing in fails like any wrong password.
    let r = try_sign_in(&app, "nia@herald.test", "").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);

    // The fragment never reaches the server: the page asks for the link (its script posts it).
    let page = app.get("/password", None).await;
    assert_eq!(page.status, StatusCode::OK, "the page works signed out");
    assert!(page.body.contains("Your link") && !page.body.contains("nia@herald.test"));
    let opened = open_link(&app, &link).await;
    let page = app.get("/password", Some(&opened)).await;
    assert!(page.body.contains("nia@herald.test"), "{}", page.body);
    let weak = "new=password1234&again=password1234";
    let r = app.post_form("/password", weak, Some(&opened)).await;
    assert!(
        location(&r).contains("too easy to guess"),
        "{}",
        location(&r)
    );
    assert!(!location(&r).contains("token"), "{}", location(&r));
    let differ = format!("new={}&again=other", encode(STRONG));
    assert!(location(&app.post_form("/password", &differ, Some(&opened)).await).contains("differ"));
    let good = format!("new={0}&again={0}", encode(STRONG));
    let r = app.post_form("/password", &good, Some(&opened)).await;
    assert_redirect_to(&r, "/login?notice=");
    let closed = r.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(closed.contains("Max-Age=0"), "{closed}");
    assert_eq!(
        try_sign_in(&app, "nia@herald.test", STRONG).await.status,
        StatusCode::OK
    );

    let r = app.post_form("/password", &good, Some(&opened)).await;
    assert!(
        location(&r).contains("used or has expired"),
        "once: {}",
        location(&r)
    );
    let form = format!("link={}", encode(&link));
    let used = app.post_form("/password/link", &form, None).await;
    assert!(
        location(&used).contains("used or has expired"),
        "{}",
        location(&used)
    );
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
    // Issuing the reset ends the sessions and the old password at once (whoever knows it).
    assert_redirect_to(&app.get("/", Some(&staff)).await, "/login");
    assert_eq!(
        try_sign_in(&app, "staff@herald.test", seed::DEMO_PASSWORD)
            .await
            .status,
        StatusCode::BAD_REQUEST,
        "the old password no longer works"
    );
    let opened = open_link(&app, &link).await;
    let r = app
        .post_form(
            "/password",
            &format!("new={0}&again={0}", encode(STRONG)),
            Some(&opened),
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
    // One entry per account and window, and one when the limit is reached: a flood of wrong
    // passwords cannot grow the append-only log without bound.
    let failed = app
        .state
        .db
        .inspect()
        .audit_entries("sign_in_failed")
        .await
        .unwrap();
    assert_eq!(failed.len(), 3, "{failed:?}");
    assert!(failed[0].1.contains("nobody@herald.test"));
    assert!(
        failed[2].1.contains("refused until the window ends"),
        "{failed:?}"
    );
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

/// A sign-in from client address `from` (as the connection's peer).
async fn sign_in_from(app: &TestApp, from: &str, email: &str, password: &str) -> Reply {
    sign_in_at(&app.router, from, email, password).await
}

/// A sign-in through `router` (one instance) from client address `from`.
async fn sign_in_at(router: &Router, from: &str, email: &str, password: &str) -> Reply {
    let form = format!("email={}&password={}", encode(email), encode(password));
    let mut req = post("/api/login", &form, None, false);
    let peer: std::net::SocketAddr = format!("{from}:40000").parse().unwrap();
    req.extensions_mut()
        .insert(axum::extract::ConnectInfo(peer));
    send(router, req).await
}

/// Failures counted on one instance hold on another, whose clock runs 45 s ahead: the
/// counters live in the database, not in either process.
#[tokio::test]
async fn a_second_instance_with_a_clock_ahead_refuses_what_the_first_counted() {
    let app = TestApp::new().await;
    let ahead = Arc::new(herald::server::clock::SkewedClock {
        inner: Arc::new(SystemClock),
        offset: chrono::TimeDelta::seconds(45),
    });
    let other = app.another_instance(ahead);
    for _ in 0..10 {
        let r = sign_in_from(&app, "203.0.113.44", "admin@herald.test", "guess").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
    }
    let r = sign_in_at(
        &other,
        "203.0.113.44",
        "admin@herald.test",
        seed::DEMO_PASSWORD,
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    let r = sign_in_at(
        &other,
        "198.51.100.44",
        "admin@herald.test",
        seed::DEMO_PASSWORD,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "elsewhere the admin signs in");
    app.t.cleanup().await;
}

#[tokio::test]
async fn failing_in_someones_name_never_keeps_them_out_from_their_own_address() {
    let app = TestApp::new().await;
    for _ in 0..20 {
        sign_in_from(&app, "203.0.113.66", "admin@herald.test", "guess").await;
    }
    let attacker = sign_in_from(
        &app,
        "203.0.113.66",
        "admin@herald.test",
        seed::DEMO_PASSWORD,
    )
    .await;
    assert_eq!(
        attacker.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{}",
        attacker.body
    );
    // The admin, elsewhere: slowed by the account's failures, never refused.
    let started = std::time::Instant::now();
    let admin = sign_in_from(
        &app,
        "198.51.100.7",
        "admin@herald.test",
        seed::DEMO_PASSWORD,
    )
    .await;
    assert_eq!(admin.status, StatusCode::OK, "{}", admin.body);
    assert!(started.elapsed() < std::time::Duration::from_secs(12));
    // Other instances see the same counts: they live in the database.
    assert!(
        app.state
            .db
            .sign_in_failures(
                &herald::server::accounts::limits::failure_keys(
                    "admin@herald.test",
                    Some("203.0.113.66".parse().unwrap())
                ),
                chrono::Utc::now().timestamp(),
                60
            )
            .await
            .unwrap()
            .pair
            .failures
            >= 10
    );
    // One address trying many accounts is refused as a whole.
    for i in 0..30 {
        sign_in_from(&app, "192.0.2.9", &format!("user{i}@herald.test"), "guess").await;
    }
    let next = sign_in_from(&app, "192.0.2.9", "staff@herald.test", seed::DEMO_PASSWORD).await;
    assert_eq!(next.status, StatusCode::TOO_MANY_REQUESTS, "{}", next.body);
    app.t.cleanup().await;
}

#[tokio::test]
async fn over_long_sign_ins_are_refused_before_any_limit_keeps_them() {
    let app = TestApp::new().await;
    for i in 0..2000 {
        let email = format!("{i}{}@herald.test", "x".repeat(4000));
        let r = sign_in_from(&app, "203.0.113.5", &email, "guess").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    }
    for i in 0..1000u32 {
        // Every address of one IPv6 /64 is one client.
        let from = format!("[2001:db8:7:7::{:x}]", i + 1);
        sign_in_from(&app, &from, &format!("u{i}@herald.test"), "guess").await;
    }
    let limits = &app.state.accounts.sign_in;
    assert!(
        limits.tracked() <= 2,
        "{} addresses tracked",
        limits.tracked()
    );
    app.t.cleanup().await;
}

#[tokio::test]
async fn changing_ones_password_is_limited_and_audited_like_signing_in() {
    let app = TestApp::new().await;
    let me = app.sign_in(Role::Staff).await;
    let change = |current: &str| {
        format!(
            "current={}&new={}&again={}",
            encode(current),
            encode(STRONG),
            encode(STRONG)
        )
    };
    for _ in 0..10 {
        let r = app
            .post_form("/account/password", &change("guess"), Some(&me))
            .await;
        assert!(
            location(&r).contains("current password is not right"),
            "{}",
            location(&r)
        );
    }
    let r = app
        .post_form("/account/password", &change(seed::DEMO_PASSWORD), Some(&me))
        .await;
    assert!(
        location(&r).contains("Too many attempts"),
        "{}",
        location(&r)
    );
    let audited = app
        .state
        .db
        .inspect()
        .audit_entries("change_password_failed")
        .await
        .unwrap();
    assert_eq!(audited.len(), 2, "{audited:?}");
    app.t.cleanup().await;
}
