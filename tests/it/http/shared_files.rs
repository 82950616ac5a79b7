//! Two instances on one database and one S3-compatible bucket, each with its own data
//! folder: a file uploaded through one downloads whole from the other, a refused upload
//! leaves nothing in the bucket, and either instance's sweep sees every instance's files.

use super::*;

#[tokio::test]
async fn an_upload_to_one_instance_downloads_from_another_through_the_bucket() {
    let Some(s3) = crate::files::s3_bucket("shared").await else {
        return;
    };
    let for_a = s3.clone();
    let app = TestApp::with_config(move |c| c.s3 = Some(for_a)).await;
    let elsewhere = tempfile::tempdir().unwrap();
    let other_dir = elsewhere.path().to_path_buf();
    let for_b = s3.clone();
    let b = app.another_instance_with(Arc::new(SystemClock), move |c| {
        c.data_dir = other_dir;
        c.s3 = Some(for_b);
    });
    let staff = app.sign_in(Role::Staff).await;
    // A 6 MB PDF: more than one part of a multipart upload.
    let mut pdf = b"%PDF-1.7\n".to_vec();
    pdf.extend((0..6 * 1024 * 1024).map(|i| b'a' + (i % 26) as u8));
    let r = app
        .send(multipart_file("/attachments", "menu.pdf", &pdf, &staff))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let url = v["url"].as_str().unwrap().to_string();
    let r = send(&b, get(&url, Some(&staff))).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers[header::CONTENT_LENGTH], pdf.len().to_string());
    assert_eq!(
        r.body.as_bytes(),
        &pdf[..],
        "the same bytes, from the other instance"
    );
    // Nothing of it is on either instance's disk.
    assert!(!app.t.dir().join("attachments").exists());

    // A refused upload leaves nothing in the bucket.
    let exe = b"MZ\x90\0\x03\0\0\0\x04\0\0\0\xFF\xFF\0\0";
    let r = app
        .send(multipart_file("/attachments", "cat.png", exe, &staff))
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let files = herald::server::files::Files::s3(&s3).unwrap();
    assert_eq!(files.list("attachments").await.unwrap().len(), 1);

    // Another instance's dispatcher sends a photo uploaded here: Telegram gets the file.
    let sent = another_dispatcher_sends_a_photo(&app, &s3, &staff).await;
    assert!(sent > 0);
    assert_eq!(files.list("attachments").await.unwrap().len(), 2);

    // Two days on, unused: the sweep of either instance removes it from the bucket (the
    // photo a broadcast carries stays).
    let later = chrono::Utc::now() + chrono::TimeDelta::days(2);
    let swept = herald::server::storage::sweep(&app.state, later)
        .await
        .unwrap();
    assert_eq!(swept.attachments, 1, "{swept:?}");
    assert_eq!(swept.attachment_bytes, pdf.len() as u64);
    assert_eq!(files.list("attachments").await.unwrap().len(), 1);
    let r = send(&b, get(&url, Some(&staff))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    app.t.cleanup().await;
}

/// Uploads a photo through `app`, sends it to every Telegram customer from a dispatcher of
/// another instance (its own memory, the same database and bucket), and checks at the fake
/// that each got the photo; how many did.
async fn another_dispatcher_sends_a_photo(
    app: &TestApp,
    s3: &herald::server::files::S3Settings,
    staff: &str,
) -> usize {
    use herald::server::clock::Clock;
    use herald::server::fakes::telegram::{self, FakeTelegram};
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01";
    let r = app
        .send(multipart_file("/attachments", "logo.png", png, staff))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    let photo = herald::model::compose::AttachmentRef {
        id: v["id"].as_str().unwrap().into(),
        name: "logo.png".into(),
        mime: "image/png".into(),
        size: png.len() as u64,
    };
    let config = telegram::Config {
        per_bot_per_sec: 10_000.0,
        ..telegram::Config::default()
    };
    let (fake, base) = FakeTelegram::start(config).await.unwrap();
    let db = &app.state.db;
    let now = SystemClock.now();
    let tg = db
        .insert_channel(&fake.channel(&base, 10_000), now)
        .await
        .unwrap();
    let people: Vec<herald::server::db::NewCustomer> = (0..5)
        .map(|i| herald::server::db::NewCustomer {
            name: format!("Shared {i}"),
            telegram_chat_id: Some(format!("{}", 930_000 + i)),
            time_zone: "UTC".into(),
            ..Default::default()
        })
        .collect();
    db.insert_customers_bulk(&people, now).await.unwrap();
    let author = db
        .create_user("files@herald.test", "F", Role::Staff, "x", now)
        .await
        .unwrap();
    let v = herald::model::compose::Compose {
        name: "Logo".into(),
        body: "Our new logo".into(),
        channel_ids: vec![tg],
        attachments: vec![photo],
        ..Default::default()
    }
    .validate(herald::model::compose::Intent::SendNow, now)
    .unwrap();
    let (b, _) = db
        .create_broadcast(&v, herald::model::UserId(author), "files-key-0000001", now)
        .await
        .unwrap();
    let other = herald::server::dispatch::Dispatcher::new(
        db.clone(),
        Arc::new(SystemClock),
        Default::default(),
        herald::server::dispatch::Settings {
            files: herald::server::files::Files::s3(s3).unwrap(),
            ..Default::default()
        },
    );
    let start = std::time::Instant::now();
    while !other.round().await.unwrap().finished.contains(&b) {
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "never finished"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let record = db.broadcast(b).await.unwrap();
    assert_eq!(
        record.failed_count, 0,
        "the file was there for the other instance"
    );
    let messages = fake.messages();
    assert_eq!(messages.len() as i64, record.audience_total);
    assert!(
        messages
            .iter()
            .all(|m| m.method == "sendPhoto" && m.file_id.is_some())
    );
    messages.len()
}
