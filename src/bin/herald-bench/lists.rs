//! The broadcast list at 100,000 broadcasts and the customers list (search, sort, keyset
//! pages), and the audience counts, on SQLite and PostgreSQL.

use std::io::Write;
use std::time::Instant;

use chrono::Utc;
use herald::model::list_query::PageAnchor;
use herald::model::{BroadcastStatus, CustomerAnchor, CustomerQuery, ListQuery, SortDir, SortKey};
use herald::server::db::Db;
use herald::server::seed;

use crate::{customers, ms};

const BROADCASTS: usize = 100_000;
const RUNS: usize = 200;

/// The list's figures: (what, search, sort, direction).
const LIST_CASES: [(&str, &str, SortKey, SortDir); 8] = [
    ("status sort", "", SortKey::SENDING_FIRST, SortDir::Asc),
    (
        "sent first (a rank computed per row)",
        "",
        SortKey::Status(BroadcastStatus::Sent),
        SortDir::Asc,
    ),
    ("created, newest first", "", SortKey::Created, SortDir::Desc),
    (
        "sending date, oldest first",
        "",
        SortKey::SendDate,
        SortDir::Asc,
    ),
    (
        "search \"newsletter\" (common)",
        "newsletter",
        SortKey::SENDING_FIRST,
        SortDir::Asc,
    ),
    (
        "search \"#99999\" (one match)",
        "#99999",
        SortKey::Created,
        SortDir::Desc,
    ),
    (
        "search with no match",
        "zzzz-nothing",
        SortKey::SENDING_FIRST,
        SortDir::Asc,
    ),
    (
        "search \"#9\" (2 chars: no index)",
        "#9",
        SortKey::SENDING_FIRST,
        SortDir::Asc,
    ),
];

pub async fn list_bench(label: &str, db: &Db) -> anyhow::Result<()> {
    print!("{label}: inserting {BROADCASTS} broadcasts … ");
    std::io::stdout().flush()?;
    let t = Instant::now();
    db.insert_broadcasts(&seed::many_broadcasts(BROADCASTS, Utc::now()))
        .await?;
    println!("{:.1} s", t.elapsed().as_secs_f64());

    // Each case: the first page, and a page deep in the list (reached by its cursor).
    let cases = LIST_CASES;
    println!("  list page of 25 ({RUNS} runs each)             p50        p99");
    for (name, search, sort, dir) in cases {
        let first = ListQuery {
            search: search.into(),
            sort,
            dir,
            anchor: PageAnchor::First,
        };
        // A cursor about two thirds into the unfiltered order.
        let deep = if search.is_empty() {
            let mid = db
                .list_broadcasts(&ListQuery {
                    anchor: PageAnchor::First,
                    dir: dir.flip(),
                    ..first.clone()
                })
                .await?;
            mid.rows.last().map(|r| ListQuery {
                anchor: PageAnchor::After(r.cursor(sort)),
                ..first.clone()
            })
        } else {
            None
        };
        for (which, q) in [("first page", Some(first)), ("deep page", deep)] {
            let Some(q) = q else { continue };
            let mut times = Vec::with_capacity(RUNS);
            for _ in 0..RUNS {
                let t = Instant::now();
                let page = db.list_broadcasts(&q).await?;
                times.push(t.elapsed());
                std::hint::black_box(page);
            }
            times.sort();
            println!(
                "  {:<44} {:>7.2} ms {:>7.2} ms",
                format!("{name}, {which}"),
                ms(times[RUNS / 2]),
                ms(times[RUNS * 99 / 100])
            );
        }
    }
    println!("  (target: p99 <= 50 ms)\n");
    Ok(())
}

