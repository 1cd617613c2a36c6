//! The built-in demo sequence: a station frame rendered in linear light from
//! `fixtures/replay/demo.toml` and the portrait `fixtures/faces/astronaut.jpg` (both compiled
//! in), with the patient moving through scripted poses. Used by the replay camera when no
//! camera is found, so the station works on any machine with a display.

use std::sync::Arc;
use std::time::{Duration, Instant};

use image::RgbImage;
use serde::Deserialize;

use super::{CameraError, FrameSource, RawFrame, SourceInfo, SourceKind, pace};
use sameframe_core::analysis::color::{linear_to_srgb, lut8};

const SCRIPT: &str = include_str!("../../../../fixtures/replay/demo.toml");
const PORTRAIT: &[u8] = include_bytes!("../../../../fixtures/faces/astronaut.jpg");

/// One pose of the patient, held for `hold_ms`.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Keyframe {
    #[serde(default)]
    pub dx: f64,
    #[serde(default)]
    pub dy: f64,
    #[serde(default)]
    pub rotation_deg: f64,
    #[serde(default = "one")]
    pub scale: f64,
    #[serde(default)]
    pub exposure_ev: f64,
    pub hold_ms: u64,
}

fn one() -> f64 {
    1.0
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Backdrop {
    pub left: f64,
    pub right: f64,
    pub tint: [f64; 3],
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Portrait {
    pub height: f64,
    pub centre: [f64; 2],
    pub feather: f64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Card {
    pub quad: [[f64; 2]; 4],
    pub reflectance: f64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Noise {
    pub sigma: f64,
}

/// The demo scene and its keyframes.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct DemoScript {
    pub width: u32,
    pub height: u32,
    pub backdrop: Backdrop,
    pub portrait: Portrait,
    pub card: Card,
    pub noise: Noise,
    #[serde(rename = "keyframe")]
    pub keyframes: Vec<Keyframe>,
}

impl DemoScript {
    /// The built-in script.
    pub fn builtin() -> Result<Self, CameraError> {
        let s: DemoScript =
            toml::from_str(SCRIPT).map_err(|e| CameraError::Demo(format!("demo.toml: {e}")))?;
        if s.keyframes.is_empty() || s.width < 16 || s.height < 16 {
            return Err(CameraError::Demo("demo.toml defines no frames".into()));
        }
        Ok(s)
    }

    /// The length of one loop.
    pub fn cycle(&self) -> Duration {
        Duration::from_millis(self.keyframes.iter().map(|k| k.hold_ms.max(1)).sum())
    }

    /// The keyframe shown `t` into the loop.
    pub fn keyframe_at(&self, t: Duration) -> usize {
        let cycle = self.cycle().as_millis().max(1);
        let mut ms = t.as_millis() % cycle;
        for (i, k) in self.keyframes.iter().enumerate() {
            let h = u128::from(k.hold_ms.max(1));
            if ms < h {
                return i;
            }
            ms -= h;
        }
        self.keyframes.len() - 1
    }
}

/// The portrait used as the demo patient.
pub fn portrait() -> Result<RgbImage, CameraError> {
    image::load_from_memory(PORTRAIT)
        .map(|i| i.to_rgb8())
        .map_err(|e| CameraError::Demo(format!("astronaut.jpg: {e}")))
}

fn inside(quad: &[[f64; 2]; 4], x: f64, y: f64) -> bool {
    let mut sign = 0.0f64;
    for i in 0..4 {
        let (a, b) = (quad[i], quad[(i + 1) % 4]);
        let cross = (b[0] - a[0]) * (y - a[1]) - (b[1] - a[1]) * (x - a[0]);
        if cross != 0.0 {
            if sign != 0.0 && cross.signum() != sign {
                return false;
            }
            sign = cross.signum();
        }
    }
    true
}

/// Render keyframe `k` of `script` with `portrait` as the patient; `seed` varies the noise.
pub fn render(script: &DemoScript, portrait: &RgbImage, k: &Keyframe, seed: u64) -> RgbImage {
    let (w, h) = (script.width, script.height);
    let decode = lut8();
    let (pw, ph) = portrait.dimensions();
    let p = &script.portrait;
    let size = [p.height * f64::from(pw) / f64::from(ph.max(1)), p.height];
    let per_src = f64::from(ph) / p.height;
    let c = p.centre;
    let (sin, cos) = k.rotation_deg.to_radians().sin_cos();
    let s = k.scale.max(0.05);
    let gain = 2f64.powf(k.exposure_ev);
    let mut rng = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut noise = move || {
        // Sum of four uniforms: close enough to Gaussian, unit variance.
        let mut acc = 0.0;
        for _ in 0..4 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            acc += (rng >> 11) as f64 / (1u64 << 53) as f64;
        }
        (acc - 2.0) * 3f64.sqrt()
    };
    let sample = |u: f64, v: f64| -> Option<[f64; 3]> {
        if u < 0.0 || v < 0.0 || u > f64::from(pw - 1) || v > f64::from(ph - 1) {
            return None;
        }
        let (x0, y0) = (u.floor() as u32, v.floor() as u32);
        let (x1, y1) = ((x0 + 1).min(pw - 1), (y0 + 1).min(ph - 1));
        let (fx, fy) = (u - f64::from(x0), v - f64::from(y0));
        let px = |x: u32, y: u32| {
            portrait
                .get_pixel(x, y)
                .0
                .map(|v| f64::from(decode[v as usize]))
        };
        let (a, b, cc, d) = (px(x0, y0), px(x1, y0), px(x0, y1), px(x1, y1));
        Some(std::array::from_fn(|i| {
            (a[i] * (1.0 - fx) + b[i] * fx) * (1.0 - fy) + (cc[i] * (1.0 - fx) + d[i] * fx) * fy
        }))
    };
    let stand = [
        (script.card.quad[2][0] + script.card.quad[3][0]) / 2.0 - 8.0,
        (script.card.quad[2][0] + script.card.quad[3][0]) / 2.0 + 8.0,
    ];
    let stand_top = (script.card.quad[2][1] + script.card.quad[3][1]) / 2.0;
    const STEPS: usize = 16384;
    let encode: Vec<f32> = (0..=STEPS)
        .map(|i| linear_to_srgb(i as f32 / STEPS as f32) * 255.0)
        .collect();
    let mut out = RgbImage::new(w, h);
    for (x, y, px) in out.enumerate_pixels_mut() {
        let (fx, fy) = (f64::from(x) + 0.5, f64::from(y) + 0.5);
        let t = fx / f64::from(w);
        let vignette = 1.0 - 0.08 * ((fy / f64::from(h)) - 0.45).powi(2);
        let back = script.backdrop.left * (1.0 - t) + script.backdrop.right * t;
        let mut lin: [f64; 3] = std::array::from_fn(|i| back * script.backdrop.tint[i] * vignette);
        if fx >= stand[0] && fx <= stand[1] && fy > stand_top {
            lin = [0.04; 3];
        }
        // The patient: map the frame pixel back into the portrait.
        let (qx, qy) = (fx - c[0] - k.dx, fy - c[1] - k.dy);
        let bx = (cos * qx - sin * qy) / s;
        let by = (sin * qx + cos * qy) / s;
        let (nx, ny) = (bx / (size[0] / 2.0), by / (size[1] / 2.0));
        let edge = 1.0 - script.portrait.feather.clamp(0.0, 0.9);
        let r = nx.abs().max(ny.abs());
        if r < 1.0 {
            let u = (bx + size[0] / 2.0) * per_src - 0.5;
            let v = (by + size[1] / 2.0) * per_src - 0.5;
            if let Some(face) = sample(u, v) {
                let alpha = if r <= edge {
                    1.0
                } else {
                    let q = (1.0 - r) / (1.0 - edge);
                    q * q * (3.0 - 2.0 * q)
                };
                for i in 0..3 {
                    lin[i] = lin[i] * (1.0 - alpha) + face[i] * alpha;
                }
            }
        }
        if inside(&script.card.quad, fx, fy) {
            lin = [script.card.reflectance; 3];
        }
        for i in 0..3 {
            let v = encode[((lin[i] * gain).clamp(0.0, 1.0) * STEPS as f64) as usize];
            px.0[i] = (f64::from(v) + noise() * script.noise.sigma)
                .round()
                .clamp(0.0, 255.0) as u8;
        }
    }
    out
}

/// The demo sequence as a frame source.
pub struct DemoSource {
    script: DemoScript,
    portrait: RgbImage,
    frames: Vec<Option<Arc<RgbImage>>>,
    start: Instant,
    period: Duration,
    due: Instant,
    fps: f64,
}

impl DemoSource {
    /// The built-in sequence played at `fps`.
    pub fn new(fps: f64) -> Result<Self, CameraError> {
        let script = DemoScript::builtin()?;
        let fps = if fps.is_finite() {
            fps.clamp(0.2, 240.0)
        } else {
            30.0
        };
        let n = script.keyframes.len();
        Ok(Self {
            script,
            portrait: portrait()?,
            frames: vec![None; n],
            start: Instant::now(),
            period: Duration::from_secs_f64(1.0 / fps),
            due: Instant::now(),
            fps,
        })
    }

    /// Keyframe `i`, rendered once.
    pub fn keyframe(&mut self, i: usize) -> Arc<RgbImage> {
        let i = i.min(self.frames.len() - 1);
        if let Some(f) = &self.frames[i] {
            return f.clone();
        }
        let img = Arc::new(render(
            &self.script,
            &self.portrait,
            &self.script.keyframes[i],
            i as u64 + 1,
        ));
        self.frames[i] = Some(img.clone());
        img
    }

    /// The number of keyframes.
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Never empty (the script is checked).
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }
}

impl FrameSource for DemoSource {
    fn info(&self) -> SourceInfo {
        SourceInfo {
            kind: SourceKind::Demo,
            name: "replay camera (demo)".into(),
            detail: format!(
                "built-in demo sequence: {} poses, {:.1} s loop",
                self.script.keyframes.len(),
                self.script.cycle().as_secs_f64()
            ),
            width: self.script.width,
            height: self.script.height,
            fps: self.fps,
        }
    }

    fn next_frame(&mut self) -> Result<RawFrame, CameraError> {
        self.due = pace(self.due, self.period);
        let i = self.script.keyframe_at(self.start.elapsed());
        Ok(RawFrame {
            image: self.keyframe(i),
            encoded: None,
        })
    }
}

/// Write the demo keyframes as PNG files `demo-NN.png` into `dir` (a replay folder for benches
/// and smoke tests). Returns the paths.
pub fn write_keyframes(dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>, CameraError> {
    let mut src = DemoSource::new(30.0)?;
    std::fs::create_dir_all(dir).map_err(|e| CameraError::Replay {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut out = Vec::new();
    for i in 0..src.len() {
        let p = dir.join(format!("demo-{i:02}.png"));
        src.keyframe(i)
            .save_with_format(&p, image::ImageFormat::Png)
            .map_err(|e| CameraError::Replay {
                path: p.clone(),
                message: e.to_string(),
            })?;
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sameframe_core::analysis::frame::Frame;
    use sameframe_core::analysis::lighting::{self, LightingConfig, LightingOptions, Verdict};

    #[test]
    fn the_script_parses_and_loops() {
        let s = DemoScript::builtin().unwrap();
        assert_eq!((s.width, s.height), (1920, 1080));
        assert_eq!(s.keyframe_at(Duration::ZERO), 0);
        let first = Duration::from_millis(s.keyframes[0].hold_ms);
        assert_eq!(s.keyframe_at(first), 1);
        assert_eq!(s.keyframe_at(s.cycle() + first), 1);
        assert_eq!(
            s.keyframe_at(s.cycle() - Duration::from_millis(1)),
            s.keyframes.len() - 1
        );
    }

    #[test]
    fn the_aligned_pose_passes_the_lighting_check_and_the_bright_one_does_not() {
        let mut src = DemoSource::new(30.0).unwrap();
        let script = DemoScript::builtin().unwrap();
        let aligned = script
            .keyframes
            .iter()
            .position(|k| k.dx == 0.0 && k.exposure_ev == 0.0)
            .unwrap();
        let bright = script
            .keyframes
            .iter()
            .position(|k| k.exposure_ev > 0.4)
            .unwrap();
        let cfg = LightingConfig::builtin().unwrap();
        let img = src.keyframe(aligned);
        let r = lighting::analyze(&Frame::rgb8(&img), &cfg, &LightingOptions::default());
        assert!(r.card.found, "{:?}", r.reasons);
        assert_eq!(r.verdict, Verdict::Pass, "{:?}", r.reasons);
        assert!(r.exposure_ev.unwrap().abs() < 0.1);
        let img = src.keyframe(bright);
        let r = lighting::analyze(&Frame::rgb8(&img), &cfg, &LightingOptions::default());
        assert!(
            (r.exposure_ev.unwrap() - 0.6).abs() < 0.1,
            "{:?}",
            r.exposure_ev
        );
        assert_ne!(r.verdict, Verdict::Pass);
    }
}
