//! Helpers for integration tests: run the real `sameframe` binary on a temp data dir and
//! print the command, stdout and stderr whenever an expectation fails (after ripgrep's
//! `tests/util.rs`).

#![allow(dead_code, clippy::unwrap_used)]

pub mod images;
pub mod peak;
pub mod proxy;
pub mod published;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sameframe"))
}

/// The shared-store servers a run was given (`scripts/shared-servers.sh` exports these).
#[derive(Clone, Debug)]
pub struct Servers {
    /// `postgres://user@host:port/postgres` of a server where tests may create databases.
    pub pg: String,
    pub pg_password: String,
    pub s3_endpoint: String,
    pub bucket: String,
}

impl Servers {
    /// The servers from the environment, if any.
    pub fn from_env() -> Option<Servers> {
        let v = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        Some(Servers {
            pg: v("SAMEFRAME_TEST_PG")?,
            pg_password: v("SAMEFRAME_TEST_PG_PASSWORD")?,
            s3_endpoint: v("SAMEFRAME_TEST_S3_ENDPOINT")?,
            bucket: v("SAMEFRAME_TEST_S3_BUCKET")?,
        })
    }

    /// The servers, for a test that needs them: when the run asked for the shared backend
    /// (`SAMEFRAME_TEST_BACKEND=shared`, as `scripts/test.sh` does) their absence fails the
    /// test; otherwise it is skipped with a notice.
    pub fn required(test: &str) -> Option<Servers> {
        match Servers::from_env() {
            Some(s) => Some(s),
            None if shared_requested() => {
                panic!(
                    "{test}: SAMEFRAME_TEST_BACKEND=shared but no servers: run scripts/shared-servers.sh"
                )
            }
            None => {
                eprintln!(
                    "notice: {test} skipped: no PostgreSQL/S3 test servers (scripts/test.sh starts them)"
                );
                None
            }
        }
    }

    /// The servers of the environment, else private ones under `dir` (a benchmark run);
    /// `None`, with a notice, when neither can be had.
    pub fn from_env_or_private(dir: &Path) -> Option<(Servers, Option<PrivateServers>)> {
        if let Some(s) = Servers::from_env() {
            return Some((s, None));
        }
        match std::panic::catch_unwind(|| Servers::private(dir)) {
            Ok((s, guard)) => Some((s, Some(guard))),
            Err(_) => {
                eprintln!(
                    "notice: no PostgreSQL/S3 servers could be started; the shared-store column is skipped"
                );
                None
            }
        }
    }

    /// A database by name, made empty.
    pub fn fresh_database(&self, name: &str) -> String {
        let mut admin = self.admin();
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let base = self.pg.rsplit_once('/').unwrap().0;
        format!("{base}/{name}")
    }

    /// Servers of this test's own (a database it may stop, an S3 server it may lose), under
    /// `dir`; stopped when the guard drops.
    pub fn private(dir: &Path) -> (Servers, PrivateServers) {
        Servers::private_with(dir, None)
    }

    /// Private servers whose database takes TLS connections only, with the certificate and
    /// key in `tls` (`server.crt`, `server.key`).
    pub fn private_tls(dir: &Path, tls: &Path) -> (Servers, PrivateServers) {
        Servers::private_with(dir, Some(tls))
    }

