//! What providers report after a send: delivery statuses and replies. Webhooks
//! ([`crate::server::http::webhooks`]) read each provider's format into [`Report`]s;
//! [`ingest::Ingest`] batches them, many requests per transaction, into
//! [`Db::apply_events`](crate::server::db::Db::apply_events), which moves each delivery
//! forward through [`crate::model::delivery`]. A report that overtakes the record of its
//! send is kept as an early report and applied once the send is recorded.
//!
//! [`Report`]: crate::server::db::Report

pub mod ingest;
