//! Local time, quiet hours and expiry, on SQLite and PostgreSQL, driven round by round with a
//! fixed clock and counted at the fake provider: each zone's wave leaves at its own UTC
//! instant (on a daylight-saving change day too), quiet hours hold deliveries and let them go,
//! a phone prefix has its own quiet hours, an admin's exemption goes through them, pause and
//! resume work between waves, and what is still waiting at the expiry expires, counted apart.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDateTime, TimeZone, Utc};
use herald::model::audience::{AudienceRule, Condition, Field, Match, Op};
use herald::model::compose::{Compose, Intent, Timing};
use herald::model::workspace::{DEFAULT_QUIET, PrefixQuiet, Rules};
use herald::model::{BroadcastId, Lifecycle, UserId};
use herald::server::broadcast::waves;
use herald::server::channels::sandbox::SandboxProvider;
use herald::server::clock::FixedClock;
use herald::server::db::{Db, NewChannel, NewCustomer};
use herald::server::dispatch::{Dispatcher, Settings};
use herald::server::seed;

struct Setup {
    clock: FixedClock,
    provider: Arc<SandboxProvider>,
    dispatcher: Dispatcher,
    audience: AudienceRule,
    channel: i64,
}

/// The demo's data (its broadcasts stopped), `rules`, and `people` as (zone, phone prefix,
/// how many), tagged "Waves", on a sandbox channel; the clock at `at`.
async fn setup(db: &Db, at: DateTime<Utc>, rules: &Rules, people: &[(&str, &str, usize)]) -> Setup {
    seed::load(db, at - Duration::days(1)).await.unwrap();
    for (b, _) in db.sending_broadcasts().await.unwrap() {
        db.cancel_broadcast(BroadcastId(b), UserId(1), at)
            .await
            .unwrap();
    }
    db.save_workspace_rules(rules, None, at).await.unwrap();
    let tag = db.ensure_tag("Waves").await.unwrap();
    let mut customers = Vec::new();
    for (zone, prefix, n) in people {
        for i in 0..*n {
            customers.push(NewCustomer {
                name: format!("{zone} {i}"),
                phone: Some(format!("{prefix}{:08}", customers.len())),
                email: None,
                whatsapp_id: None,
                telegram_chat_id: None,
                assignee_id: None,
                time_zone: zone.to_string(),
                opted_out: false,
                tag_ids: vec![tag],
                group_ids: Vec::new(),
            });
        }
    }
    db.insert_customers_bulk(&customers, at).await.unwrap();
    let channel = db
        .insert_channel(
            &NewChannel {
                kind: "sandbox".into(),
                name: "Waves sandbox".into(),
                config_json: "{}".into(),
                rate_per_sec: 100_000,
            },
            at,
        )
        .await
        .unwrap();
    let clock = FixedClock::new(at);
    let provider = Arc::new(SandboxProvider::default());
    let dispatcher = Dispatcher::new(
        db.clone(),
        Arc::new(clock.clone()),
        provider.clone(),
        Settings::default(),
    );
    Setup {
        clock,
        provider,
        dispatcher,
        audience: AudienceRule {
            matching: Match::All,
            conditions: vec![Condition {
                field: Field::Tag,
                op: Op::Is,
                id: tag,
            }],
            frozen: None,
        },
        channel,
    }
}

impl Setup {
    fn now(&self) -> DateTime<Utc> {
        herald::server::clock::Clock::now(&self.clock)
    }

    /// Schedules a broadcast with `timing` at `at` (for a local time: its first wave).
    async fn schedule(&self, db: &Db, timing: Timing, at: DateTime<Utc>) -> i64 {
        let v = Compose {
            name: "Waves".into(),
            body: "Good morning {{first_name|there}}".into(),
            audience: self.audience.clone(),
            channel_ids: vec![self.channel],
            scheduled_at: Some(at),
            attachments: Vec::new(),
            template: None,
            timing,
            purpose: Default::default(),
            ab: None,
        }
        .validate(Intent::Schedule, self.now())
        .unwrap();
        let key = format!("waves-{}", at.timestamp());
        db.create_broadcast(&v, UserId(1), &key, self.now())
            .await
            .unwrap()
            .0
    }

