//! Proving the store is intact: every blob row has its file, every file re-hashes (and, when
//! sealed, authenticates) to its address, and no file lies around without a row.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::json;

use super::RecordError;
use crate::store::Store;
use crate::store::blobs::{BlobError, remove_file_durably};
use crate::store::crypto;

/// A blob that failed verification.
#[derive(Clone, Debug, Serialize)]
pub struct BlobProblem {
    pub sha256: String,
    pub kind: String,
    pub why: String,
}

/// A file in the blob folder that no row refers to.
#[derive(Clone, Debug, Serialize)]
pub struct Orphan {
    pub path: PathBuf,
    pub sha256: Option<String>,
    pub bytes: u64,
}

/// The result of `sameframe verify`.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    pub checked: usize,
    pub ok: usize,
    pub corrupt: Vec<BlobProblem>,
    pub missing: Vec<BlobProblem>,
    pub orphans: Vec<Orphan>,
    /// Blobs still stored in plaintext in an encrypted store (an unfinished migration).
    pub unsealed: Vec<String>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty()
            && self.missing.is_empty()
            && self.orphans.is_empty()
            && self.unsealed.is_empty()
    }
}

/// The result of `sameframe gc`.
#[derive(Clone, Debug, Serialize)]
pub struct GcReport {
    pub removed: Vec<Orphan>,
    /// Orphans younger than the grace period, kept because an import may still be running.
    pub kept_recent: Vec<Orphan>,
}

impl Store {
    /// Re-hash every blob, authenticate sealed ones, and list orphans. A failed verification
    /// is recorded in the audit chain.
    pub fn verify(&self) -> Result<VerifyReport, RecordError> {
        // A wrong or missing key is the operator's problem, not the blobs': say so once.
        self.check_keys()?;
        let rows: Vec<(String, String)> = {
            let mut stmt = self
                .conn()
                .prepare("SELECT sha256, kind FROM blob ORDER BY sha256")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        let encrypted = self.is_encrypted();
        let mut report = VerifyReport {
            checked: rows.len(),
            ok: 0,
            corrupt: Vec::new(),
            missing: Vec::new(),
            orphans: Vec::new(),
            unsealed: Vec::new(),
        };
        let known: std::collections::HashSet<&str> = rows.iter().map(|(h, _)| h.as_str()).collect();
        for (hash, kind) in &rows {
            let problem = |why: String| BlobProblem {
                sha256: hash.clone(),
                kind: kind.clone(),
                why,
            };
            match self.read_blob(hash) {
                Ok(_) => {
                    report.ok += 1;
                    if encrypted
                        && let Ok(raw) = self.blobs().read_raw(hash)
                        && crypto::sealed_key_id(&raw).is_none()
                    {
                        report.unsealed.push(hash.clone());
                    }
                }
                Err(crate::store::StoreError::Blob(BlobError::Missing { .. })) => {
                    report.missing.push(problem("the file is missing".into()));
                }
                Err(crate::store::StoreError::Blob(BlobError::Corrupt { why, .. })) => {
                    report.corrupt.push(problem(why));
                }
                Err(crate::store::StoreError::Key(crypto::KeyError::DataKeyDestroyed {
                    key_id,
                    ..
                })) => {
                    report.corrupt.push(problem(format!(
                        "its data key {key_id} was destroyed but the row remains"
                    )));
                }
                Err(
                    e @ (crate::store::StoreError::Key(_)
                    | crate::store::StoreError::Blob(BlobError::Key(_))),
                ) => {
                    return Err(e.into());
                }
                Err(e) => report.corrupt.push(problem(e.to_string())),
            }
        }
        for f in self.blobs().scan()? {
            let listed = f.hash.as_deref().is_some_and(|h| known.contains(h));
            if !listed {
                let bytes = std::fs::metadata(&f.path).map(|m| m.len()).unwrap_or(0);
                report.orphans.push(Orphan {
                    path: f.path,
                    sha256: f.hash,
                    bytes,
                });
            }
        }
        if !report.is_clean() {
            self.audit_now(
                "verify.failed",
                json!({
                    "corrupt": report.corrupt.iter().map(|p| &p.sha256).collect::<Vec<_>>(),
                    "missing": report.missing.iter().map(|p| &p.sha256).collect::<Vec<_>>(),
                }),
                json!({
                    "checked": report.checked,
                    "orphans": report.orphans.len(),
                    "unsealed": report.unsealed.len(),
                }),
            )?;
        }
        Ok(report)
    }

    /// Remove orphan files older than `min_age` (an import in progress writes its blob a moment
    /// before its row).
    pub fn gc(&self, min_age: Duration) -> Result<GcReport, RecordError> {
        let known: std::collections::HashSet<String> = {
            let mut stmt = self.conn().prepare("SELECT sha256 FROM blob")?;
            stmt.query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let mut report = GcReport {
            removed: Vec::new(),
            kept_recent: Vec::new(),
        };
        let now = SystemTime::now();
        for f in self.blobs().scan()? {
            if f.hash.as_ref().is_some_and(|h| known.contains(h)) {
                continue;
            }
            let meta = std::fs::metadata(&f.path).ok();
            let age = meta
                .as_ref()
                .and_then(|m| m.modified().ok())
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or(Duration::MAX);
            let orphan = Orphan {
                bytes: meta.map(|m| m.len()).unwrap_or(0),
                path: f.path.clone(),
                sha256: f.hash.clone(),
            };
            if age < min_age {
                report.kept_recent.push(orphan);
                continue;
            }
            remove_file_durably(&f.path)?;
            report.removed.push(orphan);
        }
        if !report.removed.is_empty() {
            self.audit_now(
                "store.gc",
                json!({ "sha256": report.removed.iter().filter_map(|o| o.sha256.clone()).collect::<Vec<_>>() }),
                json!({ "removed_files": report.removed.len() }),
            )?;
        }
        Ok(report)
    }
}
