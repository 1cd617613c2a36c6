//! Synthetic scenes with exact truth, for the test suite and the benchmarks: a grey card or a
//! ColorChecker rendered in linear light at its reflectance, then the whole frame under a known
//! exposure gain, channel cast and light gradient, with sensor noise and JPEG encoding.
//!
//! Not part of the product's interface.
#![doc(hidden)]

pub mod files;

use std::io::Cursor;

use image::RgbImage;

use crate::analysis::color::{encode8, luminance, srgb_to_linear};
use crate::analysis::geometry::{Homography, Pt, inside_convex};

/// A deterministic generator (SplitMix64) with a Gaussian helper.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in [a, b).
    pub fn range(&mut self, a: f64, b: f64) -> f64 {
        a + (b - a) * self.unit()
    }
    /// Standard normal (Box–Muller).
    pub fn gauss(&mut self) -> f64 {
        let u1 = self.unit().max(1e-12);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

/// A textured background of soft colour blobs, as linear reflectance.
pub fn background(w: u32, h: u32, seed: u64) -> Vec<[f32; 3]> {
    let mut rng = Rng(seed);
    let blobs: Vec<(f64, f64, f64, [f64; 3])> = (0..18)
        .map(|_| {
            (
                rng.unit() * f64::from(w),
                rng.unit() * f64::from(h),
                (0.04 + rng.unit() * 0.15) * f64::from(w.max(h)),
                [
                    rng.range(0.02, 0.7),
                    rng.range(0.02, 0.7),
                    rng.range(0.02, 0.7),
                ],
            )
        })
        .collect();
    let mut out = Vec::with_capacity((w * h) as usize);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (f64::from(x), f64::from(y));
            let mut c = [0.25, 0.22, 0.2];
            for (bx, by, r, col) in &blobs {
                let d2 = ((fx - bx).powi(2) + (fy - by).powi(2)) / (r * r);
                let a = (-d2).exp();
                for k in 0..3 {
                    c[k] = c[k] * (1.0 - a) + col[k] * a;
                }
            }
            // Fine texture so the background is never flat.
            let t = 0.06 * ((fx * 0.37).sin() * (fy * 0.29).cos());
            out.push(c.map(|v| ((v * (1.0 + t)).clamp(0.005, 0.9)) as f32));
        }
    }
    out
}

/// A card's outline: a rectangle of `size` (fraction of frame width, aspect h/w) centred at
/// `centre` (fractions), rotated in plane by `roll` degrees and tilted in perspective by `tilt`
/// degrees about its vertical axis.
pub fn card_quad(
    w: u32,
    h: u32,
    centre: (f64, f64),
    size: f64,
    aspect: f64,
    roll: f64,
    tilt: f64,
) -> [Pt; 4] {
    let cw = size * f64::from(w);
    let ch = cw * aspect;
    let (cx, cy) = (centre.0 * f64::from(w), centre.1 * f64::from(h));
    let f = 2.0 * f64::from(w); // focal length of the virtual camera
    let t = tilt.to_radians();
    let r = roll.to_radians();
    let corners = [[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]];
    corners.map(|[u, v]| {
        // Card in 3D at distance f, rotated about its vertical axis by the tilt.
        let (x, y) = (u * cw, v * ch);
        let (xr, zr) = (x * t.cos(), f + x * t.sin());
        let (px, py) = (xr * f / zr, y * f / zr);
        let (rx, ry) = (px * r.cos() - py * r.sin(), px * r.sin() + py * r.cos());
        [cx + rx, cy + ry]
    })
}

/// How the frame is lit and recorded.
#[derive(Clone, Debug)]
pub struct Exposure {
    /// Exposure gain in EV.
    pub ev: f64,
    /// Per-channel illuminant multipliers.
    pub cast: [f64; 3],
    /// Horizontal light gradient: EV per frame width (positive: brighter to the right).
    pub gradient_ev: f64,
    /// Sensor noise, standard deviation in 8-bit codes.
    pub noise: f64,
    /// JPEG quality, or none for a lossless frame.
    pub jpeg: Option<u8>,
    pub seed: u64,
}

impl Default for Exposure {
    fn default() -> Self {
        Self {
            ev: 0.0,
            cast: [1.0; 3],
            gradient_ev: 0.0,
            noise: 0.0,
            jpeg: None,
            seed: 1,
        }
    }
}

/// Truth of a rendered scene.
#[derive(Clone, Debug)]
pub struct Truth {
    pub exposure_ev: f64,
    pub wb_gains: [f64; 3],
    pub quad: [Pt; 4],
}

fn light(e: &Exposure, x: f64, w: f64) -> f64 {
    2f64.powf(e.ev + e.gradient_ev * (x / w - 0.5))
}

