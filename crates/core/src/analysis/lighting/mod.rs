//! The lighting check: find a grey card or ColorChecker, then measure — in linear light —
//! exposure against the card's nominal reflectance, the white-balance gains that neutralise it,
//! its residual colour cast, clipping, light fall-off across it, and focus.
//!
//! Sign conventions (pinned in tests): `exposure_ev > 0` means brighter than the target;
//! `wb_gains` are von Kries multipliers normalised so green = 1 (a warm cast gives red < 1,
//! blue > 1); `falloff_ev` is the change in exposure across one card width, from a plane fit
//! of log-luminance over the card (positive: brighter towards its right edge).
//!
//! ```
//! use sameframe_core::analysis::frame::Frame;
//! use sameframe_core::analysis::lighting::{analyze, LightingConfig, LightingOptions};
//! let cfg = LightingConfig::builtin().unwrap();
//! // A frame with nothing in it: no card, and a verdict that is not "pass".
//! let img = image::RgbImage::from_pixel(64, 48, image::Rgb([90, 90, 90]));
//! let report = analyze(&Frame::rgb8(&img), &cfg, &LightingOptions::default());
//! assert!(!report.card.found);
//! assert_ne!(report.verdict, sameframe_core::analysis::lighting::Verdict::Pass);
//! ```

pub mod checker;
pub mod config;
pub mod greycard;
mod outline;
pub mod segment;
mod tracker;

pub use config::LightingConfig;
pub use tracker::LightingTracker;

use serde::{Deserialize, Serialize};

use crate::analysis::color::{encode8, luminance, rgb_to_lab, saturation};
use crate::analysis::frame::{Frame, Working};
use crate::analysis::geometry::{Homography, Pt};

/// The working image's long side for detection.
pub const WORKING_SIDE: u32 = 400;

/// Pass, warn or fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

/// An axis-aligned rectangle `x, y, w, h` in pixels.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rect {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl std::str::FromStr for Rect {
    type Err = String;
    /// `x,y,w,h`.
    fn from_str(s: &str) -> Result<Self, String> {
        let v: Vec<u32> = s
            .split(',')
            .map(|p| p.trim().parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("{s:?} is not x,y,w,h in whole pixels"))?;
        match v[..] {
            [x, y, w, h] if w > 0 && h > 0 => Ok(Rect { x, y, w, h }),
            _ => Err(format!(
                "{s:?} is not x,y,w,h with a positive width and height"
            )),
        }
    }
}

impl Rect {
    fn quad(&self) -> [Pt; 4] {
        let (x, y, w, h) = (
            f64::from(self.x),
            f64::from(self.y),
            f64::from(self.w),
            f64::from(self.h),
        );
        [[x, y], [x + w, y], [x + w, y + h], [x, y + h]]
    }

    fn fits(&self, width: u32, height: u32) -> bool {
        self.x.checked_add(self.w).is_some_and(|r| r <= width)
            && self.y.checked_add(self.h).is_some_and(|b| b <= height)
    }
}

/// One neutral patch of a ColorChecker: nominal and measured luminance (the tone response).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct NeutralPatch {
    pub name: String,
    pub reference_y: f64,
    pub measured_y: f64,
    pub clipped: bool,
}

/// What was found.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CardReport {
    pub found: bool,
    /// "grey18" or "colorchecker".
    pub kind: Option<String>,
    /// Corners TL, TR, BR, BL in pixels.
    pub quad: Option<[[f64; 2]; 4]>,
    pub mean_srgb: Option<[u8; 3]>,
    /// "detected", "given" (`--card`), "profile" or "tracked" (live re-check).
    pub source: Option<String>,
    pub area_fraction: Option<f64>,
    /// ColorChecker neutral row, white to black.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub neutral_patches: Option<Vec<NeutralPatch>>,
    /// ColorChecker patch centres in reference order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patch_centres: Option<Vec<[f64; 2]>>,
    /// Grey card: how many of the frame's pixels the measurement rests on (inside the card,
    /// away from its edge, the lit part only when a shadow splits it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured_pixels: Option<u64>,
    /// Grey card: the exposure's standard uncertainty from the card's own pixel noise and the
    /// number of pixels, in EV.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposure_uncertainty_ev: Option<f64>,
}

