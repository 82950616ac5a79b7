//! Broadcasts: the list (search, sort, keyset pages) and the pause toggle.

use crate::model::{BroadcastId, UserId};
use chrono::{DateTime, Utc};

use super::states::{CANCELLED, STOPPABLE};
use super::{Db, DbError, Dialect, audit_in, begin_write, on_pool, search};
use crate::model::list_query::{PAGE_SIZE, PageAnchor};
use crate::model::{BroadcastStatus, Cursor, Lifecycle, ListQuery, SortDir, SortKey};

/// A broadcast as stored (the columns the list and the toggle need).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BroadcastRecord {
    pub id: i64,
    pub name: String,
    pub body: String,
    pub status: Lifecycle,
    pub paused: bool,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub status_rank: i64,
    pub send_sort: DateTime<Utc>,
    /// Counters, kept in step with the deliveries.
    pub audience_total: i64,
    pub sent_count: i64,
    pub delivered_count: i64,
    pub read_count: i64,
    pub replied_count: i64,
    pub failed_count: i64,
    /// Set when its time passed by more than the grace period while Herald was down.
    pub missed_at: Option<DateTime<Utc>>,
    /// Why Herald paused it by itself (a provider's error every further message would meet,
    /// or too many recent failures); cleared when it is resumed.
    pub pause_reason: Option<String>,
    /// Deliveries sent again after a crash left them uncertain (no report named them).
    pub resent_count: i64,
    /// Deliveries whose request may have reached a provider that cannot tell.
    pub unknown_count: i64,
    /// Deliveries not sent before its expiry.
    pub expired_count: i64,
    /// `pending`, `approved` or `rejected` when a rule asked for an admin's approval.
    pub approval: Option<String>,
    /// Why it needs approval (pending), or the admin's comment.
    pub approval_note: Option<String>,
    /// The hours each channel had to deliver before the next was tried (set when it started
    /// with a fallback).
    pub fallback_hours: Option<i64>,
    /// The broadcast this one follows up (its audience a set of that one's recipients).
    pub follow_up_of: Option<i64>,
    /// How many variants its A/B test splits it between (0: no test).
    pub ab_variants: i64,
}

impl BroadcastRecord {
    /// The status people see.
    pub fn display_status(&self) -> BroadcastStatus {
        BroadcastStatus::from_stored(self.status, self.paused)
    }

    /// This row's position for keyset pagination under `sort`.
    pub fn cursor(&self, sort: SortKey) -> Cursor {
        let (rank, t) = match sort {
            SortKey::Status(_) => (sort.rank(self.status_rank), self.send_sort),
            SortKey::Created => (0, self.created_at),
            SortKey::SendDate => (0, self.send_sort),
        };
        Cursor {
            rank,
            micros: t.timestamp_micros(),
            id: self.id,
        }
    }
}

pub(crate) const COLUMNS: &str = "id, name, body, status, paused, scheduled_at, started_at, finished_at, \
                       created_at, updated_at, status_rank, send_sort, audience_total, sent_count, \
                       delivered_count, read_count, replied_count, failed_count, missed_at, pause_reason, resent_count, unknown_count, expired_count, approval, approval_note, fallback_hours, follow_up_of, ab_variants";

/// A broadcast to insert (the wizard and the demo data use this).
#[derive(Debug, Clone)]
pub struct NewBroadcast {
    pub name: String,
    pub body: String,
    pub status: Lifecycle,
    pub paused: bool,
    pub audience_json: String,
    pub channel_ids_json: String,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<i64>,
}

/// Why a pause/resume did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PauseError {
    #[error("no broadcast with id {0}")]
    NotFound(i64),
    #[error("a {0} broadcast cannot be paused or resumed")]
    NotPausable(String),
    #[error("a {0} broadcast cannot be cancelled")]
    NotCancellable(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<sqlx::Error> for PauseError {
    fn from(e: sqlx::Error) -> Self {
        PauseError::Db(DbError::Sqlx(e))
    }
}

/// One page of rows plus whether more lie beyond each end.
#[derive(Debug)]
pub struct Page {
    pub rows: Vec<BroadcastRecord>,
    pub has_prev: bool,
    pub has_next: bool,
}

/// The SQL for one page of the list, and whether its rows come back in reverse order.
/// Parameters, in order: the search pattern (if searching), then the cursor's values.
fn list_sql(dialect: Dialect, q: &ListQuery) -> (String, bool) {
    let mut n = 0;
    let (from, filter) = search::clause(dialect, &q.search, &SEARCH, &mut n);
    let reversed = matches!(q.anchor, PageAnchor::Before(_));
    let dir = if reversed { q.dir.flip() } else { q.dir };
    let anchored = !matches!(q.anchor, PageAnchor::First);
    if let SortKey::Status(first) = q.sort
        && first.rank() != 0
    {
        let sql = group_first_sql(&from, &filter, first.rank(), dir, anchored, n);
        return (sql, reversed);
    }
    let mut sql = format!("SELECT {COLUMNS} FROM {from} WHERE 1 = 1{filter}");
    let cols: &[&str] = match q.sort {
        SortKey::Status(_) => &["status_rank", "send_sort", "id"],
        SortKey::Created => &["created_at", "id"],
        SortKey::SendDate => &["send_sort", "id"],
    };
    if anchored {
        let params: Vec<String> = cols
            .iter()
            .map(|_| {
                n += 1;
                format!("${n}")
            })
            .collect();
        sql.push_str(&format!(
            " AND ({}) {} ({})",
            cols.join(", "),
            op(dir),
            params.join(", ")
        ));
    }
    sql.push_str(&format!(
        " ORDER BY {} LIMIT {}",
        order(cols, dir),
        PAGE_SIZE + 1
    ));
    (sql, reversed)
}

fn op(dir: SortDir) -> &'static str {
    match dir {
        SortDir::Asc => ">",
        SortDir::Desc => "<",
    }
}

