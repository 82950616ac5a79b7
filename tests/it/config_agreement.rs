//! Cargo.toml (read by cargo-leptos when building) and Leptos.toml (read by the binary when
//! running) both carry the site settings; they must not silently disagree.

use std::path::Path;

fn leptos_table(file: &str) -> toml::Table {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    let doc: toml::Table = toml::from_str(&text).unwrap();
    doc["package"]["metadata"]["leptos"]
        .as_table()
        .unwrap()
        .clone()
}

#[test]
fn shared_site_settings_agree() {
    let cargo = leptos_table("Cargo.toml");
    let runtime = leptos_table("Leptos.toml");
    assert!(!runtime.is_empty());
    for (key, value) in &runtime {
        assert_eq!(
            cargo.get(key),
            Some(value),
            "Leptos.toml sets {key} = {value}, Cargo.toml's [package.metadata.leptos] says {:?}",
            cargo.get(key)
        );
    }
    for key in ["output-name", "site-root", "site-pkg-dir", "site-addr"] {
        assert!(runtime.contains_key(key), "Leptos.toml must set {key}");
    }
}