    fn private_with(dir: &Path, tls: Option<&Path>) -> (Servers, PrivateServers) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/shared-servers.sh");
        let mut c = Command::new(&script);
        c.arg("start").arg(dir);
        match tls {
            Some(t) => c.env("SAMEFRAME_TEST_PG_SSL_DIR", t),
            None => c.env_remove("SAMEFRAME_TEST_PG_SSL_DIR"),
        };
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "could not start private servers: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let get = |k: &str| -> String {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("export {k}=")))
                .unwrap()
                .trim_matches('"')
                .to_string()
        };
        (
            Servers {
                pg: get("SAMEFRAME_TEST_PG"),
                pg_password: get("SAMEFRAME_TEST_PG_PASSWORD"),
                s3_endpoint: get("SAMEFRAME_TEST_S3_ENDPOINT"),
                bucket: get("SAMEFRAME_TEST_S3_BUCKET"),
            },
            PrivateServers {
                script,
                dir: dir.to_path_buf(),
            },
        )
    }

    /// A connection to the server's maintenance database.
    pub fn admin(&self) -> postgres::Client {
        let mut c: postgres::Config = self.pg.parse().unwrap();
        c.password(&self.pg_password);
        c.connect(postgres::NoTls).unwrap()
    }

    /// A new, empty database; returns its URL (without the password).
    pub fn new_database(&self) -> String {
        let name = format!("sf_{}", unique());
        self.admin()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let base = self.pg.rsplit_once('/').unwrap().0;
        format!("{base}/{name}")
    }

    /// A connection to one of the test databases.
    pub fn connect(&self, url: &str) -> postgres::Client {
        let mut c: postgres::Config = url.parse().unwrap();
        c.password(&self.pg_password);
        c.connect(postgres::NoTls).unwrap()
    }

    /// A credentials file (mode 600) for the servers.
    pub fn write_credentials(&self, path: &Path) {
        write_private(
            path,
            format!(
                "database_password = \"{}\"\ns3_access_key_id = \"testing\"\ns3_secret_access_key = \"testing\"\n",
                self.pg_password
            ),
        );
    }

    /// The environment a command needs to reach the servers (credentials never on argv).
    pub fn env(&self, c: &mut Command) {
        c.env("SAMEFRAME_DATABASE_PASSWORD", &self.pg_password)
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env_remove("PGPASSWORD")
            .env_remove("AWS_SESSION_TOKEN");
    }
}

/// Private servers; stopped on drop.
pub struct PrivateServers {
    script: PathBuf,
    dir: PathBuf,
}

impl PrivateServers {
    fn run(&self, what: &str) {
        let out = Command::new(&self.script)
            .arg(what)
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stop the database at once (as a crash or a cut cable would).
    pub fn stop_database(&self) {
        self.run("pg-stop");
    }

    /// Start it again.
    pub fn start_database(&self) {
        self.run("pg-start");
    }
}

impl Drop for PrivateServers {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

/// True when the run asked for the shared backend.
pub fn shared_requested() -> bool {
    std::env::var("SAMEFRAME_TEST_BACKEND").is_ok_and(|v| v == "shared")
}

/// A short random name.
pub fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{:x}{:x}{:x}",
        std::process::id(),
        t & 0xffff_ffff,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Where a test store keeps its rows and blobs.
#[derive(Clone, Debug)]
pub enum Backend {
    Embedded,
    Shared {
        servers: Servers,
        database_url: String,
        blob_url: String,
    },
}

impl Backend {
    /// The backend this run tests: embedded, or shared when `SAMEFRAME_TEST_BACKEND=shared`.
    pub fn of_run() -> Backend {
        if shared_requested() {
            Backend::new_shared(
                Servers::from_env()
                    .expect("SAMEFRAME_TEST_BACKEND=shared needs the SAMEFRAME_TEST_* servers"),
            )
        } else {
            Backend::Embedded
        }
    }

    /// A fresh shared store's place: a new database and a new bucket prefix.
    pub fn new_shared(servers: Servers) -> Backend {
        Backend::Shared {
            database_url: servers.new_database(),
            blob_url: format!("s3://{}/t{}", servers.bucket, unique()),
            servers,
        }
    }

