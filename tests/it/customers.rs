//! The customers list and the customer generator, on SQLite and PostgreSQL.

use std::collections::HashSet;

use chrono::{TimeZone, Utc};
use herald::model::list_query::PAGE_SIZE;
use herald::model::{CustomerAnchor, CustomerQuery};
use herald::server::customers::generate;
use herald::server::db::Db;
use herald::server::seed;

fn query(search: &str, tag: Option<&str>) -> CustomerQuery {
    CustomerQuery {
        search: search.into(),
        tag: tag.map(Into::into),
        anchor: CustomerAnchor::First,
    }
}

/// Every customer the query finds, walking all pages forward: (id, name).
async fn walk(db: &Db, mut q: CustomerQuery) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    loop {
        let page = db.list_customers(&q).await.unwrap();
        assert!(page.rows.len() <= PAGE_SIZE);
        out.extend(page.rows.iter().map(|r| (r.id, r.name.clone())));
        if !page.has_next {
            return out;
        }
        q.anchor = CustomerAnchor::After(page.rows.last().unwrap().id);
    }
}

async fn all_customers_in_name_order_once(db: &Db) {
    seed::load(db, Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap())
        .await
        .unwrap();
    let all = walk(db, query("", None)).await;
    assert_eq!(all.len(), seed::DEMO_CUSTOMERS);
    assert_eq!(
        all.iter().map(|(id, _)| id).collect::<HashSet<_>>().len(),
        all.len()
    );
    let mut sorted = all.clone();
    sorted.sort_by(|a, b| (a.1.as_bytes(), a.0).cmp(&(b.1.as_bytes(), b.0)));
    assert_eq!(all, sorted, "ordered by name, then id");

    // Back from page 3 is page 2.
    let p1 = db.list_customers(&query("", None)).await.unwrap();
    let mut q = query("", None);
    q.anchor = CustomerAnchor::After(p1.rows.last().unwrap().id);
    let p2 = db.list_customers(&q).await.unwrap();
    q.anchor = CustomerAnchor::After(p2.rows.last().unwrap().id);
    let p3 = db.list_customers(&q).await.unwrap();
    q.anchor = CustomerAnchor::Before(p3.rows.first().unwrap().id);
    let back = db.list_customers(&q).await.unwrap();
    let ids =
        |p: &herald::server::db::CustomerPageRows| p.rows.iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(&back), ids(&p2));
    assert!(back.has_prev && back.has_next);
}

async fn search_and_tag_filter_find_exactly_the_matching_customers(db: &Db) {
    seed::load(db, Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap())
        .await
        .unwrap();
    // Search: any substring of name, phone or email, ignoring case.
    let smiths = walk(db, query("sMiTh", None)).await;
    assert!(!smiths.is_empty());
    let everyone = walk(db, query("", None)).await;
    let expected: Vec<_> = everyone
        .iter()
        .filter(|(_, n)| n.to_lowercase().contains("smith"))
        .cloned()
        .collect();
    // Emails hold the name too (olivia.smith12@…), so name matches are the whole answer here.
    assert_eq!(smiths, expected);
    let by_phone = walk(db, query("5551000042", None)).await;
    assert_eq!(by_phone.len(), 1, "one customer has that phone");

    // Tag filter: the same set as the tag's links.
    let vip = walk(db, query("", Some("VIP"))).await;
    assert_eq!(
        vip.len() as i64,
        db.inspect().count_customers_tagged("VIP").await.unwrap()
    );
    let ids: Vec<i64> = vip.iter().take(50).map(|(id, _)| *id).collect();
    let (tags, _) = db.customer_labels(&ids).await.unwrap();
    for id in &ids {
        assert!(
            tags[id].contains(&"VIP".to_string()),
            "customer {id} is VIP"
        );
    }
    // Both together, and an unknown tag.
    let vip_smiths = walk(db, query("smith", Some("VIP"))).await;
    let vip_ids: HashSet<i64> = vip.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        vip_smiths,
        smiths
            .iter()
            .filter(|(id, _)| vip_ids.contains(id))
            .cloned()
            .collect::<Vec<_>>()
    );
    assert!(walk(db, query("", Some("No such tag"))).await.is_empty());
    assert!(
        walk(db, query("\"; DROP TABLE customers; --", None))
            .await
            .is_empty()
    );
    assert_eq!(
        db.count_customers().await.unwrap(),
        seed::DEMO_CUSTOMERS as i64
    );
}

async fn the_generator_adds_customers_with_tags_and_unique_phones(db: &Db) {
    seed::load(db, Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap())
        .await
        .unwrap();
    let before_vip = db.inspect().count_customers_tagged("VIP").await.unwrap();
    let mut reported = Vec::new();
    generate(db, 3_000, Utc::now(), |n| reported.push(n))
        .await
        .unwrap();
    assert_eq!(reported.last(), Some(&3_000));
    generate(db, 1_000, Utc::now(), |_| {}).await.unwrap();
    assert_eq!(
        db.count_customers().await.unwrap(),
        seed::DEMO_CUSTOMERS as i64 + 4_000
    );
    let added_vip = db.inspect().count_customers_tagged("VIP").await.unwrap() - before_vip;
    assert!(
        (250..=550).contains(&added_vip),
        "about 10% of 4,000 are VIP: {added_vip}"
    );
    // Generated customers are searchable at once (the text index is kept in step).
    assert_eq!(walk(db, query("5551005999", None)).await.len(), 1);
}

on_both_backends!(
    all_customers_in_name_order_once,
    search_and_tag_filter_find_exactly_the_matching_customers,
    the_generator_adds_customers_with_tags_and_unique_phones,
);
