//! Is one photo a geometric copy of another: the same pixels rotated, scaled or shifted, with
//! a gain change and noise? Standardized follow-ups are made to look like their baseline, so
//! likeness of the whole picture proves nothing; what a new photo cannot share with an old one
//! is its fine detail (pores, hair, weave, sensor noise pattern under the same light). So the
//! two are aligned by the pose registration and their detail layers (each picture minus its
//! local mean) are correlated where they overlap: a copy keeps its detail in register, a new
//! photo of the same scene does not.

use image::{GrayImage, RgbImage};

use super::fingerprint::luma;
use super::pose::{self, PoseConfig, PoseOptions};

/// How alike the detail of two aligned pictures is.
#[derive(Clone, Debug, PartialEq)]
pub struct CopyMeasure {
    /// Where a pixel of the earlier picture lands in the later one (`[a0, a1, b0, b1]`, see
    /// [`pose::PoseReport::frame_from_baseline`]).
    pub frame_from_baseline: [f64; 4],
    /// The registration's confidence.
    pub confidence: f64,
    /// Correlation of the detail layers where the pictures overlap (−1…1).
    pub detail_correlation: f64,
    /// Share of the later picture the earlier one covers once aligned.
    pub overlap: f64,
}

impl CopyMeasure {
    /// Rotation (degrees, counter-clockwise on screen) and scale of the transform.
    pub fn rotation_scale(&self) -> (f64, f64) {
        let [a0, a1, ..] = self.frame_from_baseline;
        (-a1.atan2(a0).to_degrees(), a0.hypot(a1))
    }
}

/// The detail layer: luma minus its 3×3 box mean (the finest detail, which a new photo
/// cannot share with an old one even a pixel out of register).
fn detail(g: &GrayImage) -> Vec<f32> {
    let (w, h) = (g.width() as usize, g.height() as usize);
    let px = |x: usize, y: usize| f32::from(g.as_raw()[y * w + x]);
    let mut out = vec![0.0; w * h];
    for y in 1..h.saturating_sub(1) {
        for x in 1..w.saturating_sub(1) {
            let mut s = 0.0;
            for dy in 0..3 {
                for dx in 0..3 {
                    s += px(x + dx - 1, y + dy - 1);
                }
            }
            out[y * w + x] = px(x, y) - s / 9.0;
        }
    }
    out
}

/// Bilinear sample of a `w × h` layer at `(x, y)`, if inside its valid part.
fn sample(layer: &[f32], w: usize, h: usize, x: f64, y: f64) -> Option<f32> {
    if !(3.0..(w as f64 - 4.0)).contains(&x) || !(3.0..(h as f64 - 4.0)).contains(&y) {
        return None;
    }
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (fx, fy) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
    let at = |xx: usize, yy: usize| layer[yy * w + xx];
    Some(
        (at(x0, y0) * (1.0 - fx) + at(x0 + 1, y0) * fx) * (1.0 - fy)
            + (at(x0, y0 + 1) * (1.0 - fx) + at(x0 + 1, y0 + 1) * fx) * fy,
    )
}

