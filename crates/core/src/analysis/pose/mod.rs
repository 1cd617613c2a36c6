//! Pose against the baseline: is the patient sitting as in the baseline photo?
//!
//! Registration works for every treatment area: oriented FAST corners and steered binary
//! descriptors on a small pyramid, mutual ratio-test matching, RANSAC on the two-point
//! similarity, then direct sub-pixel alignment with gain/bias and robust weights. On faces,
//! BlazeFace and FaceMesh add head yaw and pitch, the Frankfort-plane tilt and expression.
//!
//! Conventions (pinned in tests): `p_frame = c + s·R(θ)·(p_base − c) + (dx, dy)` about the
//! baseline's centre `c`, y down, `R(θ) = [[cos θ, sin θ], [−sin θ, cos θ]]`, so θ > 0 is
//! counter-clockwise on screen; dx > 0: the subject sits further right in the frame; scale > 1:
//! the subject is larger (closer); yaw > 0: the patient turned toward their own left (nose
//! toward image right); pitch > 0: chin up.
//!
//! ```
//! use sameframe_core::analysis::pose::{self, PoseConfig, PoseOptions};
//! let cfg = PoseConfig::builtin().unwrap();
//! // A blank frame cannot be aligned: low confidence and not within tolerance, never a panic.
//! let blank = image::RgbImage::from_pixel(320, 240, image::Rgb([128, 128, 128]));
//! let r = pose::analyze(&blank, &blank, &cfg, &PoseOptions::default());
//! assert!(!r.within_tolerance && r.confidence < 0.5);
//! ```

pub mod affine;
pub mod face;
pub mod features;
pub mod head;
#[cfg(feature = "face-model")]
mod nnef_read;
mod pattern;
pub mod refine;
pub mod similarity;

use image::{GrayImage, RgbImage};
use serde::{Deserialize, Serialize};

use crate::calibration::{Calibration, CalibrationError};
use crate::vocab::Area;
use face::Landmarks;
use features::Features;
use refine::{GradImage, Template};
use similarity::Sim;

/// The working image's long side for registration.
pub const WORKING_SIDE: u32 = 960;
const MAX_FEATURES: usize = 700;

/// The working copies' long side for images whose shorter long side is `long`.
fn working_side(long: u32) -> u32 {
    WORKING_SIDE.min(long).max(32)
}

/// Pose tolerances (`tolerances.toml`, `[pose]`).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct PoseTolerances {
    pub translation_cm: f64,
    pub translation_fraction: f64,
    pub roll_deg: f64,
    pub scale_pct: f64,
    pub yaw_deg: f64,
    pub pitch_deg: f64,
    pub mouth_open: f64,
    pub smile_width: f64,
    pub eye_open: f64,
    pub brow_height: f64,
    pub min_confidence: f64,
    pub interpupillary_mm: f64,
}

#[derive(Deserialize)]
struct TolerancesFile {
    pose: PoseTolerances,
}

/// What the pose check reads from `calibration/`.
#[derive(Clone, Debug)]
pub struct PoseConfig {
    pub tolerances: PoseTolerances,
}

impl PoseConfig {
    pub fn load(cal: &Calibration) -> Result<Self, CalibrationError> {
        let t: TolerancesFile = cal.load("tolerances.toml")?;
        Ok(Self { tolerances: t.pose })
    }

    pub fn builtin() -> Result<Self, CalibrationError> {
        Self::load(&Calibration::builtin())
    }
}

/// Options of a pose check.
#[derive(Clone, Debug, Default)]
pub struct PoseOptions {
    /// The treatment area (face and neck use the face path; others registration only).
    pub area: Option<Area>,
    /// Millimetres per frame pixel at the subject (from the grey card), when known.
    pub mm_per_px: Option<f64>,
    /// Restrict registration to this region of the baseline (x, y, w, h in baseline pixels).
    pub subject: Option<[u32; 4]>,
}

/// Expression measures and their changes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ExpressionReport {
    pub mouth_open: f64,
    pub smile_width: f64,
    pub eye_open: f64,
    pub brow_height: f64,
    pub baseline: head::Expression,
    pub frame: head::Expression,
}

/// One scored axis.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Axis {
    pub name: String,
    pub value: f64,
    pub unit: String,
    pub tolerance: f64,
    /// |value| / tolerance.
    pub ratio: f64,
}

/// The pose report (`sameframe analyze pose --json`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PoseReport {
    pub dx_px: f64,
    pub dy_px: f64,
    pub rotation_deg: f64,
    pub scale: f64,
    pub yaw_deg: Option<f64>,
    pub pitch_deg: Option<f64>,
    pub expression: Option<ExpressionReport>,
    pub score: f64,
    pub within_tolerance: bool,
    pub hints: Vec<String>,
    pub inliers: usize,
    pub confidence: f64,
    /// "features" or "face+features".
    pub method: String,
    pub reasons: Vec<String>,
    pub dx_cm: Option<f64>,
    pub dy_cm: Option<f64>,
    /// Where the centimetre scale came from: "card" or "interpupillary", when known.
    pub scale_source: Option<String>,
    pub frankfort_tilt_deg: Option<f64>,
    pub frankfort_delta_deg: Option<f64>,
    /// Correlation of the aligned baseline with the frame.
    pub ncc: f64,
    pub axes: Vec<Axis>,
    /// Where a baseline pixel lands in the frame (full-resolution pixels):
    /// `x' = a0·x − a1·y + b0`, `y' = a1·x + a0·y + b1`, as `[a0, a1, b0, b1]`; none when the
    /// frame could not be registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_from_baseline: Option<[f64; 4]>,
}