/// Expose linear reflectances to an 8-bit frame (with noise and JPEG when asked).
pub fn expose(w: u32, h: u32, reflect: &[[f32; 3]], e: &Exposure) -> RgbImage {
    let mut rng = Rng(e.seed ^ 0x5EED);
    let img = RgbImage::from_fn(w, h, |x, y| {
        let r = reflect[(y * w + x) as usize];
        let g = light(e, f64::from(x), f64::from(w));
        image::Rgb(std::array::from_fn(|k| {
            let lin = (f64::from(r[k]) * g * e.cast[k]) as f32;
            let code = f64::from(encode8(lin))
                + if e.noise > 0.0 {
                    rng.gauss() * e.noise
                } else {
                    0.0
                };
            code.round().clamp(0.0, 255.0) as u8
        }))
    });
    match e.jpeg {
        None => img,
        Some(q) => {
            let mut buf = Vec::new();
            let mut cursor = Cursor::new(&mut buf);
            let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut cursor, q);
            if img.write_with_encoder(enc).is_err() {
                return img;
            }
            image::load_from_memory(&buf)
                .map(|i| i.to_rgb8())
                .unwrap_or(img)
        }
    }
}

/// The truth for a neutral reference lit at `at` (x in pixels).
fn neutral_truth(e: &Exposure, at_x: f64, w: f64, quad: [Pt; 4]) -> Truth {
    let c = e.cast.map(|v| v as f32);
    Truth {
        exposure_ev: (light(e, at_x, w) * f64::from(luminance(c))).log2(),
        wb_gains: [e.cast[1] / e.cast[0], 1.0, e.cast[1] / e.cast[2]],
        quad,
    }
}

/// Paint a quad with a reflectance (`shade(x, y)` multiplies it, e.g. for a shadow).
fn paint(refl: &mut [[f32; 3]], w: u32, h: u32, quad: &[Pt; 4], colour: [f32; 3]) {
    let x0 = quad
        .iter()
        .map(|p| p[0])
        .fold(f64::INFINITY, f64::min)
        .max(0.0) as u32;
    let x1 = (quad.iter().map(|p| p[0]).fold(0.0, f64::max).ceil() as u32).min(w);
    let y0 = quad
        .iter()
        .map(|p| p[1])
        .fold(f64::INFINITY, f64::min)
        .max(0.0) as u32;
    let y1 = (quad.iter().map(|p| p[1]).fold(0.0, f64::max).ceil() as u32).min(h);
    for y in y0..y1 {
        for x in x0..x1 {
            if inside_convex(quad, [f64::from(x) + 0.5, f64::from(y) + 0.5]) {
                refl[(y * w + x) as usize] = colour;
            }
        }
    }
}

/// A grey card of `reflectance` (neutral) at `quad` on a textured background. `shadow` darkens
/// the part of the card left of that fraction of its width by `shadow.1` (linear factor).
pub fn grey_scene(
    w: u32,
    h: u32,
    quad: [Pt; 4],
    reflectance: f32,
    shadow: Option<(f64, f32)>,
    e: &Exposure,
) -> (RgbImage, Truth) {
    grey_scene_on(background(w, h, e.seed), w, h, quad, reflectance, shadow, e)
}

/// A real photo as the reflectance of a scene: its sRGB codes decoded to linear light and kept
/// below white, so the photo can be lit again with a known exposure and cast.
pub fn photo_background(img: &RgbImage) -> Vec<[f32; 3]> {
    img.pixels()
        .map(|p| {
            p.0.map(|v| srgb_to_linear(f32::from(v) / 255.0).clamp(0.002, 0.9))
        })
        .collect()
}

/// [`grey_scene`] on a given background (e.g. [`photo_background`] of a real photo).
pub fn grey_scene_on(
    mut refl: Vec<[f32; 3]>,
    w: u32,
    h: u32,
    quad: [Pt; 4],
    reflectance: f32,
    shadow: Option<(f64, f32)>,
    e: &Exposure,
) -> (RgbImage, Truth) {
    paint(&mut refl, w, h, &quad, [reflectance; 3]);
    let cx = quad.iter().map(|p| p[0]).sum::<f64>() / 4.0;
    let mut truth_x = cx;
    if let Some((frac, factor)) = shadow {
        let unit = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
        if let Some(to_unit) = Homography::fit(&quad, &unit) {
            for y in 0..h {
                for x in 0..w {
                    let p = [f64::from(x) + 0.5, f64::from(y) + 0.5];
                    if inside_convex(&quad, p) && to_unit.apply(p)[0] < frac {
                        let i = (y * w + x) as usize;
                        refl[i] = refl[i].map(|v| v * factor);
                    }
                }
            }
        }
        // The lit part's centre.
        let left = (quad[0][0] + quad[3][0]) / 2.0;
        let right = (quad[1][0] + quad[2][0]) / 2.0;
        truth_x = left + (right - left) * (frac + 1.0) / 2.0;
    }
    let img = expose(w, h, &refl, e);
    let mut t = neutral_truth(e, truth_x, f64::from(w), quad);
    t.exposure_ev += (f64::from(reflectance) / 0.18).log2();
    (img, t)
}

