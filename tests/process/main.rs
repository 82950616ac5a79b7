//! Tests of the real `herald` binary as a process: killed with SIGKILL while it sends, two
//! instances on one PostgreSQL, reports pouring in while it sends, its memory while it sends
//! large files, and starting with a broken setup.
#![cfg(feature = "ssr")]

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod channels;
mod crash;
mod deploy;
mod first_run;
mod memory;
mod skew;
mod startup;
