//! Consent and the frequency cap on SQLite and PostgreSQL: a marketing broadcast on a channel
//! that requires an opt-in materialises exactly the customers with one (checked against a
//! recount written here, in SQL of its own), a service broadcast still reaches them (but not
//! who withdrew service), who is left out is recorded with the reason and matches the
//! wizard's pre-flight, and the cap leaves out exactly those who had their share.

use chrono::{DateTime, Duration, TimeZone, Utc};
use herald::model::audience::{AudienceRule, Condition, Field, Match, Op};
use herald::model::compose::{Compose, Intent};
use herald::model::consent::{Purpose, Source};
use herald::model::workspace::{Cap, Rules};
use herald::model::{BroadcastId, UserId};
use herald::server::db::{ConsentChange, Db, Fired, NewChannel, NewCustomer, WavePlan};
use herald::server::dispatch::eligibility;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 8, 12, 0, 0).unwrap()
}

/// `n` customers tagged `tag` (and `also`), with a phone each (`+4470…`); their ids.
async fn customers(db: &Db, tag: &str, also: &[&str], n: usize, from: usize) -> Vec<i64> {
    let tag_id = db.ensure_tag(tag).await.unwrap();
    let mut tags = vec![tag_id];
    for t in also {
        tags.push(db.ensure_tag(t).await.unwrap());
    }
    let rows: Vec<NewCustomer> = (0..n)
        .map(|i| NewCustomer {
            name: format!("{tag} {i}"),
            phone: Some(format!("+4470{:08}", from + i)),
            email: None,
            whatsapp_id: None,
            telegram_chat_id: None,
            assignee_id: None,
            time_zone: "Europe/London".into(),
            opted_out: false,
            tag_ids: tags.clone(),
            group_ids: Vec::new(),
        })
        .collect();
    db.insert_customers_bulk(&rows, t0()).await.unwrap();
    let sql = format!(
        "SELECT c.id FROM customers c JOIN customer_tags ct ON ct.customer_id = c.id \
         WHERE ct.tag_id = {tag_id} ORDER BY c.id"
    );
    db.inspect().numbers(&sql).await.unwrap()
}

fn tagged(db_tag: i64) -> AudienceRule {
    AudienceRule {
        matching: Match::All,
        conditions: vec![Condition {
            field: Field::Tag,
            op: Op::Is,
            id: db_tag,
        }],
        frozen: None,
    }
}

async fn channel(db: &Db, kind: &str) -> i64 {
    let config = if kind == "sms" {
        r#"{"account_sid":"AC0123456789abcdef0123456789abcdef","auth_token":"t","from":"+15550000000","base_url":"http://127.0.0.1:9"}"#
    } else {
        "{}"
    };
    db.insert_channel(
        &NewChannel {
            kind: kind.into(),
            name: format!("{kind} channel"),
            config_json: config.into(),
            rate_per_sec: 100,
        },
        t0(),
    )
    .await
    .unwrap()
}

/// Schedules and fires a broadcast for `purpose` to `rule` on `channel` at `at` under `rules`;
/// its id and how many deliveries it made.
async fn fire(
    db: &Db,
    rule: &AudienceRule,
    channel: i64,
    purpose: Purpose,
    rules: &Rules,
    at: DateTime<Utc>,
) -> (i64, i64) {
    let v = Compose {
        name: format!("{purpose:?} {at}"),
        body: "Hello".into(),
        audience: rule.clone(),
        channel_ids: vec![channel],
        purpose,
        ..Default::default()
    }
    .validate(Intent::SendNow, at)
    .unwrap();
    let key = format!("consent-{}-{}", at.timestamp(), purpose.as_str());
    let id = db
        .create_broadcast(&v, UserId(1), &key, at)
        .await
        .unwrap()
        .0;
    let e = eligibility(rules, purpose, at);
    let fired = db
        .fire_with(id, at, Duration::minutes(15), &WavePlan::at_once(at), &e)
        .await
        .unwrap();
    let Fired::Started { deliveries } = fired else {
        panic!("{fired:?}")
    };
    (id, deliveries)
}

async fn consent(db: &Db, customer: i64, purpose: Purpose, granted: bool) {
    let change = ConsentChange {
        customer_id: customer,
        kind: "sms",
        purpose,
        granted,
        source: Source::Staff,
        note: Some("asked on the phone"),
        actor: Some(UserId(1)),
    };
    db.record_consent(&change, t0()).await.unwrap();
}

/// The recount: customers tagged `tag` with a marketing opt-in on SMS, in SQL of the test's own.
async fn recount_opted_in(db: &Db, tag: &str) -> i64 {
    let sql = format!(
        "SELECT COUNT(*) FROM customers c JOIN customer_tags ct ON ct.customer_id = c.id \
         JOIN tags t ON t.id = ct.tag_id AND t.name = '{tag}' \
         JOIN customer_consents k ON k.customer_id = c.id AND k.channel_kind = 'sms' \
         AND k.purpose = 'marketing' AND k.granted"
    );
    db.inspect().numbers(&sql).await.unwrap()[0]
}

