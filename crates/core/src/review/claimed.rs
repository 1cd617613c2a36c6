//! The captures a signed provenance manifest names, checked on the published pixels by the
//! manifest's own geometry (which part of each capture went where): a prepared copy is traced
//! from its manifest, and a manifest that names a capture the pixels do not show is caught.

use image::RgbImage;

use super::matching::{Affine, SourceMatch};
use super::report::Published;
use crate::analysis::pose::similarity::Sim;
use crate::publish::deid::MASK_FILL;
use crate::publish::provenance::{ClaimedCapture, ProvenanceClaim};
use crate::records::RecordError;
use crate::store::Store;

/// Correlation the claimed capture's pixels must reach in its panel.
const MIN_NCC: f64 = 0.9;
/// Samples per side of a panel's grid, at most (one per reviewed pixel at least)…
const GRID: u32 = 256;
/// …and in a masked copy, where only the treated zone shows.
const GRID_MASKED: u32 = 1024;
/// Preview pixels across a claimed crop below which the original is read instead.
const MIN_PREVIEW_SPAN: f64 = 256.0;

fn luma(p: [u8; 3]) -> f64 {
    0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])
}

/// A masked pixel (the flat grey of de-identification), after re-encoding.
fn masked(p: [u8; 3]) -> bool {
    p.iter().zip(MASK_FILL.0).all(|(v, m)| v.abs_diff(m) <= 6)
}

/// Pixels this close to a masked one carry the mask's JPEG ringing, not the photo's.
const MASK_RING: usize = 3;

/// Which pixels of `region` ([x, y, w, h] of `img`) are masked or within [`MASK_RING`] of a
/// masked pixel, row-major over the region (a separable max filter).
fn near_mask(img: &RgbImage, region: [u32; 4]) -> Vec<bool> {
    let [x0, y0, w, h] = region.map(|v| v as usize);
    let at = |x: usize, y: usize| masked(img.get_pixel(x as u32, y as u32).0);
    let grey: Vec<bool> = (0..h)
        .flat_map(|y| (0..w).map(move |x| (x, y)))
        .map(|(x, y)| at(x0 + x, y0 + y))
        .collect();
    let spread = |src: &[bool], step: usize, len: usize, lines: usize, stride: usize| {
        let mut out = vec![false; src.len()];
        for l in 0..lines {
            for i in 0..len {
                let lo = i.saturating_sub(MASK_RING);
                let hi = (i + MASK_RING).min(len - 1);
                out[l * stride + i * step] = (lo..=hi).any(|k| src[l * stride + k * step]);
            }
        }
        out
    };
    let rows = spread(&grey, 1, w, h, w);
    spread(&rows, w, h, w, 1)
}

/// Correlation and RMS residual (after gain and offset) of paired samples.
fn ncc(a: &[f64], b: &[f64]) -> Option<(f64, f64)> {
    let n = a.len() as f64;
    if a.len() < 64 {
        return None;
    }
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    if saa < 1e-6 || sbb < 1e-6 {
        return None;
    }
    let r = sab / (saa * sbb).sqrt();
    let residual = (sbb / n * (1.0 - r * r).max(0.0)).sqrt();
    Some((r, residual))
}

/// Preview pixels → reviewed pixels for a claimed capture.
fn transform_of(c: &ClaimedCapture, preview_per_capture: f64, scale: f64) -> Affine {
    let [px, py, pw, _] = c.panel.map(f64::from);
    let [cx, cy, cw, _] = c.crop.map(f64::from);
    let k = pw / cw.max(1.0);
    let m = k / preview_per_capture / scale;
    Affine {
        m: [[m, 0.0], [0.0, m]],
        t: [(px - cx * k) / scale, (py - cy * k) / scale],
    }
}

