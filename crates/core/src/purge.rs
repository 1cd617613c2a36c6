//! Consent withdrawal and purge: scope-aware, everywhere in the data directory, provable, and
//! crash-safe.
//!
//! A withdrawal runs as a journaled job:
//!
//! 1. **Plan** (one transaction): the scopes are marked withdrawn (who, when, why), and a job
//!    row lists every item to purge, every item kept under clinical-record retention, every
//!    copy outside the data directory and every recorded publication to take down.
//! 2. **Plaintext copies** (exports inside the data directory, thumbnails, and in a store
//!    without encryption the originals) are unlinked, each atomically.
//! 3. **Commit** (one transaction): rows are replaced by tombstones (hash, kind, when, who, why;
//!    no image data) and, when the originals go, the consent's data key is destroyed. From this
//!    instant every sealed blob of the consent is unreadable, wherever a copy of it lives.
//! 4. **Sweep**: the sealed files are unlinked; the deletion certificate is written and its
//!    hash recorded in the audit chain.
//!
//! Killed at any point, each item is either fully present or fully purged (sealed bytes whose
//! key is gone count as purged), and running the same command again resumes the job.

use std::collections::BTreeSet;
use std::path::PathBuf;

use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::ids::{new_id, sha256_hex};
use crate::records::{Consent, RecordError, Scope};
use crate::store::{Store, StoreError, blobs};

/// What a withdrawal ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WithdrawScope {
    Publication,
    Teaching,
    All,
}

impl std::str::FromStr for WithdrawScope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "publication" => Ok(WithdrawScope::Publication),
            "teaching" => Ok(WithdrawScope::Teaching),
            "all" => Ok(WithdrawScope::All),
            other => Err(format!(
                "unknown scope {other:?} (expected publication, teaching or all)"
            )),
        }
    }
}

/// Withdrawal failures; none of them changes anything.
#[derive(Debug, thiserror::Error)]
pub enum PurgeError {
    #[error("consent {consent} does not include the {scope} scope")]
    NotGranted { consent: String, scope: Scope },
    #[error("consent {consent}: {scope} was already withdrawn at {at}{hint}")]
    AlreadyWithdrawn {
        consent: String,
        scope: String,
        at: String,
        hint: String,
    },
    #[error("--purge-clinical-record only applies to --scope all")]
    PurgeClinicalNeedsAll,
    #[error(
        "purging the clinical record of consent {consent} cannot be undone: add --confirm to proceed"
    )]
    NeedsConfirm { consent: String },
    #[error("a withdrawal needs a reason (--reason)")]
    NoReason,
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for PurgeError {
    fn from(e: rusqlite::Error) -> Self {
        PurgeError::Store(StoreError::Db(e))
    }
}

impl From<blobs::BlobError> for PurgeError {
    fn from(e: blobs::BlobError) -> Self {
        PurgeError::Store(StoreError::Blob(e))
    }
}

impl From<crate::ids::RandomError> for PurgeError {
    fn from(e: crate::ids::RandomError) -> Self {
        PurgeError::Store(StoreError::Random(e))
    }
}

/// A withdrawal request.
#[derive(Clone, Debug)]
pub struct WithdrawRequest<'a> {
    pub consent_id: &'a str,
    pub scope: WithdrawScope,
    pub reason: &'a str,
    /// Purge the original clinical photos even though retention keeps them.
    pub purge_clinical_record: bool,
    pub confirm: bool,
}

/// A recorded publication to take down (GDPR Art. 17(2): notify the other publishers).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Takedown {
    pub publication_id: String,
    pub channel: String,
    pub url: Option<String>,
    pub date: String,
    pub purpose: String,
    pub file_sha256: String,
    pub capture_ids: Vec<String>,
}

/// One line of a deletion certificate.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CertItem {
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The deletion certificate: what was purged by hash, what was kept and why, copies outside
/// the store, publications to take down, and the audit head it was recorded under.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Certificate {
    pub certificate_id: String,
    pub job_id: String,
    pub store_id: String,
    pub consent_id: String,
    pub patient_id: String,
    pub scopes_withdrawn: Vec<String>,
    pub reason: String,
    pub actor: String,
    pub started_at: String,
    pub completed_at: String,
    pub originals_purged: bool,
    pub retention_overridden: bool,
    pub purged: Vec<CertItem>,
    pub retained: Vec<CertItem>,
    pub outside_copies: Vec<CertItem>,
    pub takedown: Vec<Takedown>,
}

