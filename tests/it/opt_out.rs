//! Opt-outs on SQLite and PostgreSQL: a STOP message opts the customer out on that channel
//! kind only, and no audience ever includes an opted-out customer.

use chrono::{TimeZone, Utc};
use herald::model::audience::{AudienceRule, Condition, Field, Match, Op};
use herald::model::channel::ChannelKind;
use herald::model::{ChannelId, CustomerId};
use herald::model::{CustomerAnchor, CustomerQuery};
use herald::server::db::{Db, NewChannel};
use herald::server::seed;

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
}

fn rule(matching: Match, conditions: &[(Field, Op, i64)]) -> AudienceRule {
    AudienceRule {
        matching,
        conditions: conditions
            .iter()
            .map(|&(field, op, id)| Condition { field, op, id })
            .collect(),
        frozen: None,
    }
}

/// Every customer with `tag`, walking the customers list: (id, phone, email, opted out).
async fn tagged(db: &Db, tag: &str) -> Vec<(i64, Option<String>, Option<String>, bool)> {
    let mut q = CustomerQuery {
        search: String::new(),
        tag: Some(tag.into()),
        anchor: CustomerAnchor::First,
    };
    let mut out = Vec::new();
    loop {
        let page = db.list_customers(&q).await.unwrap();
        out.extend(
            page.rows
                .iter()
                .map(|r| (r.id, r.phone.clone(), r.email.clone(), r.opted_out)),
        );
        if !page.has_next {
            return out;
        }
        q.anchor = CustomerAnchor::After(page.rows.last().unwrap().id);
    }
}

async fn stop_opts_out_on_that_channel_kind_and_audiences_leave_opt_outs_out(db: &Db) {
    seed::load(db, now()).await.unwrap();
    let sandbox = db
        .insert_channel(
            &NewChannel {
                kind: "sandbox".into(),
                name: "Test sandbox".into(),
                config_json: "{}".into(),
                rate_per_sec: 10,
            },
            now(),
        )
        .await
        .unwrap();
    let vip = db.ensure_tag("VIP").await.unwrap();
    let vips = tagged(db, "VIP").await;
    assert!(vips.iter().any(|c| c.3), "the demo data has opted-out VIPs");
    let reachable = |sms_only: bool| {
        vips.iter()
            .filter(|(_, phone, email, out)| {
                !out && if sms_only {
                    phone.is_some()
                } else {
                    phone.is_some() || email.is_some()
                }
            })
            .count() as i64
    };
    let only_vips = rule(Match::All, &[(Field::Tag, Op::Is, vip)]);
    let both = [ChannelKind::Sandbox, ChannelKind::Sms];
    assert_eq!(
        db.inspect()
            .audience_count(&only_vips, &[ChannelKind::Sandbox])
            .await
            .unwrap(),
        reachable(false)
    );
    assert_eq!(
        db.inspect()
            .audience_count(&only_vips, &[ChannelKind::Sms])
            .await
            .unwrap(),
        reachable(true)
    );

    // A VIP answers "Stop!" on the sandbox: out of sandbox audiences, still reachable by SMS.
    let (who, ..) = vips
        .iter()
        .find(|(_, phone, _, out)| !out && phone.is_some())
        .unwrap()
        .clone();
    let i = db
        .record_inbound(
            ChannelId(sandbox),
            CustomerId(who),
            " Stop! ",
            Some("m-1"),
            now(),
        )
        .await
        .unwrap();
    assert!(i.opted_out);
    let again = db
        .record_inbound(ChannelId(sandbox), CustomerId(who), "STOP", None, now())
        .await
        .unwrap();
    assert!(!again.opted_out, "already opted out: nothing new");
    assert_ne!(again.message_id, i.message_id, "both messages are kept");
    assert_eq!(
        db.inspect()
            .audience_count(&only_vips, &[ChannelKind::Sandbox])
            .await
            .unwrap(),
        reachable(false) - 1
    );
    assert_eq!(
        db.inspect()
            .audience_count(&only_vips, &[ChannelKind::Sms])
            .await
            .unwrap(),
        reachable(true)
    );
    assert_eq!(
        db.inspect()
            .audience_count(&only_vips, &both)
            .await
            .unwrap(),
        reachable(false),
        "reachable on one chosen kind is enough"
    );
    let outs = db.channel_opt_outs(who).await.unwrap();
    assert_eq!(outs.len(), 1);
    assert_eq!(outs[0].0, "sandbox");

    // A sentence containing "stop" is a conversation, not an opt-out.
    let (other, ..) = vips
        .iter()
        .find(|(id, phone, _, out)| !out && phone.is_some() && *id != who)
        .unwrap()
        .clone();
    let talk = db
        .record_inbound(
            ChannelId(sandbox),
            CustomerId(other),
            "please stop by tomorrow",
            None,
            now(),
        )
        .await
        .unwrap();
    assert!(!talk.opted_out);
    assert!(db.channel_opt_outs(other).await.unwrap().is_empty());

    // IS and IS NOT split everyone reachable; ANY widens ALL.
    let everyone = db
        .inspect()
        .audience_count(&AudienceRule::default(), &[ChannelKind::Webhook])
        .await
        .unwrap();
    let not_vip = rule(Match::All, &[(Field::Tag, Op::IsNot, vip)]);
    assert_eq!(
        db.inspect()
            .audience_count(&only_vips, &[ChannelKind::Webhook])
            .await
            .unwrap()
            + db.inspect()
                .audience_count(&not_vip, &[ChannelKind::Webhook])
                .await
                .unwrap(),
        everyone
    );
    let total = db.count_customers().await.unwrap();
    assert!(
        everyone < total,
        "globally opted-out customers are never counted"
    );
    let group = db.ensure_robot_group("Sales-bot").await.unwrap();
    let all_of = rule(
        Match::All,
        &[
            (Field::Tag, Op::Is, vip),
            (Field::RobotGroup, Op::Is, group),
        ],
    );
    let any_of = rule(
        Match::Any,
        &[
            (Field::Tag, Op::Is, vip),
            (Field::RobotGroup, Op::Is, group),
        ],
    );
    let kinds = [ChannelKind::Webhook];
    let (a, b) = (
        db.inspect().audience_count(&all_of, &kinds).await.unwrap(),
        db.inspect().audience_count(&any_of, &kinds).await.unwrap(),
    );
    let vip_count = db
        .inspect()
        .audience_count(&only_vips, &kinds)
        .await
        .unwrap();
    assert!(
        a < vip_count && b > vip_count,
        "all {a}, any {b}, VIP {vip_count}"
    );
}

