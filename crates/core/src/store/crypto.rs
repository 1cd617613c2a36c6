//! Encryption at rest: a store master key unlocked by a passphrase (Argon2id) or a key file,
//! per-consent data keys wrapped by it, and XChaCha20-Poly1305 sealing of blobs.
//!
//! Key hierarchy:
//!
//! ```text
//! passphrase --Argon2id(salt)--> KEK --wraps--> master key --wraps--> data key (one per consent)
//! key file (32 random bytes, hex) ------------> master key                 |
//!                                                                          +--seals--> blobs
//! ```
//!
//! Destroying a consent's data key (purge) makes every copy of its blobs unreadable, including
//! copies in backups of the blob folder.

use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use crate::ids::{RandomError, hex, random_bytes, unhex};

/// Magic at the start of every sealed blob: `SFBLOB`, NUL, format version 1.
pub const MAGIC: &[u8; 8] = b"SFBLOB\x00\x01";
/// Size of a key ID.
pub const KEY_ID_LEN: usize = 16;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Bytes before the ciphertext.
pub const HEADER_LEN: usize = MAGIC.len() + KEY_ID_LEN + NONCE_LEN;

/// Key and encryption failures. None of them changes the store.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the store at {store} is encrypted with a passphrase: give it with SAMEFRAME_PASSPHRASE, --passphrase-file, or at the prompt"
    )]
    PassphraseNeeded { store: String },
    #[error("wrong passphrase for the store at {store}")]
    WrongPassphrase { store: String },
    #[error("key file {path} not found: insert the key medium or pass --key-file")]
    KeyFileMissing { path: PathBuf },
    #[error("could not read key file {path}: {source}")]
    KeyFileUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path} is not a sameframe key (expected 64 hex digits, or 32 raw bytes)")]
    KeyFileInvalid { path: PathBuf },
    #[error(
        "key file {path} can be read by other users (mode {mode:o}): run `chmod 600 {path}`, or pass --allow-open-key-file"
    )]
    KeyFileOpen { path: PathBuf, mode: u32 },
    #[error("key file {path} does not belong to the store at {store}")]
    WrongKeyFile { path: PathBuf, store: String },
    #[error("the store at {store} uses a key file but none is configured: pass --key-file")]
    KeyFileNeeded { store: String },
    #[error("data key {key_id} was destroyed{when}: its blobs can no longer be decrypted")]
    DataKeyDestroyed { key_id: String, when: String },
    #[error("unknown data key {key_id}")]
    UnknownDataKey { key_id: String },
    #[error("key derivation failed: {0}")]
    Kdf(String),
    #[error("the passphrase is too short: use at least {min} characters")]
    WeakPassphrase { min: usize },
    #[error("could not read the passphrase: {0}")]
    Prompt(String),
    #[error("a wrapped key is damaged ({what})")]
    DamagedWrappedKey { what: String },
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// A 256-bit secret that is wiped from memory when dropped.
#[derive(Clone)]
pub struct SecretKey(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

impl SecretKey {
    /// A fresh random key.
    pub fn generate() -> Result<Self, RandomError> {
        let mut k = Zeroizing::new([0u8; 32]);
        random_bytes(k.as_mut())?;
        Ok(Self(k))
    }

    fn from_bytes(b: &[u8]) -> Option<Self> {
        let arr: [u8; 32] = b.try_into().ok()?;
        Some(Self(Zeroizing::new(arr)))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(Key::from_slice(self.0.as_ref()))
    }

    /// Seal `msg` with a fresh nonce: `nonce || ciphertext || tag`.
    pub fn wrap(&self, msg: &[u8], aad: &[u8]) -> Result<Vec<u8>, RandomError> {
        let mut nonce = [0u8; NONCE_LEN];
        random_bytes(&mut nonce)?;
        let mut out = Vec::with_capacity(NONCE_LEN + msg.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(msg);
        let tag = self
            .cipher()
            .encrypt_in_place_detached(XNonce::from_slice(&nonce), aad, &mut out[NONCE_LEN..])
            .map_err(|_| RandomError::new("XChaCha20-Poly1305 refused the buffer"))?;
        out.extend_from_slice(&tag);
        Ok(out)
    }

    /// Open a `wrap` result; `None` when the key, the AAD or the bytes are wrong.
    pub fn unwrap_bytes(&self, sealed: &[u8], aad: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (ct, tag) = rest.split_at(rest.len() - TAG_LEN);
        let mut buf = Zeroizing::new(ct.to_vec());
        self.cipher()
            .decrypt_in_place_detached(
                XNonce::from_slice(nonce),
                aad,
                buf.as_mut_slice(),
                Tag::from_slice(tag),
            )
            .ok()?;
        Some(buf)
    }

    /// Wrap another key.
    pub fn wrap_key(&self, key: &SecretKey, aad: &[u8]) -> Result<Vec<u8>, RandomError> {
        self.wrap(key.0.as_ref(), aad)
    }

    /// A key derived from this one for one purpose: HMAC-SHA256(this key, `context`). Keys
    /// derived with different contexts are independent.
    pub fn derive(&self, context: &[u8]) -> SecretKey {
        SecretKey(Zeroizing::new(self.mac(context)))
    }

    /// HMAC-SHA256 of `msg` under this key.
    pub fn mac(&self, msg: &[u8]) -> [u8; 32] {
        use hmac::{Hmac, Mac};
        let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(self.0.as_ref())
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        m.update(msg);
        m.finalize().into_bytes().into()
    }

    /// Unwrap a key sealed by [`SecretKey::wrap_key`].
    pub fn unwrap_key(&self, sealed: &[u8], aad: &[u8]) -> Option<SecretKey> {
        self.unwrap_bytes(sealed, aad)
            .and_then(|b| SecretKey::from_bytes(&b))
    }
}

/// Argon2id cost parameters, stored with the salt.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes.
    pub t: u32,
    /// Lanes.
    pub p: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane: about half a second on a clinic laptop.
    fn default() -> Self {
        Self {
            m_kib: 64 * 1024,
            t: 3,
            p: 1,
        }
    }
}

/// Minimum passphrase length accepted by `init`.
pub const MIN_PASSPHRASE: usize = 10;

/// Derive the key-encryption key from a passphrase.
pub fn derive_kek(passphrase: &str, salt: &[u8], p: KdfParams) -> Result<SecretKey, KeyError> {
    let params = argon2::Params::new(p.m_kib, p.t, p.p, Some(32))
        .map_err(|e| KeyError::Kdf(e.to_string()))?;
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = Zeroizing::new([0u8; 32]);
    a.hash_password_into(passphrase.as_bytes(), salt, out.as_mut())
        .map_err(|e| KeyError::Kdf(e.to_string()))?;
    Ok(SecretKey(out))
}

/// Read a key file: 64 hex digits (whitespace ignored), or the 32 key bytes themselves. A key
/// file other users may read is refused unless `allow_open` (as ssh refuses an open private
/// key).
pub fn read_key_file(path: &Path, allow_open: bool) -> Result<SecretKey, KeyError> {
    use std::io::Read;
    let unreadable = |source| KeyError::KeyFileUnreadable {
        path: path.to_path_buf(),
        source,
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(KeyError::KeyFileMissing {
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(unreadable(e)),
    };
    if !meta.is_file() {
        return Err(KeyError::KeyFileInvalid {
            path: path.to_path_buf(),
        });
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 && !allow_open {
            return Err(KeyError::KeyFileOpen {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let _ = allow_open;
    // A key file is small: read at most a little more than the longest valid one.
    let mut raw = Zeroizing::new(Vec::with_capacity(128));
    let (f, _) = crate::fsutil::open_regular(path, u64::MAX).map_err(|e| match e {
        crate::fsutil::ReadError::Io(e) => unreadable(e),
        other => unreadable(std::io::Error::other(other.to_string())),
    })?;
    f.take(4096).read_to_end(&mut raw).map_err(unreadable)?;
    parse_key_file(&raw).ok_or_else(|| KeyError::KeyFileInvalid {
        path: path.to_path_buf(),
    })
}

/// The key in a key file's bytes: 64 hex digits (whitespace anywhere ignored), or exactly the
/// 32 key bytes; `None` for anything else.
///
/// ```
/// use sameframe_core::store::crypto::parse_key_file;
/// assert!(parse_key_file(format!("{}\n", "ab".repeat(32)).as_bytes()).is_some());
/// assert!(parse_key_file(&[7u8; 32]).is_some());
/// assert!(parse_key_file(b"not a key").is_none());
/// ```
pub fn parse_key_file(raw: &[u8]) -> Option<SecretKey> {
    let digits: Zeroizing<String> = Zeroizing::new(
        String::from_utf8_lossy(raw)
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect(),
    );
    if digits.len() == 64 && digits.chars().all(|c| c.is_ascii_hexdigit()) {
        let mut bytes = Zeroizing::new(unhex(&digits).unwrap_or_default());
        let key = SecretKey::from_bytes(&bytes);
        bytes.zeroize();
        return key;
    }
    if raw.len() == 32 {
        return SecretKey::from_bytes(raw);
    }
    None
}

/// Write a new key file (refusing to overwrite one), readable by the owner only. The key is
/// written whole to a temporary file beside it and then linked into place, so a process killed
/// at any moment leaves either no key file or a complete one — never an empty one that the next
/// run would refuse.
pub fn write_key_file(path: &Path, key: &SecretKey) -> std::io::Result<()> {
    use std::io::Write;
    if path.exists() {
        return Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists));
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let written = (|| {
        let mut f = opts.open(&tmp)?;
        let text = Zeroizing::new(format!("{}\n", hex(key.0.as_ref())));
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        // A link refuses an existing name, as `create_new` did.
        std::fs::hard_link(&tmp, path)
    })();
    let _ = std::fs::remove_file(&tmp);
    written?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// A key ID, random, stored as hex.
pub fn new_key_id() -> Result<[u8; KEY_ID_LEN], RandomError> {
    let mut id = [0u8; KEY_ID_LEN];
    random_bytes(&mut id)?;
    Ok(id)
}

/// The AAD that binds a wrapped data key to its ID.
pub fn data_key_aad(key_id: &str) -> Vec<u8> {
    format!("sameframe data key {key_id}").into_bytes()
}

/// The AAD that binds the wrapped master key to its store.
pub fn master_aad(store_id: &str) -> Vec<u8> {
    format!("sameframe master key {store_id}").into_bytes()
}

/// The known plaintext sealed under the master key to recognise a wrong key file.
pub fn check_aad(store_id: &str) -> Vec<u8> {
    format!("sameframe key check {store_id}").into_bytes()
}

/// Seal a blob: `MAGIC || key_id || nonce || ciphertext || tag`, with the plaintext's SHA-256
/// (`address`) in the AAD so a sealed file cannot be passed off under another address.
pub fn seal_blob(
    plaintext: &[u8],
    address: &[u8; 32],
    key_id: &[u8; KEY_ID_LEN],
    key: &SecretKey,
) -> Result<Vec<u8>, RandomError> {
    let mut nonce = [0u8; NONCE_LEN];
    random_bytes(&mut nonce)?;
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext.len() + TAG_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(key_id);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let aad = blob_aad(key_id, address);
    let tag = key
        .cipher()
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), &aad, &mut out[HEADER_LEN..])
        .map_err(|_| RandomError::new("XChaCha20-Poly1305 refused the buffer"))?;
    out.extend_from_slice(&tag);
    Ok(out)
}

fn blob_aad(key_id: &[u8; KEY_ID_LEN], address: &[u8; 32]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(8 + KEY_ID_LEN + 32);
    aad.extend_from_slice(MAGIC);
    aad.extend_from_slice(key_id);
    aad.extend_from_slice(address);
    aad
}

/// The key ID of a sealed blob, or `None` for a plaintext one.
pub fn sealed_key_id(file: &[u8]) -> Option<[u8; KEY_ID_LEN]> {
    if file.len() < HEADER_LEN + TAG_LEN || !file.starts_with(MAGIC) {
        return None;
    }
    file[MAGIC.len()..MAGIC.len() + KEY_ID_LEN].try_into().ok()
}

/// A sealed file that does not authenticate: altered, truncated, or opened with the wrong key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("authentication tag does not verify (file altered or wrong key)")]
pub struct NotAuthentic;

/// Open a sealed blob in place.
pub fn open_blob(
    mut file: Vec<u8>,
    address: &[u8; 32],
    key: &SecretKey,
) -> Result<Vec<u8>, NotAuthentic> {
    let key_id: [u8; KEY_ID_LEN] = sealed_key_id(&file).ok_or(NotAuthentic)?;
    let nonce: [u8; NONCE_LEN] = file[MAGIC.len() + KEY_ID_LEN..HEADER_LEN]
        .try_into()
        .map_err(|_| NotAuthentic)?;
    let tag_at = file.len() - TAG_LEN;
    let tag: [u8; TAG_LEN] = file[tag_at..].try_into().map_err(|_| NotAuthentic)?;
    let aad = blob_aad(&key_id, address);
    key.cipher()
        .decrypt_in_place_detached(
            XNonce::from_slice(&nonce),
            &aad,
            &mut file[HEADER_LEN..tag_at],
            Tag::from_slice(&tag),
        )
        .map_err(|_| NotAuthentic)?;
    file.truncate(tag_at);
    file.drain(..HEADER_LEN);
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blob_round_trip_and_tamper_detection() {
        let key = SecretKey::generate().unwrap();
        let id = new_key_id().unwrap();
        let addr = [7u8; 32];
        let sealed = seal_blob(b"hello photo", &addr, &id, &key).unwrap();
        assert_eq!(sealed_key_id(&sealed), Some(id));
        assert!(!sealed.windows(5).any(|w| w == b"hello"));
        assert_eq!(
            open_blob(sealed.clone(), &addr, &key).unwrap(),
            b"hello photo"
        );
        // Another address, another key, a flipped byte: all refused.
        assert!(open_blob(sealed.clone(), &[8u8; 32], &key).is_err());
        assert!(open_blob(sealed.clone(), &addr, &SecretKey::generate().unwrap()).is_err());
        let mut bad = sealed;
        let n = bad.len();
        bad[n / 2] ^= 1;
        assert!(open_blob(bad, &addr, &key).is_err());
    }

    #[test]
    fn wrapped_keys_need_the_right_aad() {
        let master = SecretKey::generate().unwrap();
        let data = SecretKey::generate().unwrap();
        let w = master.wrap_key(&data, b"a").unwrap();
        assert!(master.unwrap_key(&w, b"b").is_none());
        assert_eq!(
            master.unwrap_key(&w, b"a").unwrap().0.as_ref(),
            data.0.as_ref()
        );
    }

    #[test]
    fn kdf_is_deterministic_per_salt() {
        let p = KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        };
        let a = derive_kek("correct horse", b"saltsaltsaltsalt", p).unwrap();
        let b = derive_kek("correct horse", b"saltsaltsaltsalt", p).unwrap();
        let c = derive_kek("correct horse", b"pepperpepperpepp", p).unwrap();
        assert_eq!(a.0.as_ref(), b.0.as_ref());
        assert_ne!(a.0.as_ref(), c.0.as_ref());
    }
}
