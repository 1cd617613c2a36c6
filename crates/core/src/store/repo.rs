//! The storage seam: repositories of plain rows, a unit of work, and a blob store.
//!
//! The rules of records, review and purge are written once, against these traits; each backend
//! (the embedded SQLite + folder store, the shared PostgreSQL + S3-compatible store) implements
//! them in its own crate. Nothing here names a driver, and no SQL is written above this line.
//!
//! Rows are what a backend keeps: plain columns that queries select on (IDs, hashes, the
//! series a capture belongs to) and, for records about patients, a `body` sealed by the core
//! (see [`super::seal`]). A backend never sees a patient's name, reference or notes in clear,
//! and cannot change a body without the change being noticed.
//!
//! A unit of work is a closure run by [`Backend::write`]: everything it does commits together
//! or not at all, under a lock that serialises writers of the whole store (so the audit chain
//! stays one chain and a series gets one baseline, whichever station writes). A backend may run
//! the closure again when a transient conflict aborted it; the closure must only touch the
//! store through the repositories it is given.

use std::time::SystemTime;

use super::error::{BlobError, StoreError};
use crate::vocab::{Area, Role, View};

/// Result of a repository call.
pub type RepoResult<T> = Result<T, StoreError>;

/// The wrapped master key and how to unlock it (one row per store).
#[derive(Clone, Debug, PartialEq)]
pub struct KeyringRow {
    /// "passphrase" or "keyfile".
    pub mode: String,
    /// Argon2id parameters (JSON) for passphrase stores.
    pub kdf: Option<String>,
    pub salt: Option<Vec<u8>>,
    pub wrapped_master: Option<Vec<u8>>,
    /// The key file recorded at `init` (embedded stores; a station's own config overrides it).
    pub key_file: Option<String>,
    /// A known text sealed under the master key: proves a key before anything changes.
    pub check_value: Vec<u8>,
    /// `sameframe encrypt` was interrupted.
    pub migration_pending: bool,
    pub created_at: String,
}

/// A consent's data key, wrapped by the master key; `wrapped` is gone once destroyed.
#[derive(Clone, Debug, PartialEq)]
pub struct DataKeyRow {
    pub id: String,
    pub consent_id: String,
    pub wrapped: Option<Vec<u8>>,
    pub created_at: String,
    pub destroyed_at: Option<String>,
    pub destroyed_by: Option<String>,
}

/// A patient: the keyed hash of the normalised clinic reference (unique), and the sealed body
/// (reference, display name).
#[derive(Clone, Debug, PartialEq)]
pub struct PatientRow {
    pub id: String,
    pub ref_key: String,
    pub body: Vec<u8>,
    pub created_at: String,
}

/// A consent (scopes, dates, signer: all in the sealed body).
#[derive(Clone, Debug, PartialEq)]
pub struct ConsentRow {
    pub id: String,
    pub patient_id: String,
    pub body: Vec<u8>,
    pub created_at: String,
}

/// A visit (products, lots, technique, clinician: in the sealed body).
#[derive(Clone, Debug, PartialEq)]
pub struct VisitRow {
    pub id: String,
    pub patient_id: String,
    pub body: Vec<u8>,
    pub created_at: String,
}

/// A treatment record of a visit (area map, product used, skin response, pain, outcome,
/// adverse event): which visit and patient, the consent whose clinical record it belongs to,
/// and everything else in the sealed body.
#[derive(Clone, Debug, PartialEq)]
pub struct TreatmentRow {
    pub id: String,
    /// "map", "product", "response", "pain", "outcome" or "adverse".
    pub kind: String,
    pub patient_id: String,
    pub visit_id: String,
    /// The consent whose withdrawal (with its clinical record) removes this record, if any.
    pub consent_id: Option<String>,
    pub body: Vec<u8>,
    pub created_at: String,
}

/// A stored original or consent document: its address, owner consent and sealing key.
#[derive(Clone, Debug, PartialEq)]
pub struct BlobRow {
    pub sha256: String,
    pub size: i64,
    /// "capture" or "document".
    pub kind: String,
    pub consent_id: String,
    pub key_id: Option<String>,
    pub created_at: String,
}

