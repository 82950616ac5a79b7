//! `herald-bench`: prints performance figures (no pass/fail; see README "Benchmarks").
//!
//! Now: the broadcast list at 100,000 broadcasts (search + sort + keyset page), on SQLite and on
//! PostgreSQL (TEST_DATABASE_URL or DATABASE_URL; skipped with a note when unset), and the
//! gzipped size of the built WASM bundle.

use std::io::Write;
use std::time::{Duration, Instant};

use chrono::Utc;
use herald::model::list_query::PageAnchor;
use herald::model::{CustomerAnchor, CustomerQuery, ListQuery, SortDir, SortKey};
use herald::server::db::Db;
use herald::server::seed;

const BROADCASTS: usize = 100_000;
const RUNS: usize = 200;

/// Customers for the customers-list figures (HERALD_BENCH_CUSTOMERS overrides).
fn customers() -> usize {
    std::env::var("HERALD_BENCH_CUSTOMERS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000)
}

/// A fresh PostgreSQL database for one benchmark, on the server named by TEST_DATABASE_URL
/// (or DATABASE_URL); `None` when there is none. Drop it with [`TempPg::drop`].
struct TempPg {
    admin: sqlx::PgPool,
    name: String,
    db: Db,
}

impl TempPg {
    async fn create(prefix: &str) -> anyhow::Result<Option<TempPg>> {
        let Ok(url) = std::env::var("TEST_DATABASE_URL").or_else(|_| std::env::var("DATABASE_URL"))
        else {
            return Ok(None);
        };
        if !url.starts_with("postgres") {
            return Ok(None);
        }
        let name = format!("{prefix}_{}", std::process::id());
        let admin = sqlx::PgPool::connect(&url).await?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await?;
        let base = url.rsplit_once('/').map(|(b, _)| b).unwrap_or(&url);
        let db = Db::connect(&format!("{base}/{name}")).await?;
        Ok(Some(TempPg { admin, name, db }))
    }

    async fn drop(self) -> anyhow::Result<()> {
        self.db.close().await;
        sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .execute(&self.admin)
            .await?;
        Ok(())
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    println!("herald-bench on {cores} cores\n");
    // `herald-bench dispatch`: only the dispatcher's figures.
    let only = std::env::args().nth(1).unwrap_or_default();
    if only == "dispatch" || only.is_empty() {
        dispatch::run().await?;
        if only == "dispatch" {
            return Ok(());
        }
    }
    // `herald-bench results`: only the results page figures.
    if only == "results" || only.is_empty() {
        results::run().await?;
        if only == "results" {
            return Ok(());
        }
    }
    // `herald-bench webhooks`: only the webhook ingestion figures.
    if only == "webhooks" || only.is_empty() {
        webhooks::run().await?;
        if only == "webhooks" {
            return Ok(());
        }
    }

    let dir = std::env::temp_dir().join(format!("herald-bench-{}", std::process::id()));
    let sqlite = Db::connect(&format!("sqlite://{}", dir.join("bench.db").display())).await?;
    let result = match list_bench("SQLite", &sqlite).await {
        Ok(()) => customer_bench("SQLite", &sqlite).await,
        e => e,
    };
    sqlite.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    result?;

    match TempPg::create("herald_bench").await? {
        Some(pg) => {
            let result = match list_bench("PostgreSQL", &pg.db).await {
                Ok(()) => customer_bench("PostgreSQL", &pg.db).await,
                e => e,
            };
            pg.drop().await?;
            result?;
        }
        None => println!("PostgreSQL: skipped (set TEST_DATABASE_URL=postgres://…)\n"),
    }

    wasm_size();
    Ok(())
}

async fn list_bench(label: &str, db: &Db) -> anyhow::Result<()> {
    print!("{label}: inserting {BROADCASTS} broadcasts … ");
    std::io::stdout().flush()?;
    let t = Instant::now();
    db.insert_broadcasts(&seed::many_broadcasts(BROADCASTS, Utc::now()))
        .await?;
    println!("{:.1} s", t.elapsed().as_secs_f64());

    // Each case: the first page, and a page deep in the list (reached by its cursor).
    let cases: [(&str, &str, SortKey, SortDir); 7] = [
        ("status sort", "", SortKey::Status, SortDir::Asc),
        ("created, newest first", "", SortKey::Created, SortDir::Desc),
        (
            "sending date, oldest first",
            "",
            SortKey::SendDate,
            SortDir::Asc,
        ),
        (
            "search \"newsletter\" (common)",
            "newsletter",
            SortKey::Status,
            SortDir::Asc,
        ),
        (
            "search \"#99999\" (one match)",
            "#99999",
            SortKey::Created,
            SortDir::Desc,
        ),
        (
            "search with no match",
            "zzzz-nothing",
            SortKey::Status,
            SortDir::Asc,
        ),
        (
            "search \"#9\" (2 chars: no index)",
            "#9",
            SortKey::Status,
            SortDir::Asc,
        ),
    ];
    println!("  list page of 25 ({RUNS} runs each)             p50        p99");
    for (name, search, sort, dir) in cases {
        let first = ListQuery {
            search: search.into(),
            sort,
            dir,
            anchor: PageAnchor::First,
        };
        // A cursor about two thirds into the unfiltered order.
        let deep = if search.is_empty() {
            let mid = db
                .list_broadcasts(&ListQuery {
                    anchor: PageAnchor::First,
                    dir: dir.flip(),
                    ..first.clone()
                })
                .await?;
            mid.rows.last().map(|r| ListQuery {
                anchor: PageAnchor::After(r.cursor(sort)),
                ..first.clone()
            })
        } else {
            None
        };
        for (which, q) in [("first page", Some(first)), ("deep page", deep)] {
            let Some(q) = q else { continue };
            let mut times = Vec::with_capacity(RUNS);
            for _ in 0..RUNS {
                let t = Instant::now();
                let page = db.list_broadcasts(&q).await?;
                times.push(t.elapsed());
                std::hint::black_box(page);
            }
            times.sort();
            println!(
                "  {:<44} {:>7.2} ms {:>7.2} ms",
                format!("{name}, {which}"),
                ms(times[RUNS / 2]),
                ms(times[RUNS * 99 / 100])
            );
        }
    }
    println!("  (target: p99 <= 50 ms)\n");
    Ok(())
}

async fn customer_bench(label: &str, db: &Db) -> anyhow::Result<()> {
    let n = customers();
    print!("{label}: generating {n} customers (herald generate-customers) … ");
    std::io::stdout().flush()?;
    let t = Instant::now();
    herald::server::customers::generate(db, n, Utc::now(), |_| {}).await?;
    let secs = t.elapsed().as_secs_f64();
    println!("{secs:.1} s ({:.0}/s)", n as f64 / secs);

    let q = |search: &str, tag: Option<&str>| CustomerQuery {
        search: search.into(),
        tag: tag.map(Into::into),
        anchor: CustomerAnchor::First,
    };
    // A cursor in the middle of the name order: the first "Mateo …".
    let deep = {
        let mid = db.list_customers(&q("Mateo", None)).await?.rows;
        let mut deep = q("", None);
        deep.anchor = CustomerAnchor::After(mid.first().map(|r| r.id).unwrap_or(1));
        deep
    };
    let cases = [
        ("first page", q("", None)),
        ("deep page", deep),
        ("search \"smith\" (common name)", q("smith", None)),
        ("search one phone", q("5551500000", None)),
        ("search with no match", q("zzzz-nothing", None)),
        ("tag VIP (10%)", q("", Some("VIP"))),
        (
            "tag Beta tester (5%) + search \"ola\"",
            q("ola", Some("Beta tester")),
        ),
    ];
    println!("  customers page of 25 ({RUNS} runs each)         p50        p99");
    for (name, query) in cases {
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let t = Instant::now();
            let page = db.list_customers(&query).await?;
            let ids: Vec<i64> = page.rows.iter().map(|r| r.id).collect();
            std::hint::black_box(db.customer_labels(&ids).await?);
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "  {:<44} {:>7.2} ms {:>7.2} ms",
            name,
            ms(times[RUNS / 2]),
            ms(times[RUNS * 99 / 100])
        );
    }
    audience_bench(db).await?;
    println!();
    Ok(())
}

/// The wizard's live audience count and pre-flight breakdown over all generated customers.
async fn audience_bench(db: &Db) -> anyhow::Result<()> {
    use herald::model::audience::{AudienceRule, Condition, Field, Match, Op};
    use herald::model::channel::ChannelKind;
    let vip = db.ensure_tag("VIP").await?;
    let new = db.ensure_tag("New").await?;
    let sales = db.ensure_robot_group("Sales-bot").await?;
    let cond = |field, op, id| Condition { field, op, id };
    let cases = [
        (
            "everyone, sandbox",
            AudienceRule::default(),
            vec![ChannelKind::Sandbox],
        ),
        (
            "tag VIP, sandbox",
            AudienceRule {
                matching: Match::All,
                conditions: vec![cond(Field::Tag, Op::Is, vip)],
            },
            vec![ChannelKind::Sandbox],
        ),
        (
            "VIP and not New, WhatsApp then SMS",
            AudienceRule {
                matching: Match::All,
                conditions: vec![
                    cond(Field::Tag, Op::Is, vip),
                    cond(Field::Tag, Op::IsNot, new),
                ],
            },
            vec![ChannelKind::Whatsapp, ChannelKind::Sms],
        ),
        (
            "VIP or Sales-bot, email then SMS",
            AudienceRule {
                matching: Match::Any,
                conditions: vec![
                    cond(Field::Tag, Op::Is, vip),
                    cond(Field::RobotGroup, Op::Is, sales),
                ],
            },
            vec![ChannelKind::Email, ChannelKind::Sms],
        ),
    ];
    const AUDIENCE_RUNS: usize = 5;
    println!(
        "  audience (wizard), {AUDIENCE_RUNS} runs each        count p50   breakdown p50   customers"
    );
    for (name, rule, kinds) in cases {
        let (mut counts, mut breakdowns) = (Vec::new(), Vec::new());
        let mut n = 0;
        for _ in 0..AUDIENCE_RUNS {
            let t = Instant::now();
            n = db.inspect().audience_count(&rule, &kinds).await?;
            counts.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(db.audience_breakdown(&rule, &kinds).await?);
            breakdowns.push(t.elapsed());
        }
        counts.sort();
        breakdowns.sort();
        println!(
            "  {:<40} {:>9.0} ms {:>12.0} ms {:>11}",
            name,
            ms(counts[AUDIENCE_RUNS / 2]),
            ms(breakdowns[AUDIENCE_RUNS / 2]),
            n
        );
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn wasm_size() {
    let path = std::path::Path::new("target/site/pkg/herald.wasm");
    match std::fs::read(path) {
        Ok(bytes) => {
            let gz = std::process::Command::new("gzip")
                .args(["-9", "-c"])
                .arg(path)
                .output()
                .map(|o| o.stdout.len())
                .unwrap_or(0);
            println!(
                "WASM bundle ({}): {} KB raw, {} KB gzipped (target <= 200 KB; release build: scripts/run.sh or cargo leptos build --release)",
                path.display(),
                bytes.len() / 1024,
                gz / 1024
            );
        }
        Err(_) => println!("WASM bundle: not built yet (cargo leptos build --release)"),
    }
}

/// The application state the binary serves with, over `db` (files under `dir`), sending
/// with `dispatcher`.
fn app_state(
    db: &Db,
    dispatcher: std::sync::Arc<herald::server::dispatch::Dispatcher>,
    dir: &std::path::Path,
) -> anyhow::Result<herald::server::AppState> {
    let (leptos_options, mut conf) =
        herald::server::config::load(std::path::Path::new("Leptos.toml"))?;
    conf.data_dir = dir.to_path_buf();
    Ok(herald::server::AppState {
        dispatcher,
        ..herald::server::startup::state(
            leptos_options,
            conf,
            herald::server::startup::Parts {
                db: db.clone(),
                clock: std::sync::Arc::new(herald::server::clock::SystemClock),
                links: Default::default(),
            },
        )
    })
}

/// Serves `state` on a free loopback port; its address.
async fn serve(state: herald::server::AppState) -> anyhow::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, herald::server::http::router(state)).await });
    Ok(addr)
}

