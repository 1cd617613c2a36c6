//! The embedded backend's blob store: a folder in the data directory.
//!
//! An object lives at its key's path (`blobs/ab/cdef…`, `cache/thumbs/…`, `certificates/…`).
//! Writes go to `blobs/.tmp/`, are fsynced and made read-only, then linked into place — a hard
//! link fails when the name exists, so a put never overwrites — and the folder is fsynced: a
//! crash leaves at most an orphan temp file, never a half-written object under its name.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sameframe_core::fsutil::{remove_file_durably, sync_dir};
use sameframe_core::ids::{is_sha256_hex, new_id};
use sameframe_core::store::repo::{BlobKind, Listed};
use sameframe_core::store::{BlobError, BlobKey, BlobStore, Put, StoreError};

/// A blob folder rooted at a data directory.
#[derive(Clone, Debug)]
pub struct Folder {
    root: PathBuf,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BlobError + '_ {
    move |source| BlobError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn from_store(e: StoreError) -> BlobError {
    match e {
        StoreError::Io { path, source } => BlobError::Io { path, source },
        other => BlobError::Io {
            path: PathBuf::new(),
            source: std::io::Error::other(other.to_string()),
        },
    }
}

impl Folder {
    /// The folder store of the data directory `root` (its temp folder is created).
    pub fn open(root: &Path) -> Result<Self, BlobError> {
        let tmp = root.join("blobs").join(".tmp");
        fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        Ok(Self {
            root: root.to_path_buf(),
        })
    }

    /// Where `key` lives.
    pub fn path(&self, key: &BlobKey) -> PathBuf {
        self.root.join(key.path())
    }

    /// Write `bytes` to a fresh, fsynced, read-only temp file.
    fn temp(&self, bytes: &[u8]) -> Result<PathBuf, BlobError> {
        let tmp = self
            .root
            .join("blobs")
            .join(".tmp")
            .join(format!("{}.part", new_id("w")?));
        let result = (|| {
            let mut o = fs::OpenOptions::new();
            o.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                o.mode(0o600);
            }
            let mut f = o.open(&tmp).map_err(io(&tmp))?;
            f.write_all(bytes).map_err(io(&tmp))?;
            f.sync_all().map_err(io(&tmp))?;
            drop(f);
            let mut perms = fs::metadata(&tmp).map_err(io(&tmp))?.permissions();
            perms.set_readonly(true);
            fs::set_permissions(&tmp, perms).map_err(io(&tmp))
        })();
        if let Err(e) = result {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(tmp)
    }

    fn dir_of(&self, dest: &Path) -> Result<PathBuf, BlobError> {
        let dir = dest.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&dir).map_err(io(&dir))?;
        Ok(dir)
    }

    /// Files in `dir` (one level), each with the key its name gives.
    fn files(
        &self,
        dir: &Path,
        key_of: &dyn Fn(&str) -> Option<BlobKey>,
        out: &mut Vec<Listed>,
    ) -> Result<(), BlobError> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(dir)(e)),
        };
        for e in entries {
            let e = e.map_err(io(dir))?;
            let meta = e.metadata().map_err(io(dir))?;
            if !meta.is_file() {
                continue;
            }
            let name = e.file_name().to_string_lossy().to_string();
            out.push(Listed {
                key: key_of(&name),
                location: e.path().display().to_string(),
                size: meta.len(),
                modified: meta.modified().ok(),
            });
        }
        Ok(())
    }
}

impl BlobStore for Folder {
    fn location(&self) -> String {
        format!("blob folder {}", self.root.display())
    }

    fn location_of(&self, key: &BlobKey) -> String {
        self.path(key).display().to_string()
    }

    fn is_local(&self) -> bool {
        true
    }

    fn put(&self, key: &BlobKey, bytes: &[u8]) -> Result<Put, BlobError> {
        let dest = self.path(key);
        if dest.is_file() {
            return Ok(Put::AlreadyPresent);
        }
        let dir = self.dir_of(&dest)?;
        let tmp = self.temp(bytes)?;
        let linked = fs::hard_link(&tmp, &dest);
        let put = match linked {
            Ok(()) => Put::Written,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Put::AlreadyPresent,
            // A file system without hard links: rename, unless another writer got there first.
            Err(_) if dest.exists() => Put::AlreadyPresent,
            Err(_) => {
                fs::rename(&tmp, &dest).map_err(io(&dest))?;
                sync_dir(&dir).map_err(from_store)?;
                return Ok(Put::Written);
            }
        };
        // Unlinking the temp name leaves the linked object as it is (read-only).
        fs::remove_file(&tmp).map_err(io(&tmp))?;
        sync_dir(&dir).map_err(from_store)?;
        Ok(put)
    }

