//! Channels send only to public endpoints unless the operator allows private ones: a channel
//! pointed at loopback, a cloud metadata address or a private network is refused before
//! anything is sent (names are checked as they resolve: `channels::endpoint`'s unit test),
//! and a redirect is never followed.

use std::sync::{Arc, Mutex};

use axum::routing::post;
use herald::model::channel::ChannelKind;
use herald::server::channels::sandbox::SandboxProvider;
use herald::server::channels::{Outgoing, adapter};

fn message() -> Outgoing {
    Outgoing {
        parts: Default::default(),
        subject: String::new(),
        unsubscribe_url: None,
        template: None,
        idempotency_key: "herald-delivery-1".into(),
        address: "42".into(),
        body: "Hi".into(),
        attachments: Vec::new(),
    }
}

fn channel(
    kind: ChannelKind,
    config: serde_json::Value,
    allow_private: bool,
) -> Result<Box<dyn herald::server::channels::Channel>, String> {
    adapter(
        1,
        kind,
        &config.to_string(),
        &Arc::new(SandboxProvider::default()),
        &herald::server::files::Files::local(std::path::Path::new("data")),
        allow_private,
        "http://127.0.0.1:3000",
    )
}

#[tokio::test]
async fn internal_endpoints_are_refused_unless_allowed() {
    for url in [
        "http://127.0.0.1:9/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.1/hook",
        "http://[::1]/x",
    ] {
        let e = channel(
            ChannelKind::Webhook,
            serde_json::json!({ "url": url, "secret": "s" }),
            false,
        )
        .err()
        .unwrap_or_else(|| panic!("{url} accepted"));
        assert!(e.contains("not a public address"), "{url}: {e}");
    }
    for (kind, config) in [
        (
            ChannelKind::Telegram,
            serde_json::json!({ "bot_token": "1:x", "base_url": "http://127.0.0.1:9" }),
        ),
        (
            ChannelKind::Whatsapp,
            serde_json::json!({ "phone_number_id": "1", "access_token": "t", "base_url": "http://169.254.169.254" }),
        ),
        (
            ChannelKind::Sms,
            serde_json::json!({ "account_sid": "AC", "auth_token": "t", "from": "+1", "base_url": "http://10.0.0.1" }),
        ),
        (
            ChannelKind::Email,
            serde_json::json!({ "smtp_host": "127.0.0.1", "smtp_port": 25, "from": "a@b.c" }),
        ),
    ] {
        assert!(
            channel(kind, config.clone(), false).is_err(),
            "{kind:?} {config}"
        );
        assert!(channel(kind, config, true).is_ok(), "{kind:?} allowed");
    }
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let hits: Arc<Mutex<Vec<String>>> = Default::default();
    let seen = hits.clone();
    let app = axum::Router::new()
        .route(
            "/hook",
            post(|| async {
                (
                    axum::http::StatusCode::FOUND,
                    [("location", "/elsewhere")],
                    "",
                )
            }),
        )
        .route(
            "/elsewhere",
            post(move || {
                let seen = seen.clone();
                async move {
                    seen.lock().unwrap().push("elsewhere".into());
                    r#"{"id":"ok"}"#
                }
            })
            .get(|| async { r#"{"id":"ok"}"# }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let hook = channel(
        ChannelKind::Webhook,
        serde_json::json!({ "url": format!("http://{addr}/hook"), "secret": "s" }),
        true,
    )
    .unwrap();
    let r = hook.send(&message()).await;
    assert!(r.is_err(), "a 302 is not a success: {r:?}");
    assert!(
        hits.lock().unwrap().is_empty(),
        "the redirect target was never asked"
    );
}

/// A proxy named in the environment (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`) would resolve
/// the name itself, past the public-only resolver: the guarded client uses none. The check runs
/// in a child process of this test binary, so the variables touch no other test.
#[tokio::test]
async fn the_guarded_client_ignores_proxies_from_the_environment() {
    if std::env::var_os("HERALD_PROXY_PROBE").is_some() {
        let client = herald::server::channels::endpoint::client(false);
        let sent = client
            .get("http://proxy-probe.herald.invalid/metadata")
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await;
        assert!(sent.is_err(), "a name that resolves nowhere was reached");
        return;
    }
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    proxy.set_nonblocking(true).unwrap();
    let url = format!("http://{}", proxy.local_addr().unwrap());
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "ssrf::the_guarded_client_ignores_proxies_from_the_environment",
            "--nocapture",
        ])
        .env("HERALD_PROXY_PROBE", "1")
        .env("HTTP_PROXY", &url)
        .env("HTTPS_PROXY", &url)
        .env("ALL_PROXY", &url)
        .env("http_proxy", &url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 passed"),
        "the probe did not run: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        proxy.accept().is_err(),
        "the guarded client went through the environment's proxy"
    );
}
