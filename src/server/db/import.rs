//! Storing a customer import: one transaction for the whole file, rows written in batches.
//! Each row updates the customer with its phone or email, or creates one.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;

use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

use super::{Db, DbError, on_pool};
use crate::model::import::LineError;

/// Bad lines kept with their reasons (all are counted).
pub const KEPT_ERRORS: usize = 200;

/// One checked line, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    pub line: u64,
    pub name: String,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub telegram_chat_id: Option<String>,
    pub whatsapp_id: Option<String>,
    pub tags: Vec<String>,
    pub groups: Vec<String>,
    pub assignee_email: Option<String>,
    pub time_zone: Option<String>,
    /// Only ever sets the opt-out: an import never opts anyone back in.
    pub opted_out: bool,
    /// Kinds of channel the row says the customer opted in to marketing on: recorded as
    /// consent from the import (never a withdrawal).
    pub opt_in: Vec<&'static str>,
}

/// What the checking thread hands the database writer.
#[derive(Debug)]
pub enum ImportMsg {
    /// Good rows, and how far into the file they reach (bytes).
    Rows(Vec<ImportRow>, u64),
    Bad(LineError),
}

/// How far a running import has got.
#[derive(Debug, Default)]
pub struct Progress {
    /// Bytes of the file whose lines are stored (or skipped).
    pub bytes_done: AtomicU64,
    pub rows_done: AtomicU64,
}

/// What the writer did.
#[derive(Debug, Default)]
pub struct ImportTally {
    pub created: u64,
    pub updated: u64,
    /// Lines not stored (bad, or matching two different customers).
    pub bad: u64,
    /// The first bad lines, in file order.
    pub errors: Vec<LineError>,
    /// Whether the transaction was committed (else nothing was stored).
    pub committed: bool,
}

impl ImportTally {
    fn note(&mut self, e: LineError) {
        self.bad += 1;
        if self.errors.len() < KEPT_ERRORS {
            let at = self.errors.partition_point(|x| x.line <= e.line);
            self.errors.insert(at, e);
        }
    }
}

/// Rows of one round: none shares a phone, an email or a matched customer with another, so
/// each statement's rows are independent.
struct Round {
    inserts: Vec<ImportRow>,
    updates: Vec<(i64, ImportRow)>,
    later: Vec<ImportRow>,
}

fn plan_round(
    rows: Vec<ImportRow>,
    by_phone: &HashMap<String, i64>,
    by_email: &HashMap<String, i64>,
    tally: &mut ImportTally,
) -> Round {
    let mut keys: HashSet<String> = HashSet::new();
    let mut targets: HashSet<i64> = HashSet::new();
    let mut round = Round {
        inserts: Vec::new(),
        updates: Vec::new(),
        later: Vec::new(),
    };
    for r in rows {
        let pid = r.phone.as_ref().and_then(|p| by_phone.get(p)).copied();
        let eid = r.email.as_ref().and_then(|e| by_email.get(e)).copied();
        if let (Some(a), Some(b)) = (pid, eid)
            && a != b
        {
            tally.note(LineError {
                line: r.line,
                message: format!(
                    "the phone number belongs to one customer and the email address to another (customers {a} and {b})"
                ),
            });
            continue;
        }
        let target = pid.or(eid);
        let mut row_keys = r.phone.iter().chain(r.email.iter());
        if row_keys.any(|k| keys.contains(k)) || target.is_some_and(|t| targets.contains(&t)) {
            round.later.push(r);
            continue;
        }
        keys.extend(r.phone.iter().chain(r.email.iter()).cloned());
        match target {
            Some(t) => {
                targets.insert(t);
                round.updates.push((t, r));
            }
            None => round.inserts.push(r),
        }
    }
    round
}

