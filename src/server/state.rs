//! What every request handler and server function can reach.

use std::sync::Arc;

use axum::extract::FromRef;
use leptos::config::LeptosOptions;

use crate::server::clock::Clock;
use crate::server::config::Config;
use crate::server::db::Db;

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub db: Db,
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    pub imports: Arc<crate::server::customers::import_jobs::Imports>,
    /// The sandbox channel's simulated provider (its memory of idempotency keys).
    pub sandbox: Arc<crate::server::channels::sandbox::SandboxProvider>,
    /// Sends broadcasts; handlers tell it of pauses and new schedules at once.
    pub dispatcher: Arc<crate::server::dispatch::Dispatcher>,
    /// Signs the links Herald puts in messages (unsubscribe).
    pub links: crate::server::customers::unsubscribe::Links,
    /// Stores providers' delivery reports, many requests per transaction.
    pub ingest: Arc<crate::server::reports::ingest::Ingest>,
    /// Sign-in limits and one-time notices.
    pub accounts: Arc<crate::server::accounts::Accounts>,
    /// Live chat streams: a bound per person, one poller per conversation.
    pub chat: Arc<crate::server::chat_hub::ChatHub>,
    /// Live pages: one reader per followed topic, fanned out to every page showing it.
    pub live: Arc<crate::server::live::LiveHub>,
    /// Where uploaded files are: the data folder, or a bucket every instance shares.
    pub files: crate::server::files::Files,
}
