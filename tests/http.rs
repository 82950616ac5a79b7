//! The HTTP surface through the real router: sign-in redirects, cookies, and the server-side
//! role check on every server function (whatever the page shows).
#![cfg(feature = "ssr")]

mod common;

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use herald::model::channel::ChannelKind;
use herald::server::clock::SystemClock;
use herald::server::{AppState, config, seed, serve};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// The links the test app signs and accepts.
fn test_links() -> herald::server::unsubscribe::Links {
    herald::server::unsubscribe::Links::new("http://herald.test", b"test-link-key")
}

async fn app() -> (Router, common::TestDb) {
    let (state, t) = app_state().await;
    (serve::router(state), t)
}

async fn app_state() -> (AppState, common::TestDb) {
    let t = common::sqlite().await;
    let clock = Arc::new(SystemClock);
    seed::load(&t.db, herald::server::clock::Clock::now(&*clock))
        .await
        .unwrap();
    let (leptos_options, mut config) = config::load(Path::new("Leptos.toml")).unwrap();
    // Uploads go to the test's own folder, not the checkout's data/.
    config.data_dir = t.dir();
    let state = herald::server::startup::state(
        leptos_options,
        config,
        herald::server::startup::Parts {
            db: t.db.clone(),
            clock,
            links: test_links(),
        },
    );
    (state, t)
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

/// One request through the router, with its whole body. A request that takes over a minute
/// fails the test, naming it, rather than hanging the suite.
async fn send(app: &Router, req: Request<Body>) -> Reply {
    let what = format!("{} {}", req.method(), req.uri());
    let exchange = async {
        let res = app.clone().oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    };
    match tokio::time::timeout(std::time::Duration::from_secs(60), exchange).await {
        Ok(reply) => reply,
        Err(_) => panic!("{what} got no whole answer within 60 s"),
    }
}

fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path).header(header::ACCEPT, "text/html");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).unwrap()
}

fn post(path: &str, form: &str, cookie: Option<&str>, accept_html: bool) -> Request<Body> {
    let mut b = Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::REFERER, "http://localhost/")
        .header(
            header::ACCEPT,
            if accept_html {
                "text/html"
            } else {
                "application/json"
            },
        );
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::from(form.to_string())).unwrap()
}

