//! Building Herald: configuration → state. The binary, the tests and the benchmark all serve
//! the state made here (`serve::router` turns it into the router), so what they test is what
//! runs.

use std::sync::Arc;

use leptos::config::LeptosOptions;

use super::channels::sandbox::SandboxProvider;
use super::clock::Clock;
use super::config::Config;
use super::db::Db;
use super::dispatcher::{Dispatcher, Settings};
use super::unsubscribe::Links;
use super::{AppState, import_web, ingest};

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
        files: config.data_dir.join("attachments"),
        links: links.clone(),
        ..Default::default()
    }
}

/// The state every handler reaches. Starts the webhook ingestion writer and the sandbox
/// channel's report loop (on the current tokio runtime); the dispatcher is built but not
/// started (`Dispatcher::spawn`), so a caller decides whether this process sends.
pub fn state(leptos_options: LeptosOptions, config: Config, parts: Parts) -> AppState {
    let Parts { db, clock, links } = parts;
    let sandbox = Arc::new(SandboxProvider::default());
    super::channels::sandbox::apply_reports(db.clone(), clock.clone(), sandbox.report_to_queue());
    let dispatcher = Arc::new(Dispatcher::new(
        db.clone(),
        clock.clone(),
        sandbox.clone(),
        dispatcher_settings(&config, &links),
    ));
    AppState {
        leptos_options,
        imports: import_web::Imports::new(config.data_dir.join("imports"), config.import_max_bytes),
        config: Arc::new(config),
        ingest: Arc::new(ingest::Ingest::start(db.clone())),
        db,
        clock,
        sandbox,
        dispatcher,
        links,
    }
}
