//! # sameframe-store
//!
//! The two storage backends behind the core's traits, and how a data directory says which one
//! it uses:
//!
//! - **embedded** (the default): `sameframe.db` (SQLite) and a blob folder in the data
//!   directory; nothing to install;
//! - **shared**: PostgreSQL for rows and the audit chain, an S3-compatible bucket for sealed
//!   blobs; the data directory only holds `sameframe.toml` saying where they are.
//!
//! Only this crate depends on rusqlite, postgres and object_store, and only its backend
//! modules name them; SQL is written once, in [`sql`], for both.

pub mod config;
mod folder;
pub mod pg;
pub mod s3;
pub mod sql;
mod sqlite;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sameframe_core::ids::new_id;
use sameframe_core::store::transfer::{Progress, TransferReport};
use sameframe_core::store::{
    Backend, BlobError, BlobKey, BlobStore, DB_FILE, Encryption, OpenOptions, Put, Store,
    StoreError, StoreParts,
};

pub use config::{SharedSpec, StationConfig};

/// Which backend a new store (or a copy) uses.
#[derive(Clone, Debug)]
pub enum Target {
    Embedded,
    Shared(SharedSpec),
}

/// The marker object a shared store keeps in its bucket prefix: which store the objects
/// belong to.
#[derive(serde::Serialize, serde::Deserialize)]
struct Marker {
    store_id: String,
    created_at: String,
}

/// Create `path` (and missing parents) readable by its owner only.
pub fn private_dir(path: &Path) -> Result<(), StoreError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(path).map_err(StoreError::io(path))
}

/// Write a new file readable by its owner only.
pub fn private_file(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    let mut f = o.open(path).map_err(StoreError::io(path))?;
    f.write_all(bytes).map_err(StoreError::io(path))?;
    f.sync_all().map_err(StoreError::io(path))
}

/// This station's configuration, made (with a new station ID) when missing.
fn station_config(data_dir: &Path) -> Result<StationConfig, StoreError> {
    match StationConfig::load(data_dir)? {
        Some(c) if !c.station.id.is_empty() => Ok(c),
        found => {
            let mut c = found.unwrap_or_default();
            c.station.id = new_id("sta")?;
            c.save(data_dir)?;
            Ok(c)
        }
    }
}

/// Open the store the data directory `data_dir` uses.
pub fn open(data_dir: &Path, opts: OpenOptions) -> Result<Store, StoreError> {
    let cfg = StationConfig::load(data_dir)?;
    let shared = cfg.as_ref().and_then(|c| c.store.clone());
    if shared.is_none() && !data_dir.join(DB_FILE).is_file() {
        return Err(StoreError::NotInitialized {
            path: data_dir.to_path_buf(),
        });
    }
    let cfg = station_config(data_dir)?;
    let parts = match &cfg.store {
        None => embedded_parts(data_dir, &cfg, false)?,
        Some(spec) => shared_parts(data_dir, &cfg, spec)?,
    };
    if parts.backend.is_shared() {
        // An unfinished copy says so before anything else is checked.
        let location = parts.backend.location();
        parts
            .backend
            .read(&mut |r| sameframe_core::store::transfer::check_complete(r, &location))?;
        check_marker(&parts)?;
    }
    Store::open_parts(parts, opts)
}

fn embedded_parts(
    data_dir: &Path,
    cfg: &StationConfig,
    create: bool,
) -> Result<StoreParts, StoreError> {
    let backend = sqlite::Sqlite::open(&data_dir.join(DB_FILE), create)?;
    Ok(StoreParts {
        local: data_dir.to_path_buf(),
        backend: Box::new(backend),
        blobs: Arc::new(folder::Folder::open(data_dir)?),
        station: cfg.station.id.clone(),
        key_file: cfg.station.key_file.clone(),
    })
}

fn shared_parts(
    data_dir: &Path,
    cfg: &StationConfig,
    spec: &SharedSpec,
) -> Result<StoreParts, StoreError> {
    let path = data_dir.join(config::CONFIG_FILE);
    spec.validate(&path)?;
    let backend = pg::Postgres::open(spec.database(&path)?)?;
    let blobs = s3::S3::new(spec.bucket(&path)?)?;
    Ok(StoreParts {
        local: data_dir.to_path_buf(),
        backend: Box::new(backend),
        blobs: Arc::new(blobs),
        station: cfg.station.id.clone(),
        key_file: cfg.station.key_file.clone(),
    })
}

