//! Everything that runs only on the server, one folder per stage of a broadcast's life:
//!
//! - [`broadcast`]: compose (the wizard), schedule, test send, the list, the results;
//! - [`dispatch`]: fire due broadcasts (materialise the audience), claim, send within the
//!   channel's rate, back off, record;
//! - [`reports`]: the providers' delivery reports and replies, batched into the database;
//! - [`chat`]: following up with a customer from the results;
//! - [`channels`]: the provider adapters and the channels page's rules;
//! - [`customers`]: import, edit, tags, export, unsubscribe links, generated customers;
//! - [`accounts`]: passwords, sessions, the role check;
//! - [`http`]: axum handlers only (extract, call a service, respond), the router and its
//!   middleware;
//! - [`db`]: SQL only.
//!
//! [`startup`] builds configuration → state → router once, for `main`, the tests and the
//! benchmark. `docs/ARCHITECTURE.md` walks through a broadcast's life folder by folder.

pub mod accounts;
pub mod broadcast;
pub mod channels;
pub mod chat;
pub mod chat_hub;
pub mod cli;
pub mod clock;
pub mod config;
pub mod customers;
pub mod db;
pub mod dispatch;
pub mod error;
pub mod fakes;
pub mod files;
pub mod http;
pub mod live;
pub mod reports;
pub mod seed;
pub mod startup;
pub mod state;
pub mod storage;
pub mod stream_slots;
pub mod timefmt;
pub mod uploads;
pub mod workspace;

pub use state::AppState;
