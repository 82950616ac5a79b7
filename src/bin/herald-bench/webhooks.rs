//! Webhook ingestion: signed WhatsApp status callbacks ("delivered") posted over HTTP on
//! loopback to the real router, each verified (HMAC-SHA256) and applied with its counters.

use crate::TempPg;
use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use futures::StreamExt;
use herald::model::compose::{Compose, Intent};
use herald::model::{ChannelId, Role, UserId};
use herald::server::channels::webhook::signature;
use herald::server::clock::SystemClock;
use herald::server::db::{Db, NewChannel, Outcome};

const EVENTS: usize = 20_000;

pub async fn run() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("herald-hooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let sqlite = Db::connect(&format!("sqlite://{}", dir.join("h.db").display())).await?;
    let r = bench("SQLite", sqlite.clone(), &dir).await;
    sqlite.close().await;
    r?;
    if let Some(pg) = TempPg::create("herald_hooks").await? {
        let r = bench("PostgreSQL", pg.db.clone(), &dir).await;
        pg.drop().await?;
        r?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

async fn bench(label: &str, db: Db, dir: &std::path::Path) -> anyhow::Result<()> {
    let (b, channel, sent) = sent_broadcast(&db).await?;
    // The deliveries went out on a webhook channel; the reports come on a WhatsApp one.
    sqlx_set_whatsapp(&db, channel).await?;
    let dispatcher = Arc::new(herald::server::dispatch::Dispatcher::new(
        db.clone(),
        Arc::new(SystemClock),
        Default::default(),
        Default::default(),
    ));
    let addr = crate::serve(crate::app_state(&db, dispatcher, dir)?).await?;
    let url = format!("http://{addr}/webhooks/whatsapp/{channel}");
    let bodies: Vec<String> = sent
        .iter()
        .map(|id| {
            serde_json::json!({ "object": "whatsapp_business_account", "entry": [{ "id": "W", "changes": [{ "field": "messages", "value": {
                "messaging_product": "whatsapp",
                "statuses": [{ "id": format!("wamid.{id}"), "status": "delivered", "timestamp": "1700000000", "recipient_id": "x" }]
            }}]}]})
            .to_string()
        })
        .collect();
    let t = Instant::now();
    let ok = post_signed(&url, bodies).await;
    let took = t.elapsed();
    let delivered = db.inspect().counters(b).await?[2];
    println!(
        "Webhooks on {label}: {ok} of {} signed status callbacks in {:.1} s = {:.0} verified events/s, {delivered} deliveries now delivered (target ≥ 4,000/s)",
        sent.len(),
        took.as_secs_f64(),
        ok as f64 / took.as_secs_f64()
    );
    Ok(())
}

/// A broadcast to every customer on a webhook channel, each delivery recorded as sent with
/// provider id `wamid.<delivery id>`: (broadcast, channel, delivery ids).
async fn sent_broadcast(db: &Db) -> anyhow::Result<(i64, ChannelId, Vec<i64>)> {
    let now = Utc::now();
    herald::server::customers::generate(db, EVENTS, now, |_| {}).await?;
    let author = db
        .create_user("hooks@herald.test", "Hooks", Role::Admin, "x", now)
        .await?;
    let channel = db
        .insert_channel(
            &NewChannel {
                kind: "webhook".into(),
                name: "Receiver".into(),
                config_json: r#"{"app_secret":"meta-app-secret"}"#.into(),
                rate_per_sec: 1000,
            },
            now,
        )
        .await?;
    let v = Compose {
        name: "hooks".into(),
        body: "Hi".into(),
        channel_ids: vec![channel],
        ..Default::default()
    }
    .validate(Intent::SendNow, now)
    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let b = db
        .create_broadcast(&v, UserId(author), "hooks-bench-key-1", now)
        .await?
        .0;
    db.fire(b, now, chrono::Duration::hours(1)).await?;
    let claimed = db
        .claim_broadcast(b, 1_000_000, now, now + chrono::Duration::seconds(600), now)
        .await?;
    let ids = claimed.iter().map(|c| c.id).collect();
    let results: Vec<_> = claimed
        .into_iter()
        .map(|c| {
            let id = format!("wamid.{}", c.id);
            (
                c,
                Outcome::Sent {
                    provider_message_id: id,
                    replayed: false,
                },
            )
        })
        .collect();
    db.record(&results, now).await?;
    Ok((b, ChannelId(channel), ids))
}

/// Posts each body to `url`, signed as Meta signs them, 32 at a time; how many succeeded.
async fn post_signed(url: &str, bodies: Vec<String>) -> usize {
    let client = herald::server::channels::http_client();
    futures::stream::iter(bodies)
        .map(|body| {
            let client = client.clone();
            async move {
                let sig = signature("meta-app-secret", body.as_bytes());
                client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("x-hub-signature-256", sig)
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false)
            }
        })
        .buffer_unordered(32)
        .filter(|ok| futures::future::ready(*ok))
        .count()
        .await
}

async fn sqlx_set_whatsapp(db: &Db, channel: ChannelId) -> anyhow::Result<()> {
    db.update_channel(channel, "Receiver", r#"{"app_secret":"meta-app-secret","phone_number_id":"1","access_token":"x","verify_token":"v"}"#, true, 1000, UserId(1), "bench", Utc::now())
        .await?;
    db.inspect().set_channel_kind(channel.0, "whatsapp").await?;
    Ok(())
}
