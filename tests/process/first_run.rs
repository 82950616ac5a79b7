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
    let mut child = herald(dir)
        .args(args)
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
