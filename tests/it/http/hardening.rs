//! The second security review's bounds, through the real router: imports cannot pin memory or
//! another person's upload, the wizard's posts are bounded, exports and the live chat refuse
//! cross-site reads, and live chats are bounded per person and share one poller.

use super::*;
use herald::model::{ChannelId, CustomerId};

#[tokio::test]
async fn an_import_without_line_breaks_is_refused_at_its_first_line() {
    let app = TestApp::new().await;
    let staff = app.sign_in(Role::Staff).await;
    // No line break at all: refused at upload, nothing kept.
    let r = send(&app.router, upload(&vec![b'x'; 300 * 1024], &staff, None)).await;
    let said = location(&r);
    assert!(said.contains("ine 1 is longer than 64 KB"), "{said}");
    // A long second line: the preview names it.
    let mut file = b"name,phone,email\n".to_vec();
    file.extend(std::iter::repeat_n(b'x', 300 * 1024));
    let r = send(&app.router, upload(&file, &staff, None)).await;
    let page = assert_redirect_to(&r, "/customers/import/");
    let preview = app.get(&page, Some(&staff)).await.body;
    assert!(preview.contains("line 2 is longer than 64 KB"), "{preview}");
    let wide: String = (0..150).map(|i| format!("c{i},")).collect();
    let r = send(
        &app.router,
        upload(format!("{wide}\n").as_bytes(), &staff, None),
    )
    .await;
    assert!(location(&r).contains("at most 100"), "{}", location(&r));
    app.t.cleanup().await;
}

#[tokio::test]
async fn an_import_is_its_uploaders_and_waiting_uploads_are_bounded() {
    let app = TestApp::new().await;
    let staff = app.sign_in(Role::Staff).await;
    let admin = app.sign_in(Role::Admin).await;
    let csv = b"name,phone\nAnn,+15550001111\n";
    let r = send(&app.router, upload(csv, &staff, None)).await;
    let page = assert_redirect_to(&r, "/customers/import/");
    let id = page.trim_start_matches("/customers/import/");
    let theirs = app.get(&page, Some(&staff)).await.body;
    assert!(theirs.contains("Ann"), "the uploader sees the preview");
    let other = app.get(&page, Some(&admin)).await.body;
    assert!(!other.contains("Ann"), "another person sees nothing of it");
    let start = "col_0=name&col_1=phone&action=start";
    let r = app
        .post_form(&format!("/customers/import/{id}"), start, Some(&admin))
        .await;
    assert!(location(&r).contains("no longer here"), "{}", location(&r));
    for _ in 0..2 {
        let r = send(&app.router, upload(csv, &staff, None)).await;
        assert_redirect_to(&r, "/customers/import/");
    }
    let r = send(&app.router, upload(csv, &staff, None)).await;
    assert!(
        location(&r).contains("3 uploads waiting"),
        "{}",
        location(&r)
    );
    let r = send(&app.router, upload(csv, &admin, None)).await;
    assert_redirect_to(&r, "/customers/import/");
    app.t.cleanup().await;
}

