//! Property test: an audience rule compiled to SQL (on SQLite and on PostgreSQL) and the same
//! rule evaluated in memory pick exactly the same customers, for many random rules and random
//! customers (tags, robot groups, addresses, opt-outs of everything or of one channel kind).

use chrono::{TimeZone, Utc};
use herald::model::audience::{AudienceRule, Condition, CustomerFacts, Field, Match, Op};
use herald::model::channel::ChannelKind;
use herald::model::{ChannelId, CustomerId};
use herald::server::db::{Db, NewChannel, NewCustomer};

/// xorshift64*: small, deterministic, and the failing seed is printed.
struct Rand(u64);
impl Rand {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const KINDS: [ChannelKind; 5] = [
    ChannelKind::Sandbox,
    ChannelKind::Sms,
    ChannelKind::Email,
    ChannelKind::Whatsapp,
    ChannelKind::Webhook,
];

async fn sql_and_memory_agree_on_random_rules(db: &Db) {
    let now = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
    let mut tags = Vec::new();
    for name in ["VIP", "Churned", "New", "Wholesale"] {
        tags.push(db.insert_tag(name).await.unwrap());
    }
    let mut groups = Vec::new();
    for name in ["Onboarding-bot", "Support-bot", "Sales-bot"] {
        groups.push(db.insert_robot_group(name).await.unwrap());
    }
    let mut channels = Vec::new();
    for kind in KINDS {
        let id = db
            .insert_channel(
                &NewChannel {
                    kind: kind.as_str().into(),
                    name: format!("{} test", kind.as_str()),
                    config_json: "{}".into(),
                    rate_per_sec: 10,
                },
                now,
            )
            .await
            .unwrap();
        channels.push((kind, id));
    }

    let mut r = Rand(0x9E37_79B9_7F4A_7C15);
    let mut new = Vec::new();
    let mut facts = Vec::new();
    for i in 0..400 {
        let pick = |r: &mut Rand, from: &[i64], p| {
            from.iter()
                .copied()
                .filter(|_| r.chance(p))
                .collect::<Vec<_>>()
        };
        let c = NewCustomer {
            name: format!("Customer {i}"),
            // insert_customers_bulk links tags and groups through the phone: everyone has one.
            phone: Some(format!("+1777{i:07}")),
            email: r.chance(50).then(|| format!("c{i}@example.org")),
            whatsapp_id: r.chance(40).then(|| format!("1777{i:07}")),
            telegram_chat_id: None,
            assignee_id: None,
            time_zone: "UTC".into(),
            opted_out: r.chance(8),
            tag_ids: pick(&mut r, &tags, 35),
            group_ids: pick(&mut r, &groups, 30),
        };
        let mut addresses = vec![ChannelKind::Sandbox];
        addresses.push(ChannelKind::Sms);
        if c.email.is_some() {
            addresses.push(ChannelKind::Email);
        }
        if c.whatsapp_id.is_some() {
            addresses.push(ChannelKind::Whatsapp);
        }
        facts.push(CustomerFacts {
            tags: c.tag_ids.clone(),
            groups: c.group_ids.clone(),
            opted_out: c.opted_out,
            addresses,
            opted_out_kinds: Vec::new(),
        });
        new.push(c);
    }
    db.insert_customers_bulk(&new, now).await.unwrap();
    // Each customer's id, found by address (every one has a phone or an email).
    let mut all_ids = Vec::new();
    for c in &new {
        let id = db
            .customer_by_address(ChannelKind::Sms, c.phone.as_ref().unwrap())
            .await
            .unwrap()
            .unwrap();
        all_ids.push(id);
    }
    assert!(all_ids.windows(2).all(|w| w[0] < w[1]));
    // Some customers text STOP on one channel kind.
    for (i, f) in facts.iter_mut().enumerate() {
        if r.chance(15) {
            let (kind, channel) = channels[r.below(4) as usize];
            db.record_inbound(
                ChannelId(channel),
                CustomerId(all_ids[i]),
                "STOP",
                None,
                now,
            )
            .await
            .unwrap();
            f.opted_out_kinds.push(kind);
        }
    }

    for round in 0..250 {
        let n = r.below(5) as usize;
        let rule = AudienceRule {
            matching: if r.chance(50) { Match::All } else { Match::Any },
            conditions: (0..n)
                .map(|_| {
                    let tag = r.chance(60);
                    Condition {
                        field: if tag { Field::Tag } else { Field::RobotGroup },
                        op: if r.chance(65) { Op::Is } else { Op::IsNot },
                        id: if tag {
                            tags[r.below(tags.len() as u64) as usize]
                        } else {
                            groups[r.below(groups.len() as u64) as usize]
                        },
                    }
                })
                .collect(),
            frozen: None,
        };
        let mut kinds: Vec<ChannelKind> = Vec::new();
        for _ in 0..=r.below(3) {
            let k = KINDS[r.below(KINDS.len() as u64) as usize];
            if !kinds.contains(&k) {
                kinds.push(k);
            }
        }
        let from_sql = db.inspect().audience_ids(&rule, &kinds).await.unwrap();
        let in_memory: Vec<i64> = facts
            .iter()
            .zip(&all_ids)
            .filter(|(f, _)| rule.reaches(f, &kinds).is_some())
            .map(|(_, id)| *id)
            .collect();
        assert_eq!(
            from_sql, in_memory,
            "round {round}: rule {rule:?} on {kinds:?}"
        );
        assert_eq!(
            db.inspect().audience_count(&rule, &kinds).await.unwrap(),
            in_memory.len() as i64
        );
        // Each customer on the first picked kind that reaches them; the rest unreachable.
        let mut per_kind = vec![0i64; kinds.len()];
        let mut unreachable = 0;
        for f in &facts {
            match rule.reaches(f, &kinds) {
                Some(k) => per_kind[kinds.iter().position(|x| *x == k).unwrap()] += 1,
                None if !f.opted_out && rule.matches(&f.tags, &f.groups) => unreachable += 1,
                None => {}
            }
        }
        let b = db.audience_breakdown(&rule, &kinds).await.unwrap();
        assert_eq!(
            (b.per_kind.clone(), b.unreachable),
            (per_kind, unreachable),
            "round {round}: breakdown of {rule:?} on {kinds:?}"
        );
        assert_eq!(b.reachable(), in_memory.len() as i64);
        let sample = db.audience_sample(&rule, &kinds, 5).await.unwrap();
        assert_eq!(sample.len(), in_memory.len().min(5));
    }
}

on_both_backends!(sql_and_memory_agree_on_random_rules);
