//! Storage: one interface over SQLite (embedded default) and PostgreSQL (scale-out).
//!
//! [`Db`] wraps a pool of either kind. Most statements are the same text on both (sqlx binds
//! `$1`-style parameters on SQLite too); where the dialects differ, [`Dialect`] picks the text.
//! Each method body is written once and compiled for both pool types by [`on_pool!`].

mod ab;
mod approval;
mod audience;
mod audit;
mod broadcasts;
mod channels;
mod claims;
mod compose;
mod consent;
mod cost;
mod counters;
mod customers;
mod directory;
mod eligible;
mod events;
mod fallback;
mod fire;
mod import;
mod inbound;
pub mod inspect;
mod labels;
mod messages;
mod rate;
mod record;
mod reports;
mod resend;
mod results;
mod retarget;
pub mod retry;
pub mod search;
pub mod secrets;
mod sign_in;
mod split;
mod staff;
pub mod states;
mod upgrade;
mod users;
mod workspace;

pub use ab::{AbDecision, AbDue, VariantRow};
pub use approval::ApprovalRecord;
pub use audience::{AudienceBind, AudienceSql, Breakdown, REPLY_WINDOW_HOURS, audience_clause};
pub use audit::{AuditFilter, AuditRecord};
pub use broadcasts::{BroadcastRecord, NewBroadcast, PauseError};
pub use channels::ChannelRecord;
pub use claims::{Claimed, Content};
pub use compose::{ComposeError, EnabledChannel};
pub use consent::{ConsentChange, ConsentRow};
pub use cost::SentGroup;
pub use counters::minute as minute_of;
pub use customers::{CustomerPageRows, CustomerRecord, UpdateError};
pub use directory::{NewChannel, NewCustomer};
pub use eligible::{Eligibility, LeftOut};
pub use events::RESYNC;
pub use fallback::{FallbackBroadcast, FellBack, Hop};
pub use fire::{Fired, PrefixWaves, WavePlan};
pub use import::{ImportMsg, ImportRow, ImportTally, KEPT_ERRORS, Progress};
pub use inbound::Inbound;
pub use labels::{LabelError, LabelKind};
pub use messages::{ChatRecord, DeliveryRecord, Outbound, Recipient};
pub use rate::{Take, take_tokens};
pub use record::Outcome;
pub use reports::{Applied, DeliveryEvent, DeliveryRef, Report, ReportDetail};
pub use resend::ResendError;
pub use results::{ChannelCounts, RecipientAnchor, RecipientRecord, RetryError};
pub use sign_in::{FailureCount, FailureKeys, Failures};
pub use staff::{StaffError, StaffRecord, TokenPurpose};
pub use users::UserRecord;
pub use workspace::NextWave;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// Runs `$body` with `$pool` bound to whichever pool `$db` holds.
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match &$db.pool {
            $crate::server::db::Pool::Sqlite($pool) => $body,
            $crate::server::db::Pool::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Opens a transaction that holds the write lock from its start (SQLite) or a plain one.
/// SQLite's default (deferred) transaction reads first and asks for the write lock at its
/// first write; if another connection committed meanwhile it fails at once with "database is
/// locked" instead of waiting, which concurrent sends make likely. Every transaction that
/// writes should start with this.
macro_rules! begin_write {
    ($p:expr, $dialect:expr) => {
        match $dialect {
            $crate::server::db::Dialect::Sqlite => $p.begin_with("BEGIN IMMEDIATE").await?,
            $crate::server::db::Dialect::Postgres => $p.begin().await?,
        }
    };
}
pub(crate) use begin_write;

/// Appends to the audit log inside an open transaction `$tx` (so the entry commits or rolls
/// back with the change it records): `audit_in!(tx, &entry)` with an [`AuditEntry`], or the
/// entry's six values in order.
macro_rules! audit_in {
    ($tx:expr, $entry:expr) => {{
        let e: &$crate::server::db::AuditEntry = $entry;
        audit_in!(
            $tx,
            e.at,
            e.actor,
            e.action,
            e.subject_type,
            e.subject_id,
            &e.detail
        )
    }};
    ($tx:expr, $at:expr, $actor:expr, $action:expr, $subject_type:expr, $subject_id:expr, $detail:expr) => {
        sqlx::query(
            "INSERT INTO audit_log (at, actor_id, action, subject_type, subject_id, detail) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind($at)
        .bind($actor)
        .bind($action)
        .bind($subject_type)
        .bind($subject_id)
        .bind($detail)
        .execute(&mut *$tx)
        .await
    };
}
pub(crate) use audit_in;

impl Db {
    /// Runs one statement as written (the demo data's bulk outcomes; tests reach it through
    /// [`inspect::Inspect::execute`]).
    pub(crate) async fn execute(&self, sql: &str) -> Result<u64, DbError> {
        Ok(on_pool!(self, p => sqlx::query(sql).execute(p).await?.rows_affected()))
    }
}

/// One line of the audit log: who did what to which subject, when. Storage methods that
/// change something take one and write it in the change's own transaction.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor: Option<crate::model::UserId>,
    pub action: &'static str,
    pub subject_type: &'static str,
    pub subject_id: Option<i64>,
    pub detail: String,
}

impl AuditEntry {
    pub fn new(
        at: chrono::DateTime<chrono::Utc>,
        actor: Option<crate::model::UserId>,
        action: &'static str,
        subject_type: &'static str,
        subject_id: Option<i64>,
    ) -> Self {
        AuditEntry {
            at,
            actor,
            action,
            subject_type,
            subject_id,
            detail: String::new(),
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }

    /// The same entry about `id` (known only once the change made it).
    pub fn about(&self, id: i64) -> Self {
        AuditEntry {
            subject_id: Some(id),
            ..self.clone()
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Which SQL dialect a statement must be written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// The database, whichever backend it is.
#[derive(Clone, Debug)]
pub struct Db {
    pub(crate) pool: Pool,
    /// Chat events for the pages that show conversations live.
    events: std::sync::Arc<events::Bus>,
    /// Seals channel settings on their way in and opens them on their way out.
    sealer: crate::server::db::secrets::Sealer,
    /// How long after a broadcast message an unquoted inbound message may count as the reply
    /// to it (`reply-window-hours`).
    reply_window: chrono::Duration,
}

/// Why the database could not be opened; each says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error(
        "DATABASE_URL {0:?} is not supported: use sqlite://path/to/file.db or postgres://user@host/db"
    )]
    UnsupportedUrl(String),
    #[error("cannot create the data folder {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the database file {path} is not a valid SQLite database ({source}); move it away to start afresh, or restore a backup"
    )]
    Corrupt { path: String, source: sqlx::Error },
    #[error("cannot open the database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("cannot bring the database {url} up to date: {source}")]
    Migrate {
        url: String,
        source: sqlx::migrate::MigrateError,
    },
    #[error("cannot bring the database {url} up to date: {reason}")]
    Upgrade { url: String, reason: String },
}

