//! The results page of a broadcast to every generated customer (about 980,000 deliveries):
//! the counters, and pages of the per-recipient table with each filter, as the page's server
//! functions run them.

use crate::{TempPg, customers, ms};
use std::time::Instant;

use chrono::Utc;
use herald::model::audience::AudienceRule;
use herald::model::compose::{Compose, Intent};
use herald::model::results::RecipientFilter;
use herald::model::{CurrentUser, Role, UserId};
use herald::server::broadcast::results::{recipients, results};
use herald::server::db::states::{BROADCAST_SENT, DELIVERED, FAILED, READ, SENT};
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
    let t = Instant::now();
    let (b, author) = settled_broadcast(db).await?;
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
    let cases = cases(middle, vip);
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

/// A finished broadcast to every generated customer, its outcomes written in bulk (by id: 2 %
/// failed, then 60 % read, 30 % delivered, the rest sent; 5 % replied), counters rebuilt and
/// the database analysed: (broadcast, its author).
async fn settled_broadcast(db: &Db) -> anyhow::Result<(i64, UserId)> {
    let now = Utc::now();
    herald::server::customers::generate(db, customers(), now, |_| {}).await?;
    let author = UserId(
        db.create_user("results@herald.test", "Results", Role::Manager, "x", now)
            .await?,
    );
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
         state = CASE WHEN id % 50 = 0 THEN {FAILED} WHEN id % 10 < 6 THEN {READ} \
                      WHEN id % 10 < 9 THEN {DELIVERED} ELSE {SENT} END, \
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
            "UPDATE broadcasts SET status = {BROADCAST_SENT}, finished_at = started_at WHERE id = {b}"
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
    Ok((b, author))
}

/// The recipient pages measured: (what, filter, page).
fn cases(middle: i64, vip: i64) -> Vec<(&'static str, RecipientFilter, RecipientAnchor)> {
    let filter = |status: Option<&str>, tag: Option<i64>, assignee: Option<i64>| RecipientFilter {
        status: status.map(str::to_string),
        tag,
        assignee,
        channel: None,
    };
    vec![
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
    ]
}
