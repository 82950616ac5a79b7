//! The real binary against fake providers over HTTP. Through the webhook channel: killed with
//! SIGKILL again and again while it sends 20,000 deliveries, two instances sharing one
//! PostgreSQL, and a pause measured at the receiver; each checks, at the receiver, that every
//! recipient got exactly one message (a repeat after a crash only as an idempotent replay).
//! Through WhatsApp, whose API deduplicates nothing: the provider's reports and replies
//! arriving while the broadcast sends (one instance and two), and a record of accepted sends
//! that the database refuses for a while.

use crate::common;
use herald::model::{BroadcastId, UserId};

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
pub(crate) struct Receiver {
    keys: Mutex<HashMap<String, Seen>>,
    /// When each request arrived.
    pub(crate) arrivals: Mutex<Vec<Instant>>,
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

pub(crate) async fn receiver() -> (String, Arc<Receiver>) {
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
pub(crate) async fn prepare(db: &Db, url: &str, count: usize, rate: i64) -> i64 {
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
    db.create_broadcast(&v, UserId(author), "crash-test-key-0001", now)
        .await
        .unwrap()
        .0
}

/// A running Herald, killed (SIGKILL) when dropped, so a failing test leaves none behind.
pub(crate) struct Herald(pub(crate) Child);

impl Herald {
    pub(crate) fn kill(&mut self) {
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
        .env("HERALD_SECRET_KEY", common::SECRET_KEY)
        .env("HERALD_DATA_DIR", dir)
        .env("HERALD_DEMO_DATA", "false")
        .env("HERALD_ALLOW_PRIVATE_ENDPOINTS", "true")
        .env("HERALD_DISPATCH_LEASE_SECONDS", "2")
        .env("HERALD_DISPATCH_RECONCILE_SECONDS", "5")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start herald")
}

async fn wait_until_sent(db: &Db, id: i64, limit: Duration) {
    let started = Instant::now();
    while db.broadcast(id).await.unwrap().status != herald::model::Lifecycle::Sent {
        assert!(
            started.elapsed() < limit,
            "not sent after {limit:?}: {:?}",
            db.inspect().delivery_states(id).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Every delivery of `id` sent once: each recipient's key arrived, no recipient got two keys.
/// Returns how many requests were replays.
async fn every_recipient_exactly_once(db: &Db, id: i64, r: &Receiver) -> u32 {
    let rows = db.inspect().deliveries_of(id).await.unwrap();
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
        let key = herald::server::dispatch::idempotency_key(*d);
        assert_eq!(keys[&key].to, customer.to_string());
    }
    assert_eq!(
        db.inspect().counters(id).await.unwrap(),
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
        let sent = t.db.inspect().counters(id).await.unwrap()[1];
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
        t.db.inspect().audit_count("start", id).await.unwrap(),
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
    t.db.set_paused(BroadcastId(id), true, UserId(1), Utc::now())
        .await
        .unwrap();
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
    assert_eq!(
        t.db.broadcast(id).await.unwrap().status,
        herald::model::Lifecycle::Sending
    );
    // Resume: exactly the rest goes out.
    t.db.set_paused(BroadcastId(id), false, UserId(1), Utc::now())
        .await
        .unwrap();
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
    let burst = herald::server::dispatch::bucket_capacity(RATE) as usize;
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

// ---------------------------------------------------------------------------------------------
// WhatsApp through a Cloud API fake that, like Meta, deduplicates nothing and reports at once:
// every accepted message gets its statuses (sent, delivered, read for half) and, for a fifth,
// a reply quoting it, posted shuffled and some twice while the broadcast is still sending.

use herald::server::fakes::whatsapp::{Config as FakeConfig, FakeWhatsApp};

/// A free loopback port for a Herald process (the fake must know where to post).
pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A Herald process listening on `port`, its log (warnings and errors) written to `log`.
pub(crate) fn herald_on(
    db_url: &str,
    dir: &std::path::Path,
    port: u16,
    lease_s: u32,
    log: &std::path::Path,
) -> Herald {
    herald_reconciling(db_url, dir, port, lease_s, 30, log)
}

/// [`herald_on`] waiting `reconcile_s` for a report before resending an uncertain delivery.
fn herald_reconciling(
    db_url: &str,
    dir: &std::path::Path,
    port: u16,
    lease_s: u32,
    reconcile_s: u32,
    log: &std::path::Path,
) -> Herald {
    let log = std::fs::File::create(log).unwrap();
    Herald(
        Command::new(env!("CARGO_BIN_EXE_herald"))
            .env(
                "HERALD_CONFIG",
                concat!(env!("CARGO_MANIFEST_DIR"), "/Leptos.toml"),
            )
            .env("LEPTOS_SITE_ADDR", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", db_url)
            .env("HERALD_SECRET_KEY", common::SECRET_KEY)
            .env("HERALD_DATA_DIR", dir)
            .env("HERALD_DEMO_DATA", "false")
            .env("HERALD_ALLOW_PRIVATE_ENDPOINTS", "true")
            .env("HERALD_DISPATCH_LEASE_SECONDS", lease_s.to_string())
            .env("HERALD_DISPATCH_RECONCILE_SECONDS", reconcile_s.to_string())
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start herald"),
    )
}

/// `customers` generated customers (six in ten on WhatsApp, each of whom wrote within the last
/// day, so free-form messages may reach them), a WhatsApp channel at `rate` a second to the
/// fake, and a broadcast to all of them due now: (broadcast, channel).
async fn whatsapp_broadcast(
    db: &Db,
    fake: &FakeWhatsApp,
    base_url: &str,
    customers: usize,
    rate: i64,
) -> (i64, i64) {
    let now = Utc::now();
    herald::server::customers::generate(db, customers, now, |_| {})
        .await
        .unwrap();
    let ids: Vec<i64> = (1..=customers as i64 + 10).collect();
    for r in db.recipients(&ids).await.unwrap() {
        if let Some(wa) = r.whatsapp_id {
            fake.customer_wrote(&wa);
        }
    }
    let author = db
        .create_user("ops@herald.test", "Ops", Role::Admin, "x", now)
        .await
        .unwrap();
    let channel = db
        .insert_channel(&fake.channel(base_url, rate), now)
        .await
        .unwrap();
    let v = Compose {
        name: "Spring offer".into(),
        body: "Hi {{first_name|there}}, our spring offer starts today 🌷".into(),
        channel_ids: vec![channel],
        ..Default::default()
    }
    .validate(Intent::SendNow, now)
    .unwrap();
    let id = db
        .create_broadcast(&v, UserId(author), "reports-while-sending-01", now)
        .await
        .unwrap()
        .0;
    (id, channel)
}

/// Every WhatsApp recipient got exactly one message, and every report and reply the fake made
/// is in the counters, which equal a recount. Returns the number of deliveries.
async fn every_report_applied_and_nobody_messaged_twice(
    db: &Db,
    id: i64,
    fake: &FakeWhatsApp,
) -> usize {
    let deliveries = db.inspect().deliveries_of(id).await.unwrap();
    let received = fake.received();
    let twice: Vec<_> = received.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{} of {} recipients got the message more than once (e.g. {:?})",
        twice.len(),
        received.len(),
        twice.iter().take(3).collect::<Vec<_>>()
    );
    assert_eq!(
        received.len(),
        deliveries.len(),
        "each delivery reached its recipient"
    );
    let plans = fake.plans();
    let expect = |f: fn(&herald::server::fakes::whatsapp::Plan) -> bool| {
        plans.values().filter(|p| f(p)).count() as i64
    };
    let want = [
        deliveries.len() as i64,
        deliveries.len() as i64 - expect(|p| p.failed),
        expect(|p| p.delivered),
        expect(|p| p.read),
        expect(|p| p.replied),
        expect(|p| p.failed),
    ];
    // Reports are applied as they come; the last ones may still be in flight for a moment.
    let started = Instant::now();
    let mut counters = db.inspect().counters(id).await.unwrap();
    while counters != want && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        counters = db.inspect().counters(id).await.unwrap();
    }
    if counters != want {
        // Says what became of each reply the counters miss before failing.
        let mut shown = 0;
        for (wamid, _) in plans.iter().filter(|(_, p)| p.replied) {
            let (replied, trace) = db.inspect().trace_message(id, wamid).await.unwrap();
            if replied != Some(true) && shown < 20 {
                eprintln!("reply not counted: {trace}");
                shown += 1;
            }
        }
        eprintln!("recount: {:?}", db.recount(id).await.unwrap());
    }
    assert_eq!(
        counters, want,
        "audience, sent, delivered, read, replied, failed"
    );
    assert_eq!(
        counters,
        db.recount(id).await.unwrap(),
        "counters equal a recount"
    );
    assert_eq!(
        db.inspect().counters_by_channel(id).await.unwrap(),
        db.recount_by_channel(id).await.unwrap()
    );
    let timeline = db.timeline(id).await.unwrap();
    let sum = |i: usize| timeline.iter().map(|(_, c)| c[i]).sum::<i64>();
    assert_eq!(
        [sum(1), sum(2), sum(3)],
        [want[2], want[3], want[4]],
        "the timeline adds up"
    );
    deliveries.len()
}

/// PostgreSQL's own count of deadlocks in this database (after the instances exited, so their
/// statistics are flushed).
async fn pg_deadlocks(url: &str) -> i64 {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    let n: i64 = sqlx::query_scalar(
        "SELECT COALESCE(deadlocks, 0) FROM pg_stat_database WHERE datname = current_database()",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    n
}

/// What the instances logged that matters here: (deadlocks, transient retries, failed records).
fn read_logs(logs: &[std::path::PathBuf]) -> (usize, usize, usize) {
    let mut out = (0, 0, 0);
    for l in logs {
        let text = std::fs::read_to_string(l).unwrap_or_default();
        out.0 += text.matches("deadlock").count();
        out.1 += text.matches("transient failure").count();
        out.2 += text.matches("recording sends failed").count();
        let panics = text.matches("panicked").count();
        assert_eq!(panics, 0, "{}:\n{text}", l.display());
    }
    out
}

async fn reports_while_sending(t: &common::TestDb, instances: usize) {
    let (fake, base) = FakeWhatsApp::start(meta_tier()).await.unwrap();
    let (id, channel) = whatsapp_broadcast(&t.db, &fake, &base, 7_500, 500).await;
    let ports: Vec<u16> = (0..instances).map(|_| free_port()).collect();
    fake.send_webhooks_to(
        ports
            .iter()
            .map(|p| format!("http://127.0.0.1:{p}/webhooks/whatsapp/{channel}"))
            .collect(),
    );
    let here = tempfile::tempdir().unwrap();
    let logs: Vec<_> = (0..instances)
        .map(|i| here.path().join(format!("herald-{i}.log")))
        .collect();
    let mut running: Vec<Herald> = ports
        .iter()
        .zip(&logs)
        .map(|(port, log)| herald_on(&t.url, here.path(), *port, 60, log))
        .collect();
    let started = Instant::now();
    wait_until_sent(&t.db, id, Duration::from_secs(120)).await;
    let sending = started.elapsed();
    if !fake.settle(Duration::from_secs(60)).await {
        let log: String = logs
            .iter()
            .map(|l| std::fs::read_to_string(l).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n");
        let tail: String = log
            .chars()
            .skip(log.chars().count().saturating_sub(3000))
            .collect();
        panic!(
            "{} webhooks unanswered after a minute ({} posted, {} answered with an error); \
             the log ends:\n{tail}",
            fake.unanswered(),
            fake.posted(),
            fake.refused()
        );
    }
    let n = every_report_applied_and_nobody_messaged_twice(&t.db, id, &fake).await;
    for h in &mut running {
        h.kill();
    }
    let (deadlocks, retries, failed_records) = read_logs(&logs);
    eprintln!(
        "{instances} instance(s): {n} deliveries sent in {sending:?} while {} webhooks were posted \
         ({} answered with an error); {retries} transient retries logged",
        fake.posted(),
        fake.refused()
    );
    assert!(n >= 4_000, "{n} deliveries");
    assert_eq!(deadlocks, 0, "no deadlock logged");
    assert_eq!(failed_records, 0, "no record of sends failed");
    assert_eq!(fake.refused(), 0, "no webhook was answered with an error");
    if t.url.starts_with("postgres") {
        assert_eq!(
            pg_deadlocks(&t.url).await,
            0,
            "PostgreSQL counted no deadlock"
        );
    }
}

#[tokio::test]
async fn sqlite_applies_every_report_while_sending_and_sends_each_message_once() {
    let t = common::sqlite().await;
    reports_while_sending(&t, 1).await;
    t.cleanup().await;
}

#[tokio::test]
async fn postgres_applies_every_report_while_sending_and_sends_each_message_once() {
    let Some(t) = common::postgres().await else {
        return;
    };
    reports_while_sending(&t, 1).await;
    t.cleanup().await;
}

#[tokio::test]
async fn two_instances_on_postgres_apply_every_report_while_sending_without_deadlocks() {
    let Some(t) = common::postgres().await else {
        return;
    };
    reports_while_sending(&t, 2).await;
    t.cleanup().await;
}

/// Makes every write of an accepted send fail for the next `seconds` (and, on PostgreSQL, the
/// very first one fail as a deadlock victim, which is retried at once): the database refuses
/// the record, not the test's code.
async fn fail_records_for(t: &common::TestDb, seconds: i64) {
    let until = Utc::now() + chrono::Duration::seconds(seconds);
    let statements: Vec<String> = if t.url.starts_with("postgres") {
        vec![
            "CREATE TABLE fault (until_at TIMESTAMPTZ NOT NULL)".into(),
            format!("INSERT INTO fault VALUES ('{}')", until.to_rfc3339()),
            "CREATE SEQUENCE fault_once".into(),
            "CREATE FUNCTION fail_record() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
               IF nextval('fault_once') = 1 THEN \
                 RAISE EXCEPTION 'injected: deadlock detected' USING ERRCODE = '40P01'; \
               END IF; \
               IF clock_timestamp() < (SELECT until_at FROM fault) THEN \
                 RAISE EXCEPTION 'injected: the record of a batch fails'; \
               END IF; RETURN NEW; END $$"
                .into(),
            "CREATE TRIGGER fail_record BEFORE UPDATE ON deliveries FOR EACH ROW \
             WHEN (NEW.state = 'sent' AND OLD.state = 'sending') EXECUTE FUNCTION fail_record()"
                .into(),
        ]
    } else {
        vec![
            "CREATE TABLE fault (until_ms INTEGER NOT NULL)".into(),
            format!("INSERT INTO fault VALUES ({})", until.timestamp_millis()),
            "CREATE TRIGGER fail_record BEFORE UPDATE OF state ON deliveries FOR EACH ROW \
             WHEN NEW.state = 'sent' AND OLD.state = 'sending' \
               AND (SELECT until_ms FROM fault) > CAST(unixepoch('subsec') * 1000 AS INTEGER) \
             BEGIN SELECT RAISE(ABORT, 'injected: the record of a batch fails'); END"
                .into(),
        ]
    };
    for s in statements {
        t.db.inspect().execute(&s).await.unwrap();
    }
}

/// The record of accepted sends fails for longer than the claim's lease (two seconds): the
/// dispatcher keeps the outcomes and writes them again, and extends the lease meanwhile, so
/// neither it nor anything else claims and sends those deliveries again.
async fn a_failing_record_sends_nothing_twice(t: &common::TestDb) {
    let (fake, base) = FakeWhatsApp::start(meta_tier()).await.unwrap();
    let (id, channel) = whatsapp_broadcast(&t.db, &fake, &base, 2_000, 400).await;
    fail_records_for(t, 5).await;
    let here = tempfile::tempdir().unwrap();
    let log = here.path().join("herald.log");
    let port = free_port();
    fake.send_webhooks_to(vec![format!(
        "http://127.0.0.1:{port}/webhooks/whatsapp/{channel}"
    )]);
    let mut h = herald_on(&t.url, here.path(), port, 2, &log);
    wait_until_sent(&t.db, id, Duration::from_secs(90)).await;
    assert!(
        fake.settle(Duration::from_secs(60)).await,
        "every webhook answered"
    );
    let n = every_report_applied_and_nobody_messaged_twice(&t.db, id, &fake).await;
    h.kill();
    let (_, retries, failed_records) = read_logs(std::slice::from_ref(&log));
    eprintln!(
        "{n} deliveries; the record failed {failed_records} times, {retries} transient retries"
    );
    assert!(failed_records > 0, "the record did fail");
    if t.url.starts_with("postgres") {
        assert!(retries > 0, "the injected deadlock was retried");
    }
}

#[tokio::test]
async fn sqlite_a_failing_record_sends_nothing_twice() {
    let t = common::sqlite().await;
    a_failing_record_sends_nothing_twice(&t).await;
    t.cleanup().await;
}

#[tokio::test]
async fn postgres_a_failing_record_sends_nothing_twice() {
    let Some(t) = common::postgres().await else {
        return;
    };
    a_failing_record_sends_nothing_twice(&t).await;
    t.cleanup().await;
}

// ---------------------------------------------------------------------------------------------
// SIGKILL while sending through WhatsApp, whose API deduplicates nothing: a request that may
// have reached Meta before the kill is uncertain, not pending, and its "sent" status (which
// names the delivery in `biz_opaque_callback_data`) records it instead of a second message.

/// Killed five times while sending 10,000 deliveries through the Cloud API fake at 300 a
/// second: no customer gets the message twice, nobody is left out, and the results count
/// what was sent again after a crash (only requests no report ever answered).
/// The reconciliation window of the SIGKILL test through WhatsApp: the default, longer than
/// the reports' backlog on this machine after the kills (PostgreSQL drains it in 30 to 45 s
/// while the other process tests run).
const RECONCILE_S: u32 = 60;

/// Serialises the two SIGKILL tests through WhatsApp.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn whatsapp_survives_sigkill_without_a_duplicate(t: &common::TestDb) {
    // One at a time: their webhooks alone keep this machine's two cores busy, and a report
    // slower than the window is what the window is for.
    let _one = ONE_AT_A_TIME.lock().await;
    let (fake, base) = FakeWhatsApp::start(meta_tier()).await.unwrap();
    // Six in ten generated customers are on WhatsApp.
    let (id, channel) = whatsapp_broadcast(&t.db, &fake, &base, 16_700, 300).await;
    let port = free_port();
    fake.send_webhooks_to(vec![format!(
        "http://127.0.0.1:{port}/webhooks/whatsapp/{channel}"
    )]);
    let here = tempfile::tempdir().unwrap();
    let mut logs = Vec::new();
    let mut sent_before = 0;
    for (n, ms) in [2_500u64, 3_000, 2_000, 3_500, 2_500]
        .into_iter()
        .enumerate()
    {
        let log = here.path().join(format!("herald-{n}.log"));
        let mut h = herald_reconciling(&t.url, here.path(), port, 2, RECONCILE_S, &log);
        logs.push(log);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        h.kill(); // SIGKILL
        let accepted = fake.accepted().len();
        let sent = t.db.inspect().counters(id).await.unwrap()[1];
        eprintln!(
            "kill {}: {sent} recorded sent, {accepted} accepted by the fake, {} webhooks waiting",
            n + 1,
            fake.unanswered()
        );
        assert!(sent >= sent_before);
        sent_before = sent;
    }
    let total = t.db.inspect().counters(id).await.unwrap()[0];
    assert!(total >= 9_500, "{total} deliveries");
    assert!(sent_before < total, "the kills happened mid-send");
    let log = here.path().join("herald-last.log");
    let mut h = herald_reconciling(&t.url, here.path(), port, 2, RECONCILE_S, &log);
    logs.push(log);
    for second in (5..=RECONCILE_S).step_by(5) {
        tokio::time::sleep(Duration::from_secs(5)).await;
        eprintln!(
            "after {second} s: {} webhooks waiting, {} posted, resent {}",
            fake.unanswered(),
            fake.posted(),
            t.db.broadcast(id).await.unwrap().resent_count
        );
    }
    wait_until_sent(&t.db, id, Duration::from_secs(180)).await;
    assert!(
        fake.settle(Duration::from_secs(60)).await,
        "every webhook answered"
    );
    let received = fake.received();
    let twice = received.values().filter(|n| **n > 1).count();
    let duplicates: usize = received.values().map(|n| n - 1).sum();
    let resent = t.db.broadcast(id).await.unwrap().resent_count;
    eprintln!(
        "5 kills during {total} WhatsApp deliveries: {duplicates} duplicate messages to {twice} \
         customers; {resent} sent again after a crash (no report had answered them)"
    );
    assert_eq!(duplicates, 0, "no customer got the message twice");
    every_report_applied_and_nobody_messaged_twice(&t.db, id, &fake).await;
    h.kill();
    read_logs(&logs);
}

#[tokio::test]
async fn sqlite_whatsapp_survives_sigkill_without_a_duplicate() {
    let t = common::sqlite().await;
    whatsapp_survives_sigkill_without_a_duplicate(&t).await;
    t.cleanup().await;
}

#[tokio::test]
async fn postgres_whatsapp_survives_sigkill_without_a_duplicate() {
    let Some(t) = common::postgres().await else {
        return;
    };
    whatsapp_survives_sigkill_without_a_duplicate(&t).await;
    t.cleanup().await;
}

/// The fake at the throughput Meta raises a busy number to (1,000 a second): these tests send
/// at 300 a second.
fn meta_tier() -> FakeConfig {
    FakeConfig {
        per_number_per_sec: 1000.0,
        ..FakeConfig::default()
    }
}