/// A working copy: greyscale, reduced so both images share a scale.
#[derive(Clone, Debug)]
struct Work {
    gray: GrayImage,
    grad: GradImage,
    /// Full-resolution pixels per working pixel.
    factor: f64,
}

/// A frame's registration inputs (its working copy and features), made ahead of
/// [`compare_prepared`]: on another thread while the baseline is still being prepared.
#[derive(Clone, Debug)]
pub struct PreparedFrame {
    side: u32,
    work: Work,
    features: Features,
    face: Option<FrameFace>,
}

/// A frame's face tracked from a baseline's face ahead of [`compare_prepared`] (see
/// [`Baseline::prepare_with_frame`]): used by the comparison with that baseline only.
#[derive(Clone, Debug)]
pub struct FrameFace {
    /// The baseline's face it was tracked from.
    from: Landmarks,
    /// The frame's face; `None` when tracking lost it (the comparison then searches for it).
    face: Option<Landmarks>,
}

impl PreparedFrame {
    /// The working copy and features of `img` for a baseline at least as large as it (the
    /// usual case: one camera); [`compare_prepared`] makes them again when the baseline
    /// turns out smaller.
    pub fn new(img: &RgbImage) -> Self {
        let side = working_side(img.width().max(img.height()));
        let work = work(img, side);
        let features = frame_features(&work.gray);
        Self {
            side,
            work,
            features,
            face: None,
        }
    }

    /// The same, with the frame's face tracked ahead from a baseline's face.
    pub fn with_face(self, face: Option<FrameFace>) -> Self {
        Self { face, ..self }
    }
}

/// A frame's features: over the whole working copy (only the baseline's are masked to the
/// subject).
fn frame_features(gray: &GrayImage) -> Features {
    features::extract(gray, MAX_FEATURES, &|_, _| true)
}

/// Luma reduced by an integer factor (box average) so the long side is at most `side`:
/// Rec. 601 weights in fixed point (×256), rounded once per output pixel; rows on every core.
fn work(img: &RgbImage, side: u32) -> Work {
    let gray = reduced_luma(img, side);
    let f = reduction(img, side);
    let grad = GradImage::new(&gray);
    Work {
        gray,
        grad,
        factor: f64::from(f),
    }
}

/// The integer factor by which [`work`] reduces `img` so its long side is at most `side`.
fn reduction(img: &RgbImage, side: u32) -> u32 {
    img.width().max(img.height()).div_ceil(side.max(1)).max(1)
}

/// The luma plane of [`work`]: each output pixel the rounded mean of an `f`×`f` block.
fn reduced_luma(img: &RgbImage, side: u32) -> GrayImage {
    use rayon::prelude::*;
    let (w, h) = img.dimensions();
    let f = reduction(img, side) as usize;
    let (ow, oh) = ((w as usize / f).max(1), (h as usize / f).max(1));
    let (raw, stride) = (img.as_raw(), w as usize * 3);
    // A block wider or taller than the image (a 1-pixel-wide strip) averages what there is.
    let (bw, bh) = (f.min(w as usize), f.min(h as usize));
    let n = 256 * (bw * bh) as u64;
    let mut data = vec![0u8; ow * oh];
    data.par_chunks_mut(ow).enumerate().for_each_init(
        || vec![0u64; ow],
        |acc, (oy, out)| {
            acc.fill(0);
            for y in oy * f..oy * f + bh {
                let row = &raw[y * stride..y * stride + ow * bw * 3];
                for (a, block) in acc.iter_mut().zip(row.chunks_exact(bw * 3)) {
                    let sum: u64 = block
                        .chunks_exact(3)
                        .map(|p| {
                            u64::from(
                                77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2]),
                            )
                        })
                        .sum();
                    *a += sum;
                }
            }
            for (o, &a) in out.iter_mut().zip(acc.iter()) {
                *o = ((a + n / 2) / n).min(255) as u8;
            }
        },
    );
    GrayImage::from_raw(ow as u32, oh as u32, data)
        .unwrap_or_else(|| GrayImage::new(ow as u32, oh as u32))
}

/// The baseline, analysed once and compared with many frames.
#[derive(Clone, Debug)]
pub struct Baseline {
    width: u32,
    height: u32,
    side: u32,
    work: Work,
    features: Features,
    template: Template,
    face: Option<Landmarks>,
    area: Option<Area>,
    notes: Vec<String>,
}

/// Whether tracked landmarks still show a face.
fn present(l: &Landmarks) -> bool {
    l.presence > 0.5
}

/// A follow-up's face tracked from its baseline's (a follow-up is framed like its baseline):
/// two passes, as a detection is refined once; `None` when either pass loses the face.
fn track_from_baseline(img: &RgbImage, base_face: &Landmarks) -> Option<Landmarks> {
    face::track(img, base_face)
        .ok()
        .filter(present)
        .and_then(|first| face::track(img, &first).ok())
        .filter(present)
}

