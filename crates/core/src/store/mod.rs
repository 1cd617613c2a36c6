//! The store: rows behind [`repo::Backend`], sealed bytes behind [`repo::BlobStore`], the keys
//! that seal them, and the audit chain that records every change.
//!
//! Two backends implement the traits (crate `sameframe-store`): the embedded one, a SQLite file
//! and a blob folder in the data directory (the zero-setup default), and the shared one,
//! PostgreSQL for rows and an S3-compatible bucket for blobs, for clinics with several rooms or
//! sites. Everything above this module — records, review, purge — is written once against the
//! traits.
//!
//! ```text
//! <data dir>/                 the station's folder (embedded stores keep everything here)
//!   sameframe.db              SQLite (WAL): every row, the audit chain, wrapped keys
//!   sameframe.toml            a shared store's location (no credentials) and this station's ID
//!   blobs/ab/cdef…            originals and consent documents, by SHA-256 of the plaintext
//!   blobs/.tmp/               in-flight writes (leftovers are orphans: `verify`, `gc`)
//!   cache/thumbs/             previews, sealed like blobs
//!   exports/                  copies exported into the store (tracked, purged with consent)
//!   certificates/             deletion certificates (a shared store keeps them in the bucket
//!                             too)
//!   calibration/              optional clinic overrides of the built-in calibration files
//! ```
//!
//! Sealing happens here, before anything reaches a backend: a server only ever holds sealed
//! blobs, sealed record bodies and wrapped keys.

pub mod audit;
pub mod crypto;
mod encrypt;
pub mod error;
pub mod history;
mod keys;
pub mod repo;
pub mod seal;
pub mod state;
pub mod transfer;

use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::calibration::{Calibration, store_calibration_dir};
use crate::ids::{hex, unhex};
use crypto::{KEY_ID_LEN, SecretKey};
pub use encrypt::EncryptReport;
pub use error::{BackendError, BlobError, FailureKind, StoreError};
use keys::Keys;
pub use keys::{Encryption, EncryptionStatus, KeySource};
pub use repo::{Backend, BlobKey, BlobKind, BlobStore, Put, Repos};
use seal::RecordSeal;

/// A data key with its raw ID: what a blob is sealed with.
pub type SealingKey = ([u8; KEY_ID_LEN], SecretKey);

/// The database file of an embedded store.
pub const DB_FILE: &str = "sameframe.db";

/// The meta key that says every record body is in the current form (sealed in encrypted
/// stores) and every patient has its reference key.
const RECORDS_META: &str = "records";
/// v1: bodies sealed, references keyed; v2: rows bound to the audit chain too.
const RECORDS_CURRENT: &str = "v2";

/// Options for opening a store.
#[derive(Debug, Default)]
pub struct OpenOptions {
    /// Who is acting (recorded in the audit chain).
    pub actor: String,
    /// Where keys come from.
    pub keys: KeySource,
    /// An explicit calibration folder searched before `<data dir>/calibration`.
    pub calibration_dir: Option<PathBuf>,
    /// Accept a key file other users can read (refused otherwise).
    pub allow_open_key_file: bool,
}

/// What a backend crate hands the core to make a [`Store`] of.
pub struct StoreParts {
    /// The station's data directory (calibration overrides, local copies, its configuration).
    pub local: PathBuf,
    pub backend: Box<dyn Backend>,
    pub blobs: Arc<dyn BlobStore>,
    /// This station's ID (which disk holds an export).
    pub station: String,
    /// The key file this station's configuration names, if any.
    pub key_file: Option<PathBuf>,
}

/// The open store.
pub struct Store {
    local: PathBuf,
    backend: Box<dyn Backend>,
    blobs: Arc<dyn BlobStore>,
    store_id: String,
    station: String,
    actor: String,
    calibration: Calibration,
    keys: Keys,
    seal: OnceCell<RecordSeal>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("local", &self.local)
            .field("rows", &self.backend.location())
            .finish()
    }
}

