//! Consent withdrawal and purge: scope-aware, everywhere the store keeps a copy (its rows, its
//! blob store, every station's data directory), provable, and crash-safe.
//!
//! A withdrawal runs as a journaled job:
//!
//! 1. **Plan** (one transaction): the scopes are marked withdrawn (who, when, why), and a job
//!    row lists every item to purge, every item kept under clinical-record retention, every
//!    copy outside the data directory and every recorded publication to take down.
//! 2. **Plaintext copies** (exports inside this station's data directory, previews, and in a
//!    store without encryption the originals) are deleted, each atomically.
//! 3. **Commit** (one transaction): rows are replaced by tombstones (hash, kind, when, who, why;
//!    no image data) and, when the originals go, the consent's data key is destroyed. From this
//!    instant every sealed blob of the consent is unreadable, wherever a copy of it lives.
//! 4. **Sweep**: the sealed objects are deleted (from the folder or the bucket); the deletion
//!    certificate is kept in the store and its hash recorded in the audit chain. Copies inside
//!    other stations' data directories are deleted by those stations the next time they open
//!    the store ([`sweep_station`]).
//!
//! What a withdrawal covers is decided by one pure function, [`plan`], of the rows its unit of
//! work reads.
//!
//! Killed at any point, each item is either fully present or fully purged (sealed bytes whose
//! key is gone count as purged), and running the same command again resumes the job.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::ids::{new_id, sha256_hex};
use crate::records::publication::Publication;
use crate::records::{Consent, RecordError, Scope};
use crate::store::repo::{ExportRow, PurgeItemRow, PurgeJobRow, TombstoneRow};
use crate::store::{BlobKey, CarriesStoreError, Store, StoreError, Tx};

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

impl CarriesStoreError for PurgeError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            PurgeError::Store(e) => Some(e),
            PurgeError::Record(RecordError::Store(e)) => Some(e),
            _ => None,
        }
    }
}

impl From<crate::store::BlobError> for PurgeError {
    fn from(e: crate::store::BlobError) -> Self {
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
    /// The published file's name, when recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// The day the take-down is due (`takedown.due_days` after the withdrawal).
    #[serde(default)]
    pub due: String,
    /// What to do, by channel (printed matter is recalled, not removed).
    #[serde(default)]
    pub instruction: String,
}

impl Takedown {
    fn of(p: &Publication, due: &str) -> Self {
        Takedown {
            publication_id: p.id.clone(),
            channel: p.channel.clone(),
            url: p.url.clone(),
            date: p.date.clone(),
            purpose: p.purpose.clone(),
            file_sha256: p.file_sha256.clone(),
            capture_ids: p.capture_ids(),
            file_name: p.file_name.clone(),
            due: due.to_string(),
            instruction: crate::records::publication::takedown_instruction(p),
        }
    }
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

/// The deletion certificate: what was purged by hash and where from, what was kept and why,
/// copies outside the store and on other stations, publications to take down.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Certificate {
    pub certificate_id: String,
    pub job_id: String,
    pub store_id: String,
    pub consent_id: String,
    pub patient_id: String,
    /// The patient's clinic reference.
    #[serde(default)]
    pub patient_ref: String,
    pub scopes_withdrawn: Vec<String>,
    pub reason: String,
    pub actor: String,
    pub started_at: String,
    pub completed_at: String,
    pub originals_purged: bool,
    pub retention_overridden: bool,
    /// Where the rows and the sealed objects were removed from.
    #[serde(default)]
    pub rows_at: String,
    #[serde(default)]
    pub objects_at: String,
    /// What makes copies that outlive the deletion (backups, a versioned bucket's old
    /// versions) unreadable.
    #[serde(default)]
    pub residual_copies: String,
    pub purged: Vec<CertItem>,
    pub retained: Vec<CertItem>,
    pub outside_copies: Vec<CertItem>,
    /// Copies in other stations' data directories: each is deleted when its station next
    /// opens the store (the audit log records it as `purge.sweep`).
    #[serde(default)]
    pub station_copies: Vec<CertItem>,
    pub takedown: Vec<Takedown>,
    /// The audit chain's head once the withdrawal committed: anchors the store's history
    /// outside it (`sameframe audit verify` checks every certificate's anchor, and
    /// `--expect-head` takes its hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_anchor: Option<crate::store::history::Anchor>,
}

/// The result of a withdrawal.
#[derive(Clone, Debug, Serialize)]
pub struct WithdrawOutcome {
    pub consent_id: String,
    /// The patient's clinic reference.
    pub patient_ref: String,
    pub scopes_withdrawn: Vec<String>,
    /// True when this run finished a withdrawal that had been interrupted.
    pub resumed: bool,
    pub certificate: Certificate,
    pub certificate_json: PathBuf,
    pub certificate_text: PathBuf,
    /// Where the store keeps the certificate (the same file for an embedded store).
    pub certificate_stored_at: String,
    pub certificate_sha256: String,
    pub takedown: Vec<Takedown>,
}

/// The clinic's settings a plan applies (read before its unit of work).
#[derive(Clone, Copy, Debug)]
struct Rules {
    retention_years: u32,
    takedown_days: u32,
}

/// A planned item of a withdrawal.
pub type Item = PurgeItemRow;

fn item(kind: &str) -> Item {
    Item {
        kind: kind.to_string(),
        subject_id: None,
        sha256: None,
        path: None,
        detail: None,
    }
}

fn cert(i: &Item) -> CertItem {
    CertItem {
        kind: i
            .kind
            .trim_start_matches("retained_")
            .trim_start_matches("outside_")
            .trim_start_matches("remote_")
            .to_string(),
        sha256: i.sha256.clone(),
        subject_id: i.subject_id.clone(),
        path: i.path.clone(),
        detail: i.detail.clone(),
    }
}

/// The uses of published or exported copies a withdrawal of `scope` ends (a withdrawal of
/// `all` ends every use, review reports included: see [`covers`]).
pub fn purposes(scope: WithdrawScope) -> &'static [&'static str] {
    match scope {
        WithdrawScope::Publication => &["publication"],
        WithdrawScope::Teaching => &["teaching"],
        WithdrawScope::All => &["clinical", "teaching", "publication", "review"],
    }
}

