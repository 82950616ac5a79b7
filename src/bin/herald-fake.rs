//! `herald-fake whatsapp [TEMPLATES.json] [--marketing-per-user N]`: Herald's strict Cloud API
//! fake ([`herald::server::fakes::whatsapp`]) as a process of its own, for the browser tests.
//!
//! It prints one JSON line: the fake's `base_url` and credentials (what a WhatsApp channel
//! takes) and `control`, a loopback address that drives it the way customers and Meta would:
//! - `POST /webhooks {"urls": [...]}`: where Meta's webhooks go (Herald's channel URL);
//! - `POST /customer-writes {"wa_id": "...", "text": "..."}`: a customer writes to the number
//!   (their 24-hour window opens; the message reaches Herald as Meta's webhook);
//! - `GET /accepted`: every message accepted, `{wamid, to, body}`, with its `failed` code;
//! - `GET /settle`: answers once every webhook was answered with 2xx (up to 30 s).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::routing::{get, post};
use herald::server::fakes::whatsapp::{Config, FakeWhatsApp};

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) != Some("whatsapp") {
        anyhow::bail!("usage: herald-fake whatsapp [TEMPLATES.json] [--marketing-per-user N]");
    }
    let mut config = Config::default();
    let mut rest = args[1..].iter();
    while let Some(a) = rest.next() {
        if a == "--marketing-per-user" {
            let n = rest.next().and_then(|n| n.parse().ok());
            config.marketing_per_user =
                Some(n.ok_or_else(|| anyhow::anyhow!("--marketing-per-user takes a number"))?);
        } else {
            let text = std::fs::read_to_string(a)?;
            config.templates = serde_json::from_str(&text)?;
        }
    }
    let (fake, base_url) = FakeWhatsApp::start(config.clone()).await?;
    let control = axum::Router::new()
        .route("/webhooks", post(webhooks))
        .route("/customer-writes", post(customer_writes))
        .route("/accepted", get(accepted))
        .route("/settle", get(settle))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!(
        "{}",
        serde_json::json!({
            "base_url": base_url, "control": format!("http://{addr}"),
            "phone_number_id": config.phone_number_id, "access_token": config.access_token,
            "app_secret": config.app_secret, "waba_id": config.waba_id,
        })
    );
    axum::serve(listener, control).await?;
    Ok(())
}

async fn webhooks(State(fake): State<Arc<FakeWhatsApp>>, Json(v): Json<serde_json::Value>) {
    let urls = v["urls"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| u.as_str().map(str::to_string))
        .collect();
    fake.send_webhooks_to(urls);
}

async fn customer_writes(State(fake): State<Arc<FakeWhatsApp>>, Json(v): Json<serde_json::Value>) {
    fake.customer_writes(
        v["wa_id"].as_str().unwrap_or_default(),
        v["text"].as_str().unwrap_or("Hello"),
    );
}

async fn accepted(State(fake): State<Arc<FakeWhatsApp>>) -> Json<serde_json::Value> {
    let plans = fake.plans();
    Json(
        fake.accepted()
            .into_iter()
            .map(|a| {
                let failed = plans.get(&a.wamid).map(|p| p.code).unwrap_or_default();
                serde_json::json!({ "wamid": a.wamid, "to": a.to, "body": a.body, "failed": failed })
            })
            .collect(),
    )
}

async fn settle(State(fake): State<Arc<FakeWhatsApp>>) -> Json<bool> {
    Json(fake.settle(Duration::from_secs(30)).await)
}
