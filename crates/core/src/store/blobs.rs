//! Content-addressed blob folder: every byte of image data the store keeps goes through here.
//!
//! A blob's address is the lowercase hex SHA-256 of the *plaintext original*; it lives at
//! `blobs/ab/cdef…` (first two hex digits as folder). Writes go to `blobs/.tmp/`, are fsynced,
//! made read-only, renamed into place, and the folder is fsynced: a crash leaves at most an
//! orphan file, never a half-written blob under its address.
//!
//! A blob file is either the plaintext itself (stores created without encryption) or a sealed
//! file (see [`super::crypto`]) starting with `SFBLOB`; readers accept both, so a migration to
//! encryption can be interrupted and resumed.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::crypto::{self, KEY_ID_LEN, SecretKey};
use crate::ids::{hex, is_sha256_hex, new_id, unhex};

/// Blob I/O failures, naming the blob or path.
#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("blob {hash} is missing from {path}")]
    Missing { hash: String, path: PathBuf },
    #[error("blob {hash} is corrupt: {why}")]
    Corrupt { hash: String, why: String },
    #[error("{0} is not a SHA-256 address")]
    BadAddress(String),
    #[error(transparent)]
    Key(#[from] crypto::KeyError),
    #[error(transparent)]
    Random(#[from] crate::ids::RandomError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// How to seal a blob being written.
pub enum Sealing<'a> {
    /// Store the plaintext (stores without encryption).
    Plain,
    /// Seal with a consent's data key.
    Key {
        id: &'a [u8; KEY_ID_LEN],
        key: &'a SecretKey,
    },
}

/// What `put` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Put {
    /// A new file was written.
    Written,
    /// A valid copy was already in place (same content and sealing).
    AlreadyPresent,
}

/// A blob file found on disk by [`BlobStore::scan`].
#[derive(Clone, Debug)]
pub struct FoundBlob {
    /// The address, or `None` for a file that is not named like a blob (temp file, stray).
    pub hash: Option<String>,
    pub path: PathBuf,
}

/// The blob folder.
#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
}

/// A plaintext SHA-256.
pub fn address_of(bytes: &[u8]) -> [u8; 32] {
    Sha256::digest(bytes).into()
}

fn address_bytes(hash: &str) -> Result<[u8; 32], BlobError> {
    if !is_sha256_hex(hash) {
        return Err(BlobError::BadAddress(hash.to_string()));
    }
    unhex(hash)
        .and_then(|v| v.try_into().ok())
        .ok_or_else(|| BlobError::BadAddress(hash.to_string()))
}

impl BlobStore {
    /// The blob folder at `root` (created if needed).
    pub fn open(root: PathBuf) -> Result<Self, BlobError> {
        fs::create_dir_all(root.join(".tmp")).map_err(io(&root))?;
        Ok(Self { root })
    }

    /// The folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob with address `hash` lives.
    pub fn path(&self, hash: &str) -> PathBuf {
        let (a, b) = hash.split_at(2.min(hash.len()));
        self.root.join(a).join(b)
    }

    /// True when a file exists at the blob's address.
    pub fn exists(&self, hash: &str) -> bool {
        self.path(hash).is_file()
    }

    /// Durably store `plaintext` (whose SHA-256 hex is `hash`) under its address.
    pub fn put(
        &self,
        plaintext: &[u8],
        hash: &str,
        sealing: Sealing<'_>,
    ) -> Result<Put, BlobError> {
        let address = address_bytes(hash)?;
        let dest = self.path(hash);
        if dest.is_file() && self.matches(&dest, &address, &sealing) {
            return Ok(Put::AlreadyPresent);
        }
        let bytes = match sealing {
            Sealing::Plain => std::borrow::Cow::Borrowed(plaintext),
            Sealing::Key { id, key } => {
                std::borrow::Cow::Owned(crypto::seal_blob(plaintext, &address, id, key)?)
            }
        };
        self.write_atomic(&dest, &bytes)?;
        Ok(Put::Written)
    }

    /// True when the file at `dest` already holds this content with this sealing.
    fn matches(&self, dest: &Path, address: &[u8; 32], sealing: &Sealing<'_>) -> bool {
        let Ok(file) = fs::read(dest) else {
            return false;
        };
        match sealing {
            Sealing::Plain => address_of(&file) == *address,
            Sealing::Key { id, key } => {
                crypto::sealed_key_id(&file) == Some(**id)
                    && crypto::open_blob(file, address, key)
                        .is_ok_and(|plain| address_of(&plain) == *address)
            }
        }
    }