/// The platform's default data directory for sameframe.
pub fn default_data_dir() -> Option<PathBuf> {
    directories::ProjectDirs::from("", "", "sameframe").map(|d| d.data_dir().to_path_buf())
}

/// The name of the person at the keyboard: `SAMEFRAME_ACTOR` is handled by the CLI; this is the
/// fallback (the OS user).
pub fn os_user() -> String {
    ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .or_else(user_from_passwd)
        .unwrap_or_else(|| "unknown".to_string())
}

/// The login name of this process's user from `/etc/passwd` (services and containers often run
/// without `USER` set).
#[cfg(unix)]
fn user_from_passwd() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_string())
    })
}

#[cfg(not(unix))]
fn user_from_passwd() -> Option<String> {
    None
}

/// Settings a clinic may change with `sameframe config set`, with defaults and meaning.
/// A default of `true`/`false` makes a setting a switch; a number makes it a count.
pub const SETTINGS: &[(&str, &str, &str)] = &[
    (
        "retention.keep_clinical_record",
        "true",
        "keep original clinical photos when a consent is withdrawn with scope `all` (clinical-record retention); `false` purges them",
    ),
    (
        "retention.clinical_record_years",
        "10",
        "how many years after the last visit the clinical record (originals kept under retention, visits, consent records) is kept; stated in deletion certificates",
    ),
    (
        "takedown.due_days",
        "30",
        "days a take-down of a published image has after a withdrawal before it is overdue (GDPR Art. 12(3): one month)",
    ),
    (
        "review.consent_expiry_warning_days",
        "30",
        "a review warns about a published image whose consent expires within this many days",
    ),
];

/// Errors that may carry a store error, so a unit of work knows when to retry.
pub trait CarriesStoreError: From<StoreError> {
    fn store_error(&self) -> Option<&StoreError>;
}

impl CarriesStoreError for StoreError {
    fn store_error(&self) -> Option<&StoreError> {
        Some(self)
    }
}

/// A unit of work in progress: the repositories of one transaction, and the store's helpers
/// (audit entries, sealing) bound to it.
///
/// Writes to the rows the rules read go through the methods below (they shadow the
/// repositories' own), which note each changed row; when the unit of work ends, its audit
/// entries are appended, sealed, the last one carrying the changed rows' MACs (see
/// [`state`]). A unit of work that changes such rows without an entry of its own gets a
/// `state.update` entry.
pub struct Tx<'a> {
    store: &'a Store,
    repos: &'a mut dyn Repos,
    touched: state::Touched,
    pending: Vec<(String, Value, Value)>,
    /// Record every bound row (a store bound for the first time, or under a new key).
    bind_all: bool,
}

impl<'a> std::ops::Deref for Tx<'a> {
    type Target = dyn Repos + 'a;
    fn deref(&self) -> &Self::Target {
        self.repos
    }
}

impl std::ops::DerefMut for Tx<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.repos
    }
}

impl Tx<'_> {
    /// Record an audit entry; it is appended, sealed, when the unit of work ends, and commits
    /// with the change.
    pub fn audit(
        &mut self,
        action: &str,
        subjects: Value,
        details: Value,
    ) -> Result<(), StoreError> {
        self.pending.push((action.to_string(), subjects, details));
        Ok(())
    }

    /// The store this unit of work changes.
    pub fn store(&self) -> &Store {
        self.store
    }

    /// The repositories, for helpers that read through them.
    pub fn repos(&mut self) -> &mut dyn Repos {
        self.repos
    }

    /// Record every bound row when this unit of work ends.
    pub fn bind_all_rows(&mut self) {
        self.bind_all = true;
    }

    /// Append the recorded audit entries, sealed, with the changed rows' MACs.
    fn finish(&mut self) -> Result<(), StoreError> {
        if self.bind_all {
            self.touched = state::all_rows(self.repos)?;
        }
        let seal = self.store.seal.get();
        let rows = match seal {
            Some(seal) if !self.touched.is_empty() => {
                state::state_of(self.repos, seal, &self.touched)?
            }
            _ => Default::default(),
        };
        let mut pending = std::mem::take(&mut self.pending);
        if pending.is_empty() && !rows.is_empty() {
            pending.push(("state.update".into(), json!({}), json!({})));
        }
        let last = pending.len().saturating_sub(1);
        for (i, (action, subjects, mut details)) in pending.into_iter().enumerate() {
            if i == last
                && !rows.is_empty()
                && let Some(m) = details.as_object_mut()
            {
                m.insert("state".into(), Value::Object(rows.clone()));
                if self.bind_all {
                    m.insert("state_full".into(), Value::Bool(true));
                }
            }
            audit::append(
                self.repos,
                &self.store.store_id,
                &self.store.actor,
                &action,
                subjects,
                details,
                seal,
            )?;
        }
        Ok(())
    }
}

