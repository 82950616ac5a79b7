//! Test databases: a fresh SQLite file, and a fresh PostgreSQL database on the server named by
//! TEST_DATABASE_URL (or DATABASE_URL). Without one, PostgreSQL tests are skipped with a note,
//! except under CI=true, where that is a failure.
#![allow(dead_code)]

use herald::server::db::Db;
use herald::server::db::secrets::Sealer;

/// The key test databases seal channel settings with; a Herald process a test starts on one
/// gets it as `HERALD_SECRET_KEY`, as every instance of a real deployment shares its key.
pub const SECRET_KEY: &str = "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=";

fn sealed(db: Db) -> Db {
    db.with_sealer(Sealer::from_base64(SECRET_KEY).expect("the test key is a key"))
}

/// A test database starts without quiet hours and without opt-ins required, so that a test's
/// sends do not depend on the hour it runs at nor on consent records; the tests of quiet hours
/// and of consent set their own rules.
async fn without_quiet_hours(db: &Db) {
    let rules = herald::model::workspace::Rules {
        quiet: None,
        consent_kinds: Vec::new(),
        ..Default::default()
    };
    db.save_workspace_rules(&rules, None, chrono::Utc::now())
        .await
        .expect("store the workspace's rules");
}

pub struct TestDb {
    pub db: Db,
    /// Where it is, for a Herald process started by the test.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
    pg: Option<(String, String)>,
}

impl TestDb {
    /// A folder for files that lives as long as this database.
    pub fn dir(&self) -> std::path::PathBuf {
        match &self._dir {
            Some(d) => d.path().to_path_buf(),
            None => std::env::temp_dir(),
        }
    }

    /// Drops the PostgreSQL database again (SQLite's folder goes with the TempDir).
    pub async fn cleanup(self) {
        self.db.close().await;
        if let Some((admin_url, name)) = self.pg
            && let Ok(admin) = sqlx::PgPool::connect(&admin_url).await
        {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .execute(&admin)
                .await;
            admin.close().await;
        }
    }
}

pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("herald.db").display());
    let db = sealed(Db::connect(&url).await.expect("open sqlite"));
    without_quiet_hours(&db).await;
    TestDb {
        db,
        url,
        _dir: Some(dir),
        pg: None,
    }
}

/// The PostgreSQL server to test against, if any.
pub fn pg_admin_url() -> Option<String> {
    let url = std::env::var("TEST_DATABASE_URL")
        .ok()
        .or_else(|| std::env::var("DATABASE_URL").ok())
        .filter(|u| u.starts_with("postgres"));
    if url.is_none() {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but TEST_DATABASE_URL is not set: PostgreSQL tests may not be skipped");
        }
        eprintln!(
            "SKIPPED (PostgreSQL): set TEST_DATABASE_URL=postgres://… to run this test on PostgreSQL"
        );
    }
    url
}

pub async fn postgres() -> Option<TestDb> {
    let admin_url = pg_admin_url()?;
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let name = format!(
        "herald_test_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
        chrono::Utc::now().timestamp_micros() % 1_000_000
    );
    let admin = sqlx::PgPool::connect(&admin_url)
        .await
        .expect("connect to TEST_DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&admin)
        .await
        .expect("create test database");
    admin.close().await;
    let url = replace_db_name(&admin_url, &name);
    let db = sealed(Db::connect(&url).await.expect("open postgres"));
    without_quiet_hours(&db).await;
    Some(TestDb {
        db,
        url,
        _dir: None,
        pg: Some((admin_url, name)),
    })
}

fn replace_db_name(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let base = match base[scheme_end..].rfind('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Declares each listed `async fn(&Db)` as two tests, `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let t = $crate::common::sqlite().await;
                    super::$name(&t.db).await;
                    t.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(t) = $crate::common::postgres().await else { return };
                    super::$name(&t.db).await;
                    t.cleanup().await;
                }
            )*
        }
    };
}

/// Moves `clock` on by `by` and runs `dispatcher`'s rounds until two in a row claim nothing
/// (a round that falls back or chooses an A/B winner sends in the next).
pub async fn rounds_after(
    dispatcher: &herald::server::dispatch::Dispatcher,
    clock: &herald::server::clock::FixedClock,
    by: chrono::Duration,
) {
    clock.advance(by);
    let mut idle = 0;
    for _ in 0..100 {
        let r = dispatcher.round().await.unwrap();
        idle = if r.claimed == 0 { idle + 1 } else { 0 };
        if idle == 2 {
            return;
        }
    }
    panic!("rounds kept claiming");
}
