//! The data directory: SQLite rows, the content-addressed blob folder, the audit chain and the
//! keys that encrypt blobs at rest.
//!
//! ```text
//! <data dir>/
//!   sameframe.db        SQLite (WAL): patients, consents, visits, captures, audit chain, keys
//!   blobs/ab/cdef…      originals and consent documents, addressed by SHA-256 of the plaintext
//!   blobs/.tmp/         in-flight writes (left-overs are orphans: `verify` reports, `gc` removes)
//!   cache/              thumbnails, sealed like blobs; regenerated on demand
//!   exports/            copies exported into the store (tracked, purged with their consent)
//!   certificates/       deletion certificates written by purges
//!   calibration/        optional clinic overrides of the built-in calibration files
//! ```

pub mod audit;
pub mod blobs;
pub mod crypto;
pub mod db;

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use serde::Serialize;
use serde_json::{Value, json};
use zeroize::Zeroizing;

use crate::calibration::{Calibration, CalibrationError, store_calibration_dir};
use crate::ids::{RandomError, hex, new_id, random_bytes, unhex};
use blobs::{BlobError, BlobStore, Sealing};
use crypto::{KEY_ID_LEN, KdfParams, KeyError, SecretKey};

/// The database file inside the data directory.
pub const DB_FILE: &str = "sameframe.db";

/// Store-level failures. Each names the path, ID or hash it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("no sameframe store at {path} (create one with `sameframe init`)")]
    NotInitialized { path: PathBuf },
    #[error("a sameframe store already exists at {path}")]
    AlreadyInitialized { path: PathBuf },
    #[error("{path} is not empty: choose an empty or new folder for a store")]
    NotEmpty { path: PathBuf },
    #[error("could not open store at {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "the store at {path} has schema version {found}, newer than this sameframe supports ({supported}): upgrade sameframe"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("database error: {0}")]
    Db(#[from] rusqlite::Error),
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
}

/// Where keys come from when a command needs them.
#[derive(Default)]
pub enum KeySource {
    /// Nothing given: key-file stores use the key file recorded at `init`; passphrase stores
    /// fail with a message saying how to give it.
    #[default]
    None,
    /// A key file path (overrides the recorded one).
    KeyFile(PathBuf),
    /// A passphrase.
    Passphrase(Zeroizing<String>),
    /// Ask when needed (interactive prompt or a dialog).
    Ask(Box<dyn Fn() -> Result<Zeroizing<String>, String> + Send>),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::None => f.write_str("None"),
            KeySource::KeyFile(p) => write!(f, "KeyFile({})", p.display()),
            KeySource::Passphrase(_) => f.write_str("Passphrase(…)"),
            KeySource::Ask(_) => f.write_str("Ask"),
        }
    }
}

/// How a new store protects its blobs.
pub enum Encryption {
    /// No encryption at rest (demos, or stores migrated later with `sameframe encrypt`).
    None,
    /// A passphrase stretched with Argon2id.
    Passphrase {
        passphrase: Zeroizing<String>,
        kdf: KdfParams,
    },
    /// A key file holding the master key; created when absent.
    KeyFile { path: PathBuf },
}

/// Options for opening a store.
#[derive(Debug, Default)]
pub struct OpenOptions {
    /// Who is acting (recorded in the audit chain).
    pub actor: String,
    /// Where keys come from.
    pub keys: KeySource,
    /// An explicit calibration folder searched before `<data dir>/calibration`.
    pub calibration_dir: Option<PathBuf>,
}

/// The key ring as stored.
#[derive(Clone, Debug)]
struct KeyringRow {
    mode: String,
    kdf: Option<KdfParams>,
    salt: Option<Vec<u8>>,
    wrapped_master: Option<Vec<u8>>,
    key_file: Option<String>,
    check_value: Vec<u8>,
    migration_pending: bool,
}

/// A summary of the store's protection, for `sameframe status`.
#[derive(Clone, Debug, Serialize)]
pub struct EncryptionStatus {
    /// "none", "passphrase" or "keyfile".
    pub mode: String,
    pub key_file: Option<String>,
    pub migration_pending: bool,
}

