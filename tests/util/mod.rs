//! Helpers for integration tests: run the real `sameframe` binary on a temp data dir and
//! print the command, stdout and stderr whenever an expectation fails (after ripgrep's
//! `tests/util.rs`).

#![allow(dead_code, clippy::unwrap_used)]

pub mod images;
pub mod published;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sameframe"))
}

/// A temp folder with an initialised store (key-file encryption).
pub struct TestStore {
    pub dir: tempfile::TempDir,
    pub data: PathBuf,
    pub key: PathBuf,
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

impl TestStore {
    /// A new store encrypted with a key file.
    pub fn new() -> Self {
        let s = Self::uninitialised();
        s.ok(&["init"]);
        s
    }

    /// A temp folder without a store yet.
    pub fn uninitialised() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let key = dir.path().join("store.key");
        Self { dir, data, key }
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

    /// The command with the store's flags, `--json` and a fixed actor.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .arg("--json")
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--key-file")
            .arg(&self.key)
            .env("SAMEFRAME_ACTOR", "test-nurse")
            .env_remove("SAMEFRAME_PASSPHRASE")
            .env_remove("SAMEFRAME_DATA_DIR")
            .env_remove("SAMEFRAME_KEY_FILE")
            .env_remove("SAMEFRAME_CALIBRATION_DIR")
            .stdin(std::process::Stdio::null());
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
        let f = file.to_str().unwrap();
        let mut args = vec![
            "capture",
            "import",
            f,
            "--patient",
            patient,
            "--consent",
            consent,
            "--area",
            "face",
            "--view",
            "frontal",
        ];
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
