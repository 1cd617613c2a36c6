//! Follow-ups that are not new photos: an earlier capture's pixels rotated, scaled or
//! shifted, with a gain change and noise — made by mistake, or to fake an "after". Found when
//! a capture's derived data is made (at import, or by the backfill an import deferred), by
//! the fine-detail test of [`crate::analysis::copy_check`], kept in the capture's record,
//! audited, and reported by `pair`, the review and the station.

use image::RgbImage;
use serde_json::json;

use super::capture::CopyOf;
use super::{Capture, RecordError};
use crate::analysis::copy_check;
use crate::store::Store;

/// The least fine-detail correlation at which a photo is another's copy. Measured on 512-px
/// previews (`cargo test -p sameframe-core measured -- --ignored --nocapture`): copies of real
/// portraits (rotated up to 4.8°, scaled 0.92–1.08, gain 0.95–1.1, noise σ 1–6, JPEG 88)
/// 0.63–0.99; new photos of the same person in other sessions −0.02 to 0.01; the review
/// tests' synthetic sittings (a rigid move plus a 1-px wobble) 0.32–0.46.
pub const COPY_DETAIL: f64 = 0.55;

/// Earlier captures compared, the most recent first.
const CANDIDATES: usize = 8;

fn day(at: &str) -> &str {
    at.get(..10).unwrap_or(at)
}

impl Store {
    /// The earlier capture of `cap`'s series, taken on another day, whose pixels `preview`
    /// (the capture's upright preview) is; `None` for a new photo.
    pub fn find_copy_of(
        &self,
        cap: &Capture,
        preview: &RgbImage,
    ) -> Result<Option<CopyOf>, RecordError> {
        let ids = self.read(|r| r.look_alikes(&cap.id))?;
        let mut best: Option<CopyOf> = None;
        let mut compared = 0;
        for id in ids.iter().rev() {
            if compared == CANDIDATES {
                break;
            }
            let c = self.capture(id)?;
            if c.captured_at >= cap.captured_at || day(&c.captured_at) == day(&cap.captured_at) {
                continue;
            }
            compared += 1;
            let Ok(earlier) = self.preview(&c.id) else {
                continue;
            };
            let Some(m) = copy_check::measure(&earlier, preview) else {
                continue;
            };
            if m.detail_correlation >= COPY_DETAIL
                && m.overlap >= 0.3
                && best
                    .as_ref()
                    .is_none_or(|b| m.detail_correlation > b.detail_correlation)
            {
                let (rotation_deg, scale) = m.rotation_scale();
                best = Some(CopyOf {
                    capture_id: c.id,
                    rotation_deg,
                    scale,
                    detail_correlation: m.detail_correlation,
                });
            }
        }
        Ok(best)
    }

    /// Keep the finding in the capture's record, audited.
    pub fn record_copy_of(&self, capture_id: &str, copy: &CopyOf) -> Result<(), RecordError> {
        self.write(|tx| {
            let mut c = self.capture_in(tx.repos(), capture_id)?;
            c.copy_of = Some(copy.clone());
            self.update_capture_in(tx, &c)?;
            tx.audit(
                "capture.copy_of",
                json!({ "capture": capture_id, "copy_of": copy.capture_id }),
                json!({ "rotation_deg": copy.rotation_deg, "scale": copy.scale,
                        "detail_correlation": copy.detail_correlation }),
            )?;
            Ok::<_, RecordError>(())
        })
    }
}