/// Differences against a saved room profile.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProfileDeltas {
    pub profile: String,
    /// This frame's exposure minus the profile's, in EV.
    pub exposure_ev: Option<f64>,
    /// This frame's gains divided by the profile's, per channel.
    pub wb_gain_ratio: Option<[f64; 3]>,
    /// ΔE between this frame's cast and the profile's.
    pub cast_delta_e: Option<f64>,
    /// This frame's sharpness divided by the profile's.
    pub sharpness_ratio: Option<f64>,
}

/// The lighting report (`sameframe analyze lighting --json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LightingReport {
    pub card: CardReport,
    pub exposure_ev: Option<f64>,
    pub wb_gains: Option<[f64; 3]>,
    pub cast_lab: Option<[f64; 2]>,
    pub cast_delta_e: Option<f64>,
    pub clipped_highlights: f64,
    pub clipped_shadows: f64,
    pub subject_clipped_highlights: Option<f64>,
    pub falloff_ev: Option<f64>,
    pub sharpness: f64,
    pub verdict: Verdict,
    pub reasons: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<ProfileDeltas>,
    pub width: u32,
    pub height: u32,
}

/// A saved room calibration (`sameframe calibrate`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct LightingProfile {
    pub name: String,
    pub card_kind: String,
    pub quad: [[f64; 2]; 4],
    pub exposure_ev: f64,
    pub wb_gains: [f64; 3],
    pub cast_lab: [f64; 2],
    pub sharpness: f64,
    pub width: u32,
    pub height: u32,
}

/// Options of one analysis.
#[derive(Clone, Debug, Default)]
pub struct LightingOptions {
    /// The card's position, given by the user.
    pub card: Option<Rect>,
    /// The subject region (clipping and focus are also measured there).
    pub subject: Option<Rect>,
    /// A saved profile: its card position is tried first and deltas are reported.
    pub profile: Option<LightingProfile>,
}

/// Measured statistics of a card region.
#[derive(Clone, Debug)]
struct QuadStats {
    mean: [f64; 3],
    /// Change of log2 Y across one card width (left to right), from a plane fit.
    slope_ev: Option<f64>,
    clipped: f64,
    residual: f64,
    n: usize,
    /// Frame pixels the samples stand for (samples × the sampling step²).
    pixels: u64,
}

impl QuadStats {
    /// Standard uncertainty of the mean exposure, in EV: the per-pixel scatter of log
    /// luminance around the light gradient over the square root of the number of independent
    /// measurements. Sensor noise after demosaicing and JPEG is correlated over a few pixels;
    /// every 4 × 4 block counts as one measurement.
    fn exposure_uncertainty_ev(&self) -> f64 {
        let independent = (self.pixels as f64 / 16.0).max(1.0);
        self.residual / std::f64::consts::LN_2 / independent.sqrt()
    }
}

