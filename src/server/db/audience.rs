//! Audiences (who a rule reaches, and on which channel), inbound messages, and opt-outs per
//! channel kind. No audience ever includes a customer who opted out.

use chrono::{DateTime, Utc};

use super::{Db, DbError, Dialect, on_pool};
use crate::model::audience::{AudienceRule, Field, Match, Op};
use crate::model::channel::ChannelKind;

/// How long after a broadcast message an inbound message without a reply context counts as
/// the reply to it.
pub const REPLY_WINDOW_HOURS: i64 = 72;

/// An audience rule compiled to SQL: a WHERE clause over `customers c` with `$n` placeholders,
/// and the values to bind to them in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceSql {
    pub clause: String,
    /// Tag and robot-group ids, one per condition, then channel kinds.
    pub binds: Vec<AudienceBind>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudienceBind {
    Id(i64),
    Kind(&'static str),
    /// A time zone name or phone prefix pattern (a broadcast's waves).
    Text(String),
    /// A wave's instant.
    Time(chrono::DateTime<chrono::Utc>),
}

/// Builds SQL text and its binds together, numbering placeholders in order.
pub(super) struct Builder {
    pub(super) dialect: Dialect,
    pub(super) first: usize,
    pub(super) binds: Vec<AudienceBind>,
}

impl Builder {
    pub(super) fn bind(&mut self, b: AudienceBind) -> String {
        self.binds.push(b);
        format!("${}", self.first + self.binds.len() - 1)
    }

    /// Whether customer `c` satisfies the rule's conditions.
    pub(super) fn rule(&mut self, rule: &AudienceRule) -> String {
        let conditions: Vec<String> = rule
            .conditions
            .iter()
            .map(|c| {
                let (table, column) = match c.field {
                    Field::Tag => ("customer_tags", "tag_id"),
                    Field::RobotGroup => ("customer_robot_groups", "group_id"),
                };
                let id = self.bind(AudienceBind::Id(c.id));
                // "is" on SQLite: IN, so it can start from the label's index instead of probing
                // every customer (2.2 s → 0.13 s for a 10 % tag at a million customers).
                // PostgreSQL plans EXISTS as a semi-join and IN-with-OR far worse; "is not" is
                // NOT EXISTS on both (NOT IN took twice as long on PostgreSQL).
                match c.op {
                    Op::Is if self.dialect == Dialect::Sqlite => format!(
                        "c.id IN (SELECT x.customer_id FROM {table} x WHERE x.{column} = {id})"
                    ),
                    Op::Is => format!(
                        "EXISTS (SELECT 1 FROM {table} x WHERE x.customer_id = c.id AND x.{column} = {id})"
                    ),
                    Op::IsNot => format!(
                        "NOT EXISTS (SELECT 1 FROM {table} x WHERE x.customer_id = c.id AND x.{column} = {id})"
                    ),
                }
            })
            .collect();
        let frozen = rule.frozen.map(|set| {
            let set = self.bind(AudienceBind::Id(set));
            format!(
                "c.id IN (SELECT m.customer_id FROM audience_set_members m WHERE m.set_id = {set})"
            )
        });
        let joiner = if rule.matching == Match::All {
            " AND "
        } else {
            " OR "
        };
        match (frozen, conditions.is_empty()) {
            (None, true) => "1 = 1".to_string(),
            (Some(f), true) => f,
            (None, false) => format!("({})", conditions.join(joiner)),
            (Some(f), false) => format!("({f} AND ({}))", conditions.join(joiner)),
        }
    }

    /// Whether customer `c` can be reached on `kind`: an address, and no opt-out there.
    /// The index of the first of `kinds` that reaches customer `c`, else -1.
    fn slot(&mut self, kinds: &[ChannelKind]) -> String {
        let slots: Vec<String> = kinds
            .iter()
            .enumerate()
            .map(|(i, k)| format!("WHEN {} THEN {i}", self.reach(*k)))
            .collect();
        if slots.is_empty() {
            "-1".to_string()
        } else {
            format!("CASE {} ELSE -1 END", slots.join(" "))
        }
    }

    pub(super) fn reach(&mut self, kind: ChannelKind) -> String {
        let columns = kind.address_columns();
        let address = if columns.is_empty() {
            String::new()
        } else {
            let any: Vec<String> = columns
                .iter()
                .map(|c| format!("c.{c} IS NOT NULL"))
                .collect();
            format!("({}) AND ", any.join(" OR "))
        };
        format!(
            "({address}NOT EXISTS (SELECT 1 FROM customer_opt_outs o \
             WHERE o.customer_id = c.id AND o.channel_kind = {}))",
            self.bind(AudienceBind::Kind(kind.as_str()))
        )
    }
}

/// Compiles `rule`, reachable on at least one of `kinds`, opt-outs excluded, with placeholders
/// numbered from `$first`. The one definition of an audience in SQL; `AudienceRule::reaches`
/// is the same in memory (tests/audience.rs checks that they agree).
pub fn audience_clause(
    dialect: Dialect,
    rule: &AudienceRule,
    kinds: &[ChannelKind],
    first: usize,
) -> AudienceSql {
    let mut b = Builder {
        dialect,
        first,
        binds: Vec::new(),
    };
    let rule_sql = b.rule(rule);
    let reach: Vec<String> = kinds.iter().map(|k| b.reach(*k)).collect();
    let reach_sql = if reach.is_empty() {
        "1 = 0".to_string()
    } else {
        format!("({})", reach.join(" OR "))
    };
    AudienceSql {
        clause: format!("NOT c.opted_out AND {rule_sql} AND {reach_sql}"),
        binds: b.binds,
    }
}

/// How an audience splits over channels picked in priority order (the pre-flight check).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Breakdown {
    /// Customers reached on each picked kind (each on the first kind that reaches them),
    /// aligned with the kinds asked about.
    pub per_kind: Vec<i64>,
    /// Customers the rule matches (and who did not opt out of everything) whom no picked kind
    /// reaches.
    pub unreachable: i64,
}

