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
    mut field: Field<'_>,
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
        out.write_all(&chunk).await.map_err(Refused::Storage)?;
    }
    if head.len() < HEAD {
        check_head(&head).map_err(Refused::Content)?;
    }
    out.flush().await.map_err(Refused::Storage)?;
    Ok(Received { size, head })
}