/// The frame's face: tracked from the previous frame's, else from the baseline's (`ahead` when
/// that was done ahead, see [`FrameFace`]), else detected. Tracking needs only the landmark
/// model; the detector is loaded only when it fails.
fn frame_face(
    img: &RgbImage,
    prev_face: Option<&Landmarks>,
    base_face: Option<&Landmarks>,
    area: Option<Area>,
    ahead: Option<Option<Landmarks>>,
) -> Option<Landmarks> {
    let tracked = match (prev_face, base_face, ahead) {
        (Some(p), _, _) => face::track(img, p).ok().filter(present),
        (None, Some(_), Some(ahead)) => ahead,
        (None, Some(b), None) => track_from_baseline(img, b),
        (None, None, _) => None,
    };
    tracked.or_else(|| {
        face::models()
            .ok()?
            .face_down_to(img, face_search(area))
            .ok()
            .flatten()
    })
}

/// Whether an area is registered on the face (its models are needed): face, neck, or an area
/// not given (the face is used when one is found).
pub fn face_area(area: Option<Area>) -> bool {
    matches!(area, None | Some(Area::Face) | Some(Area::Neck))
}

/// How small a face is looked for: with the area given as the face or neck, down to small
/// faces; with no area given, only a face that frames the shot ([`face::Search::Framing`],
/// about a seventh of the frame's short side or more): a smaller face in a wider scene leaves
/// the frame registered as a whole, as a scene without a face is, and costs a fifth of the
/// detector runs.
pub fn face_search(area: Option<Area>) -> face::Search {
    match area {
        None => face::Search::Framing,
        Some(_) => face::Search::Small,
    }
}

impl Baseline {
    /// Analyse `img` for frames whose long side is `frame_long` pixels.
    pub fn prepare(img: &RgbImage, opts: &PoseOptions, frame_long: u32) -> Self {
        Self::prepare_cached(img, opts, frame_long, None)
    }

    /// [`Baseline::prepare`] for a photo whose bytes hash to `sha256`: its face is looked for
    /// once and kept in the data directory's cache ([`face::cached_face`]).
    pub fn prepare_cached(
        img: &RgbImage,
        opts: &PoseOptions,
        frame_long: u32,
        sha256: Option<&str>,
    ) -> Self {
        Self::prepare_with_frame(img, opts, frame_long, sha256, None, || None).0
    }

    /// [`Baseline::prepare_cached`], by a caller that may have read the cache already and may
    /// have a frame in hand:
    /// - `known` is what [`face::cached_face_state`] answered for this photo and the options'
    ///   search (`None`: read the cache here);
    /// - when the baseline shows a face, the face of the frame that `frame` yields is tracked
    ///   from it on another thread while the baseline's features are made (the comparison
    ///   would otherwise track it after registering, on one core). `frame` is called only
    ///   then, and may wait for the frame to be decoded; `None` tracks nothing. Hand the
    ///   result to the frame with [`PreparedFrame::with_face`].
    pub fn prepare_with_frame(
        img: &RgbImage,
        opts: &PoseOptions,
        frame_long: u32,
        sha256: Option<&str>,
        known: Option<Option<Landmarks>>,
        frame: impl FnOnce() -> Option<std::sync::Arc<RgbImage>> + Send,
    ) -> (Self, Option<FrameFace>) {
        let side = working_side(img.width().max(img.height()).min(frame_long));
        let work = work(img, side);
        let mut notes = Vec::new();
        let face = if face_area(opts.area) {
            let search = face_search(opts.area);
            let find = || {
                face::models()
                    .map_err(Clone::clone)?
                    .face_down_to(img, search)
            };
            let found = match (sha256, known) {
                (Some(_), Some(known)) => Ok(known),
                (Some(sha), None) => face::cached_face(sha, search, find),
                (None, _) => find(),
            };
            found.unwrap_or_else(|e| {
                notes.push(e.to_string());
                None
            })
        } else {
            None
        };
        // Register the subject, not the background: the face (with hair and neck) when there
        // is one, else the given subject region, else the whole frame.
        let f = work.factor as f32;
        let rect: Option<[f32; 4]> = match (&face, opts.subject) {
            (_, Some(r)) => Some([
                r[0] as f32,
                r[1] as f32,
                (r[0] + r[2]) as f32,
                (r[1] + r[3]) as f32,
            ]),
            (Some(l), None) => {
                let [x0, y0, x1, y1] = l.bounds();
                let (w, h) = (x1 - x0, y1 - y0);
                Some([x0 - 0.3 * w, y0 - 0.45 * h, x1 + 0.3 * w, y1 + 0.35 * h])
            }
            (None, None) => None,
        };
        let mask = |x: f32, y: f32| {
            rect.is_none_or(|r| x * f >= r[0] && x * f <= r[2] && y * f >= r[1] && y * f <= r[3])
        };
        let made = || {
            rayon::join(
                || features::extract(&work.gray, MAX_FEATURES, &mask),
                || Template::new(&work.grad, 3000, &mask),
            )
        };
        let ((features, template), frame_face) = match &face {
            Some(from) => std::thread::scope(|s| {
                let tracked = s.spawn(|| {
                    frame().map(|img| FrameFace {
                        from: from.clone(),
                        face: track_from_baseline(&img, from),
                    })
                });
                let made = made();
                (made, tracked.join().ok().flatten())
            }),
            None => (made(), None),
        };
        let base = Self {
            width: img.width(),
            height: img.height(),
            side,
            work,
            features,
            template,
            face,
            area: opts.area,
            notes,
        };
        (base, frame_face)
    }

