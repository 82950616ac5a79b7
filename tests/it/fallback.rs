//! Channel fallback on SQLite and PostgreSQL, driven round by round with a fixed clock and
//! counted at the fakes (the sandbox provider and an SMTP server, neither of which
//! deduplicates): a customer the first channel refuses, or reports undeliverable, gets the
//! next picked channel at once; one it has not delivered to within the broadcast's hours gets
//! it then and not before; one it delivered to never does; nobody gets two messages on the
//! second channel; a customer no later channel reaches stays failed. A Telegram answer that
//! was lost ("unknown") never falls back.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, TimeZone, Utc};
use herald::model::compose::{Compose, Intent, Timing};
use herald::model::{Lifecycle, Role, UserId};
use herald::server::channels::sandbox::SandboxProvider;
use herald::server::clock::{Clock, FixedClock, SystemClock};
use herald::server::db::{Applied, Db, DeliveryEvent, NewChannel, NewCustomer};
use herald::server::dispatch::{Dispatcher, Settings};
use herald::server::fakes::sinks::{Seen, smtp_sink};
use herald::server::fakes::telegram::{self, FakeTelegram};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 8, 12, 0, 0).unwrap()
}

/// Customers with a phone and an email; the last four with a phone only.
const PEOPLE: usize = 40;
const PHONE_ONLY: usize = 4;

struct Setup {
    clock: FixedClock,
    provider: Arc<SandboxProvider>,
    seen: Arc<Seen>,
    dispatcher: Dispatcher,
    sandbox: i64,
    broadcast: i64,
}

async fn email_channel(db: &Db, port: u16, at: DateTime<Utc>) -> i64 {
    db.insert_channel(
        &NewChannel {
            kind: "email".into(),
            name: "Email".into(),
            config_json: serde_json::json!({
                "smtp_host": "127.0.0.1", "smtp_port": port, "security": "none",
                "from": "News <news@shop.test>",
            })
            .to_string(),
            rate_per_sec: 1_000,
        },
        at,
    )
    .await
    .unwrap()
}

/// A broadcast sent now on `channels` with a fallback after `hours`.
async fn send_with_fallback(db: &Db, channels: Vec<i64>, hours: u32, at: DateTime<Utc>) -> i64 {
    let timing = Timing {
        fallback_hours: Some(hours),
        ..Default::default()
    };
    send_with(db, channels, timing, at).await
}

/// A broadcast sent now on `channels` with `timing`.
async fn send_with(db: &Db, channels: Vec<i64>, timing: Timing, at: DateTime<Utc>) -> i64 {
    let author = db
        .create_user("fallback@herald.test", "F", Role::Staff, "x", at)
        .await
        .unwrap();
    let v = Compose {
        name: "Fallback".into(),
        body: "Hello {{first_name|there}}".into(),
        channel_ids: channels,
        timing,
        ..Default::default()
    }
    .validate(Intent::SendNow, at)
    .unwrap();
    db.create_broadcast(&v, UserId(author), "fallback-key-00001", at)
        .await
        .unwrap()
        .0
}

/// A sandbox channel refusing a quarter of its numbers for good, then email: a fallback after
/// two hours.
async fn setup(db: &Db) -> Setup {
    let timing = Timing {
        fallback_hours: Some(2),
        ..Default::default()
    };
    setup_with(db, timing).await
}

async fn setup_with(db: &Db, timing: Timing) -> Setup {
    let people: Vec<NewCustomer> = (0..PEOPLE)
        .map(|i| NewCustomer {
            name: format!("Hop {i}"),
            phone: Some(format!("+4915{i:07}")),
            email: (i < PEOPLE - PHONE_ONLY).then(|| format!("hop{i}@example.test")),
            time_zone: "UTC".into(),
            ..Default::default()
        })
        .collect();
    db.insert_customers_bulk(&people, t0()).await.unwrap();
    let sandbox = db
        .insert_channel(
            &NewChannel {
                kind: "sandbox".into(),
                name: "Sandbox".into(),
                config_json: r#"{"fail":0.25}"#.into(),
                rate_per_sec: 1_000,
            },
            t0(),
        )
        .await
        .unwrap();
    let seen = Arc::new(Seen::default());
    let port = smtp_sink(seen.clone()).await.unwrap();
    let email = email_channel(db, port, t0()).await;
    let broadcast = send_with(db, vec![sandbox, email], timing, t0()).await;
    let clock = FixedClock::new(t0());
    let provider = Arc::new(SandboxProvider::default());
    let dispatcher = Dispatcher::new(
        db.clone(),
        Arc::new(clock.clone()),
        provider.clone(),
        // A quarter refused would trip the circuit breaker, which is not what this tests.
        Settings {
            breaker_min: 1_000,
            ..Settings::default()
        },
    );
    Setup {
        clock,
        provider,
        seen,
        dispatcher,
        sandbox,
        broadcast,
    }
}

