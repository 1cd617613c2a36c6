//! Perceptual fingerprints of captures: a DCT hash (pHash) and a gradient hash (dHash) of the
//! whole frame, robust to resizing, re-encoding and brightness; plus a compact set of
//! rotation-steered binary keypoint descriptors, robust to crops, aspect changes, overlays and
//! composites, used both to retrieve candidates and to verify them geometrically.

use image::{GrayImage, RgbImage};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

use crate::analysis::pose::features::{self, Descriptor, Features, Keypoint, Pyramid};
use crate::records::RecordError;
use crate::store::Store;

/// Bumped when the fingerprint recipe changes (older rows are recomputed by backfill).
/// Version 2 keeps 160 keypoints for verification (version 1 kept the 48 the index uses);
/// version 3 describes them upright (unsteered), as published images are.
pub const VERSION: i64 = 3;
/// Keypoints kept per capture: all of them verify a candidate.
pub const CAPTURE_KEYPOINTS: usize = 160;
/// The first keypoints of each capture, spread over the frame and the pyramid, go into the
/// index; retrieval needs only a few of them to hit (a crop keeps some of them),
/// verification then uses all of [`CAPTURE_KEYPOINTS`]. (Schema migration 7 keeps a compact
/// copy of exactly these; a change here needs a migration that rewrites it.)
pub const INDEX_KEYPOINTS: usize = 48;
/// Long side of the image fingerprints are computed on.
pub const SIDE: u32 = 512;
/// Long side of the reduced preview a candidate's pixels are verified on.
pub const VERIFY_SIDE: u32 = 128;

/// The capture side's pyramid: full preview resolution, three levels.
pub const CAPTURE_PYRAMID: Pyramid = Pyramid {
    base_scale: 1.0,
    shares: &[0.5, 0.3, 0.2],
    steered: false,
};

/// A fingerprint.
#[derive(Clone, Debug)]
pub struct Fingerprint {
    pub phash: u64,
    pub dhash: u64,
    /// Size of the image the keypoints are measured on.
    pub width: u32,
    pub height: u32,
    pub keypoints: Vec<Keypoint>,
    pub descriptors: Vec<Descriptor>,
}

/// Luma (Rec. 709 weights, as `image`'s `to_luma8`) of an RGB image.
pub fn luma(img: &RgbImage) -> GrayImage {
    let raw: Vec<u8> = img
        .as_raw()
        .chunks_exact(3)
        .map(|p| {
            ((54 * u32::from(p[0]) + 183 * u32::from(p[1]) + 19 * u32::from(p[2]) + 128) >> 8) as u8
        })
        .collect();
    GrayImage::from_raw(img.width(), img.height(), raw)
        .unwrap_or_else(|| GrayImage::new(img.width(), img.height()))
}

pub use crate::analysis::frame::{fit_within, resize_rgb};

/// Reduce to `nw × nh` by averaging the source pixels whose centres fall in each output
/// pixel (every source pixel counts once; enlarging repeats pixels).
pub fn area_resize(gray: &GrayImage, nw: u32, nh: u32) -> GrayImage {
    let (w, h) = gray.dimensions();
    if w == 0 || h == 0 || nw == 0 || nh == 0 {
        return GrayImage::new(nw, nh);
    }
    let span = |i: u32, n: u32, len: u32| {
        let a = (u64::from(i) * u64::from(len) / u64::from(n)) as u32;
        let b = ((u64::from(i + 1) * u64::from(len) / u64::from(n)) as u32).max(a + 1);
        (a.min(len - 1), b.min(len))
    };
    let cols: Vec<(u32, u32)> = (0..nw).map(|x| span(x, nw, w)).collect();
    let raw = gray.as_raw();
    let mut out = Vec::with_capacity((nw * nh) as usize);
    let mut acc = vec![0u32; nw as usize];
    for y in 0..nh {
        let (y0, y1) = span(y, nh, h);
        acc.iter_mut().for_each(|a| *a = 0);
        for yy in y0..y1 {
            let row = &raw[(yy * w) as usize..((yy + 1) * w) as usize];
            for (a, &(x0, x1)) in acc.iter_mut().zip(&cols) {
                *a += row[x0 as usize..x1 as usize]
                    .iter()
                    .map(|&v| u32::from(v))
                    .sum::<u32>();
            }
        }
        for (a, &(x0, x1)) in acc.iter().zip(&cols) {
            let n = (x1 - x0) * (y1 - y0);
            out.push(((a + n / 2) / n) as u8);
        }
    }
    GrayImage::from_raw(nw, nh, out).unwrap_or_else(|| GrayImage::new(nw, nh))
}