    /// Whether the baseline shows a face.
    pub fn has_face(&self) -> bool {
        self.face.is_some()
    }

    /// The baseline's landmarks.
    pub fn landmarks(&self) -> Option<&Landmarks> {
        self.face.as_ref()
    }
}

/// Result of registration in working coordinates.
struct Registration {
    sim: Sim,
    inliers: usize,
    matches: usize,
    ncc: f64,
}

fn register(
    base: &Baseline,
    frame: &Work,
    made_ahead: Option<Features>,
    prev: Option<Sim>,
) -> Option<Registration> {
    // Live: start from the previous estimate when it still explains the frame.
    if let Some(p) = prev
        && let Some(r) = refine::refine(&base.template, &frame.grad, p, 20)
        && r.ncc > 0.75
    {
        return Some(Registration {
            sim: r.sim,
            inliers: r.used,
            matches: r.used,
            ncc: r.ncc,
        });
    }
    let ff = made_ahead.unwrap_or_else(|| frame_features(&frame.gray));
    let matches = features::match_features(&base.features, &ff, 0.85, 90);
    let src: Vec<[f64; 2]> = matches
        .iter()
        .map(|m| {
            [
                f64::from(base.features.keypoints[m.0].x),
                f64::from(base.features.keypoints[m.0].y),
            ]
        })
        .collect();
    let dst: Vec<[f64; 2]> = matches
        .iter()
        .map(|m| {
            [
                f64::from(ff.keypoints[m.1].x),
                f64::from(ff.keypoints[m.1].y),
            ]
        })
        .collect();
    let threshold = 3.0f64.max(f64::from(frame.gray.width().max(frame.gray.height())) / 320.0);
    let consensus = similarity::ransac(&src, &dst, threshold, (0.55, 1.8), 0x5EED);
    let (sim, inliers) = match consensus {
        Some(c) if c.inliers.len() >= 6 => (c.sim, c.inliers.len()),
        _ => (Sim::IDENTITY, 0),
    };
    let refined = refine::refine(&base.template, &frame.grad, sim, 30);
    match refined {
        Some(r) if inliers >= 6 || r.ncc > 0.8 => Some(Registration {
            sim: r.sim,
            inliers,
            matches: matches.len(),
            ncc: r.ncc,
        }),
        Some(r) => Some(Registration {
            sim,
            inliers,
            matches: matches.len(),
            ncc: r.ncc.min(0.0),
        }),
        None => Some(Registration {
            sim,
            inliers,
            matches: matches.len(),
            ncc: 0.0,
        }),
    }
}

/// Compare a frame with a prepared baseline. `prev` is the last estimate (live use);
/// `prev_face` the frame's last landmarks (tracking).
pub fn compare(
    base: &Baseline,
    img: &RgbImage,
    cfg: &PoseConfig,
    opts: &PoseOptions,
    prev: Option<Sim>,
    prev_face: Option<&Landmarks>,
) -> (PoseReport, Option<Sim>, Option<Landmarks>) {
    compare_with(base, img, None, cfg, opts, prev, prev_face)
}

/// [`compare`] of one frame (no live state) whose working copy and features were made ahead
/// ([`PreparedFrame::new`]); the same report as [`compare`] gives.
pub fn compare_prepared(
    base: &Baseline,
    img: &RgbImage,
    prepared: PreparedFrame,
    cfg: &PoseConfig,
    opts: &PoseOptions,
) -> PoseReport {
    compare_with(base, img, Some(prepared), cfg, opts, None, None).0
}

