//! The storage layer, run identically against SQLite and PostgreSQL.

use herald::model::{BroadcastId, UserId};
use std::collections::HashSet;

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use herald::model::list_query::{PAGE_SIZE, PageAnchor, RawListParams};
use herald::model::{BroadcastStatus, ListQuery, Role, SortDir, SortKey};
use herald::server::accounts::auth::{hash_password, token_hash};
use herald::server::db::{Db, DbError, NewBroadcast, PauseError};
use herald::server::seed;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
}

fn q(search: &str, sort: SortKey, dir: SortDir) -> ListQuery {
    ListQuery {
        search: search.into(),
        sort,
        dir,
        anchor: PageAnchor::First,
    }
}

fn broadcast(name: &str, status: &str, created: DateTime<Utc>) -> NewBroadcast {
    NewBroadcast {
        name: name.into(),
        body: format!("Body of {name}"),
        status: herald::model::Lifecycle::parse(status).expect("a stored status"),
        paused: false,
        audience_json: r#"{"match":"all","conditions":[]}"#.into(),
        channel_ids_json: "[]".into(),
        scheduled_at: (status != "draft").then_some(created + TimeDelta::days(1)),
        started_at: matches!(status, "sending" | "sent" | "failed")
            .then_some(created + TimeDelta::days(1)),
        finished_at: None,
        created_at: created,
        created_by: None,
    }
}

/// Walks every page forward from the first and returns the ids in order.
async fn walk(db: &Db, mut query: ListQuery) -> Vec<i64> {
    let mut ids = Vec::new();
    loop {
        let page = db.list_broadcasts(&query).await.unwrap();
        assert!(page.rows.len() <= PAGE_SIZE);
        ids.extend(page.rows.iter().map(|r| r.id));
        if !page.has_next {
            return ids;
        }
        let last = page.rows.last().unwrap().cursor(query.sort);
        query.anchor = PageAnchor::After(last);
    }
}

/// The pages before `from`, walked back to the start: their ids in list order.
async fn walk_back(db: &Db, mut query: ListQuery, from: herald::model::Cursor) -> Vec<i64> {
    let mut ids = Vec::new();
    query.anchor = PageAnchor::Before(from);
    loop {
        let page = db.list_broadcasts(&query).await.unwrap();
        let mut these: Vec<i64> = page.rows.iter().map(|r| r.id).collect();
        these.extend(ids);
        ids = these;
        if !page.has_prev {
            return ids;
        }
        let first = page.rows.first().unwrap().cursor(query.sort);
        query.anchor = PageAnchor::Before(first);
    }
}

async fn demo_data_covers_every_status(db: &Db) {
    seed::load(db, t0()).await.unwrap();
    assert_eq!(db.count_users().await.unwrap(), 3);
    assert_eq!(
        db.count_customers().await.unwrap(),
        seed::DEMO_CUSTOMERS as i64
    );
    assert_eq!(db.count_broadcasts().await.unwrap(), 20);
    let vip = db.inspect().count_customers_tagged("VIP").await.unwrap();
    assert!((120..=280).contains(&vip), "about 10% VIP, got {vip}");
    let rows = db
        .list_broadcasts(&q("", SortKey::SENDING_FIRST, SortDir::Asc))
        .await
        .unwrap()
        .rows;
    let statuses: HashSet<_> = rows.iter().map(|r| r.display_status()).collect();
    for s in BroadcastStatus::IN_SORT_ORDER {
        assert!(statuses.contains(&s), "demo data lacks a {s:?} broadcast");
    }
    for (email, _, role) in seed::DEMO_USERS {
        let u = db.user_by_email(email).await.unwrap().expect(email);
        assert_eq!(u.to_current().unwrap().role, role);
        assert!(herald::server::accounts::auth::verify_password(
            seed::DEMO_PASSWORD,
            &u.password_hash
        ));
    }
}