/// Samples inside a quad (in its own unit coordinates `[margin, 1 − margin]²`), optionally
/// only where `keep(x, y)` is true; trimmed mean, halves, clipping and gradient residual.
fn measure_quad(
    frame: &Frame<'_>,
    quad: &[Pt; 4],
    margin: f64,
    keep: &dyn Fn(u32, u32) -> bool,
) -> Option<QuadStats> {
    let unit = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]];
    let to_unit = Homography::fit(quad, &unit)?;
    let (fw, fh) = (f64::from(frame.width()), f64::from(frame.height()));
    let x0 = quad
        .iter()
        .map(|p| p[0])
        .fold(f64::INFINITY, f64::min)
        .max(0.0)
        .floor() as u32;
    let x1 = quad
        .iter()
        .map(|p| p[0])
        .fold(0.0, f64::max)
        .min(fw - 1.0)
        .ceil() as u32;
    let y0 = quad
        .iter()
        .map(|p| p[1])
        .fold(f64::INFINITY, f64::min)
        .max(0.0)
        .floor() as u32;
    let y1 = quad
        .iter()
        .map(|p| p[1])
        .fold(0.0, f64::max)
        .min(fh - 1.0)
        .ceil() as u32;
    if x1 <= x0 || y1 <= y0 {
        return None;
    }
    let area = f64::from((x1 - x0) * (y1 - y0));
    let step = ((area / 40_000.0).sqrt().floor() as u32).max(1);
    let top = frame.max_code().saturating_sub(frame.max_code() / 255);
    let mut samples: Vec<(f32, [f32; 3], f64, f64)> = Vec::new();
    let mut clipped = 0usize;
    for y in (y0..=y1).step_by(step as usize) {
        for x in (x0..=x1).step_by(step as usize) {
            let uv = to_unit.apply([f64::from(x) + 0.5, f64::from(y) + 0.5]);
            if uv[0] < margin || uv[0] > 1.0 - margin || uv[1] < margin || uv[1] > 1.0 - margin {
                continue;
            }
            if !keep(x, y) {
                continue;
            }
            if frame.raw(x, y).iter().any(|&v| v >= top) {
                clipped += 1;
            }
            let l = frame.linear(x, y);
            samples.push((luminance(l), l, uv[0], uv[1]));
        }
    }
    if samples.len() < 16 {
        return None;
    }
    let n_all = samples.len();
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    let trim = n_all / 33;
    let kept = &samples[trim..n_all - trim];
    let mut sum = [0f64; 3];
    // Plane fit of log Y over (u, v) for the residual.
    let mut m = [[0f64; 3]; 3];
    let mut rhs = [0f64; 3];
    for (y, c, u, v) in kept {
        for k in 0..3 {
            sum[k] += f64::from(c[k]);
        }
        let lv = f64::from(y.max(1e-6)).ln();
        let row = [1.0, *u, *v];
        for i in 0..3 {
            for j in 0..3 {
                m[i][j] += row[i] * row[j];
            }
            rhs[i] += row[i] * lv;
        }
    }
    let k = kept.len() as f64;
    let mm = nalgebra::Matrix3::from_fn(|i, j| m[i][j]);
    let plane = mm
        .lu()
        .solve(&nalgebra::Vector3::new(rhs[0], rhs[1], rhs[2]));
    let slope_ev = plane.map(|s| s[1] / std::f64::consts::LN_2);
    let residual = plane
        .map(|s| {
            let ss: f64 = kept
                .iter()
                .map(|(y, _, u, v)| {
                    (f64::from(y.max(1e-6)).ln() - (s[0] + s[1] * u + s[2] * v)).powi(2)
                })
                .sum();
            (ss / k).sqrt()
        })
        .unwrap_or(0.0);
    Some(QuadStats {
        mean: sum.map(|v| v / k),
        slope_ev,
        clipped: clipped as f64 / n_all as f64,
        residual,
        n: n_all,
        pixels: n_all as u64 * u64::from(step * step),
    })
}

/// Fractions of pixels at the encoding's limits, over the frame or a region; `step` samples
/// every n-th pixel in each direction.
fn clipping(frame: &Frame<'_>, region: Option<Rect>, step: u32) -> (f64, f64) {
    let r = region.unwrap_or(Rect {
        x: 0,
        y: 0,
        w: frame.width(),
        h: frame.height(),
    });
    let top = frame.max_code().saturating_sub(frame.max_code() / 255);
    let floor = frame.max_code() / 255;
    let (mut hi, mut lo, mut n) = (0u64, 0u64, 0u64);
    for y in (r.y..r.y + r.h).step_by(step as usize) {
        for x in (r.x..r.x + r.w).step_by(step as usize) {
            let p = frame.raw(x, y);
            if p.iter().any(|&v| v >= top) {
                hi += 1;
            }
            if p.iter().all(|&v| v <= floor) {
                lo += 1;
            }
            n += 1;
        }
    }
    let n = n.max(1) as f64;
    (hi as f64 / n, lo as f64 / n)
}

/// Variance of the 4-neighbour Laplacian of luma (0–255) over a region (default: the centre
/// half of the frame).
pub fn sharpness(frame: &Frame<'_>, region: Option<Rect>) -> f64 {
    sharpness_sampled(frame, region, 1_000_000)
}

/// [`sharpness`] evaluated on at most about `budget` pixels (the Laplacian itself always uses
/// full-resolution neighbours).
fn sharpness_sampled(frame: &Frame<'_>, region: Option<Rect>, budget: u64) -> f64 {
    let (w, h) = (frame.width(), frame.height());
    let r = region.unwrap_or(Rect {
        x: w / 4,
        y: h / 4,
        w: (w / 2).max(1),
        h: (h / 2).max(1),
    });
    let (x0, x1) = (r.x.max(1), (r.x + r.w).min(w.saturating_sub(1)));
    let (y0, y1) = (r.y.max(1), (r.y + r.h).min(h.saturating_sub(1)));
    if x1 <= x0 || y1 <= y0 {
        return 0.0;
    }
    let area = u64::from(x1 - x0) * u64::from(y1 - y0);
    let step = ((area as f64 / budget.max(1) as f64).sqrt().ceil() as usize).max(1);
    let (mut s, mut s2, mut n) = (0f64, 0f64, 0f64);
    for y in (y0..y1).step_by(step) {
        for x in (x0..x1).step_by(step) {
            let c = frame.luma255(x, y);
            let lap = frame.luma255(x - 1, y)
                + frame.luma255(x + 1, y)
                + frame.luma255(x, y - 1)
                + frame.luma255(x, y + 1)
                - 4.0 * c;
            let l = f64::from(lap);
            s += l;
            s2 += l * l;
            n += 1.0;
        }
    }
    if n < 1.0 {
        return 0.0;
    }
    let mean = s / n;
    (s2 / n - mean * mean).max(0.0)
}

