//! Demo data for a new install: staff of every role, ~2,000 customers, tags, robot groups,
//! a sandbox channel and ~20 broadcasts in every status. Deterministic, so tests can count.

use chrono::{DateTime, TimeDelta, Utc};

use crate::model::{ChannelId, Lifecycle, Role, UserId};
use crate::server::accounts::auth::hash_password;
use crate::server::db::states::{DELIVERED, FAILED, READ, SENT};
use crate::server::db::{Db, NewBroadcast, NewChannel, NewCustomer};

/// The password of every demo account (printed at start; change it in a real install).
pub const DEMO_PASSWORD: &str = "herald-demo";

/// The demo accounts: (email, name, role).
pub const DEMO_USERS: [(&str, &str, Role); 3] = [
    ("admin@herald.test", "Ada Admin", Role::Admin),
    ("staff@herald.test", "Sam Staff", Role::Staff),
    ("manager@herald.test", "Mia Manager", Role::Manager),
];

pub const DEMO_CUSTOMERS: usize = 2_000;

/// Tags and the share of customers carrying each, in per mille.
pub const DEMO_TAGS: [(&str, u64); 7] = [
    ("VIP", 100),
    ("New", 250),
    ("Churned", 80),
    ("Wholesale", 120),
    ("Newsletter", 400),
    ("Beta tester", 50),
    ("Returning", 300),
];

pub const DEMO_GROUPS: [&str; 3] = ["Onboarding-bot", "Support-bot", "Sales-bot"];

const FIRST: [&str; 40] = [
    "Olivia", "Liam", "Emma", "Noah", "Amelia", "Oliver", "Sophia", "Elijah", "Mia", "Lucas",
    "Aisha", "Mateo", "Yuki", "Arjun", "Fatima", "Kenji", "Ingrid", "Diego", "Chloé", "Tomasz",
    "Priya", "Omar", "Zoe", "Henrik", "Leila", "Santiago", "Hannah", "Kwame", "Sofía", "Mehmet",
    "Nadia", "Lars", "Chen", "Ama", "Rafael", "Elena", "Jonas", "Mei", "Ibrahim", "Grace",
];
const LAST: [&str; 40] = [
    "Smith",
    "García",
    "Müller",
    "Kowalski",
    "Nguyen",
    "Okafor",
    "Rossi",
    "Johansson",
    "Tanaka",
    "Patel",
    "Silva",
    "Dubois",
    "Kim",
    "Hernández",
    "Novak",
    "Andersen",
    "Cohen",
    "Mensah",
    "O'Brien",
    "Fischer",
    "Yilmaz",
    "Ivanova",
    "Costa",
    "Haddad",
    "Lindqvist",
    "Moreau",
    "Sato",
    "Brown",
    "Schmidt",
    "López",
    "Jansen",
    "Ahmed",
    "Wilson",
    "Popescu",
    "Nakamura",
    "Bakker",
    "Santos",
    "Rahman",
    "Taylor",
    "Walsh",
];
const ZONES: [&str; 8] = [
    "Europe/London",
    "Europe/Berlin",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Tokyo",
    "Asia/Kolkata",
    "Australia/Sydney",
    "Africa/Lagos",
];

/// A small deterministic generator (SplitMix64): demo data must not need a random crate.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(0x4845_5241_4c44 ^ seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn per_mille(&mut self, p: u64) -> bool {
        self.below(1000) < p
    }
}

/// Whether the database is new: nothing of its own yet, so the demo data may go in.
pub async fn is_empty(db: &Db) -> anyhow::Result<bool> {
    Ok(db.holds_nothing().await?)
}

