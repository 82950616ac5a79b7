//! One password check under the limits ([`super::limits`]), the same for signing in and for
//! changing one's own password: the address's flood guard, the failures counted in the
//! database (refused per pair and per address, slowed per account), a verification slot, and
//! the failure counted and audited once per account and window (so a flood of wrong passwords
//! adds at most one entry per account, address and window to the append-only log).

use std::net::IpAddr;

use super::auth::verify_password;
use super::limits::{Refused, failure_keys};
use crate::model::AppError;
use crate::server::AppState;
use crate::server::db::{AuditEntry, FailureKeys, Failures};

/// A password to check and what to say in the audit log if it is wrong.
pub struct Attempt<'a> {
    /// What the person typed as their email (the account counted; at most 100 characters
    /// reach the audit log).
    pub email: &'a str,
    pub address: Option<IpAddr>,
    /// The audit action of a failure (`sign_in_failed`, `change_password_failed`).
    pub action: &'static str,
    pub actor: Option<crate::model::UserId>,
    /// The account the email names, if any.
    pub subject: Option<i64>,
}

fn refused(r: Refused) -> AppError {
    AppError::TooManyRequests(r.to_string())
}

fn unix(state: &AppState) -> i64 {
    state.clock.now().timestamp()
}

/// Whether `password` matches `hash`, within the limits; a wrong one is counted (and audited
/// when it is the account's first in its window, or the one that reaches a limit).
pub async fn check(
    state: &AppState,
    attempt: &Attempt<'_>,
    password: &str,
    hash: String,
) -> Result<bool, AppError> {
    let limits = &state.accounts.sign_in;
    limits.attempt(attempt.address).map_err(refused)?;
    let keys = failure_keys(attempt.email, attempt.address);
    let window = limits.window.as_secs().max(1) as i64;
    let counted = state
        .db
        .sign_in_failures(&keys, unix(state), window)
        .await?;
    let delay = limits.judge(&counted, unix(state)).map_err(refused)?;
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let password = password.to_string();
    let right = limits
        .run(move || verify_password(&password, &hash))
        .await
        .map_err(refused)?;
    if right {
        state.db.forget_sign_in_pair(&keys).await?;
    } else {
        let after = state
            .db
            .note_sign_in_failure(&keys, unix(state), window)
            .await?;
        audit_failure(state, attempt, &keys, &after).await?;
    }
    Ok(right)
}

/// Audits a failure when it is the first of its account's window, or the one at which the
/// pair or the address is refused from then on.
async fn audit_failure(
    state: &AppState,
    attempt: &Attempt<'_>,
    keys: &FailureKeys,
    after: &Failures,
) -> Result<(), AppError> {
    let limits = &state.accounts.sign_in;
    let limited = after.pair.failures == limits.attempts
        || after.address.failures == limits.attempts * super::limits::ADDRESS_FACTOR;
    if after.account.failures != 1 && !limited {
        return Ok(());
    }
    let typed: String = attempt.email.trim().chars().take(100).collect();
    let mut detail = format!("{typed} from {}", keys.address);
    if limited {
        detail.push_str(&format!(
            ": {} failures from this address for this account, {} from the address; refused until the window ends",
            after.pair.failures, after.address.failures
        ));
    }
    let entry = AuditEntry::new(
        state.clock.now(),
        attempt.actor,
        attempt.action,
        "staff_user",
        attempt.subject,
    )
    .detail(detail);
    state.db.audit(&entry).await?;
    Ok(())
}

/// Forgets the failure counters whose window has passed; every 15 s, on every instance
/// (each delete is idempotent), with the in-memory address guard's idle keys.
pub fn spawn_sweeper(state: AppState) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(15)).await;
            let limits = &state.accounts.sign_in;
            limits.forget_idle();
            let window = limits.window.as_secs().max(1) as i64;
            if let Err(e) = state.db.sweep_sign_in_failures(unix(&state) - window).await {
                tracing::warn!(error = ?e, "sweeping the sign-in failure counters failed");
            }
        }
    });
}
