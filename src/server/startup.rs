//! Building Herald: configuration → state → router, and running it. The binary, the tests and the benchmark all serve
//! the state made here (`http::router` turns it into the router), so what they test is what
//! runs.

use std::sync::Arc;

use anyhow::Context;

use leptos::config::LeptosOptions;

use crate::server::AppState;
use crate::server::channels::sandbox::SandboxProvider;
use crate::server::clock::{Clock, SystemClock};
use crate::server::config::Config;
use crate::server::customers::import_jobs;
use crate::server::customers::unsubscribe::Links;
use crate::server::db::Db;
use crate::server::dispatch::{Dispatcher, Settings};
use crate::server::reports::ingest;
use crate::server::{config, seed};

/// What the state is built from besides the configuration: the database, the clock, and the
/// key that signs links in messages.
pub struct Parts {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub links: Links,
}

/// The dispatcher's settings as the configuration gives them.
pub fn dispatcher_settings(config: &Config, links: &Links) -> Settings {
    Settings {
        grace: chrono::Duration::minutes(config.dispatch_grace_minutes),
        lease: chrono::Duration::seconds(config.dispatch_lease_seconds),
        reconcile: chrono::Duration::seconds(config.dispatch_reconcile_seconds),
        files: crate::server::files::Files::configured(config.s3.as_ref(), &config.data_dir)
            .unwrap_or_else(|_| crate::server::files::Files::local(&config.data_dir)),
        links: links.clone(),
        allow_private_endpoints: config.allow_private_endpoints,
        ..Default::default()
    }
}

/// The state every handler reaches. Starts the webhook ingestion writer and the sandbox
/// channel's report loop (on the current tokio runtime); the dispatcher is built but not
/// started (`Dispatcher::spawn`), so a caller decides whether this process sends.
pub fn state(leptos_options: LeptosOptions, config: Config, parts: Parts) -> AppState {
    let Parts { db, clock, links } = parts;
    let sandbox = Arc::new(SandboxProvider::default());
    crate::server::channels::sandbox::apply_reports(
        db.clone(),
        clock.clone(),
        sandbox.report_to_queue(),
    );
    let dispatcher = Arc::new(Dispatcher::new(
        db.clone(),
        clock.clone(),
        sandbox.clone(),
        dispatcher_settings(&config, &links),
    ));
    let accounts = crate::server::accounts::Accounts::new(
        config.sign_in_attempts,
        std::time::Duration::from_secs(config.sign_in_window_seconds as u64),
    );
    let files = dispatcher.files().clone();
    AppState {
        files,
        accounts: Arc::new(accounts),
        chat: Default::default(),
        live: Arc::new(crate::server::live::LiveHub::new(Arc::new(
            crate::server::live::Pages,
        ))),
        leptos_options,
        imports: import_jobs::Imports::new(
            config.data_dir.join("imports"),
            config.import_max_bytes,
        ),
        config: Arc::new(config),
        ingest: Arc::new(ingest::Ingest::start(db.clone())),
        db,
        clock,
        sandbox,
        dispatcher,
        links,
    }
}

/// Runs Herald until Ctrl-C or SIGTERM. Every failure to start comes back as a message that
/// says what to do, never a panic.
pub async fn run(demo: bool) -> anyhow::Result<()> {
    let path = config::config_path();
    let (leptos_options, mut config) = config::load(&path)?;
    config.demo_data |= demo;
    let db = config.open_db().await?;
    let sealed = db.seal_stored_channels().await?;
    if sealed > 0 {
        tracing::info!(
            channels = sealed,
            "sealed the settings of channels stored in clear"
        );
    }
    let clock = database_clock(&db).await?;
    let files = crate::server::files::Files::configured(config.s3.as_ref(), &config.data_dir)
        .context("the S3 settings (s3-bucket, s3-endpoint, s3-region) cannot be used")?;
    tracing::info!(files = %files.place, "uploaded files are kept in");
    if config.demo_data {
        load_demo(&db, clock.now()).await?;
    }
    demo_accounts(&db, &config, clock.now()).await?;
    let wanted = leptos_options.site_addr;
    let listener = tokio::net::TcpListener::bind(wanted).await.with_context(|| {
        format!("cannot listen on {wanted}: is another Herald running? (LEPTOS_SITE_ADDR picks another address)")
    })?;
    let addr = listener.local_addr().unwrap_or(wanted);
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let links = crate::server::customers::unsubscribe::Links::load(&db, &public_url).await?;
    let state = crate::server::startup::state(
        leptos_options,
        config,
        crate::server::startup::Parts {
            db: db.clone(),
            clock,
            links,
        },
    );
    if state.config.dispatcher {
        state.dispatcher.clone().spawn();
        crate::server::reports::prices::spawn(state.clone());
    }
    follow_channel_changes(&state).await;
    crate::server::storage::spawn_sweeper(state.clone());
    crate::server::accounts::guard::spawn_sweeper(state.clone());
    // WhatsApp templates are read again every hour (and on connect, on demand and from the
    // template status webhook).
    let syncing = state.clone();
    tokio::spawn(async move {
        loop {
            crate::server::channels::setup::sync_all_templates(&syncing).await;
            tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
        }
    });
    let app = crate::server::http::router(state.clone());
    println!("Herald is running at http://{addr}");
    say_how_to_sign_in(&db, state.config.demo_data, &public_url).await?;
    let stopping = std::sync::Arc::new(tokio::sync::Notify::new());
    let mut server = tokio::spawn({
        let stopping = stopping.clone();
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(async move { stopping.notified().await })
        .into_future()
    });
    tokio::select! {
        served = &mut server => {
            served.context("the HTTP server's task failed")?.context("the HTTP server stopped with an error")?;
        }
        _ = shutdown_signal() => {
            let grace = std::time::Duration::from_secs(state.config.shutdown_grace_seconds as u64);
            stop_gracefully(&state, &stopping, grace).await;
            // Requests under way get a moment to be answered; event streams never end alone.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), server).await;
        }
    }
    db.close().await;
    Ok(())
}

