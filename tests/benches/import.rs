//! Import benchmark: a 12 MP JPEG through the real `sameframe capture import` (hash, preview
//! decode, durable write, row) against `sha256sum` plus `cp` of the same file in the same run,
//! into a plaintext store, an encrypted one, and an encrypted shared store (PostgreSQL + S3 on
//! loopback, started for the run when none is given); plus the in-process breakdown.
//!
//! Run: `cargo bench --bench import`

#![allow(clippy::unwrap_used)]

#[path = "common.rs"]
mod common;
#[path = "../util/mod.rs"]
mod util;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// A photo-like 4000×3000 JPEG: the fixture portrait enlarged with sensor-like noise.
fn twelve_megapixel(dir: &Path) -> Vec<u8> {
    let cache = dir.join("12mp.jpg");
    if let Ok(b) = std::fs::read(&cache) {
        return b;
    }
    let src = image::open(common::root().join("fixtures/faces/astronaut.jpg"))
        .unwrap()
        .to_rgb8();
    let big = image::imageops::resize(&src, 4000, 3000, image::imageops::FilterType::Triangle);
    let mut rng = sameframe::testkit::Rng(12);
    let noisy = image::RgbImage::from_fn(4000, 3000, |x, y| {
        let p = big.get_pixel(x, y).0;
        image::Rgb(p.map(|v| (f64::from(v) + rng.gauss() * 5.0).round().clamp(0.0, 255.0) as u8))
    });
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 92);
    noisy.write_with_encoder(enc).unwrap();
    std::fs::write(&cache, &out).unwrap();
    out
}

