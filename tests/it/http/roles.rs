//! The role matrix: every route and server function, asked by someone signed out, staff, an
//! admin, a manager and a deactivated account, is allowed or refused as its entry says. The
//! routes come from the application itself (its pages, its server functions) and from the
//! HTTP modules' route tables, so a route added without an entry here fails this test.
//!
//! "Refused" is 401 or 403, or for a page a redirect to the sign-in page; anything else (a
//! page, a redirect elsewhere, a 404 for an unknown id, a 409) means the request got past
//! the role check.

use super::*;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    SignedOut,
    Staff,
    Admin,
    Manager,
    Deactivated,
}

const EVERYONE: [Who; 5] = [
    Who::SignedOut,
    Who::Staff,
    Who::Admin,
    Who::Manager,
    Who::Deactivated,
];

/// Who a route lets through.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Anyone (sign-in, sign-out, password links, unsubscribe links): the link or the form
    /// is the permission.
    Public,
    /// Providers' webhooks: no session opens them, only the provider's signature (which these
    /// requests lack), so everyone here is refused.
    Signature,
    /// Any signed-in role.
    Signed,
    /// Staff and admins (they write; managers read).
    Editors,
    /// Admins and managers (the audit log).
    Readers,
    Admins,
}

impl Rule {
    fn allows(self, who: Who) -> bool {
        match (self, who) {
            (Rule::Public, _) => true,
            (Rule::Signature, _) => false,
            (_, Who::SignedOut | Who::Deactivated) => false,
            (Rule::Signed, _) => true,
            (Rule::Editors, w) => matches!(w, Who::Staff | Who::Admin),
            (Rule::Readers, w) => matches!(w, Who::Admin | Who::Manager),
            (Rule::Admins, w) => w == Who::Admin,
        }
    }
}

/// One route: its method and pattern as the router knows it, who may use it, and a request
/// body that gets past parsing (so a refusal, if any, is the role check's).
struct Entry {
    method: &'static str,
    pattern: &'static str,
    rule: Rule,
    body: &'static str,
}

const fn e(method: &'static str, pattern: &'static str, rule: Rule, body: &'static str) -> Entry {
    Entry {
        method,
        pattern,
        rule,
        body,
    }
}