impl Setup {
    /// Moves the clock on by `by` and runs rounds until two in a row claim nothing (a round
    /// that falls back sends in the next).
    async fn after(&self, by: Duration) {
        crate::common::rounds_after(&self.dispatcher, &self.clock, by).await;
    }

    /// Mails each address got, at the SMTP server.
    fn mails(&self) -> HashMap<String, u64> {
        self.seen.mail_to.lock().unwrap().clone()
    }

    /// (customer's email, provider id) of each delivery now on the sandbox in `state`.
    async fn on_sandbox(&self, db: &Db, state: &str) -> Vec<(String, String)> {
        let emails: HashMap<i64, String> = customer_emails(db).await;
        db.inspect()
            .deliveries_of(self.broadcast)
            .await
            .unwrap()
            .into_iter()
            .filter(|d| d.2 == self.sandbox && d.3 == state)
            .map(|d| {
                (
                    emails.get(&d.1).cloned().unwrap_or_default(),
                    d.4.unwrap_or_default(),
                )
            })
            .collect()
    }

    async fn report(&self, db: &Db, pid: &str, event: DeliveryEvent) -> Applied {
        db.apply_event(self.sandbox, pid, &event, self.clock.now())
            .await
            .unwrap()
    }
}

async fn customer_emails(db: &Db) -> HashMap<i64, String> {
    let ids = db
        .inspect()
        .numbers("SELECT id FROM customers WHERE name LIKE 'Hop %' ORDER BY id")
        .await
        .unwrap();
    ids.into_iter()
        .enumerate()
        .filter(|(i, _)| *i < PEOPLE - PHONE_ONLY)
        .map(|(i, id)| (id, format!("hop{i}@example.test")))
        .collect()
}

fn keys(v: &[(String, String)]) -> HashSet<String> {
    v.iter().map(|(e, _)| e.clone()).collect()
}

async fn falls_back_only_when_final_and_once(db: &Db) {
    let s = setup(db).await;
    s.after(Duration::zero()).await;
    // Refused for good at the send: at once on email (those with an address).
    let refused = db
        .inspect()
        .numbers(&format!(
            "SELECT COUNT(*) FROM delivery_hops WHERE broadcast_id = {}",
            s.broadcast
        ))
        .await
        .unwrap()[0];
    let accepted = s.provider.sent() as usize;
    assert!(
        refused >= 3,
        "a quarter refused: {refused}; {:?}",
        db.broadcast(s.broadcast).await
    );
    let stuck = s.on_sandbox(db, "failed").await;
    assert!(
        stuck.iter().all(|(e, _)| e.is_empty()),
        "only the phone-only stay failed"
    );
    assert_eq!(accepted + refused as usize + stuck.len(), PEOPLE);
    let mails = s.mails();
    assert_eq!(mails.len(), refused as usize);
    assert!(mails.values().all(|n| *n == 1), "one mail each: {mails:?}");

    // Reports: ten delivered, five undeliverable (those fall back at once).
    let sent = s.on_sandbox(db, "sent").await;
    assert_eq!(sent.len(), accepted);
    let (delivered, rest) = sent.split_at(10);
    let (undeliverable, waiting) = rest.split_at(5);
    for (_, pid) in delivered {
        assert_eq!(
            s.report(db, pid, DeliveryEvent::Delivered).await,
            Applied::Moved
        );
    }
    for (_, pid) in undeliverable {
        let failed = DeliveryEvent::Failed {
            reason: "The handset is switched off.".into(),
        };
        assert_eq!(s.report(db, pid, failed).await, Applied::Moved);
    }
    s.after(Duration::minutes(1)).await;
    let mails = s.mails();
    let with_phone_only = keys(undeliverable).into_iter().filter(|e| !e.is_empty());
    for e in with_phone_only {
        assert_eq!(mails.get(&e), Some(&1), "{e} fell back after its report");
    }
    assert_eq!(
        mails.len(),
        refused as usize + undeliverable.iter().filter(|(e, _)| !e.is_empty()).count()
    );

    // Before the deadline nothing more goes, and the broadcast keeps sending.
    s.after(Duration::minutes(100)).await;
    assert_eq!(s.mails().len(), mails.len(), "nothing before two hours");
    assert_eq!(
        db.broadcast(s.broadcast).await.unwrap().status,
        Lifecycle::Sending
    );
    s.after(Duration::minutes(20)).await;
    let mails = s.mails();
    for (e, _) in waiting.iter().filter(|(e, _)| !e.is_empty()) {
        assert_eq!(mails.get(e), Some(&1), "{e} fell back at the deadline");
    }
    for (e, _) in delivered {
        assert!(!mails.contains_key(e), "{e} was delivered: no fallback");
    }
    assert!(mails.values().all(|n| *n == 1), "one mail each: {mails:?}");
    assert_eq!(
        db.broadcast(s.broadcast).await.unwrap().status,
        Lifecycle::Sent
    );

    // A late report about a message left behind is noted on its hop, not kept or counted.
    let late = &waiting.iter().find(|(e, _)| !e.is_empty()).unwrap().1;
    assert_eq!(
        s.report(db, late, DeliveryEvent::Delivered).await,
        Applied::Unchanged
    );
    assert!(db.inspect().early_reports().await.unwrap().is_empty());
    let noted = db
        .inspect()
        .numbers("SELECT COUNT(*) FROM delivery_hops WHERE late IS NOT NULL")
        .await
        .unwrap()[0];
    assert_eq!(noted, 1);

    // The counters count people once, and agree with a recount, in total and per channel.
    let b = s.broadcast;
    assert_eq!(
        db.inspect().counters(b).await.unwrap(),
        db.recount(b).await.unwrap()
    );
    assert_eq!(
        db.inspect().counters_by_channel(b).await.unwrap(),
        db.recount_by_channel(b).await.unwrap()
    );
    let figures = db.fallback_by_channel(b).await.unwrap();
    let handed_on: i64 = figures.iter().map(|f| f.1).sum();
    let came: i64 = figures.iter().map(|f| f.2).sum();
    assert_eq!(handed_on, came);
    assert_eq!(came as usize, mails.len());
}