    /// Moves the clock to `t` and runs rounds until nothing more is claimed; what the fake
    /// has received by then.
    async fn at(&self, t: DateTime<Utc>) -> u64 {
        let by = t - self.now();
        self.clock.advance(by);
        for _ in 0..50 {
            if self.dispatcher.round().await.unwrap().claimed == 0 {
                break;
            }
        }
        self.provider.sent()
    }
}

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
}

fn naive(text: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M").unwrap()
}

/// 10:00 on 8 March 2026, the day the United States move their clocks forward: Auckland
/// (UTC+13) goes at 21:00 UTC the day before, Berlin (UTC+1) at 09:00, customers with a zone
/// Herald does not know at 10:00 (the workspace's, London), New York (now UTC−4) at 14:00 and
/// Los Angeles (now UTC−7) at 17:00. Pausing between waves holds the next one; it is Sent only
/// after the last.
async fn a_local_time_broadcast_goes_zone_by_zone_on_a_daylight_saving_day(db: &Db) {
    let rules = Rules {
        time_zone: "Europe/London".into(),
        ..Rules::default()
    };
    let people = [
        ("Pacific/Auckland", "+64", 3),
        ("Europe/Berlin", "+49", 4),
        ("Nowhere/Unknown", "+44", 2),
        ("America/New_York", "+1212", 5),
        ("America/Los_Angeles", "+1310", 6),
    ];
    let s = setup(db, utc(2026, 3, 7, 20, 0), &rules, &people).await;
    let local = naive("2026-03-08T10:00");
    let zones = db.customer_zones().await.unwrap();
    let (first, zone) = waves::first_wave(local, &rules, &zones);
    assert_eq!(
        (first, zone.as_str()),
        (utc(2026, 3, 7, 21, 0), "Pacific/Auckland")
    );
    let timing = Timing {
        local_at: Some(local),
        ..Timing::default()
    };
    let id = s.schedule(db, timing, first).await;

    assert_eq!(s.at(utc(2026, 3, 7, 20, 59)).await, 0);
    assert_eq!(s.at(utc(2026, 3, 7, 21, 0)).await, 3, "Auckland");
    let b = db.broadcast(id).await.unwrap();
    assert_eq!((b.status, b.audience_total), (Lifecycle::Sending, 20));
    let next = db.next_wave(id, s.now()).await.unwrap().unwrap();
    assert_eq!(next.at, utc(2026, 3, 8, 9, 0));
    assert!(next.zones.starts_with("Europe/Berlin"), "{}", next.zones);
    assert_eq!(next.waiting, 17);
    assert_eq!(s.at(utc(2026, 3, 8, 8, 59)).await, 3);
    assert_eq!(s.at(utc(2026, 3, 8, 9, 0)).await, 7, "Berlin");
    // Paused before London's wave: it waits; resumed, it goes (late) and the rest on time.
    db.set_paused(BroadcastId(id), true, UserId(1), s.now())
        .await
        .unwrap();
    s.dispatcher.refresh_halted().await.unwrap();
    assert_eq!(s.at(utc(2026, 3, 8, 10, 30)).await, 7, "paused");
    db.set_paused(BroadcastId(id), false, UserId(1), s.now())
        .await
        .unwrap();
    s.dispatcher.refresh_halted().await.unwrap();
    assert_eq!(s.at(utc(2026, 3, 8, 10, 31)).await, 9, "London, on resume");
    assert_eq!(s.at(utc(2026, 3, 8, 13, 59)).await, 9);
    assert_eq!(s.at(utc(2026, 3, 8, 14, 0)).await, 14, "New York");
    assert_eq!(db.broadcast(id).await.unwrap().status, Lifecycle::Sending);
    assert_eq!(s.at(utc(2026, 3, 8, 16, 59)).await, 14);
    assert_eq!(s.at(utc(2026, 3, 8, 17, 0)).await, 20, "Los Angeles");
    let b = db.broadcast(id).await.unwrap();
    assert_eq!((b.status, b.sent_count), (Lifecycle::Sent, 20));
    assert_eq!(db.next_wave(id, s.now()).await.unwrap(), None);
}

