//! `sameframe migrate`: copy a store into another backend (embedded into shared, and back, or
//! into a backup folder), byte for byte.
//!
//! Blobs are copied as they are stored (sealed), each read back from the target and checked
//! against its address with the store's keys; rows are copied table by table as stored, so the
//! audit chain, the sealed record bodies and the wrapped keys arrive unchanged and stay bound to
//! the same store ID. The source is held under its write lock while its rows are copied, so the
//! copy is of one moment.
//!
//! Killed at any point, the target says so (`migrate.incomplete` in its meta) and refuses to
//! open; running the same command again resumes: blobs already there are checked, not copied,
//! and rows are copied again from scratch if the source changed meanwhile.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::json;

use super::repo::{BlobKind, Cell, Repos};
use super::{Backend, BlobKey, BlobStore, Put, Store, StoreError, StoreParts};

/// The meta key a target carries until its copy is complete: the source's audit head when the
/// copy began.
pub const INCOMPLETE: &str = "migrate.incomplete";

/// The meta key a complete copy keeps: the source's audit head it was copied at.
const SOURCE_HEAD: &str = "migrate.source_head";

/// Rows copied per unit of work.
const BATCH: usize = 500;

/// What a copy did.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TransferReport {
    /// Rows copied per table.
    pub rows: BTreeMap<String, usize>,
    /// Blobs written to the target, and found there already (each checked).
    pub blobs_copied: usize,
    pub blobs_present: usize,
    /// Previews and certificates copied.
    pub previews: usize,
    pub certificates: usize,
    /// Objects on the target that no row names (left by an earlier, interrupted copy of a
    /// store that has purged since), removed.
    pub orphans_removed: usize,
    /// True when this run finished an earlier, interrupted copy.
    pub resumed: bool,
    pub source: String,
    pub target: String,
}

/// Progress of a copy: (what, done, total).
pub type Progress<'a> = &'a dyn Fn(&str, usize, usize);

impl Store {
    /// Copy this store into the empty (or interrupted) target. The target's store is then
    /// opened with this store's keys and returned, with what was copied.
    pub fn transfer_to(
        &self,
        target: StoreParts,
        progress: Progress<'_>,
    ) -> Result<(Store, TransferReport), StoreError> {
        self.check_keys()?;
        let mut report = TransferReport {
            source: format!("{} + {}", self.location(), self.blob_location()),
            target: format!(
                "{} + {}",
                target.backend.location(),
                target.blobs.location()
            ),
            ..Default::default()
        };
        let (their_id, incomplete) = read_marker(target.backend.as_ref())?;
        match (&their_id, &incomplete) {
            (None, _) => {}
            (Some(id), Some(_)) if id == &self.store_id => report.resumed = true,
            (Some(id), _) if id == &self.store_id => {
                // A complete copy: nothing to do if it is of the store as it is now (a run that
                // was stopped after the copy finished).
                let copied = meta_of(target.backend.as_ref(), SOURCE_HEAD)?;
                if copied.is_some_and(|c| self.copied_at(&c).unwrap_or(false)) {
                    report.resumed = true;
                    let opened = Store::open_parts(target, self.unlocked_options())?;
                    return Ok((opened, report));
                }
                return Err(StoreError::AlreadyInitialized {
                    what: target.backend.location(),
                    hint: " (an older copy of this store is there: choose an empty target)".into(),
                });
            }
            (Some(id), _) => {
                return Err(StoreError::AlreadyInitialized {
                    what: target.backend.location(),
                    hint: format!(" (another store, {id}): choose an empty target"),
                });
            }
        }
        if !report.resumed {
            // Marked unfinished before the first byte is copied.
            target
                .backend
                .write(&mut |r| r.set_meta(INCOMPLETE, "started"))?;
        }
        self.copy_blobs(target.blobs.as_ref(), &mut report, progress)?;
        let head = self.copy_rows(target.backend.as_ref(), incomplete, &mut report, progress)?;
        report.orphans_removed = self.remove_target_orphans(&target)?;
        let finish = |r: &mut dyn Repos| -> Result<(), StoreError> {
            super::audit::append(
                r,
                &self.store_id,
                &self.actor,
                "store.migrate.in",
                json!({ "store": self.store_id }),
                json!({ "from": report.source, "source_head": head, "resumed": report.resumed }),
                Some(self.seal()),
            )?;
            r.set_meta(SOURCE_HEAD, &head)?;
            r.set_meta(INCOMPLETE, "")?;
            Ok(())
        };
        target.backend.write(&mut { finish })?;
        self.audit_now(
            "store.migrate.out",
            json!({ "store": self.store_id }),
            json!({ "to": report.target, "head": head, "rows": report.rows.values().sum::<usize>() }),
        )?;
        let opened = Store::open_parts(target, self.unlocked_options())?;
        Ok((opened, report))
    }

    /// True when the store is as it was at audit head `head`: that is its head, or the only
    /// entry since is the record of that very copy.
    fn copied_at(&self, head: &str) -> Result<bool, StoreError> {
        let last = self.read(|r| {
            super::audit::read(
                r,
                &super::audit::LogFilter {
                    tail: Some(1),
                    ..Default::default()
                },
            )
        })?;
        Ok(match last.first() {
            None => head.is_empty(),
            Some(e) if e.hash == head => true,
            Some(e) => e.action == "store.migrate.out" && e.details["head"] == head,
        })
    }

