//! Local stand-ins for providers, as strict as their documentation (and, in `sinks`, sinks that
//! only take what is sent, for measuring), used by the tests and the benchmark (which is part of this crate, so they live here rather than under `tests/`).

pub mod sinks;
pub mod telegram;
pub mod twilio;
pub mod whatsapp;