fn compare_with(
    base: &Baseline,
    img: &RgbImage,
    mut prepared: Option<PreparedFrame>,
    cfg: &PoseConfig,
    opts: &PoseOptions,
    prev: Option<Sim>,
    prev_face: Option<&Landmarks>,
) -> (PoseReport, Option<Sim>, Option<Landmarks>) {
    let t = &cfg.tolerances;
    let mut reasons: Vec<String> = base.notes.clone();
    if img.width() < 32 || img.height() < 32 || base.width < 32 || base.height < 32 {
        reasons.push(format!(
            "the images are too small to compare ({}×{} against {}×{}; at least 32×32)",
            base.width,
            base.height,
            img.width(),
            img.height()
        ));
        return (empty_report(reasons), None, None);
    }
    let side = base.side.min(img.width().max(img.height()));
    // What was made ahead is used when it was made at this scale (the face: from this
    // baseline's face).
    let ahead = prepared
        .as_mut()
        .and_then(|p| p.face.take())
        .filter(|f| base.face.as_ref() == Some(&f.from))
        .map(|f| f.face);
    let (frame, made_ahead) = match prepared.filter(|p| p.side == side) {
        Some(p) => (p.work, Some(p.features)),
        None => (work(img, side), None),
    };
    let use_face = face_area(opts.area.or(base.area)) && base.face.is_some();
    let (reg, frame_face) = rayon::join(
        || register(base, &frame, made_ahead, prev),
        || {
            if !use_face {
                return None;
            }
            frame_face(
                img,
                prev_face,
                base.face.as_ref(),
                opts.area.or(base.area),
                ahead,
            )
        },
    );
    let Some(mut reg) = reg else {
        reasons.push("the frame could not be registered".into());
        return (empty_report(reasons), None, frame_face);
    };
    let mut landmark_only = false;
    // Faces: when texture does not match (another session's lighting, skin, hair), start the
    // direct alignment from the rigid face landmarks instead.
    if reg_confidence(&reg, prev.is_some()) < t.min_confidence
        && let (Some(bf), Some(ff)) = (&base.face, &frame_face)
    {
        let to_work = |l: &Landmarks, f: f64| -> Vec<[f64; 2]> {
            head::RIGID
                .iter()
                .map(|&i| [f64::from(l.points[i][0]) / f, f64::from(l.points[i][1]) / f])
                .collect()
        };
        if let Some(init) = similarity::fit(
            &to_work(bf, base.work.factor),
            &to_work(ff, frame.factor),
            None,
        ) {
            let refined = refine::refine(&base.template, &frame.grad, init, 30);
            let (sim, ncc) = match refined {
                Some(r) if r.ncc > 0.5 => (r.sim, r.ncc),
                _ => (init, refined.map_or(0.0, |r| r.ncc)),
            };
            if ncc > reg.ncc || reg.inliers < 6 {
                reg = Registration {
                    sim,
                    inliers: head::RIGID.len(),
                    matches: head::RIGID.len(),
                    ncc,
                };
                landmark_only = true;
            }
        }
    }
    // Working → full resolution, then to the centre convention.
    let full = reg.sim.rescaled(base.work.factor, frame.factor);
    let s = full.scale();
    let theta = -full.phi();
    let c = [f64::from(base.width) / 2.0, f64::from(base.height) / 2.0];
    let mc = full.apply(c);
    let (dx, dy) = (mc[0] - c[0], mc[1] - c[1]);

    let confidence = if landmark_only {
        // The face landmarks agree on the geometry; the pixels say how alike the faces look.
        (0.55 + 0.45 * ((reg.ncc - 0.4) / 0.4).clamp(0.0, 1.0)).min(1.0)
    } else {
        reg_confidence(&reg, prev.is_some())
    };
    if landmark_only {
        reasons.push(format!(
            "aligned on face landmarks: the skin and background texture did not match (correlation {:.2}); check it is the same patient",
            reg.ncc
        ));
    }
    let mut yaw = None;
    let mut pitch = None;
    let mut expression = None;
    let mut frankfort = None;
    let mut frankfort_delta = None;
    let mut method = "features".to_string();
    let mut cm_scale: Option<(f64, &str)> = opts.mm_per_px.map(|m| (m / 10.0, "card"));
    if use_face {
        match (&base.face, &frame_face) {
            (Some(bf), Some(ff)) => {
                if let Some(d) = head::delta(bf, ff) {
                    method = "face+features".into();
                    yaw = Some(d.yaw_deg);
                    pitch = Some(d.pitch_deg);
                    frankfort = Some(d.frankfort_tilt_deg);
                    frankfort_delta = Some(d.frankfort_delta_deg);
                    expression = Some(ExpressionReport {
                        mouth_open: d.frame.mouth_open - d.baseline.mouth_open,
                        smile_width: d.frame.smile_width - d.baseline.smile_width,
                        eye_open: d.frame.eye_open - d.baseline.eye_open,
                        brow_height: d.frame.brow_height - d.baseline.brow_height,
                        baseline: d.baseline,
                        frame: d.frame,
                    });
                    if cm_scale.is_none() {
                        let iod = head::interocular_px(ff);
                        if iod > 8.0 {
                            cm_scale = Some((t.interpupillary_mm / 10.0 / iod, "interpupillary"));
                        }
                    }
                }
            }
            (Some(_), None) => reasons.push(
                "no face found in the frame: head turn, chin height and expression are not scored"
                    .into(),
            ),
            _ => {}
        }
    }
    // Axes.
    let mut axes = Vec::new();
    let (dx_cm, dy_cm) = match cm_scale {
        Some((cm_per_px, _)) => (Some(dx * cm_per_px), Some(dy * cm_per_px)),
        None => (None, None),
    };
    match (dx_cm, dy_cm) {
        (Some(x), Some(y)) => {
            axes.push(axis("horizontal position", x, "cm", t.translation_cm));
            axes.push(axis("vertical position", y, "cm", t.translation_cm));
        }
        _ => {
            let tol = t.translation_fraction * f64::from(img.width().max(img.height()));
            axes.push(axis("horizontal position", dx, "px", tol));
            axes.push(axis("vertical position", dy, "px", tol));
        }
    }
    axes.push(axis("roll", theta.to_degrees(), "°", t.roll_deg));
    axes.push(axis("scale", (s - 1.0) * 100.0, "%", t.scale_pct));
    if let Some(y) = yaw {
        axes.push(axis("yaw", y, "°", t.yaw_deg));
    }
    if let Some(p) = pitch {
        axes.push(axis("pitch", p, "°", t.pitch_deg));
    }
    if let Some(e) = &expression {
        axes.push(axis("mouth opening", e.mouth_open, "IOD", t.mouth_open));
        axes.push(axis("smile width", e.smile_width, "IOD", t.smile_width));
        axes.push(axis("eye opening", e.eye_open, "IOD", t.eye_open));
        axes.push(axis("brow height", e.brow_height, "IOD", t.brow_height));
    }
    let confident = confidence >= t.min_confidence;
    if !confident {
        reasons.push(format!(
            "low confidence ({confidence:.2}): the frame does not seem to show the baseline's subject or area ({} matching features, correlation {:.2})",
            reg.inliers, reg.ncc
        ));
    }
    let sum_sq: f64 = axes.iter().map(|a| a.ratio * a.ratio).sum();
    let score = if confident {
        100.0 * (-0.1625 * sum_sq).exp()
    } else {
        0.0
    };
    let within = confident && axes.iter().all(|a| a.ratio <= 1.0);
    let is_head = face_area(opts.area.or(base.area)) && base.face.is_some();
    let hints = if confident {
        hints(&axes, is_head)
    } else {
        vec!["re-frame the patient as in the baseline photo".into()]
    };
    let report = PoseReport {
        dx_px: dx,
        dy_px: dy,
        rotation_deg: theta.to_degrees(),
        scale: s,
        yaw_deg: yaw,
        pitch_deg: pitch,
        expression,
        score,
        within_tolerance: within,
        hints,
        inliers: reg.inliers,
        confidence,
        method,
        reasons,
        dx_cm,
        dy_cm,
        scale_source: cm_scale.map(|(_, s)| s.to_string()),
        frankfort_tilt_deg: frankfort,
        frankfort_delta_deg: frankfort_delta,
        ncc: reg.ncc,
        axes,
        frame_from_baseline: Some([full.a[0], full.a[1], full.b[0], full.b[1]]),
    };
    let keep = confident.then_some(reg.sim);
    (report, keep, frame_face)
}