/// Numbers derived from a neutral reference: exposure, gains, cast.
struct Neutral {
    exposure_ev: f64,
    gains: [f64; 3],
    cast_lab: [f64; 2],
    mean_srgb: [u8; 3],
}

fn neutral_numbers(mean: [f64; 3], y_measured: f64, y_target: f64) -> Neutral {
    let m = mean.map(|v| v.max(1e-9));
    let gains = [m[1] / m[0], 1.0, m[1] / m[2]];
    let scale = y_target / y_measured.max(1e-9);
    let norm = m.map(|v| (v * scale) as f32);
    let lab = rgb_to_lab(norm);
    Neutral {
        exposure_ev: (y_measured.max(1e-9) / y_target).log2(),
        gains,
        cast_lab: [f64::from(lab[1]), f64::from(lab[2])],
        mean_srgb: mean.map(|v| encode8(v as f32)),
    }
}

/// The lit part of a card split by a shadow.
struct LitPart {
    /// Working-image labels and the lit part's label.
    labels: Vec<u32>,
    label: u32,
    working_width: u32,
    factor: u32,
    /// Fraction of the card that is lit, and how much darker the rest is (EV).
    fraction: f64,
    shadow_ev: f64,
}

/// Detection result before measurement.
enum Found {
    Grey {
        quad: [Pt; 4],
        source: &'static str,
        area_fraction: f64,
        lit: Option<LitPart>,
    },
    Checker(Box<checker::Chart>),
    None(Vec<String>),
}

/// Run detection on a frame.
fn detect(frame: &Frame<'_>, cfg: &LightingConfig) -> Found {
    let w = Working::new(frame, WORKING_SIDE);
    let px = segment::PixelFeatures::new(&w);
    let seg = segment::segment_with(&w, &px, 12, segment::Growth::Smooth);
    if let Some(chart) = checker::detect(frame, &w, &seg, &cfg.checker) {
        return Found::Checker(Box::new(chart));
    }
    let seg = segment::segment_with(&w, &px, 12, segment::Growth::FlatOnly);
    match greycard::detect(&w, &seg, &cfg.grey) {
        Ok(c) => {
            let lit = c
                .lit
                .filter(|(_, _, ev)| *ev > 0.3)
                .map(|(label, fraction, shadow_ev)| LitPart {
                    labels: seg.labels,
                    label,
                    working_width: w.width,
                    factor: w.factor,
                    fraction,
                    shadow_ev,
                });
            Found::Grey {
                quad: c.quad,
                source: "detected",
                area_fraction: c.area_fraction,
                lit,
            }
        }
        Err(rej) => {
            let mut reasons: Vec<String> = rej.iter().map(greycard::Rejection::describe).collect();
            if reasons.is_empty() {
                reasons.push("nothing in the frame is uniform enough to be a grey card, and no ColorChecker was found".into());
            }
            Found::None(reasons)
        }
    }
}

/// Why a grey card's pixels cannot carry the measurement: too few of them for their noise.
fn too_noisy(stats: &QuadStats, def: &config::GreyCardDef) -> Option<String> {
    let u = stats.exposure_uncertainty_ev();
    (u > def.max_exposure_uncertainty_ev).then(|| {
        format!(
            "the card's measurement rests on {} pixels with a scatter of {:.3} EV each: exposure uncertain to ±{u:.3} EV (needs ±{:.3} or better): move the card closer or light it evenly",
            stats.pixels,
            stats.residual / std::f64::consts::LN_2,
            def.max_exposure_uncertainty_ev
        )
    })
}

