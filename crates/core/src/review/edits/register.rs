//! Registration for the edit check: a tenth of a pixel of misalignment looks like changed
//! texture everywhere, so the match's transform (found on small previews) is refined coarse
//! to fine on the panel's own pixels, and again without the regions a first check flagged
//! (a caption or watermark drags an alignment that counts it).

use image::RgbImage;

use super::{EditCheck, blocks::B, detect};
use crate::analysis::fingerprint::luma;
use crate::analysis::pose::affine::Affine;
use crate::analysis::pose::refine::GradImage;
use crate::review::pixels::refine_onto;

/// Scales of the coarse-to-fine refinement before the full one.
const PYRAMID: [f64; 2] = [0.25, 0.5];
/// Template points, iterations and the least correlation of a refinement.
const POINTS: usize = 4000;
const ITERATIONS: usize = 30;
const MIN_NCC: f64 = 0.6;

/// `img` resampled by `k` (an area-weighted filter when reducing, so nothing aliases).
pub fn resize_by(img: &RgbImage, k: f64) -> RgbImage {
    let (w, h) = (
        (f64::from(img.width()) * k).round().max(1.0) as u32,
        (f64::from(img.height()) * k).round().max(1.0) as u32,
    );
    image::imageops::resize(img, w, h, image::imageops::FilterType::Triangle)
}

/// The edit check of `panel` of `published` against `source`, `t` mapping source pixels to
/// published ones roughly (within a few percent).
pub fn check(source: &RgbImage, published: &RgbImage, t: Affine, panel: &[u32; 4]) -> EditCheck {
    // The panel's gradients at full resolution, for both full-resolution refinements.
    let target = GradImage::new(&luma(published));
    let t = coarse_to_fine(source, published, &target, t, panel);
    let first = detect(source, published, &t, panel);
    if first.regions.is_empty() {
        return first;
    }
    // Align again without what the first check flagged, and keep whichever alignment leaves
    // less to explain.
    let exclude: Vec<[u32; 4]> = first
        .regions
        .iter()
        .map(|r| {
            let b = r.bbox;
            [
                b[0].saturating_sub(B),
                b[1].saturating_sub(B),
                b[2] + 2 * B,
                b[3] + 2 * B,
            ]
        })
        .collect();
    let Some(t2) = refine_onto(
        source, &target, t, panel, &exclude, POINTS, ITERATIONS, MIN_NCC,
    ) else {
        return first;
    };
    let second = detect(source, published, &t2, panel);
    if second.flagged() < first.flagged() {
        second
    } else {
        first
    }
}

/// Refine `t` on reduced copies of both images, then at full resolution (`target`: the
/// published image's gradients).
fn coarse_to_fine(
    source: &RgbImage,
    published: &RgbImage,
    target: &GradImage,
    t: Affine,
    panel: &[u32; 4],
) -> Affine {
    let mut t = t;
    for f in PYRAMID {
        if f64::from(source.width().min(published.width())) * f < 96.0 {
            continue;
        }
        let (s, p) = (resize_by(source, f), resize_by(published, f));
        let small = panel.map(|v| (f64::from(v) * f).round() as u32);
        let target = GradImage::new(&luma(&p));
        let tf = rescale(&t, f);
        if let Some(r) = refine_onto(&s, &target, tf, &small, &[], POINTS, ITERATIONS, MIN_NCC) {
            t = rescale(&r, 1.0 / f);
        }
    }
    refine_onto(source, target, t, panel, &[], POINTS, ITERATIONS, MIN_NCC).unwrap_or(t)
}

/// `t` for both images resampled by `f` (pixel centres: x' + ½ = f (x + ½)).
fn rescale(t: &Affine, f: f64) -> Affine {
    // p = M s + T; s = (s' + ½)/f − ½; p' = f (p + ½) − ½ = M s' + T'.
    let m = t.m;
    let half = [0.5 * (m[0][0] + m[0][1]), 0.5 * (m[1][0] + m[1][1])];
    Affine {
        m,
        t: std::array::from_fn(|k| half[k] * (1.0 - f) + f * t.t[k] + 0.5 * (f - 1.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rescaling_commutes_with_resampling() {
        let t = Affine {
            m: [[1.02, 0.01], [-0.01, 0.98]],
            t: [12.0, -7.0],
        };
        let f = 0.25;
        let tf = rescale(&t, f);
        // A source point, at both scales.
        let s = [100.0, 60.0];
        let sf = s.map(|v| f * (v + 0.5) - 0.5);
        let p = t.apply(s);
        let pf = tf.apply(sf);
        for k in 0..2 {
            assert!((pf[k] - (f * (p[k] + 0.5) - 0.5)).abs() < 1e-9);
        }
        let back = rescale(&tf, 1.0 / f);
        assert!((back.t[0] - t.t[0]).abs() < 1e-9 && (back.t[1] - t.t[1]).abs() < 1e-9);
    }
}
