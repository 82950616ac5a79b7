//! Pages and server functions: sign-in, sessions, the role check.

use super::*;

/// Building a router lists the app's routes, which once stalled pages another router was
/// rendering at that moment (their data never loaded). Routers built while pages render, on
/// several threads at once, must leave every page whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pages_render_whole_while_other_routers_are_built() {
    let (state, t) = app_state().await;
    let staff = sign_in(&serve::router(state.clone()), "staff@herald.test").await;
    let mut pages = tokio::task::JoinSet::new();
    for _ in 0..80 {
        let (state, staff) = (state.clone(), staff.clone());
        pages.spawn(async move {
            let app = serve::router(state);
            let r = send(&app, get("/", Some(&staff))).await;
            assert_eq!(r.status, StatusCode::OK);
            assert!(r.body.contains("Spring sale"), "the list's data arrived");
        });
    }
    while let Some(done) = pages.join_next().await {
        done.unwrap();
    }
    t.cleanup().await;
}

#[tokio::test]
async fn pages_need_a_session_and_sign_in_sets_one() {
    let (app, t) = app().await;
    let r = send(&app, get("/", None)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.headers[header::LOCATION], "/login");
    let r = send(&app, get("/?sort=created", None)).await;
    assert_eq!(
        r.headers[header::LOCATION],
        "/login?next=%2F%3Fsort%3Dcreated"
    );

    let r = send(&app, get("/login", None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Sign in"));
    assert_eq!(r.headers["x-content-type-options"], "nosniff");

    // Wrong password from a script: a 400 with the message.
    let r = send(
        &app,
        post(
            "/api/login",
            "email=admin@herald.test&password=nope",
            None,
            false,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("Wrong email or password"), "{}", r.body);
    assert!(!r.headers.contains_key(header::SET_COOKIE));
    // …and from a plain form: back to the form with the message and the email kept.
    let r = send(
        &app,
        post(
            "/api/login",
            "email=admin@herald.test&password=nope",
            None,
            true,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FOUND);
    let loc = r.headers[header::LOCATION].to_str().unwrap();
    assert!(loc.starts_with("/login?error=Wrong%20email"), "{loc}");
    assert!(
        loc.contains("email=admin%40herald.test") && !loc.contains("nope"),
        "{loc}"
    );

    let cookie = sign_in(&app, "admin@herald.test").await;
    let r = send(&app, get("/", Some(&cookie))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.body.contains("Black Friday early access"),
        "the list renders on the server"
    );
    assert!(r.body.contains("Not processed"));
    let r = send(&app, get("/login", Some(&cookie))).await;
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "signed in: the form is skipped"
    );

    let r = send(&app, post("/api/logout", "", Some(&cookie), false)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let r = send(&app, get("/", Some(&cookie))).await;
    assert_eq!(
        r.status,
        StatusCode::SEE_OTHER,
        "the old cookie no longer works"
    );
    t.cleanup().await;
}

#[tokio::test]
async fn only_admins_pause_whatever_the_page_shows() {
    let (app, t) = app().await;
    let rows =
        t.db.list_broadcasts(&herald::model::ListQuery::default())
            .await
            .unwrap()
            .rows;
    let target = rows
        .iter()
        .find(|r| r.status == herald::model::Lifecycle::Scheduled && !r.paused)
        .unwrap()
        .id;
    let form = format!("id={target}&paused=true");

    let r = send(&app, post("/api/broadcasts/set-paused", &form, None, false)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    for who in ["manager@herald.test", "staff@herald.test"] {
        let cookie = sign_in(&app, who).await;
        let r = send(
            &app,
            post("/api/broadcasts/set-paused", &form, Some(&cookie), false),
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{who}: {}", r.body);
        assert!(
            !t.db.broadcast(target).await.unwrap().paused,
            "{who} changed nothing"
        );
    }
    // The same refusal from the page's plain form: back to the page it came from, with the reason.
    let manager = sign_in(&app, "manager@herald.test").await;
    let mut req = post("/api/broadcasts/set-paused", &form, Some(&manager), true);
    req.headers_mut().insert(
        header::REFERER,
        "http://localhost/?sort=created".parse().unwrap(),
    );
    let r = send(&app, req).await;
    assert_eq!(r.status, StatusCode::FOUND);
    let loc = r.headers[header::LOCATION].to_str().unwrap();
    assert!(
        loc.starts_with("/?sort=created&error=Your%20role%20%28manager%29"),
        "{loc}"
    );
    assert!(!t.db.broadcast(target).await.unwrap().paused);

    let admin = sign_in(&app, "admin@herald.test").await;
    let r = send(
        &app,
        post("/api/broadcasts/set-paused", &form, Some(&admin), false),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(t.db.broadcast(target).await.unwrap().paused);

    // A sent broadcast cannot be paused: a clear 409, nothing changed.
    let sent = rows
        .iter()
        .find(|r| r.status == herald::model::Lifecycle::Sent)
        .unwrap()
        .id;
    let r = send(
        &app,
        post(
            "/api/broadcasts/set-paused",
            &format!("id={sent}&paused=true"),
            Some(&admin),
            false,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    // Garbage arguments: a 400, not a panic.
    let r = send(
        &app,
        post(
            "/api/broadcasts/set-paused",
            "id=abc&paused=maybe",
            Some(&admin),
            false,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    t.cleanup().await;
}

#[tokio::test]
async fn the_list_function_refuses_anonymous_callers_and_corrects_bad_input() {
    let (app, t) = app().await;
    for body in ["", "q=sale&sort=created"] {
        let r = send(&app, post("/api/broadcasts/list", body, None, false)).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    let staff = sign_in(&app, "staff@herald.test").await;
    let r = send(&app, post("/api/broadcasts/list", "", Some(&staff), false)).await;
    assert_eq!(r.status, StatusCode::OK, "no arguments is the default list");
    assert!(r.body.contains("Black Friday early access"));
    let cookie = sign_in(&app, "manager@herald.test").await;
    let long = "x".repeat(5000);
    let r = send(
        &app,
        get(
            &format!("/?sort=nope&dir=sideways&after=99999999999999999999999&q={long}"),
            Some(&cookie),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Unknown sort"), "notice shown");
    assert!(r.body.contains("That page link is not valid"));
    assert!(r.body.contains("was cut"));
    t.cleanup().await;
}
