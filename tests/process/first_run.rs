//! The first run of the real binary: an empty database has no accounts and says how to make
//! the first admin; `herald create-admin` reads the password from stdin (never argv) and
//! holds it to the password rule; the admin then signs in. Demo data comes only when asked,
//! and never into a database that already holds customers.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn herald(dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_herald"));
    c.env(
        "HERALD_CONFIG",
        concat!(env!("CARGO_MANIFEST_DIR"), "/Leptos.toml"),
    )
    .env_remove("DATABASE_URL")
    .env_remove("HERALD_DEMO_DATA")
    .env("HERALD_DATA_DIR", dir)
    .env("RUST_LOG", "warn");
    c
}

/// A running server, killed when dropped; what it printed until it was ready, and its address.
struct Server {
    child: Child,
    said: String,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &std::path::Path, args: &[&str]) -> Server {
    serve_with(dir, args, &[])
}

fn serve_with(dir: &std::path::Path, args: &[&str], envs: &[(&str, &str)]) -> Server {
    let mut child = herald(dir)
        .args(args)
        .envs(envs.iter().copied())
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start herald");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (mut said, started) = (String::new(), Instant::now());
    let mut addr = String::new();
    while started.elapsed() < Duration::from_secs(60) {
        let Some(Ok(line)) = lines.next() else { break };
        said.push_str(&line);
        said.push('\n');
        if let Some(a) = line.strip_prefix("Herald is running at ") {
            addr = a.to_string();
        }
        // The last line it prints at start.
        if line.starts_with("Sign in at ") {
            break;
        }
    }
    assert!(!addr.is_empty(), "herald did not start: {said}");
    std::thread::spawn(move || for _ in lines {});
    Server { child, said, addr }
}

fn create_admin(dir: &std::path::Path, email: &str, password: &str) -> (i32, String) {
    let mut child = herald(dir)
        .args(["create-admin", email, "--name", "Ada Admin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run create-admin");
    writeln!(child.stdin.take().unwrap(), "{password}").unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "{text}");
    (out.status.code().unwrap_or(-1), text)
}