/// A deploy's stop (SIGTERM, Ctrl-C): new connections and claims end at once, the requests in
/// flight finish and are recorded within `grace`, and then Herald exits. A second signal
/// exits at once.
async fn stop_gracefully(
    state: &crate::server::AppState,
    stopping: &tokio::sync::Notify,
    grace: std::time::Duration,
) {
    println!(
        "Stopping: letting the messages in flight finish (at most {} s; a second signal stops at once)",
        grace.as_secs()
    );
    tokio::spawn(async {
        shutdown_signal().await;
        eprintln!("Second signal: stopping at once.");
        std::process::exit(130);
    });
    // No new connection is taken; requests under way (webhooks among them) are answered.
    stopping.notify_one();
    let drained = state.dispatcher.drain(grace).await;
    if drained {
        println!("Every message in flight was recorded.");
    } else {
        println!("The grace ran out: messages still in flight are uncertain, as after a crash.");
    }
}

/// A channel saved on any instance (rate, token, endpoint, enabled) takes effect here at once:
/// the dispatcher and the webhooks read it again (by `LISTEN` on PostgreSQL, in process on
/// SQLite). After the `LISTEN` connection was re-made, every channel is read again.
async fn follow_channel_changes(state: &crate::server::AppState) {
    let mut changes = state.db.channel_events().await;
    let state = state.clone();
    tokio::spawn(async move {
        loop {
            match changes.recv().await {
                Ok(crate::server::db::RESYNC) => state.dispatcher.forget_channels(),
                Ok(id) => state.dispatcher.forget_channel(id),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    state.dispatcher.forget_channels()
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
            state.ingest.forget_channels();
        }
    });
}

/// The database server's time, as every instance reads it (see [`DbClock`]); this machine's
/// clock may be off, and `HERALD_CLOCK_SKEW_SECONDS` pretends it is (for tests of exactly that).
async fn database_clock(db: &Db) -> anyhow::Result<Arc<dyn Clock>> {
    let mut local: Arc<dyn Clock> = Arc::new(SystemClock);
    if let Some(skew) = std::env::var("HERALD_CLOCK_SKEW_SECONDS")
        .ok()
        .and_then(|s| s.trim().parse::<i64>().ok())
    {
        local = Arc::new(crate::server::clock::SkewedClock {
            inner: local,
            offset: chrono::TimeDelta::seconds(skew),
        });
    }
    let clock = crate::server::clock::DbClock::start(db.clone(), local)
        .await
        .context("reading the database's time failed")?;
    let offset = clock.offset();
    if offset.abs() > chrono::TimeDelta::seconds(2) {
        tracing::warn!(
            seconds = offset.num_milliseconds() as f64 / 1000.0,
            "this machine's clock differs from the database's; Herald keeps to the database's"
        );
    }
    Ok(clock)
}

/// Tells the operator how to sign in: the demo accounts when they are there, how to make the
/// first admin when there is none, and where. The last line printed at start.
async fn say_how_to_sign_in(db: &Db, demo: bool, public_url: &str) -> anyhow::Result<()> {
    if demo && db.user_by_email(seed::DEMO_USERS[0].0).await?.is_some() {
        println!("Demo sign-ins (password \"{}\"):", seed::DEMO_PASSWORD);
        for (email, _, role) in seed::DEMO_USERS {
            println!("  {email:<22} {role}");
        }
    }
    if db.count_active_admins().await? == 0 {
        println!(
            "No admin account yet. Create the first one with:\n  herald create-admin you@example.com\n(it asks for the password)"
        );
    }
    println!("Sign in at {public_url}/login");
    Ok(())
}

/// The demo accounts (password "herald-demo") sign in only while Herald runs with `--demo`: a
/// start without it deactivates them and says so, one with it lets them in again.
/// Also warns about how clients' addresses are read (behind proxies).
async fn demo_accounts(
    db: &Db,
    config: &Config,
    now: chrono::DateTime<chrono::Utc>,
) -> anyhow::Result<()> {
    for warning in config.proxy_warnings() {
        tracing::warn!("{warning}");
    }
    let demo = config.demo_data;
    let changed = db.set_demo_accounts_active(demo, now).await?;
    if !demo && !changed.is_empty() {
        println!(
            "Deactivated the demo accounts ({}): this start is not a demo. Start with --demo to use them again; make your own admin with `herald create-admin`.",
            changed.join(", ")
        );
    }
    Ok(())
}

/// Loads the demo data if the database holds nothing yet (no accounts, customers, tags,
/// channels or broadcasts); says so when it does not.
async fn load_demo(db: &Db, now: chrono::DateTime<chrono::Utc>) -> anyhow::Result<()> {
    if !seed::is_empty(db).await? {
        if db.user_by_email(seed::DEMO_USERS[0].0).await?.is_none() {
            println!("Demo data not loaded: the database already holds data of its own.");
        }
        return Ok(());
    }
    seed::load(db, now)
        .await
        .context("loading the demo data failed")?;
    println!(
        "Loaded demo data: {} customers, {} broadcasts.",
        db.count_customers().await?,
        db.count_broadcasts().await?
    );
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