/// Millimetres per pixel at the card, from a grey card's outline and its physical size (the
/// pose check's centimetre scale). `None` for a ColorChecker or a degenerate outline.
///
/// ```
/// use sameframe_core::analysis::lighting::card_mm_per_px;
/// // A 127 × 178 mm card seen as 254 × 356 px: 0.5 mm per pixel.
/// let quad = [[0.0, 0.0], [254.0, 0.0], [254.0, 356.0], [0.0, 356.0]];
/// let s = card_mm_per_px("grey18", &quad, (127.0, 178.0)).unwrap();
/// assert!((s - 0.5).abs() < 1e-9);
/// ```
pub fn card_mm_per_px(kind: &str, quad: &[Pt; 4], card_mm: (f64, f64)) -> Option<f64> {
    if kind != "grey18" {
        return None;
    }
    let area = crate::analysis::geometry::polygon_area(quad);
    (area > 1.0).then(|| (card_mm.0 * card_mm.1 / area).sqrt())
}

/// A card located without measuring it.
#[derive(Clone, Debug, PartialEq)]
pub struct Located {
    /// "grey18" or "colorchecker".
    pub kind: &'static str,
    pub quad: [Pt; 4],
}

/// Cold detection only: where the ColorChecker or grey card is, if anywhere.
pub fn locate(frame: &Frame<'_>, cfg: &LightingConfig) -> Option<Located> {
    match detect(frame, cfg) {
        Found::Checker(c) => Some(Located {
            kind: "colorchecker",
            quad: c.quad,
        }),
        Found::Grey { quad, .. } => Some(Located {
            kind: "grey18",
            quad,
        }),
        Found::None(_) => None,
    }
}

/// Analyse one frame (cold: full detection, unless a card position is given or the profile's
/// position still holds a card).
pub fn analyze(frame: &Frame<'_>, cfg: &LightingConfig, opts: &LightingOptions) -> LightingReport {
    let mut pre_reasons = Vec::new();
    let found = if let Some(r) = opts.card {
        if r.fits(frame.width(), frame.height()) {
            Found::Grey {
                quad: r.quad(),
                source: "given",
                area_fraction: f64::from(r.w) * f64::from(r.h)
                    / (f64::from(frame.width()) * f64::from(frame.height())),
                lit: None,
            }
        } else {
            Found::None(vec![format!(
                "the given card position {},{},{},{} lies outside the {}×{} frame",
                r.x,
                r.y,
                r.w,
                r.h,
                frame.width(),
                frame.height()
            )])
        }
    } else if let Some(p) = opts.profile.as_ref().filter(|p| {
        p.card_kind == "grey18" && p.width == frame.width() && p.height == frame.height()
    }) {
        if tracker::grey_still_there(frame, &p.quad, cfg, None) {
            Found::Grey {
                quad: p.quad,
                source: "profile",
                area_fraction: crate::analysis::geometry::polygon_area(&p.quad)
                    / (f64::from(frame.width()) * f64::from(frame.height())),
                lit: None,
            }
        } else {
            pre_reasons.push(format!(
                "the card is no longer where profile {} has it; searching the frame",
                p.name
            ));
            detect(frame, cfg)
        }
    } else {
        detect(frame, cfg)
    };
    let mut report = measure(frame, cfg, opts, found, true);
    report.reasons.splice(0..0, pre_reasons);
    report
}