    fn replace(&self, key: &BlobKey, bytes: &[u8]) -> Result<(), BlobError> {
        let dest = self.path(key);
        let dir = self.dir_of(&dest)?;
        let tmp = self.temp(bytes)?;
        if let Err(e) = fs::rename(&tmp, &dest) {
            let _ = remove_file_durably(&tmp);
            return Err(io(&dest)(e));
        }
        sync_dir(&dir).map_err(from_store)
    }

    fn get(&self, key: &BlobKey) -> Result<Vec<u8>, BlobError> {
        let p = self.path(key);
        fs::read(&p).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                BlobError::Missing {
                    hash: key.path(),
                    location: p.display().to_string(),
                }
            } else {
                BlobError::Io {
                    path: p.clone(),
                    source: e,
                }
            }
        })
    }

    fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        remove_file_durably(&self.path(key))
            .map(|_| ())
            .map_err(from_store)
    }

    fn exists(&self, key: &BlobKey) -> Result<bool, BlobError> {
        Ok(self.path(key).is_file())
    }

    fn list(&self, kind: BlobKind) -> Result<Vec<Listed>, BlobError> {
        let mut out = Vec::new();
        match kind {
            BlobKind::Blob => {
                let root = self.root.join("blobs");
                let entries = match fs::read_dir(&root) {
                    Ok(e) => e,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                    Err(e) => return Err(io(&root)(e)),
                };
                for dir in entries {
                    let dir = dir.map_err(io(&root))?;
                    let path = dir.path();
                    let name = dir.file_name().to_string_lossy().to_string();
                    let meta = dir.metadata().map_err(io(&path))?;
                    if meta.is_file() {
                        out.push(Listed {
                            key: None,
                            location: path.display().to_string(),
                            size: meta.len(),
                            modified: meta.modified().ok(),
                        });
                        continue;
                    }
                    if !meta.is_dir() {
                        continue;
                    }
                    let prefix = name;
                    self.files(
                        &path,
                        &|f| {
                            let full = format!("{prefix}{f}");
                            (prefix != ".tmp" && is_sha256_hex(&full))
                                .then_some(BlobKey::Blob(full))
                        },
                        &mut out,
                    )?;
                }
                out.sort_by(|a, b| a.location.cmp(&b.location));
            }
            BlobKind::Thumb => self.files(
                &self.root.join("cache").join("thumbs"),
                &|f| {
                    f.strip_suffix(".thumb")
                        .map(|h| BlobKey::Thumb(h.to_string()))
                },
                &mut out,
            )?,
            BlobKind::Certificate => self.files(
                &self.root.join("certificates"),
                &|f| Some(BlobKey::Certificate(f.to_string())),
                &mut out,
            )?,
        }
        Ok(out)
    }

    fn remove_leftover(&self, location: &str) -> Result<(), BlobError> {
        let p = PathBuf::from(location);
        if !p.starts_with(&self.root) {
            return Err(BlobError::Io {
                path: p,
                source: std::io::Error::other("not inside the blob folder"),
            });
        }
        remove_file_durably(&p).map(|_| ()).map_err(from_store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sameframe_core::ids::sha256_hex;

    #[test]
    fn a_put_never_overwrites_and_leftovers_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        let f = Folder::open(dir.path()).unwrap();
        let h = sha256_hex(b"one");
        let key = BlobKey::Blob(h.clone());
        assert_eq!(f.put(&key, b"one").unwrap(), Put::Written);
        assert_eq!(f.put(&key, b"two").unwrap(), Put::AlreadyPresent);
        assert_eq!(f.get(&key).unwrap(), b"one");
        assert!(f.path(&key).metadata().unwrap().permissions().readonly());
        f.replace(&key, b"three").unwrap();
        assert_eq!(f.get(&key).unwrap(), b"three");
        std::fs::write(dir.path().join("blobs/.tmp/w_x.part"), b"half").unwrap();
        let listed = f.list(BlobKind::Blob).unwrap();
        assert_eq!(
            listed.iter().filter(|l| l.key == Some(key.clone())).count(),
            1
        );
        assert_eq!(listed.iter().filter(|l| l.key.is_none()).count(), 1);
        f.delete(&key).unwrap();
        assert!(matches!(f.get(&key), Err(BlobError::Missing { .. })));
        f.delete(&key).unwrap();
    }
}
