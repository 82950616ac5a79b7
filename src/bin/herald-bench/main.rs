//! `herald-bench`: prints performance figures (no pass/fail; see README "Benchmarks").
//!
//! All of them, or one group by name (`herald-bench dispatch|results|media|webhooks`): the
//! dispatcher, the results page, attachments in flight (memory and time in flight), webhook
//! ingestion, then the broadcast and customer lists at scale on SQLite and on PostgreSQL
//! (TEST_DATABASE_URL or DATABASE_URL; skipped with a note when unset), and the gzipped size
//! of the built WASM bundle.

use std::time::Duration;

use herald::server::db::Db;

mod dispatch;
mod lists;
mod media;
mod results;
mod webhooks;

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
    // `herald-bench media`: only the attachments-in-flight figures.
    if only == "media" || only.is_empty() {
        media::run().await?;
        if only == "media" {
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
    let result = match lists::list_bench("SQLite", &sqlite).await {
        Ok(()) => lists::customer_bench("SQLite", &sqlite).await,
        e => e,
    };
    sqlite.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    result?;

    match TempPg::create("herald_bench").await? {
        Some(pg) => {
            let result = match lists::list_bench("PostgreSQL", &pg.db).await {
                Ok(()) => lists::customer_bench("PostgreSQL", &pg.db).await,
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
    // The benchmark's providers are fakes on loopback.
    conf.allow_private_endpoints = true;
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

/// The benchmarks measure sending, whatever the hour: no quiet hours hold their deliveries,
/// and their generated customers need no opt-in records.
pub async fn no_quiet_hours(db: &Db) -> anyhow::Result<()> {
    let rules = herald::model::workspace::Rules {
        quiet: None,
        consent_kinds: Vec::new(),
        ..Default::default()
    };
    db.save_workspace_rules(&rules, None, chrono::Utc::now())
        .await?;
    Ok(())
}
