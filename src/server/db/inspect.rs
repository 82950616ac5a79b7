//! Reading what the tests and the benchmark check, which the application itself never
//! needs: raw statements, audit counts, every delivery's state, statistics upkeep.

use chrono::{DateTime, Utc};

use super::audience::AudienceBind;
use super::audience::{audience_clause, bind_audience};
use super::broadcasts::insert_broadcasts_query;
use super::claims::Claimed;
use super::{Db, DbError, Dialect, NewBroadcast, on_pool};
use crate::model::audience::AudienceRule;
use crate::model::channel::ChannelKind;

/// A delivery as [`Inspect::trace_message`] shows it: (id, state, attempts, round, sent at,
/// replied, uncertain).
type TracedDelivery = (i64, String, i64, i64, Option<String>, bool, bool);

/// What the tests and the benchmark read and do besides the application's own storage calls:
/// `db.inspect().counters(id)`. Nothing in the application uses it.
pub struct Inspect<'a>(&'a Db);

impl Db {
    pub fn inspect(&self) -> Inspect<'_> {
        Inspect(self)
    }
}

impl Inspect<'_> {
    /// How many customers `rule` reaches on at least one of `kinds`.
    pub async fn audience_count(
        &self,
        rule: &AudienceRule,
        kinds: &[ChannelKind],
    ) -> Result<i64, DbError> {
        let a = audience_clause(self.0.dialect(), rule, kinds, 1);
        let sql = format!("SELECT COUNT(*) FROM customers c WHERE {}", a.clause);
        let n: i64 =
            on_pool!(self.0, p => bind_audience!(sqlx::query_scalar(&sql), a).fetch_one(p).await?);
        Ok(n)
    }

    /// The ids of every customer `rule` reaches on at least one of `kinds`, ascending.
    pub async fn audience_ids(
        &self,
        rule: &AudienceRule,
        kinds: &[ChannelKind],
    ) -> Result<Vec<i64>, DbError> {
        let a = audience_clause(self.0.dialect(), rule, kinds, 1);
        let sql = format!(
            "SELECT c.id FROM customers c WHERE {} ORDER BY c.id",
            a.clause
        );
        let ids: Vec<i64> =
            on_pool!(self.0, p => bind_audience!(sqlx::query_scalar(&sql), a).fetch_all(p).await?);
        Ok(ids)
    }

    /// Claims up to `limit` deliveries of sending, unpaused broadcasts, the longest-running
    /// first.
    pub async fn claim(
        &self,
        limit: i64,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, DbError> {
        let mut out = Vec::new();
        for (b, _) in self.0.sending_broadcasts().await? {
            let room = limit - out.len() as i64;
            if room <= 0 {
                break;
            }
            out.extend(
                self.0
                    .claim_broadcast(b, room, now, lease_until, now)
                    .await?,
            );
        }
        Ok(out)
    }

    /// The messages of a customer's conversation, oldest first: (direction, body, channel id,
    /// provider message id, at).
    pub async fn conversation(
        &self,
        customer_id: i64,
    ) -> Result<Vec<(String, String, Option<i64>, Option<String>, DateTime<Utc>)>, DbError> {
        let rows = on_pool!(self.0, p => sqlx::query_as(
            "SELECT direction, body, channel_id, provider_message_id, created_at FROM messages \
             WHERE customer_id = $1 ORDER BY created_at, id",
        )
        .bind(customer_id)
        .fetch_all(p)
        .await?);
        Ok(rows)
    }

    /// Customers carrying the tag called `name`.
    pub async fn count_customers_tagged(&self, name: &str) -> Result<i64, DbError> {
        let sql = "SELECT COUNT(*) FROM customer_tags ct JOIN tags t ON t.id = ct.tag_id WHERE t.name = $1";
        let n: i64 = on_pool!(self.0, p => sqlx::query_scalar(sql).bind(name).fetch_one(p).await?);
        Ok(n)
    }

    pub async fn insert_broadcast(&self, b: &NewBroadcast) -> Result<i64, DbError> {
        let id: i64 = on_pool!(self.0, p => {
            let mut qb = insert_broadcasts_query!(std::slice::from_ref(b));
            qb.push(" RETURNING id");
            qb.build_query_scalar().fetch_one(p).await?
        });
        Ok(id)
    }

    /// A channel's settings column exactly as stored (tests check no secret is in clear).
    pub async fn stored_channel_config(&self, id: i64) -> Result<Option<String>, DbError> {
        let raw = on_pool!(self.0, p => sqlx::query_scalar("SELECT config FROM channels WHERE id = $1")
            .bind(id)
            .fetch_optional(p)
            .await?);
        Ok(raw)
    }

    /// Changes a channel's kind (benchmarks replay one provider's reports on deliveries made
    /// through another).
    /// A server key as the database holds it (sealed).
    pub async fn server_key_as_stored(&self, name: &str) -> Result<String, DbError> {
        let v: String = on_pool!(self.0, p => sqlx::query_scalar("SELECT value FROM server_keys WHERE name = $1")
            .bind(name)
            .fetch_one(p)
            .await?);
        Ok(v)
    }

    /// Its settings are sealed again for the new kind.
    pub async fn set_channel_kind(&self, id: i64, kind: &str) -> Result<(), DbError> {
        let Some(channel) = self.0.channel(id).await? else {
            return Ok(());
        };
        let sealed = self.0.seal_config(&channel.config, id, kind);
        on_pool!(self.0, p => sqlx::query("UPDATE channels SET kind = $1, config = $2 WHERE id = $3")
            .bind(kind)
            .bind(sealed)
            .bind(id)
            .execute(p)
            .await
            .map(|_| ())?);
        Ok(())
    }

    /// The newest audit entries for a subject, as (action, actor id, detail), newest first.
    pub async fn audit_trail(
        &self,
        subject_type: &str,
        subject_id: i64,
    ) -> Result<Vec<(String, Option<i64>, String)>, DbError> {
        let rows = on_pool!(self.0, p => sqlx::query_as::<_, (String, Option<i64>, String)>(
            "SELECT action, actor_id, detail FROM audit_log \
             WHERE subject_type = $1 AND subject_id = $2 ORDER BY id DESC",
        )
        .bind(subject_type)
        .bind(subject_id)
        .fetch_all(p)
        .await?);
        Ok(rows)
    }

    /// Every audit entry of `action`, oldest first, as (actor id, detail).
    pub async fn audit_entries(&self, action: &str) -> Result<Vec<(Option<i64>, String)>, DbError> {
        let rows = on_pool!(self.0, p => sqlx::query_as::<_, (Option<i64>, String)>(
            "SELECT actor_id, detail FROM audit_log WHERE action = $1 ORDER BY id",
        )
        .bind(action)
        .fetch_all(p)
        .await?);
        Ok(rows)
    }

    /// The maintained counters, in [`Db::recount`]'s order.
    pub async fn counters(&self, broadcast: i64) -> Result<[i64; 6], DbError> {
        let row: (i64, i64, i64, i64, i64, i64) = on_pool!(self.0, p => sqlx::query_as(
            "SELECT audience_total, sent_count, delivered_count, read_count, replied_count, failed_count \
             FROM broadcasts WHERE id = $1",
        )
        .bind(broadcast)
        .fetch_one(p)
        .await?);
        Ok([row.0, row.1, row.2, row.3, row.4, row.5])
    }

    /// The maintained per-channel counters, in [`Db::recount_by_channel`]'s shape.
    pub async fn counters_by_channel(
        &self,
        broadcast: i64,
    ) -> Result<Vec<(i64, [i64; 6])>, DbError> {
        self.0.per_channel(
            "SELECT channel_id, audience_total, sent_count, delivered_count, read_count, replied_count, failed_count \
             FROM broadcast_channel_counts WHERE broadcast_id = $1 ORDER BY channel_id",
            broadcast,
        )
        .await
    }

    /// The plan the database would run `sql` with, as text (SQLite's `EXPLAIN QUERY PLAN`
    /// details, PostgreSQL's `EXPLAIN` lines).
    pub async fn query_plan(&self, sql: &str) -> Result<String, DbError> {
        Ok(match self.0.dialect() {
            Dialect::Sqlite => {
                let rows: Vec<(i64, i64, i64, String)> = on_pool!(self.0, p => sqlx::query_as(
                    &format!("EXPLAIN QUERY PLAN {sql}"),
                )
                .fetch_all(p)
                .await?);
                rows.into_iter().map(|r| r.3).collect::<Vec<_>>().join("\n")
            }
            Dialect::Postgres => {
                let rows: Vec<String> = on_pool!(self.0, p => sqlx::query_scalar(
                    &format!("EXPLAIN {sql}"),
                )
                .fetch_all(p)
                .await?);
                rows.join("\n")
            }
        })
    }

    /// The plan of the claim's walk of due deliveries, as the dispatcher runs it.
    pub async fn due_claim_plan(&self) -> Result<String, DbError> {
        let (_, _, due) = super::claims::claim_sql(self.0.dialect());
        self.query_plan(&due).await
    }

    /// The first column of `sql`'s rows, as numbers: for tests that count in SQL of their own.
    pub async fn numbers(&self, sql: &str) -> Result<Vec<i64>, DbError> {
        Ok(on_pool!(self.0, p => sqlx::query_scalar(sql).fetch_all(p).await?))
    }

    /// Runs one SQL statement as given: for tools and benchmarks that shape data in bulk.
    pub async fn execute(&self, sql: &str) -> Result<u64, DbError> {
        self.0.execute(sql).await
    }

    /// How many audit entries of `action` a broadcast has.
    pub async fn audit_count(&self, action: &str, broadcast: i64) -> Result<i64, DbError> {
        let n = on_pool!(self.0, p => sqlx::query_scalar(
            "SELECT COUNT(*) FROM audit_log WHERE action = $1 AND subject_type = 'broadcast' AND subject_id = $2",
        )
        .bind(action)
        .bind(broadcast)
        .fetch_one(p)
        .await?);
        Ok(n)
    }

    /// PostgreSQL: `VACUUM ANALYZE` the customers and their labels (what autovacuum does after
    /// a bulk load). SQLite: `ANALYZE`.
    pub async fn maintain(&self) -> Result<(), DbError> {
        match &self.0.pool {
            super::Pool::Postgres(p) => {
                for t in [
                    "customers",
                    "customer_tags",
                    "customer_robot_groups",
                    "customer_opt_outs",
                ] {
                    sqlx::query(&format!("VACUUM ANALYZE {t}"))
                        .execute(p)
                        .await?;
                }
            }
            super::Pool::Sqlite(p) => {
                sqlx::query("ANALYZE").execute(p).await?;
            }
        }
        Ok(())
    }

    /// The kept early reports as (id, provider message id), by id.
    pub async fn early_reports(&self) -> Result<Vec<(i64, String)>, DbError> {
        let rows = on_pool!(self.0, p => sqlx::query_as(
            "SELECT id, provider_message_id FROM early_reports ORDER BY id",
        )
        .fetch_all(p)
        .await?);
        Ok(rows)
    }

    /// Every delivery of `broadcast` as (id, customer, channel, state, provider message id), by
    /// id.
    pub async fn deliveries_of(
        &self,
        broadcast: i64,
    ) -> Result<Vec<(i64, i64, i64, String, Option<String>)>, DbError> {
        let rows = on_pool!(self.0, p => sqlx::query_as(
            "SELECT id, customer_id, channel_id, state, provider_message_id FROM deliveries \
             WHERE broadcast_id = $1 ORDER BY id",
        )
        .bind(broadcast)
        .fetch_all(p)
        .await?);
        Ok(rows)
    }

    /// Deliveries of `broadcast` by state, for tests and the results page.
    pub async fn delivery_states(&self, broadcast: i64) -> Result<Vec<(String, i64)>, DbError> {
        let rows = on_pool!(self.0, p => sqlx::query_as(
            "SELECT state, COUNT(*) FROM deliveries WHERE broadcast_id = $1 GROUP BY state ORDER BY state",
        )
        .bind(broadcast)
        .fetch_all(p)
        .await?);
        Ok(rows)
    }

    /// What the database holds about the delivery of `broadcast` whose provider id is `pid`
    /// and the reports about it, for a test that finds a report missing to say why: (whether
    /// the delivery is marked replied, if there is one; the description).
    pub async fn trace_message(
        &self,
        broadcast: i64,
        pid: &str,
    ) -> Result<(Option<bool>, String), DbError> {
        let delivery: Option<TracedDelivery> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT id, state, attempts, retry_round, CAST(sent_at AS TEXT), \
             replied_at IS NOT NULL, uncertain FROM deliveries WHERE broadcast_id = $1 AND provider_message_id = $2",
        )
        .bind(broadcast)
        .bind(pid)
        .fetch_optional(p)
        .await?);
        let early: Vec<(String, String, Option<i64>)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT event, CAST(at AS TEXT), message_id FROM early_reports WHERE provider_message_id = $1 ORDER BY id",
        )
        .bind(pid)
        .fetch_all(p)
        .await?);
        let linked: i64 = match delivery {
            Some((id, ..)) => on_pool!(self.0, p => sqlx::query_scalar(
                "SELECT COUNT(*) FROM messages WHERE delivery_id = $1",
            )
            .bind(id)
            .fetch_one(p)
            .await?),
            None => 0,
        };
        let text = format!(
            "{pid}: delivery (id, state, attempts, round, sent at, replied, uncertain) {delivery:?}; \
             early reports (event, at, message) {early:?}; messages linked to it: {linked}"
        );
        Ok((delivery.map(|d| d.5), text))
    }

    /// How long each sent delivery of `broadcast` was in flight, in milliseconds, with its
    /// channel: from the note that its request starts to the record of its outcome. A crash
    /// within that time leaves the delivery uncertain.
    pub async fn in_flight_ms(&self, broadcast: i64) -> Result<Vec<(i64, i64)>, DbError> {
        let rows: Vec<(i64, DateTime<Utc>, DateTime<Utc>)> = on_pool!(self.0, p => sqlx::query_as(
            "SELECT channel_id, started_at, sent_at FROM deliveries \
             WHERE broadcast_id = $1 AND started_at IS NOT NULL AND sent_at IS NOT NULL",
        )
        .bind(broadcast)
        .fetch_all(p)
        .await?);
        Ok(rows
            .into_iter()
            .map(|(channel, start, sent)| (channel, (sent - start).num_milliseconds()))
            .collect())
    }
}