impl Breakdown {
    pub fn reachable(&self) -> i64 {
        self.per_kind.iter().sum()
    }
}

/// Binds an audience's values to a query, in order.
macro_rules! bind_audience {
    ($query:expr, $sql:expr) => {{
        let mut q = $query;
        for b in &$sql.binds {
            q = match b {
                AudienceBind::Id(id) => q.bind(*id),
                AudienceBind::Kind(k) => q.bind(*k),
                AudienceBind::Text(t) => q.bind(t.clone()),
                AudienceBind::Time(t) => q.bind(*t),
            };
        }
        q
    }};
}
pub(super) use bind_audience;

impl Db {
    /// A builder holding the customer's slot among `kinds` (the index of the first that
    /// reaches them, else -1) and `rule`'s conditions, compiled in that order.
    fn slotted(&self, rule: &AudienceRule, kinds: &[ChannelKind]) -> (Builder, String, String) {
        let mut b = Builder {
            dialect: self.dialect(),
            first: 1,
            binds: Vec::new(),
        };
        let slot = b.slot(kinds);
        let rule_sql = b.rule(rule);
        (b, slot, rule_sql)
    }

    /// Who `rule` reaches on `kinds` in priority order, and who it cannot reach: one grouped
    /// query.
    pub async fn audience_breakdown(
        &self,
        rule: &AudienceRule,
        kinds: &[ChannelKind],
    ) -> Result<Breakdown, DbError> {
        let (b, slot, rule_sql) = self.slotted(rule, kinds);
        let sql = format!(
            "SELECT CAST({slot} AS BIGINT) AS slot, COUNT(*) FROM customers c \
             WHERE NOT c.opted_out AND {rule_sql} GROUP BY 1"
        );
        let a = AudienceSql {
            clause: String::new(),
            binds: b.binds,
        };
        let rows: Vec<(i64, i64)> =
            on_pool!(self, p => bind_audience!(sqlx::query_as(&sql), a).fetch_all(p).await?);
        let mut out = Breakdown {
            per_kind: vec![0; kinds.len()],
            unreachable: 0,
        };
        for (slot, n) in rows {
            match usize::try_from(slot) {
                Ok(i) if i < kinds.len() => out.per_kind[i] = n,
                _ => out.unreachable += n,
            }
        }
        Ok(out)
    }

    /// Of the customers `rule` reaches on `kinds[at]` (in priority order, as
    /// [`Db::audience_breakdown`] splits them), how many wrote to `channel_id` since `since`:
    /// those inside WhatsApp's 24-hour window on that number.
    pub async fn audience_in_window(
        &self,
        rule: &AudienceRule,
        kinds: &[ChannelKind],
        at: usize,
        channel_id: i64,
        since: DateTime<Utc>,
    ) -> Result<i64, DbError> {
        let (mut b, slot, rule_sql) = self.slotted(rule, kinds);
        let channel = b.bind(AudienceBind::Id(channel_id));
        let since_at = format!("${}", b.first + b.binds.len());
        let sql = format!(
            "SELECT COUNT(*) FROM customers c WHERE NOT c.opted_out AND {rule_sql} \
             AND {slot} = {at} AND EXISTS (SELECT 1 FROM messages m WHERE m.customer_id = c.id \
             AND m.channel_id = {channel} AND m.direction = 'in' AND m.created_at > {since_at})"
        );
        let a = AudienceSql {
            clause: String::new(),
            binds: b.binds,
        };
        let n: i64 = on_pool!(self, p => bind_audience!(sqlx::query_scalar(&sql), a).bind(since).fetch_one(p).await?);
        Ok(n)
    }

    /// Which of `customers` wrote to `channel_id` since `since` (inside WhatsApp's 24-hour
    /// window on that number).
    pub async fn wrote_since(
        &self,
        channel_id: i64,
        customers: &[i64],
        since: DateTime<Utc>,
    ) -> Result<std::collections::HashSet<i64>, DbError> {
        if customers.is_empty() {
            return Ok(Default::default());
        }
        let list = customers
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let ids: Vec<i64> = on_pool!(self, p => sqlx::query_scalar(&format!(
            "SELECT DISTINCT customer_id FROM messages WHERE customer_id IN ({list}) \
             AND channel_id = $1 AND direction = 'in' AND created_at > $2"
        ))
        .bind(channel_id)
        .bind(since)
        .fetch_all(p)
        .await?);
        Ok(ids.into_iter().collect())
    }