/// The result of a withdrawal.
#[derive(Clone, Debug, Serialize)]
pub struct WithdrawOutcome {
    pub consent_id: String,
    pub scopes_withdrawn: Vec<String>,
    /// True when this run finished a withdrawal that had been interrupted.
    pub resumed: bool,
    pub certificate: Certificate,
    pub certificate_json: PathBuf,
    pub certificate_text: PathBuf,
    pub certificate_sha256: String,
    pub takedown: Vec<Takedown>,
}

struct Job {
    id: String,
    consent_id: String,
    scopes: Vec<String>,
    purge_originals: bool,
    retention_override: bool,
    reason: String,
    actor: String,
    started_at: String,
    committed: bool,
}

#[derive(Clone, Debug)]
struct Item {
    kind: String,
    subject_id: Option<String>,
    sha256: Option<String>,
    path: Option<String>,
    detail: Option<String>,
}

impl Item {
    fn new(kind: &str) -> Self {
        Item {
            kind: kind.to_string(),
            subject_id: None,
            sha256: None,
            path: None,
            detail: None,
        }
    }
    fn cert(&self) -> CertItem {
        CertItem {
            kind: self
                .kind
                .trim_start_matches("retained_")
                .trim_start_matches("outside_")
                .to_string(),
            sha256: self.sha256.clone(),
            subject_id: self.subject_id.clone(),
            path: self.path.clone(),
            detail: self.detail.clone(),
        }
    }
}

impl Store {
    /// Withdraw consent scopes and purge what the withdrawal covers (see the module docs).
    /// Re-running after an interruption completes the job.
    pub fn withdraw_consent(
        &self,
        req: &WithdrawRequest<'_>,
    ) -> Result<WithdrawOutcome, PurgeError> {
        let consent = self.consent(req.consent_id)?;
        if let Some(job) = self.pending_job(&consent.id)? {
            self.check_keys()?;
            return self.run_job(job, true);
        }
        if req.reason.trim().is_empty() {
            return Err(PurgeError::NoReason);
        }
        if req.purge_clinical_record && req.scope != WithdrawScope::All {
            return Err(PurgeError::PurgeClinicalNeedsAll);
        }
        if req.purge_clinical_record && !req.confirm {
            return Err(PurgeError::NeedsConfirm {
                consent: consent.id.clone(),
            });
        }
        let scopes = self.scopes_to_withdraw(&consent, req)?;
        // Whoever purges must hold the store's key: a wrong passphrase changes nothing.
        self.check_keys()?;
        let keep_clinical = self.setting_bool("retention.keep_clinical_record")?;
        let purge_originals =
            req.scope == WithdrawScope::All && (req.purge_clinical_record || !keep_clinical);
        let job = self.plan_job(
            &consent,
            &scopes,
            req,
            purge_originals,
            keep_clinical && req.purge_clinical_record,
        )?;
        self.run_job(job, false)
    }

    fn scopes_to_withdraw(
        &self,
        consent: &Consent,
        req: &WithdrawRequest<'_>,
    ) -> Result<Vec<Scope>, PurgeError> {
        let single = |scope: Scope| -> Result<Vec<Scope>, PurgeError> {
            let st = consent.scope(scope).ok_or(PurgeError::NotGranted {
                consent: consent.id.clone(),
                scope,
            })?;
            if st.status == "withdrawn" {
                return Err(PurgeError::AlreadyWithdrawn {
                    consent: consent.id.clone(),
                    scope: scope.to_string(),
                    at: st.withdrawn_at.clone().unwrap_or_default(),
                    hint: String::new(),
                });
            }
            Ok(vec![scope])
        };
        match req.scope {
            WithdrawScope::Publication => single(Scope::Publication),
            WithdrawScope::Teaching => single(Scope::Teaching),
            WithdrawScope::All => {
                let active: Vec<Scope> = consent
                    .scopes
                    .iter()
                    .filter(|s| s.status == "active")
                    .map(|s| s.scope)
                    .collect();
                if !active.is_empty() {
                    return Ok(active);
                }
                // Everything is withdrawn already; releasing a retained clinical record is
                // still possible.
                if req.purge_clinical_record && self.retained_originals(&consent.id)? > 0 {
                    return Ok(Vec::new());
                }
                let at = consent
                    .scopes
                    .iter()
                    .filter_map(|s| s.withdrawn_at.clone())
                    .max()
                    .unwrap_or_default();
                let last_cert: Option<String> = self
                    .conn()
                    .query_row(
                        "SELECT id FROM purge_job WHERE consent_id = ?1 AND completed_at IS NOT NULL ORDER BY completed_at DESC LIMIT 1",
                        [&consent.id],
                        |r| r.get(0),
                    )
                    .optional()?;
                Err(PurgeError::AlreadyWithdrawn {
                    consent: consent.id.clone(),
                    scope: "every scope".into(),
                    at,
                    hint: last_cert
                        .map(|j| {
                            format!(
                                " (certificate {})",
                                self.root()
                                    .join("certificates")
                                    .join(format!("{j}.json"))
                                    .display()
                            )
                        })
                        .unwrap_or_default(),
                })
            }
        }
    }