/// The open store.
pub struct Store {
    root: PathBuf,
    conn: Connection,
    blobs: BlobStore,
    store_id: String,
    actor: String,
    calibration: Calibration,
    key_source: KeySource,
    keyring: RefCell<Option<KeyringRow>>,
    master: OnceCell<SecretKey>,
    data_keys: RefCell<HashMap<String, SecretKey>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("root", &self.root).finish()
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

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path).map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA secure_delete = ON;",
    )
    .map_err(|source| StoreError::Open {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(conn)
}

/// Settings a clinic may change with `sameframe config set`, with defaults and meaning.
pub const SETTINGS: &[(&str, &str, &str)] = &[(
    "retention.keep_clinical_record",
    "true",
    "keep original clinical photos when a consent is withdrawn with scope `all` (clinical-record retention); `false` purges them",
)];

impl Store {
    /// Create a new store in `root` (which must be absent or empty).
    pub fn init(
        root: &Path,
        encryption: Encryption,
        opts: OpenOptions,
    ) -> Result<Store, StoreError> {
        let io = |source| StoreError::Io {
            path: root.to_path_buf(),
            source,
        };
        if root.join(DB_FILE).exists() {
            return Err(StoreError::AlreadyInitialized {
                path: root.to_path_buf(),
            });
        }
        if root.exists() {
            let mut entries = std::fs::read_dir(root).map_err(io)?;
            if entries.next().is_some() {
                return Err(StoreError::NotEmpty {
                    path: root.to_path_buf(),
                });
            }
        }
        // Check what can be checked before anything touches the disk.
        if let Encryption::Passphrase { passphrase, .. } = &encryption
            && passphrase.chars().count() < crypto::MIN_PASSPHRASE
        {
            return Err(KeyError::WeakPassphrase {
                min: crypto::MIN_PASSPHRASE,
            }
            .into());
        }
        if let Encryption::KeyFile { path } = &encryption
            && path.exists()
        {
            crypto::read_key_file(path)?;
        }
        let existed = root.exists();
        std::fs::create_dir_all(root).map_err(io)?;
        let created = (|| {
            let mut conn = connect(&root.join(DB_FILE))?;
            db::migrate(&mut conn)?;
            let store_id = new_id("store")?;
            let tx = Transaction::new_unchecked(&conn, TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('store_id', ?1), ('created_at', ?2)",
                params![store_id, crate::timefmt::now_utc()],
            )?;
            let mode = write_keyring(&tx, &store_id, &encryption)?;
            audit::append(
                &tx,
                &store_id,
                &opts.actor,
                "store.init",
                json!({ "store": store_id }),
                json!({ "encryption": mode, "schema_version": db::latest() }),
            )?;
            tx.commit()?;
            Ok::<_, StoreError>(())
        })();
        if let Err(e) = created {
            // Leave the folder as it was so the user can simply retry.
            for f in [DB_FILE, "sameframe.db-wal", "sameframe.db-shm"] {
                let _ = std::fs::remove_file(root.join(f));
            }
            if !existed {
                let _ = std::fs::remove_dir(root);
            }
            return Err(e);
        }
        Store::open(root, opts)
    }

    /// Open the store in `root`, applying pending migrations.
    pub fn open(root: &Path, opts: OpenOptions) -> Result<Store, StoreError> {
        let db_path = root.join(DB_FILE);
        if !db_path.is_file() {
            return Err(StoreError::NotInitialized {
                path: root.to_path_buf(),
            });
        }
        let mut conn = connect(&db_path)?;
        let found = db::version(&conn)?;
        if found > db::latest() {
            return Err(StoreError::TooNew {
                path: root.to_path_buf(),
                found,
                supported: db::latest(),
            });
        }
        db::migrate(&mut conn)?;
        let store_id: String = conn
            .query_row("SELECT value FROM meta WHERE key = 'store_id'", [], |r| {
                r.get(0)
            })
            .map_err(|source| StoreError::Open {
                path: root.to_path_buf(),
                source,
            })?;
        let blobs = BlobStore::open(root.join("blobs"))?;
        let mut dirs = Vec::new();
        if let Some(d) = opts.calibration_dir {
            dirs.push(d);
        }
        dirs.push(store_calibration_dir(root));
        let store = Store {
            root: root.to_path_buf(),
            conn,
            blobs,
            store_id,
            actor: opts.actor,
            calibration: Calibration::with_dirs(dirs),
            key_source: opts.keys,
            keyring: RefCell::new(None),
            master: OnceCell::new(),
            data_keys: RefCell::new(HashMap::new()),
        };
        store.reload_keyring()?;
        Ok(store)
    }

    /// The data directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The store's random ID (binds the audit chain and wrapped keys to this store).
    pub fn store_id(&self) -> &str {
        &self.store_id
    }

    /// Who is acting.
    pub fn actor(&self) -> &str {
        &self.actor
    }

    /// The calibration files in effect.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// The blob folder.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// The SQLite connection (read access for queries in other core modules).
    pub fn conn(&self) -> &Connection {
        &self.conn
    }

    /// Begin a write transaction holding the database write lock.
    pub fn write_tx(&self) -> Result<Transaction<'_>, StoreError> {
        Ok(Transaction::new_unchecked(
            &self.conn,
            TransactionBehavior::Immediate,
        )?)
    }

    /// Append an audit entry inside `tx`.
    pub fn audit(
        &self,
        tx: &Transaction<'_>,
        action: &str,
        subjects: Value,
        details: Value,
    ) -> Result<audit::AuditEntry, StoreError> {
        Ok(audit::append(
            tx,
            &self.store_id,
            &self.actor,
            action,
            subjects,
            details,
        )?)
    }

    /// Append a standalone audit entry in its own transaction.
    pub fn audit_now(
        &self,
        action: &str,
        subjects: Value,
        details: Value,
    ) -> Result<(), StoreError> {
        let tx = self.write_tx()?;
        self.audit(&tx, action, subjects, details)?;
        tx.commit()?;
        Ok(())
    }

    /// A folder inside the data directory, created on demand.
    pub fn subdir(&self, name: &str) -> Result<PathBuf, StoreError> {
        let p = self.root.join(name);
        std::fs::create_dir_all(&p).map_err(|source| StoreError::Io {
            path: p.clone(),
            source,
        })?;
        Ok(p)
    }

    // ----- settings -------------------------------------------------------------------------

    /// A setting's value (its default when never set).
    pub fn setting(&self, key: &str) -> Result<String, StoreError> {
        let default = SETTINGS
            .iter()
            .find(|(k, _, _)| *k == key)
            .map(|(_, d, _)| d.to_string())
            .ok_or_else(|| Self::unknown_setting(key))?;
        let v: Option<String> = self
            .conn
            .query_row("SELECT value FROM setting WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()?;
        Ok(v.unwrap_or(default))
    }

    /// A boolean setting.
    pub fn setting_bool(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.setting(key)? == "true")
    }

    /// Change a setting (audited).
    pub fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        if !SETTINGS.iter().any(|(k, _, _)| *k == key) {
            return Err(Self::unknown_setting(key));
        }
        if key.starts_with("retention.") && value != "true" && value != "false" {
            return Err(StoreError::BadSetting {
                key: key.into(),
                value: value.into(),
                why: "expected true or false".into(),
            });
        }
        let old = self.setting(key)?;
        let tx = self.write_tx()?;
        tx.execute(
            "INSERT INTO setting (key, value) VALUES (?1, ?2)
             ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        self.audit(
            &tx,
            "config.set",
            json!({ "setting": key }),
            json!({ "from": old, "to": value }),
        )?;
        tx.commit()?;
        Ok(())
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

    fn reload_keyring(&self) -> Result<(), StoreError> {
        let row = self
            .conn
            .query_row(
                "SELECT mode, kdf, salt, wrapped_master, key_file, check_value, migration_pending
                 FROM keyring WHERE id = 1",
                [],
                |r| {
                    let kdf: Option<String> = r.get(1)?;
                    Ok(KeyringRow {
                        mode: r.get(0)?,
                        kdf: kdf.and_then(|k| serde_json::from_str(&k).ok()),
                        salt: r.get(2)?,
                        wrapped_master: r.get(3)?,
                        key_file: r.get(4)?,
                        check_value: r.get(5)?,
                        migration_pending: r.get::<_, i64>(6)? != 0,
                    })
                },
            )
            .optional()?;
        *self.keyring.borrow_mut() = row;
        Ok(())
    }

    /// True when blobs are encrypted at rest.
    pub fn is_encrypted(&self) -> bool {
        self.keyring.borrow().is_some()
    }

    /// How the store is protected.
    pub fn encryption_status(&self) -> EncryptionStatus {
        match &*self.keyring.borrow() {
            None => EncryptionStatus {
                mode: "none".into(),
                key_file: None,
                migration_pending: false,
            },
            Some(k) => EncryptionStatus {
                mode: k.mode.clone(),
                key_file: k.key_file.clone(),
                migration_pending: k.migration_pending,
            },
        }
    }

    /// The master key, unlocking it on first use. Fails with a clear message on a wrong
    /// passphrase or key file; nothing is changed by a failed unlock.
    pub fn master_key(&self) -> Result<&SecretKey, StoreError> {
        if let Some(k) = self.master.get() {
            return Ok(k);
        }
        let ring = self.keyring.borrow().clone().ok_or_else(|| {
            KeyError::Kdf("the store is not encrypted: it has no master key".into())
        })?;
        let key = self.unlock(&ring)?;
        Ok(self.master.get_or_init(|| key))
    }

    /// A second, read-only handle on this store for another thread: its own database
    /// connection, and this handle's keys, unlocked first (so an encrypted store asks for its
    /// passphrase once).
    pub fn reader(&self) -> Result<Store, StoreError> {
        self.check_keys()?;
        let db_path = self.root.join(DB_FILE);
        let conn = connect(&db_path)?;
        conn.execute_batch("PRAGMA query_only = ON;")
            .map_err(|source| StoreError::Open {
                path: db_path.clone(),
                source,
            })?;
        let master = OnceCell::new();
        if let Some(k) = self.master.get() {
            let _ = master.set(k.clone());
        }
        Ok(Store {
            root: self.root.clone(),
            conn,
            blobs: self.blobs.clone(),
            store_id: self.store_id.clone(),
            actor: self.actor.clone(),
            calibration: self.calibration.clone(),
            key_source: KeySource::None,
            keyring: RefCell::new(self.keyring.borrow().clone()),
            master,
            data_keys: RefCell::new(HashMap::new()),
        })
    }

    /// Check the keys given now against the store (used by `unlock` and the app's dialog).
    pub fn check_keys(&self) -> Result<(), StoreError> {
        if self.is_encrypted() {
            self.master_key()?;
        }
        Ok(())
    }

    fn unlock(&self, ring: &KeyringRow) -> Result<SecretKey, StoreError> {
        let store = self.root.clone();
        let check = crypto::check_aad(&self.store_id);
        match ring.mode.as_str() {
            "keyfile" => {
                let path = match &self.key_source {
                    KeySource::KeyFile(p) => p.clone(),
                    _ => ring.key_file.as_ref().map(PathBuf::from).ok_or(
                        KeyError::KeyFileNeeded {
                            store: store.clone(),
                        },
                    )?,
                };
                let key = crypto::read_key_file(&path)?;
                if key.unwrap_bytes(&ring.check_value, &check).is_none() {
                    return Err(KeyError::WrongKeyFile { path, store }.into());
                }
                Ok(key)
            }
            _ => {
                let pass = match &self.key_source {
                    KeySource::Passphrase(p) => p.clone(),
                    KeySource::Ask(f) => f().map_err(KeyError::Prompt)?,
                    _ => return Err(KeyError::PassphraseNeeded { store }.into()),
                };
                let kdf = ring.kdf.unwrap_or_default();
                let salt = ring.salt.clone().unwrap_or_default();
                let kek = crypto::derive_kek(&pass, &salt, kdf)?;
                let wrapped = ring.wrapped_master.clone().unwrap_or_default();
                let master = kek
                    .unwrap_key(&wrapped, &crypto::master_aad(&self.store_id))
                    .ok_or(KeyError::WrongPassphrase {
                        store: store.clone(),
                    })?;
                if master.unwrap_bytes(&ring.check_value, &check).is_none() {
                    return Err(KeyError::WrongPassphrase { store }.into());
                }
                Ok(master)
            }
        }
    }

    /// The data key with hex ID `key_id`.
    pub fn data_key(&self, key_id: &str) -> Result<SecretKey, StoreError> {
        if let Some(k) = self.data_keys.borrow().get(key_id) {
            return Ok(k.clone());
        }
        let row: Option<(Option<Vec<u8>>, Option<String>)> = self
            .conn
            .query_row(
                "SELECT wrapped, destroyed_at FROM data_key WHERE id = ?1",
                [key_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (wrapped, destroyed) = row.ok_or_else(|| KeyError::UnknownDataKey {
            key_id: key_id.to_string(),
        })?;
        let Some(wrapped) = wrapped else {
            return Err(KeyError::DataKeyDestroyed {
                key_id: key_id.to_string(),
                when: destroyed.map(|d| format!(" on {d}")).unwrap_or_default(),
            }
            .into());
        };
        let key = self
            .master_key()?
            .unwrap_key(&wrapped, &crypto::data_key_aad(key_id))
            .ok_or_else(|| KeyError::DamagedWrappedKey {
                what: format!("data key {key_id}"),
            })?;
        self.data_keys
            .borrow_mut()
            .insert(key_id.to_string(), key.clone());
        Ok(key)
    }

    /// The data key of `consent_id`, created (and committed) when the consent has none yet.
    /// `None` in a store without encryption.
    pub fn consent_key(
        &self,
        consent_id: &str,
    ) -> Result<Option<([u8; KEY_ID_LEN], SecretKey)>, StoreError> {
        if !self.is_encrypted() {
            return Ok(None);
        }
        let existing: Option<String> = self
            .conn
            .query_row(
                "SELECT id FROM data_key WHERE consent_id = ?1",
                [consent_id],
                |r| r.get(0),
            )
            .optional()?;
        let key_id = match existing {
            Some(id) => id,
            None => {
                let master = self.master_key()?.clone();
                let tx = self.write_tx()?;
                // Another process may have created it meanwhile.
                let again: Option<String> = tx
                    .query_row(
                        "SELECT id FROM data_key WHERE consent_id = ?1",
                        [consent_id],
                        |r| r.get(0),
                    )
                    .optional()?;
                let id = match again {
                    Some(id) => id,
                    None => {
                        let id = hex(&crypto::new_key_id()?);
                        let key = SecretKey::generate()?;
                        let wrapped = master.wrap_key(&key, &crypto::data_key_aad(&id))?;
                        tx.execute(
                            "INSERT INTO data_key (id, consent_id, wrapped, created_at) VALUES (?1, ?2, ?3, ?4)",
                            params![id, consent_id, wrapped, crate::timefmt::now_utc()],
                        )?;
                        self.data_keys.borrow_mut().insert(id.clone(), key);
                        id
                    }
                };
                tx.commit()?;
                id
            }
        };
        let key = self.data_key(&key_id)?;
        let raw: [u8; KEY_ID_LEN] =
            unhex(&key_id)
                .and_then(|v| v.try_into().ok())
                .ok_or_else(|| KeyError::DamagedWrappedKey {
                    what: format!("data key ID {key_id}"),
                })?;
        Ok(Some((raw, key)))
    }

    /// Store `bytes` durably as a blob of `consent_id` (sealed with its data key when the store
    /// is encrypted). Returns the key ID used, if any.
    pub fn put_blob(
        &self,
        bytes: &[u8],
        hash: &str,
        consent_id: &str,
    ) -> Result<Option<String>, StoreError> {
        match self.consent_key(consent_id)? {
            None => {
                self.blobs.put(bytes, hash, Sealing::Plain)?;
                Ok(None)
            }
            Some((id, key)) => {
                self.blobs
                    .put(bytes, hash, Sealing::Key { id: &id, key: &key })?;
                Ok(Some(hex(&id)))
            }
        }
    }

    /// Read a blob's plaintext, verifying its tag and hash.
    pub fn read_blob(&self, hash: &str) -> Result<Vec<u8>, StoreError> {
        let key_for = |id: &[u8; KEY_ID_LEN]| -> Result<SecretKey, KeyError> {
            self.data_key(&hex(id)).map_err(|e| match e {
                StoreError::Key(k) => k,
                other => KeyError::DamagedWrappedKey {
                    what: other.to_string(),
                },
            })
        };
        Ok(self.blobs.get(hash, &key_for)?)
    }

    /// Seal `bytes` for a cache file of `consent_id` (thumbnails, the reduced previews stored
    /// with fingerprints, labelled by [`small_preview_label`]); plaintext in unencrypted
    /// stores. `label` binds the sealed file to its purpose.
    pub fn seal_cache(
        &self,
        bytes: &[u8],
        label: &str,
        consent_id: &str,
    ) -> Result<Vec<u8>, StoreError> {
        let address = blobs::address_of(label.as_bytes());
        Ok(match self.consent_key(consent_id)? {
            None => bytes.to_vec(),
            Some((id, key)) => crypto::seal_blob(bytes, &address, &id, &key)?,
        })
    }

    /// Open a cache file sealed by [`Store::seal_cache`].
    pub fn open_cache(&self, file: Vec<u8>, label: &str) -> Result<Vec<u8>, StoreError> {
        let Some(id) = crypto::sealed_key_id(&file) else {
            return Ok(file);
        };
        let key = self.data_key(&hex(&id))?;
        let address = blobs::address_of(label.as_bytes());
        crypto::open_blob(file, &address, &key).map_err(|_| {
            StoreError::Blob(BlobError::Corrupt {
                hash: label.to_string(),
                why: "cache file does not authenticate".into(),
            })
        })
    }

    /// Destroy a data key: its wrapped bytes are overwritten (secure_delete) and the row keeps
    /// only when and by whom. Call inside the purge transaction.
    pub fn destroy_data_key_in(
        &self,
        tx: &Transaction<'_>,
        key_id: &str,
    ) -> Result<(), StoreError> {
        tx.execute(
            "UPDATE data_key SET wrapped = NULL, destroyed_at = ?2, destroyed_by = ?3 WHERE id = ?1",
            params![key_id, crate::timefmt::now_utc(), self.actor],
        )?;
        self.data_keys.borrow_mut().remove(key_id);
        Ok(())
    }

    /// Fold the WAL into the database and truncate it, so deleted rows and destroyed keys do
    /// not linger in the log file.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Set up encryption on a store that has none (`sameframe encrypt`), or finish a migration
    /// that was interrupted. Every blob is re-written sealed, one atomic rename at a time.
    pub fn encrypt_existing(
        &mut self,
        encryption: Encryption,
    ) -> Result<EncryptReport, StoreError> {
        let pending = self.encryption_status().migration_pending;
        if self.is_encrypted() && !pending {
            return Ok(EncryptReport {
                sealed: 0,
                already_sealed: self.blob_count()?,
                mode: self.encryption_status().mode,
            });
        }
        if !self.is_encrypted() {
            if let Encryption::None = encryption {
                return Err(KeyError::Kdf(
                    "choose a passphrase or a key file to encrypt with".into(),
                )
                .into());
            }
            let tx = self.write_tx()?;
            let mode = write_keyring(&tx, &self.store_id, &encryption)?;
            tx.execute("UPDATE keyring SET migration_pending = 1 WHERE id = 1", [])?;
            self.audit(
                &tx,
                "store.encrypt.start",
                json!({ "store": self.store_id }),
                json!({ "mode": mode }),
            )?;
            tx.commit()?;
            if let Encryption::KeyFile { path } = &encryption {
                self.key_source = KeySource::KeyFile(path.clone());
            } else if let Encryption::Passphrase { passphrase, .. } = encryption {
                self.key_source = KeySource::Passphrase(passphrase);
            }
            self.reload_keyring()?;
        }
        let rows: Vec<(String, String)> = {
            let mut stmt = self
                .conn
                .prepare("SELECT sha256, consent_id FROM blob ORDER BY sha256")?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        let mut sealed = 0usize;
        let mut already = 0usize;
        for (hash, consent) in rows {
            let raw = match self.blobs.read_raw(&hash) {
                Ok(r) => r,
                Err(BlobError::Missing { .. }) => continue, // reported by verify
                Err(e) => return Err(e.into()),
            };
            if crypto::sealed_key_id(&raw).is_some() {
                already += 1;
                continue;
            }
            if blobs::address_of(&raw)
                != unhex(&hash)
                    .and_then(|v| v.try_into().ok())
                    .unwrap_or([0; 32])
            {
                continue; // corrupt: leave for verify to report, never seal damaged data
            }
            let key_id = self.put_blob(&raw, &hash, &consent)?;
            self.conn.execute(
                "UPDATE blob SET key_id = ?2 WHERE sha256 = ?1",
                params![hash, key_id],
            )?;
            sealed += 1;
        }
        // Thumbnails and other caches are regenerated sealed.
        let cache = self.root.join("cache");
        if cache.exists() {
            std::fs::remove_dir_all(&cache).map_err(|source| StoreError::Io {
                path: cache.clone(),
                source,
            })?;
        }
        let tx = self.write_tx()?;
        // The reduced previews stored with fingerprints are sealed in place.
        let smalls: Vec<(String, String)> = {
            let mut stmt = tx.prepare(
                "SELECT f.capture_id, c.consent_id FROM fingerprint f JOIN capture c ON c.id = f.capture_id
                 WHERE f.small IS NOT NULL",
            )?;
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?
        };
        for (capture, consent) in smalls {
            let plain: Vec<u8> = tx.query_row(
                "SELECT small FROM fingerprint WHERE capture_id = ?1",
                [&capture],
                |r| r.get(0),
            )?;
            if crypto::sealed_key_id(&plain).is_none() {
                let sealed = self.seal_cache(&plain, &small_preview_label(&capture), &consent)?;
                tx.execute(
                    "UPDATE fingerprint SET small = ?2 WHERE capture_id = ?1",
                    params![capture, sealed],
                )?;
            }
        }
        tx.execute("UPDATE keyring SET migration_pending = 0 WHERE id = 1", [])?;
        self.audit(
            &tx,
            "store.encrypt.finish",
            json!({ "store": self.store_id }),
            json!({ "sealed": sealed, "already_sealed": already }),
        )?;
        tx.commit()?;
        self.reload_keyring()?;
        Ok(EncryptReport {
            sealed,
            already_sealed: already,
            mode: self.encryption_status().mode,
        })
    }

    fn blob_count(&self) -> Result<usize, StoreError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM blob", [], |r| r.get(0))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

/// What a capture's reduced preview (stored with its fingerprint) is sealed to.
pub fn small_preview_label(capture_id: &str) -> String {
    format!("small:{capture_id}")
}

/// What `sameframe encrypt` did.
#[derive(Clone, Debug, Serialize)]
pub struct EncryptReport {
    pub sealed: usize,
    pub already_sealed: usize,
    pub mode: String,
}

/// Write the key ring for `encryption`; returns the mode name.
fn write_keyring(
    tx: &Transaction<'_>,
    store_id: &str,
    encryption: &Encryption,
) -> Result<&'static str, StoreError> {
    let check = crypto::check_aad(store_id);
    let now = crate::timefmt::now_utc();
    match encryption {
        Encryption::None => Ok("none"),
        Encryption::Passphrase { passphrase, kdf } => {
            if passphrase.chars().count() < crypto::MIN_PASSPHRASE {
                return Err(KeyError::WeakPassphrase {
                    min: crypto::MIN_PASSPHRASE,
                }
                .into());
            }
            let mut salt = [0u8; 16];
            random_bytes(&mut salt)?;
            let kek = crypto::derive_kek(passphrase, &salt, *kdf)?;
            let master = SecretKey::generate()?;
            let wrapped = kek.wrap_key(&master, &crypto::master_aad(store_id))?;
            let check_value = master.wrap(b"ok", &check)?;
            tx.execute(
                "INSERT INTO keyring (id, mode, kdf, salt, wrapped_master, check_value, created_at)
                 VALUES (1, 'passphrase', ?1, ?2, ?3, ?4, ?5)",
                params![
                    serde_json::to_string(kdf).unwrap_or_default(),
                    salt.to_vec(),
                    wrapped,
                    check_value,
                    now
                ],
            )?;
            Ok("passphrase")
        }
        Encryption::KeyFile { path } => {
            let key = if path.exists() {
                crypto::read_key_file(path)?
            } else {
                let k = SecretKey::generate()?;
                crypto::write_key_file(path, &k).map_err(|source| StoreError::Io {
                    path: path.clone(),
                    source,
                })?;
                k
            };
            let abs = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            let check_value = key.wrap(b"ok", &check)?;
            tx.execute(
                "INSERT INTO keyring (id, mode, key_file, check_value, created_at) VALUES (1, 'keyfile', ?1, ?2, ?3)",
                params![abs.display().to_string(), check_value, now],
            )?;
            Ok("keyfile")
        }
    }
}
