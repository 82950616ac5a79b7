//! Providers' reports (statuses and replies) applied to deliveries: locked in id order,
//! folded through `model::delivery`, counters written last. A report about a send not recorded
//! yet is kept as an early report and applied when the send is.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::counters::{Counter, Tally, minute, write_tally};
use super::fallback::note_late_hops;
use super::retry::retrying;
use super::{Db, DbError, Dialect, begin_write, on_pool};
use crate::model::delivery::{self, DeliveryState};
use crate::model::{BroadcastId, ChannelId, CustomerId};

/// What a provider reported about a message it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryEvent {
    Delivered,
    Read,
    /// It could not be delivered after all.
    Failed {
        reason: String,
    },
    /// The customer answered it with the stored message `message_id`.
    Replied {
        message_id: i64,
    },
}

impl DeliveryEvent {
    /// How an early report keeps it: (event, reason, reply message).
    fn stored(&self) -> (&'static str, Option<&str>, Option<i64>) {
        match self {
            DeliveryEvent::Delivered => ("delivered", None, None),
            DeliveryEvent::Read => ("read", None, None),
            DeliveryEvent::Failed { reason } => ("failed", Some(reason.as_str()), None),
            DeliveryEvent::Replied { message_id } => ("replied", None, Some(*message_id)),
        }
    }

    /// An early report as kept.
    fn from_stored(event: &str, reason: Option<String>, message: Option<i64>) -> Self {
        match (event, message) {
            ("read", _) => DeliveryEvent::Read,
            ("failed", _) => DeliveryEvent::Failed {
                reason: reason.unwrap_or_default(),
            },
            ("replied", Some(message_id)) => DeliveryEvent::Replied { message_id },
            _ => DeliveryEvent::Delivered,
        }
    }
}

/// A provider's report on one message it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub channel_id: i64,
    pub provider_message_id: String,
    pub event: DeliveryEvent,
    pub at: DateTime<Utc>,
}

/// What a provider's status report said besides the state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportDetail {
    pub provider_message_id: String,
    /// WhatsApp's `pricing.category` (marketing, utility, authentication, service …).
    pub pricing_category: Option<String>,
    /// WhatsApp's `pricing.billable`: false when the message is free.
    pub billable: Option<bool>,
    /// A failure's `errors[]`, as JSON (made short).
    pub errors: Option<String>,
}

/// A delivery found by its provider's message id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryRef {
    pub id: i64,
    pub broadcast_id: BroadcastId,
    pub customer_id: CustomerId,
}

/// What applying a report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The delivery moved forward (its broadcast's counters with it).
    Moved,
    /// Already there or further (a repeat, or a late report after a later one).
    Unchanged,
    /// No delivery has that provider id on that channel.
    Unknown,
}

/// A kept early report: (id, channel, provider message id, event, reason, at, reply message).
pub(super) type EarlyRow = (
    i64,
    i64,
    String,
    String,
    Option<String>,
    DateTime<Utc>,
    Option<i64>,
);

/// A delivery a batch of reports names, as stored (and locked).
pub(super) struct Stored {
    id: i64,
    broadcast: BroadcastId,
    channel: ChannelId,
    state: DeliveryState,
    replied: bool,
}

/// What a batch of reports does to one delivery.
pub(super) struct Change {
    id: i64,
    stored: DeliveryState,
    new: DeliveryState,
    delivered_at: Option<DateTime<Utc>>,
    read_at: Option<DateTime<Utc>>,
    failed_at: Option<DateTime<Utc>>,
    error: Option<String>,
    replied_at: Option<DateTime<Utc>>,
}

/// A batch of reports worked out against the deliveries they name.
pub(super) struct Folded {
    /// One per report.
    results: Vec<Applied>,
    /// The deliveries that change, by ascending id.
    changes: Vec<Change>,
    /// (reply message, delivery it answers, broadcast)
    links: Vec<(i64, i64, BroadcastId)>,
    tally: Tally,
}

/// The counters a delivery's move from `from` to `to` (at `at`) changes.
fn count_move(
    tally: &mut Tally,
    d: &Stored,
    from: DeliveryState,
    to: DeliveryState,
    at: DateTime<Utc>,
) {
    let [sent, delivered, read, failed] = delivery::counter_change(from, to);
    for (counter, by) in [
        (Counter::Sent, sent),
        (Counter::Delivered, delivered),
        (Counter::Read, read),
        (Counter::Failed, failed),
    ] {
        if by != 0 {
            tally.add(d.broadcast, d.channel, counter, by);
        }
    }
    if delivered > 0 {
        tally.add_timeline(d.broadcast, minute(at), Counter::Delivered, 1);
    }
    if read > 0 {
        tally.add_timeline(d.broadcast, minute(at), Counter::Read, 1);
    }
}