fn order(cols: &[&str], dir: SortDir) -> String {
    cols.iter()
        .map(|c| format!("{c} {}", dir.as_str().to_uppercase()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// "By status, the group of rank `r` first" as three walks of the status index: the group
/// itself (sort rank 0), the groups before it and the groups after it (rank + 1), each from
/// the cursor for one page, merged. The sort rank is [`SortKey::rank`]'s, so a cursor
/// `(e, t, id)` outside the group lies at `status_rank = e - 1`. Parameters after the search
/// pattern (the `n` used so far): the cursor's rank, time and id.
fn group_first_sql(
    from: &str,
    filter: &str,
    r: i64,
    dir: SortDir,
    anchored: bool,
    n: usize,
) -> String {
    let (e, t, id) = (n + 1, n + 2, n + 3);
    let limit = PAGE_SIZE + 1;
    let op = op(dir);
    let (first, rest) = if anchored {
        // The group sorts at 0: going up, only a cursor inside it leaves any of it to show;
        // going down, a cursor in a later group leaves all of it.
        let inside = format!("(send_sort, id) {op} (${t}, ${id})");
        let first = match dir {
            SortDir::Asc => format!(" AND ${e} = 0 AND {inside}"),
            SortDir::Desc => format!(" AND (${e} > 0 OR {inside})"),
        };
        let rest = format!(" AND (status_rank, send_sort, id) {op} (${e} - 1, ${t}, ${id})");
        (first, rest)
    } else {
        (String::new(), String::new())
    };
    let by_rank = ["status_rank", "send_sort", "id"];
    let walk = |rank: &str, cond: String, extra: &str, cols: &[&str]| {
        format!(
            "SELECT * FROM (SELECT {COLUMNS}, {rank} AS sort_rank FROM {from} \
             WHERE status_rank {cond}{filter}{extra} ORDER BY {} LIMIT {limit}) AS walk",
            order(cols, dir)
        )
    };
    let group = walk("0", format!("= {r}"), &first, &["send_sort", "id"]);
    let before = walk("status_rank + 1", format!("< {r}"), &rest, &by_rank);
    let after = walk("status_rank + 1", format!("> {r}"), &rest, &by_rank);
    format!(
        "SELECT {COLUMNS} FROM ({group} UNION ALL {before} UNION ALL {after}) AS page \
         ORDER BY {} LIMIT {limit}",
        order(&["sort_rank", "send_sort", "id"], dir)
    )
}

/// The broadcast columns search looks in, and their index.
const SEARCH: search::Searchable = search::Searchable {
    table: "broadcasts",
    fts_table: "broadcasts_fts",
    columns: &["name", "body"],
};

/// An `INSERT INTO broadcasts … VALUES …` builder for `rows`, for either backend.
macro_rules! insert_broadcasts_query {
    ($rows:expr) => {{
        let mut qb = sqlx::QueryBuilder::new(
            "INSERT INTO broadcasts (name, body, status, paused, audience, channel_ids, \
             scheduled_at, started_at, finished_at, created_at, updated_at, created_by) ",
        );
        qb.push_values($rows, |mut row, b: &NewBroadcast| {
            row.push_bind(&b.name)
                .push_bind(&b.body)
                .push_bind(b.status)
                .push_bind(b.paused)
                .push_bind(&b.audience_json)
                .push_bind(&b.channel_ids_json)
                .push_bind(b.scheduled_at)
                .push_bind(b.started_at)
                .push_bind(b.finished_at)
                .push_bind(b.created_at)
                .push_bind(b.created_at)
                .push_bind(b.created_by);
        });
        qb
    }};
}
pub(super) use insert_broadcasts_query;

impl Db {
    /// Inserts many broadcasts in one transaction, a few hundred rows per statement.
    pub async fn insert_broadcasts(&self, all: &[NewBroadcast]) -> Result<(), DbError> {
        on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            for chunk in all.chunks(500) {
                let mut qb = insert_broadcasts_query!(chunk);
                qb.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(())
    }

    pub async fn broadcast(&self, id: i64) -> Result<BroadcastRecord, DbError> {
        let sql = format!("SELECT {COLUMNS} FROM broadcasts WHERE id = $1");
        let b = on_pool!(self, p => sqlx::query_as::<_, BroadcastRecord>(&sql).bind(id).fetch_optional(p).await?);
        b.ok_or(DbError::NotFound)
    }

    pub async fn count_broadcasts(&self) -> Result<i64, DbError> {
        let n: i64 = on_pool!(self, p => sqlx::query_scalar("SELECT COUNT(*) FROM broadcasts").fetch_one(p).await?);
        Ok(n)
    }

    /// One page of the list, walking the index of the chosen sort from the query's cursor.
    pub async fn list_broadcasts(&self, q: &ListQuery) -> Result<Page, DbError> {
        let (sql, reversed) = list_sql(self.dialect(), q);
        let pattern = search::value(self.dialect(), &q.search, &SEARCH);
        let cursor = match q.anchor {
            PageAnchor::First => None,
            PageAnchor::After(c) | PageAnchor::Before(c) => Some(c),
        };
        let cursor_time =
            cursor.map(|c| DateTime::<Utc>::from_timestamp_micros(c.micros).unwrap_or_default());
        let mut rows = on_pool!(self, p => {
            let mut query = sqlx::query_as::<_, BroadcastRecord>(&sql);
            if let Some(pattern) = &pattern {
                // Not a cached prepared statement: PostgreSQL then plans with the actual
                // pattern, which is what lets it use the trigram indexes.
                query = query.bind(pattern).persistent(false);
            }
            if let (Some(c), Some(t)) = (cursor, cursor_time) {
                if let SortKey::Status(_) = q.sort {
                    query = query.bind(c.rank);
                }
                query = query.bind(t).bind(c.id);
            }
            query.fetch_all(p).await?
        });
        let more = rows.len() > PAGE_SIZE;
        rows.truncate(PAGE_SIZE);
        if reversed {
            rows.reverse();
        }
        let came_from_somewhere = cursor.is_some();
        Ok(Page {
            rows,
            has_prev: if reversed { more } else { came_from_somewhere },
            has_next: if reversed { came_from_somewhere } else { more },
        })
    }

    /// Pauses or resumes a Scheduled or Sending broadcast and records who did it.
    pub async fn set_paused(
        &self,
        id: BroadcastId,
        paused: bool,
        actor_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<BroadcastRecord, PauseError> {
        let update = format!(
            "UPDATE broadcasts SET paused = $1, updated_at = $2, pause_reason = NULL \
             WHERE id = $3 AND status IN ({STOPPABLE}) RETURNING {COLUMNS}"
        );
        let select = format!("SELECT {COLUMNS} FROM broadcasts WHERE id = $1");
        let action = if paused { "pause" } else { "resume" };
        on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let updated = sqlx::query_as::<_, BroadcastRecord>(&update)
                .bind(paused)
                .bind(now)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(record) = updated else {
                let existing = sqlx::query_as::<_, BroadcastRecord>(&select)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.rollback().await?;
                return Err(match existing {
                    None => PauseError::NotFound(id.0),
                    Some(b) => PauseError::NotPausable(b.display_status().label().to_lowercase()),
                });
            };
            audit_in!(tx, now, actor_id, action, "broadcast", id, "")?;
            tx.commit().await?;
            Ok(record)
        })
    }
}

impl Db {
    /// Herald pauses broadcast `id` by itself, with `reason` (a provider's error that every
    /// further message would meet, or too many recent failures), unless it is paused already,
    /// finished or cancelled; audited. Whether it paused it now.
    pub async fn pause_for_provider(
        &self,
        id: BroadcastId,
        reason: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, DbError> {
        let update = format!(
            "UPDATE broadcasts SET paused = $1, pause_reason = $2, updated_at = $3 \
             WHERE id = $4 AND status IN ({STOPPABLE}) AND NOT paused"
        );
        on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let n = sqlx::query(&update)
                .bind(true)
                .bind(reason)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if n > 0 {
                audit_in!(tx, now, None::<i64>, "pause", "broadcast", id, reason)?;
            }
            tx.commit().await?;
            Ok(n > 0)
        })
    }

    /// The scheduled or sending broadcasts, not paused, that send on channel `channel`.
    pub async fn broadcasts_on_channel(&self, channel: i64) -> Result<Vec<BroadcastId>, DbError> {
        let rows: Vec<(i64, String)> = on_pool!(self, p => sqlx::query_as(&format!(
            "SELECT id, channel_ids FROM broadcasts WHERE status IN ({STOPPABLE}) AND NOT paused"
        ))
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .filter(|(_, channels)| {
                serde_json::from_str::<Vec<i64>>(channels).is_ok_and(|on| on.contains(&channel))
            })
            .map(|(id, _)| BroadcastId(id))
            .collect())
    }

    /// The scheduled or sending broadcasts, not paused, that send template `name` (in
    /// `language`, or any when empty) on channel `channel`.
    pub async fn broadcasts_using_template(
        &self,
        channel: i64,
        name: &str,
        language: &str,
    ) -> Result<Vec<BroadcastId>, DbError> {
        let rows: Vec<(i64, String, String)> = on_pool!(self, p => sqlx::query_as(&format!(
            "SELECT id, channel_ids, template FROM broadcasts \
             WHERE status IN ({STOPPABLE}) AND NOT paused AND template IS NOT NULL"
        ))
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .filter(|(_, channels, template)| {
                let on: Vec<i64> = serde_json::from_str(channels).unwrap_or_default();
                let t: Option<crate::model::template::TemplateChoice> =
                    serde_json::from_str(template).ok();
                on.contains(&channel)
                    && t.is_some_and(|t| {
                        t.name == name && (language.is_empty() || t.language == language)
                    })
            })
            .map(|(id, ..)| BroadcastId(id))
            .collect())
    }

    /// Cancels a Scheduled or Sending broadcast for good (paused or not): nothing more is sent;
    /// deliveries not yet sent stay pending and are never claimed.
    pub async fn cancel_broadcast(
        &self,
        id: BroadcastId,
        actor_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<BroadcastRecord, PauseError> {
        let update = format!(
            "UPDATE broadcasts SET status = {CANCELLED}, finished_at = $1, updated_at = $1 \
             WHERE id = $2 AND status IN ({STOPPABLE}) RETURNING {COLUMNS}"
        );
        let select = format!("SELECT {COLUMNS} FROM broadcasts WHERE id = $1");
        on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            let updated = sqlx::query_as::<_, BroadcastRecord>(&update)
                .bind(now)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(record) = updated else {
                let existing = sqlx::query_as::<_, BroadcastRecord>(&select)
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
                tx.rollback().await?;
                return Err(match existing {
                    None => PauseError::NotFound(id.0),
                    Some(b) => PauseError::NotCancellable(b.display_status().label().to_lowercase()),
                });
            };
            audit_in!(tx, now, actor_id, "cancel", "broadcast", id, "")?;
            tx.commit().await?;
            Ok(record)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_sql_numbers_parameters_in_bind_order() {
        let q = ListQuery {
            search: "x".into(),
            sort: SortKey::SENDING_FIRST,
            dir: SortDir::Asc,
            anchor: PageAnchor::After(Cursor {
                rank: 1,
                micros: 0,
                id: 1,
            }),
        };
        let (sql, reversed) = list_sql(Dialect::Postgres, &q);
        assert!(!reversed);
        assert!(
            sql.contains("broadcasts.name ILIKE $1 ESCAPE '\\' OR broadcasts.body ILIKE $1"),
            "{sql}"
        );
        assert!(
            sql.contains("(status_rank, send_sort, id) > ($2, $3, $4)"),
            "{sql}"
        );
        assert!(sql.ends_with("ORDER BY status_rank ASC, send_sort ASC, id ASC LIMIT 26"));

        let q = ListQuery {
            search: String::new(),
            sort: SortKey::Created,
            dir: SortDir::Desc,
            anchor: PageAnchor::Before(Cursor {
                rank: 0,
                micros: 0,
                id: 1,
            }),
        };
        let (sql, reversed) = list_sql(Dialect::Sqlite, &q);
        assert!(reversed);
        assert!(sql.contains("(created_at, id) > ($1, $2)"), "{sql}");
        assert!(sql.contains("ORDER BY created_at ASC, id ASC"), "{sql}");

        let q = ListQuery {
            search: String::new(),
            sort: SortKey::Status(crate::model::BroadcastStatus::Sent),
            dir: SortDir::Asc,
            anchor: PageAnchor::First,
        };
        let (sql, _) = list_sql(Dialect::Sqlite, &q);
        // Three walks of the status index (the group, the groups before, after), merged.
        assert_eq!(sql.matches("UNION ALL").count(), 2, "{sql}");
        assert!(sql.contains("WHERE status_rank = 3"), "{sql}");
        assert!(sql.contains("WHERE status_rank < 3"), "{sql}");
        assert!(sql.contains("WHERE status_rank > 3"), "{sql}");
        assert!(
            sql.ends_with("ORDER BY sort_rank ASC, send_sort ASC, id ASC LIMIT 26"),
            "{sql}"
        );
    }
}