    /// The `init` flags that choose it; `creds` is the credentials file a shared store's
    /// stations read (stores opened through the library have no other way to the secrets).
    pub fn init_flags(&self, creds: &Path) -> Vec<String> {
        match self {
            Backend::Embedded => Vec::new(),
            Backend::Shared {
                servers,
                database_url,
                blob_url,
            } => vec![
                "--credentials-file".into(),
                creds.display().to_string(),
                "--database-url".into(),
                database_url.clone(),
                "--blob-url".into(),
                blob_url.clone(),
                "--s3-endpoint".into(),
                servers.s3_endpoint.clone(),
            ],
        }
    }
}

/// A temp folder with an initialised store (key-file encryption).
pub struct TestStore {
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub key: PathBuf,
    pub backend: Backend,
}

fn describe(cmd: &Command, out: &Output) -> String {
    format!(
        "\n--- command ---\n{:?}\n--- exit ---\n{:?}\n--- stdout ---\n{}\n--- stderr ---\n{}\n",
        cmd,
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

impl Drop for TestStore {
    fn drop(&mut self) {
        if let Backend::Shared {
            servers,
            database_url,
            ..
        } = &self.backend
        {
            let name = database_url.rsplit('/').next().unwrap_or_default();
            let _ = servers
                .admin()
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
    }
}

impl TestStore {
    /// A new store encrypted with a key file, on the backend this run tests.
    pub fn new() -> Self {
        let s = Self::uninitialised();
        s.ok(&["init"]);
        s
    }

    /// A temp folder without a store yet (on this run's backend once `init` runs).
    pub fn uninitialised() -> Self {
        Self::on(Backend::of_run())
    }

    /// A temp folder for a store on `backend`, not initialised.
    pub fn on(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let key = dir.path().join("store.key");
        if let Backend::Shared { servers, .. } = &backend {
            servers.write_credentials(&dir.path().join("credentials"));
        }
        Self {
            dir,
            data,
            key,
            backend,
        }
    }

    /// Another station of this (shared) store: its own data folder, its own copy of the key
    /// file, joined with `init --join`.
    pub fn join(&self) -> TestStore {
        let b = TestStore::on(self.backend.clone());
        std::fs::copy(&self.key, &b.key).unwrap();
        b.ok(&["init", "--join"]);
        b
    }

    /// True for a store on the shared backend.
    pub fn is_shared(&self) -> bool {
        matches!(self.backend, Backend::Shared { .. })
    }

    /// A file path inside the temp folder (outside the data dir).
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Write a file into the temp folder.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// The command for `args` on this store: `--json`, the data dir, a fixed actor, and on
    /// the shared backend the servers' credentials in the environment and `init`'s location
    /// flags. No key is given yet.
    fn base_command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args);
        if args.first() == Some(&"init") {
            c.args(self.backend.init_flags(&self.path("credentials")));
        }
        c.arg("--json")
            .arg("--data-dir")
            .arg(&self.data)
            .env("SAMEFRAME_ACTOR", "test-nurse")
            .env_remove("SAMEFRAME_PASSPHRASE")
            .env_remove("SAMEFRAME_DATA_DIR")
            .env_remove("SAMEFRAME_KEY_FILE")
            .env_remove("SAMEFRAME_CALIBRATION_DIR")
            .stdin(std::process::Stdio::null());
        if let Backend::Shared { servers, .. } = &self.backend {
            servers.env(&mut c);
        }
        c
    }

    /// The command with the store's key file.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = self.base_command(args);
        c.arg("--key-file").arg(&self.key);
        c
    }

    /// The command for a passphrase store: the passphrase in `SAMEFRAME_PASSPHRASE` (empty:
    /// none) and no key file.
    pub fn command_with_passphrase(&self, args: &[&str], pass: &str) -> Command {
        let mut c = self.base_command(args);
        c.env("SAMEFRAME_PASSPHRASE", pass);
        c
    }

    /// Run; return the output whatever the exit status.
    pub fn run(&self, args: &[&str]) -> (Command, Output) {
        let mut c = self.command(args);
        let out = c.output().unwrap();
        (c, out)
    }

    /// Run, expect success and exactly one JSON document on stdout.
    pub fn ok(&self, args: &[&str]) -> Value {
        let (c, out) = self.run(args);
        assert!(
            out.status.success(),
            "expected success{}",
            describe(&c, &out)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not one JSON document ({e}){}",
                describe(&c, &out)
            )
        })
    }