/// The times (and the reason) a report writes on the delivery.
fn stamp(change: &mut Change, event: &DeliveryEvent, at: DateTime<Utc>) {
    match event {
        DeliveryEvent::Delivered => change.delivered_at = Some(at),
        DeliveryEvent::Read => {
            change.delivered_at.get_or_insert(at);
            change.read_at = Some(at);
        }
        DeliveryEvent::Failed { reason } => {
            change.failed_at = Some(at);
            change.error = Some(reason.clone());
        }
        DeliveryEvent::Replied { .. } => {}
    }
}

/// Applies each report in order to the state so far ([`crate::model::delivery::after`]), so a
/// repeat or a late report within the batch changes nothing either; gathers the counter
/// changes.
pub(super) fn fold_reports(reports: &[Report], found: &HashMap<(i64, &str), Stored>) -> Folded {
    let mut results = Vec::with_capacity(reports.len());
    let mut links = Vec::new();
    let mut tally = Tally::default();
    // delivery id → (replied so far, change so far)
    let mut work: HashMap<i64, (bool, Change)> = HashMap::new();
    for r in reports {
        let Some(d) = found.get(&(r.channel_id, r.provider_message_id.as_str())) else {
            results.push(Applied::Unknown);
            continue;
        };
        let (replied, change) = work.entry(d.id).or_insert_with(|| {
            (
                d.replied,
                Change {
                    id: d.id,
                    stored: d.state,
                    new: d.state,
                    delivered_at: None,
                    read_at: None,
                    failed_at: None,
                    error: None,
                    replied_at: None,
                },
            )
        });
        let report = match &r.event {
            DeliveryEvent::Replied { message_id } => {
                links.push((*message_id, d.id, d.broadcast));
                if *replied {
                    results.push(Applied::Unchanged);
                } else {
                    *replied = true;
                    change.replied_at = Some(r.at);
                    tally.add(d.broadcast, d.channel, Counter::Replied, 1);
                    tally.add_timeline(d.broadcast, minute(r.at), Counter::Replied, 1);
                    results.push(Applied::Moved);
                }
                continue;
            }
            DeliveryEvent::Delivered => delivery::Report::Delivered,
            DeliveryEvent::Read => delivery::Report::Read,
            DeliveryEvent::Failed { .. } => delivery::Report::Failed,
        };
        let Some(new) = delivery::after(change.new, report) else {
            results.push(Applied::Unchanged);
            continue;
        };
        count_move(&mut tally, d, change.new, new, r.at);
        if let DeliveryEvent::Failed { reason } = &r.event
            && new == DeliveryState::Failed
        {
            tally.add_reason(d.broadcast, reason, 1);
        }
        stamp(change, &r.event, r.at);
        change.new = new;
        results.push(Applied::Moved);
    }
    let mut changes: Vec<Change> = work
        .into_values()
        .map(|(_, c)| c)
        .filter(|c| c.new != c.stored || c.replied_at.is_some())
        .collect();
    changes.sort_by_key(|c| c.id);
    Folded {
        results,
        changes,
        links,
        tally,
    }
}