/// Every route. `{id}` stands for a broadcast's or customer's id (1 exists in the demo data).
const TABLE: &[Entry] = &[
    // Pages.
    e("GET", "/", Rule::Signed, ""),
    e("GET", "/broadcasts/new", Rule::Signed, ""),
    e("GET", "/broadcasts/{id}/edit", Rule::Signed, ""),
    e("GET", "/broadcasts/{id}", Rule::Signed, ""),
    e("GET", "/customers", Rule::Signed, ""),
    e("GET", "/dashboard", Rule::Signed, ""),
    e("GET", "/customers/import", Rule::Signed, ""),
    e("GET", "/customers/import/{id}", Rule::Signed, ""),
    e("GET", "/customers/{id}", Rule::Signed, ""),
    e("GET", "/customers/{id}/chat", Rule::Signed, ""),
    e("GET", "/labels", Rule::Signed, ""),
    // The channels page tells non-admins that admins manage channels (its data is admins').
    e("GET", "/channels", Rule::Signed, ""),
    e("GET", "/staff", Rule::Admins, ""),
    e("GET", "/settings", Rule::Admins, ""),
    e("GET", "/audit", Rule::Readers, ""),
    e("GET", "/account", Rule::Signed, ""),
    e("GET", "/password", Rule::Public, ""),
    e("GET", "/login", Rule::Public, ""),
    // Server functions.
    e("POST", "/api/me", Rule::Public, ""),
    e(
        "POST",
        "/api/login",
        Rule::Public,
        "email=nobody%40herald.test&password=wrong",
    ),
    e("POST", "/api/logout", Rule::Public, ""),
    e("POST", "/api/broadcasts/list", Rule::Signed, ""),
    e(
        "POST",
        "/api/broadcasts/set-paused",
        Rule::Admins,
        "id=1&paused=false",
    ),
    e(
        "POST",
        "/api/broadcasts/cancel",
        Rule::Editors,
        "id=999999&confirmed=yes",
    ),
    e(
        "POST",
        "/api/broadcasts/send-missed",
        Rule::Editors,
        "id=999999",
    ),
    e("POST", "/api/broadcasts/results", Rule::Signed, "id=1"),
    e("POST", "/api/broadcasts/recipients", Rule::Signed, "id=1"),
    e(
        "POST",
        "/api/broadcasts/retry-failed",
        Rule::Editors,
        "id=999999",
    ),
    e(
        "POST",
        "/api/broadcasts/resend-unknown",
        Rule::Editors,
        "id=999999&confirmed=yes",
    ),
    e("POST", "/api/broadcasts/dashboard", Rule::Signed, ""),
    e("GET", "/live", Rule::Signed, ""),
    e("POST", "/api/broadcasts/wizard", Rule::Signed, "step=1"),
    e(
        "POST",
        "/api/broadcasts/audience-preview",
        Rule::Editors,
        r#"{"rule":{"match":"all","conditions":[]}}"#,
    ),
    e("POST", "/api/channels/list", Rule::Signed, ""),
    e("POST", "/api/chat/view", Rule::Signed, "id=1"),
    e(
        "POST",
        "/api/chat/reply",
        Rule::Editors,
        "customer_id=999999&body=Hi",
    ),
    e(
        "POST",
        "/api/chat/assign",
        Rule::Editors,
        "customer_id=999999",
    ),
    e("POST", "/api/customers/list", Rule::Signed, ""),
    e("POST", "/api/customers/edit", Rule::Signed, "id=1"),
    e("POST", "/api/customers/import", Rule::Signed, ""),
    e("POST", "/api/labels/list", Rule::Signed, ""),
    e("POST", "/api/staff/page", Rule::Admins, ""),
    e("POST", "/api/settings/page", Rule::Admins, ""),
    e("POST", "/api/broadcasts/cost", Rule::Signed, "id=1"),
    e("POST", "/api/password/opened", Rule::Public, ""),
    e(
        "POST",
        "/api/audit/page",
        Rule::Readers,
        "query[action]=label",
    ),
    // Plain routes.
    // An unknown kind: refused, nothing recorded.
    e("POST", "/customers/{id}/consent", Rule::Editors, "kind=fax"),
    e("POST", "/staff", Rule::Admins, "action=reset&id=999999"),
    // A refused form (an unknown zone): nothing changes whoever posts it.
    e(
        "POST",
        "/settings",
        Rule::Admins,
        "time_zone=Mars%2FOlympus",
    ),
    e(
        "POST",
        "/account/password",
        Rule::Signed,
        "current=x&new=y&again=y",
    ),
    e("POST", "/password", Rule::Public, "new=x&again=x"),
    e("POST", "/password/link", Rule::Public, "link=not-a-link"),
    e("GET", "/audit.csv", Rule::Readers, ""),
    e("POST", "/attachments", Rule::Editors, ""),
    e("GET", "/attachments/{id}", Rule::Signed, ""),
    e(
        "POST",
        "/broadcasts/wizard",
        Rule::Editors,
        "step=1&go=draft",
    ),
    e("POST", "/broadcasts/{id}/copy", Rule::Editors, ""),
    // An unknown decision: refused, nothing changes.
    e(
        "POST",
        "/broadcasts/{id}/approval",
        Rule::Admins,
        "decision=maybe",
    ),
    e("POST", "/broadcasts/{id}/undo", Rule::Editors, ""),
    // An unknown outcome: refused, nothing made.
    e(
        "POST",
        "/broadcasts/{id}/follow-up",
        Rule::Editors,
        "outcome=everyone",
    ),
    e("GET", "/broadcasts/{id}/recipients.csv", Rule::Signed, ""),
    e("POST", "/channels", Rule::Admins, "action=toggle&id=999999"),
    e("GET", "/customers/{id}/events", Rule::Signed, ""),
    e("GET", "/customers/export.csv", Rule::Signed, ""),
    e("POST", "/customers/tags", Rule::Editors, "action=add&tag=X"),
    e("POST", "/customers/{id}/save", Rule::Editors, "name="),
    e("POST", "/customers/import", Rule::Editors, ""),
    e(
        "POST",
        "/customers/import/{id}",
        Rule::Editors,
        "action=discard",
    ),
    e(
        "POST",
        "/labels",
        Rule::Editors,
        "kind=nothing&action=create&name=x",
    ),
    e("GET", "/unsubscribe/{token}", Rule::Public, ""),
    e("POST", "/unsubscribe/{token}", Rule::Public, ""),
    e(
        "GET",
        "/webhooks/whatsapp/{channel_id}",
        Rule::Signature,
        "",
    ),
    e(
        "POST",
        "/webhooks/whatsapp/{channel_id}",
        Rule::Signature,
        "{}",
    ),
    e("POST", "/webhooks/sms/{channel_id}", Rule::Signature, ""),
    e(
        "POST",
        "/webhooks/telegram/{channel_id}",
        Rule::Signature,
        "{}",
    ),
    e(
        "POST",
        "/webhooks/sandbox/{channel_id}",
        Rule::Signature,
        "{}",
    ),
];

