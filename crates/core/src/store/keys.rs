//! The key ring of an open store: where the master key comes from, unlocking it (once), the
//! consents' data keys, and the keys derived for record bodies and lookups.

use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;

use zeroize::Zeroizing;

use super::StoreError;
use super::crypto::{self, KdfParams, KeyError, SecretKey};
use super::repo::{KeyRepo, KeyringRow};
use super::seal::RecordSeal;
use crate::ids::random_bytes;

/// Where keys come from when a command needs them.
#[derive(Default)]
pub enum KeySource {
    /// Nothing given: key-file stores use the key file recorded for this station (or at
    /// `init`); passphrase stores fail with a message saying how to give it.
    #[default]
    None,
    /// A key file path (overrides the recorded one).
    KeyFile(PathBuf),
    /// A passphrase.
    Passphrase(Zeroizing<String>),
    /// Ask when needed (interactive prompt or a dialog).
    Ask(Box<dyn Fn() -> Result<Zeroizing<String>, String> + Send>),
    /// A master key already unlocked (a second handle on the same store, or its copy).
    Master(SecretKey),
}

impl std::fmt::Debug for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::None => f.write_str("None"),
            KeySource::KeyFile(p) => write!(f, "KeyFile({})", p.display()),
            KeySource::Passphrase(_) => f.write_str("Passphrase(…)"),
            KeySource::Ask(_) => f.write_str("Ask"),
            KeySource::Master(_) => f.write_str("Master(…)"),
        }
    }
}

/// How a new store protects its blobs and records.
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

impl Encryption {
    /// The key source that unlocks a store protected this way.
    pub fn key_source(&self) -> KeySource {
        match self {
            Encryption::None => KeySource::None,
            Encryption::Passphrase { passphrase, .. } => KeySource::Passphrase(passphrase.clone()),
            Encryption::KeyFile { path } => KeySource::KeyFile(path.clone()),
        }
    }
}

/// A summary of the store's protection, for `sameframe status`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct EncryptionStatus {
    /// "none", "passphrase" or "keyfile".
    pub mode: String,
    pub key_file: Option<String>,
    pub migration_pending: bool,
}

/// The keys of one open store.
pub(crate) struct Keys {
    /// What the messages call the store.
    pub location: String,
    pub store_id: String,
    pub source: KeySource,
    /// The key file this station's configuration names, if any.
    pub station_key_file: Option<PathBuf>,
    /// Accept a key file other users can read.
    pub allow_open_key_file: bool,
    pub ring: RefCell<Option<KeyringRow>>,
    pub master: OnceCell<SecretKey>,
    pub data_keys: RefCell<HashMap<String, SecretKey>>,
}

impl Keys {
    pub fn new(
        location: String,
        store_id: String,
        source: KeySource,
        station_key_file: Option<PathBuf>,
        ring: Option<KeyringRow>,
    ) -> Self {
        Self {
            location,
            store_id,
            source,
            station_key_file,
            allow_open_key_file: false,
            ring: RefCell::new(ring),
            master: OnceCell::new(),
            data_keys: RefCell::new(HashMap::new()),
        }
    }

    /// A copy for another handle on the same store: the unlocked master key, no prompt.
    pub fn share(&self) -> Self {
        let mut k = Self::new(
            self.location.clone(),
            self.store_id.clone(),
            KeySource::None,
            self.station_key_file.clone(),
            self.ring.borrow().clone(),
        );
        k.allow_open_key_file = self.allow_open_key_file;
        if let Some(m) = self.master.get() {
            let _ = k.master.set(m.clone());
        }
        k
    }

    pub fn is_encrypted(&self) -> bool {
        self.ring.borrow().is_some()
    }

    pub fn status(&self) -> EncryptionStatus {
        match &*self.ring.borrow() {
            None => EncryptionStatus {
                mode: "none".into(),
                key_file: None,
                migration_pending: false,
            },
            Some(k) => EncryptionStatus {
                mode: k.mode.clone(),
                key_file: self
                    .station_key_file
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .or_else(|| k.key_file.clone()),
                migration_pending: k.migration_pending,
            },
        }
    }

    /// The master key, unlocking it on first use. A wrong passphrase or key file fails here,
    /// before anything changes.
    pub fn master(&self) -> Result<&SecretKey, StoreError> {
        if let Some(k) = self.master.get() {
            return Ok(k);
        }
        let ring = self.ring.borrow().clone().ok_or_else(|| {
            KeyError::Kdf("the store is not encrypted: it has no master key".into())
        })?;
        let key = self.unlock(&ring)?;
        Ok(self.master.get_or_init(|| key))
    }

    /// The seal for record bodies (keyed in encrypted stores).
    pub fn record_seal(&self, accept_plain: bool) -> Result<RecordSeal, StoreError> {
        Ok(if self.is_encrypted() {
            RecordSeal::keyed(&self.store_id, self.master()?).accepting_plain(accept_plain)
        } else {
            RecordSeal::plain(&self.store_id)
        })
    }

