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

    /// Fingerprint every capture that has none (or an older version).
    pub fn backfill_fingerprints(
        &self,
        progress: &dyn Fn(usize, usize),
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
        for (i, (id, current)) in todo.iter().enumerate() {
            progress(i, todo.len());
            // A current fingerprint needs only its reduced preview; the full preview is decoded
            // only to fingerprint.
            let read = self.thumbnail(id).and_then(|jpeg| {
                let small = small_of(id, &jpeg)?;
                let preview = (!*current).then(|| preview_of(id, &jpeg)).transpose()?;
                Ok((small, preview))
            });
            let (small, preview) = match read {
                Ok(r) => r,
                Err(e) => {
                    report.failed.push(format!("{id}: {e}"));
                    continue;
                }
            };
            let consent_id = self.capture(id)?.consent_id;
            let sealed = self.seal_small(id, &consent_id, &small)?;
            let fp = preview.map(|img| Fingerprint::of(&img));
            self.write(|tx| match &fp {
                None => tx.set_fingerprint_small(id, &sealed),
                Some(f) => self.put_fingerprint_in(tx, id, f, Some(&sealed)),
            })?;
            report.computed += 1;
        }
        if report.computed > 0 {
            self.audit_now(
                "fingerprint.backfill",
                serde_json::json!({}),
                serde_json::json!({ "computed": report.computed, "failed": report.failed.len() }),
            )?;
        }
        Ok(report)
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
fn preview_of(capture_id: &str, jpeg: &[u8]) -> Result<RgbImage, RecordError> {
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
