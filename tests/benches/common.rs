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

/// PostgreSQL and S3 test servers for the shared-store columns: those of the environment
/// (`scripts/shared-servers.sh` exports them), else private ones started now under the
/// benchmark's work dir and stopped when the guard drops. `None`, with a notice, when neither
/// is possible.
pub struct SharedServers {
    pub pg: String,
    pub pg_password: String,
    pub s3_endpoint: String,
    pub bucket: String,
    private: Option<PathBuf>,
}

impl SharedServers {
    pub fn get() -> Option<SharedServers> {
        let v = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let (Some(pg), Some(pw), Some(s3), Some(b)) = (
            v("SAMEFRAME_TEST_PG"),
            v("SAMEFRAME_TEST_PG_PASSWORD"),
            v("SAMEFRAME_TEST_S3_ENDPOINT"),
            v("SAMEFRAME_TEST_S3_BUCKET"),
        ) {
            return Some(SharedServers {
                pg,
                pg_password: pw,
                s3_endpoint: s3,
                bucket: b,
                private: None,
            });
        }
        let dir = work_dir("servers").join(format!("run-{}", std::process::id()));
        let out = Command::new(root().join("scripts/shared-servers.sh"))
            .arg("start")
            .arg(&dir)
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "notice: no PostgreSQL/S3 servers ({}); the shared-store column is skipped",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let get = |k: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {k}=")))
                .map(|v| v.trim_matches('"').to_string())
        };
        Some(SharedServers {
            pg: get("SAMEFRAME_TEST_PG")?,
            pg_password: get("SAMEFRAME_TEST_PG_PASSWORD")?,
            s3_endpoint: get("SAMEFRAME_TEST_S3_ENDPOINT")?,
            bucket: get("SAMEFRAME_TEST_S3_BUCKET")?,
            private: Some(dir),
        })
    }

    /// A new database's URL.
    pub fn new_database(&self, name: &str) -> String {
        let mut c: postgres::Config = self.pg.parse().unwrap();
        c.password(&self.pg_password);
        let mut admin = c.connect(postgres::NoTls).unwrap();
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        format!("{}/{name}", self.pg.rsplit_once('/').unwrap().0)
    }

    /// A credentials file for the servers (mode 600).
    pub fn credentials(&self, path: &Path) -> PathBuf {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .unwrap();
        writeln!(
            f,
            "database_password = \"{}\"\ns3_access_key_id = \"bench\"\ns3_secret_access_key = \"bench\"",
            self.pg_password
        )
        .unwrap();
        path.to_path_buf()
    }

    /// The `init` flags of a shared store in database `db` and bucket prefix `prefix`.
    pub fn init_flags(&self, db: &str, prefix: &str, creds: &Path) -> Vec<String> {
        vec![
            "--database-url".into(),
            db.into(),
            "--blob-url".into(),
            format!("s3://{}/{prefix}", self.bucket),
            "--s3-endpoint".into(),
            self.s3_endpoint.clone(),
            "--credentials-file".into(),
            creds.display().to_string(),
        ]
    }
}

impl Drop for SharedServers {
    fn drop(&mut self) {
        if let Some(dir) = &self.private {
            let _ = Command::new(root().join("scripts/shared-servers.sh"))
                .arg("stop")
                .arg(dir)
                .status();
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
