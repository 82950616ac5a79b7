//! The HTTP surface through the real router (the app `startup::state` builds, as `main` does):
//! sign-in redirects, cookies, the server-side role check on every route, and each area's
//! forms. The helpers here (an app on a fresh seeded database, `sign_in`, `send`, `get`,
//! `post`, `location`) are shared by the area modules.

use crate::common;
use herald::model::{CustomerId, UserId};

mod accounts;
mod approval;
mod audit;
mod broadcasts;
mod channels;
mod customers;
mod hardening;
mod pages;
mod results;
mod roles;
mod security;
mod settings;
mod shared_files;
mod storage;
mod webhooks;

use std::path::Path;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use herald::model::Role;
use herald::model::channel::ChannelKind;
use herald::server::clock::SystemClock;
use herald::server::{AppState, config, http as serve, seed};
use http_body_util::BodyExt;
use tower::ServiceExt;

/// Where the test app's pages are (its public URL): what a browser sends as `Origin`.
pub const ORIGIN: &str = "http://herald.test";

/// The links the test app signs and accepts.
pub fn test_links() -> herald::server::customers::unsubscribe::Links {
    herald::server::customers::unsubscribe::Links::new("http://herald.test", b"test-link-key")
}

/// Herald as `main` builds it (`startup::state`, then `http::router`) on a fresh SQLite
/// database with the demo data.
pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub t: common::TestDb,
}

impl TestApp {
    pub async fn new() -> Self {
        Self::with_config(|_| {}).await
    }

    /// The app with its configuration changed by `change` first.
    pub async fn with_config(change: impl FnOnce(&mut config::Config)) -> Self {
        let (state, t) = app_state_with(change).await;
        TestApp {
            router: serve::router(state.clone()),
            state,
            t,
        }
    }

    /// Signs in as the demo user with `role`; the session cookie (`name=value`).
    pub async fn sign_in(&self, role: Role) -> String {
        let (email, _, _) = seed::DEMO_USERS
            .iter()
            .find(|(_, _, r)| *r == role)
            .expect("a demo user for every role");
        let form = format!("email={email}&password={}", seed::DEMO_PASSWORD);
        let r = self.send(post("/api/login", &form, None, false)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let cookie = r.headers[header::SET_COOKIE].to_str().unwrap().to_string();
        cookie.split(';').next().unwrap().to_string()
    }

    /// Another Herald on the same database, with its own memory (limits, caches) and `clock`.
    pub fn another_instance(&self, clock: Arc<dyn herald::server::clock::Clock>) -> Router {
        self.another_instance_with(clock, |_| {})
    }

    /// [`TestApp::another_instance`] with its configuration changed by `change`.
    pub fn another_instance_with(
        &self,
        clock: Arc<dyn herald::server::clock::Clock>,
        change: impl FnOnce(&mut config::Config),
    ) -> Router {
        let (leptos_options, mut config) = config::load(Path::new("Leptos.toml")).unwrap();
        config.data_dir = self.t.dir();
        change(&mut config);
        config.allow_private_endpoints = true;
        let parts = herald::server::startup::Parts {
            db: self.t.db.clone(),
            clock,
            links: test_links(),
        };
        serve::router(herald::server::startup::state(
            leptos_options,
            config,
            parts,
        ))
    }

    /// A plain HTML form post (as a browser sends it), signed in with `cookie` or not.
    pub async fn post_form(&self, path: &str, form: &str, cookie: Option<&str>) -> Reply {
        self.send(post(path, form, cookie, true)).await
    }

    /// `req` through the router, as the app's own pages send it: with a configured public
    /// URL, its origin (Herald accepts no other then).
    pub async fn send(&self, mut req: Request<Body>) -> Reply {
        if let Some(public) = &self.state.config.public_url
            && req.headers().contains_key(header::ORIGIN)
        {
            req.headers_mut()
                .insert(header::ORIGIN, public.parse().unwrap());
        }
        send(&self.router, req).await
    }

    pub async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        send(&self.router, get(path, cookie)).await
    }
}

/// The answer is a redirect (303) to a location starting with `prefix`; the location.
#[track_caller]
pub fn assert_redirect_to(r: &Reply, prefix: &str) -> String {
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let loc = r.headers[header::LOCATION].to_str().unwrap().to_string();
    assert!(
        loc.starts_with(prefix),
        "redirected to {loc}, not {prefix}…"
    );
    loc
}

pub async fn app() -> (Router, common::TestDb) {
    let (state, t) = app_state().await;
    (serve::router(state), t)
}

pub async fn app_state() -> (AppState, common::TestDb) {
    app_state_with(|_| {}).await
}

