//! The live pipeline: the camera sink (frame → preview texture, on the camera thread) and the
//! analysis worker (lighting, pose against the baseline, Frankfort line, edge difference) on a
//! thread named `sameframe-analysis`. The UI thread only reads the latest results.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use egui::{ColorImage, TextureHandle, TextureId, TextureOptions};
use image::RgbImage;

use crate::camera::CameraFrame;
use sameframe_core::analysis::frame::{Frame, fit_within, resize_rgb};
use sameframe_core::analysis::guides::{self, EdgeMap, Segment};
use sameframe_core::analysis::lighting::{self, LightingConfig, LightingReport, LightingTracker};
use sameframe_core::analysis::pose::face::{self, Landmarks};
use sameframe_core::analysis::pose::{PoseConfig, PoseOptions, PoseReport, PoseTracker};
use sameframe_core::calibration::Calibration;
use sameframe_core::records::Area;

/// The newest camera frame, shared by the camera sink (writer), the analysis worker and the
/// capture button (readers).
#[derive(Clone, Default)]
pub struct FrameSlot(Arc<Mutex<Option<Arc<CameraFrame>>>>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FrameSlot {
    pub fn put(&self, f: Arc<CameraFrame>) {
        *lock(&self.0) = Some(f);
    }

    pub fn get(&self) -> Option<Arc<CameraFrame>> {
        lock(&self.0).clone()
    }
}

/// Largest preview texture side (GPUs guarantee 2048; most take far more).
pub const PREVIEW_MAX_SIDE: u32 = 3840;

/// Sampling for the live preview and the baseline ghost: smooth when the picture is enlarged,
/// nearest-texel when it is reduced (a 1080p frame in a laptop-sized preview). Bilinear
/// reduction of two full-frame layers costs a software-rendered station (Mesa llvmpipe, no GPU)
/// a third of its frame rate, for a difference a person cannot see in a moving preview; the
/// analysis and the stored capture always use the full-resolution frame.
pub const PREVIEW_TEXTURE: TextureOptions = TextureOptions {
    magnification: egui::TextureFilter::Linear,
    minification: egui::TextureFilter::Nearest,
    wrap_mode: egui::TextureWrapMode::ClampToEdge,
    mipmap_mode: None,
};

/// The baseline ghost, blended into the preview on the camera thread: one full-frame layer for
/// the renderer instead of two (a software-rendered station loses a third of its frame rate to
/// a second alpha-blended 1080p layer). The UI sets the image and opacity; the sink reads them.
#[derive(Clone, Default)]
pub struct Ghost(Arc<Mutex<GhostState>>);

#[derive(Default)]
struct GhostState {
    baseline: Option<Arc<RgbImage>>,
    /// 0 = hidden, 255 = baseline only.
    alpha: u8,
    /// The baseline resampled to the current frame size.
    fitted: Option<RgbImage>,
}

impl Ghost {
    /// Show this baseline (None: no ghost).
    pub fn set_baseline(&self, baseline: Option<Arc<RgbImage>>) {
        let mut g = lock(&self.0);
        g.baseline = baseline;
        g.fitted = None;
    }

    /// Ghost opacity, 0..=1 (0 hides it).
    pub fn set_opacity(&self, opacity: f32) {
        lock(&self.0).alpha = (opacity.clamp(0.0, 1.0) * 255.0).round() as u8;
    }

    /// The frame as RGBA pixels for the preview, with the ghost blended in when shown.
    pub fn compose(&self, frame: &RgbImage) -> ColorImage {
        let (w, h) = frame.dimensions();
        let size = [w as usize, h as usize];
        let mut g = lock(&self.0);
        let alpha = g.alpha;
        let Some(baseline) = g.baseline.clone().filter(|_| alpha > 0) else {
            return ColorImage::from_rgb(size, frame.as_raw());
        };
        if g.fitted.as_ref().map(RgbImage::dimensions) != Some((w, h)) {
            g.fitted = Some(if baseline.dimensions() == (w, h) {
                baseline.as_ref().clone()
            } else {
                resize_rgb(&baseline, w, h)
            });
        }
        let Some(ghost) = g.fitted.as_ref() else {
            return ColorImage::from_rgb(size, frame.as_raw());
        };
        // Weights out of 256, so the blend is a shift (exact at 0 and 255).
        let a = (u16::from(alpha) * 256 + 127) / 255;
        let b = 256 - a;
        let mut pixels = vec![egui::Color32::BLACK; size[0] * size[1]];
        for ((px, f), g) in pixels
            .iter_mut()
            .zip(frame.as_raw().chunks_exact(3))
            .zip(ghost.as_raw().chunks_exact(3))
        {
            let mix = |i: usize| ((u16::from(f[i]) * b + u16::from(g[i]) * a + 128) >> 8) as u8;
            *px = egui::Color32::from_rgb(mix(0), mix(1), mix(2));
        }
        ColorImage::new(size, pixels)
    }
}

/// The camera sink: compose each frame with the ghost and upload it into `texture` (on the
/// camera thread), keep the frame in `slot`, and wake the UI.
pub fn preview_sink(
    texture: TextureHandle,
    slot: FrameSlot,
    ghost: Ghost,
    ctx: egui::Context,
) -> crate::camera::Sink {
    let mut texture = texture;
    Box::new(move |f: &Arc<CameraFrame>| {
        let src = fit_within(&f.image, PREVIEW_MAX_SIDE);
        texture.set(ghost.compose(&src), PREVIEW_TEXTURE);
        slot.put(f.clone());
        ctx.request_repaint();
    })
}

/// The analysis of one frame.
pub struct LiveResult {
    /// The frame analysed: a capture stores exactly these pixels with these numbers.
    pub frame: Arc<CameraFrame>,
    pub lighting: LightingReport,
    pub pose: Option<PoseReport>,
    /// The baseline the pose refers to.
    pub baseline_id: Option<String>,
    /// The patient's Frankfort line now (frame pixels).
    pub frankfort_live: Option<Segment>,
    /// The horizontal guide at the baseline's Frankfort height (frame pixels), when known.
    pub frankfort_target: Option<Segment>,
    /// Whether a face was found (face and neck areas).
    pub face_found: Option<bool>,
    /// The head's yaw in this frame (degrees), when a face was found.
    pub head_yaw_deg: Option<f64>,
    /// The edge-difference overlay and the fraction of edges that coincide.
    pub edges: Option<(TextureId, f64)>,
    pub mm_per_px: Option<f64>,
    /// How long the analysis took.
    pub took: Duration,
    pub at: Instant,
}

/// A baseline for the pose tracker.
#[derive(Clone)]
pub struct LiveBaseline {
    pub capture_id: String,
    pub image: Arc<RgbImage>,
    pub area: Area,
}

/// UI → analysis worker.
pub enum LiveCmd {
    /// Compare with this baseline (None: the view has none; lighting only).
    Baseline(Option<LiveBaseline>),
    /// Compute the edge-difference overlay.
    Edges(bool),
    /// The treatment area (face and neck track the face).
    Area(Option<Area>),
}

struct Shared {
    latest: Mutex<Option<Arc<LiveResult>>>,
    results: AtomicU64,
    stop: AtomicBool,
    preparing: AtomicBool,
}

/// The analysis worker's handle.
pub struct LiveWorker {
    tx: Sender<LiveCmd>,
    shared: Arc<Shared>,
    join: Option<JoinHandle<()>>,
}

impl LiveWorker {
    /// Start analysing the frames of `slot` at most `max_hz` times a second.
    pub fn spawn(
        ctx: egui::Context,
        slot: FrameSlot,
        cal: Calibration,
        max_hz: f64,
    ) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = Arc::new(Shared {
            latest: Mutex::new(None),
            results: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            preparing: AtomicBool::new(false),
        });
        let sh = shared.clone();
        let join = std::thread::Builder::new()
            .name("sameframe-analysis".into())
            .spawn(move || {
                let mut w = Analyser::new(ctx, cal);
                w.run(&slot, &rx, &sh, max_hz);
            })?;
        Ok(Self {
            tx,
            shared,
            join: Some(join),
        })
    }

    /// The latest analysis.
    pub fn latest(&self) -> Option<Arc<LiveResult>> {
        lock(&self.shared.latest).clone()
    }

    /// Analyses completed so far.
    pub fn results(&self) -> u64 {
        self.shared.results.load(Ordering::Relaxed)
    }

    /// True while a new baseline is being prepared.
    pub fn preparing(&self) -> bool {
        self.shared.preparing.load(Ordering::Relaxed)
    }

    pub fn send(&self, cmd: LiveCmd) {
        let _ = self.tx.send(cmd);
    }

    /// Forget the current results (after the baseline changed).
    pub fn clear(&self) {
        *lock(&self.shared.latest) = None;
    }
}