/// True when a withdrawal of `scope` ends a copy made for `purpose`.
pub fn covers(scope: WithdrawScope, purpose: &str) -> bool {
    scope == WithdrawScope::All || purposes(scope).contains(&purpose)
}

/// A capture of the consent being withdrawn, as the plan needs it.
#[derive(Clone, Debug)]
pub struct PlannedCapture {
    pub id: String,
    pub sha256: String,
    pub has_fingerprint: bool,
    /// Its thumbnail is cached (an import that deferred its derived data made none yet).
    pub has_thumbnail: bool,
}

/// What a withdrawal's plan is made from: the rows as its unit of work sees them.
pub struct PlanInput<'a> {
    pub consent: &'a Consent,
    pub scope: WithdrawScope,
    pub purge_originals: bool,
    pub captures: &'a [PlannedCapture],
    pub exports: &'a [ExportRow],
    /// The consent's publications, for every use.
    pub publications: &'a [Publication],
    /// The patient's clinic reference and visits (ID, date).
    pub patient_ref: &'a str,
    pub visits: &'a [(String, String)],
    /// The consent's treatment records that go with its clinical record (maps, skin
    /// responses, pain, outcomes): (ID, kind, visit).
    pub treatments: &'a [(String, String, String)],
    /// The day the clinical record is kept until, and the day take-downs are due.
    pub kept_until: &'a str,
    pub takedown_due: &'a str,
    /// The consent's data key, while it exists.
    pub data_key: Option<&'a str>,
    /// This station's data directory and ID.
    pub root: &'a Path,
    pub station: &'a str,
    /// Where the store keeps an object (for the certificate).
    pub location_of: &'a dyn Fn(&BlobKey) -> String,
}

