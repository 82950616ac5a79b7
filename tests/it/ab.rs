//! A/B tests on SQLite and PostgreSQL, counted at a fake Telegram that deduplicates nothing:
//! the split's sizes, one variant per recipient, the same split as an independent recount
//! (`model::ab::assign`) gives, and — with a test share — nobody outside it hears anything
//! until the winner by the measure is chosen at its hour, when exactly they get the winner.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use herald::model::ab::{self, AbPlan, Assignment, Measure, Variant};
use herald::model::compose::{Compose, Intent};
use herald::model::{CustomerId, Role, UserId};
use herald::server::clock::{Clock, FixedClock};
use herald::server::db::{Db, NewCustomer};
use herald::server::dispatch::{Dispatcher, Settings};
use herald::server::fakes::telegram::{self, FakeTelegram};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 9, 10, 0, 0).unwrap()
}

const TEXTS: [&str; 3] = ["Variant one", "Variant two", "Variant three"];

struct Run {
    db: Db,
    fake: Arc<FakeTelegram>,
    clock: FixedClock,
    dispatcher: Dispatcher,
    broadcast: i64,
    channel: i64,
    /// Each customer's id by chat.
    by_chat: HashMap<String, i64>,
}

/// `people` Telegram customers and a broadcast sent now to them with `plan` (its variants'
/// texts are `TEXTS[1..]`; A's is `TEXTS[0]`).
async fn start(db: &Db, people: usize, plan: AbPlan) -> Run {
    let config = telegram::Config {
        per_bot_per_sec: 10_000.0,
        ..telegram::Config::default()
    };
    let (fake, base) = FakeTelegram::start(config).await.unwrap();
    let channel = db
        .insert_channel(&fake.channel(&base, 10_000), t0())
        .await
        .unwrap();
    let customers: Vec<NewCustomer> = (0..people)
        .map(|i| NewCustomer {
            name: format!("Test {i}"),
            telegram_chat_id: Some(format!("{}", 920_000 + i)),
            time_zone: "UTC".into(),
            ..Default::default()
        })
        .collect();
    db.insert_customers_bulk(&customers, t0()).await.unwrap();
    let ids = db
        .inspect()
        .numbers("SELECT id FROM customers WHERE name LIKE 'Test %' ORDER BY id")
        .await
        .unwrap();
    let by_chat = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (format!("{}", 920_000 + i), *id))
        .collect();
    let author = db
        .create_user("ab@herald.test", "A", Role::Staff, "x", t0())
        .await
        .unwrap();
    let v = Compose {
        name: "Which works".into(),
        body: TEXTS[0].into(),
        channel_ids: vec![channel],
        ab: Some(plan),
        ..Default::default()
    }
    .validate(Intent::SendNow, t0())
    .unwrap();
    let (broadcast, _) = db
        .create_broadcast(&v, UserId(author), "ab-key-0000000001", t0())
        .await
        .unwrap();
    let clock = FixedClock::new(t0());
    let dispatcher = Dispatcher::new(
        db.clone(),
        Arc::new(clock.clone()),
        Default::default(),
        Settings::default(),
    );
    Run {
        db: db.clone(),
        fake,
        clock,
        dispatcher,
        broadcast,
        channel,
        by_chat,
    }
}

impl Run {
    async fn after(&self, by: Duration) {
        crate::common::rounds_after(&self.dispatcher, &self.clock, by).await;
    }

    /// What each customer got at the fake: the texts, by customer id.
    fn got(&self) -> HashMap<i64, Vec<String>> {
        let mut out: HashMap<i64, Vec<String>> = HashMap::new();
        for m in self.fake.messages() {
            out.entry(self.by_chat[&m.chat]).or_default().push(m.text);
        }
        out
    }

    /// The variant each customer got (by its text), asserting one message each.
    fn variants(&self) -> HashMap<i64, usize> {
        self.got()
            .into_iter()
            .map(|(c, texts)| {
                assert_eq!(texts.len(), 1, "customer {c} got {texts:?}");
                let v = TEXTS
                    .iter()
                    .position(|t| *t == texts[0])
                    .expect("a variant's text");
                (c, v)
            })
            .collect()
    }
}

fn plan(variants: usize, test_share: Option<u8>, measure: Measure) -> AbPlan {
    AbPlan {
        variants: TEXTS[1..variants]
            .iter()
            .map(|t| Variant {
                body: t.to_string(),
                ..Default::default()
            })
            .collect(),
        test_share,
        measure,
        wait_hours: 2,
    }
}