/// Which customers already have the phones and emails of `$rows`: two maps, key → id.
macro_rules! matched_keys {
    ($t:expr, $rows:expr) => {{
        let pending: &[ImportRow] = $rows;
        let mut by_phone = HashMap::new();
        let mut by_email = HashMap::new();
        for (column, map) in [("phone", &mut by_phone), ("email", &mut by_email)] {
            let values: Vec<&str> = pending
                .iter()
                .filter_map(|r| {
                    if column == "phone" {
                        r.phone.as_deref()
                    } else {
                        r.email.as_deref()
                    }
                })
                .collect();
            if values.is_empty() {
                continue;
            }
            let mut qb = sqlx::QueryBuilder::new(format!(
                "SELECT {column}, id FROM customers WHERE {column} IS NOT NULL AND {column} IN ("
            ));
            let mut list = qb.separated(", ");
            for v in values {
                list.push_bind(v);
            }
            qb.push(")");
            let found: Vec<(String, i64)> = qb.build_query_as().fetch_all(&mut **$t).await?;
            map.extend(found);
        }
        (by_phone, by_email)
    }};
}

/// Updates the matched customers with what the rows say (cells left empty keep what is
/// stored; an opt-out is never undone).
macro_rules! update_matched {
    ($t:expr, $updates:expr, $staff:expr, $now:expr) => {{
        let (updates, staff, now): (&[(i64, ImportRow)], &HashMap<String, i64>, DateTime<Utc>) =
            ($updates, $staff, $now);
        // Cells left empty keep what is stored; an opt-out is never undone.
        let mut qb = sqlx::QueryBuilder::new("UPDATE customers SET updated_at = ");
        qb.push_bind(now).push(
            ", name = v.column2, phone = COALESCE(v.column3, customers.phone), \
             email = COALESCE(v.column4, customers.email), \
             whatsapp_id = COALESCE(v.column5, customers.whatsapp_id), \
             telegram_chat_id = COALESCE(v.column6, customers.telegram_chat_id), \
             assignee_id = COALESCE(v.column7, customers.assignee_id), \
             time_zone = COALESCE(v.column8, customers.time_zone), \
             opted_out = (customers.opted_out OR v.column9), \
             version = customers.version + 1 FROM (",
        );
        qb.push_values(updates, |mut row, (id, r)| {
            row.push_bind(*id)
                .push_bind(&r.name)
                .push_bind(&r.phone)
                .push_bind(&r.email)
                .push_bind(&r.whatsapp_id)
                .push_bind(&r.telegram_chat_id)
                .push_bind(
                    r.assignee_email
                        .as_ref()
                        .and_then(|a| staff.get(a))
                        .copied(),
                )
                .push_bind(&r.time_zone)
                .push_bind(r.opted_out);
        });
        qb.push(") AS v WHERE customers.id = v.column1");
        qb.build().execute(&mut **$t).await?;
    }};
}

/// Inserts the new customers; each with its new id.
macro_rules! insert_new {
    ($t:expr, $inserts:expr, $staff:expr, $now:expr) => {{
        let (inserts, staff, now): (Vec<ImportRow>, &HashMap<String, i64>, DateTime<Utc>) =
            ($inserts, $staff, $now);
        let mut created: Vec<(i64, ImportRow)> = Vec::new();
        let mut qb = sqlx::QueryBuilder::new(
            "INSERT INTO customers (name, phone, email, whatsapp_id, telegram_chat_id, \
             assignee_id, time_zone, opted_out, created_at, updated_at) ",
        );
        qb.push_values(&inserts, |mut row, r| {
            row.push_bind(&r.name)
                .push_bind(&r.phone)
                .push_bind(&r.email)
                .push_bind(&r.whatsapp_id)
                .push_bind(&r.telegram_chat_id)
                .push_bind(
                    r.assignee_email
                        .as_ref()
                        .and_then(|a| staff.get(a))
                        .copied(),
                )
                .push_bind(r.time_zone.as_deref().unwrap_or("UTC"))
                .push_bind(r.opted_out)
                .push_bind(now)
                .push_bind(now);
        });
        qb.push(" RETURNING id, phone, email");
        let ids: Vec<(i64, Option<String>, Option<String>)> =
            qb.build_query_as().fetch_all(&mut **$t).await?;
        let mut by_key: HashMap<String, i64> = HashMap::new();
        for (id, phone, email) in ids {
            by_key.extend(phone.into_iter().chain(email).map(|k| (k, id)));
        }
        for r in inserts {
            let id = r
                .phone
                .iter()
                .chain(r.email.iter())
                .find_map(|k| by_key.get(k));
            if let Some(id) = id {
                created.push((*id, r));
            }
        }
        created
    }};
}