/// Align `later` to `earlier` and correlate their detail; `None` when they cannot be aligned.
pub fn measure(earlier: &RgbImage, later: &RgbImage) -> Option<CopyMeasure> {
    let cfg = PoseConfig::builtin().ok()?;
    let r = pose::analyze(earlier, later, &cfg, &PoseOptions::default());
    let t = r.frame_from_baseline?;
    if r.confidence < cfg.tolerances.min_confidence {
        return None;
    }
    let (ga, gb) = (luma(earlier), luma(later));
    let (wa, ha) = (ga.width() as usize, ga.height() as usize);
    let (wb, hb) = (gb.width() as usize, gb.height() as usize);
    let (da, db) = (detail(&ga), detail(&gb));
    // later → earlier: the inverse of the similarity.
    let [a0, a1, b0, b1] = t;
    let k = a0 * a0 + a1 * a1;
    if k < 1e-9 {
        return None;
    }
    let (mut sab, mut saa, mut sbb, mut n, mut total) = (0.0f64, 0.0f64, 0.0f64, 0usize, 0usize);
    for y in (3..hb.saturating_sub(3)).step_by(2) {
        for x in (3..wb.saturating_sub(3)).step_by(2) {
            total += 1;
            let (u, v) = (x as f64 - b0, y as f64 - b1);
            let (xa, ya) = ((a0 * u + a1 * v) / k, (-a1 * u + a0 * v) / k);
            let Some(va) = sample(&da, wa, ha, xa, ya) else {
                continue;
            };
            let vb = db[y * wb + x];
            sab += f64::from(va) * f64::from(vb);
            saa += f64::from(va) * f64::from(va);
            sbb += f64::from(vb) * f64::from(vb);
            n += 1;
        }
    }
    if n < 100 || saa <= 0.0 || sbb <= 0.0 {
        return None;
    }
    Some(CopyMeasure {
        frame_from_baseline: t,
        confidence: r.confidence,
        detail_correlation: sab / (saa * sbb).sqrt(),
        overlap: n as f64 / total.max(1) as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::warp_similarity;

    fn scene() -> RgbImage {
        let p = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/faces/astronaut.jpg"
        );
        image::open(p).unwrap().to_rgb8()
    }

    #[test]
    fn a_rotated_scaled_copy_keeps_its_detail_in_register() {
        let a = scene();
        let mut b = warp_similarity(&a, 9.0, -6.0, 4.8, 0.92, [0, 0, 0]);
        let mut rng = crate::testkit::Rng(3);
        for p in b.pixels_mut() {
            p.0 =
                p.0.map(|v| (f64::from(v) * 1.05 + rng.gauss() * 2.0).clamp(0.0, 255.0) as u8);
        }
        let m = measure(&a, &b).unwrap();
        let (rot, scale) = m.rotation_scale();
        assert!(
            (rot.abs() - 4.8).abs() < 0.3 && (scale - 0.92).abs() < 0.01,
            "{m:?}"
        );
        assert!(m.detail_correlation > 0.5, "{m:?}");
    }
}

#[cfg(test)]
mod measured {
    use super::*;
    use crate::testkit::warp_similarity;

    fn preview(p: &std::path::Path) -> RgbImage {
        let img = image::open(p).unwrap().to_rgb8();
        image::imageops::thumbnail(&img, 512, 512 * img.height() / img.width().max(1))
    }

    /// Prints the detail correlation of copies and of different sessions (shared fixtures).
    #[test]
    #[ignore = "a measurement: cargo test -p sameframe-core measured -- --ignored --nocapture"]
    fn detail_correlation_of_copies_and_sessions() {
        let faces =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/faces");
        let load = |n: &str| preview(&faces.join(n));
        for (a, b) in [
            ("obama.jpg", "obama2.jpg"),
            ("obama.jpg", "obama3.jpg"),
            ("obama2.jpg", "obama3.jpg"),
            ("biden.jpg", "biden2.jpg"),
            ("obama-720p.jpg", "obama-1080p.jpg"),
        ] {
            let m = measure(&load(a), &load(b));
            println!(
                "{a} vs {b}: {:?}",
                m.map(|m| (m.detail_correlation, m.overlap, m.confidence))
            );
        }
        let mut rng = crate::testkit::Rng(5);
        for n in ["obama.jpg", "biden.jpg", "obama2.jpg"] {
            let full = image::open(faces.join(n)).unwrap().to_rgb8();
            for (dx, dy, th, s, gain, noise) in [
                (0.0, 0.0, 0.0, 1.0, 1.0, 1.0),
                (12.0, -8.0, 4.8, 0.92, 1.05, 2.0),
                (-30.0, 20.0, -3.0, 1.08, 0.95, 4.0),
                (5.0, 5.0, 1.0, 0.97, 1.1, 6.0),
            ] {
                let mut w = warp_similarity(&full, dx, dy, th, s, [20, 20, 20]);
                for p in w.pixels_mut() {
                    p.0 = p.0.map(|v| {
                        (f64::from(v) * gain + rng.gauss() * noise).clamp(0.0, 255.0) as u8
                    });
                }
                let mut jpeg = Vec::new();
                w.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
                    &mut jpeg, 88,
                ))
                .unwrap();
                let w = image::load_from_memory(&jpeg).unwrap().to_rgb8();
                let pw = image::imageops::thumbnail(&w, 512, 512 * w.height() / w.width().max(1));
                let m = measure(&preview(&faces.join(n)), &pw);
                println!(
                    "{n} copy rot {th} scale {s} noise {noise}: {:?}",
                    m.map(|m| (m.detail_correlation, m.overlap, m.rotation_scale()))
                );
            }
        }
    }
}
