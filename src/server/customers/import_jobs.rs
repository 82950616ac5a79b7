//! The customer import over HTTP: the upload (streamed to a file, bounded, checked by content),
//! the preview's choices, and the import running in the background while the page shows its
//! progress. Plain forms throughout, so it all works without JavaScript.
//!
//! Imports in progress live in memory. Should Herald stop during one, its transaction is never
//! committed (nothing is stored), and the leftover files are removed at the next start.

use crate::model::UserId;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use axum::extract::Multipart;

use crate::model::CurrentUser;
use crate::model::import::{Column, ImportStage, ImportView, LineError, Mapping};
use crate::model::list_query::with_param;
use crate::server::AppState;
use crate::server::customers::import::{self, Failure, Outcome, Progress};
use crate::server::db::AuditEntry;
use crate::server::timefmt;
use crate::server::uploads::{self, Refused};

/// Imports known to this process.
pub struct Imports {
    dir: PathBuf,
    max_bytes: u64,
    jobs: Mutex<HashMap<String, Arc<Job>>>,
}

struct Job {
    id: String,
    /// Who uploaded it: only they see and run it.
    owner: UserId,
    file_name: String,
    path: PathBuf,
    size: u64,
    headers: Vec<String>,
    progress: Arc<Progress>,
    state: Mutex<JobState>,
    /// When it was uploaded (the sweep removes uploads never started after a grace period).
    uploaded: std::time::Instant,
}

#[derive(Clone)]
enum JobState {
    Uploaded {
        choices: Vec<Option<Column>>,
        skip_bad: bool,
    },
    Running,
    Done(Outcome),
    Failed {
        message: String,
        bad_lines: u64,
        errors: Vec<LineError>,
    },
}

impl Imports {
    /// Keeps uploads in `dir`; files left there by an earlier run are removed.
    pub fn new(dir: PathBuf, max_bytes: u64) -> Arc<Imports> {
        let _ = std::fs::remove_dir_all(&dir);
        Arc::new(Imports {
            dir,
            max_bytes,
            jobs: Mutex::new(HashMap::new()),
        })
    }

    fn get(&self, id: &str) -> Option<Arc<Job>> {
        self.jobs.lock().ok()?.get(id).cloned()
    }

    /// Import `id` if `user` uploaded it.
    fn of(&self, id: &str, user: UserId) -> Option<Arc<Job>> {
        self.get(id).filter(|j| j.owner == user)
    }

    /// What the import page shows `user` for `id` (theirs only). The preview reads the file
    /// on a blocking thread.
    pub async fn view(&self, id: &str, user: UserId) -> Option<ImportView> {
        let job = self.of(id, user)?;
        let state = job.state.lock().ok()?.clone();
        let stage = match state {
            JobState::Uploaded { choices, .. } => {
                let mapping = Mapping::from_choices(&job.headers, &choices).ok();
                let shown = Mapping {
                    columns: job.headers.iter().cloned().zip(choices).collect(),
                };
                let path = job.path.clone();
                let lines = tokio::task::spawn_blocking(move || {
                    std::fs::File::open(&path)
                        .map(|f| {
                            // Staff emails are checked when the import runs; here only the shape.
                            import::preview(
                                std::io::BufReader::new(f),
                                mapping.as_ref(),
                                &timefmt::is_zone,
                                &|_| true,
                            )
                        })
                        .unwrap_or_default()
                })
                .await
                .unwrap_or_default();
                ImportStage::Preview {
                    mapping: shown,
                    lines,
                }
            }
            JobState::Running => {
                let done = job.progress.bytes_done.load(Relaxed);
                ImportStage::Running {
                    fraction: if job.size == 0 {
                        1.0
                    } else {
                        (done as f64 / job.size as f64).min(1.0)
                    },
                    rows_done: job.progress.rows_done.load(Relaxed),
                }
            }
            JobState::Done(o) => ImportStage::Done {
                created: o.created,
                updated: o.updated,
                skipped: o.skipped,
                errors: o.errors,
            },
            JobState::Failed {
                message,
                bad_lines,
                errors,
            } => ImportStage::Failed {
                message,
                bad_lines,
                errors,
            },
        };
        Some(ImportView {
            id: job.id.clone(),
            file_name: job.file_name.clone(),
            file_bytes: job.size,
            stage,
        })
    }