    /// Write `bytes` to `dest` crash-safely: temp file, fsync, read-only, rename, fsync folder.
    pub fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<(), BlobError> {
        let dir = dest.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        let tmp = self
            .root
            .join(".tmp")
            .join(format!("{}.part", new_id("w")?));
        let result = (|| {
            let mut f = File::create(&tmp).map_err(io(&tmp))?;
            f.write_all(bytes).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
            drop(f);
            let mut perms = fs::metadata(&tmp).map_err(io(&tmp))?.permissions();
            perms.set_readonly(true);
            fs::set_permissions(&tmp, perms).map_err(io(&tmp))?;
            fs::rename(&tmp, dest).map_err(io(dest))?;
            sync_dir(&dir)
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Read the raw file (sealed or plain) at an address.
    pub fn read_raw(&self, hash: &str) -> Result<Vec<u8>, BlobError> {
        let p = self.path(hash);
        fs::read(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                BlobError::Missing {
                    hash: hash.to_string(),
                    path: p.clone(),
                }
            } else {
                BlobError::Io {
                    path: p.clone(),
                    source: e,
                }
            }
        })
    }

    /// Read, decrypt when sealed (asking `key_for` for the data key), and check the plaintext
    /// hash against the address.
    pub fn get(
        &self,
        hash: &str,
        key_for: &dyn Fn(&[u8; KEY_ID_LEN]) -> Result<SecretKey, crypto::KeyError>,
    ) -> Result<Vec<u8>, BlobError> {
        let address = address_bytes(hash)?;
        let raw = self.read_raw(hash)?;
        let plain = match crypto::sealed_key_id(&raw) {
            None => raw,
            Some(id) => {
                let key = key_for(&id)?;
                crypto::open_blob(raw, &address, &key).map_err(|e| BlobError::Corrupt {
                    hash: hash.to_string(),
                    why: e.to_string(),
                })?
            }
        };
        if address_of(&plain) != address {
            return Err(BlobError::Corrupt {
                hash: hash.to_string(),
                why: format!("content hashes to {}", hex(&address_of(&plain))),
            });
        }
        Ok(plain)
    }

    /// Remove a blob file (used by purge and gc). Missing files are not an error.
    pub fn remove(&self, hash: &str) -> Result<(), BlobError> {
        let p = self.path(hash);
        remove_file_durably(&p)
    }

    /// Every file under the blob folder, with its address when it is named like a blob.
    pub fn scan(&self) -> Result<Vec<FoundBlob>, BlobError> {
        let mut found = Vec::new();
        let entries = fs::read_dir(&self.root).map_err(io(&self.root))?;
        for dir in entries {
            let dir = dir.map_err(io(&self.root))?;
            let dpath = dir.path();
            let name = dir.file_name().to_string_lossy().to_string();
            if !dpath.is_dir() {
                found.push(FoundBlob {
                    hash: None,
                    path: dpath,
                });
                continue;
            }
            for f in fs::read_dir(&dpath).map_err(io(&dpath))? {
                let f = f.map_err(io(&dpath))?;
                let fname = f.file_name().to_string_lossy().to_string();
                let full = format!("{name}{fname}");
                let hash = (name != ".tmp" && is_sha256_hex(&full)).then_some(full);
                found.push(FoundBlob {
                    hash,
                    path: f.path(),
                });
            }
        }
        found.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(found)
    }
}

/// fsync a directory so a rename or unlink in it is durable.
pub fn sync_dir(dir: &Path) -> Result<(), BlobError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Remove a file (making it writable first) and fsync its folder; missing is fine.
pub fn remove_file_durably(p: &Path) -> Result<(), BlobError> {
    match fs::metadata(p) {
        Ok(meta) => {
            let mut perms = meta.permissions();
            #[allow(clippy::permissions_set_readonly_false)]
            perms.set_readonly(false);
            let _ = fs::set_permissions(p, perms);
            fs::remove_file(p).map_err(io(p))?;
            if let Some(parent) = p.parent() {
                sync_dir(parent)?;
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(BlobError::Io {
            path: p.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::sha256_hex;

    #[test]
    fn put_get_plain_and_sealed() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("blobs")).unwrap();
        let data = b"some image bytes".to_vec();
        let h = sha256_hex(&data);
        assert_eq!(store.put(&data, &h, Sealing::Plain).unwrap(), Put::Written);
        assert_eq!(
            store.put(&data, &h, Sealing::Plain).unwrap(),
            Put::AlreadyPresent
        );
        let no_key = |_: &[u8; KEY_ID_LEN]| -> Result<SecretKey, crypto::KeyError> {
            panic!("plain blob needs no key")
        };
        assert_eq!(store.get(&h, &no_key).unwrap(), data);
        assert!(store.path(&h).metadata().unwrap().permissions().readonly());

        let key = SecretKey::generate().unwrap();
        let id = crypto::new_key_id().unwrap();
        let other = b"another photo".to_vec();
        let h2 = sha256_hex(&other);
        store
            .put(&other, &h2, Sealing::Key { id: &id, key: &key })
            .unwrap();
        let raw = store.read_raw(&h2).unwrap();
        assert!(raw.starts_with(crypto::MAGIC));
        let k2 = key.clone();
        let get_key = move |kid: &[u8; KEY_ID_LEN]| {
            assert_eq!(kid, &id);
            Ok(k2.clone())
        };
        assert_eq!(store.get(&h2, &get_key).unwrap(), other);

        let scanned = store.scan().unwrap();
        let hashes: Vec<_> = scanned.iter().filter_map(|f| f.hash.clone()).collect();
        assert_eq!(hashes.len(), 2);
        assert!(hashes.contains(&h) && hashes.contains(&h2));
    }

    #[test]
    fn a_wrong_address_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path().join("blobs")).unwrap();
        assert!(matches!(
            store.put(b"x", "not-a-hash", Sealing::Plain),
            Err(BlobError::BadAddress(_))
        ));
    }
}
