//! Attachments in flight: a broadcast with ten 20 MB files to 1,000 recipients, half on email
//! (SMTP to a sink on loopback) and half on Telegram (a Bot API stand-in on loopback), sent by
//! the dispatcher as the binary runs it. Prints the process's peak resident memory while it
//! sends, against its resident memory before, and how long each delivery's request was in
//! flight (a crash within that time leaves it uncertain: neither channel reports anything).
//!
//! The stand-ins read what they receive as it arrives and keep none of it, so the peak is
//! the dispatcher's (and the adapters'), not theirs.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use chrono::Utc;
use herald::model::compose::{Compose, Intent};
use herald::model::{ChannelId, Role, UserId};
use herald::server::channels::sandbox::SandboxProvider;
use herald::server::clock::SystemClock;
use herald::server::db::{Db, NewChannel};
use herald::server::dispatch::{Dispatcher, Settings};
use herald::server::fakes::sinks::{
    Seen, email_and_telegram_customers, smtp_sink, telegram_stand_in, write_pdfs,
};

const FILES: usize = 10;
const FILE_MB: usize = 20;

/// Recipients (HERALD_BENCH_MEDIA_RECIPIENTS), half on each channel.
fn recipients() -> usize {
    std::env::var("HERALD_BENCH_MEDIA_RECIPIENTS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000)
}

pub async fn run() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("herald-media-{}", std::process::id()));
    let files = dir.join("attachments");
    std::fs::create_dir_all(&files)?;
    let db = Db::connect(&format!("sqlite://{}", dir.join("m.db").display())).await?;
    let r = bench(&db, &files).await;
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
    r
}

async fn bench(db: &Db, files: &std::path::Path) -> anyhow::Result<()> {
    let n = recipients();
    crate::no_quiet_hours(db).await?;
    println!(
        "Attachments in flight ({FILES} × {FILE_MB} MB PDFs to {n} recipients: {} by email, {} on Telegram; SQLite):",
        n / 2,
        n - n / 2
    );
    let now = Utc::now();
    let seen = Arc::new(Seen::default());
    let smtp_port = smtp_sink(seen.clone()).await?;
    let telegram = telegram_stand_in(seen.clone()).await?;
    let email = ChannelId(
        db.insert_channel(
            &NewChannel {
                kind: "email".into(),
                name: "Newsletter".into(),
                config_json: serde_json::json!({
                    "smtp_host": "127.0.0.1", "smtp_port": smtp_port, "security": "none",
                    "from": "News <news@herald.test>", "max_message_mb": 500
                })
                .to_string(),
                rate_per_sec: 100_000,
            },
            now,
        )
        .await?,
    );
    let bot = ChannelId(
        db.insert_channel(
            &NewChannel {
                kind: "telegram".into(),
                name: "Bot".into(),
                config_json: serde_json::json!({
                    "bot_token": "123:bench", "webhook_secret": "s", "base_url": telegram
                })
                .to_string(),
                rate_per_sec: 100_000,
            },
            now,
        )
        .await?,
    );
    let customers = email_and_telegram_customers(n, 777);
    db.insert_customers_bulk(&customers, now).await?;
    let attachments = write_pdfs(files, FILES, FILE_MB)?;
    let author = UserId(
        db.create_user("media@herald.test", "Bench", Role::Admin, "x", now)
            .await?,
    );
    let v = Compose {
        name: "Spring catalogue".into(),
        body: "Hi {{first_name|there}}, the spring catalogue is attached 🌷".into(),
        channel_ids: vec![email.0, bot.0],
        attachments,
        ..Default::default()
    }
    .validate(Intent::SendNow, now)
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let before = rss_kib("VmRSS");
    // The peak from here on (Linux: writing 5 to clear_refs resets VmHWM).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let dispatcher = Arc::new(Dispatcher::new(
        db.clone(),
        Arc::new(SystemClock),
        Arc::new(SandboxProvider::default()),
        Settings {
            files: herald::server::files::Files::in_folder(files),
            ..Settings::default()
        },
    ));
    dispatcher.clone().spawn();
    let started = Instant::now();
    let id = db
        .create_broadcast(&v, author, "bench-media", Utc::now())
        .await?
        .0;
    dispatcher.poke();
    let mut sampled_peak = 0;
    while db.broadcast(id).await?.status != herald::model::Lifecycle::Sent {
        sampled_peak = sampled_peak.max(rss_kib("VmRSS"));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    let peak = rss_kib("VmHWM").max(sampled_peak);
    dispatcher.stop();
    let counters = db.inspect().counters(id).await?;
    let windows = db.inspect().in_flight_ms(id).await?;
    let spread = |channel: ChannelId| {
        let mut ms: Vec<i64> = windows
            .iter()
            .filter(|(c, _)| *c == channel.0)
            .map(|(_, ms)| *ms)
            .collect();
        ms.sort_unstable();
        let at = |q: f64| {
            ms.get(((ms.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(0)
        };
        format!(
            "median {} ms, p99 {} ms, max {} ms",
            at(0.5),
            at(0.99),
            at(1.0)
        )
    };
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "  sent {} of {} ({} failed) in {:.1} s: {} emails ({:.1} GB through SMTP), {} Bot API calls ({} MB uploaded)",
        counters[1],
        counters[0],
        counters[5],
        took.as_secs_f64(),
        seen.mails.load(Ordering::Relaxed),
        seen.mail_bytes.load(Ordering::Relaxed) as f64 / 1e9,
        seen.telegram_calls.load(Ordering::Relaxed),
        seen.uploaded_bytes.load(Ordering::Relaxed) / 1_000_000,
    );
    println!(
        "  resident memory: {:.0} MiB before, peak {:.0} MiB while sending (+{:.0} MiB; attachment budget {} MiB, {} MB of files)",
        mib(before),
        mib(peak),
        mib(peak.saturating_sub(before)),
        herald::server::channels::ATTACHMENT_BUDGET_MIB,
        FILES * FILE_MB
    );
    println!(
        "  in flight per delivery (request start to its record; a crash then leaves it uncertain): email {}; Telegram {}",
        spread(email),
        spread(bot)
    );
    println!();
    Ok(())
}

/// This process's `VmRSS` or `VmHWM` in KiB (0 where /proc is not there).
fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
