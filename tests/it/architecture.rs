//! The layering rules of `docs/ARCHITECTURE.md`, checked on the source itself: no import cycle
//! between files, `model` imports nothing of `server`, `api` or `ui`, `ui` reaches the server
//! only through `api`, `server` uses no `api` and, of `ui`, only the fragments it renders, and
//! `server::db` (storage) uses nothing of `server` above it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `src/server/db/mod.rs` → `server::db`; `src/lib.rs` → ``.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts
        .last()
        .is_some_and(|p| p == "mod" || p == "lib" || p == "main")
    {
        parts.pop();
    }
    parts.join("::")
}

/// The code of a file without its unit tests and comments.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    text.lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The paths a file names: `crate::a::b`, `crate::a::{b, c::d}`, `super::x` (made absolute).
fn named_paths(module: &str, code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    // `super::` in `a/b.rs` (module `a::b`) and in `a/b/mod.rs` (also `a::b`) is `a`.
    let mut parent: Vec<&str> = module.split("::").filter(|p| !p.is_empty()).collect();
    parent.pop();
    for (prefix, base) in [("crate::", String::new()), ("super::", parent.join("::"))] {
        let mut rest = code;
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().next_back();
            rest = &rest[at + prefix.len()..];
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: String = rest.chars().take_while(|c| ident(*c)).collect();
            let path = path.trim_end_matches(':').to_string();
            let join = |p: &str| {
                if base.is_empty() {
                    p.to_string()
                } else {
                    format!("{base}::{p}")
                }
            };
            let after = &rest[path.len()..];
            // `prefix::{a, b}` or `prefix::path::{a, b}`.
            let group = after
                .strip_prefix("::{")
                .or_else(|| path.is_empty().then(|| after.strip_prefix('{')).flatten());
            if !path.is_empty() {
                out.push(join(&path));
            }
            if let Some(group) = group {
                let group: String = group.chars().take_while(|c| *c != '}').collect();
                for item in group.split(',') {
                    let item = item.split(" as ").next().unwrap_or("").trim();
                    if !item.is_empty() && item != "self" && !item.contains('{') {
                        let full = if path.is_empty() {
                            item.to_string()
                        } else {
                            format!("{path}::{item}")
                        };
                        out.push(join(&full));
                    }
                }
            }
        }
    }
    out
}

/// The module (a file) that `path` lands in: its longest prefix that is a file's module.
fn resolve<'a>(modules: &'a BTreeSet<String>, path: &str) -> Option<&'a String> {
    let segs: Vec<&str> = path.split("::").collect();
    (1..=segs.len())
        .rev()
        .find_map(|n| modules.get(&segs[..n].join("::")))
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.retain(|f| !f.starts_with(src.join("bin")) && !f.ends_with("main.rs"));
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in &files {
        let me = module_of(&src, f);
        let text = code(&std::fs::read_to_string(f).unwrap());
        let to: BTreeSet<String> = named_paths(&me, &text)
            .iter()
            .filter_map(|p| resolve(&modules, p))
            .filter(|m| **m != me && !m.is_empty())
            .cloned()
            .collect();
        edges.insert(me, to);
    }
    edges
}

/// The modules on a cycle through `start`, if there is one.
fn cycle_through(edges: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut stack = vec![(start.to_string(), vec![start.to_string()])];
    let mut seen = BTreeSet::new();
    while let Some((at, path)) = stack.pop() {
        for next in edges.get(&at).into_iter().flatten() {
            if next == start {
                return Some(path);
            }
            if seen.insert(next.clone()) {
                let mut p = path.clone();
                p.push(next.clone());
                stack.push((next.clone(), p));
            }
        }
    }
    None
}

#[test]
fn no_file_imports_a_file_that_imports_it_back() {
    let edges = graph();
    let cycles: Vec<Vec<String>> = edges
        .keys()
        .filter_map(|m| cycle_through(&edges, m))
        .collect();
    assert!(cycles.is_empty(), "import cycles: {cycles:#?}");
}

#[test]
fn layers_point_one_way() {
    let edges = graph();
    let top = |m: &str| m.split("::").next().unwrap_or("").to_string();
    let mut wrong = Vec::new();
    for (from, tos) in &edges {
        for to in tos {
            let ok = match (top(from).as_str(), top(to).as_str()) {
                ("model", t) => t == "model",
                ("ui", t) => t != "server",
                ("server", "api") => false,
                ("server", "ui") => to == "ui::fragments",
                // Storage holds SQL and calls nothing above it.
                ("server", "server") if from.starts_with("server::db") => {
                    to.starts_with("server::db")
                }
                _ => true,
            };
            if !ok {
                wrong.push(format!("{from} → {to}"));
            }
        }
    }
    assert!(wrong.is_empty(), "imports against the layers: {wrong:#?}");
}

/// The check itself sees imports (a rule that could never fail would prove nothing).
#[test]
fn the_checker_reads_use_groups_and_super_paths() {
    let paths = named_paths(
        "server::db::claims",
        "use crate::model::{audience::Field, AppError};\nuse super::{Db, on_pool};\nuse crate::{ui, api::AppError as E};",
    );
    for p in [
        "model",
        "model::audience::Field",
        "model::AppError",
        "server::db::Db",
        "ui",
        "api::AppError",
    ] {
        assert!(paths.contains(&p.to_string()), "{p} in {paths:?}");
    }
    let mut edges = BTreeMap::new();
    edges.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    edges.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert!(cycle_through(&edges, "a").is_some());
}

/// The stored states' SQL spellings (`'pending'`, `'sending'` …) that appear in `text`.
fn spelled_states(text: &str) -> Vec<String> {
    use herald::model::Lifecycle;
    use herald::model::delivery::DeliveryState;
    let spellings = DeliveryState::ALL
        .iter()
        .map(|d| d.sql())
        .chain(Lifecycle::ALL.iter().map(|l| l.sql()));
    spellings
        .filter(|s| text.contains(s))
        .map(str::to_string)
        .collect()
}

/// SQL names a state through `server::db::states` (from the model's enums), never by its
/// text, so renaming a state cannot leave a query behind.
#[test]
fn no_query_spells_a_state_outside_the_model() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut found = Vec::new();
    for f in files.iter().filter(|f| !f.starts_with(src.join("model"))) {
        let spelled = spelled_states(&code(&std::fs::read_to_string(f).unwrap()));
        if !spelled.is_empty() {
            found.push(format!("{}: {spelled:?}", f.display()));
        }
    }
    assert!(found.is_empty(), "states spelled in SQL: {found:#?}");
    // The check sees a spelled state.
    assert_eq!(
        spelled_states("WHERE d.state = 'pending'"),
        vec!["'pending'"]
    );
}