/// 64-bit DCT hash: the signs of the 8×8 lowest frequencies of the 32×32 luma against their
/// median.
pub fn phash(gray: &GrayImage) -> u64 {
    let small = area_resize(gray, 32, 32);
    let px: Vec<f64> = small.as_raw().iter().map(|&v| f64::from(v)).collect();
    let cos: Vec<f64> = (0..8 * 32)
        .map(|i| {
            let (u, x) = (i / 32, i % 32);
            (std::f64::consts::PI * (2 * x + 1) as f64 * u as f64 / 64.0).cos()
        })
        .collect();
    // Rows then columns, only the 8 lowest frequencies each way.
    let mut rows = vec![0f64; 32 * 8];
    for y in 0..32 {
        for u in 0..8 {
            rows[y * 8 + u] = (0..32).map(|x| px[y * 32 + x] * cos[u * 32 + x]).sum();
        }
    }
    let mut coef = [0f64; 64];
    for v in 0..8 {
        for u in 0..8 {
            coef[v * 8 + u] = (0..32).map(|y| rows[y * 8 + u] * cos[v * 32 + y]).sum();
        }
    }
    let mut ac: Vec<f64> = coef[1..].to_vec();
    ac.sort_by(f64::total_cmp);
    let median = (ac[31] + ac[32]) / 2.0;
    coef.iter()
        .enumerate()
        .fold(0u64, |h, (i, &c)| if c > median { h | (1 << i) } else { h })
}

/// 64-bit gradient hash: left-to-right brightness steps of a 9×8 luma.
pub fn dhash(gray: &GrayImage) -> u64 {
    let small = area_resize(gray, 9, 8);
    let mut h = 0u64;
    for y in 0..8 {
        for x in 0..8 {
            if small.get_pixel(x, y).0[0] < small.get_pixel(x + 1, y).0[0] {
                h |= 1 << (y * 8 + x);
            }
        }
    }
    h
}

/// Hamming distance of two 64-bit hashes.
pub fn hamming64(a: u64, b: u64) -> u32 {
    (a ^ b).count_ones()
}

impl Fingerprint {
    /// Fingerprint an upright image (reduced to [`SIDE`] first).
    pub fn of(img: &RgbImage) -> Self {
        let img = fit_within(img, SIDE);
        let gray = luma(&img);
        let all = |_: f32, _: f32| true;
        // The indexed keypoints are spread over the frame and the pyramid as the extractor
        // spreads them (a crop keeps some of them); the rest follow, as spread, up to
        // CAPTURE_KEYPOINTS.
        let indexed = features::extract_with(&gray, INDEX_KEYPOINTS, &all, &CAPTURE_PYRAMID);
        let more = features::extract_with(&gray, CAPTURE_KEYPOINTS, &all, &CAPTURE_PYRAMID);
        let feats = spread_first(indexed, more, CAPTURE_KEYPOINTS);
        Fingerprint {
            phash: phash(&gray),
            dhash: dhash(&gray),
            width: img.width(),
            height: img.height(),
            keypoints: feats.keypoints,
            descriptors: feats.descriptors,
        }
    }

    /// The keypoints and descriptors as `Features`.
    pub fn features(&self) -> Features {
        Features {
            keypoints: self.keypoints.clone(),
            descriptors: self.descriptors.clone(),
        }
    }