impl Drop for LiveWorker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

struct Analyser {
    ctx: egui::Context,
    pose_cfg: Option<PoseConfig>,
    card_mm: Option<(f64, f64)>,
    lighting: Option<LightingTracker>,
    pose: Option<PoseTracker>,
    baseline: Option<LiveBaseline>,
    baseline_edges: Option<EdgeMap>,
    baseline_target: Option<Segment>,
    area: Option<Area>,
    edges_on: bool,
    edge_tex: Option<TextureHandle>,
    prev_face: Option<Landmarks>,
}

/// Width of the edge-difference overlay.
const EDGE_WIDTH: u32 = 480;

impl Analyser {
    fn new(ctx: egui::Context, cal: Calibration) -> Self {
        let lighting = LightingConfig::load(&cal)
            .ok()
            .map(|c| LightingTracker::new(c, None, None));
        Self {
            ctx,
            pose_cfg: PoseConfig::load(&cal).ok(),
            card_mm: lighting::config::grey_card_size_mm(&cal).ok(),
            lighting,
            pose: None,
            baseline: None,
            baseline_edges: None,
            baseline_target: None,
            area: None,
            edges_on: false,
            edge_tex: None,
            prev_face: None,
        }
    }

    fn run(&mut self, slot: &FrameSlot, rx: &Receiver<LiveCmd>, sh: &Shared, max_hz: f64) {
        let period = Duration::from_secs_f64(1.0 / max_hz.clamp(0.5, 240.0));
        let mut last_seq = 0u64;
        let mut last_start = Instant::now() - period;
        while !sh.stop.load(Ordering::Relaxed) {
            loop {
                match rx.try_recv() {
                    Ok(cmd) => self.apply(cmd, sh),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
            let frame = match slot.get() {
                Some(f) if f.seq != last_seq => f,
                _ => {
                    std::thread::sleep(Duration::from_millis(4));
                    continue;
                }
            };
            let wait = period.saturating_sub(last_start.elapsed());
            if !wait.is_zero() {
                std::thread::sleep(wait.min(Duration::from_millis(20)));
                continue;
            }
            last_start = Instant::now();
            last_seq = frame.seq;
            if let Some(r) = self.analyse(frame) {
                *lock(&sh.latest) = Some(Arc::new(r));
                sh.results.fetch_add(1, Ordering::Relaxed);
                self.ctx.request_repaint();
            }
        }
    }

    fn apply(&mut self, cmd: LiveCmd, sh: &Shared) {
        match cmd {
            LiveCmd::Edges(on) => self.edges_on = on,
            LiveCmd::Area(a) => {
                self.area = a;
                self.prev_face = None;
            }
            LiveCmd::Baseline(b) => {
                self.pose = None;
                self.baseline_edges = None;
                self.baseline_target = None;
                *lock(&sh.latest) = None;
                if let (Some(b), Some(cfg)) = (&b, &self.pose_cfg) {
                    sh.preparing.store(true, Ordering::Relaxed);
                    let opts = PoseOptions {
                        area: Some(b.area),
                        mm_per_px: None,
                        subject: None,
                    };
                    // Prepared for frames the size of the baseline (a fixed camera).
                    let long = b.image.width().max(b.image.height());
                    self.pose = Some(PoseTracker::new(&b.image, cfg.clone(), opts, long));
                    sh.preparing.store(false, Ordering::Relaxed);
                }
                self.baseline = b;
            }
        }
    }

    fn analyse(&mut self, frame: Arc<CameraFrame>) -> Option<LiveResult> {
        let t0 = Instant::now();
        let img = frame.image.clone();
        let (w, h) = img.dimensions();
        let lighting = self.lighting.as_mut()?.analyze(&Frame::rgb8(&img));
        let mm_per_px = match (&lighting.card.kind, &lighting.card.quad, self.card_mm) {
            (Some(kind), Some(q), Some(mm)) => lighting::card_mm_per_px(kind, q, mm),
            _ => None,
        };
        let face_area = matches!(self.area, None | Some(Area::Face) | Some(Area::Neck));
        let (pose, landmarks) = match self.pose.as_mut() {
            Some(t) => {
                t.set_mm_per_px(mm_per_px);
                let (r, l) = t.analyze(&img);
                (Some(r), l)
            }
            None if face_area => {
                let l = face::models().ok().and_then(|m| match &self.prev_face {
                    Some(prev) => m.track(&img, prev).ok(),
                    None => m.face(&img).ok().flatten(),
                });
                (None, l)
            }
            None => (None, None),
        };
        self.prev_face = landmarks.clone();
        let frankfort_live = landmarks.as_ref().and_then(guides::frankfort_line);
        let frankfort_target = match (&self.pose, &self.baseline) {
            (Some(t), Some(b)) => t
                .baseline()
                .landmarks()
                .map(|l| guides::frankfort_target(Some(l), b.image.dimensions(), w, h, 0.4)),
            _ => None,
        };
        let edges = if self.edges_on {
            self.edges(&img)
        } else {
            None
        };
        Some(LiveResult {
            frame,
            lighting,
            pose,
            baseline_id: self.baseline.as_ref().map(|b| b.capture_id.clone()),
            frankfort_live,
            frankfort_target,
            face_found: face_area.then_some(landmarks.is_some()),
            head_yaw_deg: landmarks
                .as_ref()
                .and_then(sameframe_core::analysis::pose::head::yaw_deg),
            edges,
            mm_per_px,
            took: t0.elapsed(),
            at: Instant::now(),
        })
    }

    fn edges(&mut self, img: &RgbImage) -> Option<(TextureId, f64)> {
        let b = self.baseline.as_ref()?;
        let (w, h) = img.dimensions();
        let ew = EDGE_WIDTH.min(w).max(3);
        let eh = ((f64::from(h) * f64::from(ew) / f64::from(w.max(1))).round() as u32).max(3);
        if self
            .baseline_edges
            .as_ref()
            .is_none_or(|e| (e.width, e.height) != (ew, eh))
        {
            self.baseline_edges = Some(guides::edge_map(&b.image, ew, eh));
        }
        let frame_edges = guides::edge_map(img, ew, eh);
        let diff = guides::edge_difference(self.baseline_edges.as_ref()?, &frame_edges)?;
        let ci = ColorImage::from_rgba_unmultiplied([ew as usize, eh as usize], &diff.rgba);
        let tex = match &mut self.edge_tex {
            Some(t) => {
                t.set(ci, TextureOptions::NEAREST);
                t.id()
            }
            None => {
                let t = self
                    .ctx
                    .load_texture("edge-difference", ci, TextureOptions::NEAREST);
                let id = t.id();
                self.edge_tex = Some(t);
                id
            }
        };
        Some((tex, diff.agreement))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(w: u32, h: u32, v: [u8; 3]) -> RgbImage {
        RgbImage::from_pixel(w, h, image::Rgb(v))
    }

    #[test]
    fn ghost_blends_the_baseline_at_its_opacity_and_fits_it_to_the_frame() {
        let ghost = Ghost::default();
        let frame = flat(8, 6, [200, 100, 0]);
        // No baseline, or opacity 0: the frame itself.
        ghost.set_opacity(0.5);
        assert_eq!(
            ghost.compose(&frame).pixels[0],
            egui::Color32::from_rgb(200, 100, 0)
        );
        // A baseline of another size is resampled to the frame.
        ghost.set_baseline(Some(Arc::new(flat(4, 3, [0, 100, 200]))));
        let c = ghost.compose(&frame);
        assert_eq!(c.size, [8, 6]);
        // Opacity 0.5 is 128/255: within one level of the exact mean.
        let [r, g, b, _] = c.pixels[0].to_array();
        assert!(
            r.abs_diff(100) <= 1 && g == 100 && b.abs_diff(100) <= 1,
            "{:?}",
            c.pixels[0]
        );
        ghost.set_opacity(1.0);
        assert_eq!(
            ghost.compose(&frame).pixels[47],
            egui::Color32::from_rgb(0, 100, 200)
        );
        ghost.set_opacity(0.0);
        assert_eq!(
            ghost.compose(&frame).pixels[5],
            egui::Color32::from_rgb(200, 100, 0)
        );
        ghost.set_opacity(0.5);
        ghost.set_baseline(None);
        assert_eq!(
            ghost.compose(&frame).pixels[0],
            egui::Color32::from_rgb(200, 100, 0)
        );
    }
}