/// Gives the stored customers the rows' tags and robot groups (created if new, their ids
/// remembered in `$tag_ids`/`$group_ids`); none is taken away.
macro_rules! link_labels {
    ($t:expr, $stored:expr, $tag_ids:expr, $group_ids:expr) => {{
        let (stored, tag_ids, group_ids): (
            &[(i64, ImportRow)],
            &mut HashMap<String, i64>,
            &mut HashMap<String, i64>,
        ) = ($stored, $tag_ids, $group_ids);
        for (names, ids, table, label_table, column) in [
            (true, tag_ids, "customer_tags", "tags", "tag_id"),
            (
                false,
                group_ids,
                "customer_robot_groups",
                "robot_groups",
                "group_id",
            ),
        ] {
            let mut links: Vec<(i64, i64)> = Vec::new();
            for (customer, r) in stored {
                for name in if names { &r.tags } else { &r.groups } {
                    let id = match ids.get(name) {
                        Some(id) => *id,
                        None => {
                            let id: i64 = sqlx::query_scalar(&format!(
                                "INSERT INTO {label_table} (name) VALUES ($1) \
                                 ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id"
                            ))
                            .bind(name)
                            .fetch_one(&mut **$t)
                            .await?;
                            ids.insert(name.clone(), id);
                            id
                        }
                    };
                    links.push((*customer, id));
                }
            }
            for part in links.chunks(5000) {
                let mut qb = sqlx::QueryBuilder::new(format!(
                    "INSERT INTO {table} (customer_id, {column}) "
                ));
                qb.push_values(part, |mut row, (c, l)| {
                    row.push_bind(*c).push_bind(*l);
                });
                qb.push(" ON CONFLICT DO NOTHING");
                qb.build().execute(&mut **$t).await?;
            }
        }
    }};
}

/// Records the rows' marketing opt-ins as consent from the import, in the history too.
macro_rules! link_consents {
    ($t:expr, $stored:expr, $now:expr) => {{
        let (stored, now): (&[(i64, ImportRow)], DateTime<Utc>) = ($stored, $now);
        let given: Vec<(i64, &str)> = stored
            .iter()
            .flat_map(|(c, r)| r.opt_in.iter().map(move |k| (*c, *k)))
            .collect();
        let (marketing, import) = (
            crate::model::consent::Purpose::Marketing,
            crate::model::consent::Source::Import,
        );
        for part in given.chunks(2000) {
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO customer_consents (customer_id, channel_kind, purpose, granted, source, at) ",
            );
            qb.push_values(part, |mut row, (c, k)| {
                row.push_bind(*c).push_bind(*k).push_bind(marketing).push_bind(true).push_bind(import).push_bind(now);
            });
            qb.push(" ON CONFLICT (customer_id, channel_kind, purpose) DO UPDATE SET granted = excluded.granted, \
                     source = excluded.source, note = NULL, at = excluded.at");
            qb.build().execute(&mut **$t).await?;
            let mut qb = sqlx::QueryBuilder::new(
                "INSERT INTO consent_changes (customer_id, channel_kind, purpose, granted, source, at) ",
            );
            qb.push_values(part, |mut row, (c, k)| {
                row.push_bind(*c).push_bind(*k).push_bind(marketing).push_bind(true).push_bind(import).push_bind(now);
            });
            qb.build().execute(&mut **$t).await?;
        }
    }};
}