/// Measure a frame given what was found.
fn measure(
    frame: &Frame<'_>,
    cfg: &LightingConfig,
    opts: &LightingOptions,
    found: Found,
    full: bool,
) -> LightingReport {
    let t = &cfg.tolerances;
    let mut reasons: Vec<String> = Vec::new();
    let mut verdict = Verdict::Pass;
    let mut raise = |v: Verdict, reasons: &mut Vec<String>, why: String| {
        verdict = verdict.max(v);
        reasons.push(why);
    };
    let step = if full { 1 } else { 2 };
    let (clipped_highlights, clipped_shadows) = clipping(frame, None, step);
    let subject = opts
        .subject
        .filter(|r| r.fits(frame.width(), frame.height()));
    let subject_clipped_highlights = subject.map(|r| clipping(frame, Some(r), 1).0);
    let sharp = sharpness_sampled(frame, subject, if full { 1_000_000 } else { 150_000 });
    let mut card = CardReport {
        found: false,
        kind: None,
        quad: None,
        mean_srgb: None,
        source: None,
        area_fraction: None,
        neutral_patches: None,
        patch_centres: None,
        measured_pixels: None,
        exposure_uncertainty_ev: None,
    };
    let mut exposure_ev = None;
    let mut wb_gains = None;
    let mut cast_lab = None;
    let mut falloff_ev = None;
    match found {
        Found::None(why) => {
            raise(
                Verdict::Fail,
                &mut reasons,
                format!("no card to measure against: {}", why.join("; ")),
            );
        }
        Found::Grey {
            quad,
            source,
            area_fraction,
            lit,
        } => {
            let all = |_: u32, _: u32| true;
            let stats_all = measure_quad(frame, &quad, 0.1, &all);
            let stats_lit = lit.as_ref().and_then(|l| {
                let keep = |x: u32, y: u32| {
                    let (wx, wy) = (x / l.factor, y / l.factor);
                    l.labels.get((wy * l.working_width + wx) as usize) == Some(&l.label)
                };
                measure_quad(frame, &quad, 0.1, &keep)
            });
            match stats_all {
                None => raise(
                    Verdict::Fail,
                    &mut reasons,
                    "the card region is too small to measure".into(),
                ),
                Some(all_stats) => {
                    let stats = stats_lit.clone().unwrap_or_else(|| all_stats.clone());
                    if let Some(l) = &lit {
                        raise(
                            Verdict::Warn,
                            &mut reasons,
                            format!(
                                "the card is partly shadowed ({:.0} % of it {:.1} EV darker): exposure is measured on its lit part",
                                (1.0 - l.fraction) * 100.0,
                                l.shadow_ev
                            ),
                        );
                    }
                    let y = luminance(stats.mean.map(|v| v as f32)).into();
                    let n = neutral_numbers(stats.mean, y, cfg.grey.reflectance);
                    card = CardReport {
                        found: true,
                        kind: Some("grey18".into()),
                        quad: Some(quad),
                        mean_srgb: Some(n.mean_srgb),
                        source: Some(source.into()),
                        area_fraction: Some(area_fraction),
                        neutral_patches: None,
                        patch_centres: None,
                        measured_pixels: Some(stats.pixels),
                        exposure_uncertainty_ev: Some(stats.exposure_uncertainty_ev()),
                    };
                    let noisy = too_noisy(&stats, &cfg.grey);
                    if let Some(why) = &noisy {
                        raise(Verdict::Fail, &mut reasons, why.clone());
                    }
                    if all_stats.clipped > 0.02 {
                        raise(
                            Verdict::Fail,
                            &mut reasons,
                            format!(
                                "{:.0} % of the card is clipped: exposure reads low; lower the exposure",
                                all_stats.clipped * 100.0
                            ),
                        );
                    }
                    if source == "given" {
                        let sat = f64::from(saturation(stats.mean.map(|v| v as f32)));
                        if all_stats.residual > 0.08 {
                            raise(
                                Verdict::Warn,
                                &mut reasons,
                                format!(
                                    "the given card region is not uniform (residual {:.0} %): check its position",
                                    all_stats.residual * 100.0
                                ),
                            );
                        }
                        if sat > cfg.grey.max_saturation {
                            raise(
                                Verdict::Warn,
                                &mut reasons,
                                format!(
                                    "the given card region is saturated ({sat:.2}): is it the grey card?"
                                ),
                            );
                        }
                    }
                    if noisy.is_none() {
                        exposure_ev = Some(n.exposure_ev);
                        wb_gains = Some(n.gains);
                        cast_lab = Some(n.cast_lab);
                        if all_stats.n > 32 {
                            falloff_ev = all_stats.slope_ev;
                        }
                    }
                }
            }
        }
        Found::Checker(chart) => {
            let def = &cfg.checker;
            let nominal = def.neutral_y();
            let mut patches = Vec::new();
            let (mut num, mut den) = (0f64, 0f64);
            let mut mid = [0f64; 3];
            let mut mid_y = 0f64;
            for (i, k) in (18..24).enumerate() {
                let m = chart.patches[k];
                let y = f64::from(luminance(m));
                let clipped = chart.patch_clipped[k] > 0.05 || y < 0.002;
                patches.push(NeutralPatch {
                    name: def.patches[k].name.clone(),
                    reference_y: nominal[i],
                    measured_y: y,
                    clipped,
                });
                if !clipped {
                    num += y * nominal[i];
                    den += nominal[i] * nominal[i];
                    if (19..=22).contains(&k) {
                        for c in 0..3 {
                            mid[c] += f64::from(m[c]);
                        }
                        mid_y += y;
                    }
                }
            }
            if chart.mirrored {
                raise(
                    Verdict::Warn,
                    &mut reasons,
                    "the chart appears mirrored: is the preview or image flipped?".into(),
                );
            }
            card = CardReport {
                found: true,
                kind: Some("colorchecker".into()),
                quad: Some(chart.quad),
                mean_srgb: None,
                source: Some("detected".into()),
                area_fraction: Some(
                    crate::analysis::geometry::polygon_area(&chart.quad)
                        / (f64::from(frame.width()) * f64::from(frame.height())),
                ),
                neutral_patches: Some(patches),
                patch_centres: Some(chart.centres.to_vec()),
                measured_pixels: None,
                exposure_uncertainty_ev: None,
            };
            if den <= 0.0 || mid_y <= 0.0 {
                raise(
                    Verdict::Fail,
                    &mut reasons,
                    "every neutral patch of the chart is clipped or black".into(),
                );
            } else {
                // Exposure: least-squares scale of measured against nominal Y over the unclipped
                // neutrals. Gains and cast: from the mid neutrals.
                let k = num / den;
                let n = neutral_numbers(mid, mid_y, 0.18);
                card.mean_srgb = Some(chart.patches[21].map(encode8));
                exposure_ev = Some(k.log2());
                wb_gains = Some(n.gains);
                cast_lab = Some(n.cast_lab);
            }
            if let Some((l, r)) = chart
                .frame_left_right
                .filter(|(l, r)| *l > 0.002 && *r > 0.002)
            {
                falloff_ev = Some((r / l).log2());
            }
        }
    }
    // Verdict from the numbers.
    if let Some(ev) = exposure_ev {
        let dir = if ev > 0.0 { "brighter" } else { "darker" };
        if ev.abs() > t.exposure_warn_ev {
            raise(
                Verdict::Fail,
                &mut reasons,
                format!(
                    "exposure {ev:+.2} EV ({dir} than the card's target; tolerance ±{:.2})",
                    t.exposure_warn_ev
                ),
            );
        } else if ev.abs() > t.exposure_pass_ev {
            raise(
                Verdict::Warn,
                &mut reasons,
                format!(
                    "exposure {ev:+.2} EV ({dir} than target; pass within ±{:.2})",
                    t.exposure_pass_ev
                ),
            );
        }
    }
    let cast_delta_e = cast_lab.map(|[a, b]| a.hypot(b));
    if let (Some(de), Some([a, b])) = (cast_delta_e, cast_lab) {
        let tint = describe_cast(a, b);
        if de > t.cast_warn_delta_e {
            raise(
                Verdict::Fail,
                &mut reasons,
                format!("colour cast ΔE {de:.1} ({tint}; a* {a:+.1}, b* {b:+.1})"),
            );
        } else if de > t.cast_pass_delta_e {
            raise(
                Verdict::Warn,
                &mut reasons,
                format!(
                    "colour cast ΔE {de:.1} ({tint}; pass below {:.1})",
                    t.cast_pass_delta_e
                ),
            );
        }
    }
    if let Some(f) = falloff_ev {
        let side = if f > 0.0 { "left" } else { "right" };
        if f.abs() > t.falloff_fail_ev {
            raise(
                Verdict::Fail,
                &mut reasons,
                format!(
                    "light falls off {:.2} EV towards the {side} across the card",
                    f.abs()
                ),
            );
        } else if f.abs() > t.falloff_warn_ev {
            raise(
                Verdict::Warn,
                &mut reasons,
                format!(
                    "light falls off {:.2} EV towards the {side} across the card",
                    f.abs()
                ),
            );
        }
    }
    if clipped_highlights > t.clipped_highlights_fail {
        raise(
            Verdict::Fail,
            &mut reasons,
            format!(
                "{:.1} % of the frame is clipped white",
                clipped_highlights * 100.0
            ),
        );
    } else if clipped_highlights > t.clipped_highlights_warn {
        raise(
            Verdict::Warn,
            &mut reasons,
            format!(
                "{:.1} % of the frame is clipped white",
                clipped_highlights * 100.0
            ),
        );
    }
    if clipped_shadows > t.clipped_shadows_warn {
        raise(
            Verdict::Warn,
            &mut reasons,
            format!(
                "{:.1} % of the frame is crushed black",
                clipped_shadows * 100.0
            ),
        );
    }
    if let Some(s) = subject_clipped_highlights.filter(|s| *s > t.subject_clipped_warn) {
        raise(
            Verdict::Warn,
            &mut reasons,
            format!(
                "{:.1} % of the subject is clipped white (shine or flash hot spot)",
                s * 100.0
            ),
        );
    }
    if sharp < t.sharpness_warn_below {
        raise(
            Verdict::Warn,
            &mut reasons,
            format!(
                "focus is suspect (sharpness {sharp:.1}, expected at least {:.0})",
                t.sharpness_warn_below
            ),
        );
    }
    let profile = opts.profile.as_ref().map(|p| {
        let d = ProfileDeltas {
            profile: p.name.clone(),
            exposure_ev: exposure_ev.map(|e| e - p.exposure_ev),
            wb_gain_ratio: wb_gains.map(|g| [g[0] / p.wb_gains[0], 1.0, g[2] / p.wb_gains[2]]),
            cast_delta_e: cast_lab.map(|c| (c[0] - p.cast_lab[0]).hypot(c[1] - p.cast_lab[1])),
            sharpness_ratio: (p.sharpness > 0.0).then(|| sharp / p.sharpness),
        };
        if let Some(e) = d
            .exposure_ev
            .filter(|e| e.abs() > t.profile_exposure_warn_ev)
        {
            raise(
                Verdict::Warn,
                &mut reasons,
                format!(
                    "exposure differs from room profile {} by {e:+.2} EV",
                    p.name
                ),
            );
        }
        if let Some(r) = d.wb_gain_ratio.filter(|r| {
            (r[0] - 1.0).abs() > t.profile_gain_warn || (r[2] - 1.0).abs() > t.profile_gain_warn
        }) {
            raise(
                Verdict::Warn,
                &mut reasons,
                format!(
                    "white balance differs from room profile {} (red ×{:.3}, blue ×{:.3})",
                    p.name, r[0], r[2]
                ),
            );
        }
        d
    });
    LightingReport {
        card,
        exposure_ev,
        wb_gains,
        cast_lab,
        cast_delta_e,
        clipped_highlights,
        clipped_shadows,
        subject_clipped_highlights,
        falloff_ev,
        sharpness: sharp,
        verdict,
        reasons,
        profile,
        width: frame.width(),
        height: frame.height(),
    }
}