/// Past the broadcast's expiry nothing falls back: a message still undelivered at the
/// expiry stays where it is, and the broadcast is done then, not at the fallback's deadline.
async fn nothing_falls_back_after_the_expiry(db: &Db) {
    let timing = Timing {
        fallback_hours: Some(2),
        expire_hours: Some(1),
        ..Default::default()
    };
    let s = setup_with(db, timing).await;
    s.after(Duration::zero()).await;
    let mailed = s.mails().len();
    assert!(
        mailed > 0,
        "the refused ones fell back at once, before the expiry"
    );
    s.after(Duration::minutes(61)).await;
    assert_eq!(
        db.broadcast(s.broadcast).await.unwrap().status,
        Lifecycle::Sent
    );
    s.after(Duration::minutes(120)).await;
    assert_eq!(s.mails().len(), mailed, "nothing after the expiry");
}

/// Telegram cannot say whether a message whose answer was lost arrived: such a delivery is
/// "unknown" and never falls back; sent ones are final there (it reports no delivery), so the
/// broadcast finishes without waiting for the fallback's hours.
async fn unknown_never_falls_back(db: &Db) {
    let config = telegram::Config {
        per_bot_per_sec: 5_000.0,
        ambiguous_per_mille: 100,
        hang: StdDuration::from_millis(1_200),
        ..telegram::Config::default()
    };
    let (fake, base) = FakeTelegram::start(config).await.unwrap();
    let mut channel = fake.channel(&base, 5_000);
    let mut settings: serde_json::Value = serde_json::from_str(&channel.config_json).unwrap();
    settings["timeout_ms"] = serde_json::json!(400);
    channel.config_json = settings.to_string();
    let now = SystemClock.now();
    let tg = db.insert_channel(&channel, now).await.unwrap();
    let seen = Arc::new(Seen::default());
    let email = email_channel(db, smtp_sink(seen.clone()).await.unwrap(), now).await;
    let people: Vec<NewCustomer> = (0..200)
        .map(|i| NewCustomer {
            name: format!("Chat {i}"),
            telegram_chat_id: Some(format!("{}", 810_000 + i)),
            email: Some(format!("chat{i}@example.test")),
            time_zone: "UTC".into(),
            ..Default::default()
        })
        .collect();
    db.insert_customers_bulk(&people, now).await.unwrap();
    let b = send_with_fallback(db, vec![tg, email], 1, now).await;
    let d = Dispatcher::new(
        db.clone(),
        Arc::new(SystemClock),
        Default::default(),
        Settings::default(),
    );
    let start = std::time::Instant::now();
    while !d.round().await.unwrap().finished.contains(&b) {
        assert!(
            start.elapsed() < StdDuration::from_secs(60),
            "never finished"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    let lost = fake.ambiguous().len();
    assert!(lost >= 5, "answers lost: {lost}");
    assert_eq!(db.broadcast(b).await.unwrap().unknown_count, lost as i64);
    assert_eq!(fake.received().len(), 200, "everyone got it on Telegram");
    assert_eq!(
        seen.mails.load(Ordering::SeqCst),
        0,
        "nobody got an email too"
    );
}

on_both_backends!(
    falls_back_only_when_final_and_once,
    nothing_falls_back_after_the_expiry,
    unknown_never_falls_back
);