async fn status_sort_follows_the_rank_and_breaks_ties_by_time(db: &Db) {
    seed::load(db, t0()).await.unwrap();
    let rows = db
        .list_broadcasts(&q("", SortKey::SENDING_FIRST, SortDir::Asc))
        .await
        .unwrap()
        .rows;
    for r in &rows {
        assert_eq!(
            r.status_rank,
            r.display_status().rank(),
            "SQL status_rank and BroadcastStatus::rank disagree for {}",
            r.name
        );
    }
    for w in rows.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        assert!(
            (a.status_rank, a.send_sort, a.id) < (b.status_rank, b.send_sort, b.id),
            "{} before {}",
            a.name,
            b.name
        );
    }
    assert_eq!(
        rows.first().unwrap().display_status(),
        BroadcastStatus::Sending
    );
    assert_eq!(
        rows.last().unwrap().display_status(),
        BroadcastStatus::Draft
    );
    let desc = db
        .list_broadcasts(&q("", SortKey::SENDING_FIRST, SortDir::Desc))
        .await
        .unwrap()
        .rows;
    let mut reversed: Vec<_> = desc.iter().map(|r| r.id).collect();
    reversed.reverse();
    assert_eq!(reversed, rows.iter().map(|r| r.id).collect::<Vec<_>>());
}

async fn keyset_pages_visit_every_row_once_in_every_order(db: &Db) {
    // 70 rows, many sharing a creation time, across statuses: ties must not lose or repeat rows.
    let statuses = [
        "draft",
        "scheduled",
        "sending",
        "sent",
        "cancelled",
        "failed",
    ];
    for i in 0..70 {
        let created = t0() + TimeDelta::minutes((i % 7) as i64);
        let mut b = broadcast(&format!("B{i:02}"), statuses[i % statuses.len()], created);
        b.paused = i % 11 == 0;
        db.inspect().insert_broadcast(&b).await.unwrap();
    }
    for sort in SortKey::menu().into_iter().map(|(key, _)| key) {
        for dir in [SortDir::Asc, SortDir::Desc] {
            let ids = walk(db, q("", sort, dir)).await;
            assert_eq!(ids.len(), 70, "{sort:?} {dir:?}");
            assert_eq!(
                ids.iter().collect::<HashSet<_>>().len(),
                70,
                "{sort:?} {dir:?}"
            );
            // The same order as one unpaged query would give.
            let all = db.list_broadcasts(&q("", sort, dir)).await.unwrap();
            assert_eq!(
                &ids[..PAGE_SIZE],
                &all.rows.iter().map(|r| r.id).collect::<Vec<_>>()[..]
            );
            // In order: each row's key (its rank under this sort, time, id) follows the last.
            let mut keys = Vec::new();
            for id in &ids {
                let c = db.broadcast(*id).await.unwrap().cursor(sort);
                keys.push((c.rank, c.micros, c.id));
            }
            let mut sorted = keys.clone();
            sorted.sort();
            if dir == SortDir::Desc {
                sorted.reverse();
            }
            assert_eq!(keys, sorted, "{sort:?} {dir:?}");
            // Walking back from the last row gives every row before it, in the same order.
            let last = db
                .broadcast(*ids.last().unwrap())
                .await
                .unwrap()
                .cursor(sort);
            let back = walk_back(db, q("", sort, dir), last).await;
            assert_eq!(back, ids[..ids.len() - 1], "{sort:?} {dir:?} backwards");
        }
    }
    // Forward to page 3, then back: page 2 again, in the same order.
    let query = q("", SortKey::Created, SortDir::Desc);
    let p1 = db.list_broadcasts(&query).await.unwrap();
    assert!(!p1.has_prev && p1.has_next);
    let after1 = ListQuery {
        anchor: PageAnchor::After(p1.rows.last().unwrap().cursor(SortKey::Created)),
        ..query.clone()
    };
    let p2 = db.list_broadcasts(&after1).await.unwrap();
    assert!(p2.has_prev && p2.has_next);
    let after2 = ListQuery {
        anchor: PageAnchor::After(p2.rows.last().unwrap().cursor(SortKey::Created)),
        ..query.clone()
    };
    let p3 = db.list_broadcasts(&after2).await.unwrap();
    assert_eq!(p3.rows.len(), 70 - 2 * PAGE_SIZE);
    assert!(!p3.has_next);
    let back = ListQuery {
        anchor: PageAnchor::Before(p3.rows.first().unwrap().cursor(SortKey::Created)),
        ..query.clone()
    };
    let p2_again = db.list_broadcasts(&back).await.unwrap();
    let ids = |p: &herald::server::db::BroadcastRecord| p.id;
    assert_eq!(
        p2_again.rows.iter().map(ids).collect::<Vec<_>>(),
        p2.rows.iter().map(ids).collect::<Vec<_>>()
    );
    assert!(p2_again.has_prev && p2_again.has_next);
}