/// Everything a withdrawal must remove, keep, point out or notify, in the order it is done.
/// A pure function of the rows: what a purge covers is decided here and nowhere else.
pub fn plan(p: &PlanInput<'_>) -> Vec<Item> {
    let mut items = Vec::new();
    for e in p.exports {
        if covers(p.scope, &e.purpose) {
            items.push(export_item(p, e));
        } else {
            items.push(retained(
                "export",
                &e.id,
                Some(&e.sha256),
                format!(
                    "kept: a {} copy ({}), a use this withdrawal does not end",
                    e.purpose, e.path
                ),
            ));
        }
    }
    let retention = format!("kept: clinical-record retention, until {}", p.kept_until);
    if p.scope == WithdrawScope::All {
        let kept = |kind: &str| {
            if p.purge_originals {
                (kind.to_string(), None)
            } else {
                (format!("retained_{kind}"), Some(retention.clone()))
            }
        };
        for c in p.captures {
            // A capture whose import deferred its derived data has no thumbnail yet: one made
            // since the plan is deleted all the same, and none is made again.
            let mut t = item(if c.has_thumbnail {
                "thumbnail"
            } else {
                "late_thumbnail"
            });
            t.subject_id = Some(c.id.clone());
            t.sha256 = Some(c.sha256.clone());
            t.path = Some((p.location_of)(&BlobKey::Thumb(c.sha256.clone())));
            if !c.has_thumbnail {
                t.detail =
                    Some("no thumbnail or fingerprint had been made yet; none will be made".into());
            }
            items.push(t);
            if c.has_fingerprint {
                let mut f = item("fingerprint");
                f.subject_id = Some(c.id.clone());
                f.sha256 = Some(c.sha256.clone());
                items.push(f);
            }
            let (kind, detail) = kept("original");
            let mut o = item(&kind);
            o.subject_id = Some(c.id.clone());
            o.sha256 = Some(c.sha256.clone());
            o.path = Some((p.location_of)(&BlobKey::Blob(c.sha256.clone())));
            o.detail = detail;
            items.push(o);
        }
        for (id, kind, visit) in p.treatments {
            let mut t = if p.purge_originals {
                let mut t = item("treatment");
                t.detail = Some(format!("{kind} of visit {visit}"));
                t
            } else {
                let mut t = item("retained_treatment");
                t.detail = Some(format!("{kind} of visit {visit} — {retention}"));
                t
            };
            t.subject_id = Some(id.clone());
            items.push(t);
        }
        if let Some(doc) = &p.consent.document_sha256 {
            let (kind, detail) = kept("document");
            let mut d = item(&kind);
            d.subject_id = Some(p.consent.id.clone());
            d.sha256 = Some(doc.clone());
            d.path = Some((p.location_of)(&BlobKey::Blob(doc.clone())));
            d.detail = detail;
            items.push(d);
        }
        if p.purge_originals
            && let Some(k) = p.data_key
        {
            let mut it = item("data_key");
            it.subject_id = Some(k.to_string());
            it.detail = Some(
                "destroyed: every copy of this consent's blobs, including backups and old object versions, is unreadable"
                    .into(),
            );
            items.push(it);
        }
    } else {
        for c in p.captures {
            items.push(retained(
                "original",
                &c.id,
                Some(&c.sha256),
                format!(
                    "kept: the consent's other uses ({}) continue",
                    p.consent
                        .scopes
                        .iter()
                        .filter(|s| s.status == "active" && !covers(p.scope, s.scope.as_str()))
                        .map(|s| s.scope.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
    }
    for pubn in p.publications {
        if !covers(p.scope, &pubn.purpose) {
            items.push(retained(
                "publication",
                &pubn.id,
                Some(&pubn.file_sha256),
                format!(
                    "kept: a {} use on {}, which the consent still allows (no take-down)",
                    pubn.purpose, pubn.channel
                ),
            ));
            continue;
        }
        let t = Takedown::of(pubn, p.takedown_due);
        let mut it = item("takedown");
        it.subject_id = Some(t.publication_id.clone());
        it.sha256 = Some(t.file_sha256.clone());
        it.detail = Some(serde_json::to_string(&t).unwrap_or_default());
        items.push(it);
        items.push(retained(
            "takedown_record",
            &pubn.id,
            Some(&pubn.file_sha256),
            "kept: the publication's record (file SHA-256, channel, address; no image data), to honour the take-down and catch the file if it reappears".into(),
        ));
    }
    items.extend(records_kept(p, &retention));
    items
}

/// A kept item and the rule that keeps it.
fn retained(kind: &str, subject: &str, sha256: Option<&str>, rule: String) -> Item {
    let mut it = item(&format!("retained_{kind}"));
    it.subject_id = Some(subject.to_string());
    it.sha256 = sha256.map(str::to_string);
    it.detail = Some(rule);
    it
}

/// The records every withdrawal keeps: the consent and its withdrawal, the patient's clinical
/// record (after a withdrawal of everything), and the audit log.
fn records_kept(p: &PlanInput<'_>, retention: &str) -> Vec<Item> {
    let mut out = vec![retained(
        "consent_record",
        &p.consent.id,
        None,
        format!(
            "kept: the consent and its withdrawal (who, when, why), the proof a legal obligation asks for, until {}",
            p.kept_until
        ),
    )];
    if p.scope == WithdrawScope::All {
        let dates: Vec<&str> = p.visits.iter().map(|(_, d)| d.as_str()).collect();
        out.push(retained(
            "patient_record",
            &p.consent.patient_id,
            None,
            format!(
                "patient {}: reference, name if recorded, and {} visit(s){} with products, lots and clinician — {retention}",
                p.patient_ref,
                p.visits.len(),
                if dates.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", dates.join(", "))
                }
            ),
        ));
    }
    out.push(retained(
        "audit_log",
        &p.consent.id,
        None,
        "kept: the tamper-evident audit log (IDs and hashes; no names, no images), the record of what was done, for the store's life".into(),
    ));
    out
}

/// An export covered by the withdrawal: on this station inside its data directory (deleted
/// now), in another station's (deleted there), or outside any (pointed out).
fn export_item(p: &PlanInput<'_>, e: &ExportRow) -> Item {
    let here = e.station.is_empty() || e.station == p.station;
    let recorded = PathBuf::from(&e.path);
    let (kind, path) = if e.inside_store && !here {
        ("remote_export", e.path.clone())
    } else {
        // Exports inside the store are recorded relative to it; an absolute path from before
        // that, or from a store since moved, is purged only if it is still inside this data
        // directory: nothing outside it is ever deleted.
        let resolved = if recorded.is_relative() {
            p.root.join(&recorded)
        } else {
            recorded
        };
        let inside = e.inside_store && crate::records::capture::path_is_inside(&resolved, p.root);
        (
            if inside { "export" } else { "outside_export" },
            resolved.display().to_string(),
        )
    };
    let mut it = item(kind);
    it.subject_id = Some(e.id.clone());
    it.sha256 = Some(e.sha256.clone());
    it.path = Some(path);
    it.detail = Some(if kind == "remote_export" {
        format!("{} export of {}, on station {}", e.purpose, e.at, e.station)
    } else {
        format!("{} export of {}", e.purpose, e.at)
    });
    it
}

impl Store {
    /// Withdraw consent scopes and purge what the withdrawal covers (see the module docs).
    /// Re-running after an interruption completes the job.
    pub fn withdraw_consent(
        &self,
        req: &WithdrawRequest<'_>,
    ) -> Result<WithdrawOutcome, PurgeError> {
        let consent = self.consent(req.consent_id)?;
        if let Some(job) = self.read(|r| r.pending_purge_job(&consent.id))? {
            self.check_keys()?;
            return self.run_job(job, true);
        }
        if req.reason.trim().is_empty() {
            return Err(PurgeError::NoReason);
        }
        crate::records::consent::check_text("--reason", req.reason)?;
        if req.purge_clinical_record && req.scope != WithdrawScope::All {
            return Err(PurgeError::PurgeClinicalNeedsAll);
        }
        if req.purge_clinical_record && !req.confirm {
            return Err(PurgeError::NeedsConfirm {
                consent: consent.id.clone(),
            });
        }
        // Whoever purges must hold the store's key: a wrong passphrase changes nothing.
        self.check_keys()?;
        let keep_clinical = self.setting_bool("retention.keep_clinical_record")?;
        let purge_originals =
            req.scope == WithdrawScope::All && (req.purge_clinical_record || !keep_clinical);
        let job = self.plan_job(
            req,
            purge_originals,
            keep_clinical && req.purge_clinical_record,
        )?;
        self.run_job(job, false)
    }

    fn scopes_to_withdraw(
        &self,
        tx: &mut Tx<'_>,
        consent: &Consent,
        req: &WithdrawRequest<'_>,
    ) -> Result<Vec<Scope>, PurgeError> {
        let mut single = |scope: Scope| -> Result<Vec<Scope>, PurgeError> {
            let st = consent.scope(scope).ok_or(PurgeError::NotGranted {
                consent: consent.id.clone(),
                scope,
            })?;
            if st.status == "withdrawn" {
                return Err(PurgeError::AlreadyWithdrawn {
                    consent: consent.id.clone(),
                    scope: scope.to_string(),
                    at: st.withdrawn_at.clone().unwrap_or_default(),
                    hint: self.last_certificate_hint(tx, &consent.id)?,
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
                if req.purge_clinical_record && !tx.blob_rows_of_consent(&consent.id)?.is_empty() {
                    return Ok(Vec::new());
                }
                let at = consent
                    .scopes
                    .iter()
                    .filter_map(|s| s.withdrawn_at.clone())
                    .max()
                    .unwrap_or_default();
                Err(PurgeError::AlreadyWithdrawn {
                    consent: consent.id.clone(),
                    scope: "every scope".into(),
                    at,
                    hint: self.last_certificate_hint(tx, &consent.id)?,
                })
            }
        }
    }

    /// " (certificate PATH)" of the consent's last finished withdrawal, if any.
    fn last_certificate_hint(
        &self,
        tx: &mut Tx<'_>,
        consent_id: &str,
    ) -> Result<String, PurgeError> {
        Ok(tx
            .last_completed_purge_job(consent_id)?
            .map(|j| {
                format!(
                    "; its certificate: {}",
                    self.blobs()
                        .location_of(&BlobKey::Certificate(format!("{}.txt", j.id)))
                )
            })
            .unwrap_or_default())
    }

    /// Phase 1: withdraw the scopes and record the plan, in one unit of work. The plan is made
    /// from the rows as they are under the write lock: an import that committed first is in
    /// it, and one that commits after sees the withdrawn scope and is refused.
    fn plan_job(
        &self,
        req: &WithdrawRequest<'_>,
        purge_originals: bool,
        retention_override: bool,
    ) -> Result<PurgeJobRow, PurgeError> {
        let job_id = new_id("purge")?;
        let rules = Rules {
            retention_years: self.setting_u32("retention.clinical_record_years")?,
            takedown_days: self.setting_u32("takedown.due_days")?,
        };
        self.write(|tx| {
            let mut consent = self.consent_in(tx, req.consent_id.trim())?;
            if let Some(job) = tx.pending_purge_job(&consent.id)? {
                return Ok(job); // another station started it meanwhile
            }
            let scopes = self.scopes_to_withdraw(tx, &consent, req)?;
            let now = crate::timefmt::now_utc();
            let job = PurgeJobRow {
                id: job_id.clone(),
                consent_id: consent.id.clone(),
                scopes: serde_json::to_string(
                    &scopes.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
                )
                .unwrap_or_default(),
                purge_originals,
                retention_override,
                reason: req.reason.trim().to_string(),
                actor: self.actor().to_string(),
                started_at: now.clone(),
                committed_at: None,
                completed_at: None,
                certificate_sha256: None,
            };
            let items = self.plan_items(tx, &consent, req.scope, purge_originals, rules)?;
            for st in consent.scopes.iter_mut().filter(|s| scopes.contains(&s.scope)) {
                st.status = "withdrawn".into();
                st.withdrawn_at = Some(now.clone());
                st.withdrawn_by = Some(self.actor().to_string());
                st.withdrawal_reason = Some(job.reason.clone());
            }
            self.update_consent_in(tx, &consent)?;
            tx.insert_purge_job(&job, &items)?;
            let count = |k: &str| items.iter().filter(|i| i.kind == k).count();
            tx.audit(
                "consent.withdraw",
                json!({ "consent": consent.id, "patient": consent.patient_id, "job": job.id }),
                json!({
                    "scopes": scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                    "reason_sha256": sha256_hex(job.reason.as_bytes()),
                    "purge_originals": purge_originals,
                    "retention_override": retention_override,
                    "planned": {
                        "originals": count("original"), "documents": count("document"),
                        "thumbnails": count("thumbnail"), "exports": count("export"),
                        "fingerprints": count("fingerprint"), "retained": count("retained_original"),
                        "outside_copies": count("outside_export"), "station_copies": count("remote_export"),
                        "takedown": count("takedown"),
                    },
                }),
            )?;
            Ok(job)
        })
    }

    /// The plan's inputs, read in the unit of work.
    fn plan_items(
        &self,
        tx: &mut Tx<'_>,
        consent: &Consent,
        scope: WithdrawScope,
        purge_originals: bool,
        rules: Rules,
    ) -> Result<Vec<Item>, PurgeError> {
        let mut captures = Vec::new();
        for c in tx.captures_of_consent(&consent.id)? {
            captures.push(PlannedCapture {
                has_fingerprint: tx.fingerprint(&c.id)?.is_some(),
                has_thumbnail: self.blobs().exists(&BlobKey::Thumb(c.sha256.clone()))?,
                id: c.id,
                sha256: c.sha256,
            });
        }
        captures.sort_by(|a, b| a.id.cmp(&b.id));
        let exports = tx.exports_of_consent(&consent.id)?;
        let pubs = crate::records::publication::of_consent(
            self.publications_in(tx.publications()?)?,
            &consent.id,
            &["publication", "teaching"],
        );
        let patient = crate::records::patient::patient_in(self, tx.repos(), &consent.patient_id)?;
        let mut visits = Vec::new();
        for row in tx.visits_of_patient(&consent.patient_id)? {
            let v = self.visit_of(row)?;
            visits.push((v.id, v.date));
        }
        visits.sort_by(|a, b| a.1.cmp(&b.1));
        let mut treatments = Vec::new();
        for row in tx.treatments_of_consent(&consent.id)? {
            let r = self.treatment_of(row)?;
            if r.body.purged_with_clinical_record() {
                treatments.push((r.id, r.body.kind().to_string(), r.visit_id));
            }
        }
        let today = crate::timefmt::today();
        let years = rules.retention_years;
        let from = visits
            .last()
            .and_then(|(_, d)| crate::timefmt::parse_date(d))
            .map_or(today, |d| d.max(today));
        let kept_until = crate::timefmt::fmt_date(
            from.checked_add_months(chrono::Months::new(12 * years))
                .unwrap_or(from),
        );
        let due_days = rules.takedown_days;
        let takedown_due = crate::timefmt::fmt_date(
            today
                .checked_add_days(chrono::Days::new(u64::from(due_days)))
                .unwrap_or(today),
        );
        let data_key = tx
            .data_key_of_consent(&consent.id)?
            .filter(|k| k.wrapped.is_some())
            .map(|k| k.id);
        let blobs = self.blobs();
        Ok(plan(&PlanInput {
            consent,
            scope,
            purge_originals,
            captures: &captures,
            exports: &exports,
            publications: &pubs,
            patient_ref: &patient.reference,
            visits: &visits,
            treatments: &treatments,
            kept_until: &kept_until,
            takedown_due: &takedown_due,
            data_key: data_key.as_deref(),
            root: self.root(),
            station: self.station(),
            location_of: &|k| blobs.location_of(k),
        }))
    }

    /// Recorded publications of a consent's captures for the given purposes.
    pub fn takedowns(
        &self,
        consent_id: &str,
        purposes: &[&str],
    ) -> Result<Vec<Takedown>, PurgeError> {
        Ok(self
            .publications_of_consent(consent_id, purposes)?
            .iter()
            .map(|p| Takedown::of(p, ""))
            .collect())
    }

    /// Phases 2–4 (idempotent).
    /// Finish every withdrawal that was interrupted (a crash, a killed command, a server that
    /// went away), oldest first; each as if its `consent withdraw` ran again.
    pub fn finish_withdrawals(&self) -> Result<Vec<WithdrawOutcome>, PurgeError> {
        let jobs = self.read(|r| r.unfinished_purge_jobs())?;
        jobs.into_iter().map(|j| self.run_job(j, true)).collect()
    }

    fn run_job(&self, job: PurgeJobRow, resumed: bool) -> Result<WithdrawOutcome, PurgeError> {
        let items = self.read(|r| r.purge_items(&job.id))?;
        let encrypted = self.is_encrypted();
        // Phase 2: plaintext copies first: local exports, previews, faces found in the photo
        // and cached by `analyze pose`, and the originals of a store without encryption.
        let mut files: Vec<PathBuf> = Vec::new();
        let face_cache = self.root().join("cache").join("models");
        for it in &items {
            // Every capture of the withdrawal has one item for its original, kept or not.
            if let (kind, Some(h)) = (it.kind.as_str(), &it.sha256)
                && kind.ends_with("original")
            {
                files.extend(crate::analysis::pose::face::cached_face_files(
                    &face_cache,
                    h,
                ));
            }
            match (it.kind.as_str(), &it.sha256) {
                ("export", _) => files.extend(it.path.as_ref().map(PathBuf::from)),
                ("thumbnail" | "late_thumbnail", Some(h)) => {
                    self.blobs().delete(&BlobKey::Thumb(h.clone()))?;
                }
                ("original" | "document", Some(h)) if !encrypted => {
                    self.blobs().delete(&BlobKey::Blob(h.clone()))?;
                }
                _ => {}
            }
        }
        remove_files(&files)?;
        // Phase 3: rows become tombstones; the data key is destroyed.
        if job.committed_at.is_none() {
            self.commit_job(&job, &items)?;
            self.compact()?;
        }
        // Phase 4: the sealed objects, then the certificate.
        for it in &items {
            if let ("original" | "document", Some(h)) = (it.kind.as_str(), &it.sha256) {
                self.blobs().delete(&BlobKey::Blob(h.clone()))?;
            }
        }
        self.complete_job(&job, &items, resumed)
    }

    fn commit_job(&self, job: &PurgeJobRow, items: &[Item]) -> Result<(), PurgeError> {
        self.write(|tx| {
            let now = crate::timefmt::now_utc();
            for it in items {
                let sha = it.sha256.as_deref();
                let subject = it.subject_id.as_deref().unwrap_or_default();
                let tombstone = match it.kind.as_str() {
                    "original" => {
                        tx.delete_fingerprint(subject)?;
                        for f in tx.followers(subject)? {
                            let mut c = self.capture_in(tx.repos(), &f)?;
                            c.baseline_id = None;
                            self.update_capture_in(tx, &c)?;
                        }
                        tx.delete_capture(subject)?;
                        if let Some(h) = sha {
                            tx.delete_blob_row(h)?;
                        }
                        Some("original")
                    }
                    "document" => {
                        let mut c = self.consent_in(tx, &job.consent_id)?;
                        c.document_sha256 = None;
                        self.update_consent_in(tx, &c)?;
                        if let Some(h) = sha {
                            tx.delete_blob_row(h)?;
                        }
                        Some("document")
                    }
                    "fingerprint" => {
                        tx.delete_fingerprint(subject)?;
                        Some("fingerprint")
                    }
                    "treatment" => {
                        tx.delete_treatment(subject)?;
                        Some("treatment")
                    }
                    "thumbnail" => Some("thumbnail"),
                    // Marks the capture's derived data as purged, so it is never made again.
                    "late_thumbnail" => Some("derived"),
                    "export" => {
                        tx.delete_export(subject)?;
                        Some("export")
                    }
                    "remote_export" => {
                        tx.mark_export_purged(subject, &job.id)?;
                        Some("export")
                    }
                    "data_key" => {
                        self.destroy_data_key_in(tx, subject)?;
                        Some("data_key")
                    }
                    "takedown" => {
                        self.open_takedown_in(tx, job, it, &now)?;
                        None
                    }
                    _ => None,
                };
                if let Some(kind) = tombstone {
                    tx.insert_tombstone(&TombstoneRow {
                        kind: kind.to_string(),
                        sha256: if kind == "data_key" { None } else { it.sha256.clone() },
                        subject_id: it.subject_id.clone(),
                        consent_id: job.consent_id.clone(),
                        job_id: job.id.clone(),
                        purged_at: now.clone(),
                        purged_by: self.actor().to_string(),
                        reason: job.reason.clone(),
                    })?;
                }
            }
            tx.mark_purge_committed(&job.id, &now)?;
            let count = |k: &str| items.iter().filter(|i| i.kind == k).count();
            tx.audit(
                "purge.commit",
                json!({
                    "consent": job.consent_id, "job": job.id,
                    "sha256": items.iter().filter(|i| i.kind == "original" || i.kind == "document").filter_map(|i| i.sha256.clone()).collect::<Vec<_>>(),
                }),
                json!({
                    "originals": count("original"), "documents": count("document"),
                    "thumbnails": count("thumbnail"), "exports": count("export"),
                    "station_copies": count("remote_export"),
                    "fingerprints": count("fingerprint"), "data_keys_destroyed": count("data_key"),
                    "treatment_records": count("treatment"),
                }),
            )?;
            Ok::<_, PurgeError>(())
        })
    }

    /// Open the take-down of a publication a withdrawal covers (one already open, or done,
    /// for another consent's withdrawal stays as it is).
    fn open_takedown_in(
        &self,
        tx: &mut Tx<'_>,
        job: &PurgeJobRow,
        it: &Item,
        now: &str,
    ) -> Result<(), PurgeError> {
        let Some(t) = it
            .detail
            .as_deref()
            .and_then(|d| serde_json::from_str::<Takedown>(d).ok())
        else {
            return Ok(());
        };
        let Some(row) = tx
            .publications_of_file(&t.file_sha256)?
            .into_iter()
            .find(|r| r.id == t.publication_id)
        else {
            return Ok(());
        };
        let mut p = self.publication_of(row)?;
        if p.takedown.is_some() {
            return Ok(());
        }
        p.takedown = Some(crate::records::publication::TakedownState {
            requested_at: now.to_string(),
            job_id: job.id.clone(),
            consent_id: job.consent_id.clone(),
            due: t.due,
            status: "open".into(),
            done_at: None,
            done_by: None,
            evidence_name: None,
            evidence_sha256: None,
            note: None,
        });
        let row = self.publication_row(&p)?;
        tx.update_publication(&row)?;
        Ok(())
    }

    fn complete_job(
        &self,
        job: &PurgeJobRow,
        items: &[Item],
        resumed: bool,
    ) -> Result<WithdrawOutcome, PurgeError> {
        let consent = self.consent(&job.consent_id)?;
        // The certificate names the patient by clinic reference where the store keeps it on the
        // clinic's own disk; a shared store's servers only ever hold opaque IDs and hashes (the
        // reference is in the withdrawal's output at the desk).
        let reference = self
            .patient_by_id(&consent.patient_id)
            .map(|p| p.reference)
            .unwrap_or_default();
        let patient_ref = if self.blobs().is_local() {
            reference.clone()
        } else {
            String::new()
        };
        let pick = |f: &dyn Fn(&str) -> bool| -> Vec<CertItem> {
            items.iter().filter(|i| f(&i.kind)).map(cert).collect()
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
        let scopes: Vec<String> = serde_json::from_str(&job.scopes).unwrap_or_default();
        let completed_at = crate::timefmt::now_utc();
        let cert = Certificate {
            certificate_id: format!("cert_{}", job.id.trim_start_matches("purge_")),
            job_id: job.id.clone(),
            store_id: self.store_id().to_string(),
            consent_id: job.consent_id.clone(),
            patient_id: consent.patient_id.clone(),
            patient_ref,
            scopes_withdrawn: scopes.clone(),
            reason: job.reason.clone(),
            actor: job.actor.clone(),
            started_at: job.started_at.clone(),
            completed_at: completed_at.clone(),
            originals_purged: job.purge_originals,
            retention_overridden: job.retention_override,
            rows_at: self.location(),
            objects_at: self.blob_location(),
            residual_copies: self.residual_copies_note(job.purge_originals),
            purged: pick(&|k| {
                matches!(
                    k,
                    "original"
                        | "document"
                        | "thumbnail"
                        | "export"
                        | "fingerprint"
                        | "data_key"
                        | "treatment"
                )
            }),
            retained: pick(&|k| k.starts_with("retained_")),
            outside_copies: pick(&|k| k == "outside_export"),
            station_copies: pick(&|k| k == "remote_export"),
            takedown: takedown.clone(),
            audit_anchor: self.audit_anchor()?,
        };
        let json_text = serde_json::to_string_pretty(&cert).unwrap_or_default();
        let cert_sha = sha256_hex(json_text.as_bytes());
        let (json_path, stored_at) =
            self.keep_certificate(&format!("{}.json", job.id), json_text.as_bytes())?;
        let (text_path, _) = self.keep_certificate(
            &format!("{}.txt", job.id),
            certificate_text(&cert, &cert_sha).as_bytes(),
        )?;
        self.write(|tx| {
            if tx.mark_purge_completed(&job.id, &completed_at, &cert_sha)? {
                tx.audit(
                    "purge.complete",
                    json!({ "consent": job.consent_id, "job": job.id, "certificate": cert.certificate_id }),
                    json!({ "certificate_sha256": cert_sha, "purged": cert.purged.len(), "retained": cert.retained.len(),
                            "outside_copies": cert.outside_copies.len(), "station_copies": cert.station_copies.len(),
                            "takedown": cert.takedown.len(), "resumed": resumed }),
                )?;
            }
            Ok::<_, PurgeError>(())
        })?;
        self.compact()?;
        Ok(WithdrawOutcome {
            patient_ref: reference,
            consent_id: job.consent_id.clone(),
            scopes_withdrawn: scopes,
            resumed,
            certificate: cert,
            certificate_json: json_path,
            certificate_text: text_path,
            certificate_stored_at: stored_at,
            certificate_sha256: cert_sha,
            takedown,
        })
    }

    /// What the certificate says about copies that outlive a deletion.
    fn residual_copies_note(&self, originals_purged: bool) -> String {
        match (self.is_encrypted(), originals_purged) {
            (true, true) => format!(
                "Copies of the purged objects that outlive this deletion — in backups, or as old object versions if {} keeps versions — were sealed with the consent's data key, destroyed by this withdrawal: they cannot be decrypted (crypto-shredding).",
                self.blob_location()
            ),
            (true, false) => "The originals are kept under clinical-record retention, sealed with the consent's data key, which remains.".into(),
            (false, _) => "This store is not encrypted: copies of the purged objects in backups or old object versions remain readable; delete them there, or encrypt the store (`sameframe encrypt`).".into(),
        }
    }
}

/// Delete the copies on this station that a withdrawal (run here or on another station) covers
/// and that are still on its disk; each deletion is audited.
pub fn sweep_station(store: &Store) -> Result<(), StoreError> {
    let pending = store.read(|r| r.exports_to_sweep(Some(store.station())))?;
    for e in pending {
        let path = {
            let p = PathBuf::from(&e.path);
            if p.is_relative() {
                store.root().join(p)
            } else {
                p
            }
        };
        if e.inside_store && crate::records::capture::path_is_inside(&path, store.root()) {
            crate::fsutil::remove_file_durably(&path)?;
        }
        store.write(|tx| {
            tx.delete_export(&e.id)?;
            tx.audit(
                "purge.sweep",
                json!({ "export": e.id, "capture": e.capture_id, "sha256": e.sha256, "job": e.purge_job }),
                json!({ "station": store.station() }),
            )?;
            Ok::<_, StoreError>(())
        })?;
    }
    Ok(())
}

/// Unlink files (missing ones are fine), then fsync each folder once.
fn remove_files(paths: &[PathBuf]) -> Result<(), PurgeError> {
    let mut dirs = BTreeSet::new();
    for p in paths {
        if crate::fsutil::remove_file_durably(p)? {
            dirs.extend(p.parent().map(Path::to_path_buf));
        }
    }
    for d in dirs {
        crate::fsutil::sync_dir(&d)?;
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
        "consent       {} (patient {}{})\n",
        c.consent_id,
        if c.patient_ref.is_empty() {
            String::new()
        } else {
            format!("{}, ", crate::text::terminal_safe(&c.patient_ref, false))
        },
        c.patient_id
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
    if let Some(a) = &c.audit_anchor {
        s += &format!("audit entry   {} (chain head {})\n", a.seq, a.hash);
    }
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
    if !c.rows_at.is_empty() {
        s += &format!(
            "rows          {}
",
            c.rows_at
        );
        s += &format!(
            "objects       {}
",
            c.objects_at
        );
    }
    if !c.residual_copies.is_empty() {
        s += &format!(
            "copies        {}
",
            c.residual_copies
        );
    }
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
    s += &format!(
        "\nRETAINED — what is kept, under which rule, for how long ({})\n",
        c.retained.len()
    );
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
    if !c.station_copies.is_empty() {
        s += &format!(
            "\nCOPIES ON OTHER STATIONS — each is deleted when its station next opens the store (audit: purge.sweep) ({})\n",
            c.station_copies.len()
        );
        for i in &c.station_copies {
            s += &line(i);
        }
    }
    s += &format!(
        "\nTAKE DOWN — notify these publishers (GDPR Art. 17(2)) ({})\n",
        c.takedown.len()
    );
    for t in &c.takedown {
        s += &format!(
            "  {}  due {}  published {} on {} {}  file {} {}\n    {}\n",
            t.publication_id,
            if t.due.is_empty() { "-" } else { &t.due },
            t.date,
            crate::text::terminal_safe(&t.channel, false),
            crate::text::terminal_safe(t.url.as_deref().unwrap_or("-"), false),
            crate::text::terminal_safe(t.file_name.as_deref().unwrap_or("-"), false),
            t.file_sha256,
            crate::text::terminal_safe(&t.instruction, false),
        );
    }
    if !c.takedown.is_empty() {
        s += "  (track them with `sameframe takedown list`; close each with `sameframe takedown done ID --evidence FILE`)\n";
    }
    s += &format!(
        "\nSHA-256 of the JSON certificate: {sha}\n(recorded in the store's audit chain as purge.complete)\n"
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::ScopeState;
    use crate::records::publication::PublicationSource;

    fn consent(doc: Option<&str>) -> Consent {
        Consent {
            id: "con_1".into(),
            patient_id: "pat_1".into(),
            signed_by: "P".into(),
            signed_on: "2026-01-05".into(),
            expires_on: None,
            document_sha256: doc.map(str::to_string),
            scopes: [Scope::Clinical, Scope::Teaching, Scope::Publication]
                .iter()
                .map(|s| ScopeState {
                    scope: *s,
                    status: "active".into(),
                    withdrawn_at: None,
                    withdrawn_by: None,
                    withdrawal_reason: None,
                })
                .collect(),
            identifiable: false,
            created_at: String::new(),
        }
    }

    fn export(id: &str, purpose: &str, path: &str, inside: bool, station: &str) -> ExportRow {
        ExportRow {
            id: id.into(),
            capture_id: "cap_1".into(),
            sha256: "aa".repeat(32),
            purpose: purpose.into(),
            path: path.into(),
            inside_store: inside,
            station: station.into(),
            at: "2026-02-01T00:00:00Z".into(),
            actor: "n".into(),
            purge_job: None,
        }
    }

    fn publication(id: &str, purpose: &str) -> Publication {
        Publication {
            id: id.into(),
            file_sha256: "bb".repeat(32),
            channel: "website".into(),
            url: None,
            date: "2026-03-01".into(),
            purpose: purpose.into(),
            recorded_at: String::new(),
            actor: String::new(),
            sources: vec![PublicationSource {
                capture_id: "cap_1".into(),
                consent_id: "con_1".into(),
                patient_id: "pat_1".into(),
                sha256: "aa".repeat(32),
                panel: None,
                distance: None,
            }],
            file_name: Some("before-after.jpg".into()),
            not_patient: false,
            note: None,
            prepared: None,
            takedown: None,
        }
    }

    fn kinds(items: &[Item]) -> Vec<&str> {
        items.iter().map(|i| i.kind.as_str()).collect()
    }

    fn plan_for(scope: WithdrawScope, purge_originals: bool, root: &Path) -> Vec<Item> {
        let c = consent(Some(&"dd".repeat(32)));
        let captures = vec![PlannedCapture {
            id: "cap_1".into(),
            sha256: "aa".repeat(32),
            has_fingerprint: true,
            has_thumbnail: true,
        }];
        let exports = vec![
            export("exp_teach", "teaching", "exports/t.jpg", true, "sta_here"),
            export("exp_pub", "publication", "exports/p.jpg", true, "sta_other"),
            export(
                "exp_out",
                "publication",
                "/elsewhere/p.jpg",
                false,
                "sta_here",
            ),
        ];
        let pubs = vec![
            publication("pub_1", "publication"),
            publication("pub_2", "teaching"),
        ];
        let visits = vec![("vis_1".to_string(), "2026-01-05".to_string())];
        let treatments = vec![("trt_1".to_string(), "map".to_string(), "vis_1".to_string())];
        plan(&PlanInput {
            consent: &c,
            scope,
            purge_originals,
            captures: &captures,
            exports: &exports,
            publications: &pubs,
            patient_ref: "P-0001",
            visits: &visits,
            treatments: &treatments,
            kept_until: "2036-11-30",
            takedown_due: "2026-12-30",
            data_key: Some("k1"),
            root,
            station: "sta_here",
            location_of: &|k| format!("at:{}", k.path()),
        })
    }

    #[test]
    fn a_publication_withdrawal_covers_publication_copies_only() {
        let dir = tempfile::tempdir().unwrap();
        let items = plan_for(WithdrawScope::Publication, false, dir.path());
        // The copy on another station is deleted there; the one outside any store is listed;
        // the teaching copy and the teaching use stay (the consent still allows teaching: no
        // take-down), each with its rule.
        assert_eq!(
            kinds(&items),
            [
                "retained_export",
                "remote_export",
                "outside_export",
                "retained_original",
                "takedown",
                "retained_takedown_record",
                "retained_publication",
                "retained_consent_record",
                "retained_audit_log"
            ]
        );
        assert!(items[1].detail.as_deref().unwrap().contains("sta_other"));
        assert_eq!(items[2].path.as_deref(), Some("/elsewhere/p.jpg"));
        let takedown: Takedown = serde_json::from_str(items[4].detail.as_deref().unwrap()).unwrap();
        assert_eq!(
            (takedown.publication_id.as_str(), takedown.due.as_str()),
            ("pub_1", "2026-12-30")
        );
        for kept in items.iter().filter(|i| i.kind.starts_with("retained_")) {
            assert!(
                kept.detail.as_deref().unwrap().contains("kept"),
                "{kept:?} has no rule"
            );
        }
    }

    #[test]
    fn withdrawing_everything_keeps_the_clinical_record_unless_released() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("exports")).unwrap();
        let kept = plan_for(WithdrawScope::All, false, dir.path());
        assert_eq!(
            kinds(&kept),
            [
                "export",
                "remote_export",
                "outside_export",
                "thumbnail",
                "fingerprint",
                "retained_original",
                "retained_treatment",
                "retained_document",
                "takedown",
                "retained_takedown_record",
                "takedown",
                "retained_takedown_record",
                "retained_consent_record",
                "retained_patient_record",
                "retained_audit_log"
            ]
        );
        let patient = kept
            .iter()
            .find(|i| i.kind == "retained_patient_record")
            .unwrap();
        let rule = patient.detail.as_deref().unwrap();
        assert!(
            rule.contains("P-0001") && rule.contains("2036-11-30") && rule.contains("1 visit"),
            "{rule}"
        );
        assert!(
            !kinds(&kept).contains(&"data_key"),
            "the key of a kept record stays"
        );
        // The local export resolves inside this station's folder.
        assert_eq!(
            kept[0].path.as_deref(),
            Some(dir.path().join("exports/t.jpg").to_str().unwrap())
        );
        let purged = plan_for(WithdrawScope::All, true, dir.path());
        let k = kinds(&purged);
        assert!(k.contains(&"original") && k.contains(&"document") && k.contains(&"data_key"));
        assert!(
            k.contains(&"treatment"),
            "the map goes with its clinical record: {k:?}"
        );
        assert!(
            !k.contains(&"retained_original")
                && !k.contains(&"retained_document")
                && !k.contains(&"retained_treatment"),
            "{k:?}"
        );
        // A withdrawal of publication only never touches the clinical record.
        let publication = plan_for(WithdrawScope::Publication, false, dir.path());
        let k = kinds(&publication);
        assert!(!k.iter().any(|k| k.contains("treatment")), "{k:?}");
        // Where each object is goes into the certificate.
        let original = purged.iter().find(|i| i.kind == "original").unwrap();
        assert_eq!(
            original.path.as_deref(),
            Some(format!("at:blobs/aa/{}", "aa".repeat(31)).as_str())
        );
    }
}