/// Confidence of a texture registration from the agreement of features and pixels.
fn reg_confidence(reg: &Registration, tracked: bool) -> f64 {
    let inlier_score = (reg.inliers as f64 / 25.0).min(1.0);
    let ratio = if reg.matches > 0 {
        reg.inliers as f64 / reg.matches as f64
    } else {
        0.0
    };
    let ncc_score = ((reg.ncc - 0.3) / 0.5).clamp(0.0, 1.0);
    if tracked && reg.inliers == reg.matches {
        ncc_score
    } else {
        (ncc_score * (0.5 + 0.5 * inlier_score) * (0.6 + 0.4 * ratio.min(0.5) / 0.5))
            .clamp(0.0, 1.0)
    }
}

fn axis(name: &str, value: f64, unit: &str, tolerance: f64) -> Axis {
    Axis {
        name: name.into(),
        value,
        unit: unit.into(),
        tolerance,
        ratio: value.abs() / tolerance.max(1e-9),
    }
}

fn empty_report(reasons: Vec<String>) -> PoseReport {
    PoseReport {
        dx_px: 0.0,
        dy_px: 0.0,
        rotation_deg: 0.0,
        scale: 1.0,
        yaw_deg: None,
        pitch_deg: None,
        expression: None,
        score: 0.0,
        within_tolerance: false,
        hints: vec!["re-frame the patient as in the baseline photo".into()],
        inliers: 0,
        confidence: 0.0,
        method: "features".into(),
        reasons,
        dx_cm: None,
        dy_cm: None,
        scale_source: None,
        frankfort_tilt_deg: None,
        frankfort_delta_deg: None,
        ncc: 0.0,
        axes: Vec::new(),
        frame_from_baseline: None,
    }
}

/// Hints for the person at the camera, largest correction first.
fn hints(axes: &[Axis], head: bool) -> Vec<String> {
    let mut out: Vec<(f64, String)> = Vec::new();
    for a in axes.iter().filter(|a| a.ratio > 1.0) {
        let v = a.value;
        let amount = |u: &str| {
            if u == "cm" {
                format!("{:.1} cm", v.abs())
            } else if u == "px" {
                format!("{:.0} px", v.abs())
            } else {
                format!("{:.0}°", v.abs().max(1.0))
            }
        };
        let text = match a.name.as_str() {
            "horizontal position" => format!(
                "move the patient {} to the {} of the frame",
                amount(&a.unit),
                if v > 0.0 { "left" } else { "right" }
            ),
            "vertical position" => format!(
                "move the patient {} {} in the frame",
                amount(&a.unit),
                if v > 0.0 { "up" } else { "down" }
            ),
            "roll" if head => format!(
                "level the head: tilt it {} toward the patient's {} shoulder",
                amount("°"),
                if v > 0.0 { "left" } else { "right" }
            ),
            "roll" => format!(
                "rotate the subject {} {} as seen on screen",
                amount("°"),
                if v > 0.0 {
                    "clockwise"
                } else {
                    "counter-clockwise"
                }
            ),
            "scale" => {
                if v > 0.0 {
                    format!(
                        "move the patient back (or the camera away): the subject is {:.0} % larger than in the baseline",
                        v
                    )
                } else {
                    format!(
                        "move the patient closer (or the camera in): the subject is {:.0} % smaller than in the baseline",
                        -v
                    )
                }
            }
            "yaw" => format!(
                "turn head {} to the patient's {}",
                amount("°"),
                if v > 0.0 { "right" } else { "left" }
            ),
            "pitch" => format!(
                "tilt chin {} {}",
                if v > 0.0 { "down" } else { "up" },
                amount("°")
            ),
            "mouth opening" => {
                if v > 0.0 {
                    "close the mouth gently".into()
                } else {
                    "part the lips slightly, as in the baseline".into()
                }
            }
            "smile width" => {
                if v > 0.0 {
                    "relax the smile".into()
                } else {
                    "smile slightly, as in the baseline".into()
                }
            }
            "eye opening" => {
                if v > 0.0 {
                    "relax the eyes".into()
                } else {
                    "open the eyes a little more".into()
                }
            }
            "brow height" => {
                if v > 0.0 {
                    "relax the brows".into()
                } else {
                    "raise the brows slightly".into()
                }
            }
            _ => continue,
        };
        out.push((a.ratio, text));
    }
    out.sort_by(|a, b| b.0.total_cmp(&a.0));
    out.into_iter().map(|(_, t)| t).collect()
}