pub async fn customer_bench(label: &str, db: &Db) -> anyhow::Result<()> {
    let n = customers();
    print!("{label}: generating {n} customers (herald generate-customers) … ");
    std::io::stdout().flush()?;
    let t = Instant::now();
    herald::server::customers::generate(db, n, Utc::now(), |_| {}).await?;
    let secs = t.elapsed().as_secs_f64();
    println!("{secs:.1} s ({:.0}/s)", n as f64 / secs);

    let q = |search: &str, tag: Option<&str>| CustomerQuery {
        search: search.into(),
        tag: tag.map(Into::into),
        anchor: CustomerAnchor::First,
    };
    // A cursor in the middle of the name order: the first "Mateo …".
    let deep = {
        let mid = db.list_customers(&q("Mateo", None)).await?.rows;
        let mut deep = q("", None);
        deep.anchor = CustomerAnchor::After(mid.first().map(|r| r.id).unwrap_or(1));
        deep
    };
    let cases = [
        ("first page", q("", None)),
        ("deep page", deep),
        ("search \"smith\" (common name)", q("smith", None)),
        ("search one phone", q("5551500000", None)),
        ("search with no match", q("zzzz-nothing", None)),
        ("tag VIP (10%)", q("", Some("VIP"))),
        (
            "tag Beta tester (5%) + search \"ola\"",
            q("ola", Some("Beta tester")),
        ),
    ];
    println!("  customers page of 25 ({RUNS} runs each)         p50        p99");
    for (name, query) in cases {
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let t = Instant::now();
            let page = db.list_customers(&query).await?;
            let ids: Vec<i64> = page.rows.iter().map(|r| r.id).collect();
            std::hint::black_box(db.customer_labels(&ids).await?);
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "  {:<44} {:>7.2} ms {:>7.2} ms",
            name,
            ms(times[RUNS / 2]),
            ms(times[RUNS * 99 / 100])
        );
    }
    audience_bench(db).await?;
    println!();
    Ok(())
}

/// The wizard's live audience count and pre-flight breakdown over all generated customers.
async fn audience_bench(db: &Db) -> anyhow::Result<()> {
    use herald::model::audience::{AudienceRule, Condition, Field, Match, Op};
    use herald::model::channel::ChannelKind;
    let vip = db.ensure_tag("VIP").await?;
    let new = db.ensure_tag("New").await?;
    let sales = db.ensure_robot_group("Sales-bot").await?;
    let cond = |field, op, id| Condition { field, op, id };
    let cases = [
        (
            "everyone, sandbox",
            AudienceRule::default(),
            vec![ChannelKind::Sandbox],
        ),
        (
            "tag VIP, sandbox",
            AudienceRule {
                matching: Match::All,
                conditions: vec![cond(Field::Tag, Op::Is, vip)],
                frozen: None,
            },
            vec![ChannelKind::Sandbox],
        ),
        (
            "VIP and not New, WhatsApp then SMS",
            AudienceRule {
                matching: Match::All,
                conditions: vec![
                    cond(Field::Tag, Op::Is, vip),
                    cond(Field::Tag, Op::IsNot, new),
                ],
                frozen: None,
            },
            vec![ChannelKind::Whatsapp, ChannelKind::Sms],
        ),
        (
            "VIP or Sales-bot, email then SMS",
            AudienceRule {
                matching: Match::Any,
                conditions: vec![
                    cond(Field::Tag, Op::Is, vip),
                    cond(Field::RobotGroup, Op::Is, sales),
                ],
                frozen: None,
            },
            vec![ChannelKind::Email, ChannelKind::Sms],
        ),
    ];
    const AUDIENCE_RUNS: usize = 5;
    println!(
        "  audience (wizard), {AUDIENCE_RUNS} runs each        count p50   breakdown p50   customers"
    );
    for (name, rule, kinds) in cases {
        let (mut counts, mut breakdowns) = (Vec::new(), Vec::new());
        let mut n = 0;
        for _ in 0..AUDIENCE_RUNS {
            let t = Instant::now();
            n = db.inspect().audience_count(&rule, &kinds).await?;
            counts.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(db.audience_breakdown(&rule, &kinds).await?);
            breakdowns.push(t.elapsed());
        }
        counts.sort();
        breakdowns.sort();
        println!(
            "  {:<40} {:>9.0} ms {:>12.0} ms {:>11}",
            name,
            ms(counts[AUDIENCE_RUNS / 2]),
            ms(breakdowns[AUDIENCE_RUNS / 2]),
            n
        );
    }
    Ok(())
}
