//! `verify` and `gc`: every blob against its address, every record against its seal, orphan
//! objects that an interrupted import or upload left, and withdrawals that did not finish.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use serde::Serialize;
use serde_json::json;

use super::RecordError;
use crate::store::crypto;
use crate::store::repo::Listed;
use crate::store::{BlobError, BlobKey, BlobKind, Store, StoreError};

/// A blob that failed verification.
#[derive(Clone, Debug, Serialize)]
pub struct BlobProblem {
    pub sha256: String,
    pub kind: String,
    pub why: String,
}

/// An object no row refers to.
#[derive(Clone, Debug, Serialize)]
pub struct Orphan {
    /// A path or an `s3://` address.
    pub location: String,
    pub sha256: Option<String>,
    pub bytes: u64,
    /// Seconds since it was written, when known.
    pub age_seconds: Option<u64>,
}

/// A record whose sealed body or columns do not check.
#[derive(Clone, Debug, Serialize)]
pub struct RecordProblem {
    pub record: String,
    pub why: String,
}

/// The outcome of `verify`.
#[derive(Clone, Debug, Serialize)]
pub struct VerifyReport {
    pub checked: usize,
    pub ok: usize,
    pub corrupt: Vec<BlobProblem>,
    pub missing: Vec<BlobProblem>,
    /// Orphans old enough to be abandoned writes (`gc` removes them).
    pub orphans: Vec<Orphan>,
    /// Orphans younger than the in-flight window: most likely an import or upload under way.
    pub in_flight: Vec<Orphan>,
    pub unsealed: Vec<String>,
    pub records_checked: usize,
    pub records_damaged: Vec<RecordProblem>,
    /// Withdrawals that were interrupted before they completed (run the same `consent
    /// withdraw` again to finish).
    pub unfinished_withdrawals: Vec<String>,
    /// What `audit verify` finds wrong with the store's history: a broken or unsealed chain,
    /// rows not as the chain records them, certificates the chain does not have.
    #[serde(default)]
    pub history_problems: Vec<String>,
    /// Captures whose preview and fingerprint are still to be made (deferred at import: not
    /// wrong, but a review or `fingerprint backfill` makes them).
    #[serde(default)]
    pub derived_pending: usize,
}

impl VerifyReport {
    /// True when nothing is wrong (in-flight writes are not wrong).
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty()
            && self.missing.is_empty()
            && self.orphans.is_empty()
            && self.unsealed.is_empty()
            && self.records_damaged.is_empty()
            && self.unfinished_withdrawals.is_empty()
            && self.history_problems.is_empty()
    }
}

/// What `gc` removed and kept.
#[derive(Clone, Debug, Serialize)]
pub struct GcReport {
    pub removed: Vec<Orphan>,
    pub kept_recent: Vec<Orphan>,
}

fn orphan_of(item: &Listed, now: SystemTime) -> Orphan {
    Orphan {
        location: item.location.clone(),
        sha256: match &item.key {
            Some(BlobKey::Blob(h)) => Some(h.clone()),
            _ => None,
        },
        bytes: item.size,
        age_seconds: item
            .modified
            .and_then(|m| now.duration_since(m).ok())
            .map(|d| d.as_secs()),
    }
}