/// The writes to bound rows, each noting the row it changed.
macro_rules! bound_writes {
    ($( $name:ident ( $($arg:ident : $ty:ty),* ) => $table:literal, $id:expr ; )*) => {
        impl Tx<'_> {
            $(
                #[doc = concat!("The repositories' `", stringify!($name), "`, noting the changed ", $table, " row.")]
                pub fn $name(&mut self, $($arg: $ty),*) -> repo::RepoResult<()> {
                    self.repos.$name($($arg),*)?;
                    let id: &str = $id;
                    self.touched.add($table, id);
                    Ok(())
                }
            )*
        }
    };
}

bound_writes! {
    insert_patient(row: &repo::PatientRow) => "patient", &row.id;
    update_patient(row: &repo::PatientRow) => "patient", &row.id;
    insert_consent(row: &repo::ConsentRow) => "consent", &row.id;
    update_consent(row: &repo::ConsentRow) => "consent", &row.id;
    insert_visit(row: &repo::VisitRow) => "visit", &row.id;
    update_visit(row: &repo::VisitRow) => "visit", &row.id;
    insert_treatment(row: &repo::TreatmentRow) => "treatment", &row.id;
    update_treatment(row: &repo::TreatmentRow) => "treatment", &row.id;
    delete_treatment(id: &str) => "treatment", id;
    insert_capture(row: &repo::CaptureRow) => "capture", &row.id;
    update_capture(row: &repo::CaptureRow) => "capture", &row.id;
    delete_capture(id: &str) => "capture", id;
    insert_export(row: &repo::ExportRow) => "export", &row.id;
    mark_export_purged(id: &str, job_id: &str) => "export", id;
    delete_export(id: &str) => "export", id;
    insert_publication(row: &repo::PublicationRow) => "publication", &row.id;
    update_publication(row: &repo::PublicationRow) => "publication", &row.id;
    set_setting(key: &str, body: &[u8]) => "setting", key;
    insert_tombstone(row: &repo::TombstoneRow) => "tombstone", state::WHOLE_TABLE;
    insert_data_key(row: &repo::DataKeyRow) => "data_key", &row.id;
    destroy_data_key(id: &str, at: &str, by: &str) => "data_key", id;
}