    /// Run, expect failure with a message on stderr containing every `needles` entry, and
    /// nothing on stdout. Returns stderr.
    pub fn fails(&self, args: &[&str], needles: &[&str]) -> String {
        let (c, out) = self.run(args);
        assert!(
            !out.status.success(),
            "expected failure{}",
            describe(&c, &out)
        );
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        for n in needles {
            assert!(err.contains(n), "stderr lacks {n:?}{}", describe(&c, &out));
        }
        assert!(
            out.stdout.is_empty() || serde_json::from_slice::<Value>(&out.stdout).is_ok(),
            "failure printed non-JSON on stdout{}",
            describe(&c, &out)
        );
        assert!(
            !err.contains("panicked"),
            "the binary panicked{}",
            describe(&c, &out)
        );
        err
    }

    /// The store, opened through the library with the test's key file.
    pub fn open_lib(&self) -> sameframe::store::Store {
        sameframe::backends::open(
            &self.data,
            sameframe::store::OpenOptions {
                actor: "test".into(),
                keys: sameframe::store::KeySource::KeyFile(self.key.clone()),
                calibration_dir: None,
                ..Default::default()
            },
        )
        .unwrap()
    }

    /// Rows of a query on the store's database, every value as text (blobs as lowercase hex,
    /// NULL as `None`). SQL both SQLite and PostgreSQL read.
    pub fn sql(&self, query: &str) -> Vec<Vec<Option<String>>> {
        match &self.backend {
            Backend::Embedded => {
                let db = rusqlite::Connection::open(self.data.join("sameframe.db")).unwrap();
                let mut st = db.prepare(query).unwrap();
                let n = st.column_count();
                let mut rows = st.query([]).unwrap();
                let mut out = Vec::new();
                while let Some(r) = rows.next().unwrap() {
                    out.push(
                        (0..n)
                            .map(|i| match r.get_ref(i).unwrap() {
                                rusqlite::types::ValueRef::Null => None,
                                rusqlite::types::ValueRef::Integer(v) => Some(v.to_string()),
                                rusqlite::types::ValueRef::Real(v) => Some(v.to_string()),
                                rusqlite::types::ValueRef::Text(t) => {
                                    Some(String::from_utf8_lossy(t).to_string())
                                }
                                rusqlite::types::ValueRef::Blob(b) => Some(hex(b)),
                            })
                            .collect(),
                    );
                }
                out
            }
            Backend::Shared {
                servers,
                database_url,
                ..
            } => {
                let mut c = servers.connect(database_url);
                let mut out = Vec::new();
                for m in c.simple_query(query).unwrap() {
                    if let postgres::SimpleQueryMessage::Row(r) = m {
                        out.push(
                            (0..r.len())
                                .map(|i| {
                                    r.get(i).map(|v| {
                                        v.strip_prefix("\\x").map_or(v.to_string(), str::to_string)
                                    })
                                })
                                .collect(),
                        );
                    }
                }
                out
            }
        }
    }

    /// Run a statement on the store's database (a tampering test's edit); returns rows changed.
    pub fn sql_exec(&self, statement: &str) -> u64 {
        match &self.backend {
            Backend::Embedded => {
                let db = rusqlite::Connection::open(self.data.join("sameframe.db")).unwrap();
                db.execute(statement, []).unwrap() as u64
            }
            Backend::Shared {
                servers,
                database_url,
                ..
            } => servers
                .connect(database_url)
                .execute(statement, &[])
                .unwrap(),
        }
    }

    /// One text value of a query.
    pub fn sql_one(&self, query: &str) -> Option<String> {
        self.sql(query)
            .into_iter()
            .next()
            .and_then(|r| r.into_iter().next().flatten())
    }

    /// The raw (sealed) bytes of the blob at `hash`, if the store has the object.
    pub fn blob_raw(&self, hash: &str) -> Option<Vec<u8>> {
        self.open_lib()
            .blobs()
            .get(&sameframe::store::BlobKey::Blob(hash.to_string()))
            .ok()
    }

