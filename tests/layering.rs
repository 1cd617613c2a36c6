//! The layers, checked: database drivers and SQL only inside the storage backends, GUI and
//! camera crates only in the station. (Cargo already refuses a core that depends on them; this
//! also catches a backend type or a statement written into the wrong module of the store
//! crate, or into the binary.)

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every source file of the product (not its tests, which tamper with databases on purpose).
fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("crates"), &mut files);
    files
        .into_iter()
        .map(|f| {
            let rel = f.strip_prefix(root).unwrap().display().to_string();
            (rel, std::fs::read_to_string(&f).unwrap())
        })
        .collect()
}

/// Lines of `text` that are code (not comments or doc comments).
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim_start().starts_with("//"))
}

/// True when `line` names the path `name` (`name` not preceded by part of a longer name:
/// `eframe::` is not in `sameframe::`).
fn names(line: &str, name: &str) -> bool {
    line.match_indices(name).any(|(i, _)| {
        line[..i]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    })
}

fn offenders(allowed: &dyn Fn(&str) -> bool, hit: &dyn Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    for (file, text) in sources() {
        if allowed(&file) {
            continue;
        }
        for (n, line) in code_lines(&text) {
            if hit(line) {
                out.push(format!("{file}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    out
}

#[test]
fn database_drivers_live_only_in_their_backend() {
    let cases: [(&str, &str); 3] = [
        ("rusqlite", "crates/store/src/sqlite/"),
        ("postgres::", "crates/store/src/pg.rs"),
        ("object_store", "crates/store/src/s3.rs"),
    ];
    for (driver, home) in cases {
        let found = offenders(&|f| f.starts_with(home), &|l| names(l, driver));
        assert!(
            found.is_empty(),
            "{driver} outside {home}:\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn sql_lives_only_in_the_backends() {
    let keywords = [
        "SELECT ",
        "INSERT INTO",
        "DELETE FROM",
        "UPDATE ",
        "CREATE TABLE",
        "PRAGMA ",
        "BEGIN IMMEDIATE",
    ];
    let found = offenders(&|f| f.starts_with("crates/store/src/"), &|l| {
        // A statement is in a string literal.
        l.contains('"') && keywords.iter().any(|k| l.contains(k))
    });
    assert!(
        found.is_empty(),
        "SQL outside the storage backends:\n{}",
        found.join("\n")
    );
}

#[test]
fn gui_and_camera_crates_live_only_in_the_station() {
    for lib in ["egui::", "eframe::", "nokhwa::"] {
        let found = offenders(&|f| f.starts_with("crates/station/"), &|l| names(l, lib));
        assert!(
            found.is_empty(),
            "{lib} outside the station:\n{}",
            found.join("\n")
        );
    }
}

#[test]
fn provenance_formats_live_only_in_interop() {
    // The core decides what a manifest claims and what a reading means; the format's types
    // (c2pa, the certificate builder) stay in the interop crate, and the checks find them there.
    for lib in ["c2pa::", "rcgen::", "x509_parser::"] {
        let found = offenders(&|f| f.starts_with("crates/interop/"), &|l| names(l, lib));
        assert!(
            found.is_empty(),
            "{lib} outside interop:\n{}",
            found.join("\n")
        );
        let held = sources().iter().any(|(f, t)| {
            f.starts_with("crates/interop/") && code_lines(t).any(|(_, l)| names(l, lib))
        });
        assert!(held, "the interop crate should name {lib}");
    }
}

#[test]
fn the_check_itself_finds_what_it_looks_for() {
    // A guard that can never fail is no guard: the store crate does hold each of them.
    let store: Vec<(String, String)> = sources()
        .into_iter()
        .filter(|(f, _)| f.starts_with("crates/store/src/"))
        .collect();
    for needle in [
        "rusqlite",
        "postgres::",
        "object_store",
        "SELECT ",
        "INSERT INTO",
    ] {
        assert!(
            store
                .iter()
                .any(|(_, t)| code_lines(t).any(|(_, l)| names(l, needle))),
            "{needle} not found in the store crate: the check is looking in the wrong place"
        );
    }
}
