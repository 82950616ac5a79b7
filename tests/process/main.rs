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

/// A field of a process's `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`), 0 if unreadable.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
