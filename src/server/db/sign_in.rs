//! Failed sign-ins counted in the database, so every instance sees the same counts: one row per
//! account, per client address and per (account, address) pair, each a fixed window that
//! starts at its first failure. Keys are hashes and addresses, never what was typed.

use super::{Db, DbError, begin_write, on_pool};

/// What a failure is counted against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FailureScope {
    Account,
    Address,
    Pair,
}

impl FailureScope {
    fn as_str(self) -> &'static str {
        match self {
            FailureScope::Account => "account",
            FailureScope::Address => "address",
            FailureScope::Pair => "pair",
        }
    }
}

/// One counter as read: failures in the window that began at `window_start` (unix seconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FailureCount {
    pub failures: i64,
    pub window_start: i64,
}

/// The three counters of one attempt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Failures {
    pub account: FailureCount,
    pub address: FailureCount,
    pub pair: FailureCount,
}

impl Failures {
    fn slot(&mut self, scope: &str) -> Option<&mut FailureCount> {
        match scope {
            "account" => Some(&mut self.account),
            "address" => Some(&mut self.address),
            "pair" => Some(&mut self.pair),
            _ => None,
        }
    }
}

/// The keys an attempt is counted under.
#[derive(Debug, Clone)]
pub struct FailureKeys {
    pub account: String,
    pub address: String,
}

impl FailureKeys {
    fn each(&self) -> [(FailureScope, String); 3] {
        [
            (FailureScope::Account, self.account.clone()),
            (FailureScope::Address, self.address.clone()),
            (
                FailureScope::Pair,
                format!("{}|{}", self.account, self.address),
            ),
        ]
    }
}

impl Db {
    /// The failures counted against `keys` in windows still open at `now` (unix seconds).
    pub async fn sign_in_failures(
        &self,
        keys: &FailureKeys,
        now: i64,
        window: i64,
    ) -> Result<Failures, DbError> {
        let [a, b, c] = keys.each();
        let sql = "SELECT scope, failures, window_start FROM sign_in_failures \
                   WHERE window_start > $7 AND ((scope = $1 AND key = $2) \
                   OR (scope = $3 AND key = $4) OR (scope = $5 AND key = $6))";
        let rows: Vec<(String, i64, i64)> = on_pool!(self, p => sqlx::query_as(sql)
            .bind(a.0.as_str()).bind(&a.1)
            .bind(b.0.as_str()).bind(&b.1)
            .bind(c.0.as_str()).bind(&c.1)
            .bind(now - window)
            .fetch_all(p)
            .await?);
        let mut found = Failures::default();
        for (scope, failures, window_start) in rows {
            if let Some(slot) = found.slot(&scope) {
                *slot = FailureCount {
                    failures,
                    window_start,
                };
            }
        }
        Ok(found)
    }

    /// Counts one failure against each of `keys` (a window that has passed starts again);
    /// the counters after it.
    pub async fn note_sign_in_failure(
        &self,
        keys: &FailureKeys,
        now: i64,
        window: i64,
    ) -> Result<Failures, DbError> {
        let sql = "INSERT INTO sign_in_failures (scope, key, window_start, failures) \
                   VALUES ($1, $2, $3, 1) ON CONFLICT (scope, key) DO UPDATE SET \
                   failures = CASE WHEN sign_in_failures.window_start <= $4 THEN 1 \
                              ELSE sign_in_failures.failures + 1 END, \
                   window_start = CASE WHEN sign_in_failures.window_start <= $4 THEN $3 \
                              ELSE sign_in_failures.window_start END \
                   RETURNING failures, window_start";
        let mut after = Failures::default();
        on_pool!(self, p => {
            let mut tx = begin_write!(p, self.dialect());
            for (scope, key) in keys.each() {
                let (failures, window_start): (i64, i64) = sqlx::query_as(sql)
                    .bind(scope.as_str())
                    .bind(&key)
                    .bind(now)
                    .bind(now - window)
                    .fetch_one(&mut *tx)
                    .await?;
                if let Some(slot) = after.slot(scope.as_str()) {
                    *slot = FailureCount { failures, window_start };
                }
            }
            tx.commit().await?;
        });
        Ok(after)
    }

    /// A right password from this address: its pair's failures are forgotten.
    pub async fn forget_sign_in_pair(&self, keys: &FailureKeys) -> Result<(), DbError> {
        let [_, _, (scope, key)] = keys.each();
        on_pool!(self, p => sqlx::query("DELETE FROM sign_in_failures WHERE scope = $1 AND key = $2")
            .bind(scope.as_str())
            .bind(key)
            .execute(p)
            .await
            .map(|_| ())?);
        Ok(())
    }

    /// Drops the counters whose window closed before `before` (unix seconds); how many.
    pub async fn sweep_sign_in_failures(&self, before: i64) -> Result<u64, DbError> {
        let n = on_pool!(self, p => sqlx::query("DELETE FROM sign_in_failures WHERE window_start <= $1")
            .bind(before)
            .execute(p)
            .await?
            .rows_affected());
        Ok(n)
    }
}