/// The answer's status and headers, and as much of its body as comes within 3 s (an event
/// stream, once allowed, never ends).
async fn answer(app: &Router, req: Request<Body>) -> Reply {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let res = app.clone().oneshot(req).await.unwrap();
    let (status, headers) = (res.status(), res.headers().clone());
    let body =
        match tokio::time::timeout(std::time::Duration::from_secs(3), res.into_body().collect())
            .await
        {
            Ok(Ok(b)) => String::from_utf8_lossy(&b.to_bytes()).into_owned(),
            _ => String::new(),
        };
    Reply {
        status,
        headers,
        body,
    }
}

/// The routes the HTTP modules declare (`.route("/path", get(…).post(…))`), read from their
/// source, as (method, pattern).
fn declared_routes() -> BTreeSet<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/server/http");
    let mut out = BTreeSet::new();
    for file in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
        let mut rest = text.as_str();
        while let Some(at) = rest.find(".route(") {
            rest = &rest[at + ".route(".len()..];
            let open = rest.find('"').unwrap();
            let close = open + 1 + rest[open + 1..].find('"').unwrap();
            let pattern = rest[open + 1..close].to_string();
            // The handlers: up to the next route, or the end of the builder.
            let tail = &rest[close..];
            let end = [tail.find(".route("), tail.find("\n}")]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(tail.len());
            let handlers = &tail[..end];
            for (call, method) in [("get(", "GET"), ("post(", "POST")] {
                let found = handlers.match_indices(call).any(|(i, _)| {
                    i == 0
                        || !handlers.as_bytes()[i - 1].is_ascii_alphanumeric()
                            && handlers.as_bytes()[i - 1] != b'_'
                });
                if found {
                    out.insert((method.to_string(), pattern.clone()));
                }
            }
        }
    }
    out
}

/// Every route the application serves, as (method, pattern).
fn every_route() -> BTreeSet<(String, String)> {
    let mut all = declared_routes();
    for page in herald::server::http::page_routes() {
        all.insert(("GET".into(), page.path().to_string()));
    }
    for (path, method) in leptos::server_fn::axum::server_fn_paths() {
        all.insert((method.to_string(), path.to_string()));
    }
    all
}