fn describe_cast(a: f64, b: f64) -> &'static str {
    if b.abs() >= a.abs() {
        if b > 0.0 {
            "warm / yellow"
        } else {
            "cool / blue"
        }
    } else if a > 0.0 {
        "magenta"
    } else {
        "green"
    }
}

/// A copy of the frame with the report's white balance and exposure applied (8-bit sRGB).
pub fn corrected(frame: &Frame<'_>, report: &LightingReport) -> Option<image::RgbImage> {
    let gains = report.wb_gains?;
    let ev = report.exposure_ev?;
    // After the gains the card is neutral at its green level; scale so its luminance reaches
    // the target: Y_card · 2^−ev / G = 2^−ev · (0.2126 / g_r + 0.7152 + 0.0722 / g_b).
    let k = 2f64.powf(-ev) * (0.2126 / gains[0] + 0.7152 + 0.0722 / gains[2]);
    let g = gains.map(|v| (v * k) as f32);
    let mut out = image::RgbImage::new(frame.width(), frame.height());
    for (x, y, p) in out.enumerate_pixels_mut() {
        let l = frame.linear(x, y);
        *p = image::Rgb([
            encode8(l[0] * g[0]),
            encode8(l[1] * g[1]),
            encode8(l[2] * g[2]),
        ]);
    }
    Some(out)
}