/// A capture: the columns its series and consent are found by, and the sealed body with
/// everything else (EXIF summary, note, confounders, station measurements).
#[derive(Clone, Debug, PartialEq)]
pub struct CaptureRow {
    pub id: String,
    pub sha256: String,
    pub patient_id: String,
    pub consent_id: String,
    pub visit_id: Option<String>,
    pub area: Area,
    pub view: View,
    pub role: Role,
    pub baseline_id: Option<String>,
    pub captured_at: String,
    pub imported_at: String,
    pub body: Vec<u8>,
}

/// A capture's perceptual fingerprint as stored; `small` is the reduced preview, sealed with
/// the consent's data key.
#[derive(Clone, Debug, PartialEq)]
pub struct FingerprintRow {
    pub capture_id: String,
    pub version: i64,
    pub phash: i64,
    pub dhash: i64,
    pub width: u32,
    pub height: u32,
    pub keypoints: Vec<u8>,
    pub descriptors: Vec<u8>,
    pub created_at: String,
    pub small: Option<Vec<u8>>,
}

/// What the review index reads of one fingerprint: its hashes and its first keypoints and
/// descriptors (8 and 32 bytes each), borrowed from the backend's buffer.
#[derive(Clone, Copy, Debug)]
pub struct IndexRow<'a> {
    pub capture_id: &'a str,
    pub phash: u64,
    pub dhash: u64,
    pub keypoints: &'a [u8],
    pub descriptors: &'a [u8],
}

/// A copy of a capture made for a purpose (export, review report).
#[derive(Clone, Debug, PartialEq)]
pub struct ExportRow {
    pub id: String,
    pub capture_id: String,
    pub sha256: String,
    pub purpose: String,
    /// Relative to the data directory when inside it, else absolute.
    pub path: String,
    pub inside_store: bool,
    /// The station (data directory) whose disk holds the copy.
    pub station: String,
    pub at: String,
    pub actor: String,
    /// Set when a withdrawal covers the copy and its station has not yet deleted it.
    pub purge_job: Option<String>,
}

/// A publication record; channel, address, date, purpose and sources are in the sealed body.
#[derive(Clone, Debug, PartialEq)]
pub struct PublicationRow {
    pub id: String,
    pub file_sha256: String,
    pub body: Vec<u8>,
    pub recorded_at: String,
}

/// A room's lighting profile.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfileRow {
    pub name: String,
    /// The profile as JSON.
    pub profile: String,
    pub image_sha256: String,
    pub exif: Option<String>,
    pub created_at: String,
    pub created_by: String,
}

/// What remains of a purged item: its hash, kind, when, who and why — no image data.
#[derive(Clone, Debug, PartialEq)]
pub struct TombstoneRow {
    pub kind: String,
    pub sha256: Option<String>,
    pub subject_id: Option<String>,
    pub consent_id: String,
    pub job_id: String,
    pub purged_at: String,
    pub purged_by: String,
    pub reason: String,
}

/// A journaled withdrawal.
#[derive(Clone, Debug, PartialEq)]
pub struct PurgeJobRow {
    pub id: String,
    pub consent_id: String,
    /// The withdrawn scopes, as a JSON list.
    pub scopes: String,
    pub purge_originals: bool,
    pub retention_override: bool,
    pub reason: String,
    pub actor: String,
    pub started_at: String,
    pub committed_at: Option<String>,
    pub completed_at: Option<String>,
    pub certificate_sha256: Option<String>,
}

/// One planned item of a withdrawal.
#[derive(Clone, Debug, PartialEq)]
pub struct PurgeItemRow {
    pub kind: String,
    pub subject_id: Option<String>,
    pub sha256: Option<String>,
    pub path: Option<String>,
    pub detail: Option<String>,
}

/// One entry of the audit chain as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditRow {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subjects: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Row counts for `sameframe status`.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Counts {
    pub patients: i64,
    pub consents: i64,
    pub visits: i64,
    pub captures: i64,
    pub blobs: i64,
    pub audit_entries: i64,
}

/// One cell of a row copied between backends by `sameframe migrate`.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Bytes(Vec<u8>),
}

/// Store-wide facts: the store's ID, schema markers, settings.
pub trait MetaRepo {
    fn meta(&mut self, key: &str) -> RepoResult<Option<String>>;
    fn set_meta(&mut self, key: &str, value: &str) -> RepoResult<()>;
    /// A setting's sealed body, if it was ever set.
    fn setting(&mut self, key: &str) -> RepoResult<Option<Vec<u8>>>;
    fn set_setting(&mut self, key: &str, body: &[u8]) -> RepoResult<()>;
    /// Every setting (key, body).
    fn settings(&mut self) -> RepoResult<Vec<(String, Vec<u8>)>>;
    fn counts(&mut self) -> RepoResult<Counts>;
}