impl Db {
    /// Staff accounts as (lowercased email, id).
    pub async fn staff_emails(&self) -> Result<Vec<(String, i64)>, DbError> {
        let rows = on_pool!(self, p => sqlx::query_as::<_, (String, i64)>(
            "SELECT lower(email), id FROM staff_users",
        )
        .fetch_all(p)
        .await?);
        Ok(rows)
    }

    /// Stores what `rx` brings in one transaction. A bad line makes it roll back, unless
    /// `skip_bad`; the lines after it are still read, so that every bad line is reported.
    pub async fn import_customers(
        &self,
        mut rx: mpsc::Receiver<ImportMsg>,
        skip_bad: bool,
        staff: &HashMap<String, i64>,
        progress: &Progress,
        now: DateTime<Utc>,
    ) -> Result<ImportTally, DbError> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut tally = ImportTally::default();
        let postgres = self.dialect() == super::Dialect::Postgres;
        on_pool!(self, p => {
            // SQLite: take the write lock at the start (waiting for other writers as usual); a
            // deferred transaction that later upgrades fails at once if someone is writing.
            let mut tx = Some(p.begin_with(if postgres { "BEGIN" } else { "BEGIN IMMEDIATE" }).await?);
            if postgres && let Some(t) = tx.as_mut() {
                // The planner's statistics predate the rows this transaction adds; left to
                // itself it scans the growing table (or its trigram index, whose pending list
                // grows with the transaction) for every batch's lookups: seconds a batch near a
                // million rows. Every statement here is a B-tree probe.
                for setting in [
                    "SET LOCAL enable_seqscan = off",
                    // GIN indexes answer only bitmap scans: this keeps the trigram ones out.
                    "SET LOCAL enable_bitmapscan = off",
                ] {
                    sqlx::query(setting).execute(&mut **t).await?;
                }
            }
            let mut tag_ids: HashMap<String, i64> = HashMap::new();
            let mut group_ids: HashMap<String, i64> = HashMap::new();
            while let Some(msg) = rx.recv().await {
                let (mut pending, end) = match msg {
                    ImportMsg::Bad(e) => {
                        tally.note(e);
                        if !skip_bad && let Some(t) = tx.take() {
                            t.rollback().await?;
                        }
                        continue;
                    }
                    ImportMsg::Rows(rows, end) => (rows, end),
                };
                while let Some(t) = tx.as_mut() {
                    if pending.is_empty() {
                        break;
                    }
                    // Who already has these phones and emails (earlier batches included).
                    let (by_phone, by_email) = matched_keys!(t, &pending);
                    let bad_before = tally.bad;
                    let round = plan_round(std::mem::take(&mut pending), &by_phone, &by_email, &mut tally);
                    if tally.bad > bad_before && !skip_bad {
                        if let Some(t) = tx.take() {
                            t.rollback().await?;
                        }
                        break;
                    }
                    pending = round.later;
                    if !round.updates.is_empty() {
                        update_matched!(t, &round.updates, staff, now);
                        tally.updated += round.updates.len() as u64;
                    }
                    let mut stored: Vec<(i64, ImportRow)> = round.updates;
                    if !round.inserts.is_empty() {
                        tally.created += round.inserts.len() as u64;
                        stored.extend(insert_new!(t, round.inserts, staff, now));
                    }
                    // Tags and robot groups are added (created if new); none is taken away.
                    link_labels!(t, &stored, &mut tag_ids, &mut group_ids);
                    link_consents!(t, &stored, now);
                    progress.rows_done.fetch_add(stored.len() as u64, Relaxed);
                }
                progress.bytes_done.store(end, Relaxed);
            }
            if let Some(t) = tx.take() {
                t.commit().await?;
                tally.committed = true;
            }
        });
        Ok(tally)
    }
}
