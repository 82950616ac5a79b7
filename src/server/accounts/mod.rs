//! Signing in and out, staff accounts, and what accounts keep in memory (sign-in limits,
//! one-time notices).

use chrono::TimeDelta;

pub mod address;
pub mod audit;
pub mod auth;
pub mod guard;
pub mod limits;
pub mod link;
pub mod password;
pub mod staff;

use crate::model::AppError;
use crate::model::CurrentUser;
use crate::server::AppState;
use crate::server::accounts::auth::{hash_password, new_session_token, token_hash};
use crate::server::db::AuditEntry;
use crate::server::timefmt;

/// What the accounts keep in this process: the sign-in limits, and notices shown once to the
/// admin they are for (a password link must not travel in a URL, where logs keep it).
pub struct Accounts {
    pub sign_in: limits::SignInLimits,
    flashes: std::sync::Mutex<std::collections::HashMap<String, Flash>>,
}

/// A notice for one person, with a link to pass on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flash {
    pub user: crate::model::UserId,
    pub message: String,
    pub link: String,
    at: std::time::Instant,
}

/// How long a notice waits to be shown.
const FLASH_LIFETIME: std::time::Duration = std::time::Duration::from_secs(600);

impl Accounts {
    pub fn new(sign_in_attempts: u32, sign_in_window: std::time::Duration) -> Self {
        Accounts {
            sign_in: limits::SignInLimits::new(sign_in_attempts, sign_in_window),
            flashes: Default::default(),
        }
    }

    /// Keeps a notice for `user`; the id to fetch it by, once.
    pub fn put_flash(&self, user: crate::model::UserId, message: String, link: String) -> String {
        let id = new_session_token();
        let mut flashes = self.flashes.lock().expect("flashes lock");
        flashes.retain(|_, f| f.at.elapsed() < FLASH_LIFETIME);
        let at = std::time::Instant::now();
        flashes.insert(
            id.clone(),
            Flash {
                user,
                message,
                link,
                at,
            },
        );
        id
    }

    /// The notice `id` if it is `user`'s and still fresh; it is gone afterwards.
    pub fn take_flash(&self, user: crate::model::UserId, id: &str) -> Option<Flash> {
        let mut flashes = self.flashes.lock().expect("flashes lock");
        match flashes.get(id) {
            Some(f) if f.user == user && f.at.elapsed() < FLASH_LIFETIME => flashes.remove(id),
            _ => None,
        }
    }
}

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
    address: Option<std::net::IpAddr>,
) -> Result<(String, CurrentUser), AppError> {
    let wrong = || AppError::BadRequest("Wrong email or password.".into());
    if email.trim().is_empty() || password.is_empty() {
        return Err(AppError::BadRequest(
            "Enter your email and password.".into(),
        ));
    }
    // Over-long input is refused before any limit, hash or query sees it.
    if email.len() > limits::MAX_EMAIL_BYTES || password.len() > password::MAX_BYTES {
        return Err(wrong());
    }
    let record = state.db.user_by_email(email).await?;
    // Unknown, invited (no password yet) and deactivated accounts are verified against a
    // decoy, so all wrong answers take as long and read the same.
    let hash = record
        .as_ref()
        .filter(|u| u.deactivated_at.is_none() && !u.password_hash.is_empty())
        .map(|u| u.password_hash.clone())
        .unwrap_or_else(|| decoy_hash().to_string());
    let attempt = guard::Attempt {
        email,
        address,
        action: "sign_in_failed",
        actor: None,
        subject: record.as_ref().map(|r| r.id),
    };
    let ok = guard::check(state, &attempt, password, hash).await?;
    let now = state.clock.now();
    let record = match (record, ok) {
        (Some(r), true) if r.deactivated_at.is_none() => r,
        _ => return Err(wrong()),
    };
    let mut user = record.to_current().ok_or_else(|| {
        AppError::internal(anyhow::anyhow!("user {} has an unknown role", record.id))
    })?;
    if let Some(tz) = time_zone.filter(|tz| timefmt::is_zone(tz) && *tz != user.time_zone) {
        state.db.set_user_time_zone(user.id, tz).await?;
        user.time_zone = tz.to_string();
    }
    let token = new_session_token();
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
/// Refused (the list instead): anything not starting with one `/`, a second `/` or `\\`
/// after it, any backslash or control character (each also percent-encoded, which some
/// browsers decode), raw whitespace (a header cannot carry it), and the sign-in page itself.
pub fn safe_next(next: Option<&str>) -> String {
    let ok = |n: &str| {
        let decoded: String =
            form_urlencoded::parse(format!("x={}", n.replace('+', "%2B")).as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
        let shape = |p: &str| {
            p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.chars().any(char::is_control)
                && !p.starts_with("/login")
        };
        shape(n) && shape(&decoded) && !n.chars().any(char::is_whitespace) && n.len() <= 2048
    };
    match next {
        Some(n) if ok(n) => n.to_string(),
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
        for evil in [
            "/\t/evil.example",
            "/%09/evil.example",
            "/%5Cevil.example",
            "/%2F/evil.example",
            "/%2f%2fevil.example",
            "\n",
            "/\n",
            "/a\rb",
            "/%0A",
            "/%00",
            " /x",
        ] {
            assert_eq!(safe_next(Some(evil)), "/", "{evil:?}");
        }
        assert_eq!(
            safe_next(Some("/customers?tag=VIP%20list")),
            "/customers?tag=VIP%20list"
        );
    }
}
