//! A deploy is not a crash: the real binary stopped with SIGTERM three times while it sends a
//! broadcast on Telegram (the strict Bot API fake, at Telegram's own limits) and email (an SMTP
//! server), neither of which deduplicates anything or can tell afterwards whether a message
//! arrived. Counted at the fakes: every customer gets exactly one message, nobody is lost,
//! nothing is left unknown, and each stop exits 0 within its grace.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use herald::model::compose::{Compose, Intent};
use herald::model::{Lifecycle, Role, UserId};
use herald::server::db::NewChannel;
use herald::server::fakes::sinks::{self, Seen};
use herald::server::fakes::telegram::{Config, FakeTelegram};

use crate::common;
use crate::crash::Herald;

/// The grace each stop is given.
const GRACE_SECONDS: u64 = 10;

fn start(t: &common::TestDb) -> Herald {
    start_with(t, &[])
}

/// The real binary on `t`'s database, with settings for a test (short lease and window) and
/// `env` on top.
pub(crate) fn start_with(t: &common::TestDb, env: &[(&str, &str)]) -> Herald {
    Herald(
        std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
            .env(
                "HERALD_CONFIG",
                concat!(env!("CARGO_MANIFEST_DIR"), "/Leptos.toml"),
            )
            .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
            .env("DATABASE_URL", &t.url)
            .env("HERALD_SECRET_KEY", common::SECRET_KEY)
            .env("HERALD_DATA_DIR", t.dir())
            .env("HERALD_DEMO_DATA", "false")
            .env("HERALD_ALLOW_PRIVATE_ENDPOINTS", "true")
            .env("HERALD_DISPATCH_LEASE_SECONDS", "2")
            .env("HERALD_DISPATCH_RECONCILE_SECONDS", "5")
            .env("HERALD_SHUTDOWN_GRACE_SECONDS", GRACE_SECONDS.to_string())
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start herald"),
    )
}

/// Sends SIGTERM, as a deploy does, and waits for the exit; how long it took.
async fn terminate(h: &mut Herald) -> Duration {
    let at = Instant::now();
    let pid = h.0.id().to_string();
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(sent.success());
    loop {
        if let Some(status) = h.0.try_wait().unwrap() {
            assert!(status.success(), "a stop exits 0: {status:?}");
            return at.elapsed();
        }
        assert!(
            at.elapsed() < Duration::from_secs(GRACE_SECONDS + 5),
            "still running past its grace"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn sigterm_three_times_sends_everyone_exactly_once(t: &common::TestDb) {
    const N: usize = 300;
    // Answers take a while, as the Bot API's do: several requests are in flight at each stop.
    let config = Config {
        latency: Duration::from_millis(400),
        ..Config::default()
    };
    let (telegram, base) = FakeTelegram::start(config).await.unwrap();
    let seen = Arc::new(Seen::default());
    let smtp = sinks::smtp_sink(seen.clone()).await.unwrap();
    let now = Utc::now();
    let tg =
        t.db.insert_channel(&telegram.channel(&base, 30), now)
            .await
            .unwrap();
    let email =
        t.db.insert_channel(
            &NewChannel {
                kind: "email".into(),
                name: "Email".into(),
                config_json: serde_json::json!({
                    "smtp_host": "127.0.0.1", "smtp_port": smtp, "security": "none",
                    "from": "News <news@shop.test>",
                })
                .to_string(),
                rate_per_sec: 30,
            },
            now,
        )
        .await
        .unwrap();
    let people = sinks::email_and_telegram_customers(N, 55);
    t.db.insert_customers_bulk(&people, now).await.unwrap();
    let author =
        t.db.create_user("ops@herald.test", "Ops", Role::Admin, "x", now)
            .await
            .unwrap();
    let v = Compose {
        name: "Deploy day".into(),
        body: "Hi {{first_name|there}}, our spring menu is out.".into(),
        channel_ids: vec![tg, email],
        ..Default::default()
    }
    .validate(Intent::SendNow, now)
    .unwrap();
    let id =
        t.db.create_broadcast(&v, UserId(author), "deploy-test-key-001", now)
            .await
            .unwrap()
            .0;
    let reached = || {
        telegram.messages().len() + seen.mails.load(std::sync::atomic::Ordering::SeqCst) as usize
    };
    for stop in 1..=3 {
        let mut h = start(t);
        let before = reached();
        let started = Instant::now();
        while reached() < before + 40 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "sending never resumed"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let took = terminate(&mut h).await;
        eprintln!("stop {stop}: {} reached, exited in {took:?}", reached());
    }
    assert!(reached() < N, "the stops came mid-send");
    let mut h = start(t);
    let started = Instant::now();
    while t.db.broadcast(id).await.unwrap().status != Lifecycle::Sent {
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "not sent: {:?}",
            t.db.inspect().delivery_states(id).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    terminate(&mut h).await;

    let chats = telegram.received();
    let mails = seen.mail_to.lock().unwrap().clone();
    assert_eq!(chats.len() + mails.len(), N, "nobody lost");
    assert!(chats.values().all(|n| *n == 1), "a chat got two: {chats:?}");
    assert!(
        mails.values().all(|n| *n == 1),
        "a mailbox got two: {mails:?}"
    );
    let record = t.db.broadcast(id).await.unwrap();
    assert_eq!(
        (record.sent_count, record.unknown_count, record.failed_count),
        (N as i64, 0, 0),
        "a graceful stop leaves nothing unknown"
    );
}

#[tokio::test]
async fn sqlite_sigterm_three_times_sends_everyone_exactly_once() {
    let t = common::sqlite().await;
    sigterm_three_times_sends_everyone_exactly_once(&t).await;
    t.cleanup().await;
}

#[tokio::test]
async fn postgres_sigterm_three_times_sends_everyone_exactly_once() {
    let Some(t) = common::postgres().await else {
        return;
    };
    sigterm_three_times_sends_everyone_exactly_once(&t).await;
    t.cleanup().await;
}
