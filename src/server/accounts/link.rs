//! A password link's token never travels in a URL: the link carries it in its fragment
//! (`/password#token=…`, which browsers do not send, so no proxy or server log sees it). The
//! page posts it (`POST /password/link`, by a small script, or pasted by hand without
//! JavaScript); Herald keeps it in a short-lived HttpOnly cookie for the page and the form
//! that sets the password.

use axum::http::HeaderMap;

/// How long an opened link stays open in the browser.
pub const OPEN_SECONDS: i64 = 15 * 60;

fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-herald_password_link"
    } else {
        "herald_password_link"
    }
}

/// The token in what was pasted or posted: a whole link (its `#token=` or an older
/// `?token=`), or the token alone.
pub fn token_in(link: &str) -> Option<String> {
    let link = link.trim();
    let token = match link.rfind("token=") {
        Some(at) => &link[at + "token=".len()..],
        None => link,
    };
    let token: String = token.chars().take_while(char::is_ascii_hexdigit).collect();
    (token.len() == 64).then_some(token)
}

/// The Set-Cookie value that keeps `token` open (or, with `None`, closes it).
pub fn cookie(token: Option<&str>, secure: bool) -> String {
    format!(
        "{}={}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        cookie_name(secure),
        token.unwrap_or(""),
        if token.is_some() { OPEN_SECONDS } else { 0 },
        if secure { "; Secure" } else { "" }
    )
}

/// The token of the link opened in this browser, if any.
pub fn opened_token(headers: &HeaderMap, secure: bool) -> Option<String> {
    super::auth::cookie(headers, cookie_name(secure)).and_then(|v| token_in(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_found_in_a_link_or_alone() {
        let t = "ab".repeat(32);
        assert_eq!(
            token_in(&format!("https://h.example/password#token={t}")),
            Some(t.clone())
        );
        assert_eq!(
            token_in(&format!("/password?token={t}&x=1")),
            Some(t.clone())
        );
        assert_eq!(token_in(&format!(" {t} ")), Some(t.clone()));
        assert_eq!(token_in("token=abc"), None);
        assert_eq!(token_in(""), None);
    }
}