async fn search_matches_name_and_text_ignoring_case_with_literal_wildcards(db: &Db) {
    let mut a = broadcast("Spring SALE", "sent", t0());
    a.body = "Everything 50% off".into();
    db.inspect().insert_broadcast(&a).await.unwrap();
    let mut b = broadcast("Newsletter", "draft", t0());
    b.body = "Our spring collection is here".into();
    db.inspect().insert_broadcast(&b).await.unwrap();
    let mut c = broadcast("Price list", "draft", t0());
    c.body = "Save 500 on bulk orders".into();
    db.inspect().insert_broadcast(&c).await.unwrap();

    let names = |rows: Vec<herald::server::db::BroadcastRecord>| {
        let mut n: Vec<String> = rows.into_iter().map(|r| r.name).collect();
        n.sort();
        n
    };
    let hit = |s: &'static str| {
        let query = q(s, SortKey::Created, SortDir::Desc);
        async move { names(db.list_broadcasts(&query).await.unwrap().rows) }
    };
    assert_eq!(hit("spring").await, vec!["Newsletter", "Spring SALE"]);
    assert_eq!(hit("sale").await, vec!["Spring SALE"]);
    // Shorter than a trigram: the fallback path, same meaning.
    assert_eq!(hit("sA").await, vec!["Price list", "Spring SALE"]);
    assert_eq!(hit("ZZ").await, Vec::<String>::new());
    assert_eq!(hit("50%").await, vec!["Spring SALE"], "% is literal");
    assert_eq!(hit("5_0").await, Vec::<String>::new(), "_ is literal");
    assert_eq!(hit("no such thing").await, Vec::<String>::new());
    assert_eq!(
        hit("\"quoted\" OR *").await,
        Vec::<String>::new(),
        "query syntax is literal"
    );
    assert_eq!(
        hit("'; DROP TABLE broadcasts; --").await,
        Vec::<String>::new()
    );
    assert_eq!(db.count_broadcasts().await.unwrap(), 3);
}

async fn pause_and_resume_only_unfinished_broadcasts_with_an_audit_trail(db: &Db) {
    let hash = hash_password("pw").unwrap();
    let admin = db
        .create_user("boss@example.com", "Boss", Role::Admin, &hash, t0())
        .await
        .unwrap();
    let scheduled = db
        .inspect()
        .insert_broadcast(&broadcast("S", "scheduled", t0()))
        .await
        .unwrap();
    let sending = db
        .inspect()
        .insert_broadcast(&broadcast("G", "sending", t0()))
        .await
        .unwrap();
    let sent = db
        .inspect()
        .insert_broadcast(&broadcast("D", "sent", t0()))
        .await
        .unwrap();

    let b = db
        .set_paused(BroadcastId(scheduled), true, UserId(admin), t0())
        .await
        .unwrap();
    assert_eq!(b.display_status(), BroadcastStatus::Paused);
    assert_eq!(b.status_rank, BroadcastStatus::Paused.rank());
    let b = db.broadcast(scheduled).await.unwrap();
    assert!(b.paused, "persisted");
    let b = db
        .set_paused(BroadcastId(scheduled), false, UserId(admin), t0())
        .await
        .unwrap();
    assert_eq!(
        b.display_status(),
        BroadcastStatus::Scheduled,
        "resume returns to where it was"
    );

    let b = db
        .set_paused(BroadcastId(sending), true, UserId(admin), t0())
        .await
        .unwrap();
    assert_eq!(b.display_status(), BroadcastStatus::Paused);
    let b = db
        .set_paused(BroadcastId(sending), false, UserId(admin), t0())
        .await
        .unwrap();
    assert_eq!(b.display_status(), BroadcastStatus::Sending);

    assert!(matches!(
        db.set_paused(BroadcastId(sent), true, UserId(admin), t0())
            .await,
        Err(PauseError::NotPausable(_))
    ));
    assert!(!db.broadcast(sent).await.unwrap().paused);
    assert!(matches!(
        db.set_paused(BroadcastId(9_999_999), true, UserId(admin), t0())
            .await,
        Err(PauseError::NotFound(9_999_999))
    ));
    assert!(matches!(
        db.broadcast(9_999_999).await,
        Err(DbError::NotFound)
    ));

    let trail = db
        .inspect()
        .audit_trail("broadcast", scheduled)
        .await
        .unwrap();
    let actions: Vec<_> = trail.iter().map(|(a, who, _)| (a.as_str(), *who)).collect();
    assert_eq!(
        actions,
        vec![("resume", Some(admin)), ("pause", Some(admin))]
    );
}