async fn sign_in(addr: &str, email: &str, password: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(format!("{addr}/api/login"))
        .header("accept", "application/json")
        .header("origin", addr)
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn an_empty_database_asks_for_the_first_admin_then_it_signs_in() {
    let dir = tempfile::tempdir().unwrap();
    let first = serve(dir.path(), &[]);
    assert!(
        first.said.contains("No admin account yet"),
        "{}",
        first.said
    );
    assert!(first.said.contains("herald create-admin"), "{}", first.said);
    assert!(
        !first.said.contains("Demo sign-ins"),
        "no demo data unless asked"
    );
    assert_eq!(
        sign_in(&first.addr, "admin@herald.test", "herald-demo").await,
        reqwest::StatusCode::BAD_REQUEST,
        "no demo accounts"
    );
    drop(first);

    let (code, said) = create_admin(dir.path(), "ada@example.com", "password1234");
    assert_eq!(code, 1, "{said}");
    assert!(said.contains("too easy to guess"), "{said}");
    let strong = "quiet lantern orbit 1847";
    let (code, said) = create_admin(dir.path(), "Ada@Example.com", strong);
    assert_eq!(code, 0, "{said}");
    assert!(
        said.contains("Created the admin account ada@example.com"),
        "{said}"
    );
    let (code, said) = create_admin(dir.path(), "ada@example.com", strong);
    assert_eq!(code, 1);
    assert!(said.contains("already exists"), "{said}");

    let server = serve(dir.path(), &[]);
    assert!(
        !server.said.contains("No admin account yet"),
        "{}",
        server.said
    );
    assert_eq!(
        sign_in(&server.addr, "ada@example.com", strong).await,
        reqwest::StatusCode::OK
    );
    assert_eq!(
        sign_in(&server.addr, "ada@example.com", "wrong password").await,
        reqwest::StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn demo_data_comes_only_into_an_empty_database() {
    // Customers generated before the first start: --demo then starts, without demo data.
    let dir = tempfile::tempdir().unwrap();
    let out = herald(dir.path())
        .args(["generate-customers", "50"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = serve(dir.path(), &["--demo"]);
    assert!(
        server.said.contains("Demo data not loaded"),
        "{}",
        server.said
    );
    assert!(
        server.said.contains("No admin account yet"),
        "{}",
        server.said
    );
    drop(server);

    let fresh = tempfile::tempdir().unwrap();
    let demo = serve(fresh.path(), &["--demo"]);
    assert!(demo.said.contains("Loaded demo data"), "{}", demo.said);
    assert!(demo.said.contains("Demo sign-ins"), "{}", demo.said);
    assert_eq!(
        sign_in(&demo.addr, "admin@herald.test", "herald-demo").await,
        reqwest::StatusCode::OK
    );
}

/// README's first command starts with `--demo`; a later production start in the same folder
/// (without it) must not keep serving the demo accounts and their published password.
#[tokio::test]
async fn demo_accounts_sign_in_only_while_herald_runs_with_demo() {
    let dir = tempfile::tempdir().unwrap();
    let demo = serve(dir.path(), &["--demo"]);
    assert_eq!(
        sign_in(&demo.addr, "admin@herald.test", "herald-demo").await,
        reqwest::StatusCode::OK
    );
    drop(demo);

    let production = serve(dir.path(), &[]);
    assert!(
        production.said.contains("Deactivated the demo accounts")
            && production.said.contains("admin@herald.test"),
        "{}",
        production.said
    );
    assert!(
        production.said.contains("No admin account yet"),
        "{}",
        production.said
    );
    for (email, _, _) in herald::server::seed::DEMO_USERS {
        assert_eq!(
            sign_in(&production.addr, email, "herald-demo").await,
            reqwest::StatusCode::BAD_REQUEST,
            "{email} still signs in"
        );
    }
    drop(production);

    let again = serve(dir.path(), &["--demo"]);
    assert_eq!(
        sign_in(&again.addr, "staff@herald.test", "herald-demo").await,
        reqwest::StatusCode::OK,
        "--demo lets them in again"
    );
}

/// A lost key file must not be replaced silently by a new key: every sealed setting would
/// then fail to open (and instances with different keys would fail each other's).
#[tokio::test]
async fn a_lost_key_stops_the_start_instead_of_making_a_new_one() {
    let dir = tempfile::tempdir().unwrap();
    drop(serve(dir.path(), &["--demo"]));
    let key = dir.path().join("secret.key");
    std::fs::remove_file(&key).unwrap();
    let out = herald(dir.path())
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(
        said.contains("sealed settings") && said.contains("Restore the key"),
        "{said}"
    );
    assert!(!said.contains("panicked"), "{said}");
    assert!(!key.exists(), "the new key is not kept");
}

/// A process's resident memory (`VmRSS`) in KiB.
fn rss_kib(pid: u32) -> u64 {
    crate::status_kib(pid, "VmRSS")
}

/// Signed-out sign-ins with 10,000 distinct long emails, from many client addresses (behind a
/// trusted proxy): the sign-in limits keep nothing of what was typed, so the server's memory
/// stays where it was. (Before, each email became a key of the limiter, kept for good.)
#[tokio::test]
async fn ten_thousand_long_emails_leave_the_servers_memory_flat() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_with(dir.path(), &[], &[("HERALD_TRUSTED_PROXIES", "127.0.0.1")]);
    let pid = server.child.id();
    let client = reqwest::Client::new();
    let post = |i: usize| {
        let email = format!("{i}-{}@herald.test", "x".repeat(64 * 1024));
        client
            .post(format!("{}/api/login", server.addr))
            .header("accept", "application/json")
            .header("origin", &server.addr)
            .header("x-forwarded-for", format!("2001:db8:{:x}::1", i % 5000))
            .form(&[("email", email.as_str()), ("password", "guess")])
            .send()
    };
    use futures::StreamExt;
    // Warm up (allocator arenas, pools), then measure.
    let warm: Vec<_> = futures::stream::iter(0..500)
        .map(post)
        .buffer_unordered(8)
        .collect()
        .await;
    assert!(
        warm.iter()
            .all(|r| r.as_ref().is_ok_and(|r| r.status() == 400))
    );
    let before = rss_kib(pid);
    let answers: Vec<_> = futures::stream::iter(500..10_500)
        .map(post)
        .buffer_unordered(8)
        .collect()
        .await;
    let refused = answers
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|r| r.status() == 400))
        .count();
    assert_eq!(refused, 10_000, "each refused as a wrong sign-in");
    let after = rss_kib(pid);
    let grown_mib = after.saturating_sub(before) / 1024;
    println!(
        "RSS {} MiB before, {} MiB after 10,000 sign-ins of 64 KB emails",
        before / 1024,
        after / 1024
    );
    assert!(
        grown_mib < 64,
        "the server grew by {grown_mib} MiB and kept it"
    );
}