/// Errors from queries, for callers that need to tell "not found" from a broken database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
    /// A task the work ran in ended without an answer (it panicked).
    #[error("a database task failed: {0}")]
    Task(String),
    /// A sealed setting could not be opened.
    #[error(transparent)]
    Sealed(#[from] crate::server::db::secrets::SealError),
}

/// `url` with any password replaced by `***`, safe for logs and messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let Some((userinfo, host)) = rest.split_once('@') else {
        return url.to_string();
    };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

impl Db {
    /// The same database, sealing channel settings with `sealer` (the operator's key; see
    /// `secrets::Sealer::load`). Until this is called a database seals with a key of its own
    /// that dies with the process, which suits tests and tools.
    pub fn with_sealer(mut self, sealer: crate::server::db::secrets::Sealer) -> Db {
        self.sealer = sealer;
        self
    }

    /// The same database, attributing an unquoted inbound message to a broadcast message at
    /// most `hours` after it.
    pub fn with_reply_window(mut self, hours: i64) -> Db {
        self.reply_window = chrono::Duration::hours(hours);
        self
    }

    /// Opens (creating and migrating as needed) the database at `url`.
    pub async fn connect(url: &str) -> Result<Db, OpenError> {
        let shown = redact_url(url);
        if url.starts_with("sqlite:") {
            Self::connect_sqlite(url, &shown).await
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .map_err(|source| OpenError::Connect {
                    url: shown.clone(),
                    source,
                })?;
            sqlx::migrate!("migrations/postgres")
                .run(&pool)
                .await
                .map_err(|source| OpenError::Migrate { url: shown, source })?;
            Ok(Db {
                pool: Pool::Postgres(pool),
                events: Default::default(),
                sealer: crate::server::db::secrets::Sealer::ephemeral(),
                reply_window: chrono::Duration::hours(REPLY_WINDOW_HOURS),
            })
        } else {
            Err(OpenError::UnsupportedUrl(shown))
        }
    }

    async fn connect_sqlite(url: &str, shown: &str) -> Result<Db, OpenError> {
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|_| OpenError::UnsupportedUrl(shown.to_string()))?;
        let path = opts.get_filename().to_path_buf();
        if !in_memory && let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| OpenError::DataDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let opts = opts
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        // One connection for an in-memory database: each connection would see its own.
        let max = if in_memory { 1 } else { 8 };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .connect_with(opts)
            .await
            .map_err(|source| classify_sqlite_error(&path, shown, source))?;
        sqlx::migrate!("migrations/sqlite")
            .run(&pool)
            .await
            .map_err(|source| match source {
                sqlx::migrate::MigrateError::Execute(e) if is_not_a_database(&e) => {
                    OpenError::Corrupt {
                        path: path.display().to_string(),
                        source: e,
                    }
                }
                source => OpenError::Migrate {
                    url: shown.to_string(),
                    source,
                },
            })?;
        upgrade::widen_delivery_states(&pool)
            .await
            .map_err(|e| OpenError::Upgrade {
                url: shown.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Db {
            pool: Pool::Sqlite(pool),
            events: Default::default(),
            sealer: crate::server::db::secrets::Sealer::ephemeral(),
            reply_window: chrono::Duration::hours(REPLY_WINDOW_HOURS),
        })
    }

    pub fn dialect(&self) -> Dialect {
        match self.pool {
            Pool::Sqlite(_) => Dialect::Sqlite,
            Pool::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Closes every connection (waits for queries in flight).
    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }
}

fn is_not_a_database(e: &sqlx::Error) -> bool {
    match e {
        // SQLITE_NOTADB = 26; SQLITE_CORRUPT = 11.
        sqlx::Error::Database(d) => matches!(d.code().as_deref(), Some("26") | Some("11")),
        _ => false,
    }
}

fn classify_sqlite_error(path: &std::path::Path, shown: &str, source: sqlx::Error) -> OpenError {
    if is_not_a_database(&source) {
        OpenError::Corrupt {
            path: path.display().to_string(),
            source,
        }
    } else {
        OpenError::Connect {
            url: shown.to_string(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn passwords_never_appear_in_shown_urls() {
        assert_eq!(
            redact_url("postgres://herald:s3cret@db:5432/herald"),
            "postgres://herald:***@db:5432/herald"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1/test"),
            "postgres://postgres@127.0.0.1/test"
        );
        assert_eq!(
            redact_url("sqlite://data/herald.db"),
            "sqlite://data/herald.db"
        );
    }
}
