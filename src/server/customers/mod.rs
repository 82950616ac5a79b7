//! Customers: the list, editing, tags, import, export, unsubscribe links, and generating
//! large customer sets.

pub mod consent;
pub mod edit;
pub mod export;
pub mod import;
pub mod import_jobs;
pub mod import_limits;
pub mod labels;
pub mod preferences;
pub mod tags;
pub mod unsubscribe;

use chrono::{DateTime, Utc};

use crate::model::AppError;
use crate::model::{CurrentUser, CustomerAnchor, CustomerPage, CustomerQuery, CustomerRow};
use crate::server::AppState;
use crate::server::db::{Db, NewCustomer};
use crate::server::seed;

/// One page of customers for the customers page.
pub async fn list_page(
    state: &AppState,
    viewer: &CurrentUser,
    search: Option<&str>,
    tag: Option<&str>,
    after: Option<&str>,
    before: Option<&str>,
) -> Result<CustomerPage, AppError> {
    let (query, notices) = CustomerQuery::parse(search, tag, after, before);
    let page = state.db.list_customers(&query).await?;
    let ids: Vec<i64> = page.rows.iter().map(|r| r.id).collect();
    let (mut tags, mut groups) = state.db.customer_labels(&ids).await?;
    let first = page.rows.first().map(|r| r.id);
    let last = page.rows.last().map(|r| r.id);
    let rows = page
        .rows
        .into_iter()
        .map(|r| CustomerRow {
            tags: tags.remove(&r.id).unwrap_or_default(),
            groups: groups.remove(&r.id).unwrap_or_default(),
            id: r.id,
            name: r.name,
            phone: r.phone,
            email: r.email,
            assignee: r.assignee,
            opted_out: r.opted_out,
        })
        .collect();
    Ok(CustomerPage {
        rows,
        next: page
            .has_next
            .then_some(last)
            .flatten()
            .map(|id| query.href(CustomerAnchor::After(id))),
        prev: page
            .has_prev
            .then_some(first)
            .flatten()
            .map(|id| query.href(CustomerAnchor::Before(id))),
        query,
        notices,
        all_tags: state.db.tag_names().await?,
        can_tag: viewer.role.can_edit(),
    })
}

/// Adds `count` generated customers with the demo tag and group distribution, in batches, and
/// calls `progress` with the running total. Phones continue after the highest generated one.
pub async fn generate(
    db: &Db,
    count: usize,
    now: DateTime<Utc>,
    mut progress: impl FnMut(usize),
) -> anyhow::Result<()> {
    let mut tag_ids = Vec::new();
    for (name, share) in seed::DEMO_TAGS {
        tag_ids.push((db.ensure_tag(name).await?, share));
    }
    let mut group_ids = Vec::new();
    for name in seed::DEMO_GROUPS {
        group_ids.push(db.ensure_robot_group(name).await?);
    }
    let start = db.count_customers().await? as usize + seed::DEMO_CUSTOMERS;
    let mut rng = seed::Rng::new(start as u64);
    let mut done = 0;
    while done < count {
        let n = (count - done).min(20_000);
        let batch: Vec<NewCustomer> = (0..n)
            .map(|i| seed::demo_customer(start + done + i, &mut rng, &tag_ids, &group_ids, &[]))
            .collect();
        db.insert_customers_bulk(&batch, now).await?;
        done += n;
        progress(done);
    }
    db.analyze_customers().await?;
    Ok(())
}
