//! The fingerprints kept with captures (computed by [`crate::analysis::fingerprint`]) and the
//! reduced previews a published image's match is verified on; backfill after the recipe
//! changes.

use image::{GrayImage, RgbImage};
use serde::Serialize;

use super::RecordError;
use crate::analysis::fingerprint::{
    Fingerprint, VERSION, decode_small, encode_small, small_preview_of_jpeg,
};
use crate::store::repo::FingerprintRow;
use crate::store::{Store, StoreError, Tx, small_preview_label};

/// A capture's derived data made by a backfill worker, to record.
struct Made {
    sealed_small: Vec<u8>,
    fingerprint: Option<Fingerprint>,
    /// An earlier capture this one is a copy of (checked when the fingerprint is made).
    copy_of: Option<super::capture::CopyOf>,
}

/// What a backfill did.
#[derive(Clone, Debug, Serialize)]
pub struct BackfillReport {
    /// Captures fingerprinted, or whose fingerprint got its missing reduced preview.
    pub computed: usize,
    pub already: usize,
    pub failed: Vec<String>,
}

impl Store {
    /// Store (or replace) a capture's fingerprint, with its reduced preview `small` already
    /// sealed by [`Store::seal_small`] (`None` leaves it to backfill), inside a unit of work.
    /// The preview is a picture of the patient: it is sealed with the consent's data key, like
    /// the thumbnail, and a purge deletes it with the row.
    pub fn put_fingerprint_in(
        &self,
        tx: &mut Tx<'_>,
        capture_id: &str,
        f: &Fingerprint,
        small: Option<&[u8]>,
    ) -> Result<(), StoreError> {
        let (kp, ds) = f.encode();
        tx.put_fingerprint(&FingerprintRow {
            capture_id: capture_id.to_string(),
            version: VERSION,
            phash: f.phash as i64,
            dhash: f.dhash as i64,
            width: f.width,
            height: f.height,
            keypoints: kp,
            descriptors: ds,
            created_at: crate::timefmt::now_utc(),
            small: small.map(<[u8]>::to_vec),
        })
    }

    /// A reduced preview as stored: sealed with the consent's data key, bound to its capture.
    pub fn seal_small(
        &self,
        capture_id: &str,
        consent_id: &str,
        g: &GrayImage,
    ) -> Result<Vec<u8>, StoreError> {
        let label = small_preview_label(capture_id);
        self.seal_cache(&encode_small(g), &label, consent_id)
    }

    /// A capture's fingerprint.
    pub fn fingerprint(&self, capture_id: &str) -> Result<Option<Fingerprint>, RecordError> {
        let row = self.read(|r| r.fingerprint(capture_id))?;
        Ok(row.map(|f| {
            Fingerprint::decode(
                f.phash,
                f.dhash,
                f.width,
                f.height,
                &f.keypoints,
                &f.descriptors,
            )
        }))
    }

    /// Captures with no fingerprint, one from an older recipe, or no stored reduced preview.
    pub fn fingerprints_to_backfill(&self) -> Result<usize, RecordError> {
        Ok(self.read(|r| r.count_fingerprints_to_backfill(VERSION))?)
    }

