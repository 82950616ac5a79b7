//! Signing in and out.

use chrono::TimeDelta;

pub mod auth;

use crate::model::AppError;
use crate::model::CurrentUser;
use crate::server::AppState;
use crate::server::accounts::auth::{
    hash_password, new_session_token, token_hash, verify_password,
};
use crate::server::db::AuditEntry;
use crate::server::timefmt;

/// A hash to verify against when the email is unknown, so a wrong email takes as long as a
/// wrong password (no user enumeration by timing).
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password").unwrap_or_default())
}

/// Checks the credentials and opens a session; returns the session token (for the cookie).
pub async fn sign_in(
    state: &AppState,
    email: &str,
    password: &str,
    time_zone: Option<&str>,
) -> Result<(String, CurrentUser), AppError> {
    let wrong = || AppError::BadRequest("Wrong email or password.".into());
    if email.trim().is_empty() || password.is_empty() {
        return Err(AppError::BadRequest(
            "Enter your email and password.".into(),
        ));
    }
    if email.len() > 320 || password.len() > 1024 {
        return Err(wrong());
    }
    let record = state.db.user_by_email(email).await?;
    let hash = record
        .as_ref()
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| decoy_hash().to_string());
    let password = password.to_string();
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
        .await
        .map_err(AppError::internal)?;
    let (Some(record), true) = (record, ok) else {
        return Err(wrong());
    };
    let mut user = record.to_current().ok_or_else(|| {
        AppError::internal(anyhow::anyhow!("user {} has an unknown role", record.id))
    })?;
    if let Some(tz) = time_zone.filter(|tz| timefmt::is_zone(tz) && *tz != user.time_zone) {
        state.db.set_user_time_zone(user.id, tz).await?;
        user.time_zone = tz.to_string();
    }
    let token = new_session_token();
    let now = state.clock.now();
    let expires = now + TimeDelta::hours(state.config.session_hours);
    let audit = AuditEntry::new(now, Some(user.id), "sign_in", "staff_user", Some(user.id.0));
    state
        .db
        .create_session(&token_hash(&token), user.id, expires, &audit)
        .await?;
    Ok((token, user))
}

/// Ends the session behind `token`.
pub async fn sign_out(state: &AppState, token: &str) -> Result<(), AppError> {
    state.db.delete_session(&token_hash(token)).await?;
    Ok(())
}

/// A `next` location that is safe to redirect to: a path on this site, never another host.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.starts_with("/login") =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_never_leaves_the_site() {
        assert_eq!(safe_next(Some("/?sort=created")), "/?sort=created");
        assert_eq!(safe_next(Some("//evil.example")), "/");
        assert_eq!(safe_next(Some("https://evil.example")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(Some("/login")), "/");
        assert_eq!(safe_next(None), "/");
    }
}
