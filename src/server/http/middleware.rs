//! What every request passes through: the sign-in check for pages and the security headers.

use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::model::list_query::encode_component;
use crate::server::AppState;
use crate::server::accounts::auth::user_for_headers;

/// Page requests without a valid session go to the sign-in page (which then comes back).
/// Server functions check roles themselves; static files are public.
pub async fn require_sign_in(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let is_page = req.method() == Method::GET
        && !path.starts_with("/pkg/")
        && !path.starts_with("/api/")
        // Providers call webhooks (Meta's verification handshake is a GET).
        && !path.starts_with("/webhooks/")
        // Customers follow unsubscribe links from their mail; the link itself is the permission.
        && !path.starts_with("/unsubscribe/")
        // A password link works signed out: the link itself is the permission.
        && path != "/password"
        && !path.contains('.');
    if !is_page {
        return next.run(req).await;
    }
    let user = match user_for_headers(&state, req.headers()).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = ?e, "session lookup failed");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                "Herald cannot reach its database right now. Please try again in a moment.",
            )
                .into_response();
        }
    };
    match (path, user) {
        ("/login", Some(_)) => Redirect::to("/").into_response(),
        ("/login", None) | (_, Some(_)) => next.run(req).await,
        (_, None) => {
            let wanted = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/");
            let to = if wanted == "/" {
                "/login".to_string()
            } else {
                format!("/login?next={}", encode_component(wanted))
            };
            Redirect::to(&to).into_response()
        }
    }
}

/// A state change comes from Herald's own pages. Any request but GET, HEAD and OPTIONS is
/// refused (403) unless its `Origin` is this site's; without `Origin`, unless
/// `Sec-Fetch-Site` says same-origin; without both, unless its `Referer` is on this site.
/// "This site" is the configured `public-url` alone when one is set (a forged `Host` counts
/// for nothing), else the address Herald serves on or the request's own `Host`. Provider
/// webhooks (signed) and
/// unsubscribe links (the signed link is the permission; mail clients post RFC 8058's
/// one-click from their servers) are exempt.
pub async fn same_origin(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let exempt = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        || path.starts_with("/webhooks/")
        || path.starts_with("/unsubscribe/");
    let site = Site {
        configured: state.config.public_url.as_deref(),
        served: &state.links.public_url,
    };
    if exempt || from_this_site(req.headers(), site) {
        return next.run(req).await;
    }
    tracing::warn!(path, "refused a cross-site or unattributed state change");
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "Refused: this request did not come from Herald's own pages.",
    )
        .into_response()
}

/// GETs that export personal data or change what staff see (`*.csv`, the chat's live stream,
/// which marks the chat seen) answer only a navigation from Herald's own pages or one the
/// person typed or bookmarked (`Sec-Fetch-Site: same-origin` or `none`), not a link or an
/// image on another site. Browsers too old to send the header are let through.
pub async fn no_cross_site_reads(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let guarded = req.method() == Method::GET
        && (path.ends_with(".csv")
            || path == "/live"
            || (path.starts_with("/customers/") && path.ends_with("/events")));
    if guarded && !from_here(req.headers()) {
        tracing::warn!(path, "refused a cross-site export or live read");
        return (
            StatusCode::FORBIDDEN,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "Refused: open this from Herald's own pages.",
        )
            .into_response();
    }
    next.run(req).await
}

/// Whether a GET is a navigation from Herald's own pages or one the person typed or
/// bookmarked (`Sec-Fetch-Site: same-origin` or `none`); a browser too old to say counts.
pub fn from_here(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok())
        .is_none_or(|s| s == "same-origin" || s == "none")
}

/// `scheme://host[:port]` of a URL (what an `Origin` header carries).
fn origin_of(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    let host_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    (!scheme.is_empty() && host_len > 0).then(|| &url[..scheme.len() + 3 + host_len])
}

/// Where Herald's pages are: the configured public URL, if any, and the one it serves on.
#[derive(Debug, Clone, Copy)]
pub struct Site<'a> {
    pub configured: Option<&'a str>,
    pub served: &'a str,
}

/// Whether the request's headers say it came from this site (see [`same_origin`]).
pub fn from_this_site(headers: &axum::http::HeaderMap, site: Site<'_>) -> bool {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let host = text("host");
    let ours = |origin: &str| match site.configured {
        Some(public) => origin_of(public) == Some(origin),
        None => {
            origin_of(site.served) == Some(origin)
                || host.is_some_and(|h| {
                    origin
                        .strip_prefix("https://")
                        .or_else(|| origin.strip_prefix("http://"))
                        == Some(h)
                })
        }
    };
    if let Some(origin) = text("origin") {
        return ours(origin);
    }
    if let Some(site) = text("sec-fetch-site") {
        return site == "same-origin";
    }
    text("referer").and_then(origin_of).is_some_and(ours)
}