/// The key ring and the consents' data keys.
pub trait KeyRepo {
    fn keyring(&mut self) -> RepoResult<Option<KeyringRow>>;
    fn put_keyring(&mut self, row: &KeyringRow) -> RepoResult<()>;
    fn set_keyring_pending(&mut self, pending: bool) -> RepoResult<()>;
    fn data_key(&mut self, id: &str) -> RepoResult<Option<DataKeyRow>>;
    fn data_key_of_consent(&mut self, consent_id: &str) -> RepoResult<Option<DataKeyRow>>;
    fn insert_data_key(&mut self, row: &DataKeyRow) -> RepoResult<()>;
    /// Forget the wrapped key; keep when and by whom.
    fn destroy_data_key(&mut self, id: &str, at: &str, by: &str) -> RepoResult<()>;
}

/// Patients.
pub trait PatientRepo {
    /// Fails with [`FailureKind::Duplicate`](super::error::FailureKind::Duplicate) when the
    /// reference key is taken.
    fn insert_patient(&mut self, row: &PatientRow) -> RepoResult<()>;
    fn update_patient(&mut self, row: &PatientRow) -> RepoResult<()>;
    fn patient(&mut self, id: &str) -> RepoResult<Option<PatientRow>>;
    fn patient_by_ref_key(&mut self, ref_key: &str) -> RepoResult<Option<PatientRow>>;
    fn patients(&mut self) -> RepoResult<Vec<PatientRow>>;
}

/// Consents.
pub trait ConsentRepo {
    fn insert_consent(&mut self, row: &ConsentRow) -> RepoResult<()>;
    fn update_consent(&mut self, row: &ConsentRow) -> RepoResult<()>;
    fn consent(&mut self, id: &str) -> RepoResult<Option<ConsentRow>>;
    fn consents_of_patient(&mut self, patient_id: &str) -> RepoResult<Vec<ConsentRow>>;
    fn consents(&mut self) -> RepoResult<Vec<ConsentRow>>;
}

/// Visits.
pub trait VisitRepo {
    fn insert_visit(&mut self, row: &VisitRow) -> RepoResult<()>;
    fn update_visit(&mut self, row: &VisitRow) -> RepoResult<()>;
    fn visit(&mut self, id: &str) -> RepoResult<Option<VisitRow>>;
    fn visits_of_patient(&mut self, patient_id: &str) -> RepoResult<Vec<VisitRow>>;
    fn visits(&mut self) -> RepoResult<Vec<VisitRow>>;
}

/// Treatment records of visits.
pub trait TreatmentRepo {
    fn insert_treatment(&mut self, row: &TreatmentRow) -> RepoResult<()>;
    /// Replace the body (and consent) of an existing record.
    fn update_treatment(&mut self, row: &TreatmentRow) -> RepoResult<()>;
    fn delete_treatment(&mut self, id: &str) -> RepoResult<()>;
    fn treatment(&mut self, id: &str) -> RepoResult<Option<TreatmentRow>>;
    /// A visit's records, oldest first.
    fn treatments_of_visit(&mut self, visit_id: &str) -> RepoResult<Vec<TreatmentRow>>;
    /// A patient's records, oldest first.
    fn treatments_of_patient(&mut self, patient_id: &str) -> RepoResult<Vec<TreatmentRow>>;
    /// The records a consent's clinical record holds, oldest first.
    fn treatments_of_consent(&mut self, consent_id: &str) -> RepoResult<Vec<TreatmentRow>>;
    /// Every record of a kind (every record when `None`), oldest first.
    fn treatments(&mut self, kind: Option<&str>) -> RepoResult<Vec<TreatmentRow>>;
}

/// The rows of stored blobs (originals and consent documents).
pub trait BlobRowRepo {
    /// Insert unless a row with this address exists.
    fn insert_blob(&mut self, row: &BlobRow) -> RepoResult<()>;
    fn blob_row(&mut self, sha256: &str) -> RepoResult<Option<BlobRow>>;
    /// Every row, by address.
    fn blob_rows(&mut self) -> RepoResult<Vec<BlobRow>>;
    fn blob_rows_of_consent(&mut self, consent_id: &str) -> RepoResult<Vec<BlobRow>>;
    fn set_blob_key(&mut self, sha256: &str, key_id: Option<&str>) -> RepoResult<()>;
    fn delete_blob_row(&mut self, sha256: &str) -> RepoResult<()>;
}