    /// Removes imports uploaded more than `grace` ago and never started (their files too),
    /// and the finished ones as old; returns how many uploads and bytes went.
    pub fn sweep(&self, grace: std::time::Duration) -> (u64, u64) {
        let Ok(mut jobs) = self.jobs.lock() else {
            return (0, 0);
        };
        let old: Vec<String> = jobs
            .values()
            .filter(|j| j.uploaded.elapsed() > grace)
            .filter(|j| !matches!(j.state.lock().as_deref(), Ok(JobState::Running)))
            .map(|j| j.id.clone())
            .collect();
        let (mut files, mut bytes) = (0, 0);
        for id in old {
            if let Some(job) = jobs.remove(&id)
                && std::fs::remove_file(&job.path).is_ok()
            {
                files += 1;
                bytes += job.size;
            }
        }
        (files, bytes)
    }

    /// How many uploads wait (uploaded, not started) and their bytes on disk.
    pub fn waiting(&self) -> (u64, u64) {
        let Ok(jobs) = self.jobs.lock() else {
            return (0, 0);
        };
        jobs.values()
            .filter(|j| matches!(j.state.lock().as_deref(), Ok(JobState::Uploaded { .. })))
            .fold((0, 0), |(n, b), j| (n + 1, b + j.size))
    }

    /// Uploads waiting (not started) by `user`, and by everyone.
    fn waiting_for(&self, user: UserId) -> (usize, usize) {
        let Ok(jobs) = self.jobs.lock() else {
            return (0, 0);
        };
        let waiting: Vec<&Arc<Job>> = jobs
            .values()
            .filter(|j| matches!(j.state.lock().as_deref(), Ok(JobState::Uploaded { .. })))
            .collect();
        let theirs = waiting.iter().filter(|j| j.owner == user).count();
        (theirs, waiting.len())
    }

    /// Whether `user` may leave one more upload waiting, or why not.
    fn room_for(&self, user: UserId) -> Result<(), String> {
        let (theirs, everyone) = self.waiting_for(user);
        if theirs >= WAITING_PER_USER {
            return Err(format!(
                "You have {theirs} uploads waiting to be imported. Start or discard one of them first."
            ));
        }
        if everyone >= WAITING_IN_ALL {
            return Err("Too many uploads are waiting to be imported right now. Try again once some have been started or discarded.".into());
        }
        Ok(())
    }

    /// The skip-bad-lines choice last made for `id` (by `user`).
    pub fn skip_bad(&self, id: &str, user: UserId) -> bool {
        self.of(id, user)
            .and_then(|j| match &*j.state.lock().ok()? {
                JobState::Uploaded { skip_bad, .. } => Some(*skip_bad),
                _ => None,
            })
            .unwrap_or(false)
    }
}

/// Uploads one person may leave waiting (uploaded, neither started nor discarded).
pub const WAITING_PER_USER: usize = 3;
/// Uploads everyone together may leave waiting.
pub const WAITING_IN_ALL: usize = 20;

fn back_to_upload(error: &str) -> String {
    with_param("/customers/import", "error", error)
}

fn megabytes(bytes: u64) -> String {
    format!("{:.0} MB", bytes as f64 / (1024.0 * 1024.0))
}

/// A random id no one can guess (128 bits, hex).
fn new_id() -> String {
    crate::server::accounts::auth::new_session_token()[..32].to_string()
}

