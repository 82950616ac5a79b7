//! Requests from elsewhere: every kind of state-changing route refuses a request that does
//! not come from Herald's own pages (CSRF); `next=` after sign-in never leaves the site.

use super::*;

/// `req` as another site (or a script without the headers a browser sends) would send it.
fn from(mut req: Request<Body>, origin: Option<&str>, fetch_site: Option<&str>) -> Request<Body> {
    let h = req.headers_mut();
    h.remove(header::ORIGIN);
    h.remove(header::REFERER);
    if let Some(o) = origin {
        h.insert(header::ORIGIN, o.parse().unwrap());
    }
    if let Some(s) = fetch_site {
        h.insert("sec-fetch-site", s.parse().unwrap());
    }
    req
}

#[tokio::test]
async fn every_kind_of_state_change_comes_only_from_this_site() {
    let app = TestApp::new().await;
    let staff = app.sign_in(Role::Staff).await;
    let admin = app.sign_in(Role::Admin).await;
    type MakeRequest<'a> = Box<dyn Fn() -> Request<Body> + 'a>;
    let kinds: Vec<(&str, MakeRequest)> = vec![
        (
            "plain form",
            Box::new(|| {
                post(
                    "/labels",
                    "kind=tag&action=create&name=CSRF",
                    Some(&staff),
                    true,
                )
            }),
        ),
        (
            "server function",
            Box::new(|| {
                post(
                    "/api/broadcasts/set-paused",
                    "id=1&paused=true",
                    Some(&admin),
                    false,
                )
            }),
        ),
        (
            "sign-in",
            Box::new(|| {
                post(
                    "/api/login",
                    "email=staff%40herald.test&password=herald-demo",
                    None,
                    false,
                )
            }),
        ),
        (
            "multipart upload",
            Box::new(|| multipart_file("/attachments", "a.png", b"\x89PNG\r\n\x1a\n", &staff)),
        ),
        (
            "account form",
            Box::new(|| {
                post(
                    "/staff",
                    "action=invite&name=X&email=x%40herald.test&role=admin",
                    Some(&admin),
                    true,
                )
            }),
        ),
    ];
    for (kind, req) in &kinds {
        for (origin, site) in [
            (None, None),
            (Some("https://evil.example"), None),
            (Some("null"), None),
            (None, Some("cross-site")),
        ] {
            let r = send(&app.router, from(req(), origin, site)).await;
            assert_eq!(
                r.status,
                StatusCode::FORBIDDEN,
                "{kind} from {origin:?}/{site:?}: {}",
                r.body
            );
            assert!(
                r.body.contains("did not come from Herald"),
                "{kind}: {}",
                r.body
            );
        }
        let r = send(&app.router, from(req(), None, Some("same-origin"))).await;
        assert_ne!(
            r.status,
            StatusCode::FORBIDDEN,
            "{kind} from this site: {}",
            r.body
        );
    }
    // Nothing of the refused ones happened.
    assert!(
        app.state
            .db
            .user_by_email("x@herald.test")
            .await
            .unwrap()
            .is_some(),
        "the allowed invite"
    );
    let labels = app
        .state
        .db
        .labels(herald::server::db::LabelKind::Tag)
        .await
        .unwrap();
    assert_eq!(
        labels.iter().filter(|l| l.name == "CSRF").count(),
        1,
        "created once, by the allowed post"
    );
    // Providers' webhooks carry no Origin and still arrive (they are signed instead).
    let r = send(
        &app.router,
        telegram_update("/webhooks/telegram/999", Some("x"), "{}"),
    )
    .await;
    assert_ne!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    app.t.cleanup().await;
}

#[tokio::test]
async fn next_after_sign_in_stays_on_this_site_and_never_panics() {
    let app = TestApp::new().await;
    for evil in [
        "%0A",
        "/%09/evil.example",
        "//evil.example",
        "/%5Cevil.example",
        "/\\evil.example",
        "https://evil.example",
    ] {
        let form = format!(
            "email=staff%40herald.test&password=herald-demo&next={}",
            herald::model::list_query::encode_component(evil)
        );
        let r = app.post_form("/api/login", &form, None).await;
        assert!(r.status.is_redirection(), "{evil}: {} {}", r.status, r.body);
        let to = r.headers[header::LOCATION].to_str().unwrap();
        assert_eq!(to, "/", "{evil} → {to}");
    }
    let form = "email=staff%40herald.test&password=herald-demo&next=%2Fcustomers%3Ftag%3DVIP";
    let r = app.post_form("/api/login", form, None).await;
    assert_eq!(r.headers[header::LOCATION], "/customers?tag=VIP");
    app.t.cleanup().await;
}

