//! Starting the real binary with a broken setup gives a clear message and exit code 1, not a
//! panic.

use std::process::Command;

fn start(envs: &[(&str, &str)]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_herald"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("DATABASE_URL")
        .env("LEPTOS_SITE_ADDR", "127.0.0.1:0")
        .envs(envs.iter().copied())
        .output()
        .expect("run herald");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!stderr.contains("panicked"), "{stderr}");
    (out.status.code().unwrap_or(-1), stderr)
}

#[test]
fn a_corrupt_database_file_is_named_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("herald.db");
    let junk = b"this is not a database, it is a shopping list: eggs, milk".repeat(200);
    std::fs::write(&file, &junk).unwrap();
    let (code, err) = start(&[("HERALD_DATA_DIR", dir.path().to_str().unwrap())]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not a valid SQLite database"), "{err}");
    assert!(err.contains("herald.db"), "{err}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        junk,
        "the file is not touched"
    );
}

#[test]
fn a_wrong_database_url_is_explained_without_its_password() {
    let (code, err) = start(&[("DATABASE_URL", "mysql://root:hunter2@localhost/herald")]);
    assert_eq!(code, 1);
    assert!(err.contains("not supported"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");

    let (code, err) = start(&[(
        "DATABASE_URL",
        "postgres://herald:hunter2@127.0.0.1:1/herald",
    )]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot open the database"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn a_bad_setting_names_the_variable() {
    let (code, err) = start(&[("HERALD_SESSION_HOURS", "forever")]);
    assert_eq!(code, 1);
    assert!(err.contains("HERALD_SESSION_HOURS"), "{err}");
    let (code, err) = start(&[("HERALD_CONFIG", "/nonexistent/Leptos.toml")]);
    assert_eq!(code, 1);
    assert!(err.contains("cannot read the configuration file"), "{err}");
}