    fn unlock(&self, ring: &KeyringRow) -> Result<SecretKey, StoreError> {
        let store = self.location.clone();
        let check = crypto::check_aad(&self.store_id);
        if let KeySource::Master(k) = &self.source {
            if k.unwrap_bytes(&ring.check_value, &check).is_none() {
                return Err(KeyError::WrongPassphrase { store }.into());
            }
            return Ok(k.clone());
        }
        if ring.mode == "keyfile" {
            let path = match &self.source {
                KeySource::KeyFile(p) => p.clone(),
                _ => self
                    .station_key_file
                    .clone()
                    .or_else(|| ring.key_file.as_ref().map(PathBuf::from))
                    .ok_or(KeyError::KeyFileNeeded {
                        store: store.clone(),
                    })?,
            };
            let key = crypto::read_key_file(&path, self.allow_open_key_file)?;
            if key.unwrap_bytes(&ring.check_value, &check).is_none() {
                return Err(KeyError::WrongKeyFile { path, store }.into());
            }
            return Ok(key);
        }
        let pass = match &self.source {
            KeySource::Passphrase(p) => p.clone(),
            KeySource::Ask(f) => f().map_err(KeyError::Prompt)?,
            _ => return Err(KeyError::PassphraseNeeded { store }.into()),
        };
        let kdf: KdfParams = ring
            .kdf
            .as_deref()
            .and_then(|k| serde_json::from_str(k).ok())
            .unwrap_or_default();
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

    /// The data key with hex ID `key_id`, read through `repo`.
    pub fn data_key(&self, repo: &mut dyn KeyRepo, key_id: &str) -> Result<SecretKey, StoreError> {
        if let Some(k) = self.data_keys.borrow().get(key_id) {
            return Ok(k.clone());
        }
        let row = repo
            .data_key(key_id)?
            .ok_or_else(|| KeyError::UnknownDataKey {
                key_id: key_id.to_string(),
            })?;
        let Some(wrapped) = row.wrapped else {
            return Err(KeyError::DataKeyDestroyed {
                key_id: key_id.to_string(),
                when: row
                    .destroyed_at
                    .map(|d| format!(" on {d}"))
                    .unwrap_or_default(),
            }
            .into());
        };
        let key = self
            .master()?
            .unwrap_key(&wrapped, &crypto::data_key_aad(key_id))
            .ok_or_else(|| KeyError::DamagedWrappedKey {
                what: format!("data key {key_id}"),
            })?;
        self.data_keys
            .borrow_mut()
            .insert(key_id.to_string(), key.clone());
        Ok(key)
    }

    /// A new data key for `consent_id`: its row (to insert in the caller's transaction) and the
    /// key.
    pub fn new_data_key(
        &self,
        consent_id: &str,
    ) -> Result<(super::repo::DataKeyRow, SecretKey), StoreError> {
        let raw = crypto::new_key_id()?;
        let id = crate::ids::hex(&raw);
        let key = SecretKey::generate()?;
        let wrapped = self.master()?.wrap_key(&key, &crypto::data_key_aad(&id))?;
        self.data_keys.borrow_mut().insert(id.clone(), key.clone());
        Ok((
            super::repo::DataKeyRow {
                id,
                consent_id: consent_id.to_string(),
                wrapped: Some(wrapped),
                created_at: crate::timefmt::now_utc(),
                destroyed_at: None,
                destroyed_by: None,
            },
            key,
        ))
    }

    /// Forget a destroyed key.
    pub fn forget(&self, key_id: &str) {
        self.data_keys.borrow_mut().remove(key_id);
    }
}

/// The key ring row for `encryption` (creating the key file when absent); `None` for no
/// encryption.
pub(crate) fn new_keyring(
    store_id: &str,
    encryption: &Encryption,
    allow_open: bool,
) -> Result<Option<KeyringRow>, StoreError> {
    let check = crypto::check_aad(store_id);
    let now = crate::timefmt::now_utc();
    match encryption {
        Encryption::None => Ok(None),
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
            Ok(Some(KeyringRow {
                mode: "passphrase".into(),
                kdf: Some(serde_json::to_string(kdf).unwrap_or_default()),
                salt: Some(salt.to_vec()),
                wrapped_master: Some(kek.wrap_key(&master, &crypto::master_aad(store_id))?),
                key_file: None,
                check_value: master.wrap(b"ok", &check)?,
                migration_pending: false,
                created_at: now,
            }))
        }
        Encryption::KeyFile { path } => {
            let key = if path.exists() {
                crypto::read_key_file(path, allow_open)?
            } else {
                let k = SecretKey::generate()?;
                crypto::write_key_file(path, &k).map_err(StoreError::io(path))?;
                k
            };
            let abs = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            Ok(Some(KeyringRow {
                mode: "keyfile".into(),
                kdf: None,
                salt: None,
                wrapped_master: None,
                key_file: Some(abs.display().to_string()),
                check_value: key.wrap(b"ok", &check)?,
                migration_pending: false,
                created_at: now,
            }))
        }
    }
}

/// Check what can be checked about `encryption` before anything is created.
pub(crate) fn precheck(encryption: &Encryption, allow_open: bool) -> Result<(), StoreError> {
    match encryption {
        Encryption::Passphrase { passphrase, .. }
            if passphrase.chars().count() < crypto::MIN_PASSPHRASE =>
        {
            Err(KeyError::WeakPassphrase {
                min: crypto::MIN_PASSPHRASE,
            }
            .into())
        }
        Encryption::KeyFile { path } if path.exists() => {
            crypto::read_key_file(path, allow_open)?;
            Ok(())
        }
        _ => Ok(()),
    }
}