/// The Content-Security-Policy: scripts from this site only (WASM compiled by the browser
/// needs 'wasm-unsafe-eval'), inline ones only with the page's `nonce`; no plugins, no
/// framing, forms and connections to this site only. Styles may be inline (the views set a
/// few style attributes; styles cannot run code).
pub fn csp(nonce: Option<&str>) -> String {
    let inline = nonce.map(|n| format!(" 'nonce-{n}'")).unwrap_or_default();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'{inline}; \
         style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' blob:; \
         connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// This request's CSP nonce, chosen before any handler runs: pages render their inline
/// scripts with it ([`provide_page_nonce`]) and [`security_headers`] puts it in their policy,
/// so the two come from one value whatever the handler does with its response.
#[derive(Debug, Clone)]
pub struct PageNonce(pub String);

/// Provides this request's [`PageNonce`] to the page being rendered, in place of the one the
/// integration made up (Leptos's `use_nonce`, which the hydration scripts read).
pub fn provide_page_nonce() {
    use leptos::prelude::{provide_context, use_context};
    if let Some(nonce) = use_context::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<PageNonce>().map(|n| n.0.clone()))
    {
        provide_context(leptos::nonce::Nonce::from_value(nonce));
    }
}

/// Headers on every response: a CSP (an HTML page's with its nonce), no sniffing, no
/// framing, HSTS when served over HTTPS, and `Cache-Control: no-store` on everything but the
/// static bundle, so signed-in pages, attachments and exports stay out of shared caches and
/// the browser's back-button cache after sign-out.
pub async fn security_headers(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let static_file = req.uri().path().starts_with("/pkg/");
    let nonce = leptos::nonce::Nonce::new().to_string();
    req.extensions_mut().insert(PageNonce(nonce.clone()));
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    // Responses that are not pages (server functions, files) get the policy without a
    // nonce, built once.
    static DEFAULT_CSP: std::sync::LazyLock<Option<HeaderValue>> =
        std::sync::LazyLock::new(|| HeaderValue::from_str(&csp(None)).ok());
    let page = h
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    let policy = if page {
        HeaderValue::from_str(&csp(Some(&nonce))).ok()
    } else {
        DEFAULT_CSP.clone()
    };
    if let Some(v) = policy {
        h.insert(header::CONTENT_SECURITY_POLICY, v);
    }
    if !static_file {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    if state.config.secure() {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("x-frame-options", HeaderValue::from_static("DENY"));
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn with_a_public_url_set_a_forged_host_counts_for_nothing() {
        let site = Site {
            configured: Some("https://herald.example.com"),
            served: "http://0.0.0.0:3000",
        };
        let forged = headers(&[("host", "evil.example"), ("origin", "https://evil.example")]);
        assert!(!from_this_site(&forged, site));
        let real = headers(&[
            ("host", "evil.example"),
            ("origin", "https://herald.example.com"),
        ]);
        assert!(from_this_site(&real, site));
    }

    #[test]
    fn only_this_sites_pages_may_change_things() {
        let public = Site {
            configured: None,
            served: "https://herald.example.com",
        };
        let yes = [
            headers(&[("origin", "https://herald.example.com")]),
            headers(&[
                ("host", "127.0.0.1:3000"),
                ("origin", "http://127.0.0.1:3000"),
            ]),
            headers(&[("sec-fetch-site", "same-origin")]),
            headers(&[("referer", "https://herald.example.com/customers?x=1")]),
        ];
        for h in yes {
            assert!(from_this_site(&h, public), "{h:?}");
        }
        let no = [
            headers(&[]),
            headers(&[("origin", "https://evil.example")]),
            headers(&[("origin", "null")]),
            headers(&[("origin", "https://herald.example.com.evil.example")]),
            headers(&[
                ("host", "127.0.0.1:3000"),
                ("origin", "http://127.0.0.1:3001"),
            ]),
            // Origin wins over a forged-looking Referer.
            headers(&[
                ("origin", "https://evil.example"),
                ("referer", "https://herald.example.com/"),
            ]),
            headers(&[("sec-fetch-site", "cross-site")]),
            headers(&[("sec-fetch-site", "same-site")]),
            headers(&[(
                "referer",
                "https://evil.example/https://herald.example.com/",
            )]),
        ];
        for h in no {
            assert!(!from_this_site(&h, public), "{h:?}");
        }
    }
}
