//! Attachments in flight: the real binary sends a broadcast with ten 20 MB files to email and
//! Telegram recipients (an SMTP sink and a Bot API stand-in in this process, which keep none
//! of it), and its peak resident memory stays under the stated limit. Without the attachment
//! budget, the sixteen sends would hold their messages at once: gigabytes.
//! `herald-bench media` measures the same with 1,000 recipients (docs/BENCHMARKS.md).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::Utc;
use herald::model::compose::{Compose, Intent};
use herald::model::{Role, UserId};
use herald::server::db::NewChannel;
use herald::server::fakes::sinks::{
    Seen, email_and_telegram_customers, smtp_sink, telegram_stand_in, write_pdfs,
};

use super::crash::{free_port, herald_on};
use crate::common;

/// The stated peak: two copies of the largest email (its message, and lettre's escaped copy
/// for the wire: 2 × 270 MB of base64 for 200 MB of files) and the process itself.
const PEAK_LIMIT_MIB: u64 = 768;

/// A process's `VmHWM` (its peak resident memory) in KiB.
fn peak_kib(pid: u32) -> u64 {
    crate::status_kib(pid, "VmHWM")
}

#[tokio::test]
async fn ten_20_mb_files_to_email_and_telegram_stay_under_the_stated_peak() {
    let t = common::sqlite().await;
    let db = &t.db;
    let here = tempfile::tempdir().unwrap();
    let files = here.path().join("attachments");
    std::fs::create_dir_all(&files).unwrap();
    let seen = std::sync::Arc::new(Seen::default());
    let smtp_port = smtp_sink(seen.clone()).await.unwrap();
    let telegram = telegram_stand_in(seen.clone()).await.unwrap();
    let now = Utc::now();
    let channel = |kind: &str, config: serde_json::Value| NewChannel {
        kind: kind.into(),
        name: kind.into(),
        config_json: config.to_string(),
        rate_per_sec: 1_000,
    };
    let email = db
        .insert_channel(
            &channel(
                "email",
                serde_json::json!({ "smtp_host": "127.0.0.1", "smtp_port": smtp_port, "max_message_mb": 500,
                    "security": "none", "from": "news@herald.test" }),
            ),
            now,
        )
        .await
        .unwrap();
    let bot = db
        .insert_channel(
            &channel(
                "telegram",
                serde_json::json!({ "bot_token": "123:memory", "webhook_secret": "s",
                    "base_url": telegram }),
            ),
            now,
        )
        .await
        .unwrap();
    let per_channel = 8;
    let customers = email_and_telegram_customers(2 * per_channel, 888);
    db.insert_customers_bulk(&customers, now).await.unwrap();
    let attachments = write_pdfs(&files, 10, 20).unwrap();
    let author = db
        .create_user("ops@herald.test", "Ops", Role::Admin, "x", now)
        .await
        .unwrap();
    let v = Compose {
        name: "Spring catalogue".into(),
        body: "Hi {{first_name|there}}, the catalogue is attached".into(),
        channel_ids: vec![email, bot],
        attachments,
        ..Default::default()
    }
    .validate(Intent::SendNow, now)
    .unwrap();
    let id = db
        .create_broadcast(&v, UserId(author), "memory-01", now)
        .await
        .unwrap()
        .0;
    let log = here.path().join("herald.log");
    let mut h = herald_on(&t.url, here.path(), free_port(), 60, &log);
    let pid = h.0.id();
    let started = Instant::now();
    let mut peak = 0;
    while db.broadcast(id).await.unwrap().status != herald::model::Lifecycle::Sent {
        peak = peak.max(peak_kib(pid));
        assert!(
            started.elapsed() < Duration::from_secs(300),
            "not sent after 5 minutes: {:?}; the log:\n{}",
            db.inspect().delivery_states(id).await,
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    peak = peak.max(peak_kib(pid));
    h.kill();
    let counters = db.inspect().counters(id).await.unwrap();
    let mails = seen.mails.load(Ordering::Relaxed);
    let uploaded = seen.uploaded_bytes.load(Ordering::Relaxed);
    eprintln!(
        "{} deliveries in {took:?}: {mails} emails ({} MB), {} Bot API calls ({} MB uploaded); \
         peak resident memory {} MiB",
        counters[1],
        seen.mail_bytes.load(Ordering::Relaxed) / 1_000_000,
        seen.telegram_calls.load(Ordering::Relaxed),
        uploaded / 1_000_000,
        peak / 1024
    );
    assert_eq!(counters[0..2], [16, 16], "every delivery sent");
    assert_eq!(counters[5], 0, "none failed");
    assert_eq!(mails, per_channel as u64, "one email each");
    let files_mb = 10 * 20 * 1024 * 1024;
    assert!(
        (files_mb..files_mb + files_mb / 10).contains(&uploaded),
        "each file went up to Telegram once ({uploaded} bytes), then by its file_id"
    );
    assert!(peak > 0, "the peak was read");
    assert!(
        peak / 1024 < PEAK_LIMIT_MIB,
        "peak resident memory {} MiB, over the stated {PEAK_LIMIT_MIB} MiB",
        peak / 1024
    );
    t.cleanup().await;
}
