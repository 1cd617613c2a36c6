//! What can go wrong in the store, named by what failed — the row, blob, file, host or bucket —
//! and never by the driver that reported it.

use std::path::PathBuf;

use super::crypto::KeyError;
use crate::calibration::CalibrationError;
use crate::ids::RandomError;

/// How a backend operation failed, so callers can retry, refuse or explain without knowing the
/// driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// The server could not be reached (refused, timed out, name not resolved).
    Unreachable,
    /// The server refused the credentials.
    Auth,
    /// Another writer holds a lock for longer than the retries allow.
    Busy,
    /// A concurrent transaction conflicted; the unit of work may be retried.
    Retry,
    /// A unique key already holds this value.
    Duplicate,
    /// A reference or check constraint refused the change.
    Constraint,
    /// The server or file is not what this sameframe expects (schema, permissions, format).
    Unexpected,
}

/// A failure of a row backend or an object store.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{location}: could not {op}: {detail}")]
pub struct BackendError {
    /// Where: "SQLite database /srv/sameframe/sameframe.db",
    /// "PostgreSQL 10.0.0.5:5432/sameframe", "S3 bucket photos (prefix clinic-a/)".
    pub location: String,
    /// What was being done: "insert capture", "read the audit chain", "put object blobs/ab/…".
    pub op: String,
    pub kind: FailureKind,
    /// The reason as the server gave it, with credentials removed.
    pub detail: String,
}

/// Blob and object failures, naming the blob or the location.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("blob {hash} is missing from {location}")]
    Missing { hash: String, location: String },
    #[error("blob {hash} is corrupt: {why}")]
    Corrupt { hash: String, why: String },
    #[error("{0} is not a SHA-256 address")]
    BadAddress(String),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// Store-level failures. Each names the path, location, ID or hash it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no sameframe store at {path} (create one with `sameframe init`)")]
    NotInitialized { path: PathBuf },
    #[error("a sameframe store already exists at {what}{hint}")]
    AlreadyInitialized { what: String, hint: String },
    #[error("{path} is not empty: choose an empty or new folder for a store")]
    NotEmpty { path: PathBuf },
    #[error(
        "the store at {location} has schema version {found}, newer than this sameframe supports ({supported}): upgrade sameframe"
    )]
    TooNew {
        location: String,
        found: i64,
        supported: i64,
    },
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("{what} is damaged or was altered outside sameframe: {why}")]
    Tampered { what: String, why: String },
    #[error("invalid store configuration {path}: {why}")]
    Config { path: PathBuf, why: String },
    #[error(transparent)]
    Blob(#[from] BlobError),
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error(transparent)]
    Calibration(#[from] CalibrationError),
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Random(#[from] RandomError),
    #[error("unknown setting {0:?} (known: {1})")]
    UnknownSetting(String, String),
    #[error("invalid value {value:?} for setting {key}: {why}")]
    BadSetting {
        key: String,
        value: String,
        why: String,
    },
    /// A unit of work was abandoned by its caller (its own error is returned instead).
    #[error("the change was abandoned")]
    Abandoned,
}

impl StoreError {
    /// The backend failure kind, when this is one.
    pub fn kind(&self) -> Option<FailureKind> {
        match self {
            StoreError::Backend(b) => Some(b.kind),
            StoreError::Blob(BlobError::Backend(b)) => Some(b.kind),
            _ => None,
        }
    }

    /// An I/O error naming its path.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> StoreError {
        let path = path.into();
        move |source| StoreError::Io { path, source }
    }
}
