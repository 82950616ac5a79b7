//! What every request handler and server function can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use super::clock::Clock;
use super::config::Config;
use super::db::Db;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: Db,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    pub imports: Arc<super::import_web::Imports>,
    /// The sandbox channel's simulated provider (its memory of idempotency keys).
    pub sandbox: Arc<super::channels::sandbox::SandboxProvider>,
    /// Sends broadcasts; handlers tell it of pauses and new schedules at once.
    pub dispatcher: Arc<super::dispatcher::Dispatcher>,
    /// Signs the links Herald puts in messages (unsubscribe).
    pub links: super::unsubscribe::Links,
    /// Stores providers' delivery reports, many requests per transaction.
    pub ingest: Arc<super::ingest::Ingest>,
}
