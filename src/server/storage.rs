//! What Herald keeps on disk, and its upkeep: attachments no broadcast carries and import
//! uploads never started are removed after a grace period (hourly, in every process), and
//! admins see how much space attachments, waiting imports and the database take.

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

pub use crate::model::staff::DiskUsage;
use crate::server::AppState;
use crate::server::db::DbError;
use crate::server::files::ATTACHMENTS;

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
    let mut swept = Swept::default();
    for id in state.db.unreferenced_attachments(now - GRACE).await? {
        if state.db.delete_unreferenced_attachment(&id).await? {
            swept.attachments += 1;
            swept.attachment_bytes += remove(state, &id).await;
        }
    }
    // The whole shared store: an instance sweeps what any instance left.
    let listed = match state.files.list(ATTACHMENTS).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "the attachments could not be listed");
            Vec::new()
        }
    };
    for file in listed {
        let is_id = file.name.len() == 32 && file.name.bytes().all(|b| b.is_ascii_hexdigit());
        if is_id && file.modified < now - GRACE && state.db.attachment(&file.name).await?.is_none()
        {
            swept.attachments += 1;
            swept.attachment_bytes += remove(state, &file.name).await;
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

/// Removes attachment `id`'s file; the bytes it held (0 if it was not there).
async fn remove(state: &AppState, id: &str) -> u64 {
    state.files.remove(ATTACHMENTS, id).await.unwrap_or(0)
}
