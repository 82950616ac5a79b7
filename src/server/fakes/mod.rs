//! Local stand-ins for providers, as strict as their documentation, used by the tests and the
//! benchmark (which is part of this crate, so they live here rather than under `tests/`).

pub mod whatsapp;