    /// Options that open a copy of this store with this handle's unlocked key.
    fn unlocked_options(&self) -> super::OpenOptions {
        super::OpenOptions {
            actor: self.actor.clone(),
            keys: match self.keys.master.get() {
                Some(m) => super::KeySource::Master(m.clone()),
                None => super::KeySource::None,
            },
            calibration_dir: None,
            allow_open_key_file: self.keys.allow_open_key_file,
        }
    }

    /// Copy every blob row's object, then previews and certificates; check each blob on
    /// arrival.
    fn copy_blobs(
        &self,
        to: &dyn BlobStore,
        report: &mut TransferReport,
        progress: Progress<'_>,
    ) -> Result<(), StoreError> {
        let rows = self.read(|r| r.blob_rows())?;
        for (i, row) in rows.iter().enumerate() {
            progress("blobs", i, rows.len());
            let key = BlobKey::Blob(row.sha256.clone());
            let raw = self.blobs.get(&key)?;
            // The source copy must be sound before it is copied.
            self.open_blob_file(&row.sha256, raw.clone())?;
            let put = to.put(&key, &raw)?;
            let arrived = to.get(&key)?;
            if self.open_blob_file(&row.sha256, arrived).is_err() {
                // A damaged object from an interrupted copy: write it again, and check again.
                to.replace(&key, &raw)?;
                self.open_blob_file(&row.sha256, to.get(&key)?)?;
            }
            match put {
                Put::Written => report.blobs_copied += 1,
                Put::AlreadyPresent => report.blobs_present += 1,
            }
        }
        progress("blobs", rows.len(), rows.len());
        for (kind, count) in [
            (BlobKind::Thumb, &mut report.previews),
            (BlobKind::Certificate, &mut report.certificates),
        ] {
            for item in self.blobs.list(kind)? {
                let Some(key) = item.key else { continue };
                let bytes = self.blobs.get(&key)?;
                if to.put(&key, &bytes)? == Put::Written {
                    *count += 1;
                }
            }
        }
        Ok(())
    }

    /// Copy every table under the source's write lock; returns the source's audit head.
    fn copy_rows(
        &self,
        to: &dyn Backend,
        incomplete: Option<String>,
        report: &mut TransferReport,
        progress: Progress<'_>,
    ) -> Result<String, StoreError> {
        let mut head = String::new();
        let mut copy = |src: &mut dyn Repos| -> Result<(), StoreError> {
            head = src.audit_head()?.map(|(_, h)| h).unwrap_or_default();
            // A resumed copy whose source changed since starts its rows again.
            let fresh = incomplete.as_deref() != Some(head.as_str());
            let marker = head.clone();
            to.write(&mut |dst| {
                if fresh {
                    dst.transfer_clear()?;
                }
                dst.set_meta(INCOMPLETE, &marker)
            })?;
            for table in src.transfer_tables() {
                let mut after: Option<Vec<Cell>> = None;
                let mut copied = 0usize;
                loop {
                    let rows = src.transfer_rows(table, after.as_deref(), BATCH)?;
                    if rows.is_empty() {
                        break;
                    }
                    to.write(&mut |dst| dst.transfer_insert(table, &rows).map(|_| ()))?;
                    copied += rows.len();
                    progress(table, copied, copied);
                    after = rows.last().cloned();
                }
                report.rows.insert(table.to_string(), copied);
            }
            // The copied meta holds the source's markers; the target keeps its own.
            to.write(&mut |dst| dst.set_meta(INCOMPLETE, &marker))?;
            Ok(())
        };
        self.backend.write(&mut copy)?;
        Ok(head)
    }

    /// Objects on the target that no copied row names.
    fn remove_target_orphans(&self, target: &StoreParts) -> Result<usize, StoreError> {
        let mut known = std::collections::HashSet::new();
        target.backend.read(&mut |r| {
            known = r.blob_rows()?.into_iter().map(|b| b.sha256).collect();
            Ok(())
        })?;
        let mut removed = 0;
        for item in target.blobs.list(BlobKind::Blob)? {
            match &item.key {
                Some(BlobKey::Blob(h)) if known.contains(h) => {}
                Some(k) => {
                    target.blobs.delete(k)?;
                    removed += 1;
                }
                None => target.blobs.remove_leftover(&item.location)?,
            }
        }
        Ok(removed)
    }
}

/// The target's store ID and unfinished-copy marker, if any.
fn read_marker(b: &dyn Backend) -> Result<(Option<String>, Option<String>), StoreError> {
    let mut out = (None, None);
    b.read(&mut |r| {
        out = (
            r.meta("store_id")?,
            r.meta(INCOMPLETE)?.filter(|m| !m.is_empty()),
        );
        Ok(())
    })?;
    Ok(out)
}

fn meta_of(b: &dyn Backend, key: &str) -> Result<Option<String>, StoreError> {
    let mut out = None;
    b.read(&mut |r| {
        out = r.meta(key)?;
        Ok(())
    })?;
    Ok(out)
}

/// Refuse to open a store whose copy is unfinished.
pub fn check_complete(repos: &mut dyn Repos, location: &str) -> Result<(), StoreError> {
    match repos.meta(INCOMPLETE)? {
        Some(m) if !m.is_empty() => Err(StoreError::Tampered {
            what: location.to_string(),
            why: "a `sameframe migrate` into it did not finish: run the same command again".into(),
        }),
        _ => Ok(()),
    }
}