impl Store {
    /// Re-hash (and authenticate) every blob, open every record, and list objects no row
    /// names: those older than `in_flight` are orphans, younger ones are reported apart as
    /// writes probably under way.
    pub fn verify(&self, in_flight: Duration) -> Result<VerifyReport, RecordError> {
        self.check_keys()?;
        let rows = self.read(|r| r.blob_rows())?;
        let encrypted = self.is_encrypted();
        let mut report = VerifyReport {
            checked: rows.len(),
            ok: 0,
            corrupt: Vec::new(),
            missing: Vec::new(),
            orphans: Vec::new(),
            in_flight: Vec::new(),
            unsealed: Vec::new(),
            records_checked: 0,
            records_damaged: Vec::new(),
            unfinished_withdrawals: Vec::new(),
            history_problems: Vec::new(),
            derived_pending: self.fingerprints_to_backfill()?,
        };
        for row in &rows {
            let problem = |why: String| BlobProblem {
                sha256: row.sha256.clone(),
                kind: row.kind.clone(),
                why,
            };
            let raw = match self.blobs().get(&BlobKey::Blob(row.sha256.clone())) {
                Ok(raw) => raw,
                Err(BlobError::Missing { .. }) => {
                    report.missing.push(problem("the object is missing".into()));
                    continue;
                }
                Err(e) => return Err(StoreError::from(e).into()),
            };
            let sealed = crypto::sealed_key_id(&raw).is_some();
            match self.open_blob_file(&row.sha256, raw) {
                Ok(_) => {
                    report.ok += 1;
                    if encrypted && !sealed {
                        report.unsealed.push(row.sha256.clone());
                    }
                }
                Err(StoreError::Blob(BlobError::Corrupt { why, .. })) => {
                    report.corrupt.push(problem(why));
                }
                Err(StoreError::Key(crypto::KeyError::DataKeyDestroyed { key_id, .. })) => {
                    report.corrupt.push(problem(format!(
                        "its data key {key_id} was destroyed but the row remains"
                    )));
                }
                Err(e @ StoreError::Key(_)) => return Err(e.into()),
                Err(e) => report.corrupt.push(problem(e.to_string())),
            }
        }
        let known: HashSet<&str> = rows.iter().map(|r| r.sha256.as_str()).collect();
        let now = SystemTime::now();
        for item in self.blobs().list(BlobKind::Blob)? {
            let listed = matches!(&item.key, Some(BlobKey::Blob(h)) if known.contains(h.as_str()));
            if listed {
                continue;
            }
            let o = orphan_of(&item, now);
            if o.age_seconds.is_some_and(|a| a < in_flight.as_secs()) {
                report.in_flight.push(o);
            } else {
                report.orphans.push(o);
            }
        }
        self.check_records(&mut report)?;
        report.unfinished_withdrawals = self.unfinished_withdrawals()?;
        report.history_problems = self.check_history(None)?.problems();
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
                    "records_damaged": report.records_damaged.len(),
                    "unfinished_withdrawals": report.unfinished_withdrawals.len(),
                    "history_problems": report.history_problems.len(),
                }),
            )?;
        }
        Ok(report)
    }

    /// Withdrawals interrupted before they completed, each as "job (consent, started)" (run
    /// the same `consent withdraw` again to finish one).
    pub fn unfinished_withdrawals(&self) -> Result<Vec<String>, RecordError> {
        Ok(self
            .read(|r| r.unfinished_purge_jobs())?
            .into_iter()
            .map(|j| {
                format!(
                    "{} (consent {}, started {})",
                    j.id, j.consent_id, j.started_at
                )
            })
            .collect())
    }

    /// Open every record body and check its columns.
    fn check_records(&self, report: &mut VerifyReport) -> Result<(), RecordError> {
        let mut damaged = |what: String, r: Result<(), StoreError>| match r {
            Ok(()) => report.records_checked += 1,
            Err(e) => {
                report.records_checked += 1;
                report.records_damaged.push(RecordProblem {
                    record: what,
                    why: e.to_string(),
                });
            }
        };
        for row in self.read(|r| r.patients())? {
            let id = row.id.clone();
            damaged(format!("patient {id}"), self.patient_of(row).map(|_| ()));
        }
        for row in self.read(|r| r.consents())? {
            let id = row.id.clone();
            damaged(format!("consent {id}"), self.consent_of(row).map(|_| ()));
        }
        for row in self.read(|r| r.visits())? {
            let id = row.id.clone();
            damaged(format!("visit {id}"), self.visit_of(row).map(|_| ()));
        }
        for row in self.read(|r| r.treatments(None))? {
            let id = row.id.clone();
            damaged(
                format!("treatment record {id}"),
                self.treatment_of(row).map(|_| ()),
            );
        }
        for row in self.read(|r| r.captures(None))? {
            let id = row.id.clone();
            damaged(
                format!("capture {id}"),
                self.capture_of(row, String::new()).map(|_| ()),
            );
        }
        for row in self.read(|r| r.publications())? {
            let id = row.id.clone();
            damaged(
                format!("publication {id}"),
                self.publication_of(row).map(|_| ()),
            );
        }
        for (key, body) in self.read(|r| r.settings())? {
            let r = self.seal().open_bytes("setting", &key, &body).map(|_| ());
            damaged(format!("setting {key}"), r);
        }
        Ok(())
    }

    /// Remove orphan objects older than `min_age` (an import writes its blob a moment before
    /// its row).
    pub fn gc(&self, min_age: Duration) -> Result<GcReport, RecordError> {
        let known: HashSet<String> = self
            .read(|r| r.blob_rows())?
            .into_iter()
            .map(|b| b.sha256)
            .collect();
        let mut report = GcReport {
            removed: Vec::new(),
            kept_recent: Vec::new(),
        };
        let now = SystemTime::now();
        for item in self.blobs().list(BlobKind::Blob)? {
            if matches!(&item.key, Some(BlobKey::Blob(h)) if known.contains(h)) {
                continue;
            }
            let o = orphan_of(&item, now);
            if o.age_seconds.is_some_and(|a| a < min_age.as_secs()) {
                report.kept_recent.push(o);
                continue;
            }
            match &item.key {
                Some(k) => self.blobs().delete(k)?,
                None => self.blobs().remove_leftover(&item.location)?,
            }
            report.removed.push(o);
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