/// The dispatcher's figures, on SQLite and PostgreSQL: materialising a million recipients,
/// deliveries per second from a due schedule to recorded state through a fake receiver over
/// HTTP on loopback (the webhook channel), and how soon after a pause requests stop.
mod dispatch {
    use crate::TempPg;
    use std::sync::{Arc, Mutex};
    use std::time::{Duration, Instant};

    use axum::routing::post;
    use chrono::Utc;
    use herald::model::Role;
    use herald::model::audience::{AudienceRule, Condition, Field, Match, Op};
    use herald::model::compose::{Compose, Intent};
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
        author: i64,
        channel: i64,
        rule: AudienceRule,
        key: &str,
    ) -> anyhow::Result<i64> {
        let now = Utc::now();
        let v = Compose {
            name: key.into(),
            body: "Hi {{first_name|there}}, this week only 🎉".into(),
            audience: rule,
            channel_ids: vec![channel],
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

    async fn bench(label: &str, db: &Db) -> anyhow::Result<()> {
        println!("Dispatcher on {label}:");
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
        let author = db
            .create_user("bench@herald.test", "Bench", Role::Admin, "x", now)
            .await?;
        let (url, arrivals) = receiver().await?;
        let channel = |name: &str, rate: i64| NewChannel {
            kind: "webhook".into(),
            name: name.into(),
            config_json: serde_json::json!({ "url": url, "secret": "bench" }).to_string(),
            rate_per_sec: rate,
        };
        let fast = db
            .insert_channel(&channel("Receiver", 1_000_000), now)
            .await?;
        let paced = db
            .insert_channel(&channel("Receiver, paced", 2_000), now)
            .await?;

        // Materialising: everyone, in one INSERT … SELECT.
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
        db.cancel_broadcast(everyone, author, Utc::now()).await?;

        let dispatcher = Arc::new(Dispatcher::new(
            db.clone(),
            Arc::new(SystemClock),
            Arc::new(SandboxProvider::default()),
            Settings::default(),
        ));
        dispatcher.clone().spawn();

        // Throughput: a tenth of the customers (the VIP tag) from due to recorded.
        let vip = db.ensure_tag("VIP").await?;
        let rule = AudienceRule {
            matching: Match::All,
            conditions: vec![Condition {
                field: Field::Tag,
                op: Op::Is,
                id: vip,
            }],
        };
        let before = arrivals.lock().unwrap().len();
        let t = Instant::now();
        let id = broadcast(db, author, fast, rule.clone(), "bench-throughput").await?;
        dispatcher.poke();
        wait_sent(db, id).await?;
        let took = t.elapsed();
        let n = db.broadcast(id).await?.sent_count;
        assert_eq!(arrivals.lock().unwrap().len() - before, n as usize);
        println!(
            "  send: {n} deliveries in {:.1} s = {:.0} deliveries/s, each recorded (target ≥ 5,000/s)",
            took.as_secs_f64(),
            n as f64 / took.as_secs_f64()
        );

        // The same tenth on WhatsApp, through a Cloud API fake: first without its reports,
        // then with them flowing while it sends (sent, delivered and read for every message,
        // a reply quoting it for a fifth, shuffled, one in ten posted twice), each verified
        // and applied by this process's router as the binary serves it.
        let dir = std::env::temp_dir().join(format!("herald-dispatch-app-{}", std::process::id()));
        let addr = crate::serve(crate::app_state(db, dispatcher.clone(), &dir)?).await?;
        // Every customer here wrote within the day: free-form messages may reach them.
        let fake_config = FakeConfig {
            read_per_mille: 1000,
            reply_per_mille: 200,
            repeat_per_mille: 100,
            posters: 32,
            enforce_window: false,
            ..FakeConfig::default()
        };
        let (fake, base) = FakeWhatsApp::start(fake_config).await?;
        let whatsapp = db
            .insert_channel(&fake.channel(&base, 1_000_000), now)
            .await?;
        for with_reports in [false, true] {
            if with_reports {
                fake.send_webhooks_to(vec![format!("http://{addr}/webhooks/whatsapp/{whatsapp}")]);
            }
            let retries = herald::server::db::retry::transient_retries();
            let posted = fake.posted();
            let accepted = fake.accepted().len();
            let t = Instant::now();
            let key = format!("bench-whatsapp-{with_reports}");
            let id = broadcast(db, author, whatsapp, rule.clone(), &key).await?;
            dispatcher.poke();
            wait_sent(db, id).await?;
            let took = t.elapsed();
            // Counted at the provider.
            let n = fake.accepted().len() - accepted;
            if !with_reports {
                println!(
                    "  send on WhatsApp (Cloud API fake), no reports: {n} deliveries in {:.1} s = {:.0}/s",
                    took.as_secs_f64(),
                    n as f64 / took.as_secs_f64()
                );
                continue;
            }
            let during = fake.posted() - posted;
            fake.settle(Duration::from_secs(600)).await;
            let all = t.elapsed();
            let c2 = db.inspect().counters(id).await?;
            println!(
                "  send on WhatsApp with its reports flowing: {n} deliveries in {:.1} s = {:.0}/s, each recorded, \
                 while {during} webhooks were applied; all {} applied {:.1} s after the start \
                 ({} delivered, {} read, {} replied; {} answered with an error, {} transient retries)",
                took.as_secs_f64(),
                n as f64 / took.as_secs_f64(),
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

        // Firing on time: scheduled 1.5 s ahead; how late did it start?
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
                },
                channel_ids: vec![fast],
                scheduled_at: Some(at),
                ..Default::default()
            }
            .validate(Intent::Schedule, Utc::now())
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let id = db
                .create_broadcast(&v, author, &format!("bench-on-time-{n}"), Utc::now())
                .await?
                .0;
            dispatcher.poke();
            let started = loop {
                if let Some(t) = db.broadcast(id).await?.started_at {
                    break t;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            late.push((started - at).num_milliseconds());
        }
        println!("  on time: started {late:?} ms after the scheduled time (target ≤ 1,000 ms)");

        // Pause: while sending at 2,000/s, as the list's toggle does it.
        let id = broadcast(db, author, paced, rule, "bench-pause").await?;
        dispatcher.poke();
        // Pause a second in (or halfway, for a small audience).
        loop {
            let b = db.broadcast(id).await?;
            if b.audience_total > 0 && b.sent_count >= (b.audience_total / 2).min(2_000) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        db.set_paused(id, true, author, Utc::now()).await?;
        dispatcher.halt(id);
        let paused = Instant::now();
        tokio::time::sleep(Duration::from_secs(1)).await;
        let last = arrivals
            .lock()
            .unwrap()
            .iter()
            .filter(|a| **a > paused)
            .map(|a| *a - paused)
            .max();
        let later = arrivals
            .lock()
            .unwrap()
            .iter()
            .filter(|a| **a > paused)
            .count();
        println!(
            "  pause: {later} requests arrived after it, the last {:.1} ms after (target ≤ 250 ms)",
            last.map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
        );
        db.cancel_broadcast(id, author, Utc::now()).await?;
        dispatcher.stop();
        tokio::time::sleep(Duration::from_millis(300)).await;
        println!();
        Ok(())
    }
}

/// Webhook ingestion: signed WhatsApp status callbacks ("delivered") posted over HTTP on
/// loopback to the real router, each verified (HMAC-SHA256) and applied with its counters.
mod webhooks {
    use crate::TempPg;
    use std::sync::Arc;
    use std::time::Instant;

    use chrono::Utc;
    use futures::StreamExt;
    use herald::model::Role;
    use herald::model::compose::{Compose, Intent};
    use herald::server::channels::webhook::signature;
    use herald::server::clock::SystemClock;
    use herald::server::db::{Db, NewChannel, Outcome};

    const EVENTS: usize = 20_000;

    pub async fn run() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("herald-hooks-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let sqlite = Db::connect(&format!("sqlite://{}", dir.join("h.db").display())).await?;
        let r = bench("SQLite", sqlite.clone(), &dir).await;
        sqlite.close().await;
        r?;
        if let Some(pg) = TempPg::create("herald_hooks").await? {
            let r = bench("PostgreSQL", pg.db.clone(), &dir).await;
            pg.drop().await?;
            r?;
        }
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }

    async fn bench(label: &str, db: Db, dir: &std::path::Path) -> anyhow::Result<()> {
        let now = Utc::now();
        herald::server::customers::generate(&db, EVENTS, now, |_| {}).await?;
        let author = db
            .create_user("hooks@herald.test", "Hooks", Role::Admin, "x", now)
            .await?;
        let channel = db
            .insert_channel(
                &NewChannel {
                    kind: "webhook".into(),
                    name: "Receiver".into(),
                    config_json: r#"{"app_secret":"meta-app-secret"}"#.into(),
                    rate_per_sec: 1000,
                },
                now,
            )
            .await?;
        let v = Compose {
            name: "hooks".into(),
            body: "Hi".into(),
            channel_ids: vec![channel],
            ..Default::default()
        }
        .validate(Intent::SendNow, now)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let b = db
            .create_broadcast(&v, author, "hooks-bench-key-1", now)
            .await?
            .0;
        db.fire(b, now, chrono::Duration::hours(1)).await?;
        let claimed = db
            .claim_broadcast(b, 1_000_000, now, now + chrono::Duration::seconds(600))
            .await?;
        let n = claimed.len();
        let results: Vec<_> = claimed
            .into_iter()
            .map(|c| {
                let id = format!("wamid.{}", c.id);
                (
                    c,
                    Outcome::Sent {
                        provider_message_id: id,
                        replayed: false,
                    },
                )
            })
            .collect();
        db.record(&results, now).await?;
        // The deliveries went out on a webhook channel; the reports come on a WhatsApp one.
        sqlx_set_whatsapp(&db, channel).await?;

        let dispatcher = Arc::new(herald::server::dispatch::Dispatcher::new(
            db.clone(),
            Arc::new(SystemClock),
            Default::default(),
            Default::default(),
        ));
        let addr = crate::serve(crate::app_state(&db, dispatcher, dir)?).await?;
        let url = format!("http://{addr}/webhooks/whatsapp/{channel}");
        let client = herald::server::channels::http_client();
        let bodies: Vec<String> = results
            .iter()
            .map(|(c, _)| {
                serde_json::json!({ "object": "whatsapp_business_account", "entry": [{ "id": "W", "changes": [{ "field": "messages", "value": {
                    "messaging_product": "whatsapp",
                    "statuses": [{ "id": format!("wamid.{}", c.id), "status": "delivered", "timestamp": "1700000000", "recipient_id": "x" }]
                }}]}]})
                .to_string()
            })
            .collect();
        let t = Instant::now();
        let ok = futures::stream::iter(bodies)
            .map(|body| {
                let (client, url) = (client.clone(), url.clone());
                async move {
                    let sig = signature("meta-app-secret", body.as_bytes());
                    client
                        .post(&url)
                        .header("content-type", "application/json")
                        .header("x-hub-signature-256", sig)
                        .body(body)
                        .send()
                        .await
                        .map(|r| r.status().is_success())
                        .unwrap_or(false)
                }
            })
            .buffer_unordered(32)
            .filter(|ok| futures::future::ready(*ok))
            .count()
            .await;
        let took = t.elapsed();
        let delivered = db.inspect().counters(b).await?[2];
        println!(
            "Webhooks on {label}: {ok} of {n} signed status callbacks in {:.1} s = {:.0} verified events/s, {delivered} deliveries now delivered (target ≥ 4,000/s)",
            took.as_secs_f64(),
            ok as f64 / took.as_secs_f64()
        );
        Ok(())
    }

    async fn sqlx_set_whatsapp(db: &Db, channel: i64) -> anyhow::Result<()> {
        db.update_channel(channel, "Receiver", r#"{"app_secret":"meta-app-secret","phone_number_id":"1","access_token":"x","verify_token":"v"}"#, true, 1000, 1, "bench", Utc::now())
            .await?;
        db.inspect().set_channel_kind(channel, "whatsapp").await?;
        Ok(())
    }
}

/// The results page of a broadcast to every generated customer (about 980,000 deliveries):
/// the counters, and pages of the per-recipient table with each filter, as the page's server
/// functions run them.
mod results {
    use crate::{TempPg, customers, ms};
    use std::time::Instant;

    use chrono::Utc;
    use herald::model::audience::AudienceRule;
    use herald::model::compose::{Compose, Intent};
    use herald::model::results::RecipientFilter;
    use herald::model::{CurrentUser, Role};
    use herald::server::broadcast::results::{recipients, results};
    use herald::server::db::{Db, Dialect, NewChannel, RecipientAnchor};

    const RUNS: usize = 100;

    pub async fn run() -> anyhow::Result<()> {
        let dir = std::env::temp_dir().join(format!("herald-results-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let only = std::env::var("HERALD_BENCH_ONLY").unwrap_or_default();
        if only != "postgres" {
            let sqlite = Db::connect(&format!("sqlite://{}", dir.join("r.db").display())).await?;
            let r = bench("SQLite", &sqlite).await;
            sqlite.close().await;
            let _ = std::fs::remove_dir_all(&dir);
            r?;
        }
        if only == "sqlite" {
            return Ok(());
        }
        if let Some(pg) = TempPg::create("herald_results").await? {
            let r = bench("PostgreSQL", &pg.db).await;
            pg.drop().await?;
            r?;
        } else {
            println!("Results on PostgreSQL: skipped (set TEST_DATABASE_URL=postgres://…)\n");
        }
        Ok(())
    }

    async fn bench(label: &str, db: &Db) -> anyhow::Result<()> {
        let now = Utc::now();
        let t = Instant::now();
        herald::server::customers::generate(db, customers(), now, |_| {}).await?;
        let author = db
            .create_user("results@herald.test", "Results", Role::Manager, "x", now)
            .await?;
        let channel = db
            .insert_channel(
                &NewChannel {
                    kind: "webhook".into(),
                    name: "Receiver".into(),
                    config_json: "{}".into(),
                    rate_per_sec: 1000,
                },
                now,
            )
            .await?;
        let v = Compose {
            name: "results bench".into(),
            body: "Hi".into(),
            audience: AudienceRule::default(),
            channel_ids: vec![channel],
            ..Default::default()
        }
        .validate(Intent::SendNow, now)
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let b = db
            .create_broadcast(&v, author, "results-bench-1", now)
            .await?
            .0;
        db.fire(b, now, chrono::Duration::hours(1)).await?;
        // Outcomes by id: 2 % failed, then 60 % read, 30 % delivered, the rest sent; 5 % replied.
        db.inspect()
            .execute(&format!(
                "UPDATE deliveries SET \
             state = CASE WHEN id % 50 = 0 THEN 'failed' WHEN id % 10 < 6 THEN 'read' \
                          WHEN id % 10 < 9 THEN 'delivered' ELSE 'sent' END, \
             provider_message_id = 'bench-' || id, sent_at = created_at, \
             delivered_at = CASE WHEN id % 50 <> 0 AND id % 10 < 9 THEN created_at END, \
             read_at = CASE WHEN id % 50 <> 0 AND id % 10 < 6 THEN created_at END, \
             replied_at = CASE WHEN id % 50 <> 0 AND id % 20 = 1 THEN created_at END, \
             error = CASE WHEN id % 50 = 0 THEN 'Refused by the receiver (400)' END \
             WHERE broadcast_id = {b}"
            ))
            .await?;
        db.rebuild_counters(b).await?;
        db.inspect()
            .execute(&format!(
                "UPDATE broadcasts SET status = 'sent', finished_at = started_at WHERE id = {b}"
            ))
            .await?;
        match db.dialect() {
            Dialect::Postgres => {
                db.inspect().maintain().await?;
                db.inspect().execute("VACUUM ANALYZE deliveries").await?;
            }
            Dialect::Sqlite => {
                db.inspect().execute("ANALYZE").await?;
            }
        }
        let audience = db.inspect().counters(b).await?[0];
        println!(
            "Results on {label}: a broadcast to {audience} recipients, set up in {:.0} s",
            t.elapsed().as_secs_f64()
        );
        let viewer = CurrentUser {
            id: author,
            email: "results@herald.test".into(),
            name: "Results".into(),
            role: Role::Manager,
            time_zone: "Europe/Berlin".into(),
        };
        let vip = db.ensure_tag("VIP").await?;
        let middle = db
            .recipients_page(b, &RecipientFilter::default(), RecipientAnchor::After(0), 1)
            .await?
            .0
            .first()
            .map(|r| r.delivery_id + audience / 2)
            .unwrap_or(0);
        let filter =
            |status: Option<&str>, tag: Option<i64>, assignee: Option<i64>| RecipientFilter {
                status: status.map(str::to_string),
                tag,
                assignee,
                channel: None,
            };
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let t = Instant::now();
            std::hint::black_box(results(db, &viewer, b).await?);
            times.push(t.elapsed());
        }
        times.sort();
        println!("  ({RUNS} runs each)                                   p50        p99");
        println!(
            "  {:<48} {:>7.2} ms {:>7.2} ms",
            "numbers, rates and per-channel breakdown",
            ms(times[RUNS / 2]),
            ms(times[RUNS * 99 / 100])
        );
        let cases: Vec<(&str, RecipientFilter, RecipientAnchor)> = vec![
            (
                "recipients, first page",
                filter(None, None, None),
                RecipientAnchor::First,
            ),
            (
                "recipients, a page in the middle",
                filter(None, None, None),
                RecipientAnchor::After(middle),
            ),
            (
                "recipients, previous page from the middle",
                filter(None, None, None),
                RecipientAnchor::Before(middle),
            ),
            (
                "failed (2 %), first page",
                filter(Some("failed"), None, None),
                RecipientAnchor::First,
            ),
            (
                "failed, a page in the middle",
                filter(Some("failed"), None, None),
                RecipientAnchor::After(middle),
            ),
            (
                "replied (5 %), first page",
                filter(Some("replied"), None, None),
                RecipientAnchor::First,
            ),
            (
                "tag VIP (10 %), first page",
                filter(None, Some(vip), None),
                RecipientAnchor::First,
            ),
            (
                "tag VIP and read, first page",
                filter(Some("read"), Some(vip), None),
                RecipientAnchor::First,
            ),
            (
                "unassigned, first page",
                filter(None, None, Some(0)),
                RecipientAnchor::First,
            ),
        ];
        for (name, f, anchor) in cases {
            let mut times = Vec::with_capacity(RUNS);
            let mut shown = 0;
            for _ in 0..RUNS {
                let t = Instant::now();
                let page = recipients(db, &viewer, b, f.clone(), anchor).await?;
                times.push(t.elapsed());
                shown = page.rows.len();
            }
            times.sort();
            println!(
                "  {:<48} {:>7.2} ms {:>7.2} ms  ({shown} rows)",
                name,
                ms(times[RUNS / 2]),
                ms(times[RUNS * 99 / 100])
            );
        }
        println!("  (target: the page in <= 50 ms)\n");
        Ok(())
    }
}
