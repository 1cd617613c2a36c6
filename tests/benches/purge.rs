//! Purge benchmark: `sameframe consent withdraw ID --scope all --purge-clinical-record
//! --confirm` on a consent with 10,000 encrypted captures (originals, thumbnails,
//! fingerprints, 200 exports inside the data directory, an evidence document), through the real
//! binary, end to end (process start, key unwrap, tombstones, audit entries, deletion
//! certificate). For scale, the same run times `rm -r` of a copy of the same files: the floor
//! any purge that removes them one by one pays.
//!
//! The populated store is built once (through the library, about 3 minutes) and cached under
//! `target/bench-work/purge/`; each run purges a fresh copy.
//!
//! Run: `cargo bench --bench purge` (`SAMEFRAME_BENCH_PURGE=N` for another size).

#![allow(clippy::unwrap_used)]

#[path = "common.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use sameframe::records::capture::ImportRequest;
use sameframe::records::consent::NewConsent;
use sameframe::records::{Area, Scope, View};
use serde_json::json;

fn count() -> usize {
    std::env::var("SAMEFRAME_BENCH_PURGE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000)
}

/// A 640×480 photo-like JPEG; `variant` makes each one different content.
fn photo(variant: usize) -> Vec<u8> {
    let base = image::open(common::root().join("fixtures/faces/astronaut.jpg"))
        .unwrap()
        .to_rgb8();
    let small = image::imageops::resize(&base, 640, 480, image::imageops::FilterType::Triangle);
    let mut img = small;
    // A unique pattern of pixels (as sensor noise would make every real photo unique).
    let mut rng = sameframe::testkit::Rng(variant as u64 + 1);
    for _ in 0..64 {
        let (x, y) = ((rng.next_u64() % 640) as u32, (rng.next_u64() % 480) as u32);
        img.put_pixel(x, y, image::Rgb([rng.next_u64() as u8; 3]));
    }
    let mut out = Vec::new();
    img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
        &mut out, 90,
    ))
    .unwrap();
    out
}

/// The populated store: (data dir, key file, consent id, files inside the data dir).
fn template(n: usize) -> (PathBuf, PathBuf, String) {
    let root = common::work_dir("purge").join(format!("template-{n}"));
    let (data, key) = (root.join("data"), root.join("store.key"));
    let stamp = root.join("consent-id");
    if let Ok(id) = std::fs::read_to_string(&stamp) {
        return (data, key, id);
    }
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    eprintln!("building a store with {n} captures under one consent (cached) …");
    let t = Instant::now();
    let store = common::new_embedded_store(&data, &key);
    store.add_patient("PURGE-1", None).unwrap();
    let doc = std::fs::read(common::root().join("fixtures/cmyk.jpg")).unwrap();
    let consent = store
        .grant_consent(NewConsent {
            identifiable: false,
            patient_ref: "PURGE-1",
            scopes: vec![Scope::Clinical, Scope::Teaching, Scope::Publication],
            signed_by: "PURGE-1",
            signed_on: chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(),
            expires_on: None,
            document: Some((doc, "consent.jpg".into())),
        })
        .unwrap()
        .id;
    let exports = data.join("exports");
    std::fs::create_dir_all(&exports).unwrap();
    for i in 0..n {
        let bytes = photo(i);
        let mut req = ImportRequest::new(
            &bytes,
            "bench",
            "PURGE-1",
            &consent,
            Area::Face,
            View::Frontal,
        );
        req.new_baseline = i % 50 == 0;
        let cap = store.import_capture(req).unwrap().capture;
        if i % 50 == 25 {
            store
                .export_capture(
                    &cap.id,
                    &exports.join(format!("{}.jpg", cap.id)),
                    Scope::Teaching,
                    false,
                )
                .unwrap();
        }
        if (i + 1) % 1000 == 0 {
            eprintln!("  {} / {n}", i + 1);
        }
    }
    drop(store);
    std::fs::write(&stamp, &consent).unwrap();
    eprintln!("  built in {:.0} s", t.elapsed().as_secs_f64());
    (data, key, consent)
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    let ok = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(ok.success());
}

fn files_under(d: &Path) -> usize {
    walk(d).len()
}

fn walk(d: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(d) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(walk(&p));
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn main() {
    let n = count();
    let (data, key, consent) = template(n);
    let work = common::work_dir("purge");
    let mut runs = Vec::new();
    let mut rm_ms = Vec::new();
    let mut last = serde_json::Value::Null;
    for run in 0..3 {
        let copy = work.join("run");
        copy_dir(&data, &copy);
        let before = files_under(&copy);
        // Drop the page cache's advantage for the copy just made: sync first.
        Command::new("sync").status().unwrap();
        let t = Instant::now();
        let out = Command::new(env!("CARGO_BIN_EXE_sameframe"))
            .args(["--json", "--data-dir"])
            .arg(&copy)
            .arg("--key-file")
            .arg(&key)
            .args([
                "consent",
                "withdraw",
                &consent,
                "--scope",
                "all",
                "--reason",
                "benchmark",
                "--purge-clinical-record",
                "--confirm",
            ])
            .env("SAMEFRAME_ACTOR", "bench")
            .output()
            .unwrap();
        let ms = t.elapsed().as_secs_f64() * 1e3;
        assert!(
            out.status.success(),
            "withdraw failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        last = serde_json::from_slice(&out.stdout).unwrap();
        let after = files_under(&copy);
        // Nothing of the consent is left readable, and the store is intact.
        let verify = Command::new(env!("CARGO_BIN_EXE_sameframe"))
            .args(["--json", "--data-dir"])
            .arg(&copy)
            .arg("--key-file")
            .arg(&key)
            .arg("verify")
            .output()
            .unwrap();
        assert!(verify.status.success(), "verify after purge failed");
        eprintln!("run {run}: {ms:.0} ms ({before} files before, {after} after)");
        runs.push(ms);

        // The floor: remove a copy of the same files.
        let copy2 = work.join("rm");
        copy_dir(&data, &copy2);
        Command::new("sync").status().unwrap();
        let t = Instant::now();
        let ok = Command::new("rm").arg("-r").arg(&copy2).status().unwrap();
        assert!(ok.success());
        rm_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let best = runs.iter().copied().fold(f64::INFINITY, f64::min);
    let median = common::median(&mut runs.clone());
    let rm = common::median(&mut rm_ms);
    let cert = &last["certificate"];
    let kinds = ["original", "document", "thumbnail", "export", "fingerprint"];
    let purged: serde_json::Map<String, serde_json::Value> = kinds
        .iter()
        .map(|k| {
            let c = cert["purged"]
                .as_array()
                .map_or(0, |a| a.iter().filter(|i| i["kind"] == *k).count());
            (k.to_string(), json!(c))
        })
        .collect();
    println!("\npurge of a consent with {n} captures (encrypted store, real binary, end to end)");
    println!(
        "  withdraw --scope all --purge-clinical-record: median {median:.0} ms, best {best:.0} ms"
    );
    println!("  rm -r of the same data directory:           median {rm:.0} ms");
    println!("  ratio (purge / rm -r): {:.2}x", median / rm);
    println!("  purged: {}", serde_json::Value::Object(purged.clone()));
    common::save_summary(
        "purge",
        &json!({
            "captures": n,
            "purge_ms_median": median,
            "purge_ms_best": best,
            "rm_ms_median": rm,
            "purged": purged,
        }),
    );
}