/// Compare two images once (the CLI's `analyze pose`).
pub fn analyze(
    baseline: &RgbImage,
    frame: &RgbImage,
    cfg: &PoseConfig,
    opts: &PoseOptions,
) -> PoseReport {
    let base = Baseline::prepare(baseline, opts, frame.width().max(frame.height()));
    compare(&base, frame, cfg, opts, None, None).0
}

/// Frame-rate pose guidance: the baseline is analysed once; each frame starts from the last
/// estimate and tracks the face from its last landmarks.
#[derive(Debug)]
pub struct PoseTracker {
    base: Baseline,
    cfg: PoseConfig,
    opts: PoseOptions,
    prev: Option<Sim>,
    prev_face: Option<Landmarks>,
    frame_long: u32,
}

impl PoseTracker {
    /// Prepare for frames whose long side is `frame_long`.
    pub fn new(baseline: &RgbImage, cfg: PoseConfig, opts: PoseOptions, frame_long: u32) -> Self {
        Self {
            base: Baseline::prepare(baseline, &opts, frame_long),
            cfg,
            opts,
            prev: None,
            prev_face: None,
            frame_long,
        }
    }

    /// The prepared baseline.
    pub fn baseline(&self) -> &Baseline {
        &self.base
    }

    /// Set the card-based scale (from the lighting check) for the next frames.
    pub fn set_mm_per_px(&mut self, mm_per_px: Option<f64>) {
        self.opts.mm_per_px = mm_per_px;
    }

    /// Compare one frame.
    pub fn analyze(&mut self, frame: &RgbImage) -> (PoseReport, Option<Landmarks>) {
        if frame.width().max(frame.height()) != self.frame_long {
            // The camera changed resolution: re-prepare for the new size.
            self.frame_long = frame.width().max(frame.height());
            self.prev = None;
        }
        let (report, sim, face) = compare(
            &self.base,
            frame,
            &self.cfg,
            &self.opts,
            self.prev,
            self.prev_face.as_ref(),
        );
        self.prev = sim;
        self.prev_face = face.clone();
        (report, face)
    }
}

#[cfg(test)]
mod work_tests {
    use super::reduced_luma;
    use image::RgbImage;
    use proptest::prelude::*;

    /// Each output pixel by definition: the rounded mean Rec. 601 luma (×256 weights) of the
    /// pixels of its block that lie in the image.
    fn by_definition(img: &RgbImage, f: u32) -> Vec<u8> {
        let (w, h) = img.dimensions();
        let (ow, oh) = ((w / f).max(1), (h / f).max(1));
        let mut out = Vec::new();
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut sum, mut n) = (0u64, 0u64);
                for y in oy * f..(oy * f + f).min(h) {
                    for x in ox * f..(ox * f + f).min(w) {
                        let p = img.get_pixel(x, y).0;
                        sum += u64::from(
                            77 * u32::from(p[0]) + 150 * u32::from(p[1]) + 29 * u32::from(p[2]),
                        );
                        n += 256;
                    }
                }
                out.push(((sum + n / 2) / n).min(255) as u8);
            }
        }
        out
    }

    proptest! {
        #[test]
        fn the_reduced_luma_is_the_rounded_block_mean(w in 1u32..90, h in 1u32..90, side in 4u32..64, seed: u64) {
            let mut s = seed | 1;
            let img = RgbImage::from_fn(w, h, |_, _| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                image::Rgb([(s >> 56) as u8, (s >> 48) as u8, (s >> 40) as u8])
            });
            let f = w.max(h).div_ceil(side).max(1);
            let got = reduced_luma(&img, side);
            prop_assert_eq!(got.dimensions(), ((w / f).max(1), (h / f).max(1)));
            prop_assert_eq!(got.into_raw(), by_definition(&img, f));
        }
    }
}