    /// The stored form: (keypoints, descriptors) as little-endian bytes.
    pub fn encode(&self) -> (Vec<u8>, Vec<u8>) {
        let mut kp = Vec::with_capacity(self.keypoints.len() * 8);
        for k in &self.keypoints {
            kp.extend_from_slice(&((k.x * 8.0).round().clamp(0.0, 65535.0) as u16).to_le_bytes());
            kp.extend_from_slice(&((k.y * 8.0).round().clamp(0.0, 65535.0) as u16).to_le_bytes());
            kp.push(k.level);
            let a = (k.angle.rem_euclid(std::f32::consts::TAU) / std::f32::consts::TAU * 256.0)
                as u32
                % 256;
            kp.push(a as u8);
            kp.extend_from_slice(&0u16.to_le_bytes());
        }
        let mut ds = Vec::with_capacity(self.descriptors.len() * 32);
        for d in &self.descriptors {
            for w in d {
                ds.extend_from_slice(&w.to_le_bytes());
            }
        }
        (kp, ds)
    }

    /// The inverse of [`Fingerprint::encode`] (keypoint responses are not stored).
    pub fn decode(phash: i64, dhash: i64, width: u32, height: u32, kp: &[u8], ds: &[u8]) -> Self {
        Fingerprint {
            phash: phash as u64,
            dhash: dhash as u64,
            width,
            height,
            keypoints: kp.chunks_exact(8).map(keypoint_from).collect(),
            descriptors: ds.chunks_exact(32).map(descriptor_from).collect(),
        }
    }
}

/// A keypoint's position from its stored bytes (see [`Fingerprint::encode`]).
pub fn position_from(c: &[u8]) -> [f32; 2] {
    let at = |i: usize| f32::from(u16::from_le_bytes([c[i], c[i + 1]])) / 8.0;
    [at(0), at(2)]
}

/// A keypoint from its 8 stored bytes.
fn keypoint_from(c: &[u8]) -> Keypoint {
    let [x, y] = position_from(c);
    Keypoint {
        x,
        y,
        level: c[4],
        angle: f32::from(c[5]) / 256.0 * std::f32::consts::TAU,
        response: 0.0,
    }
}

/// A descriptor from its 32 stored bytes.
pub fn descriptor_from(c: &[u8]) -> Descriptor {
    std::array::from_fn(|w| u64::from_le_bytes(c[w * 8..w * 8 + 8].try_into().unwrap_or([0; 8])))
}

/// A preview JPEG decoded at about [`VERIFY_SIDE`] on its long side (DCT scaling), as luma.
pub fn small_preview_of_jpeg(jpeg: &[u8]) -> Result<GrayImage, String> {
    crate::ingest::decode_jpeg_scaled(jpeg, VERIFY_SIDE).map(|i| i.to_luma8())
}

/// A reduced preview as stored: width and height (little-endian `u16`), then the luma rows.
pub fn encode_small(g: &GrayImage) -> Vec<u8> {
    let dim = |v: u32| u16::try_from(v).unwrap_or(0).to_le_bytes();
    let mut out = Vec::with_capacity(4 + g.as_raw().len());
    out.extend(dim(g.width()));
    out.extend(dim(g.height()));
    out.extend(g.as_raw());
    out
}

/// The inverse of [`encode_small`]; `None` when the bytes do not hold what they claim.
pub fn decode_small(bytes: &[u8]) -> Option<GrayImage> {
    let dim = |at: usize| {
        Some(u32::from(u16::from_le_bytes([
            *bytes.get(at)?,
            *bytes.get(at + 1)?,
        ])))
    };
    let (w, h) = (dim(0)?, dim(2)?);
    let px = bytes.get(4..)?;
    (px.len() as u64 == u64::from(w) * u64::from(h))
        .then(|| GrayImage::from_raw(w, h, px.to_vec()))?
}