/// Signs in and returns the `name=value` of the session cookie.
async fn sign_in(app: &Router, email: &str) -> String {
    let form = format!("email={email}&password={}", seed::DEMO_PASSWORD);
    let r = send(app, post("/api/login", &form, None, false)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let cookie = r.headers[header::SET_COOKIE].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_string()
}

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
        .find(|r| r.status == "scheduled" && !r.paused)
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
    let sent = rows.iter().find(|r| r.status == "sent").unwrap().id;
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

#[tokio::test]
async fn customer_export_follows_the_filter_streams_every_row_and_defuses_formulas() {
    use herald::server::db::NewCustomer;
    use herald::server::export::CUSTOMER_COLUMNS;
    let (app, t) = app().await;
    let vip = t.db.ensure_tag("VIP").await.unwrap();
    let evil = "=HYPERLINK(\"http://evil.example\",\"click\")";
    t.db.insert_customers_bulk(
        &[NewCustomer {
            name: evil.into(),
            phone: Some("+19990000001".into()),
            time_zone: "UTC".into(),
            tag_ids: vec![vip],
            ..Default::default()
        }],
        chrono::Utc::now(),
    )
    .await
    .unwrap();
    // More than one export batch in all.
    herald::server::customers::generate(&t.db, 3_000, chrono::Utc::now(), |_| {})
        .await
        .unwrap();

    let r = send(&app, get("/customers/export.csv", None)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let cookie = sign_in(&app, "manager@herald.test").await;
    let read = |body: &str| {
        let mut rdr = csv::Reader::from_reader(body.as_bytes());
        let head: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(head, CUSTOMER_COLUMNS);
        rdr.records().map(|r| r.unwrap()).collect::<Vec<_>>()
    };

    let r = send(&app, get("/customers/export.csv", Some(&cookie))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    assert!(
        r.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let all = read(&r.body);
    assert_eq!(all.len() as i64, t.db.count_customers().await.unwrap());

    let r = send(&app, get("/customers/export.csv?tag=VIP", Some(&cookie))).await;
    let vips = read(&r.body);
    assert_eq!(
        vips.len() as i64,
        t.db.count_customers_tagged("VIP").await.unwrap()
    );
    assert!(vips.iter().all(|row| row[5].split(';').any(|t| t == "VIP")));
    let row = vips
        .iter()
        .find(|row| row[1] == *"+19990000001")
        .expect("the planted row");
    assert_eq!(&row[0], format!("'{evil}"), "formula defused");

    let r = send(&app, get("/customers/export.csv?q=smith", Some(&cookie))).await;
    let smiths = read(&r.body);
    assert!(!smiths.is_empty());
    assert!(
        smiths
            .iter()
            .all(|row| row[0].to_lowercase().contains("smith")
                || row[1].contains("smith")
                || row[2].to_lowercase().contains("smith"))
    );
    t.cleanup().await;
}

#[tokio::test]
async fn bulk_tagging_changes_exactly_the_ticked_customers_for_staff_only() {
    let (app, t) = app().await;
    let page =
        t.db.list_customers(&herald::model::CustomerQuery::parse(None, None, None, None).0)
            .await
            .unwrap();
    let ids: Vec<i64> = page.rows.iter().take(3).map(|r| r.id).collect();
    let form = |action: &str| {
        let mut f: String = ids.iter().map(|id| format!("id={id}&")).collect();
        f.push_str(&format!(
            "tag=Spring%20promo&action={action}&back=%2Fcustomers%3Fq%3Dx"
        ));
        f
    };
    let tagged = || async { t.db.count_customers_tagged("Spring promo").await.unwrap() };

    let r = send(&app, post("/customers/tags", &form("add"), None, true)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let manager = sign_in(&app, "manager@herald.test").await;
    let r = send(
        &app,
        post("/customers/tags", &form("add"), Some(&manager), true),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(tagged().await, 0, "nothing changed");

    let staff = sign_in(&app, "staff@herald.test").await;
    let r = send(
        &app,
        post("/customers/tags", &form("add"), Some(&staff), true),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let loc = r.headers[header::LOCATION].to_str().unwrap();
    assert!(
        loc.starts_with("/customers?q=x&notice=Tagged%203%20customers"),
        "{loc}"
    );
    assert_eq!(tagged().await, 3);
    // Again: idempotent, and says so.
    let r = send(
        &app,
        post("/customers/tags", &form("add"), Some(&staff), true),
    )
    .await;
    assert!(
        r.headers[header::LOCATION]
            .to_str()
            .unwrap()
            .contains("Tagged%200%20customers")
    );
    assert_eq!(tagged().await, 3);

    let r = send(
        &app,
        post("/customers/tags", &form("remove"), Some(&staff), true),
    )
    .await;
    assert!(
        r.headers[header::LOCATION]
            .to_str()
            .unwrap()
            .contains("Removed")
    );
    assert_eq!(tagged().await, 0);

    // Nothing ticked: back with a message, nothing changed.
    let r = send(
        &app,
        post(
            "/customers/tags",
            "tag=VIP&action=add&back=%2Fcustomers",
            Some(&staff),
            true,
        ),
    )
    .await;
    let loc = r.headers[header::LOCATION].to_str().unwrap();
    assert!(
        loc.starts_with("/customers?error=Tick%20at%20least"),
        "{loc}"
    );
    t.cleanup().await;
}

#[tokio::test]
async fn editing_a_customer_saves_everything_or_keeps_what_was_typed() {
    let (app, t) = app().await;
    let rows =
        t.db.list_customers(&herald::model::CustomerQuery::parse(None, None, None, None).0)
            .await
            .unwrap()
            .rows;
    let (id, other_phone) = (rows[0].id, rows[1].phone.clone().unwrap());
    let save = format!("/customers/{id}/save");
    let good = "name=Ada+Lovelace&phone=%2B44+20+7946+0958&email=ADA%40example.org&whatsapp_id=442079460958\
                &telegram_chat_id=-100123&tags=VIP%2C+Pioneers&group=Sales-bot&assignee=&time_zone=Europe%2FLondon&opted_out=on";

    let manager = sign_in(&app, "manager@herald.test").await;
    let r = send(&app, post(&save, good, Some(&manager), true)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let staff = sign_in(&app, "staff@herald.test").await;
    let r = send(&app, post(&save, good, Some(&staff), true)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers[header::LOCATION],
        format!("/customers/{id}?notice=Saved.").as_str()
    );
    let (c, tags, groups) = t.db.customer_for_edit(id).await.unwrap();
    assert_eq!(c.name, "Ada Lovelace");
    assert_eq!(c.phone.as_deref(), Some("+442079460958"));
    assert_eq!(c.email.as_deref(), Some("ada@example.org"));
    assert_eq!(c.telegram_chat_id.as_deref(), Some("-100123"));
    assert_eq!(
        (c.time_zone.as_str(), c.opted_out, c.assignee_id),
        ("Europe/London", true, None)
    );
    assert_eq!(tags, vec!["Pioneers", "VIP"]);
    assert_eq!(groups, vec!["Sales-bot"]);
    // The new name is searchable at once.
    let found = t
        .db
        .list_customers(&herald::model::CustomerQuery::parse(Some("lovelace"), None, None, None).0)
        .await
        .unwrap();
    assert_eq!(
        found.rows.iter().map(|r| r.id).collect::<Vec<_>>(),
        vec![id]
    );

    // Bad input: back to the form with every message and everything typed; nothing stored.
    let bad = "name=Ada+Byron&phone=12345&email=nope&tags=VIP&time_zone=Mars%2FOlympus";
    let r = send(&app, post(&save, bad, Some(&staff), true)).await;
    let loc = r.headers[header::LOCATION].to_str().unwrap();
    assert!(loc.starts_with(&format!("/customers/{id}?error=")), "{loc}");
    for part in [
        "not%20a%20phone",
        "not%20an%20email",
        "not%20a%20time%20zone",
        "name=Ada%20Byron",
        "phone=12345",
        "time_zone=Mars%2FOlympus",
    ] {
        assert!(loc.contains(part), "{part} missing from {loc}");
    }
    assert_eq!(
        t.db.customer_for_edit(id).await.unwrap().0.name,
        "Ada Lovelace"
    );
    // The page shows the typed values and the messages.
    let page = send(&app, get(loc, Some(&staff))).await;
    assert!(page.body.contains("value=\"Ada Byron\""), "typed name kept");
    assert!(page.body.contains("is not a time zone"));

    // Another customer's phone: refused by name, nothing stored.
    let taken = format!(
        "name=Ada&phone={}&time_zone=UTC",
        other_phone.replace('+', "%2B")
    );
    let r = send(&app, post(&save, &taken, Some(&staff), true)).await;
    let loc = r.headers[header::LOCATION].to_str().unwrap();
    assert!(
        loc.contains("another%20customer%20already%20has%20this%20phone"),
        "{loc}"
    );
    assert_eq!(
        t.db.customer_for_edit(id).await.unwrap().0.name,
        "Ada Lovelace"
    );
    t.cleanup().await;
}

/// A multipart upload of `data` as the form's `file` field.
fn upload(data: &[u8], cookie: &str, declared_len: Option<u64>) -> Request<Body> {
    let mut body = b"--XBOUNDARYX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"customers.csv\"\r\nContent-Type: text/csv\r\n\r\n".to_vec();
    body.extend_from_slice(data);
    body.extend_from_slice(b"\r\n--XBOUNDARYX--\r\n");
    Request::post("/customers/import")
        .header(
            header::CONTENT_TYPE,
            "multipart/form-data; boundary=XBOUNDARYX",
        )
        .header(header::ACCEPT, "text/html")
        .header(header::COOKIE, cookie)
        .header(
            header::CONTENT_LENGTH,
            declared_len.unwrap_or(body.len() as u64).to_string(),
        )
        .body(Body::from(body))
        .unwrap()
}

fn location(r: &Reply) -> String {
    let raw = r.headers[header::LOCATION].to_str().unwrap();
    form_urlencoded::parse(raw.split_once('?').map(|(_, q)| q).unwrap_or("").as_bytes())
        .find(|(k, _)| k == "error")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| raw.to_string())
}

#[tokio::test]
async fn importing_through_the_pages_checks_the_upload_and_stores_the_customers() {
    let (app, t) = app().await;
    let staff = sign_in(&app, "staff@herald.test").await;
    let manager = sign_in(&app, "manager@herald.test").await;
    let before = t.db.count_customers().await.unwrap();
    let csv = "Kunde,Telefon,Tags\nNora Import,+44 20 7946 0101,Imported\nOtto Import,+44 20 7946 0102,Imported\n";

    // Managers may not import, whatever the page shows.
    let r = send(&app, upload(csv.as_bytes(), &manager, None)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&app, get("/customers/import", Some(&manager))).await;
    assert!(!r.body.contains("type=\"file\""), "{}", r.body);

    // Too big (the declared length is enough), or not CSV by its content: a clear message.
    let r = send(&app, upload(csv.as_bytes(), &staff, Some(2 << 30))).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let message = location(&r);
    assert!(
        message.contains("2048 MB") && message.contains("largest file"),
        "{message}"
    );
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01";
    let message = location(&send(&app, upload(png, &staff, None)).await);
    assert!(message.contains("image"), "{message}");
    let message = location(&send(&app, upload(b"", &staff, None)).await);
    assert!(message.contains("empty"), "{message}");

    // A good file: the preview shows its lines and the guessed mapping ("Kunde" is unknown).
    let r = send(&app, upload(csv.as_bytes(), &staff, None)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let page = r.headers[header::LOCATION].to_str().unwrap().to_string();
    assert!(page.starts_with("/customers/import/"), "{page}");
    let r = send(&app, get(&page, Some(&staff))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Nora Import") && r.body.contains("Kunde"));
    assert!(
        r.body.contains(r#"<option value="phone" selected"#),
        "Telefon is not guessed as phone: {}",
        r.body
    );

    // Starting without a name column is refused and keeps the choices.
    let r = send(
        &app,
        post(
            &page,
            "col_0=&col_1=phone&col_2=tags&action=start",
            Some(&staff),
            true,
        ),
    )
    .await;
    assert!(location(&r).contains("name"), "{}", location(&r));
    assert_eq!(t.db.count_customers().await.unwrap(), before);

    // Another writer holds the database, so the import is seen running: a progress bar on a
    // page that reloads itself.
    let blocker =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", t.dir().join("herald.db").display()))
            .await
            .unwrap();
    let mut hold = blocker.acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *hold)
        .await
        .unwrap();
    let r = send(
        &app,
        post(
            &page,
            "col_0=name&col_1=phone&col_2=tags&action=start",
            Some(&staff),
            true,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let running = send(&app, get(&page, Some(&staff))).await.body;
    assert!(
        running.contains("<progress") && running.contains(r#"http-equiv="refresh""#),
        "{running}"
    );
    sqlx::query("ROLLBACK").execute(&mut *hold).await.unwrap();
    drop(hold);
    blocker.close().await;
    let mut body = String::new();
    for _ in 0..200 {
        body = send(&app, get(&page, Some(&staff))).await.body;
        if !body.contains("<progress") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(body.contains("2 new customers"), "{body}");
    assert_eq!(t.db.count_customers().await.unwrap(), before + 2);
    assert_eq!(t.db.count_customers_tagged("Imported").await.unwrap(), 2);
    t.cleanup().await;
}

#[tokio::test]
async fn unsubscribe_links_need_no_sign_in_ask_first_and_opt_out_of_that_kind_only() {
    let (app, t) = app().await;
    let links = test_links();
    let token = links.unsubscribe_token(3, ChannelKind::Email);
    assert_eq!(
        links.unsubscribe_url(3, ChannelKind::Email),
        format!("http://herald.test/unsubscribe/{token}")
    );
    // A GET (link scanners follow those) asks and changes nothing, without a session.
    let r = send(&app, get(&format!("/unsubscribe/{token}"), None)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("Stop receiving email messages from us?"));
    assert!(r.body.contains("<form method=\"post\">"));
    assert!(t.db.channel_opt_outs(3).await.unwrap().is_empty());
    // A mail client's one-click POST (RFC 8058), no cookie, no referer.
    let one_click = Request::post(format!("/unsubscribe/{token}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("List-Unsubscribe=One-Click"))
        .unwrap();
    let r = send(&app, one_click).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.body.contains("You are unsubscribed"));
    let kinds: Vec<String> =
        t.db.channel_opt_outs(3)
            .await
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
    assert_eq!(kinds, vec!["email".to_string()]);
    // Again: still fine, nothing more recorded.
    let r = send(&app, post(&format!("/unsubscribe/{token}"), "", None, true)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(t.db.channel_opt_outs(3).await.unwrap().len(), 1);
    // Tampered, foreign or malformed tokens change nothing.
    let someone_else = token.replacen("3-", "4-", 1);
    let foreign = herald::server::unsubscribe::Links::new("http://x", b"other-key")
        .unsubscribe_token(4, ChannelKind::Email);
    for bad in [
        someone_else.as_str(),
        foreign.as_str(),
        "4-email-xyz",
        "nonsense",
    ] {
        let r = send(&app, post(&format!("/unsubscribe/{bad}"), "", None, true)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{bad}");
        assert!(r.body.contains("not valid"));
    }
    assert!(t.db.channel_opt_outs(4).await.unwrap().is_empty());
    t.cleanup().await;
}

#[tokio::test]
async fn results_come_from_the_counters_with_unmeasured_rates_named() {
    use herald::server::db::{DeliveryEvent, NewChannel};
    let (app, t) = app().await;
    let now = chrono::Utc::now();
    let (wa, b) = sent_on_whatsapp(&t, "results-key-00001").await;
    let total = t.db.counters(b).await.unwrap()[0];
    assert!(total > 2, "the demo audience on WhatsApp");
    let first = t.db.deliveries_of(b).await.unwrap()[0].4.clone().unwrap();
    t.db.apply_event(wa, &first, &DeliveryEvent::Read, now)
        .await
        .unwrap();

    // Signed out: the page sends to sign-in, the server function refuses.
    let r = send(&app, get(&format!("/broadcasts/{b}"), None)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = send(
        &app,
        post("/api/broadcasts/results", &format!("id={b}"), None, false),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    // Managers read results.
    let manager = sign_in(&app, "manager@herald.test").await;
    let r = send(
        &app,
        post(
            "/api/broadcasts/results",
            &format!("id={b}"),
            Some(&manager),
            false,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["totals"]["audience"], total);
    assert_eq!(v["totals"]["sent"], total);
    assert_eq!(v["totals"]["delivered"], 1);
    assert_eq!(v["totals"]["read"], 1);
    assert_eq!(v["read"]["Measured"]["part"], 1);
    assert_eq!(v["read"]["Measured"]["whole"], total);
    assert_eq!(v["read_covers"], serde_json::json!(["WA"]));
    assert_eq!(v["channels"][0]["name"], "WA");

    // The page renders the numbers on the server; the list links to it.
    let r = send(&app, get(&format!("/broadcasts/{b}"), Some(&manager))).await;
    assert_eq!(r.status, StatusCode::OK);
    for text in [
        "Total audience",
        "Successful receivers",
        "Failed receivers",
        "Received rate",
        "Read rate",
        "Reply rate",
        "Covers WA.",
        "aria-labelledby=\"funnel-title funnel-desc\" class=\"funnel\"",
        "<title id=\"funnel-title\">",
        "<title id=\"timeline-title\">",
    ] {
        assert!(r.body.contains(text), "{text} missing from {}", r.body);
    }
    let r = send(&app, get("/?q=Sent+on", Some(&manager))).await;
    assert!(
        r.body.contains(&format!("href=\"/broadcasts/{b}\"")),
        "a View link"
    );

    // A Telegram-only broadcast measures neither delivery nor reads: "not measured", not 0 %.
    let tg =
        t.db.insert_channel(
            &NewChannel {
                kind: "telegram".into(),
                name: "Bot".into(),
                config_json: "{}".into(),
                rate_per_sec: 30,
            },
            now,
        )
        .await
        .unwrap();
    let b2 = sent_on(
        &t,
        tg,
        1,
        "x:1".into(),
        |d| format!("x:{d}"),
        "results-key-00002",
    )
    .await;
    let r = send(
        &app,
        post(
            "/api/broadcasts/results",
            &format!("id={b2}"),
            Some(&manager),
            false,
        ),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert!(
        v["totals"]["audience"].as_i64().unwrap() > 0,
        "demo customers on Telegram"
    );
    assert_eq!(v["received"], "NotMeasured");
    assert_eq!(v["read"], "NotMeasured");
    let r = send(&app, get(&format!("/broadcasts/{b2}"), Some(&manager))).await;
    for stat in ["received", "read"] {
        let card = r
            .body
            .split(&format!("data-stat=\"{stat}\""))
            .nth(1)
            .unwrap();
        let card = card.split("data-stat=").next().unwrap();
        assert!(
            card.contains("not measured") && !card.contains("0 %"),
            "{card}"
        );
    }

    let r = send(
        &app,
        post(
            "/api/broadcasts/results",
            "id=999999",
            Some(&manager),
            false,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // The dashboard puts them side by side; by read rate, the unmeasured one sorts last.
    let r = send(&app, get("/dashboard?sort=read&dir=desc", Some(&manager))).await;
    assert_eq!(r.status, StatusCode::OK);
    let wa_at = r
        .body
        .find(&format!("data-id=\"{b}\""))
        .expect("the WhatsApp one");
    let tg_at = r
        .body
        .find(&format!("data-id=\"{b2}\""))
        .expect("the Telegram one");
    assert!(wa_at < tg_at, "measured before not measured");
    let r = send(&app, get("/dashboard?sort=read&dir=asc", Some(&manager))).await;
    let wa_at = r.body.find(&format!("data-id=\"{b}\"")).unwrap();
    let tg_at = r.body.find(&format!("data-id=\"{b2}\"")).unwrap();
    assert!(wa_at < tg_at, "not measured stays last");
    assert!(r.body.contains("aria-sort=\"ascending\""));
    let r = send(&app, post("/api/broadcasts/dashboard", "", None, false)).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    t.cleanup().await;
}

#[tokio::test]
async fn the_recipient_table_filters_pages_exports_and_retries_failed() {
    use herald::server::db::DeliveryEvent;
    let (app, t) = app().await;
    let now = chrono::Utc::now();
    let (wa, b) = sent_on_whatsapp(&t, "recipients-key-01").await;
    let rows = t.db.deliveries_of(b).await.unwrap();
    assert!(rows.len() > 60, "more than a page");
    let evil = DeliveryEvent::Failed {
        reason: "=HYPERLINK(\"http://evil.example\")".into(),
    };
    for r in &rows[..3] {
        t.db.apply_event(wa, r.4.as_deref().unwrap(), &evil, now)
            .await
            .unwrap();
    }
    t.db.apply_event(wa, rows[5].4.as_deref().unwrap(), &DeliveryEvent::Read, now)
        .await
        .unwrap();
    assert_eq!(t.db.finish_done(now).await.unwrap(), vec![b]);
    let staff = sign_in(&app, "staff@herald.test").await;

    // Failed only: the three, with their reason.
    let r = send(
        &app,
        get(&format!("/broadcasts/{b}?status=failed"), Some(&staff)),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        r.body.matches("data-state=\"failed\"").count(),
        3,
        "{}",
        r.body
    );
    assert!(r.body.contains("HYPERLINK"));
    assert!(r.body.contains("Retry failed (3)"));
    let r = send(
        &app,
        get(&format!("/broadcasts/{b}?status=read"), Some(&staff)),
    )
    .await;
    assert_eq!(r.body.matches("<tr data-delivery=").count(), 1);
    // Everyone: 50 a page, then the next page from the cursor, and back.
    let r = send(&app, get(&format!("/broadcasts/{b}"), Some(&staff))).await;
    assert_eq!(r.body.matches("<tr data-delivery=").count(), 50);
    let last = rows[49].0;
    assert!(
        r.body
            .contains(&format!("/broadcasts/{b}?after={last}#recipients")),
        "a next link"
    );
    let r = send(
        &app,
        get(&format!("/broadcasts/{b}?after={last}"), Some(&staff)),
    )
    .await;
    assert!(
        r.body
            .contains(&format!("data-delivery=\"{}\"", rows[50].0))
    );
    assert!(
        !r.body
            .contains(&format!("data-delivery=\"{}\"", rows[49].0))
    );
    assert!(
        r.body
            .contains(&format!("/broadcasts/{b}?before={}#recipients", rows[50].0))
    );
    let r = send(
        &app,
        get(
            &format!("/broadcasts/{b}?before={}", rows[50].0),
            Some(&staff),
        ),
    )
    .await;
    assert_eq!(r.body.matches("<tr data-delivery=").count(), 50);
    assert!(r.body.contains(&format!("data-delivery=\"{}\"", rows[0].0)));
    // Filters combine: failed on another channel is nobody.
    let r = send(
        &app,
        get(
            &format!("/broadcasts/{b}?status=failed&channel={}", wa + 1000),
            Some(&staff),
        ),
    )
    .await;
    assert!(r.body.contains("No recipients match."));

    // The CSV of the filtered table, formulas defused; signed-in people only.
    let r = send(
        &app,
        get(
            &format!("/broadcasts/{b}/recipients.csv?status=failed"),
            None,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = send(
        &app,
        get(
            &format!("/broadcasts/{b}/recipients.csv?status=failed"),
            Some(&staff),
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let mut reader = csv::Reader::from_reader(r.body.as_bytes());
    assert_eq!(reader.headers().unwrap().iter().next(), Some("customer"));
    let lines: Vec<csv::StringRecord> = reader.records().map(|l| l.unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(&lines[0][1], "Failed");
    assert!(lines[0][2].starts_with("'=HYPERLINK"), "{:?}", &lines[0][2]);
    let r = send(
        &app,
        get(&format!("/broadcasts/{b}/recipients.csv"), Some(&staff)),
    )
    .await;
    assert_eq!(
        csv::Reader::from_reader(r.body.as_bytes())
            .records()
            .count(),
        rows.len()
    );

    // Retry failed: not for managers; staff queue exactly the three again, as a new round.
    let manager = sign_in(&app, "manager@herald.test").await;
    let r = send(
        &app,
        post(
            "/api/broadcasts/retry-failed",
            &format!("id={b}"),
            Some(&manager),
            false,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let before = t.db.counters(b).await.unwrap();
    let r = send(
        &app,
        post(
            "/api/broadcasts/retry-failed",
            &format!("id={b}"),
            Some(&staff),
            false,
        ),
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "3"));
    let after = t.db.counters(b).await.unwrap();
    assert_eq!(after[5], 0, "no longer failed");
    assert_eq!(after[1], before[1], "the received ones are untouched");
    let states = t.db.deliveries_of(b).await.unwrap();
    assert_eq!(states.iter().filter(|r| r.3 == "pending").count(), 3);
    assert_eq!(states[5].3, "read");
    assert_eq!(t.db.broadcast(b).await.unwrap().status, "sending");
    assert_eq!(
        t.db.counters_by_channel(b).await.unwrap(),
        t.db.recount_by_channel(b).await.unwrap()
    );
    // Sending again: not finished, so no second retry.
    let r = send(
        &app,
        post(
            "/api/broadcasts/retry-failed",
            &format!("id={b}"),
            Some(&staff),
            false,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    t.cleanup().await;
}

#[tokio::test]
async fn the_chat_shows_new_messages_live_takes_replies_and_assignments() {
    use herald::server::db::NewChannel;
    let (app, t) = app().await;
    let now = chrono::Utc::now();
    let channel =
        t.db.insert_channel(
            &NewChannel {
                kind: "sandbox".into(),
                name: "Chat sandbox".into(),
                config_json: r#"{"inbound_token":"chat-token"}"#.into(),
                rate_per_sec: 10,
            },
            now,
        )
        .await
        .unwrap();
    let ann = t.db.recipient(1).await.unwrap().unwrap();
    let phone = ann.phone.clone().unwrap();
    let inbound = |text: &str, id: &str| {
        Request::post(format!("/webhooks/sandbox/{channel}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-herald-token", "chat-token")
            .body(Body::from(
                serde_json::json!({ "from": phone, "text": text, "id": id }).to_string(),
            ))
            .unwrap()
    };
    assert_eq!(
        send(&app, inbound("Is the sale still on?", "in-1"))
            .await
            .status,
        StatusCode::OK
    );
    let staff = sign_in(&app, "staff@herald.test").await;

    // The page: the message, marked new, and where a reply would go; the mark goes once seen.
    let r = send(&app, get("/customers/1/chat", Some(&staff))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("Is the sale still on?"));
    assert!(r.body.contains("aria-label=\"New messages\""));
    assert!(r.body.contains("Reply on Chat sandbox"));
    let r = send(&app, get("/customers/1/chat", Some(&staff))).await;
    assert!(!r.body.contains("aria-label=\"New messages\""), "seen now");

    // The event stream sends what comes in after the given message, as it arrives.
    let last = t.db.chat_messages(1, 0).await.unwrap().last().unwrap().id;
    let res = app
        .clone()
        .oneshot(get(
            &format!("/customers/1/events?after={last}"),
            Some(&staff),
        ))
        .await
        .unwrap();
    assert_eq!(res.headers()[header::CONTENT_TYPE], "text/event-stream");
    let mut body = res.into_body();
    // The stream reads what is there (nothing new) and waits ...
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(300), body.frame())
            .await
            .is_err(),
        "nothing new yet"
    );
    // ... and the message wakes it at once (it looks on its own only every 5 s).
    assert_eq!(
        send(&app, inbound("Also, do you ship to Oslo?", "in-2"))
            .await
            .status,
        StatusCode::OK
    );
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
    while !seen.contains("Oslo") {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("the event within 1 s")
            .unwrap()
            .unwrap();
        if let Ok(data) = frame.into_data() {
            seen.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert!(seen.contains("event: message"), "{seen}");
    assert!(
        seen.contains("class=\"msg in\""),
        "the line as HTML: {seen}"
    );
    assert!(!seen.contains("sale still on"), "only what came after");
    let r = send(&app, get("/customers/1/events", None)).await;
    assert_ne!(r.status, StatusCode::OK, "signed-in people only");

    // Replies go out on the channel they wrote on, through its adapter, into the conversation.
    let r = send(
        &app,
        post(
            "/api/chat/reply",
            "customer_id=1&body=Yes%2C+until+Sunday!",
            Some(&staff),
            false,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let m: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let html = m["html"].as_str().unwrap();
    assert!(
        html.contains("Yes, until Sunday!") && html.contains("Chat sandbox"),
        "{html}"
    );
    assert!(m["key"].as_str().unwrap().starts_with('m'));
    let convo = t.db.conversation(1).await.unwrap();
    let out = convo.last().unwrap();
    assert_eq!(
        (out.0.as_str(), out.1.as_str(), out.2),
        ("out", "Yes, until Sunday!", Some(channel))
    );
    assert!(
        out.3.as_deref().unwrap().starts_with("sbx-"),
        "the provider's id"
    );
    let r = send(
        &app,
        post(
            "/api/chat/reply",
            "customer_id=1&body=+",
            Some(&staff),
            false,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let manager = sign_in(&app, "manager@herald.test").await;
    let r = send(
        &app,
        post(
            "/api/chat/reply",
            "customer_id=1&body=Hi",
            Some(&manager),
            false,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Someone who never wrote and got no broadcast: no channel to answer on.
    let mut quiet = 2;
    while t.db.reply_channel(quiet).await.unwrap().is_some() {
        quiet += 1;
    }
    let r = send(
        &app,
        post(
            "/api/chat/reply",
            &format!("customer_id={quiet}&body=Hi"),
            Some(&staff),
            false,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    // Without JavaScript a refused reply comes back with the text kept.
    let r = send(
        &app,
        post(
            "/api/chat/reply",
            &format!("customer_id={quiet}&body=Kept+text"),
            Some(&staff),
            true,
        ),
    )
    .await;
    let to = r.headers[header::LOCATION].to_str().unwrap();
    assert!(
        to.starts_with(&format!("/customers/{quiet}/chat?error="))
            && to.contains("draft=Kept%20text"),
        "{to}"
    );

    // Assign to me.
    let r = send(
        &app,
        post("/api/chat/assign", "customer_id=1", Some(&staff), false),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = send(&app, get("/customers/1/chat", Some(&staff))).await;
    assert!(r.body.contains("Assigned to you"));
    assert!(!r.body.contains(">Assign to me<"));
    t.cleanup().await;
}

#[tokio::test]
async fn the_sandbox_webhook_is_authenticated_refuses_bad_input_and_applies_stop() {
    let (app, t) = app().await;
    let channel =
        t.db.insert_channel(
            &herald::server::db::NewChannel {
                kind: "sandbox".into(),
                name: "Hook test".into(),
                config_json: r#"{"inbound_token":"s3cret-token"}"#.into(),
                rate_per_sec: 10,
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let path = format!("/webhooks/sandbox/{channel}");
    let hook = |token: &str, body: Vec<u8>| {
        Request::post(&path)
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-herald-token", token)
            .body(Body::from(body))
            .unwrap()
    };
    let stop = br#"{"from": "+15551000000", "text": "STOP", "id": "sb-1"}"#.to_vec();
    assert_eq!(
        send(&app, hook("wrong", stop.clone())).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = send(&app, hook("s3cret-token", b"{\"from\": 1".to_vec())).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(r.body.contains("expected JSON"), "{}", r.body);
    let big = format!(
        r#"{{"from": "+15551000000", "text": "{}"}}"#,
        "x".repeat(100_000)
    );
    assert_eq!(
        send(&app, hook("s3cret-token", big.into_bytes()))
            .await
            .status,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let stranger = br#"{"from": "+19999999999", "text": "STOP"}"#.to_vec();
    assert_eq!(
        send(&app, hook("s3cret-token", stranger)).await.status,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let r = send(&app, hook("s3cret-token", stop)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["opted_out"], true);
    let customer = v["customer_id"].as_i64().unwrap();
    let outs = t.db.channel_opt_outs(customer).await.unwrap();
    assert_eq!(
        outs.iter().map(|o| o.0.as_str()).collect::<Vec<_>>(),
        ["sandbox"]
    );
    // The seeded sandbox channel's token is its own: this one's does not open it.
    let other = Request::post(format!("/webhooks/sandbox/{}", channel - 1))
        .header("x-herald-token", "s3cret-token")
        .body(Body::from(r#"{"from":"+15551000000","text":"hi"}"#))
        .unwrap();
    assert_ne!(send(&app, other).await.status, StatusCode::OK);
    t.cleanup().await;
}

/// A multipart body with one `file` field.
fn multipart_file(path: &str, name: &str, data: &[u8], cookie: &str) -> Request<Body> {
    let mut body = format!(
        "--XB\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(b"\r\n--XB--\r\n");
    Request::post(path)
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=XB")
        .header(header::COOKIE, cookie)
        .body(Body::from(body))
        .unwrap()
}

#[tokio::test]
async fn attachments_are_checked_by_content_and_served_only_to_signed_in_people() {
    let (app, t) = app().await;
    let staff = sign_in(&app, "staff@herald.test").await;
    let manager = sign_in(&app, "manager@herald.test").await;
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01";
    let exe = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xFF\xFF\0\0";
    let files = || {
        std::fs::read_dir(t.dir().join("attachments"))
            .map(|d| d.count())
            .unwrap_or(0)
    };

    let r = send(
        &app,
        multipart_file("/attachments", "logo.png", png, &manager),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&app, multipart_file("/attachments", "cat.png", exe, &staff)).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(r.body.contains("its content is EXE"), "{}", r.body);
    assert_eq!(files(), 0, "a refused upload leaves no file behind");
    let r = send(
        &app,
        multipart_file("/attachments", "../../evil.sh", b"#!/bin/sh", &staff),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let r = send(
        &app,
        multipart_file("/attachments", "../../logo.png", png, &staff),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["name"], "logo.png");
    assert_eq!(v["mime"], "image/png");
    let url = v["url"].as_str().unwrap().to_string();
    assert_eq!(files(), 1);

    // Served to any signed-in role with its type and nosniff; signed out, the sign-in page.
    let r = send(&app, get(&url, Some(&manager))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_TYPE], "image/png");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    assert!(
        r.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("inline")
    );
    let r = send(&app, get(&url, None)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        send(&app, get("/attachments/..%2F..%2Fherald.db", Some(&staff)))
            .await
            .status,
        StatusCode::NOT_FOUND
    );

    let pdf = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n";
    let r = send(
        &app,
        multipart_file("/attachments", "menu.pdf", pdf, &staff),
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let r = send(&app, get(v["url"].as_str().unwrap(), Some(&staff))).await;
    assert!(
        r.headers[header::CONTENT_DISPOSITION]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    t.cleanup().await;
}

#[tokio::test]
async fn the_wizard_saves_each_step_creates_once_and_schedules() {
    let (app, t) = app().await;
    let staff = sign_in(&app, "staff@herald.test").await;
    let manager = sign_in(&app, "manager@herald.test").await;
    let before = t.db.count_broadcasts().await.unwrap();
    let vip = t.db.ensure_tag("VIP").await.unwrap();
    let channel = t.db.enabled_channels().await.unwrap()[0].0;
    let location = |r: &Reply| r.headers[header::LOCATION].to_str().unwrap().to_string();

    let step1 = "step=1&key=k0123456789abcdef0123&name=Winter%20sale&body=Hi%20%7B%7Bfirst_name%7D%7D%20%E2%9D%84&send_at=2099-12-24T09%3A30&go=next";
    let r = send(
        &app,
        post("/broadcasts/wizard", step1, Some(&manager), true),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&app, post("/broadcasts/wizard", step1, Some(&staff), true)).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let to = location(&r);
    assert!(to.ends_with("/edit?step=2"), "{to}");
    let id: i64 = to.split('/').nth(2).unwrap().parse().unwrap();
    // The same first save again (a double click): the same broadcast, no second one.
    let r = send(&app, post("/broadcasts/wizard", step1, Some(&staff), true)).await;
    assert_eq!(location(&r), to);
    assert_eq!(t.db.count_broadcasts().await.unwrap(), before + 1);
    assert_eq!(t.db.broadcast(id).await.unwrap().status, "draft");

    // Step 2 shows the live count; choosing "tag is VIP" narrows it.
    let page = send(&app, get(&to, Some(&staff))).await.body;
    assert!(page.contains("customers match"), "{page}");
    let form =
        format!("step=2&id={id}&match=all&cond_0_field=tag&cond_0_op=is&cond_0_id={vip}&go=next");
    let r = send(&app, post("/broadcasts/wizard", &form, Some(&staff), true)).await;
    assert!(location(&r).ends_with("/edit?step=3"));
    let page = send(&app, get(&location(&r), Some(&staff))).await.body;
    let vips =
        t.db.audience_breakdown(&t.db.broadcast_for_edit(id).await.unwrap().0.audience, &[])
            .await
            .unwrap()
            .unreachable;
    assert!(
        vips > 0 && page.contains(&format!("of {vips} matching customers")),
        "{page}"
    );

    // Step 3 without a channel: refused with the reason, still a draft.
    let r = send(
        &app,
        post(
            "/broadcasts/wizard",
            &format!("step=3&id={id}&channels_shown=1&go=schedule"),
            Some(&staff),
            true,
        ),
    )
    .await;
    assert!(
        location(&r).contains("step=3&error=Choose%20at%20least%20one%20channel"),
        "{}",
        location(&r)
    );
    assert_eq!(t.db.broadcast(id).await.unwrap().status, "draft");
    let form =
        format!("step=3&id={id}&channels_shown=1&channel={channel}&prio_{channel}=1&go=schedule");
    let r = send(&app, post("/broadcasts/wizard", &form, Some(&staff), true)).await;
    assert!(location(&r).starts_with("/?notice="), "{}", location(&r));
    let b = t.db.broadcast(id).await.unwrap();
    assert_eq!(b.status, "scheduled");
    let (c, _, _) = t.db.broadcast_for_edit(id).await.unwrap();
    assert_eq!(c.channel_ids, vec![channel]);
    assert!(
        c.audience
            .mentions(herald::model::audience::Field::Tag, vip)
    );
    assert_eq!(c.body, "Hi {{first_name}} ❄");

    // A time in the past is refused at scheduling and sends the person back to step 1.
    let r = send(
        &app,
        post(
            "/broadcasts/wizard",
            &format!("step=1&id={id}&send_at=2020-01-01T10%3A00&go=next"),
            Some(&staff),
            true,
        ),
    )
    .await;
    assert!(location(&r).ends_with("step=2"));
    let r = send(&app, post("/broadcasts/wizard", &form, Some(&staff), true)).await;
    assert!(
        location(&r).contains("step=1&error=That%20time%20has%20passed"),
        "{}",
        location(&r)
    );
    t.cleanup().await;
}

fn post_json(path: &str, json: &str, cookie: &str) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json")
        .header(header::COOKIE, cookie)
        .body(Body::from(json.to_string()))
        .unwrap()
}

#[tokio::test]
async fn the_wizard_keeps_listed_files_reads_condition_kinds_and_counts_live() {
    let (app, t) = app().await;
    let staff = sign_in(&app, "staff@herald.test").await;
    let manager = sign_in(&app, "manager@herald.test").await;
    let location = |r: &Reply| r.headers[header::LOCATION].to_str().unwrap().to_string();

    // A file uploaded on its own (the drag-and-drop path) joins the draft when the step's form
    // lists it; ids that name no upload are ignored; a file no longer listed is dropped.
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01";
    let r = send(&app, multipart_file("/attachments", "a.png", png, &staff)).await;
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let file = v["id"].as_str().unwrap().to_string();
    let step1 = format!(
        "step=1&key=k0123456789abcdef9999&name=Files&body=Hi&attachments_shown=1&attachment={file}&attachment=0123456789abcdef0123456789abcdef&go=stay"
    );
    let r = send(&app, post("/broadcasts/wizard", &step1, Some(&staff), true)).await;
    let id: i64 = location(&r).split('/').nth(2).unwrap().parse().unwrap();
    let (c, _, _) = t.db.broadcast_for_edit(id).await.unwrap();
    assert_eq!(
        c.attachments
            .iter()
            .map(|a| (a.id.as_str(), a.name.as_str(), a.size))
            .collect::<Vec<_>>(),
        vec![(file.as_str(), "a.png", png.len() as u64)]
    );
    let page = send(&app, get(&location(&r), Some(&staff))).await.body;
    assert!(
        page.contains(&format!("name=\"attachment\" value=\"{file}\"")),
        "{page}"
    );
    let r = send(
        &app,
        post(
            "/broadcasts/wizard",
            &format!("step=1&id={id}&name=Files&body=Hi&attachments_shown=1&go=stay"),
            Some(&staff),
            true,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        t.db.broadcast_for_edit(id)
            .await
            .unwrap()
            .0
            .attachments
            .is_empty()
    );

    // An unknown placeholder keeps the draft but does not pass step 1.
    let r = send(
        &app,
        post(
            "/broadcasts/wizard",
            &format!("step=1&id={id}&name=Files&body=Hi%20%7B%7Bnick%7D%7D&go=next"),
            Some(&staff),
            true,
        ),
    )
    .await;
    assert!(
        location(&r).contains("step=1&error=Unknown%20placeholder"),
        "{}",
        location(&r)
    );
    assert_eq!(
        t.db.broadcast_for_edit(id).await.unwrap().0.body,
        "Hi {{nick}}"
    );

    // The value names its kind: a robot group picked while the kind menu says "Tag" is a
    // robot-group condition. Row keys need not start at 0 or be consecutive.
    let group = t.db.ensure_robot_group("Onboarding").await.unwrap();
    let form = format!(
        "step=2&id={id}&match=any&cond_7_field=tag&cond_7_op=is_not&cond_7_id=robot_group%3A{group}&cond_9_field=tag&cond_9_op=is&cond_9_id=&go=stay"
    );
    send(&app, post("/broadcasts/wizard", &form, Some(&staff), true)).await;
    let rule = t.db.broadcast_for_edit(id).await.unwrap().0.audience;
    assert_eq!(rule.matching, herald::model::audience::Match::Any);
    assert_eq!(
        rule.conditions,
        vec![herald::model::audience::Condition {
            field: herald::model::audience::Field::RobotGroup,
            op: herald::model::audience::Op::IsNot,
            id: group
        }]
    );

    // The live count: editors only, and the same number the wizard's own count gives.
    let vip = t.db.ensure_tag("VIP").await.unwrap();
    let json = format!(
        r#"{{"rule":{{"match":"all","conditions":[{{"field":"tag","op":"is","id":{vip}}}]}}}}"#
    );
    let r = send(
        &app,
        post_json("/api/broadcasts/audience-preview", &json, &manager),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = send(
        &app,
        post_json("/api/broadcasts/audience-preview", &json, &staff),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let rule: herald::model::audience::AudienceRule =
        serde_json::from_str(&json[8..json.len() - 1]).unwrap();
    let expected =
        t.db.audience_breakdown(&rule, &[])
            .await
            .unwrap()
            .unreachable;
    assert!(expected > 0);
    assert_eq!(v["matching"], expected);
    let sample = v["sample"].as_array().unwrap().len();
    assert!((1..=5).contains(&sample), "{sample} names");
    let r = send(
        &app,
        post_json("/api/broadcasts/audience-preview", "{nope", &staff),
    )
    .await;
    assert!(r.status.is_client_error() || r.status.is_server_error());
    assert_ne!(r.status, StatusCode::OK);
    t.cleanup().await;
}

#[tokio::test]
async fn a_test_send_goes_to_one_customer_through_the_channel_and_into_their_conversation() {
    let (app, t) = app().await;
    let staff = sign_in(&app, "staff@herald.test").await;
    let manager = sign_in(&app, "manager@herald.test").await;
    let channel = t.db.enabled_channels().await.unwrap()[0].0;
    let location = |r: &Reply| r.headers[header::LOCATION].to_str().unwrap().to_string();
    let ann = t.db.recipient(1).await.unwrap().unwrap();
    let phone = ann.phone.clone().unwrap();
    let step1 = "step=1&key=k0123456789abcdef7777&name=Trial&body=Hi%20%7B%7Bfirst_name%7Cthere%7D%7D!&go=next";
    let r = send(&app, post("/broadcasts/wizard", step1, Some(&staff), true)).await;
    let id: i64 = location(&r).split('/').nth(2).unwrap().parse().unwrap();
    let test = |who: &str, go: &str| {
        format!(
            "step=3&id={id}&channels_shown=1&channel={channel}&prio_{channel}=1&test_to={}&go={go}",
            herald::model::list_query::encode_component(who)
        )
    };

    let r = send(
        &app,
        post(
            "/broadcasts/wizard",
            &test(&phone, "test"),
            Some(&manager),
            true,
        ),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(t.db.conversation(ann.id).await.unwrap().is_empty());

    let r = send(
        &app,
        post(
            "/broadcasts/wizard",
            &test(&phone, "test"),
            Some(&staff),
            true,
        ),
    )
    .await;
    let to = location(&r);
    assert!(
        to.starts_with(&format!(
            "/broadcasts/{id}/edit?step=3&notice=Test%20sent%20to"
        )),
        "{to}"
    );
    let page = send(&app, get(&to, Some(&staff))).await.body;
    assert!(
        page.contains(&format!("Test sent to {}", ann.name)),
        "{page}"
    );
    assert!(
        page.contains(&format!("value=\"{phone}\"")),
        "what was typed is kept"
    );
    let first = herald::model::personalize::first_name(&ann.name);
    let convo = t.db.conversation(ann.id).await.unwrap();
    assert_eq!(convo.len(), 1);
    assert_eq!(convo[0].0, "out");
    assert_eq!(convo[0].1, format!("Hi {first}!"));
    assert_eq!(convo[0].2, Some(channel));
    assert!(convo[0].3.as_deref().unwrap().starts_with("sbx-"));
    // The broadcast itself is untouched: still a draft, now with its channel saved.
    let b = t.db.broadcast_for_edit(id).await.unwrap();
    assert_eq!(b.1, "draft");
    assert_eq!(b.0.channel_ids, vec![channel]);

    // Nobody by that name; opted out on the channel; no customer with the staff email.
    let r = send(
        &app,
        post(
            "/broadcasts/wizard",
            &test("Nobody Atall", "test"),
            Some(&staff),
            true,
        ),
    )
    .await;
    assert!(
        location(&r).contains("&error=No%20customer%20is%20called"),
        "{}",
        location(&r)
    );
    let bo = t.db.recipient(2).await.unwrap().unwrap();
    t.db.record_inbound(channel, bo.id, "STOP", None, chrono::Utc::now())
        .await
        .unwrap();
    let before = t.db.conversation(bo.id).await.unwrap().len();
    let r = send(
        &app,
        post(
            "/broadcasts/wizard",
            &test(bo.phone.as_deref().unwrap(), "test"),
            Some(&staff),
            true,
        ),
    )
    .await;
    assert!(
        location(&r).contains("cannot%20be%20reached"),
        "{}",
        location(&r)
    );
    assert_eq!(
        t.db.conversation(bo.id).await.unwrap().len(),
        before,
        "nothing sent"
    );
    let r = send(
        &app,
        post(
            "/broadcasts/wizard",
            &test("", "test_me"),
            Some(&staff),
            true,
        ),
    )
    .await;
    assert!(
        location(&r).contains("No%20customer%20has%20your%20email"),
        "{}",
        location(&r)
    );
    t.cleanup().await;
}

#[tokio::test]
async fn staff_cancel_a_scheduled_broadcast_for_good_and_finished_ones_stay() {
    let (app, t) = app().await;
    let staff = sign_in(&app, "staff@herald.test").await;
    let manager = sign_in(&app, "manager@herald.test").await;
    let page =
        t.db.list_broadcasts(&herald::model::ListQuery {
            search: "Cyber Monday".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let id = page.rows[0].id;
    assert_eq!(page.rows[0].status, "scheduled");
    let form = format!("id={id}");
    let r = send(
        &app,
        post("/api/broadcasts/cancel", &form, Some(&manager), false),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // The edit page offers it; posting it as a plain form lands on the list with a notice.
    let edit = send(&app, get(&format!("/broadcasts/{id}/edit"), Some(&staff)))
        .await
        .body;
    assert!(edit.contains("Cancel broadcast"), "{edit}");
    let r = send(
        &app,
        post("/api/broadcasts/cancel", &form, Some(&staff), true),
    )
    .await;
    assert!(r.status.is_redirection(), "{}", r.status);
    let to = r.headers[header::LOCATION].to_str().unwrap().to_string();
    assert!(to.starts_with("/?notice=Cancelled"), "{to}");
    assert_eq!(t.db.broadcast(id).await.unwrap().status, "cancelled");
    let r = send(
        &app,
        post("/api/broadcasts/cancel", &form, Some(&staff), false),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(
        r.body.contains("cancelled broadcast cannot be cancelled"),
        "{}",
        r.body
    );
    let edit = send(&app, get(&format!("/broadcasts/{id}/edit"), Some(&staff)))
        .await
        .body;
    assert!(edit.contains("can no longer be edited") && !edit.contains("Cancel broadcast"));
    t.cleanup().await;
}

#[tokio::test]
async fn a_missed_schedule_is_shown_as_such_and_staff_can_send_it_now() {
    use herald::model::compose::{Compose, Intent};
    let (app, t) = app().await;
    let staff = sign_in(&app, "staff@herald.test").await;
    let manager = sign_in(&app, "manager@herald.test").await;
    let channel = t.db.enabled_channels().await.unwrap()[0].0;
    let now = chrono::Utc::now();
    let two_hours_ago = now - chrono::Duration::hours(2);
    let v = Compose {
        name: "Overnight notice".into(),
        body: "We were closed".into(),
        channel_ids: vec![channel],
        scheduled_at: Some(now - chrono::Duration::hours(1)),
        ..Default::default()
    }
    .validate(Intent::Schedule, two_hours_ago)
    .unwrap();
    let id =
        t.db.create_broadcast(&v, 2, "missed-key-000000001", two_hours_ago)
            .await
            .unwrap()
            .0;
    // Herald comes back an hour after the time: past the 15-minute grace.
    assert_eq!(
        t.db.fire(id, now, chrono::Duration::minutes(15))
            .await
            .unwrap(),
        herald::server::db::Fired::Missed
    );
    let list = send(&app, get("/?q=Overnight", Some(&staff))).await.body;
    assert!(list.contains("Missed — send now?"), "{list}");
    assert!(list.contains("Send now: Overnight notice"), "{list}");
    let form = format!("id={id}");
    let r = send(
        &app,
        post("/api/broadcasts/send-missed", &form, Some(&manager), false),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &app,
        post("/api/broadcasts/send-missed", &form, Some(&staff), true),
    )
    .await;
    assert!(r.status.is_redirection(), "{}", r.status);
    let b = t.db.broadcast(id).await.unwrap();
    assert!(b.missed_at.is_none());
    assert!(b.scheduled_at.unwrap() >= now, "due now, not an hour ago");
    // Due now: it fires (within the grace period).
    assert!(matches!(
        t.db.fire(id, chrono::Utc::now(), chrono::Duration::minutes(15))
            .await
            .unwrap(),
        herald::server::db::Fired::Started { .. }
    ));
    let r = send(
        &app,
        post("/api/broadcasts/send-missed", &form, Some(&staff), false),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    t.cleanup().await;
}

#[tokio::test]
async fn admins_connect_and_manage_channels_and_secrets_never_come_back() {
    let (app, t) = app().await;
    let admin = sign_in(&app, "admin@herald.test").await;
    let staff = sign_in(&app, "staff@herald.test").await;
    let location = |r: &Reply| r.headers[header::LOCATION].to_str().unwrap().to_string();
    let page = send(&app, get("/channels", Some(&staff))).await.body;
    assert!(
        page.contains("Admins connect and manage channels."),
        "{page}"
    );
    let create = "action=create&kind=telegram&name=Support%20bot&rate=&cfg_telegram_bot_token=123456%3ASECRETTOKENabcd&cfg_telegram_webhook_secret=whsecret-long-value&cfg_whatsapp_base_url=https%3A%2F%2Fwrong.example";
    let r = send(&app, post("/channels", create, Some(&staff), true)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let r = send(&app, post("/channels", create, Some(&admin), true)).await;
    assert!(
        location(&r).contains("notice=Connected"),
        "{}",
        location(&r)
    );
    let herald::server::db::ChannelRecord {
        id,
        kind,
        name,
        config,
        enabled,
        rate_per_sec: rate,
    } =
        t.db.channels()
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.name == "Support bot")
            .unwrap();
    assert_eq!(
        (kind.as_str(), name.as_str(), enabled, rate),
        ("telegram", "Support bot", true, 30)
    );
    let v: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(v["bot_token"], "123456:SECRETTOKENabcd");
    assert_eq!(
        v["base_url"], "https://api.telegram.org",
        "the other kinds' fields are ignored"
    );

    let page = send(&app, get("/channels", Some(&admin))).await.body;
    assert!(
        !page.contains("SECRETTOKEN") && !page.contains("whsecret"),
        "secrets leaked"
    );
    assert!(page.contains("••••abcd"), "{page}");
    assert!(page.contains(&format!("/webhooks/telegram/{id}")), "{page}");

    // An empty secret keeps the stored one; the rate and name change.
    let update = format!(
        "action=update&id={id}&name=Support%20bot%202&rate=5&cfg_bot_token=&cfg_webhook_secret=&cfg_base_url="
    );
    let r = send(&app, post("/channels", &update, Some(&admin), true)).await;
    assert!(location(&r).contains("notice=Saved"), "{}", location(&r));
    let c = t.db.channel(id).await.unwrap().unwrap();
    assert_eq!((c.name.as_str(), c.rate_per_sec), ("Support bot 2", 5));
    assert!(c.config.contains("SECRETTOKENabcd"));

    // Disabled: the wizard no longer offers it.
    let r = send(
        &app,
        post(
            "/channels",
            &format!("action=toggle&id={id}"),
            Some(&admin),
            true,
        ),
    )
    .await;
    assert!(location(&r).contains("Disabled"), "{}", location(&r));
    assert!(
        !t.db
            .enabled_channels()
            .await
            .unwrap()
            .iter()
            .any(|c| c.0 == id)
    );

    // Missing settings are named; nothing is stored.
    let before = t.db.channels().await.unwrap().len();
    let r = send(
        &app,
        post(
            "/channels",
            "action=create&kind=sms&name=Texts",
            Some(&admin),
            true,
        ),
    )
    .await;
    assert!(location(&r).contains("error=Fill%20in"), "{}", location(&r));
    assert_eq!(t.db.channels().await.unwrap().len(), before);

    // A test message through the sandbox reaches the customer's conversation.
    let sandbox = t.db.enabled_channels().await.unwrap()[0].0;
    let ann = t.db.recipient(1).await.unwrap().unwrap();
    let test = format!(
        "action=test&id={sandbox}&test_to={}",
        herald::model::list_query::encode_component(ann.phone.as_deref().unwrap())
    );
    let r = send(&app, post("/channels", &test, Some(&admin), true)).await;
    assert!(
        location(&r).contains("notice=Test%20sent%20to"),
        "{}",
        location(&r)
    );
    let convo = t.db.conversation(ann.id).await.unwrap();
    assert!(
        convo
            .last()
            .unwrap()
            .1
            .starts_with("Test message from Herald")
    );
    t.cleanup().await;
}

fn telegram_update(path: &str, secret: Option<&str>, json: &str) -> Request<Body> {
    let mut b = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(s) = secret {
        b = b.header("X-Telegram-Bot-Api-Secret-Token", s);
    }
    b.body(Body::from(json.to_string())).unwrap()
}

#[tokio::test]
async fn telegram_updates_are_authenticated_stored_once_and_mark_replies() {
    use herald::server::db::NewChannel;
    let (app, t) = app().await;
    let now = chrono::Utc::now();
    let channel = t
        .db
        .insert_channel(
            &NewChannel {
                kind: "telegram".into(),
                name: "Bot".into(),
                config_json: r#"{"bot_token":"1:x","webhook_secret":"tg-secret-1","base_url":"http://127.0.0.1:9"}"#.into(),
                rate_per_sec: 30,
            },
            now,
        )
        .await
        .unwrap();
    let mut customer = None;
    for id in 1..200 {
        let r = t.db.recipient(id).await.unwrap().unwrap();
        if r.telegram_chat_id.is_some() {
            customer = Some(r);
            break;
        }
    }
    let customer = customer.expect("a demo customer with a Telegram chat");
    let chat = customer.telegram_chat_id.clone().unwrap();
    let path = format!("/webhooks/telegram/{channel}");
    let update = |update_id: i64, message_id: i64, reply_to: Option<i64>| {
        let mut m = serde_json::json!({
            "message_id": message_id, "date": 0, "text": "Yes please!",
            "chat": { "id": chat.parse::<i64>().unwrap(), "type": "private" },
            "from": { "id": 1, "is_bot": false, "first_name": "Ann" },
        });
        if let Some(r) = reply_to {
            m["reply_to_message"] = serde_json::json!({ "message_id": r, "date": 0, "chat": { "id": 1, "type": "private" } });
        }
        serde_json::json!({ "update_id": update_id, "message": m }).to_string()
    };

    for secret in [None, Some("wrong")] {
        let r = send(&app, telegram_update(&path, secret, &update(1, 10, None))).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    }
    let r = send(&app, telegram_update(&path, Some("tg-secret-1"), "[1,2")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(t.db.conversation(customer.id).await.unwrap().is_empty());

    // A broadcast message on this channel, which the customer then answers by quoting it.
    let b = sent_on(
        &t,
        channel,
        customer.id,
        format!("{chat}:555"),
        |d| format!("x:{}", d),
        "telegram-key-0001",
    )
    .await;

    let r = send(
        &app,
        telegram_update(&path, Some("tg-secret-1"), &update(2, 11, Some(555))),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    assert!(v["replied"].is_i64(), "{v}");
    assert_eq!(t.db.counters(b).await.unwrap()[4], 1, "one reply counted");
    // Telegram sends the update again: nothing changes.
    let r = send(
        &app,
        telegram_update(&path, Some("tg-secret-1"), &update(2, 11, Some(555))),
    )
    .await;
    assert!(r.body.contains("repeat"), "{}", r.body);
    let convo = t.db.conversation(customer.id).await.unwrap();
    assert_eq!(convo.iter().filter(|m| m.0 == "in").count(), 1);
    assert_eq!(
        convo.last().unwrap().3.as_deref(),
        Some(format!("{chat}:11").as_str())
    );
    assert_eq!(t.db.counters(b).await.unwrap()[4], 1);
    // Unknown chats and updates without a message are acknowledged and dropped.
    let stranger = update(3, 12, None).replace(&chat, "999999999");
    let r = send(&app, telegram_update(&path, Some("tg-secret-1"), &stranger)).await;
    assert!(
        r.status == StatusCode::OK && r.body.contains("unknown chat"),
        "{}",
        r.body
    );
    let r = send(
        &app,
        telegram_update(
            &path,
            Some("tg-secret-1"),
            r#"{"update_id":4,"edited_message":{}}"#,
        ),
    )
    .await;
    assert!(r.status == StatusCode::OK && r.body.contains("ignored"));
    t.cleanup().await;
}

#[tokio::test]
async fn sms_callbacks_are_verified_move_deliveries_and_apply_stop() {
    use herald::server::channels::sms::signature;
    use herald::server::db::NewChannel;
    let (app, t) = app().await;
    let now = chrono::Utc::now();
    let channel = t
        .db
        .insert_channel(
            &NewChannel {
                kind: "sms".into(),
                name: "Texts".into(),
                config_json: r#"{"account_sid":"AC1","auth_token":"twilio-token","from":"+1555","base_url":"http://127.0.0.1:9"}"#.into(),
                rate_per_sec: 1,
            },
            now,
        )
        .await
        .unwrap();
    let path = format!("/webhooks/sms/{channel}");
    let url = format!("http://localhost{path}");
    let signed = |params: &[(&str, &str)], sig: Option<String>| {
        let owned: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let sig = sig.unwrap_or_else(|| signature("twilio-token", &url, &owned));
        Request::post(&path)
            .header(header::HOST, "localhost")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("X-Twilio-Signature", sig)
            .body(Body::from(body))
            .unwrap()
    };
    // One SMS delivery, accepted as SM1.
    let ann = t.db.recipient(1).await.unwrap().unwrap();
    let b = sent_on(
        &t,
        channel,
        ann.id,
        "SM1".to_string(),
        |d| format!("SMx{}", d),
        "sms-key-0000000001",
    )
    .await;

    let delivered = [("MessageSid", "SM1"), ("MessageStatus", "delivered")];
    let r = send(&app, signed(&delivered, Some("forged".into()))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(t.db.counters(b).await.unwrap()[2], 0);
    let r = send(&app, signed(&delivered, None)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(t.db.counters(b).await.unwrap()[2], 1, "delivered counted");
    let r = send(&app, signed(&delivered, None)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        t.db.counters(b).await.unwrap()[2],
        1,
        "a repeat changes nothing"
    );

    // The customer texts STOP: stored, replied, opted out of SMS.
    let phone = ann.phone.clone().unwrap();
    let stop = [
        ("MessageSid", "SMin1"),
        ("From", phone.as_str()),
        ("Body", "STOP"),
    ];
    let r = send(&app, signed(&stop, None)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.headers[header::CONTENT_TYPE], "text/xml");
    let after = t.db.recipient(ann.id).await.unwrap().unwrap();
    assert!(
        after
            .opted_out_kinds
            .contains(&herald::model::channel::ChannelKind::Sms)
    );
    assert_eq!(
        t.db.counters(b).await.unwrap()[4],
        1,
        "the answer counts as a reply"
    );
    let r = send(&app, signed(&[("Foo", "bar")], None)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    t.cleanup().await;
}

#[tokio::test]
async fn whatsapp_webhooks_verify_move_statuses_forward_and_attribute_replies() {
    use herald::server::channels::webhook::signature;
    use herald::server::db::NewChannel;
    let (app, t) = app().await;
    let now = chrono::Utc::now();
    let channel = t
        .db
        .insert_channel(
            &NewChannel {
                kind: "whatsapp".into(),
                name: "WA".into(),
                config_json: r#"{"phone_number_id":"1061","access_token":"EAAG","app_secret":"meta-app-secret","verify_token":"verify-me","base_url":"http://127.0.0.1:9"}"#.into(),
                rate_per_sec: 80,
            },
            now,
        )
        .await
        .unwrap();
    let path = format!("/webhooks/whatsapp/{channel}");
    // The handshake, with no session (providers have none).
    let r = send(
        &app,
        Request::get(format!(
            "{path}?hub.mode=subscribe&hub.verify_token=verify-me&hub.challenge=1158201444"
        ))
        .body(Body::empty())
        .unwrap(),
    )
    .await;
    assert_eq!((r.status, r.body.as_str()), (StatusCode::OK, "1158201444"));
    let r = send(
        &app,
        Request::get(format!(
            "{path}?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1"
        ))
        .body(Body::empty())
        .unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let mut customer = None;
    for id in 1..200 {
        let r = t.db.recipient(id).await.unwrap().unwrap();
        if r.whatsapp_id.is_some() {
            customer = Some(r);
            break;
        }
    }
    let customer = customer.expect("a demo customer on WhatsApp");
    let wa_id = customer.whatsapp_id.clone().unwrap();
    let b = sent_on(
        &t,
        channel,
        customer.id,
        "wamid.OURS".to_string(),
        |d| format!("wamid.{}", d),
        "wa-key-00000000001",
    )
    .await;

    let post_signed = |json: String, sig: Option<&str>| {
        let sig = sig
            .map(str::to_string)
            .unwrap_or_else(|| signature("meta-app-secret", json.as_bytes()));
        Request::post(&path)
            .header(header::CONTENT_TYPE, "application/json")
            .header("X-Hub-Signature-256", sig)
            .body(Body::from(json))
            .unwrap()
    };
    let statuses = |status: &str| {
        serde_json::json!({ "object": "whatsapp_business_account", "entry": [{ "id": "WABA", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp", "metadata": { "display_phone_number": "15550000", "phone_number_id": "1061" },
            "statuses": [{ "id": "wamid.OURS", "status": status, "timestamp": "1700000000", "recipient_id": wa_id }]
        }}]}]})
        .to_string()
    };
    let r = send(&app, post_signed(statuses("read"), Some("sha256=00"))).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let r = send(&app, post_signed(statuses("read"), None)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let read = t.db.counters(b).await.unwrap();
    assert_eq!((read[2], read[3]), (1, 1), "read counts as delivered too");
    // A late "delivered" after "read" changes nothing.
    send(&app, post_signed(statuses("delivered"), None)).await;
    assert_eq!(t.db.counters(b).await.unwrap(), read);

    // The customer answers, quoting our message: stored once, replied once.
    let inbound = serde_json::json!({ "object": "whatsapp_business_account", "entry": [{ "id": "WABA", "changes": [{ "field": "messages", "value": {
        "messaging_product": "whatsapp", "metadata": { "display_phone_number": "15550000", "phone_number_id": "1061" },
        "contacts": [{ "profile": { "name": "Ann" }, "wa_id": wa_id }],
        "messages": [{ "from": wa_id, "id": "wamid.THEIRS", "timestamp": "1700000100", "type": "text",
                       "text": { "body": "Count me in" }, "context": { "from": "15550000", "id": "wamid.OURS" } }]
    }}]}]})
    .to_string();
    for _ in 0..2 {
        let r = send(&app, post_signed(inbound.clone(), None)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }
    assert_eq!(t.db.counters(b).await.unwrap()[4], 1);
    let convo = t.db.conversation(customer.id).await.unwrap();
    assert_eq!(convo.iter().filter(|m| m.0 == "in").count(), 1);
    let r = send(&app, post_signed("[]".into(), None)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    t.cleanup().await;
}

/// A broadcast to everyone on `channel`, fired, every delivery accepted by the provider:
/// `customer`'s as `theirs`, the others as `other(delivery id)`. Returns the broadcast.
/// A WhatsApp channel "WA" and a broadcast sent on it to the demo audience there (provider
/// ids `wamid.<delivery id>`): (channel, broadcast).
async fn sent_on_whatsapp(t: &common::TestDb, key: &str) -> (i64, i64) {
    let wa =
        t.db.insert_channel(
            &herald::server::db::NewChannel {
                kind: "whatsapp".into(),
                name: "WA".into(),
                config_json: "{}".into(),
                rate_per_sec: 80,
            },
            chrono::Utc::now(),
        )
        .await
        .unwrap();
    let b = sent_on(t, wa, 0, String::new(), |d| format!("wamid.{d}"), key).await;
    (wa, b)
}

async fn sent_on(
    t: &common::TestDb,
    channel: i64,
    customer: i64,
    theirs: String,
    other: impl Fn(i64) -> String,
    key: &str,
) -> i64 {
    use herald::server::db::Outcome;
    let now = chrono::Utc::now();
    let v = herald::model::compose::Compose {
        name: format!("Sent on {channel}"),
        body: "News".into(),
        channel_ids: vec![channel],
        ..Default::default()
    }
    .validate(herald::model::compose::Intent::SendNow, now)
    .unwrap();
    let b = t.db.create_broadcast(&v, 2, key, now).await.unwrap().0;
    t.db.fire(b, now, chrono::Duration::minutes(15))
        .await
        .unwrap();
    let claimed =
        t.db.claim_broadcast(b, 100_000, now, now + chrono::Duration::seconds(60))
            .await
            .unwrap();
    let results: Vec<_> = claimed
        .into_iter()
        .map(|c| {
            let id = if c.customer_id == customer {
                theirs.clone()
            } else {
                other(c.id)
            };
            (
                c,
                Outcome::Sent {
                    provider_message_id: id,
                    replayed: false,
                },
            )
        })
        .collect();
    t.db.record(&results, now).await.unwrap();
    b
}