pub async fn app_state_with(
    change: impl FnOnce(&mut config::Config),
) -> (AppState, common::TestDb) {
    let t = common::sqlite().await;
    let clock = Arc::new(SystemClock);
    seed::load(&t.db, herald::server::clock::Clock::now(&*clock))
        .await
        .unwrap();
    let (leptos_options, mut config) = config::load(Path::new("Leptos.toml")).unwrap();
    // Uploads go to the test's own folder, not the checkout's data/.
    config.data_dir = t.dir();
    // The tests' providers are fakes on this machine.
    config.allow_private_endpoints = true;
    change(&mut config);
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

/// Herald's router, as `main` builds it, on `db` (either backend), served on a free loopback
/// port for providers that post webhooks over HTTP, that port its public address; the state
/// and the address (`127.0.0.1:port`).
pub async fn serve_state(db: &herald::server::db::Db) -> (AppState, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let public = format!("http://{addr}");
    let (leptos_options, mut config) = config::load(Path::new("Leptos.toml")).unwrap();
    config.data_dir = std::env::temp_dir();
    config.allow_private_endpoints = true;
    config.public_url = Some(public.clone());
    let state = herald::server::startup::state(
        leptos_options,
        config,
        herald::server::startup::Parts {
            db: db.clone(),
            clock: Arc::new(SystemClock),
            links: herald::server::customers::unsubscribe::Links::new(&public, b"test-link-key"),
        },
    );
    let router = serve::router(state.clone());
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    (state, addr.to_string())
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

/// One request through the router, with its whole body. A request that takes over a minute
/// fails the test, naming it, rather than hanging the suite.
pub async fn send(app: &Router, req: Request<Body>) -> Reply {
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

pub fn get(path: &str, cookie: Option<&str>) -> Request<Body> {
    let mut b = Request::get(path).header(header::ACCEPT, "text/html");
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::empty()).unwrap()
}

pub fn post(path: &str, form: &str, cookie: Option<&str>, accept_html: bool) -> Request<Body> {
    let mut b = Request::post(path)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ORIGIN, ORIGIN)
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
pub async fn sign_in(app: &Router, email: &str) -> String {
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

/// A multipart upload of `data` as the form's `file` field.
pub fn upload(data: &[u8], cookie: &str, declared_len: Option<u64>) -> Request<Body> {
    let mut body = b"--XBOUNDARYX\r\nContent-Disposition: form-data; name=\"file\"; filename=\"customers.csv\"\r\nContent-Type: text/csv\r\n\r\n".to_vec();
    body.extend_from_slice(data);
    body.extend_from_slice(b"\r\n--XBOUNDARYX--\r\n");
    Request::post("/customers/import")
        .header(header::ORIGIN, ORIGIN)
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

pub fn location(r: &Reply) -> String {
    let raw = r.headers[header::LOCATION].to_str().unwrap();
    form_urlencoded::parse(raw.split_once('?').map(|(_, q)| q).unwrap_or("").as_bytes())
        .find(|(k, _)| k == "error")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| raw.to_string())
}

/// A multipart body with one `file` field.
pub fn multipart_file(path: &str, name: &str, data: &[u8], cookie: &str) -> Request<Body> {
    let mut body = format!(
        "--XB\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(data);
    body.extend_from_slice(b"\r\n--XB--\r\n");
    Request::post(path)
        .header(header::ORIGIN, ORIGIN)
        .header(header::CONTENT_TYPE, "multipart/form-data; boundary=XB")
        .header(header::COOKIE, cookie)
        .body(Body::from(body))
        .unwrap()
}

pub fn post_json(path: &str, json: &str, cookie: &str) -> Request<Body> {
    Request::post(path)
        .header(header::ORIGIN, ORIGIN)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::ACCEPT, "application/json")
        .header(header::COOKIE, cookie)
        .body(Body::from(json.to_string()))
        .unwrap()
}

pub fn telegram_update(path: &str, secret: Option<&str>, json: &str) -> Request<Body> {
    let mut b = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(s) = secret {
        b = b.header("X-Telegram-Bot-Api-Secret-Token", s);
    }
    b.body(Body::from(json.to_string())).unwrap()
}

/// A WhatsApp channel "WA" (no provider behind it); its id.
pub async fn whatsapp_channel(t: &common::TestDb) -> i64 {
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
    .unwrap()
}

/// A broadcast to everyone on `channel`, fired, every delivery accepted by the provider:
/// `customer`'s as `theirs`, the others as `other(delivery id)`. Returns the broadcast.
/// A WhatsApp channel "WA" and a broadcast sent on it to the demo audience there (provider
/// ids `wamid.<delivery id>`): (channel, broadcast).
pub async fn sent_on_whatsapp(t: &common::TestDb, key: &str) -> (i64, i64) {
    let wa = whatsapp_channel(t).await;
    let b = sent_on(t, wa, 0, String::new(), |d| format!("wamid.{d}"), key).await;
    (wa, b)
}

pub async fn sent_on(
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
    let b =
        t.db.create_broadcast(&v, UserId(2), key, now)
            .await
            .unwrap()
            .0;
    t.db.fire(b, now, chrono::Duration::minutes(15))
        .await
        .unwrap();
    let claimed =
        t.db.claim_broadcast(b, 100_000, now, now + chrono::Duration::seconds(60), now)
            .await
            .unwrap();
    let results: Vec<_> = claimed
        .into_iter()
        .map(|c| {
            let id = if c.customer_id == CustomerId(customer) {
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