/// Reads (on PostgreSQL: locks, by ascending id) the deliveries `$pids` name on `$channels`,
/// keyed by (channel, provider id).
macro_rules! load_reported {
    ($tx:expr, $dialect:expr, $channels:expr, $pids:expr) => {{
        let (dialect, channels, pids): (Dialect, &[i64], &[&str]) = ($dialect, $channels, $pids);
        let lock = if dialect == Dialect::Postgres { " ORDER BY id FOR UPDATE" } else { "" };
        let channel_list = channels.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        // (channel, provider id) → the delivery as stored
        let mut found: HashMap<(i64, &str), Stored> = HashMap::new();
        for chunk in pids.chunks(1000) {
            let list = (1..=chunk.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(",");
            let sql = format!(
                "SELECT id, broadcast_id, channel_id, state, \
                 CAST(CASE WHEN replied_at IS NULL THEN 0 ELSE 1 END AS BIGINT), provider_message_id FROM deliveries \
                 WHERE channel_id IN ({channel_list}) AND provider_message_id IN ({list}){lock}"
            );
            let mut q = sqlx::query_as::<_, (i64, i64, i64, String, i64, String)>(&sql);
            for pid in chunk {
                q = q.bind(*pid);
            }
            for (id, broadcast, channel, state, replied, pid) in q.fetch_all(&mut *$tx).await? {
                let Some(state) = DeliveryState::parse(&state) else { continue };
                let Some(pid) = chunk.iter().find(|p| **p == pid) else { continue };
                found.insert((channel, pid), Stored {
                    id,
                    broadcast: BroadcastId(broadcast),
                    channel: ChannelId(channel),
                    state,
                    replied: replied != 0,
                });
            }
        }
        found
    }};
}

/// Keeps the reports whose delivery was not found (its send is perhaps not recorded yet) as
/// early reports, applied once it is.
macro_rules! keep_early {
    ($tx:expr, $reports:expr, $results:expr) => {{
        let (reports, results): (&[Report], &[Applied]) = ($reports, $results);
        let unknown = reports.iter().zip(results).filter(|(_, a)| **a == Applied::Unknown);
        for (r, _) in unknown {
            // Perhaps the send is not recorded yet: kept, and applied once it is.
            let (event, reason, message) = r.event.stored();
            sqlx::query(
                "INSERT INTO early_reports (channel_id, provider_message_id, event, reason, at, message_id) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(r.channel_id)
            .bind(&r.provider_message_id)
            .bind(event)
            .bind(reason)
            .bind(r.at)
            .bind(message)
            .execute(&mut *$tx)
            .await?;
        }
    }};
}

/// Writes the deliveries' new states and times (one UPDATE per 200; the rows are locked, so
/// the state read holds), and links each reply's message to the delivery it answers.
macro_rules! write_changes {
    ($tx:expr, $changes:expr, $links:expr) => {{
        let (changes, links): (&[Change], &[(i64, i64, BroadcastId)]) = ($changes, $links);
        // One UPDATE per 200 deliveries; the rows are locked, so the state read holds.
        for chunk in changes.chunks(200) {
            let mut sql = String::from("WITH v(id, new, dat, rat, fat, err, pat) AS (VALUES ");
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                let n = 1 + 7 * i;
                sql.push_str(&format!(
                    "(${n}, ${}, ${}, ${}, ${}, ${}, ${})",
                    n + 1,
                    n + 2,
                    n + 3,
                    n + 4,
                    n + 5,
                    n + 6
                ));
            }
            sql.push_str(
                ") UPDATE deliveries SET state = v.new, \
                 delivered_at = COALESCE(deliveries.delivered_at, v.dat), \
                 read_at = COALESCE(v.rat, deliveries.read_at), \
                 failed_at = COALESCE(v.fat, deliveries.failed_at), \
                 error = COALESCE(v.err, deliveries.error), \
                 replied_at = COALESCE(deliveries.replied_at, v.pat) \
                 FROM v WHERE deliveries.id = v.id",
            );
            let mut q = sqlx::query(&sql);
            for c in chunk {
                q = q
                    .bind(c.id)
                    .bind(c.new.as_str())
                    .bind(c.delivered_at)
                    .bind(c.read_at)
                    .bind(c.failed_at)
                    .bind(&c.error)
                    .bind(c.replied_at);
            }
            q.execute(&mut *$tx).await?;
        }
        // A reply's message now names the delivery it answers.
        for (message, delivery, broadcast) in links {
            sqlx::query("UPDATE messages SET broadcast_id = $1, delivery_id = $2 WHERE id = $3")
                .bind(broadcast)
                .bind(delivery)
                .bind(message)
                .execute(&mut *$tx)
                .await?;
        }
    }};
}

/// Removes the early reports just applied (their delivery found); the others stay for later.
macro_rules! forget_applied_early {
    ($tx:expr, $ids:expr, $results:expr) => {{
        let (ids, results): (&[i64], &[Applied]) = ($ids, $results);
        // Only those applied (their delivery found); the others stay for later.
        let ids: Vec<i64> = ids
            .iter()
            .zip(results)
            .filter(|(_, a)| **a != Applied::Unknown)
            .map(|(id, _)| *id)
            .collect();
        for chunk in ids.chunks(1000) {
            sqlx::query(&format!(
                "DELETE FROM early_reports WHERE id IN ({})",
                chunk
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ))
            .execute(&mut *$tx)
            .await?;
        }
    }};
}

impl Db {
    /// Applies a provider's report on message `provider_message_id` of `channel_id`. States
    /// only move forward: a repeated report, or "delivered" after "read", changes nothing.
    /// The broadcast's counters change in the same transaction (a read message counts as
    /// delivered too; a message that fails after acceptance is no longer a success).
    pub async fn apply_event(
        &self,
        channel_id: i64,
        provider_message_id: &str,
        event: &DeliveryEvent,
        at: DateTime<Utc>,
    ) -> Result<Applied, DbError> {
        let one = [Report {
            channel_id,
            provider_message_id: provider_message_id.to_string(),
            event: event.clone(),
            at,
        }];
        Ok(self.apply_events(&one).await?[0])
    }

    /// [`Db::apply_event`] for many reports in one transaction (webhook ingestion groups the
    /// reports that arrive together), applied in order, so a repeat within the batch changes
    /// nothing either. A report about a message not recorded yet is kept and applied once it
    /// is. Run again if it fails for a passing reason. One result per report.
    pub async fn apply_events(&self, reports: &[Report]) -> Result<Vec<Applied>, DbError> {
        if reports.is_empty() {
            return Ok(Vec::new());
        }
        let results = retrying("applying provider reports", move || {
            self.apply_events_once(reports, None)
        })
        .await?;
        // Reports kept as early ones may have raced the record of their send: that record,
        // once committed, looks for early reports, but not for ones committed after its look.
        // Looking again now that these are committed closes the gap: whichever of the two
        // commits last sees the other's rows.
        let kept: Vec<(ChannelId, &str)> = reports
            .iter()
            .zip(&results)
            .filter(|(_, a)| **a == Applied::Unknown)
            .map(|(r, _)| (ChannelId(r.channel_id), r.provider_message_id.as_str()))
            .collect();
        if !kept.is_empty()
            && let Err(e) = self.apply_early_reports_for(&kept).await
        {
            tracing::warn!(error = %e, "applying early provider reports failed");
        }
        Ok(results)
    }

    /// One transaction of [`Db::apply_events`]. With `early`, the reports are kept early
    /// reports (those ids): the ones applied are removed in the same transaction, and none is
    /// kept again.
    pub(super) async fn apply_events_once(
        &self,
        reports: &[Report],
        early: Option<&[i64]>,
    ) -> Result<Vec<Applied>, DbError> {
        let dialect = self.dialect();
        let mut channels: Vec<i64> = reports.iter().map(|r| r.channel_id).collect();
        channels.sort_unstable();
        channels.dedup();
        let mut pids: Vec<&str> = reports
            .iter()
            .map(|r| r.provider_message_id.as_str())
            .collect();
        pids.sort_unstable();
        pids.dedup();
        on_pool!(self, p => {
            // Reads, then writes: on SQLite the write lock is taken up front (a deferred
            // transaction could not upgrade while another writer works); on PostgreSQL the
            // rows are locked as they are read, by ascending id (see `counters`).
            let mut tx = begin_write!(p, dialect);
            // SQLite has no row locks (its write lock is taken): no order needed, and an
            // ORDER BY id there would walk the whole table by rowid instead of the index.
            let found = load_reported!(tx, dialect, &channels, &pids);
            let mut folded = fold_reports(reports, &found);
            let noted = if folded.results.contains(&Applied::Unknown) {
                note_late_hops!(tx, reports, &mut folded.results)
            } else {
                0
            };
            if early.is_none() {
                keep_early!(tx, reports, &folded.results);
            }
            let kept_any = folded.results.contains(&Applied::Unknown);
            if folded.changes.is_empty() && folded.links.is_empty() && !kept_any && noted == 0 && early.is_none() {
                tx.rollback().await?;
                return Ok(folded.results);
            }
            write_changes!(tx, &folded.changes, &folded.links);
            if let Some(ids) = early {
                forget_applied_early!(tx, ids, &folded.results);
            }
            write_tally!(tx, folded.tally);
            tx.commit().await?;
            for b in folded.tally.broadcasts() {
                self.note_progress(b);
            }
            Ok(folded.results)
        })
    }

    /// The periodic sweep: applies early reports whose message is recorded by now (one that
    /// raced the recording on another instance), and forgets those older than a week (reports
    /// about messages outside broadcasts, such as test sends and chat replies).
    pub async fn sweep_early_reports(&self, now: DateTime<Utc>) -> Result<usize, DbError> {
        let rows: Vec<EarlyRow> = on_pool!(self, p => {
            sqlx::query("DELETE FROM early_reports WHERE at < $1")
                .bind(now - chrono::Duration::days(7))
                .execute(p)
                .await?;
            sqlx::query_as::<_, EarlyRow>(
                "SELECT e.id, e.channel_id, e.provider_message_id, e.event, e.reason, e.at, e.message_id \
                 FROM early_reports e JOIN deliveries d \
                   ON d.channel_id = e.channel_id AND d.provider_message_id = e.provider_message_id \
                 ORDER BY e.id LIMIT 1000",
            )
            .fetch_all(p)
            .await?
        });
        self.apply_early_rows(rows).await
    }

    /// Applies early reports and removes them, in one transaction (forward-only, so one that
    /// two instances both apply changes things once).
    pub(super) async fn apply_early_rows(&self, rows: Vec<EarlyRow>) -> Result<usize, DbError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        let reports: Vec<Report> = rows
            .into_iter()
            .map(|(_, channel_id, pid, event, reason, at, message)| Report {
                channel_id,
                provider_message_id: pid,
                event: DeliveryEvent::from_stored(&event, reason, message),
                at,
            })
            .collect();
        let (reports, ids) = (&reports[..], &ids[..]);
        retrying("applying early reports", move || {
            self.apply_events_once(reports, Some(ids))
        })
        .await?;
        Ok(ids.len())
    }

    /// Stores what status reports said besides the state (pricing, errors) on the
    /// deliveries they name, in one statement per 500, rows locked by ascending id. A
    /// delivery not recorded yet is left out: the next report of it carries the same.
    pub async fn note_report_details(
        &self,
        channel_id: i64,
        details: &[ReportDetail],
    ) -> Result<(), DbError> {
        let lock = match self.dialect() {
            Dialect::Postgres => " ORDER BY id FOR UPDATE",
            Dialect::Sqlite => "",
        };
        for chunk in details.chunks(500) {
            let mut sql = String::from("WITH v(pid, cat, bill, errs) AS (VALUES ");
            for i in 0..chunk.len() {
                if i > 0 {
                    sql.push(',');
                }
                let n = 2 + 4 * i;
                sql.push_str(&format!("(${n}, ${}, ${}, ${})", n + 1, n + 2, n + 3));
            }
            sql.push_str(&format!(
                ") UPDATE deliveries SET \
                 pricing_category = COALESCE(v.cat, deliveries.pricing_category), \
                 billable = COALESCE(v.bill, deliveries.billable), \
                 provider_errors = COALESCE(v.errs, deliveries.provider_errors) \
                 FROM v WHERE deliveries.provider_message_id = v.pid AND deliveries.channel_id = $1 \
                 AND deliveries.id IN (SELECT id FROM deliveries WHERE channel_id = $1 \
                   AND provider_message_id IN (SELECT pid FROM v){lock})"
            ));
            on_pool!(self, p => {
                let mut q = sqlx::query(&sql).bind(channel_id);
                for d in chunk {
                    q = q
                        .bind(&d.provider_message_id)
                        .bind(&d.pricing_category)
                        .bind(d.billable)
                        .bind(&d.errors);
                }
                q.execute(p).await?;
                Ok::<(), DbError>(())
            })?;
        }
        Ok(())
    }

    /// A failed delivery "Retry failed" may send again only from `from`.
    pub async fn hold_failure(&self, delivery: i64, from: DateTime<Utc>) -> Result<(), DbError> {
        on_pool!(self, p => {
            sqlx::query(&format!(
                "UPDATE deliveries SET retry_not_before = $1 WHERE id = $2 AND state = {}",
                super::states::FAILED
            ))
            .bind(from)
            .bind(delivery)
            .execute(p)
            .await?;
            Ok(())
        })
    }

    /// The delivery a provider's message id on `channel_id` belongs to.
    pub async fn delivery_by_provider(
        &self,
        channel_id: i64,
        provider_message_id: &str,
    ) -> Result<Option<DeliveryRef>, DbError> {
        let row = on_pool!(self, p => sqlx::query_as(
            "SELECT id, broadcast_id, customer_id FROM deliveries WHERE channel_id = $1 AND provider_message_id = $2",
        )
        .bind(channel_id)
        .bind(provider_message_id)
        .fetch_optional(p)
        .await?);
        Ok(row)
    }
}