/// START after STOP: the customer is back in audiences on that kind, with a marketing opt-in
/// recorded as coming from their message (and audited); a sentence with "start" is not one.
async fn start_opts_back_in_with_a_consent_from_the_message(db: &Db) {
    use herald::model::consent::{Purpose, Source};
    seed::load(db, now()).await.unwrap();
    let sandbox = db
        .insert_channel(
            &NewChannel {
                kind: "sandbox".into(),
                name: "Start sandbox".into(),
                config_json: "{}".into(),
                rate_per_sec: 10,
            },
            now(),
        )
        .await
        .unwrap();
    let (who, ..) = tagged(db, "VIP").await.into_iter().find(|c| !c.3).unwrap();
    let said = |text: &'static str, id: &'static str| {
        db.record_inbound(ChannelId(sandbox), CustomerId(who), text, Some(id), now())
    };
    assert!(said("STOP", "s-1").await.unwrap().opted_out);
    said("Can we start the order?", "s-2").await.unwrap();
    let on_sandbox = || async {
        let all = db.consents_of(who).await.unwrap();
        all.into_iter()
            .filter(|c| c.0 == "sandbox")
            .collect::<Vec<_>>()
    };
    assert!(on_sandbox().await.is_empty(), "a sentence is not an opt-in");
    assert_eq!(db.channel_opt_outs(who).await.unwrap().len(), 1);
    said(" Start. ", "s-3").await.unwrap();
    assert!(
        db.channel_opt_outs(who).await.unwrap().is_empty(),
        "the STOP is lifted"
    );
    let consents = on_sandbox().await;
    assert_eq!(consents.len(), 1);
    let (kind, purpose, granted, source, note, _) = &consents[0];
    assert_eq!(
        (kind.as_str(), *purpose, *granted, *source),
        ("sandbox", Purpose::Marketing, true, Source::Inbound)
    );
    assert!(note.as_deref().unwrap().contains("Start"), "{note:?}");
    let audit = db.inspect().audit_entries("consent").await.unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    // The same message delivered again (a provider's retry) records nothing more.
    said(" Start. ", "s-3").await.unwrap();
    assert_eq!(
        db.inspect().audit_entries("consent").await.unwrap().len(),
        1
    );
}

on_both_backends!(
    stop_opts_out_on_that_channel_kind_and_audiences_leave_opt_outs_out,
    start_opts_back_in_with_a_consent_from_the_message,
);