#[cfg(test)]
mod prepared_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::testkit::warp_similarity;

    fn photo(w: u32, h: u32) -> RgbImage {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/textures/coffee.jpg"
        );
        let img = image::open(path).unwrap().to_rgb8();
        image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle)
    }

    /// The report of `frame` against `base_img`, compared plainly and with the frame prepared
    /// ahead; and whether what was prepared ahead was at the scale the comparison needs.
    fn both_ways(base_img: &RgbImage, frame: &RgbImage) -> (PoseReport, PoseReport, bool) {
        let cfg = PoseConfig::builtin().unwrap();
        let opts = PoseOptions {
            area: Some(Area::Body),
            ..Default::default()
        };
        let long = frame.width().max(frame.height());
        let base = Baseline::prepare_cached(base_img, &opts, long, None);
        let prepared = PreparedFrame::new(frame);
        let at_scale = prepared.side == base.side.min(long);
        let plain = compare(&base, frame, &cfg, &opts, None, None).0;
        let ahead = compare_prepared(&base, frame, prepared, &cfg, &opts);
        (plain, ahead, at_scale)
    }

    #[test]
    fn a_frame_prepared_ahead_gives_the_same_report() {
        let base_img = photo(1280, 720);
        let frame = warp_similarity(&base_img, 14.0, -9.0, 2.5, 1.04, [0, 0, 0]);
        let (plain, ahead, at_scale) = both_ways(&base_img, &frame);
        assert!(at_scale);
        assert!(plain.frame_from_baseline.is_some(), "{plain:?}");
        assert_eq!(ahead, plain);
    }

    #[test]
    fn a_frame_prepared_at_another_scale_is_made_again() {
        // A baseline smaller than the working side: the frame is compared at its scale, not
        // at the one it was prepared at.
        let frame = warp_similarity(&photo(1600, 1200), 20.0, 10.0, 1.0, 1.0, [0, 0, 0]);
        let (plain, ahead, at_scale) = both_ways(&photo(400, 300), &frame);
        assert!(!at_scale);
        assert_eq!(ahead, plain);
    }

    #[cfg(feature = "face-model")]
    fn face_pair() -> (RgbImage, RgbImage) {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/faces/astronaut.jpg"
        );
        let img = image::open(path).unwrap().to_rgb8();
        let base = image::imageops::resize(&img, 1080, 1080, image::imageops::FilterType::Triangle);
        let frame = warp_similarity(&base, -12.0, 8.0, 6.0, 0.95, [10, 10, 10]);
        (base, frame)
    }

    /// The baseline prepared with the frame's face tracked ahead, and what was tracked.
    #[cfg(feature = "face-model")]
    fn with_frame(base: &RgbImage, frame: &RgbImage) -> (Baseline, Option<FrameFace>) {
        let frame = std::sync::Arc::new(frame.clone());
        let long = frame.width().max(frame.height());
        Baseline::prepare_with_frame(base, &PoseOptions::default(), long, None, None, || {
            Some(frame)
        })
    }

    #[cfg(feature = "face-model")]
    #[test]
    fn a_face_tracked_ahead_gives_the_same_report() {
        let (base_img, frame) = face_pair();
        let (base, tracked) = with_frame(&base_img, &frame);
        let tracked = tracked.expect("the baseline shows a face: the frame's is tracked");
        assert_eq!(tracked.from, *base.landmarks().unwrap());
        assert!(tracked.face.is_some());
        let (cfg, opts) = (PoseConfig::builtin().unwrap(), PoseOptions::default());
        let plain = compare(&base, &frame, &cfg, &opts, None, None).0;
        assert_eq!(plain.method, "face+features");
        let prepared = PreparedFrame::new(&frame).with_face(Some(tracked));
        assert_eq!(
            compare_prepared(&base, &frame, prepared, &cfg, &opts),
            plain
        );
    }

    #[cfg(feature = "face-model")]
    #[test]
    fn a_face_tracked_from_another_baseline_face_is_not_used() {
        let (base_img, frame) = face_pair();
        let (base, tracked) = with_frame(&base_img, &frame);
        let mut tracked = tracked.unwrap();
        // A wrong frame face (shifted 60 px) changes the report when it is used...
        for p in tracked.face.as_mut().unwrap().points.iter_mut() {
            p[0] += 60.0;
        }
        let (cfg, opts) = (PoseConfig::builtin().unwrap(), PoseOptions::default());
        let plain = compare(&base, &frame, &cfg, &opts, None, None).0;
        let used = PreparedFrame::new(&frame).with_face(Some(tracked.clone()));
        assert_ne!(compare_prepared(&base, &frame, used, &cfg, &opts), plain);
        // ...and is ignored when it was tracked from a face other than this baseline's.
        tracked.from.points[0][0] += 1.0;
        let other = PreparedFrame::new(&frame).with_face(Some(tracked));
        assert_eq!(compare_prepared(&base, &frame, other, &cfg, &opts), plain);
    }

    #[test]
    fn the_frame_is_not_asked_for_when_the_baseline_shows_no_face() {
        let base_img = photo(1280, 720);
        let asked = std::sync::atomic::AtomicBool::new(false);
        let opts = PoseOptions {
            area: Some(Area::Body),
            ..Default::default()
        };
        let (base, tracked) =
            Baseline::prepare_with_frame(&base_img, &opts, 1280, None, None, || {
                asked.store(true, std::sync::atomic::Ordering::SeqCst);
                None
            });
        assert!(!base.has_face() && tracked.is_none());
        assert!(!asked.load(std::sync::atomic::Ordering::SeqCst));
    }
}