    /// Make the derived data of every capture that lacks it: the thumbnail (when not cached),
    /// the fingerprint (none, or an older recipe) and the reduced preview; what an import
    /// deferred, or an upgrade of the recipe asks for. Decoding is spread over `workers`
    /// threads, each with its own read-only handle on the store; this thread records the
    /// results. `progress(done, total)` after each capture.
    pub fn backfill_fingerprints(
        &self,
        workers: usize,
        progress: &(dyn Fn(usize, usize) + Sync),
    ) -> Result<BackfillReport, RecordError> {
        // (capture, whether its fingerprint is current and only its reduced preview is missing)
        let todo = self.read(|r| r.fingerprints_to_backfill(VERSION))?;
        let total_caps = self.read(|r| r.counts())?.captures;
        let mut report = BackfillReport {
            computed: 0,
            already: usize::try_from(total_caps)
                .unwrap_or(0)
                .saturating_sub(todo.len()),
            failed: Vec::new(),
        };
        let readers: Vec<Store> = (0..workers.clamp(1, todo.len().max(1)))
            .filter_map(|_| self.reader().ok())
            .collect();
        let inline = readers.is_empty();
        let next = std::sync::atomic::AtomicUsize::new(0);
        let (tx, rx) = std::sync::mpsc::channel::<(usize, Result<Made, RecordError>)>();
        std::thread::scope(|scope| -> Result<(), RecordError> {
            for store in readers {
                let (tx, next, todo) = (tx.clone(), &next, &todo);
                scope.spawn(move || {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let Some((id, current)) = todo.get(i) else {
                            return;
                        };
                        if tx.send((i, store.derive_one(id, *current))).is_err() {
                            return;
                        }
                    }
                });
            }
            drop(tx);
            let mut done = 0;
            let mut record = |i: usize, d: Result<Made, RecordError>| {
                let id = &todo[i].0;
                match d.and_then(|d| self.record_derived(id, d)) {
                    Ok(()) => report.computed += 1,
                    Err(e) => report.failed.push(format!("{id}: {e}")),
                }
                done += 1;
                progress(done, todo.len());
            };
            // Without a second handle (a store that cannot open one), the work is done here.
            if inline {
                for (i, (id, current)) in todo.iter().enumerate() {
                    record(i, self.derive_one(id, *current));
                }
            }
            for (i, d) in rx {
                record(i, d);
            }
            Ok(())
        })?;
        if report.computed > 0 {
            self.audit_now(
                "fingerprint.backfill",
                serde_json::json!({}),
                serde_json::json!({ "computed": report.computed, "failed": report.failed.len() }),
            )?;
        }
        Ok(report)
    }

    /// Make what imports deferred (and what an older recipe lacks) before anything is matched
    /// against the captures, on every core; how many captures got their data.
    pub fn derive_pending(&self) -> Result<usize, RecordError> {
        if self.fingerprints_to_backfill()? == 0 {
            return Ok(0);
        }
        let workers = std::thread::available_parallelism().map_or(2, usize::from);
        Ok(self.backfill_fingerprints(workers, &|_, _| {})?.computed)
    }

    /// One capture's missing data, made (see [`Store::backfill_fingerprints`]): reads only,
    /// besides caching the thumbnail.
    fn derive_one(&self, id: &str, current: bool) -> Result<Made, RecordError> {
        let cap = self.capture(id)?;
        // A current fingerprint needs only its reduced preview, from the thumbnail; a missing
        // or outdated one is made from the original, exactly as an import makes it.
        let (small, fingerprint, copy_of) = if current {
            (small_of(id, &self.thumbnail(id)?)?, None, None)
        } else {
            let d = self.derive_stored(&cap)?;
            // What an import that derived at once would have found.
            let copy_of = match (&cap.copy_of, preview_of(id, &d.thumbnail_jpeg)) {
                (None, Ok(p)) => self.find_copy_of(&cap, &p)?,
                _ => None,
            };
            let small = match d.small {
                Some(s) => s,
                None => small_of(id, &d.thumbnail_jpeg)?,
            };
            (small, Some(d.fingerprint), copy_of)
        };
        Ok(Made {
            sealed_small: self.seal_small(id, &cap.consent_id, &small)?,
            fingerprint,
            copy_of,
        })
    }

    fn record_derived(&self, id: &str, d: Made) -> Result<(), RecordError> {
        self.write(|tx| match &d.fingerprint {
            None => tx.set_fingerprint_small(id, &d.sealed_small),
            Some(f) => self.put_fingerprint_in(tx, id, f, Some(&d.sealed_small)),
        })?;
        if let Some(c) = &d.copy_of {
            self.record_copy_of(id, c)?;
        }
        Ok(())
    }

    /// The capture's preview reduced to about
    /// [`VERIFY_SIDE`](crate::analysis::fingerprint::VERIFY_SIDE) on its long side, as luma:
    /// the one stored with its fingerprint, or (for rows from before it was stored) the
    /// thumbnail decoded with DCT scaling.
    pub fn small_preview(&self, capture_id: &str) -> Result<GrayImage, RecordError> {
        if let Some(sealed) = self.read(|r| r.fingerprint_small(capture_id))? {
            let bytes = self.open_cache(sealed, &small_preview_label(capture_id))?;
            return decode_small(&bytes).ok_or_else(|| RecordError::Invalid {
                what: format!("stored reduced preview of capture {capture_id}"),
                why: "its size does not match its pixels".into(),
            });
        }
        small_of(capture_id, &self.thumbnail(capture_id)?)
    }

    /// The capture's upright preview (long side 512) as pixels.
    pub fn preview(&self, capture_id: &str) -> Result<RgbImage, RecordError> {
        preview_of(capture_id, &self.thumbnail(capture_id)?)
    }
}

/// A capture's thumbnail JPEG decoded as pixels.
pub(crate) fn preview_of(capture_id: &str, jpeg: &[u8]) -> Result<RgbImage, RecordError> {
    image::load_from_memory(jpeg)
        .map(|i| i.to_rgb8())
        .map_err(|e| bad_preview(capture_id, e.to_string()))
}

/// A capture's thumbnail JPEG reduced as [`Store::small_preview`] stores it.
fn small_of(capture_id: &str, jpeg: &[u8]) -> Result<GrayImage, RecordError> {
    small_preview_of_jpeg(jpeg).map_err(|why| bad_preview(capture_id, why))
}

/// The error for a capture whose thumbnail does not decode.
fn bad_preview(capture_id: &str, why: String) -> RecordError {
    RecordError::Invalid {
        what: format!("preview of capture {capture_id}"),
        why,
    }
}