/// Fills an empty database with the demo data. `now` anchors every date.
pub async fn load(db: &Db, now: DateTime<Utc>) -> anyhow::Result<()> {
    let hash = {
        let pw = DEMO_PASSWORD.to_string();
        tokio::task::spawn_blocking(move || hash_password(&pw)).await??
    };
    let mut staff = Vec::new();
    for (email, name, role) in DEMO_USERS {
        staff.push(db.create_user(email, name, role, &hash, now).await?);
    }
    db.mark_demo_accounts(&staff).await?;
    let mut tag_ids = Vec::new();
    for (name, _) in DEMO_TAGS {
        tag_ids.push(db.insert_tag(name).await?);
    }
    let mut group_ids = Vec::new();
    for name in DEMO_GROUPS {
        group_ids.push(db.insert_robot_group(name).await?);
    }
    let sandbox = db
        .insert_channel(
            &NewChannel {
                kind: "sandbox".into(),
                name: "Sandbox".into(),
                config_json: serde_json::json!({
                    "delivered": 0.95,
                    "read": 0.6,
                    "reply": 0.1,
                    "fail": 0.02,
                    "undelivered": 0.01,
                    "report_delay_ms": 4000,
                    // Authenticates the sandbox's inbound webhook (X-Herald-Token).
                    "inbound_token": crate::server::accounts::auth::new_session_token(),
                })
                .to_string(),
                rate_per_sec: 200,
            },
            now,
        )
        .await?;

    let mut rng = Rng::new(0);
    let tags: Vec<(i64, u64)> = tag_ids
        .iter()
        .zip(DEMO_TAGS)
        .map(|(id, (_, share))| (*id, share))
        .collect();
    let customers: Vec<NewCustomer> = (0..DEMO_CUSTOMERS)
        .map(|i| demo_customer(i, &mut rng, &tags, &group_ids, &staff[..2]))
        .collect();
    db.insert_customers_bulk(&customers, now).await?;
    // Most demo customers opted in to marketing on WhatsApp and SMS when they were imported.
    db.demo_consents(now).await?;

    // The demo's broadcasts in progress go out on a channel paced at one message a second,
    // so that a fresh install shows them sending (with real deliveries) for half an hour.
    let paced = db
        .insert_channel(
            &NewChannel {
                kind: "sandbox".into(),
                name: "Sandbox, paced".into(),
                config_json: serde_json::json!({
                    "delivered": 0.95,
                    "read": 0.6,
                    "reply": 0.1,
                    "fail": 0.02,
                    "undelivered": 0.01,
                    "report_delay_ms": 4000,
                })
                .to_string(),
                rate_per_sec: 1,
            },
            now,
        )
        .await?;
    let mut broadcasts = demo_broadcasts(now, UserId(staff[1]), ChannelId(sandbox));
    // Those in progress start as due schedules and are fired as the dispatcher would: their
    // audience becomes real pending deliveries.
    let mut in_progress = Vec::new();
    for b in broadcasts
        .iter_mut()
        .filter(|b| b.status == Lifecycle::Sending)
    {
        b.status = Lifecycle::Scheduled;
        b.scheduled_at = b.started_at.take();
        b.channel_ids_json = format!("[{paced}]");
        in_progress.push((b.name.clone(), b.scheduled_at.unwrap_or(now)));
    }
    // Finished ones are fired at their start too, then given outcomes, so their results,
    // recipients and the dashboard show real numbers.
    let mut finished = Vec::new();
    for b in broadcasts.iter_mut().filter(|b| b.status.finished()) {
        finished.push((
            b.name.clone(),
            b.status,
            b.started_at.unwrap_or(now),
            b.finished_at.unwrap_or(now),
        ));
        b.status = Lifecycle::Scheduled;
        b.scheduled_at = b.started_at.take();
        b.finished_at = None;
    }
    db.insert_broadcasts(&broadcasts).await?;
    for (name, at) in in_progress {
        let id = db.broadcast_id_by_name(&name).await?;
        db.fire(id, at, chrono::Duration::days(1)).await?;
    }
    for (name, status, started, ended) in finished {
        let id = db.broadcast_id_by_name(&name).await?;
        db.fire(id, started, chrono::Duration::days(365)).await?;
        let outcomes = if status == Lifecycle::Failed {
            format!(
                "UPDATE deliveries SET state = {FAILED}, failed_at = created_at, \
                 error = 'Sandbox: the channel refused every message (simulated).' WHERE broadcast_id = {id}"
            )
        } else {
            // By id: 2.5 % refused, then 60 % read, 30 % delivered, the rest sent; 8 % answered.
            format!(
                "UPDATE deliveries SET \
                 state = CASE WHEN id % 40 = 0 THEN {FAILED} WHEN id % 10 < 6 THEN {READ} \
                              WHEN id % 10 < 9 THEN {DELIVERED} ELSE {SENT} END, \
                 provider_message_id = CASE WHEN id % 40 <> 0 THEN 'demo-' || id END, \
                 sent_at = CASE WHEN id % 40 <> 0 THEN created_at END, \
                 failed_at = CASE WHEN id % 40 = 0 THEN created_at END, \
                 delivered_at = CASE WHEN id % 40 <> 0 AND id % 10 < 9 THEN created_at END, \
                 read_at = CASE WHEN id % 40 <> 0 AND id % 10 < 6 THEN created_at END, \
                 replied_at = CASE WHEN id % 40 <> 0 AND id % 12 = 1 THEN created_at END, \
                 error = CASE WHEN id % 40 = 0 THEN 'Sandbox: the recipient''s number does not exist (simulated).' END \
                 WHERE broadcast_id = {id}"
            )
        };
        db.execute(&outcomes).await?;
        db.rebuild_counters(id).await?;
        db.mark_finished(id, status, ended).await?;
    }
    Ok(())
}

