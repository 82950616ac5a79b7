//! Who a broadcast may reach beyond its audience rule: consent (a marketing broadcast reaches
//! a customer on a kind of channel that requires an opt-in only with one there; any purpose a
//! customer withdrew on a kind is not sent there) and the frequency cap (a customer who got
//! `max` marketing broadcasts in the window gets no more). The conditions join the single
//! materialising `INSERT … SELECT`; who they left out is written in one more set-based
//! statement, and the wizard's pre-flight counts the same conditions before anything is sent.

use chrono::{DateTime, Utc};

use super::audience::{AudienceBind, Builder, bind_audience};
use super::states::{EXPIRED, FAILED};
use super::{Db, DbError, Dialect, on_pool};
use crate::model::audience::AudienceRule;
use crate::model::channel::ChannelKind;
use crate::model::consent::Purpose;

/// What the workspace's rules let a broadcast reach, as it fires.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Eligibility {
    pub purpose: Purpose,
    /// The kinds of channel on which marketing needs an opt-in.
    pub consent_kinds: Vec<ChannelKind>,
    /// The frequency cap: at most this many marketing broadcasts since then.
    pub cap: Option<(i64, DateTime<Utc>)>,
}

impl Eligibility {
    /// Whether the cap applies to this broadcast.
    fn capped(&self) -> Option<(i64, DateTime<Utc>)> {
        self.cap.filter(|_| self.purpose == Purpose::Marketing)
    }

    /// Whether anything but a customer's own withdrawal can leave someone out.
    pub fn restricts(&self, kinds: &[ChannelKind]) -> bool {
        self.capped().is_some()
            || (self.purpose == Purpose::Marketing
                && kinds.iter().any(|k| self.consent_kinds.contains(k)))
    }
}

/// Who was left out of a fired broadcast, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeftOut {
    pub consent: i64,
    pub cap: i64,
    /// The first of them by customer: (customer id, name, reason).
    pub first: Vec<(i64, String, String)>,
}

impl Builder {
    /// Customer `c` may get a broadcast for `e.purpose` on `kind`: an opt-in there when one is
    /// required, else no withdrawal of that purpose there.
    pub(super) fn consents(&mut self, kind: ChannelKind, e: &Eligibility) -> String {
        let k = self.bind(AudienceBind::Kind(kind.as_str()));
        let p = self.bind(AudienceBind::Kind(e.purpose.as_str()));
        let row = format!(
            "SELECT 1 FROM customer_consents k WHERE k.customer_id = c.id \
             AND k.channel_kind = {k} AND k.purpose = {p}"
        );
        if e.purpose == Purpose::Marketing && e.consent_kinds.contains(&kind) {
            format!("EXISTS ({row} AND k.granted)")
        } else {
            format!("NOT EXISTS ({row} AND NOT k.granted)")
        }
    }

    /// Customer `c` is over the frequency cap (`1 = 0` when none applies): the marketing
    /// broadcasts started since the window's start that reached or may reach them.
    pub(super) fn over_cap(&mut self, e: &Eligibility) -> String {
        let Some((max, since)) = e.capped() else {
            return "1 = 0".into();
        };
        let since = self.bind(AudienceBind::Time(since));
        let max = self.bind(AudienceBind::Id(max));
        let marketing = self.bind(AudienceBind::Kind(Purpose::Marketing.as_str()));
        format!(
            "c.id IN (SELECT d2.customer_id FROM broadcasts b2 JOIN deliveries d2 ON d2.broadcast_id = b2.id \
             WHERE b2.purpose = {marketing} AND b2.started_at >= {since} \
             AND d2.state NOT IN ({FAILED}, {EXPIRED}) GROUP BY d2.customer_id HAVING COUNT(*) >= {max})"
        )
    }
}

/// A builder for a query over whom `e` lets some of `picked` reach, with its first two
/// conditions compiled in order: over the cap, and "a picked kind reaches them and may carry
/// it".
fn consenting(
    dialect: Dialect,
    picked: &[(i64, ChannelKind)],
    e: &Eligibility,
) -> (Builder, String, String) {
    let mut b = Builder {
        dialect,
        first: 1,
        binds: Vec::new(),
    };
    let over = b.over_cap(e);
    let any: Vec<String> = picked
        .iter()
        .map(|(_, k)| format!("({} AND {})", b.reach(*k), b.consents(*k, e)))
        .collect();
    (b, over, any.join(" OR "))
}

/// The customers `rule` matches whom some picked kind reaches (consent aside).
fn reachable(b: &mut Builder, rule: &AudienceRule, picked: &[(i64, ChannelKind)]) -> String {
    let rule_sql = b.rule(rule);
    let reach: Vec<String> = picked.iter().map(|(_, k)| b.reach(*k)).collect();
    let reach = if reach.is_empty() {
        "1 = 0".to_string()
    } else {
        reach.join(" OR ")
    };
    format!("NOT c.opted_out AND {rule_sql} AND ({reach})")
}