#[tokio::test]
async fn the_wizards_plain_posts_are_small_and_picks_are_bounded() {
    let app = TestApp::new().await;
    let staff = app.sign_in(Role::Staff).await;
    let ids: String = (0..300_000).map(|i| format!("channel={i}&")).collect();
    let started = std::time::Instant::now();
    let r = app
        .post_form("/broadcasts/wizard", &format!("{ids}step=3"), Some(&staff))
        .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Under the bound, 30,000 picks are read in one pass (a set) and at most 64 are kept.
    let step1 =
        "step=1&key=kpicks0123456789abcd&name=Many&body=Hi&send_at=2099-12-24T09%3A30&go=next";
    let r = app
        .post_form("/broadcasts/wizard", step1, Some(&staff))
        .await;
    let to = assert_redirect_to(&r, "/broadcasts/");
    let id: i64 = to.split('/').nth(2).unwrap().parse().unwrap();
    let ids: String = (0..30_000).map(|i| format!("channel={i}&")).collect();
    let r = app
        .post_form(
            "/broadcasts/wizard",
            &format!("{ids}id={id}&channels_shown=1&step=3&go=stay"),
            Some(&staff),
        )
        .await;
    assert_redirect_to(&r, "/broadcasts/");
    let (draft, _, _) = app.state.db.broadcast_for_edit(id).await.unwrap();
    assert_eq!(
        draft.channel_ids.len(),
        herald::server::broadcast::compose::MAX_PICKED_CHANNELS
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    app.t.cleanup().await;
}

#[tokio::test]
async fn exports_and_live_chats_refuse_cross_site_reads() {
    let app = TestApp::new().await;
    let staff = app.sign_in(Role::Staff).await;
    for path in [
        "/customers/export.csv",
        "/audit.csv",
        "/customers/1/events?after=0",
        "/live?rows=1",
    ] {
        let mut req = get(path, Some(&staff));
        req.headers_mut()
            .insert("sec-fetch-site", "cross-site".parse().unwrap());
        let r = app.router.clone().oneshot(req).await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let mut req = get("/customers/export.csv", Some(&staff));
    req.headers_mut()
        .insert("sec-fetch-site", "same-origin".parse().unwrap());
    let r = app.router.clone().oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.t.cleanup().await;
}

/// Opens customer 1's live chat; the response, its body not read (the stream stays open).
async fn open_chat(app: &TestApp, cookie: &str) -> axum::response::Response {
    let req = get("/customers/1/events?after=0", Some(cookie));
    app.router.clone().oneshot(req).await.unwrap()
}

#[tokio::test]
async fn live_chats_are_bounded_per_person_and_share_one_poller_per_conversation() {
    let app = TestApp::new().await;
    let staff = app.sign_in(Role::Staff).await;
    let mut open = Vec::new();
    for _ in 0..herald::server::chat_hub::MAX_STREAMS_PER_USER {
        let r = open_chat(&app, &staff).await;
        assert_eq!(r.status(), StatusCode::OK);
        open.push(r);
    }
    assert_eq!(
        app.state.chat.pollers().await,
        1,
        "one poller for the conversation"
    );
    let r = open_chat(&app, &staff).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    drop(open);
    let r = open_chat(&app, &staff).await;
    assert_eq!(r.status(), StatusCode::OK, "closing them frees their slots");
    app.t.cleanup().await;
}

#[tokio::test]
async fn the_chat_page_shows_the_newest_messages_and_links_the_earlier_ones() {
    let app = TestApp::new().await;
    let staff = app.sign_in(Role::Staff).await;
    let channel = app.state.db.channels().await.unwrap()[0].id;
    for i in 0..130 {
        app.state
            .db
            .record_inbound(
                ChannelId(channel),
                CustomerId(1),
                &format!("Question number {i:03}"),
                None,
                chrono::Utc::now(),
            )
            .await
            .unwrap();
    }
    let page = app.get("/customers/1/chat", Some(&staff)).await.body;
    assert!(page.contains("Question number 129") && !page.contains("Question number 010"));
    let earlier = page
        .split("/customers/1/chat?before=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a link to the earlier messages")
        .to_string();
    let older = app
        .get(&format!("/customers/1/chat?before={earlier}"), Some(&staff))
        .await
        .body;
    assert!(older.contains("Question number 010") && !older.contains("Question number 129"));
    app.t.cleanup().await;
}

#[tokio::test]
async fn a_channels_ids_and_security_cannot_aim_its_stored_secrets_elsewhere() {
    let app = TestApp::new().await;
    let admin = app.sign_in(Role::Admin).await;
    let evil = "2002%2Fsubscribed_apps%3Foverride_callback_uri%3Dhttps%3A%2F%2Fevil.example%2Fx%23";
    let form = |id: &str| {
        format!(
            "action=create&kind=whatsapp&name=Numbers&rate=&cfg_whatsapp_phone_number_id={id}&cfg_whatsapp_waba_id=2002&cfg_whatsapp_access_token=EAAG-token&cfg_whatsapp_app_secret=s&cfg_whatsapp_verify_token=verify-me-please&cfg_whatsapp_base_url=http%3A%2F%2F127.0.0.1%3A9"
        )
    };
    let r = app.post_form("/channels", &form(evil), Some(&admin)).await;
    assert!(location(&r).contains("digits only"), "{}", location(&r));
    assert!(
        app.state
            .db
            .channels()
            .await
            .unwrap()
            .iter()
            .all(|c| c.name != "Numbers")
    );
    let r = app
        .post_form("/channels", &form("1061"), Some(&admin))
        .await;
    assert!(location(&r).contains("Connected"), "{}", location(&r));
    let id = app
        .state
        .db
        .channels()
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == "Numbers")
        .unwrap()
        .id;
    // Another number for the stored token, without typing the token again: refused.
    let moved = format!(
        "action=update&id={id}&name=Numbers&rate=&cfg_phone_number_id=1062&cfg_waba_id=2002&cfg_access_token=&cfg_app_secret=&cfg_verify_token=&cfg_base_url=http%3A%2F%2F127.0.0.1%3A9"
    );
    let r = app.post_form("/channels", &moved, Some(&admin)).await;
    assert!(
        location(&r).contains("enter its secrets again"),
        "{}",
        location(&r)
    );
    let stored = app.state.db.channel(id).await.unwrap().unwrap().config;
    assert!(stored.contains("\"1061\""), "{stored}");
    app.t.cleanup().await;
}

#[tokio::test]
async fn with_a_public_url_a_forged_host_and_origin_change_nothing() {
    let app =
        TestApp::with_config(|c| c.public_url = Some("https://herald.example.com".into())).await;
    let staff = app.sign_in(Role::Staff).await;
    let mut req = post("/api/logout", "", Some(&staff), true);
    req.headers_mut()
        .insert(header::ORIGIN, "http://evil.example".parse().unwrap());
    req.headers_mut()
        .insert(header::HOST, "evil.example".parse().unwrap());
    let r = send(&app.router, req).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/", Some(&staff)).await.status,
        StatusCode::OK,
        "still signed in"
    );
    app.t.cleanup().await;
}