async fn marketing_reaches_only_the_opted_in_and_service_still_goes(db: &Db) {
    herald::server::seed::load(db, t0() - Duration::days(1))
        .await
        .unwrap();
    let rules = Rules {
        quiet: None,
        ..Rules::default()
    };
    assert!(
        rules.consent_kinds.contains(&"sms".to_string()),
        "the default"
    );
    let ids = customers(db, "Consent", &[], 10, 0).await;
    for c in &ids[..4] {
        consent(db, *c, Purpose::Marketing, true).await;
    }
    for c in &ids[4..6] {
        consent(db, *c, Purpose::Marketing, false).await;
    }
    consent(db, ids[6], Purpose::Service, false).await;
    let sms = channel(db, "sms").await;
    let rule = tagged(db.ensure_tag("Consent").await.unwrap());
    let picked = [(sms, herald::model::channel::ChannelKind::Sms)];

    let e = eligibility(&rules, Purpose::Marketing, t0());
    assert_eq!(
        db.left_out_preview(&rule, &picked, &e).await.unwrap(),
        (6, 0)
    );
    let (m, made) = fire(db, &rule, sms, Purpose::Marketing, &rules, t0()).await;
    assert_eq!(made, recount_opted_in(db, "Consent").await);
    assert_eq!(made, 4);
    let got: Vec<i64> = db
        .inspect()
        .deliveries_of(m)
        .await
        .unwrap()
        .iter()
        .map(|d| d.1)
        .collect();
    assert_eq!(got, ids[..4].to_vec(), "exactly the opted-in");
    let left = db.left_out(m, 100).await.unwrap();
    assert_eq!((left.consent, left.cap), (6, 0));
    assert_eq!(left.first.len(), 6);
    assert!(left.first.iter().all(|(_, _, why)| why == "consent"));

    // A service broadcast reaches all but the one who withdrew service.
    let e = eligibility(&rules, Purpose::Service, t0());
    assert_eq!(
        db.left_out_preview(&rule, &picked, &e).await.unwrap(),
        (1, 0)
    );
    let (s, made) = fire(
        db,
        &rule,
        sms,
        Purpose::Service,
        &rules,
        t0() + Duration::minutes(1),
    )
    .await;
    assert_eq!(made, 9);
    let left = db.left_out(s, 100).await.unwrap();
    assert_eq!(
        left.first.iter().map(|l| l.0).collect::<Vec<_>>(),
        vec![ids[6]]
    );

    // With no opt-in required on SMS, marketing reaches all but those who withdrew it.
    let open = Rules {
        consent_kinds: Vec::new(),
        ..rules.clone()
    };
    let (_, made) = fire(
        db,
        &rule,
        sms,
        Purpose::Marketing,
        &open,
        t0() + Duration::minutes(2),
    )
    .await;
    assert_eq!(made, 8);
}

async fn the_frequency_cap_leaves_out_who_had_their_share(db: &Db) {
    herald::server::seed::load(db, t0() - Duration::days(1))
        .await
        .unwrap();
    let rules = Rules {
        quiet: None,
        consent_kinds: Vec::new(),
        frequency_cap: Some(Cap { max: 2, days: 7 }),
        ..Rules::default()
    };
    let a = customers(db, "CapA", &["CapBoth"], 5, 100).await;
    customers(db, "CapB", &["CapBoth"], 3, 200).await;
    let both = db.ensure_tag("CapBoth").await.unwrap();
    let sandbox = channel(db, "sandbox").await;
    let only_a = tagged(db.ensure_tag("CapA").await.unwrap());
    let everyone = tagged(both);
    let day = |d: i64| t0() + Duration::days(d);
    assert_eq!(
        fire(db, &only_a, sandbox, Purpose::Marketing, &rules, day(0))
            .await
            .1,
        5
    );
    assert_eq!(
        fire(db, &everyone, sandbox, Purpose::Marketing, &rules, day(1))
            .await
            .1,
        8
    );
    // A's five had two this week: only B's three get a third.
    let picked = [(sandbox, herald::model::channel::ChannelKind::Sandbox)];
    let e = eligibility(&rules, Purpose::Marketing, day(2));
    assert_eq!(
        db.left_out_preview(&everyone, &picked, &e).await.unwrap(),
        (0, 5)
    );
    let (third, made) = fire(db, &everyone, sandbox, Purpose::Marketing, &rules, day(2)).await;
    assert_eq!(made, 3);
    let left = db.left_out(third, 100).await.unwrap();
    assert_eq!(left.first.iter().map(|l| l.0).collect::<Vec<_>>(), a);
    assert!(left.first.iter().all(|(_, _, why)| why == "frequency cap"));
    // Service is not capped; a week after the first, A may have one more.
    assert_eq!(
        fire(db, &everyone, sandbox, Purpose::Service, &rules, day(3))
            .await
            .1,
        8
    );
    let (_, made) = fire(
        db,
        &everyone,
        sandbox,
        Purpose::Marketing,
        &rules,
        day(7) + Duration::hours(1),
    )
    .await;
    assert_eq!(
        made, 5,
        "A's first fell out of the window; B had two already"
    );
    for id in [third] {
        db.cancel_broadcast(BroadcastId(id), UserId(1), day(8))
            .await
            .ok();
    }
}

on_both_backends!(
    marketing_reaches_only_the_opted_in_and_service_still_goes,
    the_frequency_cap_leaves_out_who_had_their_share,
);