/// Captures.
pub trait CaptureRepo {
    fn insert_capture(&mut self, row: &CaptureRow) -> RepoResult<()>;
    /// Replace every column of an existing capture.
    fn update_capture(&mut self, row: &CaptureRow) -> RepoResult<()>;
    fn capture(&mut self, id: &str) -> RepoResult<Option<CaptureRow>>;
    fn capture_by_sha(&mut self, sha256: &str) -> RepoResult<Option<CaptureRow>>;
    /// Oldest first (by capture time, then import time); of one patient when given.
    fn captures(&mut self, patient_id: Option<&str>) -> RepoResult<Vec<CaptureRow>>;
    fn captures_of_consent(&mut self, consent_id: &str) -> RepoResult<Vec<CaptureRow>>;
    /// IDs of the follow-ups of `baseline_id`.
    fn followers(&mut self, baseline_id: &str) -> RepoResult<Vec<String>>;
    /// The latest baseline of a patient's area/view series.
    fn series_baseline(
        &mut self,
        patient_id: &str,
        area: Area,
        view: View,
    ) -> RepoResult<Option<String>>;
    /// Captures of a series taken at a visit, in import order.
    fn captures_at_visit(
        &mut self,
        patient_id: &str,
        visit_id: &str,
        area: Area,
        view: View,
    ) -> RepoResult<Vec<String>>;
    /// The same patient's other captures of the same area and view, oldest first.
    fn look_alikes(&mut self, capture_id: &str) -> RepoResult<Vec<String>>;
    fn delete_capture(&mut self, id: &str) -> RepoResult<()>;
}

