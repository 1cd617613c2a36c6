//! Durable file operations on this machine's disk: the local copies a store keeps or deletes
//! (exports, certificates) and the folder backend's objects.

use std::fs::File;
use std::path::Path;

use crate::store::StoreError;

/// fsync a directory so a rename or unlink in it is durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(StoreError::io(dir))
}

/// Remove a file (making it writable first: blobs are read-only) and fsync its folder.
/// Returns whether there was a file; a missing one is not an error.
pub fn remove_file_durably(p: &Path) -> Result<bool, StoreError> {
    match std::fs::symlink_metadata(p) {
        Ok(meta) => {
            if meta.is_file() {
                let mut perms = meta.permissions();
                #[allow(clippy::permissions_set_readonly_false)]
                perms.set_readonly(false);
                let _ = std::fs::set_permissions(p, perms);
            }
            std::fs::remove_file(p).map_err(StoreError::io(p))?;
            if let Some(parent) = p.parent() {
                sync_dir(parent)?;
            }
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(StoreError::Io {
            path: p.to_path_buf(),
            source,
        }),
    }
}