/// `first`, then the keypoints of `more` it does not already have, up to `n` in all.
fn spread_first(first: Features, more: Features, n: usize) -> Features {
    let mut out = first;
    for (k, d) in more.keypoints.into_iter().zip(more.descriptors) {
        if out.keypoints.len() >= n {
            break;
        }
        let dup = out
            .keypoints
            .iter()
            .any(|o| o.level == k.level && o.x == k.x && o.y == k.y);
        if !dup {
            out.keypoints.push(k);
            out.descriptors.push(d);
        }
    }
    out
}

/// The captures (joined with their fingerprint rows) that backfill brings up to date: no
/// fingerprint, one older than [`VERSION`] (`?1`), or no stored reduced preview.
const TO_BACKFILL: &str = "LEFT JOIN fingerprint ON fingerprint.capture_id = capture.id
     WHERE fingerprint.capture_id IS NULL OR fingerprint.version < ?1 OR fingerprint.small IS NULL";

/// What a backfill did.
#[derive(Clone, Debug, Serialize)]
pub struct BackfillReport {
    /// Captures fingerprinted, or whose fingerprint got its missing reduced preview.
    pub computed: usize,
    pub already: usize,
    pub failed: Vec<String>,
}

impl Store {
    /// Store (or replace) a capture's fingerprint and its reduced preview `small` (see
    /// [`small_preview_of_jpeg`]; `None` leaves it to backfill) inside a transaction. The
    /// preview is a picture of the patient: it is sealed with the consent's data key, like the
    /// thumbnail, and a purge deletes it with the row.
    pub fn put_fingerprint_in(
        &self,
        tx: &rusqlite::Transaction<'_>,
        capture_id: &str,
        consent_id: &str,
        f: &Fingerprint,
        small: Option<&GrayImage>,
    ) -> Result<(), RecordError> {
        let (kp, ds) = f.encode();
        let small = small
            .map(|g| self.seal_small(capture_id, consent_id, g))
            .transpose()?;
        tx.execute(
            "INSERT INTO fingerprint (capture_id, version, phash, dhash, width, height, keypoints, descriptors, created_at, small)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT(capture_id) DO UPDATE SET version = excluded.version, phash = excluded.phash,
               dhash = excluded.dhash, width = excluded.width, height = excluded.height,
               keypoints = excluded.keypoints, descriptors = excluded.descriptors,
               created_at = excluded.created_at, small = excluded.small",
            params![capture_id, VERSION, f.phash as i64, f.dhash as i64, f.width, f.height, kp, ds, crate::timefmt::now_utc(), small],
        )?;
        Ok(())
    }

    /// A reduced preview as stored: sealed with the consent's data key, bound to its capture.
    fn seal_small(
        &self,
        capture_id: &str,
        consent_id: &str,
        g: &GrayImage,
    ) -> Result<Vec<u8>, RecordError> {
        let label = crate::store::small_preview_label(capture_id);
        Ok(self.seal_cache(&encode_small(g), &label, consent_id)?)
    }

