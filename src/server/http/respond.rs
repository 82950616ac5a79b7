//! Answers a plain form post gives: back to a page of this site, with a notice or an error
//! in its query (encoded here, never by hand), which the page shows.

use axum::response::{IntoResponse, Redirect, Response};

use crate::model::list_query::with_param;

/// A redirect to `path` (a path on this site, with or without a query).
pub fn to(path: &str) -> Response {
    Redirect::to(path).into_response()
}

/// Back to `path` with `?notice=…`.
pub fn notice(path: &str, message: &str) -> Response {
    to(&with_param(path, "notice", message))
}

/// Back to `path` with `?error=…`.
pub fn error(path: &str, message: &str) -> Response {
    to(&with_param(path, "error", message))
}

/// Back to `path` with the outcome: a notice for `Ok`, an error for `Err`.
pub fn outcome(path: &str, result: Result<String, String>) -> Response {
    match result {
        Ok(m) => notice(path, &m),
        Err(m) => error(path, &m),
    }
}

/// `path` with each of `fields` added to its query (repeated keys kept), for a form that
/// shows again what was typed.
pub fn with_fields<'a>(path: &str, fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    use crate::model::list_query::encode_component;
    let mut url = path.to_string();
    for (k, v) in fields {
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("{k}={}", encode_component(v)));
    }
    url
}