    /// Overwrite the object at `hash` with `bytes` (damage, for verify tests).
    pub fn blob_overwrite(&self, hash: &str, bytes: &[u8]) {
        self.open_lib()
            .blobs()
            .replace(&sameframe::store::BlobKey::Blob(hash.to_string()), bytes)
            .unwrap();
    }

    /// Delete the object at `hash`.
    pub fn blob_delete(&self, hash: &str) {
        self.open_lib()
            .blobs()
            .delete(&sameframe::store::BlobKey::Blob(hash.to_string()))
            .unwrap();
    }

    /// Every object the store keeps (blobs, previews, certificates): (location, bytes).
    pub fn objects(&self) -> Vec<(String, Vec<u8>)> {
        let store = self.open_lib();
        let mut out = Vec::new();
        for kind in [
            sameframe::store::BlobKind::Blob,
            sameframe::store::BlobKind::Thumb,
            sameframe::store::BlobKind::Certificate,
        ] {
            for l in store.blobs().list(kind).unwrap() {
                let bytes = match &l.key {
                    Some(k) => store.blobs().get(k).unwrap_or_default(),
                    None => std::fs::read(&l.location).unwrap_or_default(),
                };
                out.push((l.location, bytes));
            }
        }
        out
    }

    /// A patient with an all-scope consent; returns the consent ID.
    pub fn patient_with_consent(&self, reference: &str, scopes: &str) -> String {
        self.ok(&["patient", "add", "--ref", reference]);
        let c = self.ok(&[
            "consent",
            "grant",
            "--patient",
            reference,
            "--scope",
            scopes,
            "--signed-by",
            reference,
            "--signed-on",
            "2026-01-05",
        ]);
        c["consent_id"].as_str().unwrap().to_string()
    }

    /// Import `file` for `patient` under `consent` as face/frontal; returns the JSON.
    pub fn import(&self, file: &Path, patient: &str, consent: &str, extra: &[&str]) -> Value {
        let mut args = import_args(file.to_str().unwrap(), patient, consent, "frontal");
        args.extend_from_slice(extra);
        self.ok(&args)
    }

    /// Every file under the data dir.
    pub fn files(&self) -> Vec<PathBuf> {
        fn walk(p: &Path, out: &mut Vec<PathBuf>) {
            if let Ok(rd) = std::fs::read_dir(p) {
                for e in rd.flatten() {
                    let path = e.path();
                    if path.is_dir() {
                        walk(&path, out);
                    } else {
                        out.push(path);
                    }
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.data, &mut out);
        out.sort();
        out
    }
}

/// The shared fixtures folder beside the checkout, when present.
pub fn shared_fixtures() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!(
            "notice: ../shared/fixtures is absent; skipping the real-photo part of this test"
        );
        None
    }
}

/// Lowercase hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `capture import FILE --patient P --consent C --area face --view VIEW`.
pub fn import_args<'a>(
    file: &'a str,
    patient: &'a str,
    consent: &'a str,
    view: &'a str,
) -> Vec<&'a str> {
    import_args_for(file, patient, consent, "face", view)
}

/// `capture import` arguments for any area.
pub fn import_args_for<'a>(
    file: &'a str,
    patient: &'a str,
    consent: &'a str,
    area: &'a str,
    view: &'a str,
) -> Vec<&'a str> {
    vec![
        "capture",
        "import",
        file,
        "--patient",
        patient,
        "--consent",
        consent,
        "--area",
        area,
        "--view",
        view,
    ]
}

/// Copy a folder tree (a backup, a store moved to another disk).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        let dest = to.join(e.file_name());
        if p.is_dir() {
            copy_dir(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}

/// Write a file only its owner can read (a key or a credentials file).
#[allow(dead_code)]
pub fn write_private(path: &Path, contents: impl AsRef<[u8]>) {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(contents.as_ref()).unwrap();
}
