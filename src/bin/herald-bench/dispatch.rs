//! The dispatcher's figures, on SQLite and PostgreSQL: materialising a million recipients,
//! deliveries per second from a due schedule to recorded state through a fake receiver over
//! HTTP on loopback (the webhook channel), and how soon after a pause requests stop.

use crate::TempPg;
use herald::model::BroadcastId;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use chrono::Utc;
use herald::model::audience::{AudienceRule, Condition, Field, Match, Op};
use herald::model::compose::{Compose, Intent};
use herald::model::{ChannelId, Role, UserId};
use herald::server::channels::sandbox::SandboxProvider;
use herald::server::clock::SystemClock;
use herald::server::db::{Db, Fired, NewChannel};
use herald::server::dispatch::{Dispatcher, Settings};
use herald::server::fakes::whatsapp::{Config as FakeConfig, FakeWhatsApp};

/// Customers, hence recipients of the materialising figure (HERALD_BENCH_RECIPIENTS).
fn recipients() -> usize {
    std::env::var("HERALD_BENCH_RECIPIENTS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000)
}

pub async fn run() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("herald-dispatch-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    // HERALD_BENCH_ONLY=postgres skips SQLite (and =sqlite, PostgreSQL).
    let only = std::env::var("HERALD_BENCH_ONLY").unwrap_or_default();
    if only != "postgres" {
        let sqlite = Db::connect(&format!("sqlite://{}", dir.join("d.db").display())).await?;
        let r = bench("SQLite", &sqlite).await;
        sqlite.close().await;
        let _ = std::fs::remove_dir_all(&dir);
        r?;
    }
    if only == "sqlite" {
        return Ok(());
    }
    if let Some(pg) = TempPg::create("herald_dispatch").await? {
        let r = bench("PostgreSQL", &pg.db).await;
        pg.drop().await?;
        r?;
    } else {
        println!("Dispatcher on PostgreSQL: skipped (set TEST_DATABASE_URL=postgres://…)\n");
    }
    Ok(())
}

/// A receiver that takes everything and notes when each request came.
async fn receiver() -> anyhow::Result<(String, Arc<Mutex<Vec<Instant>>>)> {
    let arrivals: Arc<Mutex<Vec<Instant>>> = Default::default();
    let seen = arrivals.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: axum::body::Bytes| {
            let seen = seen.clone();
            async move {
                seen.lock().unwrap().push(Instant::now());
                let _ = body;
                r#"{"id":"ok"}"#
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((format!("http://{addr}/hook"), arrivals))
}

async fn broadcast(
    db: &Db,
    author: UserId,
    channel: ChannelId,
    rule: AudienceRule,
    key: &str,
) -> anyhow::Result<i64> {
    let now = Utc::now();
    let v = Compose {
        name: key.into(),
        body: "Hi {{first_name|there}}, this week only 🎉".into(),
        audience: rule,
        channel_ids: vec![channel.0],
        ..Default::default()
    }
    .validate(Intent::SendNow, now)
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    Ok(db.create_broadcast(&v, author, key, now).await?.0)
}

async fn wait_sent(db: &Db, id: i64) -> anyhow::Result<()> {
    while db.broadcast(id).await?.status != herald::model::Lifecycle::Sent {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// What the figures share: the database, an author, the receiver's two channels (one
/// unlimited, one paced at 2,000/s), what the receiver saw, the running dispatcher and the
/// VIP tenth of the customers.
struct Rig<'a> {
    db: &'a Db,
    author: UserId,
    fast: ChannelId,
    paced: ChannelId,
    arrivals: Arc<Mutex<Vec<Instant>>>,
    dispatcher: Arc<Dispatcher>,
    vip: AudienceRule,
}

async fn bench(label: &str, db: &Db) -> anyhow::Result<()> {
    println!("Dispatcher on {label}:");
    crate::no_quiet_hours(db).await?;
    let now = Utc::now();
    let t = Instant::now();
    let count = recipients();
    herald::server::customers::generate(db, count, now, |_| {}).await?;
    println!(
        "  {count} customers generated in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    // A table loaded at once is not yet vacuumed (hint bits unset, no statistics); what
    // autovacuum soon does, done now, so the figures are those of a settled database.
    if label == "PostgreSQL" {
        db.inspect().maintain().await?;
    }
    let author = UserId(
        db.create_user("bench@herald.test", "Bench", Role::Admin, "x", now)
            .await?,
    );
    let (url, arrivals) = receiver().await?;
    let channel = |name: &str, rate: i64| NewChannel {
        kind: "webhook".into(),
        name: name.into(),
        config_json: serde_json::json!({ "url": url, "secret": "bench" }).to_string(),
        rate_per_sec: rate,
    };
    let fast = ChannelId(
        db.insert_channel(&channel("Receiver", 1_000_000), now)
            .await?,
    );
    let paced = ChannelId(
        db.insert_channel(&channel("Receiver, paced", 2_000), now)
            .await?,
    );
    materialise(db, author, fast).await?;

    let dispatcher = Arc::new(Dispatcher::new(
        db.clone(),
        Arc::new(SystemClock),
        Arc::new(SandboxProvider::default()),
        Settings::default(),
    ));
    dispatcher.clone().spawn();
    let vip = db.ensure_tag("VIP").await?;
    let rig = Rig {
        db,
        author,
        fast,
        paced,
        arrivals,
        dispatcher,
        vip: AudienceRule {
            matching: Match::All,
            conditions: vec![Condition {
                field: Field::Tag,
                op: Op::Is,
                id: vip,
            }],
            frozen: None,
        },
    };
    throughput(&rig).await?;
    whatsapp(&rig).await?;
    on_time(&rig).await?;
    pause(&rig).await?;
    rig.dispatcher.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!();
    Ok(())
}

/// Materialising: everyone, in one INSERT … SELECT.
async fn materialise(db: &Db, author: UserId, fast: ChannelId) -> anyhow::Result<()> {
    let everyone = broadcast(
        db,
        author,
        fast,
        AudienceRule::default(),
        "bench-materialise",
    )
    .await?;
    let t = Instant::now();
    let fired = db
        .fire(everyone, Utc::now(), chrono::Duration::hours(1))
        .await?;
    let took = t.elapsed();
    let Fired::Started { deliveries } = fired else {
        anyhow::bail!("the broadcast did not start: {fired:?}");
    };
    println!(
        "  materialise: {deliveries} deliveries in {:.2} s (target ≤ 5 s)",
        took.as_secs_f64()
    );
    db.cancel_broadcast(BroadcastId(everyone), author, Utc::now())
        .await?;
    waves(db, author, fast).await
}

/// The same audience in each customer's own time zone, tomorrow at 10:00 with the default
/// quiet hours: one `INSERT … SELECT` with the waves' `CASE`; then claims while every delivery
/// waits for a later wave (they read the due index's empty range, not the deliveries).
async fn waves(db: &Db, author: UserId, fast: ChannelId) -> anyhow::Result<()> {
    use herald::server::broadcast::waves::plan;
    let id = broadcast(db, author, fast, AudienceRule::default(), "bench-waves").await?;
    let now = Utc::now();
    let tomorrow = (now + chrono::Duration::days(1)).date_naive();
    let local = tomorrow.and_hms_opt(10, 0, 0).expect("10:00 exists");
    let rules = herald::model::workspace::Rules::default();
    let zones = db.audience_zones(&AudienceRule::default()).await?;
    let t = Instant::now();
    let plan = plan(now, Some(local), &rules, false, &zones);
    let fired = db
        .fire_with(
            id,
            now,
            chrono::Duration::hours(1),
            &plan,
            &herald::server::db::Eligibility::default(),
        )
        .await?;
    let took = t.elapsed();
    let Fired::Started { deliveries } = fired else {
        anyhow::bail!("the broadcast did not start: {fired:?}");
    };
    let rounds = 100;
    let t = Instant::now();
    for _ in 0..rounds {
        let lease = Utc::now() + chrono::Duration::seconds(60);
        let claimed = db.claim_broadcast(id, 500, Utc::now(), lease, now).await?;
        anyhow::ensure!(claimed.is_empty(), "nothing is due yet");
    }
    let claim = t.elapsed().as_secs_f64() * 1000.0 / rounds as f64;
    println!(
        "  materialise in waves: {deliveries} deliveries over {} zones in {:.2} s; an idle claim with all of them waiting: {claim:.2} ms",
        zones.len(),
        took.as_secs_f64()
    );
    db.cancel_broadcast(BroadcastId(id), author, Utc::now())
        .await?;
    Ok(())
}

/// Throughput: a tenth of the customers (the VIP tag) from due to recorded.
async fn throughput(rig: &Rig<'_>) -> anyhow::Result<()> {
    let db = rig.db;
    let before = rig.arrivals.lock().unwrap().len();
    let t = Instant::now();
    let id = broadcast(
        db,
        rig.author,
        rig.fast,
        rig.vip.clone(),
        "bench-throughput",
    )
    .await?;
    rig.dispatcher.poke();
    wait_sent(db, id).await?;
    let took = t.elapsed();
    let n = db.broadcast(id).await?.sent_count;
    assert_eq!(rig.arrivals.lock().unwrap().len() - before, n as usize);
    println!(
        "  send: {n} deliveries in {:.1} s = {:.0} deliveries/s, each recorded (target ≥ 5,000/s)",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64()
    );
    Ok(())
}

/// The same tenth on WhatsApp, through a Cloud API fake: first without its reports, then
/// with them flowing while it sends (sent, delivered and read for every message, a reply
/// quoting it for a fifth, shuffled, one in ten posted twice), each verified and applied by
/// this process's router as the binary serves it.
async fn whatsapp(rig: &Rig<'_>) -> anyhow::Result<()> {
    let db = rig.db;
    let dir = std::env::temp_dir().join(format!("herald-dispatch-app-{}", std::process::id()));
    let addr = crate::serve(crate::app_state(db, rig.dispatcher.clone(), &dir)?).await?;
    // Every customer here wrote within the day: free-form messages may reach them.
    let fake_config = FakeConfig {
        read_per_mille: 1000,
        reply_per_mille: 200,
        repeat_per_mille: 100,
        posters: 32,
        enforce_window: false,
        // The benchmark measures Herald against a provider that takes all it is sent.
        per_number_per_sec: 1e9,
        ..FakeConfig::default()
    };
    let (fake, base) = FakeWhatsApp::start(fake_config).await?;
    let whatsapp = ChannelId(
        db.insert_channel(&fake.channel(&base, 1_000_000), Utc::now())
            .await?,
    );
    for with_reports in [false, true] {
        if with_reports {
            fake.send_webhooks_to(vec![format!("http://{addr}/webhooks/whatsapp/{whatsapp}")]);
        }
        let retries = herald::server::db::retry::transient_retries();
        let posted = fake.posted();
        let accepted = fake.accepted().len();
        let t = Instant::now();
        let key = format!("bench-whatsapp-{with_reports}");
        let id = broadcast(db, rig.author, whatsapp, rig.vip.clone(), &key).await?;
        rig.dispatcher.poke();
        wait_sent(db, id).await?;
        let took = t.elapsed();
        // Counted at the provider.
        let n = fake.accepted().len() - accepted;
        let rate = n as f64 / took.as_secs_f64();
        if !with_reports {
            println!(
                "  send on WhatsApp (Cloud API fake), no reports: {n} deliveries in {:.1} s = {rate:.0}/s",
                took.as_secs_f64(),
            );
            continue;
        }
        let during = fake.posted() - posted;
        fake.settle(Duration::from_secs(600)).await;
        let all = t.elapsed();
        let c2 = db.inspect().counters(id).await?;
        println!(
            "  send on WhatsApp with its reports flowing: {n} deliveries in {:.1} s = {rate:.0}/s, each recorded, \
             while {during} webhooks were applied; all {} applied {:.1} s after the start \
             ({} delivered, {} read, {} replied; {} answered with an error, {} transient retries)",
            took.as_secs_f64(),
            fake.posted() - posted,
            all.as_secs_f64(),
            c2[2],
            c2[3],
            c2[4],
            fake.refused(),
            herald::server::db::retry::transient_retries() - retries,
        );
    }
    fake.send_webhooks_to(Vec::new());
    Ok(())
}

/// Firing on time: scheduled 1.5 s ahead; how late did it start?
async fn on_time(rig: &Rig<'_>) -> anyhow::Result<()> {
    let db = rig.db;
    let mut late = Vec::new();
    for n in 0..3 {
        let at = Utc::now() + chrono::Duration::milliseconds(1500);
        let v = Compose {
            name: format!("bench-on-time-{n}"),
            body: "On time ⏰".into(),
            audience: AudienceRule {
                matching: Match::All,
                conditions: vec![Condition {
                    field: Field::Tag,
                    op: Op::Is,
                    id: -1,
                }],
                frozen: None,
            },
            channel_ids: vec![rig.fast.0],
            scheduled_at: Some(at),
            ..Default::default()
        }
        .validate(Intent::Schedule, Utc::now())
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let id = db
            .create_broadcast(&v, rig.author, &format!("bench-on-time-{n}"), Utc::now())
            .await?
            .0;
        rig.dispatcher.poke();
        let started = loop {
            if let Some(t) = db.broadcast(id).await?.started_at {
                break t;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        late.push((started - at).num_milliseconds());
    }
    println!("  on time: started {late:?} ms after the scheduled time (target ≤ 1,000 ms)");
    Ok(())
}

/// Pause: while sending at 2,000/s, as the list's toggle does it.
async fn pause(rig: &Rig<'_>) -> anyhow::Result<()> {
    let db = rig.db;
    let id = broadcast(db, rig.author, rig.paced, rig.vip.clone(), "bench-pause").await?;
    rig.dispatcher.poke();
    // Pause a second in (or halfway, for a small audience).
    loop {
        let b = db.broadcast(id).await?;
        if b.audience_total > 0 && b.sent_count >= (b.audience_total / 2).min(2_000) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    db.set_paused(BroadcastId(id), true, rig.author, Utc::now())
        .await?;
    rig.dispatcher.halt(id);
    let paused = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after: Vec<Duration> = rig
        .arrivals
        .lock()
        .unwrap()
        .iter()
        .filter(|a| **a > paused)
        .map(|a| *a - paused)
        .collect();
    println!(
        "  pause: {} requests arrived after it, the last {:.1} ms after (target ≤ 250 ms)",
        after.len(),
        after
            .iter()
            .max()
            .map(|d| d.as_secs_f64() * 1000.0)
            .unwrap_or(0.0)
    );
    db.cancel_broadcast(BroadcastId(id), rig.author, Utc::now())
        .await?;
    Ok(())
}