/// Leptos writes path parameters as `:id`, axum as `{id}`.
fn normalised(pattern: &str) -> String {
    pattern
        .split('/')
        .map(|part| match part.strip_prefix(':') {
            Some(name) => format!("{{{name}}}"),
            None => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[test]
fn every_route_has_an_entry_and_every_entry_a_route() {
    let served: BTreeSet<(String, String)> = every_route()
        .into_iter()
        .map(|(m, p)| (m, normalised(&p)))
        .collect();
    let listed: BTreeSet<(String, String)> = TABLE
        .iter()
        .map(|e| (e.method.to_string(), e.pattern.to_string()))
        .collect();
    let missing: Vec<_> = served.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&served).collect();
    assert!(
        missing.is_empty() && stale.is_empty(),
        "routes without an entry: {missing:?}; entries without a route: {stale:?}"
    );
    assert!(served.len() > 60, "{} routes found", served.len());
}

fn request(entry: &Entry, cookie: Option<&str>) -> Request<Body> {
    let path = entry
        .pattern
        .replace("{id}", "1")
        .replace("{token}", "1-sms-nottherightsignature")
        .replace("{channel_id}", "1");
    let json = entry.body.starts_with('{');
    let mut b = Request::builder()
        .method(entry.method)
        .uri(&path)
        .header(header::ORIGIN, ORIGIN)
        .header(header::ACCEPT, "application/json");
    if entry.method == "POST" {
        b = b.header(
            header::CONTENT_TYPE,
            if json {
                "application/json"
            } else {
                "application/x-www-form-urlencoded"
            },
        );
    }
    if let Some(c) = cookie {
        b = b.header(header::COOKIE, c);
    }
    b.body(Body::from(entry.body)).unwrap()
}

fn refused(entry: &Entry, r: &Reply) -> bool {
    let to_sign_in = r
        .headers
        .get(header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .is_some_and(|l| l.starts_with("/login"));
    matches!(r.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
        || (entry.method == "GET" && r.status.is_redirection() && to_sign_in)
}

#[tokio::test]
async fn each_role_is_allowed_or_refused_as_the_table_says() {
    let app = TestApp::new().await;
    let db = &app.state.db;
    // A deactivated account: signed in, then deactivated (its sessions end at once).
    let hash = herald::server::accounts::auth::hash_password(seed::DEMO_PASSWORD).unwrap();
    let audit = herald::server::db::AuditEntry::new(
        chrono::Utc::now(),
        None,
        "create_account",
        "staff_user",
        None,
    );
    let gone = db
        .create_staff("gone@herald.test", "Gone", Role::Staff, &hash, &audit)
        .await
        .unwrap();
    let gone_cookie = sign_in(&app.router, "gone@herald.test").await;
    db.set_staff_active(gone, false, &audit).await.unwrap();

    let mut cookies = Vec::new();
    for who in EVERYONE {
        cookies.push(match who {
            Who::SignedOut => None,
            Who::Staff => Some(app.sign_in(Role::Staff).await),
            Who::Admin => Some(app.sign_in(Role::Admin).await),
            Who::Manager => Some(app.sign_in(Role::Manager).await),
            Who::Deactivated => Some(gone_cookie.clone()),
        });
    }
    let mut wrong = Vec::new();
    // Sign-out last: it ends the session the other entries use.
    let (outs, rest): (Vec<&Entry>, Vec<&Entry>) =
        TABLE.iter().partition(|e| e.pattern == "/api/logout");
    for entry in rest.into_iter().chain(outs) {
        for (who, cookie) in EVERYONE.iter().zip(&cookies) {
            let r = answer(&app.router, request(entry, cookie.as_deref())).await;
            assert!(
                r.status != StatusCode::BAD_REQUEST || !r.body.contains("not understood"),
                "{} {}: the test's body does not parse: {}",
                entry.method,
                entry.pattern,
                r.body
            );
            let expected = entry.rule.allows(*who);
            if refused(entry, &r) == expected {
                wrong.push(format!(
                    "{} {} as {who:?}: expected {}, got {} {}",
                    entry.method,
                    entry.pattern,
                    if expected { "allowed" } else { "refused" },
                    r.status,
                    r.body.chars().take(120).collect::<String>()
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    app.t.cleanup().await;
}
