//! Plain HTML forms post straight to server functions. When one fails, the person should land
//! back on the page they came from with the message shown, not on a JSON error.

/// The page a form was posted from (path and query of the Referer), if it is on this site.
#[cfg(feature = "ssr")]
fn referer_path() -> Option<String> {
    let parts = leptos::prelude::use_context::<http::request::Parts>()?;
    let referer = parts.headers.get(http::header::REFERER)?.to_str().ok()?;
    let after_scheme = referer.split_once("://").map(|(_, r)| r).unwrap_or(referer);
    let path = &after_scheme[after_scheme.find('/')?..];
    (path.starts_with('/') && !path.starts_with("//")).then(|| path.to_string())
}

pub use crate::model::list_query::with_param;

/// Whether this request is an ordinary HTML form submission (a browser navigation).
#[cfg(feature = "ssr")]
pub fn is_plain_form_post() -> bool {
    leptos::prelude::use_context::<http::request::Parts>()
        .and_then(|p| {
            p.headers
                .get(http::header::ACCEPT)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.contains("text/html"))
        })
        .unwrap_or(false)
}

/// Sends the browser back to the page it posted from with `?error=…`, or to `fallback`.
#[cfg(feature = "ssr")]
pub fn back_with_error(fallback: &str, error: &crate::api::AppError) {
    let to = referer_path().unwrap_or_else(|| fallback.to_string());
    leptos_axum::redirect(&with_param(&to, "error", &error.to_string()));
}

/// For a plain form post about broadcast `id`'s results: back to them with `notice(n)`, or with
/// the error; other callers read `result` itself.
#[cfg(feature = "ssr")]
pub fn answer_on_results(
    id: i64,
    result: &Result<i64, crate::api::AppError>,
    notice: impl FnOnce(i64) -> String,
) {
    if !is_plain_form_post() {
        return;
    }
    match result {
        Err(e) => back_with_error(&format!("/broadcasts/{id}"), e),
        Ok(n) => leptos_axum::redirect(&format!(
            "/broadcasts/{id}?notice={}",
            crate::model::list_query::encode_component(&notice(*n))
        )),
    }
}