/// A personalised message is measured for the audience's longest name before it is
/// scheduled: over SMS's 1,600 characters it is refused with the reason, and stays a draft.
#[tokio::test]
async fn a_message_over_a_channels_limit_for_the_longest_name_is_refused_before_scheduling() {
    use herald::server::db::{NewChannel, NewCustomer};
    let app = TestApp::new().await;
    let staff = app.sign_in(Role::Staff).await;
    let now = chrono::Utc::now();
    let sms = app
        .state
        .db
        .insert_channel(
            &NewChannel {
                kind: "sms".into(),
                name: "Texts".into(),
                config_json: r#"{"account_sid":"AC1","auth_token":"t","from":"+15550000","base_url":"http://127.0.0.1:9"}"#.into(),
                rate_per_sec: 1,
            },
            now,
        )
        .await
        .unwrap();
    let long_name = NewCustomer {
        name: "Maximiliana Wolfeschlegelsteinhausen".into(),
        phone: Some("+15557654321".into()),
        email: None,
        whatsapp_id: None,
        telegram_chat_id: None,
        assignee_id: None,
        time_zone: "UTC".into(),
        opted_out: false,
        tag_ids: Vec::new(),
        group_ids: Vec::new(),
    };
    app.state
        .db
        .insert_customers_bulk(&[long_name], now)
        .await
        .unwrap();
    let body = format!("%7B%7Bname%7D%7D%20{}", "a".repeat(1580));
    let step1 = format!(
        "step=1&key=kfit0123456789abcdef&name=Long&body={body}&send_at=2099-12-24T09%3A30&go=next"
    );
    let r = app
        .post_form("/broadcasts/wizard", &step1, Some(&staff))
        .await;
    let to = assert_redirect_to(&r, "/broadcasts/");
    let id: i64 = to.split('/').nth(2).unwrap().parse().unwrap();
    let pick = format!("step=3&id={id}&channels_shown=1&channel={sms}&prio_{sms}=1");
    let r = app
        .post_form(
            "/broadcasts/wizard",
            &format!("{pick}&go=stay"),
            Some(&staff),
        )
        .await;
    let page = app
        .get(&assert_redirect_to(&r, "/broadcasts/"), Some(&staff))
        .await
        .body;
    let notes = page
        .find("media-notes")
        .map(|i| &page[i..(i + 800).min(page.len())]);
    assert!(
        page.contains("11 SMS segments, GSM-7"),
        "the pre-flight says what it becomes: {notes:?}"
    );
    assert!(
        page.contains("An SMS takes at most 1,600 characters"),
        "and why it cannot go"
    );
    let r = app
        .post_form(
            "/broadcasts/wizard",
            &format!("{pick}&go=schedule"),
            Some(&staff),
        )
        .await;
    let said = location(&r);
    assert!(
        said.contains("An SMS takes at most 1,600 characters; this one has 1,617"),
        "{said}"
    );
    assert_eq!(
        app.state.db.broadcast(id).await.unwrap().status,
        herald::model::Lifecycle::Draft
    );
    app.t.cleanup().await;
}