impl Store {
    /// Make a store of a new, empty backend: its ID, key ring and first audit entry.
    pub fn create(
        parts: StoreParts,
        store_id: &str,
        encryption: &Encryption,
        opts: OpenOptions,
    ) -> Result<Store, StoreError> {
        keys::precheck(encryption, opts.allow_open_key_file)?;
        let ring = keys::new_keyring(store_id, encryption, opts.allow_open_key_file)?;
        let mode = ring
            .as_ref()
            .map_or("none", |r| r.mode.as_str())
            .to_string();
        let schema = parts.backend.schema_version()?;
        let mut work = |r: &mut dyn Repos| -> Result<(), StoreError> {
            if r.meta("store_id")?.is_some() {
                return Err(StoreError::AlreadyInitialized {
                    what: parts.backend.location(),
                    hint: String::new(),
                });
            }
            r.set_meta("store_id", store_id)?;
            r.set_meta("created_at", &crate::timefmt::now_utc())?;
            r.set_meta(RECORDS_META, RECORDS_CURRENT)?;
            if let Some(k) = &ring {
                r.put_keyring(k)?;
            }
            audit::append(
                r,
                store_id,
                &opts.actor,
                "store.init",
                json!({ "store": store_id }),
                // Bound from the start: every row a rule reads is recorded as it is written.
                json!({ "encryption": mode, "schema_version": schema, "shared": parts.backend.is_shared(),
                        "state": {}, "state_full": true }),
                None,
            )?;
            Ok(())
        };
        parts.backend.write(&mut work)?;
        let opts = OpenOptions {
            keys: match opts.keys {
                KeySource::None => encryption.key_source(),
                k => k,
            },
            ..opts
        };
        Store::open_parts(parts, opts)
    }

    /// Open a store from its parts: read its ID and key ring, prove the key (a wrong key or
    /// passphrase changes nothing), bring older record rows to the current form, and delete
    /// the copies on this station that a withdrawal elsewhere covered.
    pub fn open_parts(parts: StoreParts, opts: OpenOptions) -> Result<Store, StoreError> {
        let location = parts.backend.location();
        let (store_id, ring, records) = {
            let mut out = None;
            parts.backend.read(&mut |r| {
                transfer::check_complete(r, &location)?;
                out = Some((r.meta("store_id")?, r.keyring()?, r.meta(RECORDS_META)?));
                Ok(())
            })?;
            out.unwrap_or_default()
        };
        let store_id = store_id.ok_or_else(|| StoreError::Tampered {
            what: location.clone(),
            why: "it has no store ID (not a sameframe store, or damaged)".into(),
        })?;
        let mut dirs = Vec::new();
        if let Some(d) = opts.calibration_dir {
            dirs.push(d);
        }
        dirs.push(store_calibration_dir(&parts.local));
        let mut store = Store {
            keys: Keys::new(location, store_id.clone(), opts.keys, parts.key_file, ring),
            local: parts.local,
            backend: parts.backend,
            blobs: parts.blobs,
            store_id,
            station: parts.station,
            actor: opts.actor,
            calibration: Calibration::with_dirs(dirs),
            seal: OnceCell::new(),
        };
        store.check_keys()?;
        let current = records.as_deref() == Some(RECORDS_CURRENT);
        let _ = store.seal.set(store.keys.record_seal(!current)?);
        if !current {
            store.bring_records_current()?;
        }
        crate::purge::sweep_station(&store)?;
        Ok(store)
    }

    /// Older stores kept patient text in clear and had no reference keys, and their rows were
    /// not bound to the audit chain: seal every body (encrypted stores), key every reference,
    /// and bind every row (a store whose chain already binds rows is not bound again: a row
    /// changed outside sameframe stays reported), in one unit of work.
    fn bring_records_current(&mut self) -> Result<(), StoreError> {
        let seal = self.keys.record_seal(true)?;
        let bound = self.read(|r| state::chain_is_bound(r))?;
        self.write(|tx| {
            crate::records::reseal_all(tx, &seal)?;
            tx.set_meta(RECORDS_META, RECORDS_CURRENT)?;
            if !bound {
                tx.bind_all_rows();
            }
            tx.audit(
                "store.records.sealed",
                json!({ "store": self.store_id }),
                json!({ "sealed": seal.is_keyed(), "bound": !bound }),
            )
        })?;
        let _ = self.seal.take();
        let _ = self.seal.set(self.keys.record_seal(false)?);
        Ok(())
    }

    /// The station's data directory.
    pub fn root(&self) -> &Path {
        &self.local
    }

    /// Where the rows are, for messages.
    pub fn location(&self) -> String {
        self.backend.location()
    }

