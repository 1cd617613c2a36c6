//! Memory benchmark: the peak resident memory of every command that decodes an image, on
//! images the limits allow that are costly to decode whole (the "allowed-limit bombs"):
//! a 9999 × 9999 16-bit RGBA PNG (800 MB decoded, from about a megabyte of file), the same
//! interlaced, a 10000 × 10000 JPEG, and a 10000 × 10000 WebP. The bar is 512 MiB for every
//! command and file; before the decode budget, the PNG took 1.1–1.7 GB.
//!
//! Run: `cargo bench --bench memory`.

#![allow(clippy::unwrap_used)]

#[path = "common.rs"]
mod common;
#[path = "../util/peak.rs"]
mod peak;

use std::path::{Path, PathBuf};
use std::process::Command;

use sameframe::testkit::files;

const BAR_MIB: f64 = 512.0;

/// The bombs, made once under the bench work folder.
fn bombs(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let mut make = |name: &str, f: &dyn Fn() -> Vec<u8>| {
        let p = dir.join(name);
        if !p.exists() {
            eprintln!("making {name} …");
            std::fs::write(&p, f()).unwrap();
        }
        out.push((name.to_string(), p));
    };
    make("png16-9999.png", &|| files::flat_png16(9999, 9999, false));
    make("png16-9999-interlaced.png", &|| {
        files::flat_png16(9999, 9999, true)
    });
    make("jpeg-10000.jpg", &|| {
        let img = image::RgbImage::from_fn(10_000, 10_000, |x, y| {
            image::Rgb([(x / 40) as u8, (y / 40) as u8, 128])
        });
        let mut v = Vec::new();
        img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut v, 80,
        ))
        .unwrap();
        v
    });
    make("webp-10000.webp", &|| {
        let img = image::RgbImage::from_pixel(10_000, 10_000, image::Rgb([120, 90, 60]));
        let mut v = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut v)
            .encode(img.as_raw(), 10_000, 10_000, image::ExtendedColorType::Rgb8)
            .unwrap();
        v
    });
    out
}

struct Station {
    data: PathBuf,
    key: PathBuf,
    consent: String,
}

fn sameframe(st: &Station, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sameframe"));
    c.arg("--json")
        .arg("--data-dir")
        .arg(&st.data)
        .arg("--key-file")
        .arg(&st.key)
        .args(args)
        .env("SAMEFRAME_ACTOR", "bench");
    c
}

fn station(dir: &Path) -> Station {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    let st = Station {
        data: dir.join("data"),
        key: dir.join("store.key"),
        consent: String::new(),
    };
    let ok = |mut c: Command| {
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    ok(sameframe(&st, &["init"]));
    ok(sameframe(&st, &["patient", "add", "--ref", "MEM-1"]));
    let c = ok(sameframe(
        &st,
        &[
            "consent",
            "grant",
            "--patient",
            "MEM-1",
            "--scope",
            "clinical,publication",
            "--signed-by",
            "MEM-1",
            "--signed-on",
            "2026-01-05",
        ],
    ));
    Station {
        consent: c["consent_id"].as_str().unwrap().to_string(),
        ..st
    }
}

fn main() {
    let work = common::work_dir("memory");
    let bombs = bombs(&work);
    let st = station(&work.join("station"));
    let mut rows = Vec::new();
    let mut worst: f64 = 0.0;
    println!("\npeak resident memory (MiB) of each command on each file; bar {BAR_MIB} MiB");
    for (name, path) in &bombs {
        let p = path.to_str().unwrap();
        let review_dir = work.join(format!("review-{name}"));
        let _ = std::fs::remove_dir_all(&review_dir);
        std::fs::create_dir_all(&review_dir).unwrap();
        std::fs::copy(path, review_dir.join(name)).unwrap();
        let r = review_dir.to_str().unwrap();
        let commands: Vec<(&str, Vec<&str>)> = vec![
            ("analyze lighting", vec!["analyze", "lighting", p]),
            (
                "analyze pose",
                vec!["analyze", "pose", "--baseline", p, "--frame", p],
            ),
            (
                "capture import",
                vec![
                    "capture",
                    "import",
                    p,
                    "--patient",
                    "MEM-1",
                    "--consent",
                    &st.consent,
                    "--area",
                    "face",
                    "--view",
                    "frontal",
                    "--new-baseline",
                ],
            ),
            ("review", vec!["review", r]),
            (
                "publish record",
                vec!["publish", "record", p, "--channel", "web", "--force"],
            ),
        ];
        for (what, args) in commands {
            let (out, mib) = peak::run(&mut sameframe(&st, &args));
            let result = if out.status.success() {
                "ok".to_string()
            } else {
                let e = String::from_utf8_lossy(&out.stderr);
                format!(
                    "refused: {}",
                    e.lines()
                        .next()
                        .unwrap_or("")
                        .chars()
                        .take(90)
                        .collect::<String>()
                )
            };
            println!("  {name:<28} {what:<17} {mib:>7.0}  {result}");
            worst = worst.max(mib);
            rows.push(serde_json::json!({"file": name, "command": what, "peak_mib": mib, "result": result}));
        }
    }
    println!(
        "worst peak {worst:.0} MiB (bar {BAR_MIB} MiB): {}",
        if worst < BAR_MIB { "within" } else { "OVER" }
    );
    let results = common::work_dir("results");
    std::fs::write(
        results.join("memory.json"),
        serde_json::to_string_pretty(&serde_json::json!({"rows": rows, "worst_mib": worst}))
            .unwrap(),
    )
    .unwrap();
}