    /// The first `n` names, alphabetically, of the customers `rule` reaches on `kinds`.
    pub async fn audience_sample(
        &self,
        rule: &AudienceRule,
        kinds: &[ChannelKind],
        n: usize,
    ) -> Result<Vec<String>, DbError> {
        let a = audience_clause(self.dialect(), rule, kinds, 1);
        let sql = format!(
            "SELECT c.name FROM customers c WHERE {} ORDER BY c.name, c.id LIMIT {n}",
            a.clause
        );
        let names: Vec<String> =
            on_pool!(self, p => bind_audience!(sqlx::query_scalar(&sql), a).fetch_all(p).await?);
        Ok(names)
    }

    /// The name of one named customer `rule` matches (the first found, not sorted: it must be
    /// cheap at a million customers).
    pub async fn audience_first_name(
        &self,
        rule: &AudienceRule,
    ) -> Result<Option<String>, DbError> {
        let a = audience_clause(self.dialect(), rule, &[ChannelKind::Webhook], 1);
        let sql = format!(
            "SELECT c.name FROM customers c WHERE {} AND c.name <> '' LIMIT 1",
            a.clause
        );
        let name: Option<String> = on_pool!(self, p => bind_audience!(sqlx::query_scalar(&sql), a).fetch_optional(p).await?);
        Ok(name)
    }

    /// The longest name in the audience: a personalised message is measured with it.
    pub async fn audience_longest_name(
        &self,
        rule: &AudienceRule,
    ) -> Result<Option<String>, DbError> {
        let a = audience_clause(self.dialect(), rule, &[ChannelKind::Webhook], 1);
        let sql = format!(
            "SELECT c.name FROM customers c WHERE {} ORDER BY LENGTH(c.name) DESC LIMIT 1",
            a.clause
        );
        let name: Option<String> = on_pool!(self, p => bind_audience!(sqlx::query_scalar(&sql), a).fetch_optional(p).await?);
        Ok(name)
    }

    /// Every distinct time zone name the customers `rule` matches have, in order.
    pub async fn audience_zones(&self, rule: &AudienceRule) -> Result<Vec<String>, DbError> {
        let a = audience_clause(self.dialect(), rule, &[ChannelKind::Webhook], 1);
        let sql = format!(
            "SELECT DISTINCT c.time_zone FROM customers c WHERE {} ORDER BY c.time_zone",
            a.clause
        );
        let zones: Vec<String> =
            on_pool!(self, p => bind_audience!(sqlx::query_scalar(&sql), a).fetch_all(p).await?);
        Ok(zones)
    }

    /// The channel kinds a customer opted out of by message, with when.
    pub async fn channel_opt_outs(
        &self,
        customer_id: i64,
    ) -> Result<Vec<(String, DateTime<Utc>)>, DbError> {
        let rows = on_pool!(self, p => sqlx::query_as::<_, (String, DateTime<Utc>)>(
            "SELECT channel_kind, at FROM customer_opt_outs WHERE customer_id = $1 ORDER BY channel_kind",
        )
        .bind(customer_id)
        .fetch_all(p)
        .await?);
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::audience::Condition;

    #[test]
    fn the_clause_excludes_opt_outs_and_joins_conditions_as_asked() {
        let rule = AudienceRule {
            matching: Match::Any,
            conditions: vec![
                Condition {
                    field: Field::Tag,
                    op: Op::Is,
                    id: 3,
                },
                Condition {
                    field: Field::RobotGroup,
                    op: Op::IsNot,
                    id: 7,
                },
            ],
            frozen: None,
        };
        let a = audience_clause(
            Dialect::Sqlite,
            &rule,
            &[ChannelKind::Sms, ChannelKind::Sandbox],
            4,
        );
        let sql = &a.clause;
        assert!(sql.starts_with("NOT c.opted_out AND "), "{sql}");
        assert!(sql.contains("(c.id IN (SELECT x.customer_id FROM customer_tags x WHERE x.tag_id = $4) OR NOT EXISTS"), "{sql}");
        assert!(sql.contains("x.group_id = $5"), "{sql}");
        assert!(
            sql.contains("((c.phone IS NOT NULL) AND NOT EXISTS"),
            "{sql}"
        );
        assert!(
            sql.contains("(c.phone IS NOT NULL OR c.email IS NOT NULL) AND"),
            "{sql}"
        );
        assert!(sql.contains("o.channel_kind = $7"), "{sql}");
        assert_eq!(
            a.binds,
            vec![
                AudienceBind::Id(3),
                AudienceBind::Id(7),
                AudienceBind::Kind("sms"),
                AudienceBind::Kind("sandbox")
            ]
        );
        assert!(
            audience_clause(Dialect::Sqlite, &AudienceRule::default(), &[], 1)
                .clause
                .ends_with("1 = 0")
        );
    }
}