/// `INSERT … SELECT` of who broadcast `$1` left out: reachable, matched, and without a
/// delivery; over the cap, or else for want of consent.
pub(super) fn left_out_sql(
    dialect: Dialect,
    rule: &AudienceRule,
    picked: &[(i64, ChannelKind)],
    e: &Eligibility,
) -> (String, Vec<AudienceBind>) {
    let mut b = Builder {
        dialect,
        first: 2,
        binds: Vec::new(),
    };
    let over = b.over_cap(e);
    let reachable = reachable(&mut b, rule, picked);
    let sql = format!(
        "INSERT INTO broadcast_left_out (broadcast_id, customer_id, reason) \
         SELECT $1, c.id, CASE WHEN {over} THEN 'frequency cap' ELSE 'consent' END \
         FROM customers c WHERE {reachable} \
         AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.broadcast_id = $1 AND d.customer_id = c.id)"
    );
    (sql, b.binds)
}

impl Db {
    /// Whether any customer withdrew any purpose anywhere (else only the rules can leave
    /// someone out, and a broadcast they do not restrict needs no look).
    pub async fn any_withdrawal(&self) -> Result<bool, DbError> {
        Ok(on_pool!(self, p => sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM customer_consents WHERE NOT granted)",
        )
        .fetch_one(p)
        .await?))
    }

    /// The pre-flight: of the customers `rule` matches and `picked` reaches, how many `e`
    /// would leave out for want of consent and over the cap.
    pub async fn left_out_preview(
        &self,
        rule: &AudienceRule,
        picked: &[(i64, ChannelKind)],
        e: &Eligibility,
    ) -> Result<(i64, i64), DbError> {
        if picked.is_empty() {
            return Ok((0, 0));
        }
        let (mut b, over, consenting) = consenting(self.dialect(), picked, e);
        let reachable = reachable(&mut b, rule, picked);
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(CASE WHEN {over} THEN 0 WHEN {consenting} THEN 0 ELSE 1 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN {over} THEN 1 ELSE 0 END), 0) AS BIGINT) \
             FROM customers c WHERE {reachable}"
        );
        let a = super::AudienceSql {
            clause: String::new(),
            binds: b.binds,
        };
        let row: (i64, i64) =
            on_pool!(self, p => bind_audience!(sqlx::query_as(&sql), a).fetch_one(p).await?);
        Ok(row)
    }

    /// The pre-flight's quiet hours: of the customers `rule` matches whom `e` lets some of
    /// `picked` reach, how many per (stored time zone, index of the first of `prefixes`
    /// their phone starts with, else -1). One grouped query; the waves are worked out in
    /// Rust from these few groups.
    pub async fn zone_prefix_counts(
        &self,
        rule: &AudienceRule,
        picked: &[(i64, ChannelKind)],
        e: &Eligibility,
        prefixes: &[String],
    ) -> Result<Vec<(String, i64, i64)>, DbError> {
        if picked.is_empty() {
            return Ok(Vec::new());
        }
        let (mut b, over, consenting) = consenting(self.dialect(), picked, e);
        let arms: Vec<String> = prefixes
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let pattern = b.bind(AudienceBind::Text(format!("{p}%")));
                format!("WHEN c.phone LIKE {pattern} THEN {i}")
            })
            .collect();
        let prefix = if arms.is_empty() {
            "-1".to_string()
        } else {
            format!("CASE {} ELSE -1 END", arms.join(" "))
        };
        let rule_sql = b.rule(rule);
        let sql = format!(
            "SELECT c.time_zone, CAST({prefix} AS BIGINT), COUNT(*) FROM customers c \
             WHERE NOT c.opted_out AND {rule_sql} AND ({consenting}) AND NOT ({over}) GROUP BY 1, 2"
        );
        let a = super::AudienceSql {
            clause: String::new(),
            binds: b.binds,
        };
        Ok(on_pool!(self, p => bind_audience!(sqlx::query_as(&sql), a).fetch_all(p).await?))
    }

    /// Who broadcast `id` left out: the counts by reason and the first `limit` by customer.
    pub async fn left_out(&self, id: i64, limit: i64) -> Result<LeftOut, DbError> {
        let counts: Vec<(String, i64)> = on_pool!(self, p => sqlx::query_as(
            "SELECT reason, COUNT(*) FROM broadcast_left_out WHERE broadcast_id = $1 GROUP BY reason",
        )
        .bind(id)
        .fetch_all(p)
        .await?);
        let first: Vec<(i64, String, String)> = on_pool!(self, p => sqlx::query_as(
            "SELECT l.customer_id, c.name, l.reason FROM broadcast_left_out l \
             JOIN customers c ON c.id = l.customer_id WHERE l.broadcast_id = $1 \
             ORDER BY l.customer_id LIMIT $2",
        )
        .bind(id)
        .bind(limit)
        .fetch_all(p)
        .await?);
        let count = |r: &str| counts.iter().find(|(k, _)| k == r).map_or(0, |(_, n)| *n);
        Ok(LeftOut {
            consent: count("consent"),
            cap: count("frequency cap"),
            first,
        })
    }
}