/// Check one claimed capture against the reviewed image.
fn check_one(
    c: &ClaimedCapture,
    preview: &RgbImage,
    upright_w: u32,
    published: &Published,
    grid: u32,
) -> Option<SourceMatch> {
    let scale = published.scale();
    let s = f64::from(preview.width()) / f64::from(upright_w.max(1));
    let t = transform_of(c, s, scale);
    let [px, py, pw, ph] = c.panel.map(f64::from);
    let img = &published.image;
    // The panel in reviewed pixels, and the part of it inside the image.
    let panel = [
        (px / scale) as u32,
        (py / scale) as u32,
        ((pw / scale) as u32).max(1),
        ((ph / scale) as u32).max(1),
    ];
    let x0 = panel[0].min(img.width().saturating_sub(1));
    let y0 = panel[1].min(img.height().saturating_sub(1));
    let region = [
        x0,
        y0,
        panel[2].min(img.width() - x0),
        panel[3].min(img.height() - y0),
    ];
    let ring = near_mask(img, region);
    let (gx, gy) = (
        grid.min((pw / scale) as u32).max(1),
        grid.min((ph / scale) as u32).max(1),
    );
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for j in 0..gy {
        for i in 0..gx {
            // A point of the panel in file pixels, and where it is in the capture's preview.
            let (fx, fy) = (
                px + (f64::from(i) + 0.5) * pw / f64::from(gx),
                py + (f64::from(j) + 0.5) * ph / f64::from(gy),
            );
            let (rx, ry) = ((fx / scale) as u32, (fy / scale) as u32);
            let q = [
                (fx - t.t[0] * scale) / (t.m[0][0] * scale),
                (fy - t.t[1] * scale) / (t.m[1][1] * scale),
            ];
            let (qx, qy) = (q[0].floor(), q[1].floor());
            if rx >= img.width() || ry >= img.height() || qx < 0.0 || qy < 0.0 {
                continue;
            }
            let (qx, qy) = (qx as u32, qy as u32);
            if qx >= preview.width() || qy >= preview.height() {
                continue;
            }
            if rx < region[0]
                || ry < region[1]
                || rx >= region[0] + region[2]
                || ry >= region[1] + region[3]
            {
                continue;
            }
            if ring[((ry - region[1]) * region[2] + (rx - region[0])) as usize] {
                continue;
            }
            let p = img.get_pixel(rx, ry).0;
            a.push(luma(preview.get_pixel(qx, qy).0));
            b.push(luma(p));
        }
    }
    let (r, residual) = ncc(&a, &b)?;
    (r >= MIN_NCC).then(|| SourceMatch {
        capture_id: c.capture_id.clone(),
        panel,
        transform: t,
        sim: Sim {
            a: [t.m[0][0], 0.0],
            b: t.t,
        },
        inliers: a.len(),
        ncc: r,
        residual,
        alternatives: Vec::new(),
    })
}

impl Store {
    /// The captures `claim` names whose pixels are where it says, as sources; the others are
    /// left out (the review reports them).
    pub fn verify_claimed(
        &self,
        published: &Published,
        claim: &ProvenanceClaim,
    ) -> Result<Vec<SourceMatch>, RecordError> {
        let mut out = Vec::new();
        for c in &claim.captures {
            let Ok(cap) = self.capture(&c.capture_id) else {
                continue;
            };
            if cap.sha256 != c.sha256 {
                continue;
            }
            let turned = cap
                .exif
                .as_ref()
                .and_then(|e| e.orientation)
                .is_some_and(|o| o >= 5);
            let upright_w = if turned { cap.height } else { cap.width };
            let mut preview = self.preview(&cap.id)?;
            // A small crop spans few preview pixels: compare it with the original.
            let span =
                f64::from(c.crop[2]) * f64::from(preview.width()) / f64::from(upright_w.max(1));
            let masked = claim
                .deidentified
                .as_deref()
                .is_some_and(|d| d.contains("masked"));
            if span < MIN_PREVIEW_SPAN || masked {
                preview = self.capture_image(&cap.id)?.to_rgb8();
            }
            let grid = if masked { GRID_MASKED } else { GRID };
            if let Some(m) = check_one(c, &preview, upright_w, published, grid) {
                out.push(m);
            }
        }
        Ok(out)
    }
}