    /// A capture's fingerprint.
    pub fn fingerprint(&self, capture_id: &str) -> Result<Option<Fingerprint>, RecordError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT phash, dhash, width, height, keypoints, descriptors FROM fingerprint WHERE capture_id = ?1",
                [capture_id],
                |r| {
                    let kp: Vec<u8> = r.get(4)?;
                    let ds: Vec<u8> = r.get(5)?;
                    Ok(Fingerprint::decode(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, &kp, &ds))
                },
            )
            .optional()?)
    }

    /// Captures with no fingerprint, one from an older recipe, or no stored reduced preview.
    pub fn fingerprints_to_backfill(&self) -> Result<usize, RecordError> {
        let n: i64 = self.conn().query_row(
            &format!("SELECT COUNT(*) FROM capture {TO_BACKFILL}"),
            [VERSION],
            |r| r.get(0),
        )?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    /// Fingerprint every capture that has none (or an older version).
    pub fn backfill_fingerprints(
        &self,
        progress: &dyn Fn(usize, usize),
    ) -> Result<BackfillReport, RecordError> {
        // (capture, whether its fingerprint is current and only its reduced preview is missing)
        let todo: Vec<(String, bool)> = {
            let mut st = self.conn().prepare(&format!(
                "SELECT capture.id, fingerprint.version >= ?1 FROM capture {TO_BACKFILL}
                 ORDER BY capture.imported_at"
            ))?;
            st.query_map([VERSION], |r| {
                Ok((r.get(0)?, r.get::<_, Option<bool>>(1)?.unwrap_or(false)))
            })?
            .collect::<Result<_, _>>()?
        };
        let total_caps: i64 = self
            .conn()
            .query_row("SELECT COUNT(*) FROM capture", [], |r| r.get(0))?;
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
            let tx = self.write_tx()?;
            match preview {
                None => {
                    let sealed = self.seal_small(id, &consent_id, &small)?;
                    tx.execute(
                        "UPDATE fingerprint SET small = ?2 WHERE capture_id = ?1",
                        params![id, sealed],
                    )?;
                }
                Some(img) => {
                    let f = Fingerprint::of(&img);
                    self.put_fingerprint_in(&tx, id, &consent_id, &f, Some(&small))?;
                }
            }
            tx.commit()?;
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

    /// The capture's preview reduced to about [`VERIFY_SIDE`] on its long side, as luma: the
    /// one stored with its fingerprint, or (for rows from before it was stored) the thumbnail
    /// decoded with DCT scaling.
    pub fn small_preview(&self, capture_id: &str) -> Result<GrayImage, RecordError> {
        let stored: Option<Vec<u8>> = self
            .conn()
            .prepare_cached("SELECT small FROM fingerprint WHERE capture_id = ?1")?
            .query_row([capture_id], |r| r.get(0))
            .optional()?
            .flatten();
        if let Some(sealed) = stored {
            let bytes = self.open_cache(sealed, &crate::store::small_preview_label(capture_id))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn texture() -> RgbImage {
        image::load_from_memory(include_bytes!("../../../../fixtures/textures/chelsea.jpg"))
            .unwrap()
            .to_rgb8()
    }

    #[test]
    fn hashes_survive_resize_brightness_and_jpeg() {
        let img = texture();
        let f = Fingerprint::of(&img);
        let small = image::imageops::resize(&img, 200, 133, image::imageops::FilterType::Triangle);
        let darker = RgbImage::from_fn(img.width(), img.height(), |x, y| {
            image::Rgb(img.get_pixel(x, y).0.map(|v| (f32::from(v) * 0.8) as u8))
        });
        for other in [small, darker] {
            let g = Fingerprint::of(&other);
            assert!(
                hamming64(f.phash, g.phash) <= 6,
                "phash {}",
                hamming64(f.phash, g.phash)
            );
            assert!(
                hamming64(f.dhash, g.dhash) <= 8,
                "dhash {}",
                hamming64(f.dhash, g.dhash)
            );
        }
        let unrelated = Fingerprint::of(
            &image::load_from_memory(include_bytes!("../../../../fixtures/textures/rocket.jpg"))
                .unwrap()
                .to_rgb8(),
        );
        assert!(hamming64(f.phash, unrelated.phash) > 16);
    }

    #[test]
    fn encoding_round_trips() {
        let f = Fingerprint::of(&texture());
        assert!(f.keypoints.len() >= 30, "{}", f.keypoints.len());
        let (kp, ds) = f.encode();
        let g = Fingerprint::decode(f.phash as i64, f.dhash as i64, f.width, f.height, &kp, &ds);
        assert_eq!(g.descriptors, f.descriptors);
        assert_eq!((g.phash, g.dhash), (f.phash, f.dhash));
        for (a, b) in f.keypoints.iter().zip(&g.keypoints) {
            assert!((a.x - b.x).abs() < 0.07 && (a.y - b.y).abs() < 0.07 && a.level == b.level);
        }
    }
}
