//! Channel changes reach every instance: two instances of the real binary on one PostgreSQL
//! send a broadcast; an admin lowers the channel's rate on instance A's channels page, and the
//! receiver sees both instances together keep to the new rate within a second; then the
//! admin disables the channel on A, and neither instance starts another request.

use std::time::{Duration, Instant};

use chrono::Utc;
use herald::model::Role;

use crate::common;
use crate::crash::{free_port, prepare, receiver};
use crate::deploy::start_with;

/// Signs in at `base` over HTTP as a browser would; the session cookie (`name=value`).
async fn sign_in(client: &reqwest::Client, base: &str, email: &str, password: &str) -> String {
    let r = client
        .post(format!("{base}/api/login"))
        .header("origin", base)
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap();
    let cookie = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.contains("session"))
        .unwrap_or_else(|| panic!("no session cookie: {:?}", r.status()));
    cookie.split(';').next().unwrap().to_string()
}

/// Posts the channels page's form on `base`.
async fn channels_form(client: &reqwest::Client, base: &str, cookie: &str, form: &[(&str, &str)]) {
    let r = client
        .post(format!("{base}/channels"))
        .header("origin", base)
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap();
    let to = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_string());
    assert!(
        to.as_deref().is_some_and(|l| l.contains("notice=")),
        "{:?} {to:?}",
        r.status()
    );
}

#[tokio::test]
async fn a_channel_changed_on_one_instance_changes_on_every_instance() {
    let Some(t) = common::postgres().await else {
        return;
    };
    let (url, r) = receiver().await;
    let id = prepare(&t.db, &url, 6_000, 200).await;
    let channel =
        t.db.channels()
            .await
            .unwrap()
            .into_iter()
            .find(|c| c.name == "Receiver")
            .unwrap()
            .id;
    let password = "Correct-Horse-Battery-9";
    let hash = herald::server::accounts::auth::hash_password(password).unwrap();
    t.db.create_user("admin@ops.test", "Admin", Role::Admin, &hash, Utc::now())
        .await
        .unwrap();
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut a = start_with(&t, &[("LEPTOS_SITE_ADDR", addr.as_str())]);
    let mut b = start_with(&t, &[]);
    let base = format!("http://{addr}");
    let client = herald::server::channels::http_client();
    let started = Instant::now();
    while client.get(format!("{base}/login")).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "A did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cookie = sign_in(&client, &base, "admin@ops.test", password).await;
    while r.arrivals.lock().unwrap().len() < 600 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "sending never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // 200 a second → 20 a second, saved on A.
    let id_s = channel.to_string();
    let form = [
        ("action", "update"),
        ("id", id_s.as_str()),
        ("name", "Receiver"),
        ("rate", "20"),
        ("cfg_url", url.as_str()),
        ("cfg_secret", ""),
    ];
    channels_form(&client, &base, &cookie, &form).await;
    let changed = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let arrivals = r.arrivals.lock().unwrap().clone();
    let window = |from: Duration, to: Duration| {
        arrivals
            .iter()
            .filter(|a| **a >= changed + from && **a < changed + to)
            .count()
    };
    let before = arrivals.iter().filter(|a| **a < changed).count();
    let after = window(Duration::from_secs(1), Duration::from_secs(4));
    eprintln!("{before} before the change; {after} in the 3 s from a second after it");
    assert!(after > 0, "still sending");
    // Three seconds at 20 a second, with the bucket's burst (a fifth of a second) at most.
    assert!(
        after <= 3 * 20 + 10,
        "both instances keep to 20 a second: {after}"
    );

    // Disabled on A: neither instance starts another request.
    channels_form(
        &client,
        &base,
        &cookie,
        &[("action", "toggle"), ("id", id_s.as_str())],
    )
    .await;
    let disabled = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let late = r
        .arrivals
        .lock()
        .unwrap()
        .iter()
        .filter(|a| **a > disabled + Duration::from_millis(500))
        .count();
    assert_eq!(late, 0, "requests started after the channel was disabled");
    let record = t.db.broadcast(id).await.unwrap();
    assert!(record.paused, "the broadcast paused");
    assert!(
        record.pause_reason.unwrap_or_default().contains("disabled"),
        "with the reason"
    );
    a.kill();
    b.kill();
    t.cleanup().await;
}