/// Fired at 03:00 UTC (22:00 in New York, 04:00 in Berlin) with quiet hours 21:00–08:00 and
/// +49 numbers exempt by prefix: Berlin's +49 customers get it at once, Berlin's +44 ones at
/// 08:00 Berlin time, New York's at 08:00 New York time. An admin's exemption sends everyone
/// at once.
async fn quiet_hours_hold_deliveries_until_they_end(db: &Db) {
    let rules = Rules {
        time_zone: "UTC".into(),
        quiet: Some(DEFAULT_QUIET),
        quiet_by_prefix: vec![PrefixQuiet {
            prefix: "+49".into(),
            window: None,
        }],
        consent_kinds: Vec::new(),
        ..Rules::default()
    };
    let people = [
        ("Europe/Berlin", "+49", 2),
        ("Europe/Berlin", "+44", 3),
        ("America/New_York", "+1", 4),
    ];
    let s = setup(db, utc(2026, 12, 8, 2, 0), &rules, &people).await;
    let id = s
        .schedule(db, Timing::default(), utc(2026, 12, 8, 3, 0))
        .await;
    assert_eq!(
        s.at(utc(2026, 12, 8, 3, 0)).await,
        2,
        "+49 has no quiet hours"
    );
    assert_eq!(s.at(utc(2026, 12, 8, 6, 59)).await, 2);
    assert_eq!(s.at(utc(2026, 12, 8, 7, 0)).await, 5, "08:00 in Berlin");
    assert_eq!(s.at(utc(2026, 12, 8, 12, 59)).await, 5);
    assert_eq!(s.at(utc(2026, 12, 8, 13, 0)).await, 9, "08:00 in New York");
    assert_eq!(db.broadcast(id).await.unwrap().status, Lifecycle::Sent);

    let exempt = Timing {
        quiet_exempt: Some("Outage notice".into()),
        ..Timing::default()
    };
    let at = utc(2026, 12, 9, 3, 0);
    let id = s.schedule(db, exempt, at).await;
    assert_eq!(s.at(at).await, 18, "everyone at once");
    assert_eq!(db.broadcast(id).await.unwrap().status, Lifecycle::Sent);
    let audited = db.inspect().audit_count("quiet-hours-exempt", id).await;
    assert_eq!(audited.unwrap(), 1, "the exemption is audited");
}

/// A broadcast that expires after 2 hours, fired in New York's quiet hours: Berlin's customers
/// get it; New York's are still held when it expires, and expire (not fail). It is then done.
async fn what_waits_past_the_expiry_expires_apart_from_failures(db: &Db) {
    let rules = Rules::default();
    let people = [("Europe/Berlin", "+49", 3), ("America/New_York", "+1", 4)];
    let s = setup(db, utc(2026, 12, 8, 8, 0), &rules, &people).await;
    let timing = Timing {
        expire_hours: Some(2),
        ..Timing::default()
    };
    // 09:00 UTC: 10:00 in Berlin, 04:00 in New York (quiet until 13:00 UTC).
    let id = s.schedule(db, timing, utc(2026, 12, 8, 9, 0)).await;
    assert_eq!(s.at(utc(2026, 12, 8, 9, 0)).await, 3);
    assert_eq!(s.at(utc(2026, 12, 8, 10, 59)).await, 3);
    assert_eq!(s.at(utc(2026, 12, 8, 11, 0)).await, 3, "expired, not sent");
    let b = db.broadcast(id).await.unwrap();
    assert_eq!(
        (b.status, b.sent_count, b.failed_count, b.expired_count),
        (Lifecycle::Sent, 3, 0, 4)
    );
    assert_eq!(s.at(utc(2026, 12, 8, 13, 0)).await, 3, "never sent later");
    let states = db.inspect().delivery_states(id).await.unwrap();
    assert_eq!(
        states,
        vec![("expired".to_string(), 4), ("sent".to_string(), 3)]
    );
}

/// Claiming walks only what is due: the claim's plan reads the due index, so deliveries waiting
/// for a later wave cost it nothing (SQLite's plan; PostgreSQL's depends on its statistics).
async fn claiming_reads_only_due_deliveries(db: &Db) {
    if db.dialect() != herald::server::db::Dialect::Sqlite {
        return;
    }
    // The statement the dispatcher runs, not a copy of it.
    let plan = db.inspect().due_claim_plan().await.unwrap();
    assert!(plan.contains("deliveries_due"), "{plan}");
    assert!(!plan.contains("TEMP B-TREE"), "no sort: {plan}");
}

on_both_backends!(
    a_local_time_broadcast_goes_zone_by_zone_on_a_daylight_saving_day,
    quiet_hours_hold_deliveries_until_they_end,
    what_waits_past_the_expiry_expires_apart_from_failures,
    claiming_reads_only_due_deliveries,
);
