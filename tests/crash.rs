//! The real binary against a fake receiver over HTTP (the webhook channel): killed with SIGKILL
//! again and again while it sends 20,000 deliveries, two instances sharing one PostgreSQL, and
//! a pause measured at the receiver. Each checks, at the receiver, that every recipient got
//! exactly one message (a repeat after a crash only as an idempotent replay).
#![cfg(feature = "ssr")]

mod common;

use std::collections::HashMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use chrono::Utc;
use herald::model::Role;
use herald::model::compose::{Compose, Intent};
use herald::server::db::{Db, NewChannel};

/// What the receiver saw of one idempotency key.
#[derive(Debug, Clone)]
struct Seen {
    to: String,
    times: u32,
}

#[derive(Default)]
struct Receiver {
    keys: Mutex<HashMap<String, Seen>>,
    /// When each request arrived.
    arrivals: Mutex<Vec<Instant>>,
}

async fn hook(
    State(r): State<Arc<Receiver>>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Json<serde_json::Value> {
    r.arrivals.lock().unwrap().push(Instant::now());
    let key = headers["idempotency-key"].to_str().unwrap().to_string();
    assert_eq!(body["id"], key.as_str(), "the body names the same key");
    let to = body["to"].as_str().unwrap().to_string();
    let mut keys = r.keys.lock().unwrap();
    let seen = keys.entry(key.clone()).or_insert(Seen { to, times: 0 });
    seen.times += 1;
    Json(serde_json::json!({ "id": format!("r-{key}"), "duplicate": seen.times > 1 }))
}

async fn receiver() -> (String, Arc<Receiver>) {
    let r = Arc::new(Receiver::default());
    let app = axum::Router::new()
        .route("/hook", post(hook))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), r)
}

/// `count` customers, a webhook channel to the receiver, and a broadcast to all of them due
/// now. Returns the broadcast id.
async fn prepare(db: &Db, url: &str, count: usize, rate: i64) -> i64 {
    let now = Utc::now();
    herald::server::customers::generate(db, count, now, |_| {})
        .await
        .unwrap();
    let author = db
        .create_user("ops@herald.test", "Ops", Role::Admin, "x", now)
        .await
        .unwrap();
    let channel = db
        .insert_channel(
            &NewChannel {
                kind: "webhook".into(),
                name: "Receiver".into(),
                config_json: serde_json::json!({ "url": url, "secret": "s3cret" }).to_string(),
                rate_per_sec: rate,
            },
            now,
        )
        .await
        .unwrap();
    let v = Compose {
        name: "Crash test".into(),
        body: "Hi {{first_name|there}}".into(),
        channel_ids: vec![channel],
        ..Default::default()
    }
    .validate(Intent::SendNow, now)
    .unwrap();
    db.create_broadcast(&v, author, "crash-test-key-0001", now)
        .await
        .unwrap()
        .0
}

/// A running Herald, killed (SIGKILL) when dropped, so a failing test leaves none behind.
struct Herald(Child);

