//! Where uploaded files are kept: one interface over the local folder (the default) and an
//! S3-compatible object store (when `s3-bucket` is set), so every instance reads what any
//! instance wrote. Files stream both ways: an upload goes up in parts as it arrives, and a
//! download or a provider's upload reads it as it goes; no file is ever read whole.
//!
//! Built on the `object_store` crate (Apache Arrow's): one tested client for S3, MinIO, R2
//! and the local disk, with multipart uploads and streaming reads.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt, stream::BoxStream};
use object_store::path::Path as Key;
use object_store::{ObjectStore, WriteMultipart};

/// The folder attachments are kept in.
pub const ATTACHMENTS: &str = "attachments";

/// The bucket files go to (instead of the local folder).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct S3Settings {
    pub bucket: String,
    /// An S3-compatible server's URL (MinIO, R2, a test server); empty for AWS itself.
    pub endpoint: String,
    pub region: String,
    /// Keys start with this (so one bucket can hold several Herald workspaces).
    pub prefix: String,
    /// Credentials (`HERALD_S3_ACCESS_KEY_ID`, `HERALD_S3_SECRET_ACCESS_KEY`); when empty,
    /// the usual `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`, or the machine's role.
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for S3Settings {
    /// Never the secret key: settings are logged.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("bucket", &self.bucket)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// The file store every part of Herald uses.
#[derive(Clone)]
pub struct Files {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    /// Every folder is the prefix itself ([`Files::in_folder`]).
    flat: bool,
    /// Where it is, for logs and the admin's page ("the folder …", "bucket …").
    pub place: String,
}

impl std::fmt::Debug for Files {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.place)
    }
}

/// A file opened for reading: its size and its bytes as they come.
pub struct Opened {
    pub size: u64,
    pub bytes: BoxStream<'static, Result<Bytes, std::io::Error>>,
}

/// A stored file as listed: its name within its folder, size and last change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    pub name: String,
    pub size: u64,
    pub modified: DateTime<Utc>,
}

/// Why the store did not do it.
pub type StoreError = object_store::Error;

impl Files {
    /// Files under the local folder `dir` (its folders are made as files are written).
    pub fn local(dir: &std::path::Path) -> Files {
        let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
        Files {
            store: Arc::new(object_store::local::LocalFileSystem::new()),
            prefix: absolute.to_string_lossy().trim_matches('/').to_string(),
            flat: false,
            place: format!("the folder {}", dir.display()),
        }
    }

    /// Files kept directly in `dir`, whatever their folder (tools and tests that hand over a
    /// folder of attachments).
    pub fn in_folder(dir: &std::path::Path) -> Files {
        Files {
            flat: true,
            ..Files::local(dir)
        }
    }

    /// The bucket when `s3-bucket` is set, else the data folder `data_dir`.
    pub fn configured(
        s3: Option<&S3Settings>,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<Files> {
        match s3 {
            Some(s3) => Files::s3(s3),
            None => Ok(Files::local(data_dir)),
        }
    }

    /// Files in an S3-compatible bucket; credentials from the usual `AWS_ACCESS_KEY_ID` and
    /// `AWS_SECRET_ACCESS_KEY` (or the machine's role).
    pub fn s3(s: &S3Settings) -> anyhow::Result<Files> {
        let mut b = object_store::aws::AmazonS3Builder::from_env()
            .with_bucket_name(&s.bucket)
            .with_region(if s.region.is_empty() {
                "us-east-1"
            } else {
                &s.region
            });
        if !s.access_key_id.is_empty() {
            b = b
                .with_access_key_id(&s.access_key_id)
                .with_secret_access_key(&s.secret_access_key);
        }
        if !s.endpoint.is_empty() {
            b = b
                .with_endpoint(&s.endpoint)
                .with_allow_http(s.endpoint.starts_with("http://"));
        }
        let prefix = s.prefix.trim_matches('/').to_string();
        Ok(Files {
            store: Arc::new(b.build()?),
            flat: false,
            place: format!(
                "bucket {}{}",
                s.bucket,
                if prefix.is_empty() {
                    String::new()
                } else {
                    format!("/{prefix}")
                }
            ),
            prefix,
        })
    }

    fn key(&self, folder: &str, name: &str) -> Key {
        match (self.flat, self.prefix.is_empty()) {
            (true, _) => Key::from(format!("{}/{name}", self.prefix)),
            (false, true) => Key::from(format!("{folder}/{name}")),
            (false, false) => Key::from(format!("{}/{folder}/{name}", self.prefix)),
        }
    }

    /// Starts writing `folder/name`: nothing is visible until [`Writing::finish`].
    pub async fn write(&self, folder: &str, name: &str) -> Result<Writing, StoreError> {
        let upload = self.store.put_multipart(&self.key(folder, name)).await?;
        Ok(Writing {
            parts: WriteMultipart::new(upload),
        })
    }

    /// Opens `folder/name` for reading; `None` when there is no such file.
    pub async fn open(&self, folder: &str, name: &str) -> Result<Option<Opened>, StoreError> {
        match self.store.get(&self.key(folder, name)).await {
            Ok(got) => Ok(Some(Opened {
                size: got.meta.size,
                bytes: got.into_stream().map_err(std::io::Error::other).boxed(),
            })),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The size of `folder/name`, if it is there.
    pub async fn size(&self, folder: &str, name: &str) -> Result<Option<u64>, StoreError> {
        match self.store.head(&self.key(folder, name)).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Removes `folder/name`; the bytes it held (0 when it was not there).
    pub async fn remove(&self, folder: &str, name: &str) -> Result<u64, StoreError> {
        let Some(size) = self.size(folder, name).await? else {
            return Ok(0);
        };
        match self.store.delete(&self.key(folder, name)).await {
            Ok(()) | Err(StoreError::NotFound { .. }) => Ok(size),
            Err(e) => Err(e),
        }
    }

    /// The files directly in `folder`.
    pub async fn list(&self, folder: &str) -> Result<Vec<Listed>, StoreError> {
        let prefix = self.key(folder, "");
        let mut out = Vec::new();
        let mut items = self.store.list(Some(&prefix));
        while let Some(meta) = items.next().await {
            let meta = meta?;
            let Some(name) = meta.location.filename() else {
                continue;
            };
            out.push(Listed {
                name: name.to_string(),
                size: meta.size,
                modified: meta.last_modified,
            });
        }
        Ok(out)
    }
}

/// A file being written in parts (at most a few parts in memory at once).
pub struct Writing {
    parts: WriteMultipart,
}

/// Parts uploading at once while a file is written.
const PARTS_IN_FLIGHT: usize = 2;

impl Writing {
    /// Adds `chunk`, waiting while earlier parts are still going up.
    pub async fn put(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        self.parts.wait_for_capacity(PARTS_IN_FLIGHT).await?;
        self.parts.write(chunk);
        Ok(())
    }

    /// Makes the file visible, whole.
    pub async fn finish(self) -> Result<(), StoreError> {
        self.parts.finish().await.map(|_| ())
    }

    /// Drops what was written: nothing of it stays.
    pub async fn abort(self) {
        if let Err(e) = self.parts.abort().await {
            tracing::warn!(error = %e, "an unfinished upload could not be discarded");
        }
    }
}