/// The upload form (multipart, one `file` field) whose body says it is `declared` bytes
/// long: the file streamed to disk, checked, and its header read; where the browser goes next
/// (the preview, or the upload form with the reason).
pub async fn upload(
    state: &AppState,
    user: UserId,
    declared: Option<u64>,
    multipart: Option<Multipart>,
) -> String {
    let imports = state.imports.clone();
    let limit = imports.max_bytes;
    if let Err(full) = imports.room_for(user) {
        return back_to_upload(&full);
    }
    let too_big = |size: u64| {
        format!(
            "The file is {}; the largest file an import takes is {}. Split it into smaller files and import them one after another.",
            megabytes(size),
            megabytes(limit)
        )
    };
    // Browsers send the length first: a file far too big is refused before it is read.
    if let Some(n) = declared
        && n > limit + 64 * 1024
    {
        return back_to_upload(&too_big(n));
    }
    let Some(mut multipart) = multipart else {
        return back_to_upload("Choose a CSV file to upload.");
    };
    let id = new_id();
    let path = imports.dir.join(format!("{id}.csv"));
    let stored = receive(&mut multipart, &imports.dir, &path, limit).await;
    let (file_name, size) = match stored {
        Ok(r) => r,
        Err(Received::TooBig(n)) => {
            let _ = tokio::fs::remove_file(&path).await;
            return back_to_upload(&too_big(n));
        }
        Err(Received::Refused(message)) => {
            let _ = tokio::fs::remove_file(&path).await;
            return back_to_upload(&message);
        }
    };
    let header_path = path.clone();
    let headers = tokio::task::spawn_blocking(move || {
        let f = std::fs::File::open(&header_path).map_err(|e| e.to_string())?;
        import::read_header(std::io::BufReader::new(f))
    })
    .await
    .unwrap_or_else(|e| Err(e.to_string()));
    let headers = match headers {
        Ok(h) => h,
        Err(message) => {
            let _ = tokio::fs::remove_file(&path).await;
            return back_to_upload(&message);
        }
    };
    let choices = headers.iter().map(|h| Column::from_header(h)).collect();
    let job = Arc::new(Job {
        id: id.clone(),
        owner: user,
        file_name,
        path,
        size,
        headers,
        progress: Arc::new(Progress::default()),
        state: Mutex::new(JobState::Uploaded {
            choices,
            skip_bad: false,
        }),
        uploaded: std::time::Instant::now(),
    });
    if let Ok(mut jobs) = imports.jobs.lock() {
        jobs.insert(id.clone(), job);
    }
    format!("/customers/import/{id}")
}

enum Received {
    TooBig(u64),
    Refused(String),
}

/// Streams the `file` field to `path`, at most `limit` bytes, checking its first bytes.
async fn receive(
    multipart: &mut Multipart,
    dir: &Path,
    path: &Path,
    limit: u64,
) -> Result<(String, u64), Received> {
    let refused = |m: &str| Received::Refused(m.to_string());
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return Err(refused("Choose a CSV file to upload.")),
            Err(_) => return Err(refused("The upload was interrupted; please try again.")),
        };
        if field.name() != Some("file") {
            continue;
        }
        let file_name = field
            .file_name()
            .map(|n| n.chars().filter(|c| !c.is_control()).take(200).collect())
            .unwrap_or_else(|| "upload.csv".to_string());
        return match uploads::to_file(field, dir, path, limit, import::sniff).await {
            Ok(r) if r.size == 0 => Err(refused(
                "The file is empty: the first line must be a header naming the columns.",
            )),
            Ok(r) => Ok((file_name, r.size)),
            Err(Refused::TooBig { size, .. }) => Err(Received::TooBig(size)),
            Err(Refused::Interrupted) => {
                Err(refused("The upload was interrupted; please try again."))
            }
            Err(Refused::Content(m)) => Err(Received::Refused(m)),
            Err(Refused::Storage(e)) => Err(Received::Refused(format!(
                "Herald cannot store the upload: {e}"
            ))),
        };
    }
}