async fn sessions_expire_and_end(db: &Db) {
    let hash = hash_password("pw").unwrap();
    let id = db
        .create_user("Someone@Example.com", "Someone", Role::Staff, &hash, t0())
        .await
        .unwrap();
    assert!(
        db.user_by_email("  someone@example.COM ")
            .await
            .unwrap()
            .is_some(),
        "emails are case-insensitive"
    );
    let h = token_hash("token-1");
    db.create_session(
        &h,
        UserId(id),
        t0() + TimeDelta::hours(1),
        &herald::server::db::AuditEntry::new(
            t0(),
            Some(UserId(id)),
            "sign_in",
            "staff_user",
            Some(id),
        ),
    )
    .await
    .unwrap();
    let u = db
        .session_user(&h, t0() + TimeDelta::minutes(59), TimeDelta::days(1))
        .await
        .unwrap();
    assert_eq!(u.map(|u| u.id), Some(id));
    assert!(
        db.session_user(&h, t0() + TimeDelta::hours(1), TimeDelta::days(1))
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    assert!(
        db.session_user(&token_hash("other"), t0(), TimeDelta::days(1))
            .await
            .unwrap()
            .is_none()
    );
    // Unused for longer than the idle limit: ended, although not expired; each use extends it.
    let idle = TimeDelta::minutes(20);
    let at = |m: i64| t0() + TimeDelta::minutes(m);
    assert!(db.session_user(&h, at(19), idle).await.unwrap().is_some());
    assert!(
        db.session_user(&h, at(21), idle).await.unwrap().is_none(),
        "idle"
    );
    db.touch_session(&h, at(15)).await.unwrap();
    assert!(
        db.session_user(&h, at(34), idle).await.unwrap().is_some(),
        "used at 15"
    );
    db.touch_session(&h, at(15) + TimeDelta::seconds(30))
        .await
        .unwrap();
    assert!(
        db.session_user(&h, at(36), idle).await.unwrap().is_none(),
        "a touch within a minute is not written"
    );
    db.delete_session(&h).await.unwrap();
    assert!(
        db.session_user(&h, t0(), TimeDelta::days(1))
            .await
            .unwrap()
            .is_none(),
        "signed out"
    );
}

async fn times_round_trip_at_microsecond_precision(db: &Db) {
    let created = Utc.timestamp_micros(1_764_158_400_123_456).unwrap();
    let id = db
        .inspect()
        .insert_broadcast(&broadcast("T", "draft", created))
        .await
        .unwrap();
    let b = db.broadcast(id).await.unwrap();
    assert_eq!(b.created_at, created);
    assert_eq!(
        b.send_sort, created,
        "a draft without a time sorts by creation"
    );
    let id = db
        .inspect()
        .insert_broadcast(&broadcast("U", "scheduled", created))
        .await
        .unwrap();
    assert_eq!(
        db.broadcast(id).await.unwrap().send_sort,
        created + TimeDelta::days(1)
    );
}

async fn parsed_bad_input_still_lists(db: &Db) {
    seed::load(db, t0()).await.unwrap();
    let raw = RawListParams {
        q: Some("x".repeat(10_000)),
        sort: Some("bogus".into()),
        dir: Some("up".into()),
        after: Some("99999999999999999999999999".into()),
        before: None,
    };
    let (query, notices) = ListQuery::parse(&raw);
    assert_eq!(notices.len(), 4);
    let page = db.list_broadcasts(&query).await.unwrap();
    assert!(page.rows.is_empty(), "no broadcast contains 200 x's");
}

on_both_backends!(
    demo_data_covers_every_status,
    status_sort_follows_the_rank_and_breaks_ties_by_time,
    keyset_pages_visit_every_row_once_in_every_order,
    search_matches_name_and_text_ignoring_case_with_literal_wildcards,
    pause_and_resume_only_unfinished_broadcasts_with_an_audit_trail,
    sessions_expire_and_end,
    times_round_trip_at_microsecond_precision,
    parsed_bad_input_still_lists,
);
