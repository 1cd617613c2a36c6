//! Patients, consents, visits, captures and confounders: plain types and the rules that decide
//! who may be photographed and what a consent allows.
//!
//! The operations are methods on [`Store`](crate::store::Store) so the CLI and the capture app
//! share one code path; they reach rows only through the store's repositories, and keep
//! patient text in sealed record bodies (see [`crate::store::seal`]).

pub mod batch;
pub mod capture;
pub mod confounders;
pub mod consent;
pub mod copies;
pub mod fingerprints;
pub mod integrity;
pub mod measurements;
pub mod patient;
pub mod profile;
pub mod protocol;
pub mod publication;
pub mod treatment;
pub mod visit;

use std::path::PathBuf;

use crate::calibration::CalibrationError;
use crate::ingest::IngestError;
use crate::store::seal::RecordSeal;
use crate::store::{CarriesStoreError, StoreError, Tx};

pub use crate::vocab::{Area, Role, Scope, View, parse_scopes};
pub use capture::{Capture, CapturedAt, ImportOutcome, ImportRequest};
pub use consent::{Consent, ScopeState};
pub use patient::Patient;
pub use visit::{NewVisit, Visit};

/// Failures of record operations. Each names the ID, reference or file concerned.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("unknown patient {0}")]
    UnknownPatient(String),
    #[error("patient {0} already exists")]
    DuplicatePatient(String),
    #[error("unknown consent {0}")]
    UnknownConsent(String),
    #[error("unknown visit {0}")]
    UnknownVisit(String),
    #[error("unknown capture {0}")]
    UnknownCapture(String),
    #[error("unknown {what} {id}")]
    NotFound { what: &'static str, id: String },
    #[error("consent {consent} belongs to another patient, not {patient}")]
    ConsentOfOtherPatient { consent: String, patient: String },
    #[error("visit {visit} belongs to another patient, not {patient}")]
    VisitOfOtherPatient { visit: String, patient: String },
    #[error("consent {consent} does not allow {scope} use: {why}")]
    ConsentRefused {
        consent: String,
        scope: Scope,
        why: String,
    },
    #[error("unknown confounder {key:?} (known: {known})")]
    UnknownConfounder { key: String, known: String },
    #[error("capture {baseline} cannot be the baseline: {why}")]
    BadBaseline { baseline: String, why: String },
    #[error("{subject}: these bytes are already stored as capture {capture} of another patient")]
    ContentOfOtherPatient { subject: String, capture: String },
    #[error("{what}: {why}")]
    Invalid { what: String, why: String },
    #[error("could not read {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not write {path}: {source}")]
    WriteFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Ingest(#[from] IngestError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Calibration(#[from] CalibrationError),
}

impl CarriesStoreError for RecordError {
    fn store_error(&self) -> Option<&StoreError> {
        match self {
            RecordError::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl From<crate::store::BlobError> for RecordError {
    fn from(e: crate::store::BlobError) -> Self {
        RecordError::Store(StoreError::Blob(e))
    }
}

impl From<crate::store::BackendError> for RecordError {
    fn from(e: crate::store::BackendError) -> Self {
        RecordError::Store(StoreError::Backend(e))
    }
}

impl From<crate::ids::RandomError> for RecordError {
    fn from(e: crate::ids::RandomError) -> Self {
        RecordError::Store(StoreError::Random(e))
    }
}

/// Bring every record body to the current form with `seal` (sealed in an encrypted store) and
/// give every patient its reference key; rows already current are left as they are. Runs once
/// on a store written by an older sameframe, and when `sameframe encrypt` seals a store.
pub fn reseal_all(tx: &mut Tx<'_>, seal: &RecordSeal) -> Result<(), StoreError> {
    for mut row in tx.patients()? {
        let body: patient::PatientBody = seal.open("patient", &row.id, &row.body)?;
        let ref_key = patient::ref_key(seal, &body.reference);
        if ref_key != row.ref_key || !RecordSeal::is_sealed(&row.body) && seal.is_keyed() {
            row.ref_key = ref_key;
            row.body = seal.seal("patient", &row.id, &body)?;
            tx.update_patient(&row)?;
        }
    }
    let plain = |b: &[u8]| seal.is_keyed() && !RecordSeal::is_sealed(b);
    for mut row in tx.consents()? {
        if plain(&row.body) {
            let json = seal.open_bytes("consent", &row.id, &row.body)?;
            row.body = seal.seal_bytes("consent", &row.id, &json)?;
            tx.update_consent(&row)?;
        }
    }
    for mut row in tx.visits()? {
        if plain(&row.body) {
            let json = seal.open_bytes("visit", &row.id, &row.body)?;
            row.body = seal.seal_bytes("visit", &row.id, &json)?;
            tx.update_visit(&row)?;
        }
    }
    for mut row in tx.treatments(None)? {
        if plain(&row.body) {
            let json = seal.open_bytes("treatment", &row.id, &row.body)?;
            row.body = seal.seal_bytes("treatment", &row.id, &json)?;
            tx.update_treatment(&row)?;
        }
    }
    for mut row in tx.captures(None)? {
        if plain(&row.body) {
            let json = seal.open_bytes("capture", &row.id, &row.body)?;
            row.body = seal.seal_bytes("capture", &row.id, &json)?;
            tx.update_capture(&row)?;
        }
    }
    for row in tx.publications()? {
        if plain(&row.body) {
            let json = seal.open_bytes("publication", &row.id, &row.body)?;
            let mut row = row;
            row.body = seal.seal_bytes("publication", &row.id, &json)?;
            tx.update_publication(&row)?;
        }
    }
    for (key, body) in tx.settings()? {
        if plain(&body) {
            let json = seal.open_bytes("setting", &key, &body)?;
            tx.set_setting(&key, &seal.seal_bytes("setting", &key, &json)?)?;
        }
    }
    Ok(())
}
