//! The one reader for uploaded files (attachments and customer imports): a multipart field
//! streamed to a file chunk by chunk, so an upload never sits in memory, within a size limit,
//! with its first bytes kept and checked as soon as there are enough of them. What the file
//! must be is the caller's rule.

use std::path::Path;

use axum::extract::multipart::Field;
use tokio::io::AsyncWriteExt;

/// How many of a file's first bytes are kept for checks by content.
pub const HEAD: usize = 8192;

/// A file stored: its size and first bytes.
#[derive(Debug)]
pub struct Received {
    pub size: u64,
    pub head: Vec<u8>,
}

/// Why an upload was not stored (what was written so far is the caller's to remove).
#[derive(Debug)]
pub enum Refused {
    /// Over the limit after `size` bytes; the head so far.
    TooBig { size: u64, head: Vec<u8> },
    /// The connection broke off.
    Interrupted,
    /// The first bytes are not what the caller accepts.
    Content(String),
    /// The disk refused it.
    Storage(std::io::Error),
}

/// Streams `field` to `path` (creating `dir`), at most `limit` bytes. `check_head` sees the
/// first [`HEAD`] bytes as soon as they are in (or the whole file, if smaller).
pub async fn to_file(
    field: Field<'_>,
    dir: &Path,
    path: &Path,
    limit: u64,
    check_head: impl Fn(&[u8]) -> Result<(), String>,
) -> Result<Received, Refused> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(Refused::Storage)?;
    let mut out = tokio::fs::File::create(path)
        .await
        .map_err(Refused::Storage)?;
    let received = receive(field, limit, check_head, Sink::File(&mut out)).await?;
    out.flush().await.map_err(Refused::Storage)?;
    Ok(received)
}

/// Streams `field` into the file store as `folder/name`, at most `limit` bytes, checked as
/// [`to_file`] checks. The file appears only once it is whole and accepted: a refusal leaves
/// nothing behind.
pub async fn to_store(
    field: Field<'_>,
    files: &crate::server::files::Files,
    (folder, name): (&str, &str),
    limit: u64,
    check_head: impl Fn(&[u8]) -> Result<(), String>,
) -> Result<Received, Refused> {
    let mut out = files.write(folder, name).await.map_err(stored)?;
    let received = receive(field, limit, check_head, Sink::Store(&mut out)).await;
    match received {
        Ok(r) => {
            out.finish().await.map_err(stored)?;
            Ok(r)
        }
        Err(refused) => {
            out.abort().await;
            Err(refused)
        }
    }
}

fn stored(e: crate::server::files::StoreError) -> Refused {
    Refused::Storage(std::io::Error::other(e))
}

/// Where an upload's chunks go.
enum Sink<'a> {
    File(&'a mut tokio::fs::File),
    Store(&'a mut crate::server::files::Writing),
}

impl Sink<'_> {
    async fn put(&mut self, chunk: &[u8]) -> Result<(), Refused> {
        match self {
            Sink::File(f) => f.write_all(chunk).await.map_err(Refused::Storage),
            Sink::Store(w) => w.put(chunk).await.map_err(stored),
        }
    }
}

/// Reads `field` chunk by chunk into `sink`, at most `limit` bytes, its head checked.
async fn receive(
    mut field: Field<'_>,
    limit: u64,
    check_head: impl Fn(&[u8]) -> Result<(), String>,
    mut sink: Sink<'_>,
) -> Result<Received, Refused> {
    let (mut size, mut head) = (0u64, Vec::new());
    while let Some(chunk) = field.chunk().await.map_err(|_| Refused::Interrupted)? {
        size += chunk.len() as u64;
        if size > limit {
            return Err(Refused::TooBig { size, head });
        }
        if head.len() < HEAD {
            head.extend_from_slice(&chunk[..chunk.len().min(HEAD - head.len())]);
            if head.len() == HEAD {
                check_head(&head).map_err(Refused::Content)?;
            }
        }
        sink.put(&chunk).await?;
    }
    if head.len() < HEAD {
        check_head(&head).map_err(Refused::Content)?;
    }
    Ok(Received { size, head })
}
