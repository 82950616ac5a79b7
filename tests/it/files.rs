//! The file store, on the local folder and on a real S3-compatible server (the test script
//! starts `moto_server` and names it in `HERALD_TEST_S3`): a file written in parts reads back
//! whole, is listed and removed; an aborted write leaves nothing.

use futures::TryStreamExt;
use herald::server::files::{Files, S3Settings};

/// A fresh bucket on the test's S3 server, if there is one.
pub async fn s3_bucket(name: &str) -> Option<S3Settings> {
    let endpoint = match std::env::var("HERALD_TEST_S3") {
        Ok(e) if !e.is_empty() => e,
        _ => {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but HERALD_TEST_S3 is not set: the S3 tests may not be skipped");
            }
            eprintln!("SKIPPED (S3): set HERALD_TEST_S3=http://… (moto_server) to run this test");
            return None;
        }
    };
    let bucket = format!("{name}-{}", std::process::id());
    // moto takes an unsigned bucket creation.
    let r = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .expect("the S3 test server answers");
    assert!(
        r.status().is_success(),
        "creating the bucket: {}",
        r.status()
    );
    Some(S3Settings {
        bucket,
        endpoint,
        region: "us-east-1".into(),
        prefix: "herald".into(),
        access_key_id: "test".into(),
        secret_access_key: "test".into(),
    })
}

async fn round_trip(files: &Files) {
    // 12 MiB in 64 KiB chunks: three parts of a multipart upload.
    let chunk: Vec<u8> = (0..65_536u32).map(|i| (i % 251) as u8).collect();
    let mut w = files.write("attachments", &"e".repeat(32)).await.unwrap();
    for _ in 0..192 {
        w.put(&chunk).await.unwrap();
    }
    assert!(
        files
            .open("attachments", &"e".repeat(32))
            .await
            .unwrap()
            .is_none(),
        "nothing is visible before the write finishes"
    );
    w.finish().await.unwrap();
    let opened = files
        .open("attachments", &"e".repeat(32))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(opened.size, 192 * 65_536);
    let mut read = 0usize;
    let mut stream = opened.bytes;
    while let Some(part) = stream.try_next().await.unwrap() {
        for (i, b) in part.iter().enumerate() {
            assert_eq!(*b, ((read + i) % 65_536 % 251) as u8, "byte {}", read + i);
        }
        read += part.len();
    }
    assert_eq!(read, 192 * 65_536);
    let listed = files.list("attachments").await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].name, "e".repeat(32));
    assert_eq!(listed[0].size, 192 * 65_536);

    // An aborted write leaves nothing.
    let mut w = files.write("attachments", &"f".repeat(32)).await.unwrap();
    w.put(&chunk).await.unwrap();
    w.abort().await;
    assert!(
        files
            .open("attachments", &"f".repeat(32))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(files.list("attachments").await.unwrap().len(), 1);

    assert_eq!(
        files.remove("attachments", &"e".repeat(32)).await.unwrap(),
        192 * 65_536
    );
    assert_eq!(
        files.remove("attachments", &"e".repeat(32)).await.unwrap(),
        0
    );
    assert!(files.list("attachments").await.unwrap().is_empty());
}

#[tokio::test]
async fn the_local_folder_streams_lists_and_removes() {
    let dir = tempfile::tempdir().unwrap();
    round_trip(&Files::local(dir.path())).await;
}

#[tokio::test]
async fn an_s3_bucket_streams_lists_and_removes() {
    let Some(s3) = s3_bucket("round-trip").await else {
        return;
    };
    round_trip(&Files::s3(&s3).unwrap()).await;
}
