//! The integration tests, one binary (the crate is linked once, not seventeen times): a
//! module per area, with the shared helpers in `common` (test databases on both backends,
//! `on_both_backends!`) and, for the HTTP surface, `http`'s `TestApp`-style helpers. The
//! process-level tests (the real binary killed mid-send, started broken) are `tests/process`.
#![cfg(feature = "ssr")]

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod ab;
mod architecture;
mod audience;
mod channels_e2e;
mod classify;
mod compose;
mod config_agreement;
mod connected;
mod consent;
mod cost;
mod customers;
mod dispatch;
mod doubt;
mod email;
mod events;
mod fallback;
mod files;
mod fuzz;
mod http;
mod import;
mod labels;
mod opt_out;
mod replies;
mod retarget;
mod secrets;
mod sms;
mod ssrf;
mod staff;
mod storage;
mod telegram;
mod waves;
mod webhook;
mod whatsapp;
