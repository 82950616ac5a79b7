//! Passwords, sessions and the role check every server function goes through.

use argon2::Argon2;
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use leptos::prelude::use_context;
use sha2::{Digest, Sha256};

use crate::model::AppError;
use crate::model::{CurrentUser, Role};
use crate::server::AppState;

/// Name of the session cookie (HttpOnly, SameSite=Lax) over plain HTTP.
pub const SESSION_COOKIE: &str = "herald_session";
/// Its name over HTTPS: the `__Host-` prefix makes the browser keep it only if it is
/// `Secure`, for this host alone and the whole path, so no sibling subdomain can plant one.
pub const SECURE_SESSION_COOKIE: &str = "__Host-herald_session";

/// The session cookie's name: [`SECURE_SESSION_COOKIE`] when Herald is served over HTTPS.
pub fn cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

/// An argon2id hash (PHC string) of `password` with a fresh salt.
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password failed: {e}"))
}

/// Whether `password` matches the stored hash (false for a malformed hash).
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A new random session token (256 bits, hex). Only its hash is stored.
pub fn new_session_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

/// What the database keeps of a token: a stolen database copy cannot be replayed as a cookie.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The value of the request's cookie `name`, if it sent one.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The session token in the request's cookies (under the name `secure` calls for), if any.
pub fn session_token(headers: &HeaderMap, secure: bool) -> Option<String> {
    cookie(headers, cookie_name(secure))
        .filter(|v| v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The Set-Cookie value that starts a session.
pub fn session_cookie(token: &str, max_age_secs: i64, secure: bool) -> String {
    format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{}",
        cookie_name(secure),
        if secure { "; Secure" } else { "" }
    )
}

/// The Set-Cookie value that ends a session.
pub fn clear_session_cookie(secure: bool) -> String {
    session_cookie("", 0, secure)
}

/// The signed-in user for a request's headers, if the session is valid.
pub async fn user_for_headers(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<CurrentUser>, crate::server::db::DbError> {
    let Some(token) = session_token(headers, state.config.secure()) else {
        return Ok(None);
    };
    let now = state.clock.now();
    let hash = token_hash(&token);
    let user = state
        .db
        .session_user(&hash, now, state.config.session_idle())
        .await?;
    // Its use is noted once a minute at most (a write); failing to note it fails nothing.
    if let Some(seen) = user.as_ref().and_then(|u| u.session_seen_at)
        && now - seen > chrono::Duration::minutes(1)
        && let Err(e) = state.db.touch_session(&hash, now).await
    {
        tracing::warn!(error = ?e, "noting a session's use failed");
    }
    Ok(user.and_then(|u| u.to_current()))
}

/// Whether the session behind `token` still holds (not signed out, expired, idle or
/// deactivated); a stream that outlives its request checks this as it goes.
pub async fn session_holds(state: &AppState, token: &str) -> bool {
    let now = state.clock.now();
    let found = state
        .db
        .session_user(&token_hash(token), now, state.config.session_idle())
        .await;
    matches!(found, Ok(Some(_)))
}

/// Whether `user` may do something that `allowed` roles may do.
pub fn check_role(user: Option<CurrentUser>, allowed: &[Role]) -> Result<CurrentUser, AppError> {
    match user {
        None => Err(AppError::Unauthorized),
        Some(u) if allowed.contains(&u.role) => Ok(u),
        Some(u) => Err(AppError::Forbidden(format!(
            "Your role ({}) is not allowed to do this; it needs: {}.",
            u.role,
            allowed
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(" or ")
        ))),
    }
}

/// The application state inside a server function or page render.
pub fn state() -> Result<AppState, AppError> {
    use_context::<AppState>()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("AppState missing from context")))
}

/// The check every server function starts with: the caller is signed in and has one of
/// `allowed` roles. Sets the response status (401/403) when not.
pub async fn require_role(allowed: &[Role]) -> Result<CurrentUser, AppError> {
    let state = state()?;
    let parts = use_context::<Parts>()
        .ok_or_else(|| AppError::internal(anyhow::anyhow!("request parts missing from context")))?;
    let user = user_for_headers(&state, &parts.headers).await?;
    check_role(user, allowed).map_err(AppError::with_status)
}

/// Every role: for what any signed-in person may do.
pub const ANY_ROLE: &[Role] = &Role::ALL;

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn user(role: Role) -> CurrentUser {
        CurrentUser {
            id: crate::model::UserId(1),
            email: "a@b.c".into(),
            name: "A".into(),
            role,
            time_zone: "UTC".into(),
        }
    }

    #[test]
    fn role_check_refuses_anonymous_and_wrong_roles() {
        assert_eq!(check_role(None, ANY_ROLE), Err(AppError::Unauthorized));
        assert!(check_role(Some(user(Role::Manager)), ANY_ROLE).is_ok());
        let e = check_role(Some(user(Role::Manager)), &[Role::Admin]).unwrap_err();
        assert_eq!(e.status(), 403);
        assert!(e.to_string().contains("manager"), "{e}");
        assert!(check_role(Some(user(Role::Admin)), &[Role::Admin]).is_ok());
        assert!(check_role(Some(user(Role::Staff)), &[Role::Admin]).is_err());
    }

    #[test]
    fn passwords_verify_only_against_their_own_hash() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("correct horse!", &h));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn session_token_is_read_from_cookies_and_must_look_like_one() {
        let token = new_session_token();
        assert_eq!(token.len(), 64);
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            HeaderValue::from_str(&format!("theme=dark; {SESSION_COOKIE}={token}; x=y")).unwrap(),
        );
        assert_eq!(session_token(&h, false), Some(token.clone()));
        assert_eq!(
            session_token(&h, true),
            None,
            "over HTTPS only the __Host- cookie counts"
        );
        let mut h = HeaderMap::new();
        h.insert(
            "cookie",
            HeaderValue::from_static("herald_session=../../etc/passwd"),
        );
        assert_eq!(session_token(&h, false), None);
        assert_ne!(token_hash(&token), token);
    }

    #[test]
    fn session_cookie_is_http_only_and_same_site() {
        let c = session_cookie("abc", 60, false);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && !c.contains("Secure"));
        let secure = session_cookie("abc", 60, true);
        assert!(
            secure.starts_with("__Host-herald_session=abc; Path=/;")
                && secure.ends_with("; Secure")
        );
        assert!(
            !secure.contains("Domain"),
            "__Host- cookies carry no Domain"
        );
        assert!(clear_session_cookie(false).contains("Max-Age=0"));
    }
}