impl Herald {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Herald {
    fn drop(&mut self) {
        self.kill();
    }
}

fn herald(db_url: &str, dir: &std::path::Path) -> Herald {
    Herald(spawn(db_url, dir))
}

fn spawn(db_url: &str, dir: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_herald"))
        .env(
            "HERALD_CONFIG",
            concat!(env!("CARGO_MANIFEST_DIR"), "/Leptos.toml"),
        )
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", db_url)
        .env("HERALD_DATA_DIR", dir)
        .env("HERALD_DEMO_DATA", "false")
        .env("HERALD_DISPATCH_LEASE_SECONDS", "2")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start herald")
}

async fn wait_until_sent(db: &Db, id: i64, limit: Duration) {
    let started = Instant::now();
    while db.broadcast(id).await.unwrap().status != "sent" {
        assert!(
            started.elapsed() < limit,
            "not sent after {limit:?}: {:?}",
            db.delivery_states(id).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every delivery of `id` sent once: each recipient's key arrived, no recipient got two keys.
/// Returns how many requests were replays.
async fn every_recipient_exactly_once(db: &Db, id: i64, r: &Receiver) -> u32 {
    let rows = db.deliveries_of(id).await.unwrap();
    assert!(rows.iter().all(|d| d.3 == "sent"), "every delivery sent");
    let keys = r.keys.lock().unwrap().clone();
    assert_eq!(
        keys.len(),
        rows.len(),
        "one key per delivery reached the receiver"
    );
    let mut recipients: HashMap<&str, usize> = HashMap::new();
    for s in keys.values() {
        *recipients.entry(s.to.as_str()).or_default() += 1;
    }
    assert_eq!(
        recipients.len(),
        rows.len(),
        "no recipient was sent two messages"
    );
    for (d, customer, ..) in &rows {
        let key = herald::server::dispatcher::idempotency_key(*d);
        assert_eq!(keys[&key].to, customer.to_string());
    }
    assert_eq!(
        db.counters(id).await.unwrap(),
        db.recount(id).await.unwrap()
    );
    keys.values().map(|s| s.times - 1).sum()
}

async fn survives_sigkill_during_a_send(t: &common::TestDb) {
    const N: usize = 20_000;
    let (url, r) = receiver().await;
    let id = prepare(&t.db, &url, N, 100_000).await;
    let mut sent_before = 0;
    for (n, ms) in [900u64, 600, 1200, 700].into_iter().enumerate() {
        let mut child = herald(&t.url, &t.dir());
        tokio::time::sleep(Duration::from_millis(ms)).await;
        child.kill(); // SIGKILL
        let sent = t.db.counters(id).await.unwrap()[1];
        eprintln!("kill {}: {sent} of {N} recorded sent", n + 1);
        assert!(sent >= sent_before);
        sent_before = sent;
    }
    assert!(sent_before < N as i64, "the kills happened mid-send");
    let mut child = herald(&t.url, &t.dir());
    wait_until_sent(&t.db, id, Duration::from_secs(120)).await;
    child.kill();
    let replays = every_recipient_exactly_once(&t.db, id, &r).await;
    eprintln!("{replays} replays after 4 kills");
    // Only what was in flight at a kill can come again: at most a batch per kill.
    assert!(replays <= 4 * 500, "{replays} replays");
}

#[tokio::test]
async fn sqlite_survives_sigkill_during_a_send() {
    let t = common::sqlite().await;
    survives_sigkill_during_a_send(&t).await;
    t.cleanup().await;
}

#[tokio::test]
async fn postgres_survives_sigkill_during_a_send() {
    let Some(t) = common::postgres().await else {
        return;
    };
    survives_sigkill_during_a_send(&t).await;
    t.cleanup().await;
}

#[tokio::test]
async fn two_instances_on_postgres_fire_once_and_never_send_twice() {
    let Some(t) = common::postgres().await else {
        return;
    };
    const N: usize = 20_000;
    let (url, r) = receiver().await;
    let id = prepare(&t.db, &url, N, 100_000).await;
    let mut a = herald(&t.url, &t.dir());
    let mut b = herald(&t.url, &t.dir());
    wait_until_sent(&t.db, id, Duration::from_secs(120)).await;
    a.kill();
    b.kill();
    let replays = every_recipient_exactly_once(&t.db, id, &r).await;
    assert_eq!(replays, 0, "without crashes, not even a replay");
    assert_eq!(
        t.db.audit_count("start", id).await.unwrap(),
        1,
        "fired once"
    );
    t.cleanup().await;
}

#[tokio::test]
async fn no_request_starts_later_than_250_ms_after_a_pause() {
    let t = common::sqlite().await;
    const N: usize = 6_000;
    let (url, r) = receiver().await;
    // 2,000 a second: three seconds of sending.
    let id = prepare(&t.db, &url, N, 2_000).await;
    let mut child = herald(&t.url, &t.dir());
    let started = Instant::now();
    while r.arrivals.lock().unwrap().len() < 1_000 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "sending never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    t.db.set_paused(id, true, 1, Utc::now()).await.unwrap();
    let paused_at = Instant::now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let arrivals = r.arrivals.lock().unwrap().clone();
    let late: Vec<Duration> = arrivals
        .iter()
        .filter(|a| **a > paused_at)
        .map(|a| *a - paused_at)
        .collect();
    eprintln!(
        "after pause: {} requests, the last {:?} after it",
        late.len(),
        late.iter().max()
    );
    assert!(
        late.iter().all(|d| *d <= Duration::from_millis(250)),
        "requests started after 250 ms: {:?}",
        late.iter()
            .filter(|d| **d > Duration::from_millis(250))
            .count()
    );
    let at_pause = arrivals.len();
    assert!(at_pause < N, "paused before the end");
    assert_eq!(t.db.broadcast(id).await.unwrap().status, "sending");
    // Resume: exactly the rest goes out.
    t.db.set_paused(id, false, 1, Utc::now()).await.unwrap();
    wait_until_sent(&t.db, id, Duration::from_secs(60)).await;
    child.kill();
    let replays = every_recipient_exactly_once(&t.db, id, &r).await;
    assert_eq!(replays, 0);
    t.cleanup().await;
}

/// Two instances sending one broadcast on a channel of `RATE` a second: together they keep to
/// that rate (a limiter per process would let them send twice as fast). Checked at the receiver
/// over every one-second window, and over the whole send. (Several instances share a
/// PostgreSQL database; SQLite serves one.)
async fn two_instances_together_keep_to_the_channel_s_rate(t: &common::TestDb) {
    const N: usize = 400;
    const RATE: i64 = 80;
    let (url, r) = receiver().await;
    let id = prepare(&t.db, &url, N, RATE).await;
    let mut a = herald(&t.url, &t.dir());
    let mut b = herald(&t.url, &t.dir());
    wait_until_sent(&t.db, id, Duration::from_secs(60)).await;
    a.kill();
    b.kill();
    assert_eq!(every_recipient_exactly_once(&t.db, id, &r).await, 0);
    let mut arrivals = r.arrivals.lock().unwrap().clone();
    arrivals.sort();
    let busiest = arrivals
        .iter()
        .enumerate()
        .map(|(i, start)| {
            arrivals[i..]
                .iter()
                .take_while(|t| **t < *start + Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    let span = *arrivals.last().unwrap() - arrivals[0];
    let burst = herald::server::dispatcher::bucket_capacity(RATE) as usize;
    eprintln!(
        "two instances at {RATE}/s: {N} sends in {span:?}, at most {busiest} in one second \
         (bucket {burst})"
    );
    // At most a second's worth plus the bucket's capacity in any second, give or take the
    // network's jitter (twice the rate without sharing) ...
    assert!(
        busiest <= RATE as usize + burst + RATE as usize / 10,
        "{busiest} sends in one second"
    );
    // ... and the whole send takes as long as the rate says.
    let least = Duration::from_secs_f64((N - burst) as f64 / RATE as f64 * 0.95);
    assert!(span >= least, "{N} sends in {span:?}, under {least:?}");
}

#[tokio::test]
async fn two_instances_on_postgres_keep_to_the_channel_s_rate() {
    let Some(t) = common::postgres().await else {
        return;
    };
    two_instances_together_keep_to_the_channel_s_rate(&t).await;
    t.cleanup().await;
}