async fn an_even_split_gives_everyone_one_variant(db: &Db) {
    let people = 900;
    let run = start(db, people, plan(3, None, Measure::Read)).await;
    run.after(Duration::zero()).await;
    let got = run.variants();
    assert_eq!(got.len(), people, "everyone got one message");
    let mut sizes = [0usize; 3];
    let seed = ab::seed(run.broadcast);
    for (customer, v) in &got {
        sizes[*v] += 1;
        // The split an independent recount gives, from the broadcast's seed alone.
        assert_eq!(
            ab::assign(seed, *customer, 3, None),
            Assignment::Variant(*v),
            "customer {customer}"
        );
    }
    for n in sizes {
        assert!((240..=360).contains(&n), "an even split: {sizes:?}");
    }
    let b = run.db.broadcast(run.broadcast).await.unwrap();
    assert_eq!(b.sent_count, people as i64);
    assert!(b.finished_at.is_some(), "no winner to wait for");
}

async fn the_winner_by_the_measure_goes_to_the_rest(db: &Db) {
    let people = 800;
    let run = start(db, people, plan(2, Some(40), Measure::Reply)).await;
    run.after(Duration::zero()).await;
    let tested = run.variants();
    let seed = ab::seed(run.broadcast);
    let in_test = run
        .by_chat
        .values()
        .filter(|c| ab::assign(seed, **c, 2, Some(40)) != Assignment::Rest)
        .count();
    assert_eq!(tested.len(), in_test, "only the test share heard anything");
    assert!(
        (250..=390).contains(&in_test),
        "40 % of {people}: {in_test}"
    );
    for (customer, v) in &tested {
        assert_eq!(
            ab::assign(seed, *customer, 2, Some(40)),
            Assignment::Variant(*v)
        );
    }
    // B's recipients reply far more often.
    let mut replied = 0;
    for (i, (customer, v)) in tested.iter().enumerate() {
        let replies = if *v == 1 { i % 3 == 0 } else { i % 20 == 0 };
        if replies {
            run.db
                .record_inbound(
                    herald::model::ChannelId(run.channel),
                    CustomerId(*customer),
                    "Yes please",
                    None,
                    run.clock.now(),
                )
                .await
                .unwrap();
            replied += 1;
        }
    }
    assert!(replied > 20);
    // An hour on: not yet, and nobody else hears anything.
    run.after(Duration::hours(1)).await;
    assert_eq!(run.dispatcher.decide_ab_due().await.unwrap(), 0);
    assert_eq!(run.got().len(), in_test);
    assert!(run.db.ab_decision(run.broadcast).await.unwrap().is_none());
    // At two hours the winner (B) goes to exactly the rest.
    run.after(Duration::hours(1)).await;
    let all = run.variants();
    assert_eq!(all.len(), people, "everyone has one message now");
    for (customer, v) in &all {
        match tested.get(customer) {
            Some(first) => assert_eq!(v, first, "a tested customer got nothing more"),
            None => assert_eq!(*v, 1, "the rest got the winner, B"),
        }
    }
    let d = run.db.ab_decision(run.broadcast).await.unwrap().unwrap();
    assert_eq!(d.winner, 1);
    assert!(
        d.reason
            .starts_with("B had the highest reply rate after 2 h."),
        "{}",
        d.reason
    );
    assert!(d.reason.contains("more than chance"), "{}", d.reason);
    // Deciding again changes nothing.
    assert_eq!(run.dispatcher.decide_ab_due().await.unwrap(), 0);
    let b = run.db.broadcast(run.broadcast).await.unwrap();
    assert_eq!(b.sent_count, people as i64);
    assert!(b.finished_at.is_some());
    // The results compare the two side by side, from the deliveries.
    let viewer = herald::model::CurrentUser {
        id: UserId(1),
        email: "ab@herald.test".into(),
        name: "A".into(),
        role: Role::Manager,
        time_zone: "UTC".into(),
    };
    let r = herald::server::broadcast::ab::ab_results(&run.db, &viewer, run.broadcast, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.waiting, 0);
    let audience: i64 = r.variants.iter().map(|v| v.counts.audience).sum();
    assert_eq!(audience, people as i64);
    assert!(r.variants[1].winner && !r.variants[0].winner);
    assert_eq!(
        r.variants.iter().map(|v| v.counts.replied).sum::<i64>(),
        replied
    );
    assert!(r.decision.unwrap().starts_with("B won"));
}

on_both_backends!(
    an_even_split_gives_everyone_one_variant,
    the_winner_by_the_measure_goes_to_the_rest
);