/// A copy of the frame with the card's outline (and a ColorChecker's patch centres) drawn on
/// it, for reviewers and the station's overlay.
pub fn annotate(frame: &Frame<'_>, report: &LightingReport) -> image::RgbImage {
    use imageproc::drawing::{draw_hollow_circle_mut, draw_line_segment_mut};
    let mut out = frame.to_rgb8();
    let colour = match report.verdict {
        Verdict::Pass => image::Rgb([40, 200, 80]),
        Verdict::Warn => image::Rgb([240, 190, 30]),
        Verdict::Fail => image::Rgb([230, 50, 40]),
    };
    if let Some(q) = report.card.quad {
        for i in 0..4 {
            let (a, b) = (q[i], q[(i + 1) % 4]);
            for d in [-1.0f32, 0.0, 1.0] {
                draw_line_segment_mut(
                    &mut out,
                    (a[0] as f32 + d, a[1] as f32),
                    (b[0] as f32 + d, b[1] as f32),
                    colour,
                );
            }
        }
    }
    if let Some(c) = &report.card.patch_centres {
        let r = report
            .card
            .quad
            .map(|q| ((q[1][0] - q[0][0]).hypot(q[1][1] - q[0][1]) / 30.0).max(2.0) as i32)
            .unwrap_or(4);
        for p in c {
            draw_hollow_circle_mut(&mut out, (p[0] as i32, p[1] as i32), r, colour);
        }
    }
    out
}