/// Runs the import of `job` in the background, audited, and leaves its outcome in the job
/// for the page to show.
fn start(state: &AppState, user_id: UserId, job: Arc<Job>, mapping: Mapping, skip_bad: bool) {
    let db = state.db.clone();
    let now = state.clock.now();
    tokio::spawn(async move {
        let result =
            import::run(&db, &job.path, mapping, skip_bad, job.progress.clone(), now).await;
        let detail = match &result {
            Ok(o) => format!(
                "{}: {} created, {} updated, {} lines skipped",
                job.file_name, o.created, o.updated, o.skipped
            ),
            Err(e) => format!("{}: nothing imported ({e})", job.file_name),
        };
        // Written after the import's own transaction: a failed import is audited too.
        let audit = AuditEntry::new(now, Some(user_id), "import", "customers", None).detail(detail);
        if let Err(e) = db.audit(&audit).await {
            tracing::error!(error = ?e, "audit of an import failed");
        }
        let next = finished(result);
        let _ = std::fs::remove_file(&job.path);
        if let Ok(mut st) = job.state.lock() {
            *st = next;
        }
    });
}

/// What the page shows once an import has run.
fn finished(result: Result<Outcome, Failure>) -> JobState {
    match result {
        Ok(o) => JobState::Done(o),
        Err(Failure::Lines { count, errors }) => JobState::Failed {
            message: format!(
                "{count} line{} cannot be imported, so nothing was imported. Fix {} and upload the file again, or import again choosing to skip bad lines.",
                if count == 1 { "" } else { "s" },
                if count == 1 { "it" } else { "them" }
            ),
            bad_lines: count,
            errors,
        },
        Err(Failure::File(m)) => JobState::Failed {
            message: format!("Nothing was imported: {m}"),
            bad_lines: 0,
            errors: Vec::new(),
        },
        Err(Failure::Db(e)) => {
            tracing::error!(error = ?e, "customer import failed");
            JobState::Failed {
                message:
                    "Nothing was imported: the database failed during the import. Please try again."
                        .into(),
                bad_lines: 0,
                errors: Vec::new(),
            }
        }
    }
}

/// The preview's form for import `id` (`col_N` choices, `skip_bad`, and `action`: `check` to
/// show the preview with these choices, `start`, or `discard`); where the browser goes next.
pub async fn choose(
    state: &AppState,
    user: &CurrentUser,
    id: &str,
    fields: &[(String, String)],
) -> String {
    let imports = state.imports.clone();
    let Some(job) = imports.of(id, user.id) else {
        return back_to_upload(
            "That import is no longer here (Herald restarted?). Upload the file again.",
        );
    };
    let page = format!("/customers/import/{id}");
    let mut choices: Vec<Option<Column>> = vec![None; job.headers.len()];
    let (mut skip_bad, mut action) = (false, String::new());
    for (k, v) in fields {
        if let Some(i) = k.strip_prefix("col_").and_then(|i| i.parse::<usize>().ok()) {
            if let Some(slot) = choices.get_mut(i) {
                *slot = Column::from_key(v);
            }
        } else if k == "skip_bad" {
            skip_bad = true;
        } else if k == "action" {
            action = v.clone();
        }
    }
    {
        let Ok(mut st) = job.state.lock() else {
            return back_to_upload("That import is no longer here. Upload the file again.");
        };
        if !matches!(*st, JobState::Uploaded { .. }) {
            return page;
        }
        if action == "discard" {
            drop(st);
            if let Ok(mut jobs) = imports.jobs.lock() {
                jobs.remove(id);
            }
            let _ = std::fs::remove_file(&job.path);
            return "/customers/import".to_string();
        }
        *st = JobState::Uploaded {
            choices: choices.clone(),
            skip_bad,
        };
        if action != "start" {
            return page;
        }
        let mapping = match Mapping::from_choices(&job.headers, &choices) {
            Ok(m) => m,
            Err(message) => {
                return with_param(&page, "error", &message);
            }
        };
        *st = JobState::Running;
        start(state, user.id, job.clone(), mapping, skip_bad);
    }
    page
}