/// The same image with a different comment segment, so each import is new content.
fn variant(jpeg: &[u8], i: usize) -> Vec<u8> {
    let text = format!("bench variant {i}");
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xFF, 0xFE]);
    out.extend_from_slice(&((text.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(text.as_bytes());
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn sameframe(data: &Path, key: Option<&Path>, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sameframe"));
    c.args(args)
        .arg("--json")
        .arg("--data-dir")
        .arg(data)
        .env("SAMEFRAME_ACTOR", "bench")
        .env_remove("SAMEFRAME_PASSPHRASE");
    match key {
        Some(k) => c.arg("--key-file").arg(k),
        None => c.env_remove("SAMEFRAME_KEY_FILE"),
    };
    c.stdin(std::process::Stdio::null());
    c
}

fn run_ok(mut c: Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{c:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn store(
    dir: &Path,
    name: &str,
    encrypted: bool,
    shared: &[String],
) -> (PathBuf, Option<PathBuf>, String) {
    let data = dir.join(name);
    let _ = std::fs::remove_dir_all(&data);
    let key = encrypted.then(|| dir.join(format!("{name}.key")));
    if let Some(k) = &key {
        let _ = std::fs::remove_file(k);
    }
    let mut init: Vec<&str> = if encrypted {
        vec!["init"]
    } else {
        vec!["init", "--no-encryption"]
    };
    init.extend(shared.iter().map(String::as_str));
    run_ok(sameframe(&data, key.as_deref(), &init));
    run_ok(sameframe(
        &data,
        key.as_deref(),
        &["patient", "add", "--ref", "B1"],
    ));
    let c = run_ok(sameframe(
        &data,
        key.as_deref(),
        &[
            "consent",
            "grant",
            "--patient",
            "B1",
            "--scope",
            "clinical",
            "--signed-by",
            "B1",
            "--signed-on",
            "2026-01-01",
        ],
    ));
    let v: serde_json::Value = serde_json::from_str(&c).unwrap();
    (data, key, v["consent_id"].as_str().unwrap().to_string())
}

/// One `capture import F1 … Fn` of new variants into `store`, against `sha256sum F1 … Fn`
/// and `cp F1 … Fn` of the same files in one shell, then the deferred work.
fn batch(dir: &Path, jpeg: &[u8], store: &(PathBuf, Option<PathBuf>, String)) -> Batch {
    let n = 24;
    let files: Vec<PathBuf> = (0..n)
        .map(|i| {
            let p = dir.join(format!("batch{i}.jpg"));
            std::fs::write(&p, variant(jpeg, 1000 + i)).unwrap();
            p
        })
        .collect();
    let names: Vec<&str> = files.iter().map(|f| f.to_str().unwrap()).collect();
    let (data, key, consent) = store;
    let mut args = vec!["capture", "import"];
    args.extend(&names);
    args.extend([
        "--patient",
        "B1",
        "--consent",
        consent,
        "--area",
        "face",
        "--view",
        "oblique_left_45",
    ]);
    let t = Instant::now();
    run_ok(sameframe(data, key.as_deref(), &args));
    let import_ms = t.elapsed().as_secs_f64() * 1e3;
    let dest = dir.join("cp-batch");
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::create_dir_all(&dest).unwrap();
    let list = names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let t = Instant::now();
    let ok = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "sha256sum {list} >/dev/null && cp {list} '{}'",
            dest.display()
        ))
        .status()
        .unwrap();
    assert!(ok.success());
    let peer_ms = t.elapsed().as_secs_f64() * 1e3;
    // The deferred work, counted: the previews and fingerprints, made later by `fingerprint
    // backfill` (or the next review) on every core.
    let t = Instant::now();
    let made = run_ok(sameframe(
        data,
        key.as_deref(),
        &["fingerprint", "backfill"],
    ));
    let deferred_ms = t.elapsed().as_secs_f64() * 1e3;
    let made: serde_json::Value = serde_json::from_str(&made).unwrap();
    // The store's single imports above were deferred too: the cost per capture, for the batch.
    let computed = made["computed"].as_u64().unwrap_or(0) as f64;
    assert!(computed >= n as f64, "{made}");
    Batch {
        import_ms,
        peer_ms,
        deferred_ms: deferred_ms / computed * n as f64,
        files: n,
    }
}

/// A batch's figures.
struct Batch {
    import_ms: f64,
    peer_ms: f64,
    deferred_ms: f64,
    files: usize,
}

/// Imports that make their preview and fingerprint at once (`--derive-now`), the median: the
/// cost that deferral moves out of the import.
fn derive_now(files: &[PathBuf], store: &(PathBuf, Option<PathBuf>, String)) -> f64 {
    let (data, key, consent) = store;
    let mut t = Vec::new();
    for f in files {
        let start = Instant::now();
        let mut args = util::import_args(f.to_str().unwrap(), "B1", consent, "lateral_left_90");
        args.push("--derive-now");
        run_ok(sameframe(data, key.as_deref(), &args));
        t.push(start.elapsed().as_secs_f64() * 1e3);
    }
    common::median(&mut t)
}

fn main() {
    let dir = common::work_dir("import");
    let jpeg = twelve_megapixel(&dir);
    let n = 12;
    let files: Vec<PathBuf> = (0..n)
        .map(|i| {
            let p = dir.join(format!("v{i}.jpg"));
            std::fs::write(&p, variant(&jpeg, i)).unwrap();
            p
        })
        .collect();
    println!("12 MP JPEG: {} bytes, {} runs each", jpeg.len(), n);

    let servers = util::Servers::from_env_or_private(&dir.join("servers"));
    let shared_flags = servers.as_ref().map(|(sv, _)| {
        let backend = util::Backend::Shared {
            database_url: sv.fresh_database("sf_bench_import"),
            blob_url: format!("s3://{}/bench-import-{}", sv.bucket, std::process::id()),
            servers: sv.clone(),
        };
        let creds = dir.join("credentials");
        sv.write_credentials(&creds);
        backend.init_flags(&creds)
    });
    let mut stores = vec![
        ("plaintext", store(&dir, "plaintext", false, &[])),
        ("encrypted", store(&dir, "encrypted", true, &[])),
    ];
    if let Some(flags) = &shared_flags {
        stores.push(("shared", store(&dir, "shared", true, flags)));
    }
    // Interleaved: each file goes into every store in turn, so drift on the machine falls on
    // all of them alike.
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); stores.len()];
    for f in &files {
        for (k, (_, (data, key, consent))) in stores.iter().enumerate() {
            let t = Instant::now();
            let args = util::import_args(f.to_str().unwrap(), "B1", consent, "frontal");
            run_ok(sameframe(data, key.as_deref(), &args));
            times[k].push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    let results: Vec<(&str, f64)> = stores
        .iter()
        .zip(&mut times)
        .map(|((name, _), t)| (*name, common::median(t)))
        .collect();
    // Peer: sha256sum then cp of the same files (fresh destinations), in the same run.
    let dest = dir.join("cp");
    let _ = std::fs::remove_dir_all(&dest);
    std::fs::create_dir_all(&dest).unwrap();
    let mut peer = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let t = Instant::now();
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "sha256sum '{}' >/dev/null && cp '{}' '{}'",
                f.display(),
                f.display(),
                dest.join(format!("{i}.jpg")).display()
            ))
            .status()
            .unwrap();
        assert!(ok.success());
        peer.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let peer_ms = common::median(&mut peer);
    // Peer with the copy made durable (`sync FILE`), as the import's write is.
    let mut peer_sync = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let to = dest.join(format!("s{i}.jpg"));
        let t = Instant::now();
        let ok = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "sha256sum '{}' >/dev/null && cp '{}' '{}' && sync '{}'",
                f.display(),
                f.display(),
                to.display(),
                to.display()
            ))
            .status()
            .unwrap();
        assert!(ok.success());
        peer_sync.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let peer_sync_ms = common::median(&mut peer_sync);
    let b = batch(&dir, &jpeg, &stores[1].1);
    let (batch_ms, batch_peer_ms, batch_n) = (b.import_ms, b.peer_ms, b.files);
    let now_files: Vec<PathBuf> = (0..6)
        .map(|i| {
            let p = dir.join(format!("now{i}.jpg"));
            std::fs::write(&p, variant(&jpeg, 2000 + i)).unwrap();
            p
        })
        .collect();
    let now_ms = derive_now(&now_files, &stores[1].1);

    // In-process breakdown of one import's work.
    let bytes = variant(&jpeg, 999);
    let limits = sameframe::calibration::Limits::default();
    let (hash_ms, hash) = common::best_ms(5, || sameframe::ids::sha256_hex(&bytes));
    let (structure_ms, _) = common::best_ms(5, || {
        sameframe::ingest::check_structure(&bytes, sameframe::ingest::ImageKind::Jpeg, "x").unwrap()
    });
    let (preview_ms, _) = common::best_ms(3, || {
        sameframe::ingest::decode_preview(&bytes, sameframe::ingest::ImageKind::Jpeg, "x", &limits)
            .unwrap()
    });
    let key = sameframe::store::crypto::SecretKey::generate().unwrap();
    let kid = sameframe::store::crypto::new_key_id().unwrap();
    let addr: [u8; 32] = sameframe::ids::unhex(&hash).unwrap().try_into().unwrap();
    let (seal_ms, sealed) = common::best_ms(5, || {
        sameframe::store::crypto::seal_blob(&bytes, &addr, &kid, &key).unwrap()
    });
    std::fs::create_dir_all(dir.join("blobs-breakdown")).unwrap();
    let target = dir.join("blobs-breakdown/write-test");
    let (write_ms, _) = common::best_ms(5, || {
        use std::io::Write;
        let mut f = std::fs::File::create(&target).unwrap();
        f.write_all(&sealed).unwrap();
        f.sync_all().unwrap();
    });

    let plain = results[0].1;
    let enc = results[1].1;
    println!("\nmedian wall time per import (whole command, process start included):");
    println!(
        "  sameframe capture import, plaintext store   {plain:8.1} ms   {:.2}× sha256sum+cp",
        plain / peer_ms
    );
    println!(
        "  sameframe capture import, encrypted store   {enc:8.1} ms   {:.2}× sha256sum+cp, {:.2}× plaintext import",
        enc / peer_ms,
        enc / plain
    );
    let shared = results.get(2).map(|r| r.1);
    if let Some(sh) = shared {
        println!(
            "  sameframe capture import, shared store      {sh:8.1} ms   {:.2}× sha256sum+cp, {:.2}× encrypted embedded import (PostgreSQL + S3 on loopback)",
            sh / peer_ms,
            sh / enc
        );
    } else {
        println!("  sameframe capture import, shared store      (no servers: skipped)");
    }
    println!("  sha256sum + cp                              {peer_ms:8.1} ms");
    println!(
        "  sha256sum + cp + sync                       {peer_sync_ms:8.1} ms   (encrypted import: {:.2}× this)",
        enc / peer_sync_ms
    );
    println!(
        "\nbatch of {batch_n} files in one `capture import F…` (encrypted key-file store): {batch_ms:.0} ms = {:.1} ms per file; sha256sum + cp of the same files in one shell: {batch_peer_ms:.0} ms; ratio {:.2}×",
        batch_ms / batch_n as f64,
        batch_ms / batch_peer_ms
    );
    println!(
        "deferred work of that batch (`fingerprint backfill`, every core): {:.0} ms = {:.1} ms per file; batch import + deferred work: {:.2}× sha256sum+cp",
        b.deferred_ms,
        b.deferred_ms / batch_n as f64,
        (batch_ms + b.deferred_ms) / batch_peer_ms
    );
    println!(
        "one import deriving at once (`--derive-now`, encrypted store): {now_ms:.1} ms = {:.2}× sha256sum+cp+sync",
        now_ms / peer_sync_ms
    );
    println!(
        "\nin-process breakdown (best of runs): sha256 {hash_ms:.1} ms, structure check {structure_ms:.1} ms, preview decode (DCT-scaled, parallel to the write) {preview_ms:.1} ms, seal {seal_ms:.1} ms, durable write {write_ms:.1} ms"
    );
    println!(
        "hash + seal + durable write (the storage path): {:.1} ms = {:.2}× sha256sum+cp",
        hash_ms + seal_ms + write_ms,
        (hash_ms + seal_ms + write_ms) / peer_ms
    );
    common::save_summary(
        "import",
        &serde_json::json!({
            "bytes": jpeg.len(), "plaintext_ms": plain, "encrypted_ms": enc, "sha256sum_cp_ms": peer_ms,
            "ratio_plaintext_vs_peer": plain / peer_ms, "ratio_encrypted_vs_plaintext": enc / plain,
            "shared_ms": shared, "ratio_shared_vs_encrypted_embedded": shared.map(|s| s / enc),
            "sha256sum_cp_sync_ms": peer_sync_ms, "ratio_encrypted_vs_peer_sync": enc / peer_sync_ms,
            "batch_files": batch_n, "batch_ms": batch_ms, "batch_peer_ms": batch_peer_ms,
            "ratio_batch_vs_peer": batch_ms / batch_peer_ms,
            "batch_deferred_ms": b.deferred_ms, "derive_now_ms": now_ms,
            "hash_ms": hash_ms, "structure_ms": structure_ms, "preview_ms": preview_ms, "seal_ms": seal_ms, "write_ms": write_ms,
        }),
    );
}