    /// Where the blobs are, for messages.
    pub fn blob_location(&self) -> String {
        self.blobs.location()
    }

    /// True for a store shared by several stations.
    pub fn is_shared(&self) -> bool {
        self.backend.is_shared()
    }

    /// The store's random ID (binds the audit chain, the record bodies and wrapped keys to it).
    pub fn store_id(&self) -> &str {
        &self.store_id
    }

    /// This station's ID.
    pub fn station(&self) -> &str {
        &self.station
    }

    /// Who is acting.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The calibration files in effect.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// The blob store.
    pub fn blobs(&self) -> &dyn BlobStore {
        self.blobs.as_ref()
    }

    /// The seal of record bodies.
    pub fn seal(&self) -> &RecordSeal {
        self.seal
            .get()
            .unwrap_or_else(|| unreachable!("the record seal is set when the store opens"))
    }

    /// The schema version of the rows.
    pub fn schema_version(&self) -> Result<i64, StoreError> {
        self.backend.schema_version()
    }

    /// Read through the repositories (outside a write transaction).
    pub fn read<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut dyn Repos) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut f = Some(f);
        let mut out: Option<Result<T, E>> = None;
        let r = self.backend.read(&mut |repos| {
            if let Some(f) = f.take() {
                match f(repos) {
                    Ok(v) => out = Some(Ok(v)),
                    Err(e) => {
                        out = Some(Err(e));
                        return Err(StoreError::Abandoned);
                    }
                }
            }
            Ok(())
        });
        finish(r, out)
    }

    /// Run `f` as one unit of work: everything it changes commits together, under the store's
    /// write lock, or not at all. `f` may run again when a concurrent writer forced a retry.
    pub fn write<T, E: CarriesStoreError + From<StoreError>>(
        &self,
        mut f: impl FnMut(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        let mut out: Option<Result<T, E>> = None;
        let r = self.backend.write(&mut |repos| {
            let mut tx = Tx {
                store: self,
                repos,
                touched: Default::default(),
                pending: Vec::new(),
                bind_all: false,
            };
            match f(&mut tx).and_then(|v| tx.finish().map(|()| v).map_err(E::from)) {
                Ok(v) => {
                    out = Some(Ok(v));
                    Ok(())
                }
                Err(e) => {
                    // A transient conflict is handed to the backend to retry; anything else
                    // abandons the change and is returned as it is.
                    let retry = e
                        .store_error()
                        .and_then(StoreError::kind)
                        .filter(|k| *k == FailureKind::Retry);
                    let back = match (retry, e.store_error()) {
                        (Some(_), Some(StoreError::Backend(b))) => StoreError::Backend(b.clone()),
                        _ => StoreError::Abandoned,
                    };
                    out = Some(Err(e));
                    Err(back)
                }
            }
        });
        finish(r, out)
    }

    /// Append a standalone audit entry in its own unit of work.
    pub fn audit_now(
        &self,
        action: &str,
        subjects: Value,
        details: Value,
    ) -> Result<(), StoreError> {
        self.write(|tx| tx.audit(action, subjects.clone(), details.clone()))
    }

    /// A folder inside the data directory, created on demand.
    pub fn subdir(&self, name: &str) -> Result<PathBuf, StoreError> {
        let p = self.local.join(name);
        std::fs::create_dir_all(&p).map_err(StoreError::io(&p))?;
        Ok(p)
    }

    /// Another handle on this store for another thread: its own connection, and this
    /// handle's keys (unlocked once).
    pub fn reader(&self) -> Result<Store, StoreError> {
        let s = Store {
            local: self.local.clone(),
            backend: self.backend.reader()?,
            blobs: self.blobs.clone(),
            store_id: self.store_id.clone(),
            station: self.station.clone(),
            actor: self.actor.clone(),
            calibration: self.calibration.clone(),
            keys: self.keys.share(),
            seal: OnceCell::new(),
        };
        let _ = s.seal.set(self.seal().clone());
        Ok(s)
    }

    /// Make deletions final in the backend's own files.
    pub fn compact(&self) -> Result<(), StoreError> {
        self.backend.compact()
    }

    // ----- settings -------------------------------------------------------------------------

    /// A setting's value (its default when never set).
    pub fn setting(&self, key: &str) -> Result<String, StoreError> {
        let default = SETTINGS
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, d, _)| d.to_string())
            .ok_or_else(|| Self::unknown_setting(key))?;
        let body = self.read(|r| r.setting(key))?;
        match body {
            None => Ok(default),
            Some(b) => {
                let v: SettingBody = self.seal().open("setting", key, &b)?;
                Ok(v.value)
            }
        }
    }

    /// A boolean setting.
    pub fn setting_bool(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.setting(key)? == "true")
    }

    /// A count setting (see [`SETTINGS`]); a stored value that is not a number is its default.
    pub fn setting_u32(&self, key: &str) -> Result<u32, StoreError> {
        let v = self.setting(key)?;
        Ok(v.parse().unwrap_or_else(|_| {
            SETTINGS
                .iter()
                .find(|(k, _, _)| *k == key)
                .and_then(|(_, d, _)| d.parse().ok())
                .unwrap_or(0)
        }))
    }

    /// Change a setting (audited).
    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        if !SETTINGS.iter().any(|(k, _, _)| *k == key) {
            return Err(Self::unknown_setting(key));
        }
        let default = SETTINGS
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or("", |(_, d, _)| *d);
        let why = if matches!(default, "true" | "false") {
            (value != "true" && value != "false").then_some("expected true or false")
        } else {
            (!value.parse::<u32>().is_ok_and(|n| n <= 36_500))
                .then_some("expected a whole number from 0 to 36500")
        };
        if let Some(why) = why {
            return Err(StoreError::BadSetting {
                key: key.into(),
                value: value.into(),
                why: why.into(),
            });
        }
        let old = self.setting(key)?;
        let body = self.seal().seal(
            "setting",
            key,
            &SettingBody {
                value: value.to_string(),
            },
        )?;
        self.write(|tx| {
            tx.set_setting(key, &body)?;
            tx.audit(
                "config.set",
                json!({ "setting": key }),
                json!({ "from": old, "to": value }),
            )?;
            Ok::<_, StoreError>(())
        })
    }

    fn unknown_setting(key: &str) -> StoreError {
        StoreError::UnknownSetting(
            key.to_string(),
            SETTINGS
                .iter()
                .map(|(k, _, _)| *k)
                .collect::<Vec<_>>()
                .join(", "),
        )
    }

    // ----- keys -----------------------------------------------------------------------------

    /// True when blobs and records are encrypted at rest.
    pub fn is_encrypted(&self) -> bool {
        self.keys.is_encrypted()
    }

    /// How the store is protected.
    pub fn encryption_status(&self) -> EncryptionStatus {
        self.keys.status()
    }

    /// The master key, unlocking it on first use.
    pub fn master_key(&self) -> Result<&SecretKey, StoreError> {
        self.keys.master()
    }

    /// Prove the keys given now against the store (a wrong passphrase or another store's key
    /// file is refused before anything changes).
    pub fn check_keys(&self) -> Result<(), StoreError> {
        if self.is_encrypted() {
            self.keys.master()?;
        }
        Ok(())
    }

    /// The data key with hex ID `key_id`.
    pub fn data_key(&self, key_id: &str) -> Result<SecretKey, StoreError> {
        self.read(|r| self.keys.data_key(r, key_id))
    }

    /// The data key of `consent_id`, created (and committed) when the consent has none yet.
    /// `None` in a store without encryption.
    pub fn consent_key(&self, consent_id: &str) -> Result<Option<SealingKey>, StoreError> {
        if !self.is_encrypted() {
            return Ok(None);
        }
        let existing = self.read(|r| r.data_key_of_consent(consent_id))?;
        let key_id = match existing {
            Some(row) => row.id,
            None => self.write(|tx| {
                // Another process may have created it meanwhile.
                if let Some(row) = tx.data_key_of_consent(consent_id)? {
                    return Ok::<_, StoreError>(row.id);
                }
                let (row, _) = self.keys.new_data_key(consent_id)?;
                tx.insert_data_key(&row)?;
                Ok(row.id)
            })?,
        };
        let key = self.data_key(&key_id)?;
        Ok(Some((raw_key_id(&key_id)?, key)))
    }

    /// A new data key for a consent about to be created: the row to insert with the consent,
    /// and the key to seal its document with. `None` without encryption.
    pub fn new_consent_key(
        &self,
        consent_id: &str,
    ) -> Result<Option<(repo::DataKeyRow, SealingKey)>, StoreError> {
        if !self.is_encrypted() {
            return Ok(None);
        }
        let (row, key) = self.keys.new_data_key(consent_id)?;
        let raw = raw_key_id(&row.id)?;
        Ok(Some((row, (raw, key))))
    }

    /// Destroy a data key inside the purge's unit of work: its wrapped bytes are dropped and
    /// the row keeps only when and by whom.
    pub fn destroy_data_key_in(&self, tx: &mut Tx<'_>, key_id: &str) -> Result<(), StoreError> {
        tx.destroy_data_key(key_id, &crate::timefmt::now_utc(), &self.actor)?;
        self.keys.forget(key_id);
        Ok(())
    }

    // ----- blobs ----------------------------------------------------------------------------

    /// Seal `bytes` (whose SHA-256 hex is `hash`) with `key` (none in stores without
    /// encryption) and store them under their address. An object already there is kept when it
    /// opens to the same bytes, and replaced when it does not (a damaged leftover).
    pub fn put_sealed_blob(
        &self,
        bytes: &[u8],
        hash: &str,
        key: Option<&SealingKey>,
    ) -> Result<Put, StoreError> {
        let address = address_bytes(hash)?;
        let file = match key {
            None => bytes.to_vec(),
            Some((id, k)) => crypto::seal_blob(bytes, &address, id, k)?,
        };
        let bkey = BlobKey::Blob(hash.to_string());
        match self.blobs.put(&bkey, &file)? {
            Put::Written => Ok(Put::Written),
            Put::AlreadyPresent => {
                if self.read_blob(hash).is_ok() {
                    return Ok(Put::AlreadyPresent);
                }
                self.blobs.replace(&bkey, &file)?;
                Ok(Put::Written)
            }
        }
    }

    /// Store `bytes` durably as a blob of `consent_id` (sealed with its data key when the store
    /// is encrypted). Returns the key ID used, if any.
    pub fn put_blob(
        &self,
        bytes: &[u8],
        hash: &str,
        consent_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let key = self.consent_key(consent_id)?;
        self.put_sealed_blob(bytes, hash, key.as_ref())?;
        Ok(key.map(|(id, _)| hex(&id)))
    }

    /// Read a blob's plaintext, verifying its tag and hash.
    pub fn read_blob(&self, hash: &str) -> Result<Vec<u8>, StoreError> {
        let raw = self.blobs.get(&BlobKey::Blob(hash.to_string()))?;
        self.open_blob_file(hash, raw)
    }

    /// The plaintext of a blob file read elsewhere, verified against its address.
    pub fn open_blob_file(&self, hash: &str, raw: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        let address = address_bytes(hash)?;
        let plain = match crypto::sealed_key_id(&raw) {
            None => raw,
            Some(id) => {
                let key = self.data_key(&hex(&id))?;
                crypto::open_blob(raw, &address, &key).map_err(|e| BlobError::Corrupt {
                    hash: hash.to_string(),
                    why: e.to_string(),
                })?
            }
        };
        if blob_address(&plain) != address {
            return Err(BlobError::Corrupt {
                hash: hash.to_string(),
                why: format!("content hashes to {}", hex(&blob_address(&plain))),
            }
            .into());
        }
        Ok(plain)
    }

    /// Seal `bytes` for a cache object of `consent_id` (thumbnails, the reduced previews stored
    /// with fingerprints, labelled by [`small_preview_label`]); plaintext in unencrypted
    /// stores. `label` binds the sealed bytes to their purpose.
    pub fn seal_cache(
        &self,
        bytes: &[u8],
        label: &str,
        consent_id: &str,
    ) -> Result<Vec<u8>, StoreError> {
        let address = blob_address(label.as_bytes());
        Ok(match self.consent_key(consent_id)? {
            None => bytes.to_vec(),
            Some((id, key)) => crypto::seal_blob(bytes, &address, &id, &key)?,
        })
    }

    /// Open bytes sealed by [`Store::seal_cache`].
    pub fn open_cache(&self, file: Vec<u8>, label: &str) -> Result<Vec<u8>, StoreError> {
        let Some(id) = crypto::sealed_key_id(&file) else {
            return Ok(file);
        };
        let key = self.data_key(&hex(&id))?;
        let address = blob_address(label.as_bytes());
        crypto::open_blob(file, &address, &key).map_err(|_| {
            StoreError::Blob(BlobError::Corrupt {
                hash: label.to_string(),
                why: "cache object does not authenticate".into(),
            })
        })
    }

    /// Keep a deletion certificate: in the blob store, and (when that is not this machine's
    /// disk) a copy in the data directory for the person who ran the withdrawal. Returns the
    /// local path and where the store keeps it.
    pub fn keep_certificate(
        &self,
        name: &str,
        bytes: &[u8],
    ) -> Result<(PathBuf, String), StoreError> {
        let key = BlobKey::Certificate(name.to_string());
        self.blobs.replace(&key, bytes)?;
        let local = self.local.join("certificates").join(name);
        if !self.blobs.is_local() {
            let dir = self.subdir("certificates")?;
            crate::records::capture::write_file_atomic(&dir.join(name), bytes).map_err(|e| {
                StoreError::Io {
                    path: dir.join(name),
                    source: std::io::Error::other(e.to_string()),
                }
            })?;
        }
        Ok((local, self.blobs.location_of(&key)))
    }
}