/// The `i`-th generated customer: a realistic name, a unique phone, usually an email, channel
/// ids, tags drawn with their shares (`(tag id, per mille)`), robot groups (30% each), an
/// assignee from `staff` for half, a time zone, and 2% opted out.
pub fn demo_customer(
    i: usize,
    rng: &mut Rng,
    tags: &[(i64, u64)],
    groups: &[i64],
    staff: &[i64],
) -> NewCustomer {
    let first = FIRST[rng.below(FIRST.len() as u64) as usize];
    let last = LAST[rng.below(LAST.len() as u64) as usize];
    let phone = format!("+1555{:07}", 1_000_000 + i);
    let email = format!(
        "{}.{}{}@example.com",
        ascii_slug(first),
        ascii_slug(last),
        i
    );
    NewCustomer {
        name: format!("{first} {last}"),
        whatsapp_id: rng.per_mille(600).then(|| phone[1..].to_string()),
        telegram_chat_id: rng
            .per_mille(300)
            .then(|| (100_000_000 + rng.below(900_000_000)).to_string()),
        phone: Some(phone),
        email: rng.per_mille(800).then_some(email),
        assignee_id: (!staff.is_empty() && rng.per_mille(500))
            .then(|| staff[rng.below(staff.len() as u64) as usize]),
        time_zone: ZONES[rng.below(ZONES.len() as u64) as usize].to_string(),
        opted_out: rng.per_mille(20),
        tag_ids: tags
            .iter()
            .filter(|(_, share)| rng.per_mille(*share))
            .map(|(id, _)| *id)
            .collect(),
        group_ids: groups
            .iter()
            .filter(|_| rng.per_mille(300))
            .copied()
            .collect(),
    }
}

fn ascii_slug(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            'é' => Some('e'),
            'í' => Some('i'),
            'á' => Some('a'),
            'ü' => Some('u'),
            'ó' => Some('o'),
            c if c.is_ascii_alphabetic() => Some(c.to_ascii_lowercase()),
            _ => None,
        })
        .collect()
}

/// `n` broadcasts for benchmarks: the demo set repeated with numbered names, spread over the
/// `n` minutes before `now` so every sort has distinct and tied keys.
pub fn many_broadcasts(n: usize, now: DateTime<Utc>) -> Vec<NewBroadcast> {
    let base = demo_broadcasts(now, UserId(0), ChannelId(0));
    (0..n)
        .map(|i| {
            let mut b = base[i % base.len()].clone();
            let shift = TimeDelta::minutes(i as i64);
            b.name = format!("{} #{i}", b.name);
            b.created_at -= shift;
            b.scheduled_at = b.scheduled_at.map(|t| t - shift);
            b.started_at = b.started_at.map(|t| t - shift);
            b.finished_at = b.finished_at.map(|t| t - shift);
            b.created_by = None;
            b.channel_ids_json = "[]".into();
            b
        })
        .collect()
}