/// True when `data_dir` holds what a copy into it leaves before it names the store: a database
/// with no store in it and no configuration yet (a `migrate` stopped at its very start).
fn copy_began_in(data_dir: &Path) -> Result<bool, StoreError> {
    if !data_dir.join(DB_FILE).is_file() || data_dir.join(config::CONFIG_FILE).exists() {
        return Ok(false);
    }
    let backend = sqlite::Sqlite::open(&data_dir.join(DB_FILE), false)?;
    let mut empty = false;
    backend.read(&mut |r| {
        empty = r.meta("store_id")?.is_none() && r.audit_head()?.is_none();
        Ok(())
    })?;
    Ok(empty)
}

/// Mark a migration target that holds no store yet as an unfinished copy.
fn mark_unfinished(backend: &dyn Backend) -> Result<(), StoreError> {
    backend.write(&mut |r| match r.meta("store_id")? {
        None => r.set_meta(sameframe_core::store::transfer::INCOMPLETE, "started"),
        Some(_) => Ok(()),
    })
}

/// The store ID in a backend's rows.
fn store_id_of(parts: &StoreParts) -> Result<Option<String>, StoreError> {
    let mut id = None;
    parts.backend.read(&mut |r| {
        id = r.meta("store_id")?;
        Ok(())
    })?;
    Ok(id)
}