/// A ColorChecker Classic (reference colours; neutrals at their nominal Y) on its dark frame,
/// inside `quad` (the chart's outer edge, TL, TR, BR, BL in chart orientation).
pub fn checker_scene(w: u32, h: u32, quad: [Pt; 4], e: &Exposure) -> (RgbImage, Truth) {
    checker_scene_on(background(w, h, e.seed), w, h, quad, e)
}

/// [`checker_scene`] on a given background (e.g. [`photo_background`] of a real photo).
pub fn checker_scene_on(
    mut refl: Vec<[f32; 3]>,
    w: u32,
    h: u32,
    quad: [Pt; 4],
    e: &Exposure,
) -> (RgbImage, Truth) {
    let cfg = crate::analysis::lighting::LightingConfig::builtin().ok();
    paint(&mut refl, w, h, &quad, [0.035, 0.033, 0.032]);
    let unit = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
    let Some(from_unit) = Homography::fit(&unit, &quad) else {
        return (
            expose(w, h, &refl, e),
            neutral_truth(e, 0.0, f64::from(w), quad),
        );
    };
    let neutral_y = cfg
        .as_ref()
        .map(|c| c.checker.neutral_y())
        .unwrap_or([0.9, 0.59, 0.36, 0.19, 0.09, 0.03]);
    let colours: Vec<[f32; 3]> = cfg
        .as_ref()
        .map(|c| {
            c.checker
                .patches
                .iter()
                .map(|p| p.srgb.map(|v| srgb_to_linear(f32::from(v) / 255.0)))
                .collect()
        })
        .unwrap_or_else(|| vec![[0.2; 3]; 24]);
    for r in 0..4 {
        for c in 0..6 {
            let k = r * 6 + c;
            // Chart is 6 × 4 pitches with a 0.35-pitch margin; patches are 0.8 pitch.
            let (pw, ph) = (1.0 / 6.7, 1.0 / 4.7);
            let (u0, v0) = (
                0.35 / 6.7 + c as f64 * pw + 0.1 * pw,
                0.35 / 4.7 + r as f64 * ph + 0.1 * ph,
            );
            let (u1, v1) = (u0 + 0.8 * pw, v0 + 0.8 * ph);
            let pq = [[u0, v0], [u1, v0], [u1, v1], [u0, v1]].map(|p| from_unit.apply(p));
            let colour = if k >= 18 {
                [neutral_y[k - 18] as f32; 3]
            } else {
                colours[k]
            };
            paint(&mut refl, w, h, &pq, colour);
        }
    }
    let cx = quad.iter().map(|p| p[0]).sum::<f64>() / 4.0;
    let img = expose(w, h, &refl, e);
    (img, neutral_truth(e, cx, f64::from(w), quad))
}

/// Warp `img` by the pose convention `p_frame = c + s·R(θ)·(p_base − c) + (dx, dy)` (c the
/// image centre, θ in degrees, counter-clockwise on screen), bilinear, into an image of the same
/// size; outside is filled with `fill`.
pub fn warp_similarity(
    img: &RgbImage,
    dx: f64,
    dy: f64,
    theta_deg: f64,
    scale: f64,
    fill: [u8; 3],
) -> RgbImage {
    let (w, h) = img.dimensions();
    let c = [f64::from(w) / 2.0, f64::from(h) / 2.0];
    let t = theta_deg.to_radians();
    let (ct, st) = (t.cos(), t.sin());
    RgbImage::from_fn(w, h, |x, y| {
        // Inverse: p_base = c + (1/s)·R(−θ)·(p_frame − c − d); R(−θ) = [[cos, −sin], [sin, cos]].
        let (u, v) = (
            f64::from(x) + 0.5 - c[0] - dx,
            f64::from(y) + 0.5 - c[1] - dy,
        );
        let bx = c[0] + (ct * u - st * v) / scale - 0.5;
        let by = c[1] + (st * u + ct * v) / scale - 0.5;
        if bx < 0.0 || by < 0.0 || bx > f64::from(w - 1) || by > f64::from(h - 1) {
            return image::Rgb(fill);
        }
        let (x0, y0) = (bx.floor() as u32, by.floor() as u32);
        let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
        let (fx, fy) = (bx - f64::from(x0), by - f64::from(y0));
        let p = |xx: u32, yy: u32| img.get_pixel(xx, yy).0.map(f64::from);
        let (a, b, cc, d) = (p(x0, y0), p(x1, y0), p(x0, y1), p(x1, y1));
        image::Rgb(std::array::from_fn(|k| {
            ((a[k] * (1.0 - fx) + b[k] * fx) * (1.0 - fy) + (cc[k] * (1.0 - fx) + d[k] * fx) * fy)
                .round()
                .clamp(0.0, 255.0) as u8
        }))
    })
}
