//! File operations on this machine's disk: bounded reads of files a user names (images, keys,
//! passphrases, configuration, captions), and the durable writes and deletions of the local
//! copies a store keeps or deletes (exports, certificates) and the folder backend's objects.

use std::fs::File;
use std::path::Path;

use crate::store::StoreError;

/// Why a file a user named could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("is {0}, not a regular file")]
    NotAFile(&'static str),
    #[error("is {size} bytes, more than the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl ReadError {
    /// Whether the file is simply not there.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// What a path that is not a regular file is, for the message.
fn file_kind(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() { "a folder" } else { "not a file" }
}

/// Open a file for reading if it is a regular file (a link to one is followed) of at most
/// `limit` bytes; also returns its size. A pipe, device or folder is refused before it is
/// opened, and opened without waiting in case one is swapped in, so nothing can make a read
/// wait forever.
pub fn open_regular(path: &Path, limit: u64) -> Result<(File, u64), ReadError> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(ReadError::NotAFile(file_kind(&meta.file_type())));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    let mut o = std::fs::OpenOptions::new();
    o.read(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.custom_flags(0o4000); // O_NONBLOCK
    }
    let f = o.open(path)?;
    let opened = f.metadata()?;
    if !opened.is_file() {
        return Err(ReadError::NotAFile(file_kind(&opened.file_type())));
    }
    Ok((f, opened.len()))
}

/// Read an opened file from its start, never more than `limit` bytes (a file that grew past
/// the limit since it was opened is refused).
pub fn read_opened(mut f: File, limit: u64) -> Result<Vec<u8>, ReadError> {
    use std::io::{Read, Seek};
    f.rewind()?;
    let len = f.metadata()?.len();
    let mut bytes = Vec::with_capacity(usize::try_from(len.min(limit)).unwrap_or(0));
    f.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// Read a regular file of at most `limit` bytes (see [`open_regular`]).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let p = dir.path().join("note.txt");
/// std::fs::write(&p, "hello").unwrap();
/// assert_eq!(sameframe_core::fsutil::read_capped(&p, 64).unwrap(), b"hello");
/// assert!(sameframe_core::fsutil::read_capped(&p, 2).is_err());
/// assert!(sameframe_core::fsutil::read_capped(dir.path(), 64).is_err());
/// ```
pub fn read_capped(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let (f, _) = open_regular(path, limit)?;
    read_opened(f, limit)
}

/// Read a regular text file of at most `limit` bytes; invalid UTF-8 is an error.
pub fn read_text_capped(path: &Path, limit: u64) -> Result<String, ReadError> {
    String::from_utf8(read_capped(path, limit)?).map_err(|_| {
        ReadError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "is not UTF-8 text",
        ))
    })
}

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
