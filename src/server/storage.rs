//! What Herald keeps on disk, and its upkeep: attachments no broadcast carries and import
//! uploads never started are removed after a grace period (hourly, in every process), and
//! admins see how much space attachments, waiting imports and the database take.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

pub use crate::model::staff::DiskUsage;
use crate::server::AppState;
use crate::server::db::DbError;

/// How long an upload may wait for the broadcast or the import that uses it.
pub const GRACE: TimeDelta = TimeDelta::hours(24);
/// How often the sweep runs.
const EVERY: Duration = Duration::from_secs(3600);

/// What a sweep removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub attachments: u64,
    pub attachment_bytes: u64,
    pub imports: u64,
    pub import_bytes: u64,
}

/// Removes attachments uploaded before `now - GRACE` that no broadcast carries (their record
/// and their file; a broadcast that picks one up meanwhile keeps it), files in the attachments
/// folder with no record that are as old (an upload cut off between file and record), and
/// import uploads never started for as long.
pub async fn sweep(state: &AppState, now: DateTime<Utc>) -> Result<Swept, DbError> {
    let dir = crate::server::broadcast::attachments::folder(state);
    let mut swept = Swept::default();
    for id in state.db.unreferenced_attachments(now - GRACE).await? {
        if state.db.delete_unreferenced_attachment(&id).await? {
            swept.attachments += 1;
            swept.attachment_bytes += remove(&dir.join(&id)).await;
        }
    }
    for (name, modified) in files(&dir).await {
        let old = DateTime::<Utc>::from(modified) < now - GRACE;
        if old && state.db.attachment(&name).await?.is_none() {
            swept.attachments += 1;
            swept.attachment_bytes += remove(&dir.join(&name)).await;
        }
    }
    let grace = GRACE.to_std().unwrap_or(Duration::from_secs(86_400));
    (swept.imports, swept.import_bytes) = state.imports.sweep(grace);
    Ok(swept)
}

/// Runs [`sweep`] every hour for as long as the process lives.
pub fn spawn_sweeper(state: AppState) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(EVERY);
        loop {
            every.tick().await;
            match sweep(&state, state.clock.now()).await {
                Ok(s) if s != Swept::default() => tracing::info!(
                    attachments = s.attachments,
                    attachment_bytes = s.attachment_bytes,
                    imports = s.imports,
                    import_bytes = s.import_bytes,
                    "removed uploads nothing uses"
                ),
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = ?e, "the upload sweep failed; trying again in an hour")
                }
            }
        }
    });
}

/// The space attachments, waiting imports and the database take now.
pub async fn usage(state: &AppState) -> Result<DiskUsage, DbError> {
    let (attachments, attachment_bytes) = state.db.attachment_usage().await?;
    let (waiting_imports, import_bytes) = state.imports.waiting();
    Ok(DiskUsage {
        attachments,
        attachment_bytes,
        waiting_imports,
        import_bytes,
        database_bytes: state.db.database_bytes().await?,
    })
}

/// The files directly in `dir` (named like attachment ids) with their modification times.
async fn files(dir: &Path) -> Vec<(String, std::time::SystemTime)> {
    let mut out = Vec::new();
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return out;
    };
    while let Ok(Some(e)) = entries.next_entry().await {
        let name = e.file_name().to_string_lossy().to_string();
        let is_id = name.len() == 32 && name.bytes().all(|b| b.is_ascii_hexdigit());
        if let (true, Ok(meta)) = (is_id, e.metadata().await)
            && meta.is_file()
            && let Ok(modified) = meta.modified()
        {
            out.push((name, modified));
        }
    }
    out
}

/// Removes a file; the bytes it held (0 if it was not there).
async fn remove(path: &Path) -> u64 {
    let size = tokio::fs::metadata(path)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    match tokio::fs::remove_file(path).await {
        Ok(()) => size,
        Err(_) => 0,
    }
}