/// The store a bucket prefix's marker names, if it has one.
fn marker_of(blobs: &dyn BlobStore) -> Result<Option<String>, StoreError> {
    match blobs.get(&BlobKey::Marker) {
        Ok(b) => {
            let m: Marker = serde_json::from_slice(&b).map_err(|_| StoreError::Tampered {
                what: blobs.location_of(&BlobKey::Marker),
                why: "it is not a sameframe store marker".into(),
            })?;
            Ok(Some(m.store_id))
        }
        Err(BlobError::Missing { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The rows and the bucket must belong to the same store.
fn check_marker(parts: &StoreParts) -> Result<(), StoreError> {
    let rows = store_id_of(parts)?;
    let objects = marker_of(parts.blobs.as_ref())?;
    if rows.is_some() && rows == objects {
        return Ok(());
    }
    Err(StoreError::Tampered {
        what: parts.blobs.location(),
        why: format!(
            "it holds the objects of store {}, but {} holds store {}: check blob_url and database_url",
            objects.as_deref().unwrap_or("(none)"),
            parts.backend.location(),
            rows.as_deref().unwrap_or("(none)")
        ),
    })
}

/// Claim an empty bucket prefix for `store_id` (a conditional put of the marker), after
/// checking that the server honours conditional puts.
fn claim_bucket(blobs: &dyn BlobStore, store_id: &str) -> Result<(), StoreError> {
    if let Some(other) = marker_of(blobs)? {
        if other == store_id {
            return Ok(());
        }
        return Err(StoreError::AlreadyInitialized {
            what: blobs.location(),
            hint: format!(" (store {other}): choose another bucket or prefix"),
        });
    }
    let marker = serde_json::to_vec_pretty(&Marker {
        store_id: store_id.to_string(),
        created_at: sameframe_core::timefmt::now_utc(),
    })
    .unwrap_or_default();
    if blobs.put(&BlobKey::Marker, &marker)? == Put::AlreadyPresent {
        return Err(StoreError::AlreadyInitialized {
            what: blobs.location(),
            hint: " (another station claimed it at the same moment)".into(),
        });
    }
    if blobs.put(&BlobKey::Marker, b"{}")? == Put::Written {
        let _ = blobs.replace(&BlobKey::Marker, &marker);
        return Err(StoreError::Tampered {
            what: blobs.location(),
            why: "the server overwrote an object on a conditional put (If-None-Match): two stations could overwrite each other's photos; use a server that supports conditional writes".into(),
        });
    }
    Ok(())
}

/// A new store's ID.
fn new_store_id() -> Result<String, StoreError> {
    Ok(new_id("store")?)
}

/// Check that `data_dir` can take a new station: absent or empty.
fn fresh_dir(data_dir: &Path) -> Result<bool, StoreError> {
    if data_dir.join(DB_FILE).exists() || data_dir.join(config::CONFIG_FILE).exists() {
        return Err(StoreError::AlreadyInitialized {
            what: data_dir.display().to_string(),
            hint: String::new(),
        });
    }
    if data_dir.exists() {
        let mut entries = std::fs::read_dir(data_dir).map_err(StoreError::io(data_dir))?;
        if entries.next().is_some() {
            return Err(StoreError::NotEmpty {
                path: data_dir.to_path_buf(),
            });
        }
        return Ok(true);
    }
    Ok(false)
}

/// Leave a data directory as it was before a failed `init`.
fn undo_dir(data_dir: &Path, existed: bool) {
    for f in [
        DB_FILE,
        "sameframe.db-wal",
        "sameframe.db-shm",
        config::CONFIG_FILE,
    ] {
        let _ = std::fs::remove_file(data_dir.join(f));
    }
    let _ = std::fs::remove_dir(data_dir.join("blobs").join(".tmp"));
    let _ = std::fs::remove_dir(data_dir.join("blobs"));
    if !existed {
        let _ = std::fs::remove_dir(data_dir);
    }
}

/// Create a store for the data directory `data_dir`: an embedded one in it, or a shared one
/// (in an empty database and bucket prefix) it points at. With `join`, connect this station to
/// the shared store already there instead (the key proves it may).
pub fn init(
    data_dir: &Path,
    target: &Target,
    join: bool,
    encryption: Encryption,
    opts: OpenOptions,
) -> Result<Store, StoreError> {
    let existed = fresh_dir(data_dir)?;
    if let Target::Shared(spec) = target {
        spec.validate(&data_dir.join(config::CONFIG_FILE))?;
        if matches!(encryption, Encryption::None) && !join {
            return Err(StoreError::Config {
                path: data_dir.join(config::CONFIG_FILE),
                why: "a shared store must be encrypted (the server may only hold sealed data): choose a key file or a passphrase".into(),
            });
        }
    }
    private_dir(data_dir)?;
    let made = (|| {
        let mut cfg = StationConfig::default();
        cfg.station.id = new_id("sta")?;
        let key_file = match (&encryption, &opts.keys) {
            (Encryption::KeyFile { path }, _) => Some(path.clone()),
            (_, sameframe_core::store::KeySource::KeyFile(path)) => Some(path.clone()),
            _ => None,
        };
        cfg.station.key_file = key_file.map(|p| std::path::absolute(&p).unwrap_or(p));
        match target {
            Target::Embedded => {
                let parts = embedded_parts(data_dir, &cfg, true)?;
                cfg.station.key_file = None;
                cfg.save(data_dir)?;
                Store::create(parts, &new_store_id()?, &encryption, opts)
            }
            Target::Shared(spec) => {
                cfg.store = Some(spec.clone());
                if join {
                    join_shared(data_dir, &cfg, spec, opts)
                } else {
                    create_shared(data_dir, &cfg, spec, &encryption, opts)
                }
            }
        }
    })();
    if made.is_err() {
        undo_dir(data_dir, existed);
    }
    made
}

fn create_shared(
    data_dir: &Path,
    cfg: &StationConfig,
    spec: &SharedSpec,
    encryption: &Encryption,
    opts: OpenOptions,
) -> Result<Store, StoreError> {
    let path = data_dir.join(config::CONFIG_FILE);
    let db = spec.database(&path)?;
    if pg::Postgres::holds_store(&db)? {
        return Err(StoreError::AlreadyInitialized {
            what: db.location().to_string(),
            hint: " (pass --join to connect this station to it)".into(),
        });
    }
    let blobs = s3::S3::new(spec.bucket(&path)?)?;
    if let Some(found) = blobs.any_object()? {
        return Err(StoreError::AlreadyInitialized {
            what: blobs.location(),
            hint: format!(
                " (it already holds objects, e.g. {found}): choose an empty bucket or prefix"
            ),
        });
    }
    let store_id = new_store_id()?;
    claim_bucket(&blobs, &store_id)?;
    let made = (|| {
        let backend = pg::Postgres::create(db.clone())?;
        let parts = StoreParts {
            local: data_dir.to_path_buf(),
            backend: Box::new(backend),
            blobs: Arc::new(s3::S3::new(spec.bucket(&path)?)?),
            station: cfg.station.id.clone(),
            key_file: cfg.station.key_file.clone(),
        };
        let store = Store::create(parts, &store_id, encryption, opts)?;
        cfg.save(data_dir)?;
        Ok(store)
    })();
    if made.is_err() {
        let _ = blobs.delete(&BlobKey::Marker);
    }
    made
}

fn join_shared(
    data_dir: &Path,
    cfg: &StationConfig,
    spec: &SharedSpec,
    opts: OpenOptions,
) -> Result<Store, StoreError> {
    let parts = shared_parts(data_dir, cfg, spec)?;
    check_marker(&parts)?;
    // Opening proves the key; only then does this station keep the configuration.
    let store = Store::open_parts(parts, opts)?;
    cfg.save(data_dir)?;
    store.audit_now(
        "station.join",
        serde_json::json!({ "station": cfg.station.id }),
        serde_json::json!({}),
    )?;
    Ok(store)
}

/// Copy `from` into a new data directory `to_dir` using `target` (or, resuming, into the copy
/// that an interrupted run left there), checking every blob on arrival.
pub fn migrate(
    from: &Store,
    to_dir: &Path,
    target: Option<&Target>,
    progress: Progress<'_>,
) -> Result<(Store, TransferReport), StoreError> {
    let existing = StationConfig::load(to_dir)?;
    let target = match (target, &existing) {
        (Some(t), _) => t.clone(),
        (None, Some(c)) => c.store.clone().map_or(Target::Embedded, Target::Shared),
        (None, None) => Target::Embedded,
    };
    if matches!(target, Target::Shared(_)) && !from.is_encrypted() {
        return Err(StoreError::Config {
            path: config_path(to_dir),
            why: "a shared store must be encrypted (the servers may only hold sealed data): run `sameframe encrypt` on this store first".into(),
        });
    }
    if existing.is_none() && !copy_began_in(to_dir)? {
        // A new target folder: absent or empty.
        fresh_dir(to_dir)?;
    }
    private_dir(to_dir)?;
    let mut cfg = existing.unwrap_or_default();
    if cfg.station.id.is_empty() {
        cfg.station.id = new_id("sta")?;
    }
    let parts = match &target {
        Target::Embedded => {
            cfg.store = None;
            let p = embedded_parts(to_dir, &cfg, true)?;
            // Marked unfinished before the folder names a store, so a copy stopped anywhere
            // from here on says so when a station opens it.
            mark_unfinished(p.backend.as_ref())?;
            cfg.save(to_dir)?;
            p
        }
        Target::Shared(spec) => {
            cfg.store = Some(spec.clone());
            let path = to_dir.join(config::CONFIG_FILE);
            spec.validate(&path)?;
            let db = spec.database(&path)?;
            let backend = if pg::Postgres::schema_exists(&db)? {
                pg::Postgres::open(db)?
            } else {
                pg::Postgres::create(db)?
            };
            // Marked unfinished before the bucket is claimed, so a copy stopped anywhere from
            // here on says so when a station opens it.
            mark_unfinished(&backend)?;
            let blobs = s3::S3::new(spec.bucket(&path)?)?;
            claim_bucket(&blobs, from.store_id())?;
            cfg.save(to_dir)?;
            StoreParts {
                local: to_dir.to_path_buf(),
                backend: Box::new(backend),
                blobs: Arc::new(blobs),
                station: cfg.station.id.clone(),
                key_file: cfg.station.key_file.clone(),
            }
        }
    };
    from.transfer_to(parts, progress)
}

/// The data directory's configuration file, for messages.
pub fn config_path(data_dir: &Path) -> PathBuf {
    data_dir.join(config::CONFIG_FILE)
}
