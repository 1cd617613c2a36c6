//! Shared by the benchmarks: peers in Python virtual environments, timing, reporting.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The photographs under `fixtures/` (portrait first).
pub const PHOTOS: [&str; 9] = [
    "faces/astronaut.jpg",
    "textures/coffee.jpg",
    "textures/chelsea.jpg",
    "textures/rocket.jpg",
    "textures/brick.jpg",
    "textures/camera.jpg",
    "textures/hubble_deep_field.jpg",
    "textures/retina.jpg",
    "textures/gravel.jpg",
];

/// The crate root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A folder for benchmark artefacts under the target dir.
pub fn work_dir(name: &str) -> PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    let d = base.join("bench-work").join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A Python with `packages` installed, in a virtual environment under the target dir
/// (created on first use; needs PyPI). `None`, with a notice, when that fails.
pub fn peer_python(env: &str, packages: &[&str]) -> Option<PathBuf> {
    let venv = work_dir("venvs").join(env);
    let py = venv.join("bin").join("python");
    let stamp = venv.join(".installed");
    let want = packages.join(" ");
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) && py.exists() {
        return Some(py);
    }
    eprintln!("setting up the peer environment {env} ({want}) …");
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success())
        && Command::new(&py)
            .args(["-m", "pip", "install", "-q", "--disable-pip-version-check"])
            .args(packages)
            .status()
            .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("notice: could not install {want}; the peer column is skipped");
        return None;
    }
    std::fs::write(&stamp, want).unwrap();
    Some(py)
}

/// Run a peer script and parse its JSON output.
pub fn run_peer(py: &Path, script: &str, args: &[String]) -> Option<serde_json::Value> {
    let out = Command::new(py)
        .arg(root().join("tests/benches/peers").join(script))
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        eprintln!(
            "peer {script} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

/// Best of `n` runs of `f`, in milliseconds.
pub fn best_ms<T>(n: usize, mut f: impl FnMut() -> T) -> (f64, T) {
    let mut best = f64::INFINITY;
    let mut last = None;
    for _ in 0..n {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed().as_secs_f64() * 1e3);
        last = Some(v);
    }
    (best, last.unwrap())
}

/// Median of a list.
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

/// Save a summary JSON beside the other results and print where.
pub fn save_summary(name: &str, v: &serde_json::Value) {
    let p = work_dir("results").join(format!("{name}.json"));
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    println!("summary written to {}", p.display());
}

/// Options for opening a benchmark's store sealed with the key file `key`.
pub fn key_file_options(key: &Path) -> sameframe::store::OpenOptions {
    sameframe::store::OpenOptions {
        actor: "bench".into(),
        keys: sameframe::store::KeySource::KeyFile(key.to_path_buf()),
        calibration_dir: None,
        ..Default::default()
    }
}

/// A new embedded store at `dir` (SQLite and a local folder), sealed with a new key file `key`.
pub fn new_embedded_store(dir: &Path, key: &Path) -> sameframe::store::Store {
    sameframe::backends::init(
        dir,
        &sameframe::backends::Target::Embedded,
        false,
        sameframe::store::Encryption::KeyFile {
            path: key.to_path_buf(),
        },
        key_file_options(key),
    )
    .unwrap()
}
