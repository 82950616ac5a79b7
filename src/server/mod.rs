//! Everything that runs only on the server.

pub mod accounts;
pub mod attachments;
pub mod auth;
pub mod broadcasts;
pub mod bulk_tags;
pub mod channels;
pub mod channels_web;
pub mod chat;
pub mod clock;
pub mod config;
pub mod customer_edit;
pub mod customers;
pub mod db;
pub mod dispatcher;
pub mod export;
pub mod fakes;
pub mod import;
pub mod import_web;
pub mod inbound;
pub mod ingest;
pub mod labels;
pub mod seed;
pub mod serve;
pub mod startup;
pub mod state;
pub mod timefmt;
pub mod unsubscribe;
pub mod wizard;

pub use state::AppState;