/// Reads `body` until it ends or `within` passes; what it carried, and whether it ended.
async fn drain(body: &mut Body, within: std::time::Duration) -> (String, bool) {
    let deadline = tokio::time::Instant::now() + within;
    let mut seen = String::new();
    loop {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return (seen, false),
            Ok(None) => return (seen, true),
            Ok(Some(frame)) => {
                if let Ok(data) = frame.unwrap().into_data() {
                    seen.push_str(&String::from_utf8_lossy(&data));
                }
            }
        }
    }
}

#[tokio::test]
async fn signing_out_ends_the_chat_stream_everywhere() {
    let app = TestApp::new().await;
    let channel = app
        .state
        .db
        .insert_channel(
            &herald::server::db::NewChannel {
                kind: "sandbox".into(),
                name: "Chat sandbox".into(),
                config_json: r#"{"inbound_token":"chat-token"}"#.into(),
                rate_per_sec: 10,
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let phone = app
        .state
        .db
        .recipient(1)
        .await
        .unwrap()
        .unwrap()
        .phone
        .unwrap();
    let inbound = |text: &str| {
        Request::post(format!("/webhooks/sandbox/{channel}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-herald-token", "chat-token")
            .body(Body::from(
                serde_json::json!({ "from": phone, "text": text }).to_string(),
            ))
            .unwrap()
    };
    let staff = app.sign_in(Role::Staff).await;
    let open = || async {
        let res = app
            .router
            .clone()
            .oneshot(get("/customers/1/events?after=0", Some(&staff)))
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        res.into_body()
    };
    // Live while signed in.
    let mut live = open().await;
    drain(&mut live, std::time::Duration::from_millis(300)).await;
    assert_eq!(
        send(&app.router, inbound("Before sign-out")).await.status,
        StatusCode::OK
    );
    let (seen, _) = drain(&mut live, std::time::Duration::from_secs(1)).await;
    assert!(seen.contains("Before sign-out"), "{seen}");

    // A second stream, quiet, of the same session; then the session ends (elsewhere).
    let mut quiet = open().await;
    drain(&mut quiet, std::time::Duration::from_millis(300)).await;
    let r = send(&app.router, post("/api/logout", "", Some(&staff), true)).await;
    assert!(r.status.is_redirection(), "{}", r.status);
    assert_eq!(
        send(&app.router, inbound("After sign-out")).await.status,
        StatusCode::OK
    );
    let (seen, ended) = drain(&mut live, std::time::Duration::from_secs(2)).await;
    assert!(
        !seen.contains("After sign-out"),
        "nothing after sign-out: {seen}"
    );
    assert!(ended, "the stream ends with its session");
    let (seen, ended) = drain(&mut quiet, std::time::Duration::from_secs(8)).await;
    assert!(!seen.contains("After sign-out"), "{seen}");
    assert!(ended, "a quiet stream ends within seconds too");
    app.t.cleanup().await;
}

/// The `nonce="…"` of the first inline script in `html`.
fn script_nonce(html: &str) -> Option<String> {
    let at = html.find("<script nonce=\"")? + "<script nonce=\"".len();
    Some(html[at..].split('"').next()?.to_string())
}

#[tokio::test]
async fn pages_carry_a_policy_with_their_nonce_and_nothing_signed_in_is_cached() {
    let app = TestApp::new().await;
    let login = app.get("/login", None).await;
    let csp = login.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_string();
    let nonce = script_nonce(&login.body).expect("inline scripts carry a nonce");
    assert!(csp.contains(&format!("'nonce-{nonce}'")), "{csp}");
    for part in [
        "script-src 'self' 'wasm-unsafe-eval'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{part} in {csp}");
    }
    assert!(
        !login.body.contains("<script>"),
        "no inline script without the nonce"
    );
    let again = app.get("/login", None).await;
    assert_ne!(
        script_nonce(&again.body),
        Some(nonce),
        "a new nonce each time"
    );

    let staff = app.sign_in(Role::Staff).await;
    // Pages rendered at the same moment (and the not-found page) each name their own nonce,
    // the one every inline script of theirs carries.
    let paths = [
        "/",
        "/customers",
        "/customers/import",
        "/broadcasts/new",
        "/nowhere",
    ];
    let pages =
        futures::future::join_all((0..40).map(|i| app.get(paths[i % paths.len()], Some(&staff))))
            .await;
    for (i, page) in pages.iter().enumerate() {
        let csp = page.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        let nonces: Vec<&str> = page
            .body
            .split("nonce=\"")
            .skip(1)
            .map(|rest| rest.split('"').next().unwrap())
            .collect();
        assert!(
            !nonces.is_empty(),
            "{}: inline scripts",
            paths[i % paths.len()]
        );
        for n in nonces {
            assert!(csp.contains(&format!("'nonce-{n}'")), "{n} not in {csp}");
        }
    }
    let page = app.get("/customers", Some(&staff)).await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.headers[header::CACHE_CONTROL], "no-store");
    assert!(
        page.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap()
            .contains("'nonce-")
    );
    let export = app.get("/customers/export.csv", Some(&staff)).await;
    assert_eq!(export.status, StatusCode::OK, "{}", export.body);
    assert_eq!(export.headers[header::CACHE_CONTROL], "no-store");
    assert!(
        !page.headers.contains_key(header::STRICT_TRANSPORT_SECURITY),
        "plain HTTP: no HSTS"
    );
    app.t.cleanup().await;
}

#[tokio::test]
async fn over_https_the_cookie_is_host_only_and_secure_and_pages_send_hsts() {
    let app = TestApp::with_config(|c| c.public_url = Some("https://herald.test".into())).await;
    let login = post(
        "/api/login",
        "email=staff%40herald.test&password=herald-demo",
        None,
        false,
    );
    // From its public URL's origin, the only one Herald then accepts.
    let r = app.send(login).await;
    let cookie = r.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(cookie.starts_with("__Host-herald_session="), "{cookie}");
    assert!(
        cookie.contains("; Secure") && cookie.contains("Path=/") && !cookie.contains("Domain"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap().to_string();
    let page = app.get("/", Some(&session)).await;
    assert_eq!(page.status, StatusCode::OK, "the __Host- cookie signs in");
    assert_eq!(
        page.headers[header::STRICT_TRANSPORT_SECURITY],
        "max-age=31536000"
    );
    let plain = session.replacen("__Host-herald_session", "herald_session", 1);
    assert_redirect_to(&app.get("/", Some(&plain)).await, "/login");
    app.t.cleanup().await;
}

#[tokio::test]
async fn webhooks_answer_an_unknown_channel_as_a_bad_signature_and_remember_no_misses() {
    use herald::server::db::NewChannel;
    let app = TestApp::new().await;
    let mut known = Vec::new();
    for kind in ["whatsapp", "telegram", "sms", "sandbox"] {
        let config =
            r#"{"app_secret":"s","webhook_secret":"s","auth_token":"s","inbound_token":"s"}"#;
        let id = app
            .state
            .db
            .insert_channel(
                &NewChannel {
                    kind: kind.into(),
                    name: kind.into(),
                    config_json: config.into(),
                    rate_per_sec: 1,
                },
                chrono::Utc::now(),
            )
            .await
            .unwrap();
        known.push((kind, id));
    }
    let hook = |kind: &str, id: i64| {
        Request::post(format!("/webhooks/{kind}/{id}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-hub-signature-256", "sha256=00")
            .header("x-telegram-bot-api-secret-token", "wrong")
            .header("x-twilio-signature", "wrong")
            .header("x-herald-token", "wrong")
            .body(Body::from("{}"))
            .unwrap()
    };
    let before = app.state.ingest.cached_channels();
    for (kind, id) in &known {
        let bad_signature = send(&app.router, hook(kind, *id)).await;
        assert!(
            bad_signature.status.is_client_error(),
            "{kind}: {}",
            bad_signature.status
        );
        for unknown in [9_999_999, known.iter().find(|(k, _)| k != kind).unwrap().1] {
            let r = send(&app.router, hook(kind, unknown)).await;
            assert_eq!(
                (r.status, &r.body),
                (bad_signature.status, &bad_signature.body),
                "{kind}: channel {unknown} answers as a bad signature does"
            );
        }
    }
    for id in 10_000_000..10_000_200 {
        send(&app.router, hook("whatsapp", id)).await;
    }
    assert!(
        app.state.ingest.cached_channels() <= before + known.len(),
        "misses are not kept"
    );
    app.t.cleanup().await;
}