/// Fingerprints and the compact copy the review index reads.
pub trait FingerprintRepo {
    /// Insert or replace, and keep the index copy in step.
    fn put_fingerprint(&mut self, row: &FingerprintRow) -> RepoResult<()>;
    /// The fingerprint without its reduced preview.
    fn fingerprint(&mut self, capture_id: &str) -> RepoResult<Option<FingerprintRow>>;
    fn fingerprint_small(&mut self, capture_id: &str) -> RepoResult<Option<Vec<u8>>>;
    fn set_fingerprint_small(&mut self, capture_id: &str, small: &[u8]) -> RepoResult<()>;
    fn delete_fingerprint(&mut self, capture_id: &str) -> RepoResult<()>;
    /// Captures whose fingerprint is missing, older than `version`, or lacks its reduced
    /// preview, in import order, with whether only the preview is missing; never a capture
    /// whose derived data a withdrawal purged (a tombstone of its fingerprint, thumbnail or
    /// `derived` data).
    fn fingerprints_to_backfill(&mut self, version: i64) -> RepoResult<Vec<(String, bool)>>;
    fn count_fingerprints_to_backfill(&mut self, version: i64) -> RepoResult<usize>;
    /// Captures whose fingerprint has a stored reduced preview, with their consent.
    fn fingerprints_with_small(&mut self) -> RepoResult<Vec<(String, String)>>;
    /// Every index row, streamed in no particular order.
    fn each_index_row(&mut self, f: &mut dyn FnMut(IndexRow<'_>)) -> RepoResult<()>;
}

/// Copies made of captures.
pub trait ExportRepo {
    fn insert_export(&mut self, row: &ExportRow) -> RepoResult<()>;
    /// Exports of a consent's captures, oldest first.
    fn exports_of_consent(&mut self, consent_id: &str) -> RepoResult<Vec<ExportRow>>;
    /// Copies on `station` that a withdrawal covers and that are still to be deleted there.
    fn exports_to_sweep(&mut self, station: Option<&str>) -> RepoResult<Vec<ExportRow>>;
    fn mark_export_purged(&mut self, id: &str, job_id: &str) -> RepoResult<()>;
    fn delete_export(&mut self, id: &str) -> RepoResult<()>;
}

/// Publications.
pub trait PublicationRepo {
    fn insert_publication(&mut self, row: &PublicationRow) -> RepoResult<()>;
    fn update_publication(&mut self, row: &PublicationRow) -> RepoResult<()>;
    fn publications(&mut self) -> RepoResult<Vec<PublicationRow>>;
    fn publications_of_file(&mut self, file_sha256: &str) -> RepoResult<Vec<PublicationRow>>;
}

/// Lighting profiles.
pub trait ProfileRepo {
    /// Insert or replace; true when one was replaced.
    fn put_profile(&mut self, row: &ProfileRow) -> RepoResult<bool>;
    fn profile(&mut self, name: &str) -> RepoResult<Option<ProfileRow>>;
    fn profile_names(&mut self) -> RepoResult<Vec<String>>;
}

/// Tombstones and journaled purges.
pub trait PurgeRepo {
    fn insert_tombstone(&mut self, row: &TombstoneRow) -> RepoResult<()>;
    fn tombstones_of_consent(&mut self, consent_id: &str) -> RepoResult<Vec<TombstoneRow>>;
    fn insert_purge_job(&mut self, job: &PurgeJobRow, items: &[PurgeItemRow]) -> RepoResult<()>;
    /// The job of this consent that has not completed.
    fn pending_purge_job(&mut self, consent_id: &str) -> RepoResult<Option<PurgeJobRow>>;
    /// Every job that has not completed.
    fn unfinished_purge_jobs(&mut self) -> RepoResult<Vec<PurgeJobRow>>;
    fn last_completed_purge_job(&mut self, consent_id: &str) -> RepoResult<Option<PurgeJobRow>>;
    fn purge_items(&mut self, job_id: &str) -> RepoResult<Vec<PurgeItemRow>>;
    fn mark_purge_committed(&mut self, job_id: &str, at: &str) -> RepoResult<()>;
    /// Mark complete; false when another process completed it first.
    fn mark_purge_completed(&mut self, job_id: &str, at: &str, cert_sha: &str) -> RepoResult<bool>;
}

/// The audit chain's rows. Appending is done by [`super::audit`], under the write lock.
pub trait AuditRepo {
    fn audit_head(&mut self) -> RepoResult<Option<(i64, String)>>;
    fn insert_audit(&mut self, row: &AuditRow) -> RepoResult<()>;
    /// Every entry in order.
    fn each_audit(&mut self, f: &mut dyn FnMut(AuditRow) -> RepoResult<()>) -> RepoResult<()>;
}

/// Whole-table copies for `sameframe migrate`.
pub trait TransferRepo {
    /// The tables, in the order they must be loaded (referenced tables first).
    fn transfer_tables(&self) -> Vec<&'static str>;
    /// Up to `limit` rows of `table` after the row whose key is `after`, in key order; each
    /// row's first cells are its key.
    fn transfer_rows(
        &mut self,
        table: &str,
        after: Option<&[Cell]>,
        limit: usize,
    ) -> RepoResult<Vec<Vec<Cell>>>;
    /// One row of `table` by its ID (the `id` column, or `key` for settings), every column in
    /// the order [`TransferRepo::transfer_rows`] gives them; `None` when there is none.
    fn transfer_row(&mut self, table: &str, id: &str) -> RepoResult<Option<Vec<Cell>>>;
    /// Where the ID is in a row of `table` as [`TransferRepo::transfer_rows`] gives it.
    fn transfer_id_index(&self, table: &str) -> Option<usize>;
    /// Insert rows, skipping those whose key already exists; returns how many were new.
    fn transfer_insert(&mut self, table: &str, rows: &[Vec<Cell>]) -> RepoResult<usize>;
    /// Delete every row of every table (a copy that must start again).
    fn transfer_clear(&mut self) -> RepoResult<()>;
}

/// Every repository.
pub trait Repos:
    MetaRepo
    + KeyRepo
    + PatientRepo
    + ConsentRepo
    + VisitRepo
    + TreatmentRepo
    + BlobRowRepo
    + CaptureRepo
    + FingerprintRepo
    + ExportRepo
    + PublicationRepo
    + ProfileRepo
    + PurgeRepo
    + AuditRepo
    + TransferRepo
{
}

impl<T> Repos for T where
    T: MetaRepo
        + KeyRepo
        + PatientRepo
        + ConsentRepo
        + VisitRepo
        + TreatmentRepo
        + BlobRowRepo
        + CaptureRepo
        + FingerprintRepo
        + ExportRepo
        + PublicationRepo
        + ProfileRepo
        + PurgeRepo
        + AuditRepo
        + TransferRepo
{
}

/// A unit of work's body: everything it does through the repositories commits together.
pub type Work<'a> = dyn FnMut(&mut dyn Repos) -> RepoResult<()> + 'a;

/// Where rows live.
pub trait Backend: Send {
    /// A description for messages: kind and location, never credentials.
    fn location(&self) -> String;
    /// True for a store several stations share over the network.
    fn is_shared(&self) -> bool;
    /// Read outside a write transaction.
    fn read(&self, work: &mut Work<'_>) -> RepoResult<()>;
    /// Run `work` as one transaction holding the store's write lock; commit when it returns
    /// Ok. Transient conflicts are retried; a lock held too long is a clear
    /// [`FailureKind::Busy`](super::error::FailureKind::Busy) error.
    fn write(&self, work: &mut Work<'_>) -> RepoResult<()>;
    /// Another connection to the same rows, for another thread.
    fn reader(&self) -> RepoResult<Box<dyn Backend>>;
    /// The schema version the rows are at.
    fn schema_version(&self) -> RepoResult<i64>;
    /// Make deletions final in the backend's files (SQLite: fold and truncate the WAL).
    fn compact(&self) -> RepoResult<()>;
}

/// Where a blob store keeps an object.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlobKey {
    /// An original or consent document, by the SHA-256 of its plaintext.
    Blob(String),
    /// A capture's preview, by its original's SHA-256.
    Thumb(String),
    /// A deletion certificate by file name (`purge_….json`, `purge_….txt`).
    Certificate(String),
    /// The object that names the store a bucket prefix belongs to.
    Marker,
}

impl BlobKey {
    /// The key as a relative path: `blobs/ab/cdef…`, `cache/thumbs/….thumb`,
    /// `certificates/…`, `sameframe-store.json`.
    pub fn path(&self) -> String {
        match self {
            BlobKey::Blob(h) => {
                let (a, b) = h.split_at(2.min(h.len()));
                format!("blobs/{a}/{b}")
            }
            BlobKey::Thumb(h) => format!("cache/thumbs/{h}.thumb"),
            BlobKey::Certificate(n) => format!("certificates/{n}"),
            BlobKey::Marker => "sameframe-store.json".into(),
        }
    }
}

/// What [`BlobStore::put`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    /// The object was created.
    Written,
    /// An object was already at this key; nothing was overwritten.
    AlreadyPresent,
}

/// A stored object found by [`BlobStore::list`].
#[derive(Clone, Debug, PartialEq)]
pub struct Listed {
    /// `None` for a leftover that is not named like an object of the kind listed (an
    /// interrupted write's temp file).
    pub key: Option<BlobKey>,
    /// Where it is, for messages and certificates.
    pub location: String,
    pub size: u64,
    pub modified: Option<SystemTime>,
}

/// The kinds of object [`BlobStore::list`] can enumerate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobKind {
    Blob,
    Thumb,
    Certificate,
}

/// Where sealed bytes live. Objects are written once: [`BlobStore::put`] never overwrites, so
/// two stations writing the same address cannot clobber each other.
pub trait BlobStore: Send + Sync {
    /// A description for messages: kind and location, never credentials.
    fn location(&self) -> String;
    /// Where one object is (a path or an `s3://` address).
    fn location_of(&self, key: &BlobKey) -> String;
    /// True when the objects are on this machine's disk.
    fn is_local(&self) -> bool;
    /// Create the object unless one exists at `key` (a conditional put).
    fn put(&self, key: &BlobKey, bytes: &[u8]) -> Result<Put, BlobError>;
    /// Create or overwrite (repairs, and sealing a store being encrypted).
    fn replace(&self, key: &BlobKey, bytes: &[u8]) -> Result<(), BlobError>;
    /// The object's bytes; [`BlobError::Missing`] when absent.
    fn get(&self, key: &BlobKey) -> Result<Vec<u8>, BlobError>;
    /// Remove the object; absent is not an error.
    fn delete(&self, key: &BlobKey) -> Result<(), BlobError>;
    fn exists(&self, key: &BlobKey) -> Result<bool, BlobError>;
    /// Every object of a kind, with leftovers of interrupted writes.
    fn list(&self, kind: BlobKind) -> Result<Vec<Listed>, BlobError>;
    /// Remove a leftover found by `list` (by its location).
    fn remove_leftover(&self, location: &str) -> Result<(), BlobError>;
}