/// What the trace writes: everything a subscriber's `fmt` layer printed.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Request spans name the path, never the query string: a password link's token (from an
/// older link), a search or a filter stays out of the logs, also at debug level.
#[tokio::test]
async fn request_spans_log_the_path_but_never_the_query() {
    let app = TestApp::new().await;
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let _on = tracing::subscriber::set_default(subscriber);
    let token = "c0ffee".repeat(10);
    app.get(&format!("/password?token={token}"), None).await;
    app.get("/customers?q=private-search-term", None).await;
    let logged = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logged.contains("path=/password"), "{logged}");
    assert!(!logged.contains(&token), "{logged}");
    assert!(!logged.contains("private-search-term"), "{logged}");
}

/// `GET /live`: a list row's state goes first, then each change as the broadcast's events
/// bring it (here a pause); what it cannot follow is refused with the reason.
#[tokio::test]
async fn the_live_stream_starts_with_the_state_and_follows_a_pause() {
    let app = TestApp::new().await;
    let admin = app.sign_in(Role::Admin).await;
    let db = &app.state.db;
    let (id, _) = db
        .sending_broadcasts()
        .await
        .unwrap()
        .into_iter()
        .next()
        .expect("the demo has a broadcast sending");
    for bad in [
        "/live",
        "/live?rows=1,x",
        &format!("/live?rows={}", vec!["1"; 101].join(",")),
    ] {
        let r = app
            .router
            .clone()
            .oneshot(get(bad, Some(&admin)))
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let res = app
        .router
        .clone()
        .oneshot(get(&format!("/live?rows={id}"), Some(&admin)))
        .await
        .unwrap();
    assert_eq!(res.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = res.into_body();
    let mut read = async |until: &str| {
        let mut seen = String::new();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        while !seen.contains(until) {
            let frame = tokio::time::timeout_at(deadline, body.frame())
                .await
                .unwrap_or_else(|_| panic!("{until} within 2 s: {seen}"))
                .unwrap()
                .unwrap();
            if let Ok(data) = frame.into_data() {
                seen.push_str(&String::from_utf8_lossy(&data));
            }
        }
        seen
    };
    let first = read(&format!("\"id\":{id}")).await;
    assert!(
        first.contains("event: row") && first.contains("\"status\":\"sending\""),
        "{first}"
    );
    let paused = app
        .post_form(
            "/api/broadcasts/set-paused",
            &format!("id={id}&paused=true"),
            Some(&admin),
        )
        .await;
    assert!(
        paused.status.is_success() || paused.status.is_redirection(),
        "{}",
        paused.status
    );
    let next = read("\"status\":\"paused\"").await;
    assert!(next.contains("event: row"), "{next}");
    app.t.cleanup().await;
}

/// Live page streams are bounded per person, apart from their chats: the bound refuses one
/// more with 429, a chat still opens, and a stream given back frees its slot.
#[tokio::test]
async fn live_streams_are_bounded_per_person_apart_from_chats() {
    let app = TestApp::new().await;
    let staff = app.sign_in(Role::Staff).await;
    let open = || async {
        app.router
            .clone()
            .oneshot(get("/live?rows=1", Some(&staff)))
            .await
            .unwrap()
    };
    let mut held = Vec::new();
    for _ in 0..herald::server::live::MAX_LIVE_STREAMS_PER_USER {
        let r = open().await;
        assert_eq!(r.status(), StatusCode::OK);
        held.push(r);
    }
    assert_eq!(open().await.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(open_chat(&app, &staff).await.status(), StatusCode::OK);
    drop(held.pop());
    assert_eq!(open().await.status(), StatusCode::OK);
    app.t.cleanup().await;
}