/// A setting as sealed.
#[derive(serde::Serialize, serde::Deserialize)]
struct SettingBody {
    value: String,
}

fn finish<T, E: From<StoreError>>(
    r: Result<(), StoreError>,
    out: Option<Result<T, E>>,
) -> Result<T, E> {
    match (r, out) {
        (Ok(()), Some(Ok(v))) => Ok(v),
        // The caller's own error: the backend rolled back and reported it abandoned (or a
        // retryable conflict that ran out of retries).
        (Err(_), Some(Err(e))) => Err(e),
        (Err(e), _) => Err(e.into()),
        (Ok(()), Some(Err(e))) => Err(e),
        (Ok(()), None) => Err(StoreError::Abandoned.into()),
    }
}

/// What a capture's reduced preview (stored with its fingerprint) is sealed to.
pub fn small_preview_label(capture_id: &str) -> String {
    format!("small:{capture_id}")
}

/// A plaintext's SHA-256: its address.
pub fn blob_address(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// The 32 bytes of a SHA-256 hex address.
pub fn address_bytes(hash: &str) -> Result<[u8; 32], BlobError> {
    if !crate::ids::is_sha256_hex(hash) {
        return Err(BlobError::BadAddress(hash.to_string()));
    }
    unhex(hash)
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| BlobError::BadAddress(hash.to_string()))
}

fn raw_key_id(key_id: &str) -> Result<[u8; KEY_ID_LEN], StoreError> {
    unhex(key_id)
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| {
            crypto::KeyError::DamagedWrappedKey {
                what: format!("data key ID {key_id}"),
            }
            .into()
        })
}