    fn retained_originals(&self, consent_id: &str) -> Result<i64, PurgeError> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FROM blob WHERE consent_id = ?1",
            [consent_id],
            |r| r.get(0),
        )?)
    }

    fn pending_job(&self, consent_id: &str) -> Result<Option<Job>, PurgeError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id, consent_id, scopes, purge_originals, retention_override, reason, actor, started_at, committed_at
                 FROM purge_job WHERE consent_id = ?1 AND completed_at IS NULL",
                [consent_id],
                |r| {
                    let scopes: String = r.get(2)?;
                    Ok(Job {
                        id: r.get(0)?,
                        consent_id: r.get(1)?,
                        scopes: serde_json::from_str(&scopes).unwrap_or_default(),
                        purge_originals: r.get::<_, i64>(3)? != 0,
                        retention_override: r.get::<_, i64>(4)? != 0,
                        reason: r.get(5)?,
                        actor: r.get(6)?,
                        started_at: r.get(7)?,
                        committed: r.get::<_, Option<String>>(8)?.is_some(),
                    })
                },
            )
            .optional()?)
    }

    /// Phase 1: withdraw the scopes and record the plan, in one transaction.
    fn plan_job(
        &self,
        consent: &Consent,
        scopes: &[Scope],
        req: &WithdrawRequest<'_>,
        purge_originals: bool,
        retention_override: bool,
    ) -> Result<Job, PurgeError> {
        let now = crate::timefmt::now_utc();
        let job = Job {
            id: new_id("purge")?,
            consent_id: consent.id.clone(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            purge_originals,
            retention_override,
            reason: req.reason.trim().to_string(),
            actor: self.actor().to_string(),
            started_at: now.clone(),
            committed: false,
        };
        let items = self.plan_items(consent, req.scope, purge_originals)?;
        let tx = self.write_tx()?;
        for s in scopes {
            tx.execute(
                "UPDATE consent_scope SET status = 'withdrawn', withdrawn_at = ?3, withdrawn_by = ?4, withdrawal_reason = ?5
                 WHERE consent_id = ?1 AND scope = ?2",
                params![consent.id, s.as_str(), now, self.actor(), job.reason],
            )?;
        }
        tx.execute(
            "INSERT INTO purge_job (id, consent_id, scopes, purge_originals, retention_override, reason, actor, started_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                job.id,
                job.consent_id,
                serde_json::to_string(&job.scopes).unwrap_or_default(),
                purge_originals,
                retention_override,
                job.reason,
                job.actor,
                job.started_at
            ],
        )?;
        for (seq, it) in items.iter().enumerate() {
            tx.execute(
                "INSERT INTO purge_item (job_id, seq, kind, subject_id, sha256, path, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![job.id, seq as i64, it.kind, it.subject_id, it.sha256, it.path, it.detail],
            )?;
        }
        let count = |k: &str| items.iter().filter(|i| i.kind == k).count();
        self.audit(
            &tx,
            "consent.withdraw",
            json!({ "consent": consent.id, "patient": consent.patient_id, "job": job.id }),
            json!({
                "scopes": job.scopes,
                "reason_sha256": sha256_hex(job.reason.as_bytes()),
                "purge_originals": purge_originals,
                "retention_override": retention_override,
                "planned": {
                    "originals": count("original"), "documents": count("document"),
                    "thumbnails": count("thumbnail"), "exports": count("export"),
                    "fingerprints": count("fingerprint"), "retained": count("retained_original"),
                    "outside_copies": count("outside_export"), "takedown": count("takedown"),
                },
            }),
        )?;
        tx.commit()?;
        Ok(job)
    }

    fn plan_items(
        &self,
        consent: &Consent,
        scope: WithdrawScope,
        purge_originals: bool,
    ) -> Result<Vec<Item>, PurgeError> {
        let mut items = Vec::new();
        let captures: Vec<(String, String)> = {
            let mut stmt = self
                .conn()
                .prepare("SELECT id, sha256 FROM capture WHERE consent_id = ?1 ORDER BY id")?;
            stmt.query_map([&consent.id], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        let purposes: &[&str] = match scope {
            WithdrawScope::Publication => &["publication"],
            WithdrawScope::Teaching => &["teaching"],
            WithdrawScope::All => &["clinical", "teaching", "publication"],
        };
        // Exports of this consent's captures for the withdrawn uses.
        {
            let mut stmt = self.conn().prepare(
                "SELECT export.id, export.sha256, export.path, export.inside_store, export.purpose, export.at
                 FROM export JOIN capture ON capture.id = export.capture_id
                 WHERE capture.consent_id = ?1 ORDER BY export.at",
            )?;
            let rows = stmt.query_map([&consent.id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })?;
            for row in rows {
                let (id, sha, path, inside, purpose, at) = row?;
                if !purposes.contains(&purpose.as_str()) {
                    continue;
                }
                // Exports inside the store are recorded relative to it; an absolute path from
                // before that, or from a store since moved, is purged only if it is still
                // inside this data directory: nothing outside it is ever deleted.
                let recorded = PathBuf::from(&path);
                let resolved = if recorded.is_relative() {
                    self.root().join(&recorded)
                } else {
                    recorded
                };
                let inside =
                    inside && crate::records::capture::path_is_inside(&resolved, self.root());
                let mut it = Item::new(if inside { "export" } else { "outside_export" });
                it.subject_id = Some(id);
                it.sha256 = Some(sha);
                it.path = Some(resolved.display().to_string());
                it.detail = Some(format!("{purpose} export of {at}"));
                items.push(it);
            }
        }
        if scope == WithdrawScope::All {
            for (cid, sha) in &captures {
                let mut t = Item::new("thumbnail");
                t.subject_id = Some(cid.clone());
                t.sha256 = Some(sha.clone());
                t.path = Some(
                    self.root()
                        .join("cache")
                        .join("thumbs")
                        .join(format!("{sha}.thumb"))
                        .display()
                        .to_string(),
                );
                items.push(t);
                if self.has_fingerprint(cid)? {
                    let mut f = Item::new("fingerprint");
                    f.subject_id = Some(cid.clone());
                    f.sha256 = Some(sha.clone());
                    items.push(f);
                }
                let mut o = Item::new(if purge_originals {
                    "original"
                } else {
                    "retained_original"
                });
                o.subject_id = Some(cid.clone());
                o.sha256 = Some(sha.clone());
                if !purge_originals {
                    o.detail = Some("kept: clinical-record retention".into());
                }
                items.push(o);
            }
            if let Some(doc) = &consent.document_sha256 {
                let mut d = Item::new(if purge_originals {
                    "document"
                } else {
                    "retained_document"
                });
                d.subject_id = Some(consent.id.clone());
                d.sha256 = Some(doc.clone());
                if !purge_originals {
                    d.detail = Some("kept: clinical-record retention".into());
                }
                items.push(d);
            }
            if purge_originals {
                let key: Option<String> = self
                    .conn()
                    .query_row(
                        "SELECT id FROM data_key WHERE consent_id = ?1 AND wrapped IS NOT NULL",
                        [&consent.id],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(k) = key {
                    let mut it = Item::new("data_key");
                    it.subject_id = Some(k);
                    it.detail = Some("destroyed: every copy of this consent's blobs, including backups, is unreadable".into());
                    items.push(it);
                }
            }
        }
        for t in self.takedowns(&consent.id, purposes)? {
            let mut it = Item::new("takedown");
            it.subject_id = Some(t.publication_id.clone());
            it.sha256 = Some(t.file_sha256.clone());
            it.detail = Some(serde_json::to_string(&t).unwrap_or_default());
            items.push(it);
        }
        Ok(items)
    }

    fn has_fingerprint(&self, capture_id: &str) -> Result<bool, PurgeError> {
        let exists: bool = self.conn().query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'fingerprint')",
            [],
            |r| r.get(0),
        )?;
        if !exists {
            return Ok(false);
        }
        Ok(self
            .conn()
            .query_row(
                "SELECT 1 FROM fingerprint WHERE capture_id = ?1",
                [capture_id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Recorded publications of a consent's captures for the given purposes.
    pub fn takedowns(
        &self,
        consent_id: &str,
        purposes: &[&str],
    ) -> Result<Vec<Takedown>, PurgeError> {
        let mut stmt = self.conn().prepare(
            "SELECT p.id, p.channel, p.url, p.date, p.purpose, p.file_sha256, group_concat(s.capture_id)
             FROM publication p JOIN publication_source s ON s.publication_id = p.id
             WHERE s.consent_id = ?1 GROUP BY p.id ORDER BY p.date, p.id",
        )?;
        let rows = stmt.query_map([consent_id], |r| {
            let caps: Option<String> = r.get(6)?;
            Ok(Takedown {
                publication_id: r.get(0)?,
                channel: r.get(1)?,
                url: r.get(2)?,
                date: r.get(3)?,
                purpose: r.get(4)?,
                file_sha256: r.get(5)?,
                capture_ids: caps
                    .map(|c| c.split(',').map(str::to_string).collect())
                    .unwrap_or_default(),
            })
        })?;
        let mut out = Vec::new();
        for t in rows {
            let t = t?;
            if purposes.contains(&t.purpose.as_str()) {
                out.push(t);
            }
        }
        Ok(out)
    }

    fn job_items(&self, job_id: &str) -> Result<Vec<Item>, PurgeError> {
        let mut stmt = self.conn().prepare(
            "SELECT kind, subject_id, sha256, path, detail FROM purge_item WHERE job_id = ?1 ORDER BY seq",
        )?;
        let rows = stmt.query_map([job_id], |r| {
            Ok(Item {
                kind: r.get(0)?,
                subject_id: r.get(1)?,
                sha256: r.get(2)?,
                path: r.get(3)?,
                detail: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Phases 2–4 (idempotent).
    fn run_job(&self, job: Job, resumed: bool) -> Result<WithdrawOutcome, PurgeError> {
        let items = self.job_items(&job.id)?;
        let encrypted = self.is_encrypted();
        let blob_path = |it: &Item| it.sha256.as_deref().map(|h| self.blobs().path(h));

        // Phase 2: plaintext copies first, each unlink atomic.
        let mut plain: Vec<PathBuf> = Vec::new();
        for it in &items {
            match it.kind.as_str() {
                "export" | "thumbnail" => plain.extend(it.path.as_ref().map(PathBuf::from)),
                "original" | "document" if !encrypted => plain.extend(blob_path(it)),
                _ => {}
            }
        }
        remove_files(&plain)?;

        // Phase 3: rows become tombstones; the data key is destroyed.
        if !job.committed {
            self.commit_job(&job, &items)?;
            self.checkpoint()?;
        }

        // Phase 4: sweep the sealed files and certify.
        let sealed: Vec<PathBuf> = items
            .iter()
            .filter(|it| it.kind == "original" || it.kind == "document")
            .filter_map(blob_path)
            .chain(
                items
                    .iter()
                    .filter(|it| it.kind == "thumbnail")
                    .filter_map(|it| it.path.as_ref().map(PathBuf::from)),
            )
            .collect();
        remove_files(&sealed)?;
        self.complete_job(&job, &items, resumed)
    }

    fn commit_job(&self, job: &Job, items: &[Item]) -> Result<(), PurgeError> {
        let now = crate::timefmt::now_utc();
        let tx = self.write_tx()?;
        let tomb = |kind: &str, sha: Option<&str>, subject: Option<&str>| {
            tx.execute(
                "INSERT INTO tombstone (kind, sha256, subject_id, consent_id, job_id, purged_at, purged_by, reason)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![kind, sha, subject, job.consent_id, job.id, now, self.actor(), job.reason],
            )
        };
        let fingerprint_table: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'fingerprint')",
            [],
            |r| r.get(0),
        )?;
        for it in items {
            let sha = it.sha256.as_deref();
            let subject = it.subject_id.as_deref();
            match it.kind.as_str() {
                "original" => {
                    let cid = subject.unwrap_or_default();
                    tx.execute(
                        "DELETE FROM capture_confounder WHERE capture_id = ?1",
                        [cid],
                    )?;
                    if fingerprint_table {
                        tx.execute("DELETE FROM fingerprint WHERE capture_id = ?1", [cid])?;
                    }
                    tx.execute(
                        "UPDATE capture SET baseline_id = NULL WHERE baseline_id = ?1",
                        [cid],
                    )?;
                    tx.execute("DELETE FROM capture WHERE id = ?1", [cid])?;
                    tx.execute("DELETE FROM blob WHERE sha256 = ?1", [sha])?;
                    tomb("original", sha, subject)?;
                }
                "document" => {
                    tx.execute(
                        "UPDATE consent SET document_sha256 = NULL WHERE id = ?1",
                        [&job.consent_id],
                    )?;
                    tx.execute("DELETE FROM blob WHERE sha256 = ?1", [sha])?;
                    tomb("document", sha, subject)?;
                }
                "fingerprint" => {
                    if fingerprint_table {
                        tx.execute("DELETE FROM fingerprint WHERE capture_id = ?1", [subject])?;
                    }
                    tomb("fingerprint", sha, subject)?;
                }
                "thumbnail" => {
                    tomb("thumbnail", sha, subject)?;
                }
                "export" => {
                    tx.execute("DELETE FROM export WHERE id = ?1", [subject])?;
                    tomb("export", sha, subject)?;
                }
                "data_key" => {
                    if let Some(k) = subject {
                        self.destroy_data_key_in(&tx, k)?;
                    }
                    tomb("data_key", None, subject)?;
                }
                _ => {}
            }
        }
        tx.execute(
            "UPDATE purge_job SET committed_at = ?2 WHERE id = ?1",
            params![job.id, now],
        )?;
        let count = |k: &str| items.iter().filter(|i| i.kind == k).count();
        self.audit(
            &tx,
            "purge.commit",
            json!({
                "consent": job.consent_id, "job": job.id,
                "sha256": items.iter().filter(|i| i.kind == "original" || i.kind == "document").filter_map(|i| i.sha256.clone()).collect::<Vec<_>>(),
            }),
            json!({
                "originals": count("original"), "documents": count("document"),
                "thumbnails": count("thumbnail"), "exports": count("export"),
                "fingerprints": count("fingerprint"), "data_keys_destroyed": count("data_key"),
            }),
        )?;
        tx.commit()?;
        Ok(())
    }

    fn complete_job(
        &self,
        job: &Job,
        items: &[Item],
        resumed: bool,
    ) -> Result<WithdrawOutcome, PurgeError> {
        let consent = self.consent(&job.consent_id)?;
        let pick = |f: &dyn Fn(&str) -> bool| -> Vec<CertItem> {
            items
                .iter()
                .filter(|i| f(&i.kind))
                .map(Item::cert)
                .collect()
        };
        let takedown: Vec<Takedown> = items
            .iter()
            .filter(|i| i.kind == "takedown")
            .filter_map(|i| {
                i.detail
                    .as_deref()
                    .and_then(|d| serde_json::from_str(d).ok())
            })
            .collect();
        let completed_at = crate::timefmt::now_utc();
        let cert = Certificate {
            certificate_id: format!("cert_{}", job.id.trim_start_matches("purge_")),
            job_id: job.id.clone(),
            store_id: self.store_id().to_string(),
            consent_id: job.consent_id.clone(),
            patient_id: consent.patient_id.clone(),
            scopes_withdrawn: job.scopes.clone(),
            reason: job.reason.clone(),
            actor: job.actor.clone(),
            started_at: job.started_at.clone(),
            completed_at: completed_at.clone(),
            originals_purged: job.purge_originals,
            retention_overridden: job.retention_override,
            purged: pick(&|k| {
                matches!(
                    k,
                    "original" | "document" | "thumbnail" | "export" | "fingerprint" | "data_key"
                )
            }),
            retained: pick(&|k| k.starts_with("retained_")),
            outside_copies: pick(&|k| k == "outside_export"),
            takedown: takedown.clone(),
        };
        let json_text = serde_json::to_string_pretty(&cert).unwrap_or_default();
        let cert_sha = sha256_hex(json_text.as_bytes());
        let dir = self.subdir("certificates")?;
        let json_path = dir.join(format!("{}.json", job.id));
        let text_path = dir.join(format!("{}.txt", job.id));
        self.blobs()
            .write_atomic(&json_path, json_text.as_bytes())?;
        self.blobs()
            .write_atomic(&text_path, certificate_text(&cert, &cert_sha).as_bytes())?;
        let tx = self.write_tx()?;
        let updated = tx.execute(
            "UPDATE purge_job SET completed_at = ?2, certificate_sha256 = ?3 WHERE id = ?1 AND completed_at IS NULL",
            params![job.id, completed_at, cert_sha],
        )?;
        if updated == 1 {
            self.audit(
                &tx,
                "purge.complete",
                json!({ "consent": job.consent_id, "job": job.id, "certificate": cert.certificate_id }),
                json!({ "certificate_sha256": cert_sha, "purged": cert.purged.len(), "retained": cert.retained.len(),
                        "outside_copies": cert.outside_copies.len(), "takedown": cert.takedown.len(), "resumed": resumed }),
            )?;
        }
        tx.commit()?;
        self.checkpoint()?;
        Ok(WithdrawOutcome {
            consent_id: job.consent_id.clone(),
            scopes_withdrawn: job.scopes.clone(),
            resumed,
            certificate: cert,
            certificate_json: json_path,
            certificate_text: text_path,
            certificate_sha256: cert_sha,
            takedown,
        })
    }
}

/// Unlink files (missing ones are fine), then fsync each folder once.
fn remove_files(paths: &[PathBuf]) -> Result<(), PurgeError> {
    let mut dirs = BTreeSet::new();
    for p in paths {
        match std::fs::remove_file(p) {
            Ok(()) => {
                if let Some(d) = p.parent() {
                    dirs.insert(d.to_path_buf());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                // Blobs are read-only; the folder permission is what matters, but be explicit.
                blobs::remove_file_durably(p)?;
            }
            Err(source) => {
                return Err(blobs::BlobError::Io {
                    path: p.clone(),
                    source,
                }
                .into());
            }
        }
    }
    for d in dirs {
        blobs::sync_dir(&d)?;
    }
    Ok(())
}

/// The readable version of a certificate.
pub fn certificate_text(c: &Certificate, sha: &str) -> String {
    let mut s = String::new();
    s += "SAMEFRAME DELETION CERTIFICATE\n";
    s += &format!("certificate   {}\n", c.certificate_id);
    s += &format!("store         {}\n", c.store_id);
    s += &format!(
        "consent       {} (patient {})\n",
        c.consent_id, c.patient_id
    );
    s += &format!(
        "withdrawn     {}\n",
        if c.scopes_withdrawn.is_empty() {
            "(already withdrawn; retained clinical record released)".to_string()
        } else {
            c.scopes_withdrawn.join(", ")
        }
    );
    s += &format!("reason        {}\n", c.reason);
    s += &format!("by            {}\n", c.actor);
    s += &format!(
        "started       {}\ncompleted     {}\n",
        c.started_at, c.completed_at
    );
    s += &format!(
        "originals     {}\n",
        if c.originals_purged {
            if c.retention_overridden {
                "purged (clinical-record retention overridden with --purge-clinical-record --confirm)"
            } else {
                "purged"
            }
        } else {
            "kept under clinical-record retention (see retained)"
        }
    );
    let line = |i: &CertItem| {
        format!(
            "  {:<12} {}{}{}\n",
            i.kind,
            i.sha256
                .as_deref()
                .unwrap_or(i.subject_id.as_deref().unwrap_or("")),
            i.path
                .as_ref()
                .map(|p| format!("  {p}"))
                .unwrap_or_default(),
            i.detail
                .as_ref()
                .map(|d| format!("  ({d})"))
                .unwrap_or_default()
        )
    };
    s += &format!("\nPURGED ({})\n", c.purged.len());
    for i in &c.purged {
        s += &line(i);
    }
    s += &format!("\nRETAINED ({})\n", c.retained.len());
    for i in &c.retained {
        s += &line(i);
    }
    s += &format!(
        "\nCOPIES OUTSIDE THE DATA DIRECTORY — delete these or confirm their deletion ({})\n",
        c.outside_copies.len()
    );
    for i in &c.outside_copies {
        s += &line(i);
    }
    s += &format!(
        "\nTAKE DOWN — notify these publishers (GDPR Art. 17(2)) ({})\n",
        c.takedown.len()
    );
    for t in &c.takedown {
        s += &format!(
            "  {} {} {} file {}\n",
            t.date,
            t.channel,
            t.url.as_deref().unwrap_or("-"),
            t.file_sha256
        );
    }
    s += &format!(
        "\nSHA-256 of the JSON certificate: {sha}\n(recorded in the store's audit chain as purge.complete)\n"
    );
    s
}