/// ~20 broadcasts covering every status, dated around `now`.
pub fn demo_broadcasts(
    now: DateTime<Utc>,
    UserId(author): UserId,
    ChannelId(channel): ChannelId,
) -> Vec<NewBroadcast> {
    let h = TimeDelta::hours;
    let d = TimeDelta::days;
    // (name, body, status, paused, created, scheduled, started, finished)
    type Spec = (
        &'static str,
        &'static str,
        Lifecycle,
        bool,
        TimeDelta,
        Option<TimeDelta>,
        Option<TimeDelta>,
        Option<TimeDelta>,
    );
    let specs: [Spec; 20] = [
        (
            "Black Friday early access",
            "Hi {{first_name}} 🎉 VIPs shop Black Friday a day early: use code EARLY20 for 20% off.",
            Lifecycle::Sending,
            false,
            -d(3),
            Some(-h(1)),
            Some(-h(1)),
            None,
        ),
        (
            "Order delay apology",
            "Hi {{first_name}}, your order is running late 🙏 We've refunded shipping.",
            Lifecycle::Sending,
            false,
            -d(1),
            Some(-h(2)),
            Some(-h(2)),
            None,
        ),
        (
            "Cyber Monday reminder",
            "{{first_name}}, Cyber Monday deals start tomorrow at 9:00 ⏰",
            Lifecycle::Scheduled,
            false,
            -d(2),
            Some(d(4)),
            None,
            None,
        ),
        (
            "Holiday opening hours",
            "Our support team is here 9–17 from 24 Dec to 2 Jan 🎄",
            Lifecycle::Scheduled,
            false,
            -d(5),
            Some(d(20)),
            None,
            None,
        ),
        (
            "New wholesale price list",
            "Hello {{name}}, the 2027 wholesale price list is attached 📄",
            Lifecycle::Scheduled,
            false,
            -h(30),
            Some(d(7)),
            None,
            None,
        ),
        (
            "Welcome series: day 3",
            "Hi {{first_name}}! Three tips to get the most out of your account 💡",
            Lifecycle::Scheduled,
            false,
            -d(10),
            Some(h(6)),
            None,
            None,
        ),
        (
            "Beta feature invite",
            "{{first_name}}, want to try our new dashboard before anyone else? 🚀",
            Lifecycle::Scheduled,
            true,
            -d(4),
            Some(d(2)),
            None,
            None,
        ),
        (
            "Winback offer",
            "We miss you, {{first_name}} 💙 Here's 15% off your next order.",
            Lifecycle::Sending,
            true,
            -d(2),
            Some(-h(5)),
            Some(-h(5)),
            None,
        ),
        (
            "November newsletter",
            "What's new in November: faster delivery, new colours, and more 📰",
            Lifecycle::Sent,
            false,
            -d(25),
            Some(-d(20)),
            Some(-d(20)),
            Some(-d(20) + h(1)),
        ),
        (
            "Spring sale",
            "Spring sale 🌷 30% off everything this weekend only.",
            Lifecycle::Sent,
            false,
            -d(240),
            Some(-d(235)),
            Some(-d(235)),
            Some(-d(235) + h(2)),
        ),
        (
            "Service outage resolved",
            "Good news: the outage is over and everything works again ✅",
            Lifecycle::Sent,
            false,
            -d(60),
            None,
            Some(-d(60)),
            Some(-d(60) + h(1)),
        ),
        (
            "Survey: how did we do?",
            "Hi {{first_name}}, two minutes to tell us how we did? ⭐",
            Lifecycle::Sent,
            false,
            -d(45),
            Some(-d(40)),
            Some(-d(40)),
            Some(-d(40) + h(3)),
        ),
        (
            "Loyalty points update",
            "{{first_name}}, you now have more points to spend 🎁",
            Lifecycle::Sent,
            false,
            -d(15),
            Some(-d(14)),
            Some(-d(14)),
            Some(-d(14) + h(1)),
        ),
        (
            "Price change notice",
            "From 1 January some prices change; details inside.",
            Lifecycle::Sent,
            false,
            -d(8),
            Some(-d(7)),
            Some(-d(7)),
            Some(-d(7) + h(1)),
        ),
        (
            "SMS gateway test",
            "Test message, please ignore.",
            Lifecycle::Failed,
            false,
            -d(30),
            Some(-d(29)),
            Some(-d(29)),
            Some(-d(29) + h(1)),
        ),
        (
            "Summer clearance",
            "Summer clearance ☀️ up to 50% off.",
            Lifecycle::Cancelled,
            false,
            -d(150),
            Some(-d(140)),
            None,
            None,
        ),
        (
            "Draft: referral programme",
            "Invite a friend, {{first_name}}, and you both get €10 👯",
            Lifecycle::Draft,
            false,
            -d(3),
            None,
            None,
            None,
        ),
        (
            "Draft: app launch",
            "Our app is here 📱 Download it today.",
            Lifecycle::Draft,
            false,
            -h(20),
            Some(d(30)),
            None,
            None,
        ),
        (
            "Draft: VIP dinner invite",
            "{{first_name}}, join us for our VIP dinner 🍷",
            Lifecycle::Draft,
            false,
            -h(5),
            None,
            None,
            None,
        ),
        (
            "Draft: feedback follow-up",
            "Thanks for your feedback, {{first_name}} 🙌",
            Lifecycle::Draft,
            false,
            -h(1),
            None,
            None,
            None,
        ),
    ];
    specs
        .into_iter()
        .map(
            |(name, body, status, paused, created, scheduled, started, finished)| NewBroadcast {
                name: name.into(),
                body: body.into(),
                status,
                paused,
                audience_json: r#"{"match":"all","conditions":[]}"#.into(),
                channel_ids_json: format!("[{channel}]"),
                created_at: now + created,
                scheduled_at: scheduled.map(|t| now + t),
                started_at: started.map(|t| now + t),
                finished_at: finished.map(|t| now + t),
                created_by: Some(author),
            },
        )
        .collect()
}
