//! Face detection (BlazeFace, short range) and 468 3D landmarks (FaceMesh), run in pure Rust
//! with tract. The models ship in `calibration/models/` (Apache-2.0, see the NOTICE there) and
//! are compiled into the binary.

use std::sync::{Arc, OnceLock};

use image::RgbImage;
#[cfg(feature = "face-model")]
use tract_onnx::prelude::*;

/// Face-model failures.
#[derive(Clone, Debug, thiserror::Error)]
pub enum FaceError {
    #[error("could not load the {model} face model: {message}")]
    Load {
        model: &'static str,
        message: String,
    },
    #[error("the {model} face model failed: {message}")]
    Run {
        model: &'static str,
        message: String,
    },
}

#[cfg(feature = "face-model")]
type Plan = Arc<TypedRunnableModel>;
/// Built without the face model (`--no-default-features`, as the fuzz targets are): every face
/// call fails with [`FaceError::Load`], and the analyses fall back to their feature-based path.
#[cfg(not(feature = "face-model"))]
type Plan = Arc<()>;

/// The two face models, loaded and optimised once: the detector when the models are first
/// asked for, the landmark model at the same time on another core (see [`models`]).
pub struct FaceModels {
    detector: Plan,
    anchors: Vec<[f32; 2]>,
}

impl std::fmt::Debug for FaceModels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FaceModels")
    }
}

/// A model compiled into the binary, with its SHA-256 written out: the hash names the model's
/// cached copy and the cached faces it found, and a process need not hash megabytes to know
/// it (the test `the_models_hash_as_recorded` checks it against the bytes).
#[cfg_attr(not(feature = "face-model"), allow(dead_code))]
struct Model {
    bytes: &'static [u8],
    sha256: &'static str,
    name: &'static str,
    shape: [usize; 4],
}

const DETECTOR: Model = Model {
    bytes: include_bytes!("../../../../../calibration/models/face_detection_short_range.onnx"),
    sha256: "add9393052ef46e21f0f68dd294379963ac1ec8bae06a5e6f1fbafa715b84cb2",
    name: "face detection",
    shape: [1, 128, 128, 3],
};
const MESH: Model = Model {
    bytes: include_bytes!("../../../../../calibration/models/face_landmark.onnx"),
    sha256: "9a2c431ddeb884e95b7f9a53124f265ee33aa35b98efab3f35d77b080e67571c",
    name: "face landmark",
    shape: [1, 192, 192, 3],
};

#[cfg(not(feature = "face-model"))]
fn load(model: &Model) -> Result<Plan, FaceError> {
    Err(FaceError::Load {
        model: model.name,
        message: "this build has no face model (the `face-model` feature is off)".into(),
    })
}

#[cfg(feature = "face-model")]
fn load(model: &Model) -> Result<Plan, FaceError> {
    let err = |e: TractError| FaceError::Load {
        model: model.name,
        message: e.to_string(),
    };
    // The model is decluttered already (from the cache or the ONNX bytes): only the code
    // generation pass is left (`into_optimized` would declutter it again, a third of the load).
    let mut typed = decluttered(model).map_err(err)?;
    typed.optimize().map_err(err)?;
    typed.into_runnable().map_err(err)
}

/// Where optimisable models are kept between runs (see [`use_cache_dir`]).
static CACHE_DIR: OnceLock<std::path::PathBuf> = OnceLock::new();

/// Keep the face models, parsed and simplified, in `dir` (the data directory's model cache):
/// later processes read them there instead of parsing and simplifying the ONNX models again,
/// which is most of the models' loading time. Each cached model is named by the SHA-256 of
/// the model it was made from and checked against its own recorded SHA-256 before use; a
/// missing, stale or damaged copy is made again. The first call wins.
pub fn use_cache_dir(dir: std::path::PathBuf) {
    let _ = CACHE_DIR.set(dir);
}

/// The model parsed, typed for `shape` and simplified (decluttered): from the cache when a
/// sound copy is there, else from the ONNX bytes (and cached, best effort).
#[cfg(feature = "face-model")]
fn decluttered(model: &Model) -> TractResult<TypedModel> {
    decluttered_in(CACHE_DIR.get().map(|d| d.as_path()), model).map(|(m, _)| m)
}

/// [`decluttered`] with the cache in `dir`; whether the model came from the cache.
#[cfg(feature = "face-model")]
fn decluttered_in(dir: Option<&std::path::Path>, model: &Model) -> TractResult<(TypedModel, bool)> {
    let cached = dir.map(|dir| {
        let id = &model.sha256[..24];
        let slug = model.name.replace(' ', "-");
        let dims = model.shape.map(|d| d.to_string()).join("x");
        dir.join(format!("{slug}-{id}-{dims}-tract0.23.nnef.tar"))
    });
    if let Some(path) = &cached
        && let Some(tar) = read_checked(path)
        && let Ok(m) = super::nnef_read::model_from_tar(nnef_reader(), &tar)
            .or_else(|_| nnef().model_for_read(&mut std::io::Cursor::new(&tar)))
    {
        return Ok((m, true));
    }
    let typed = tract_onnx::onnx()
        .model_for_read(&mut std::io::Cursor::new(model.bytes))?
        .with_input_fact(0, f32::fact(model.shape).into())?
        .into_typed()?
        .into_decluttered()?;
    if let Some(path) = &cached {
        // Best effort: a cache that cannot be written only costs the next run time.
        let _ = write_cached(&typed, path);
    }
    Ok((typed, false))
}

/// The NNEF framework with the ONNX operators, to write a cached model (whatever operators
/// the conversion left in it can be written).
#[cfg(feature = "face-model")]
fn nnef() -> tract_nnef::framework::Nnef {
    use tract_onnx::WithOnnx;
    tract_nnef::nnef().with_onnx()
}

/// The NNEF framework that reads cached models: tract's own operators only (the two face
/// models, decluttered, use no other; a model that did is read with [`nnef`]). Made once for
/// both models: making it is a good part of reading one, and without the ONNX operators it
/// takes half as long.
#[cfg(feature = "face-model")]
fn nnef_reader() -> &'static tract_nnef::framework::Nnef {
    static READER: OnceLock<tract_nnef::framework::Nnef> = OnceLock::new();
    READER.get_or_init(tract_nnef::nnef)
}

/// Write a cached model and its SHA-256 beside it (see [`write_checked`]).
#[cfg(feature = "face-model")]
fn write_cached(model: &TypedModel, path: &std::path::Path) -> TractResult<()> {
    write_checked(path, nnef().write_to_tar(model, Vec::new())?)?;
    Ok(())
}

/// Write `body` to `path` and its SHA-256 beside it (`.sha256`), each through a temporary
/// file renamed into place (a reader never sees half a file).
fn write_checked(path: &std::path::Path, body: Vec<u8>) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let sum = crate::ids::sha256_hex(&body);
    for (target, body) in [
        (path.to_path_buf(), body),
        (path.with_extension("sha256"), sum.into_bytes()),
    ] {
        let tmp = target.with_extension(format!("part-{}", std::process::id()));
        std::fs::write(&tmp, &body)?;
        std::fs::rename(&tmp, &target)?;
    }
    Ok(())
}

/// `path`'s bytes when they match the SHA-256 recorded beside them ([`write_checked`]).
fn read_checked(path: &std::path::Path) -> Option<Vec<u8>> {
    let body = std::fs::read(path).ok()?;
    let sum = std::fs::read_to_string(path.with_extension("sha256")).ok()?;
    (sum == crate::ids::sha256_hex(&body)).then_some(body)
}

/// Where the face of the photo whose bytes hash to `sha256`, searched down to `search`'s size,
/// is cached: named by that hash, by the two models' (a face found by other models is not
/// reused) and by the search (a framing search's "no face" does not answer a search for small
/// faces).
fn face_cache_path(
    dir: Option<&std::path::Path>,
    sha256: &str,
    search: Search,
) -> Option<std::path::PathBuf> {
    let dir = dir?;
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let models = format!("{}{}", &DETECTOR.sha256[..12], &MESH.sha256[..12]);
    let search = match search {
        Search::Small => "",
        Search::Framing => "-framing",
    };
    Some(
        dir.join("faces")
            .join(format!("{sha256}-{models}{search}.json")),
    )
}

/// The files in which the model cache `dir` (a data directory's `cache/models`) keeps the face
/// of the photo hashing to `sha256`, whichever models found it: what a withdrawal that purges
/// the photo deletes with it.
pub fn cached_face_files(dir: &std::path::Path, sha256: &str) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir.join("faces")) else {
        return Vec::new();
    };
    let prefix = format!("{sha256}-");
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .collect()
}

/// What the cache holds for the photo hashing to `sha256`, searched down to `search`'s size
/// (see [`cached_face`]): `None` when nothing sound is cached, `Some(None)` when the photo is
/// known to show no face, `Some(Some(face))` when its face is known. Lets a caller load only
/// the models it will need.
pub fn cached_face_state(sha256: &str, search: Search) -> Option<Option<Landmarks>> {
    read_cached_face(face_cache_path(
        CACHE_DIR.get().map(|d| d.as_path()),
        sha256,
        search,
    )?)
}

/// The cached face at `path` when a sound copy is there: its recorded SHA-256 matches and it
/// is no face or 468 finite landmarks.
fn read_cached_face(path: std::path::PathBuf) -> Option<Option<Landmarks>> {
    let body = read_checked(&path)?;
    let face = serde_json::from_slice::<Option<Landmarks>>(&body).ok()?;
    let sound = face
        .as_ref()
        .is_none_or(|l| l.points.len() == 468 && l.points.iter().flatten().all(|v| v.is_finite()));
    sound.then_some(face)
}

/// The face of the photo whose bytes hash to `sha256`: from the data directory's cache (see
/// [`use_cache_dir`]) when a sound copy is there, else found by `find` and cached (best
/// effort). A baseline compared again and again is searched for once; a damaged copy (its
/// recorded SHA-256 differs, or it is not 468 finite landmarks) is found again.
pub fn cached_face(
    sha256: &str,
    search: Search,
    find: impl FnOnce() -> Result<Option<Landmarks>, FaceError>,
) -> Result<Option<Landmarks>, FaceError> {
    cached_face_in(CACHE_DIR.get().map(|d| d.as_path()), sha256, search, find)
}

/// [`cached_face`] with the cache in `dir`.
fn cached_face_in(
    dir: Option<&std::path::Path>,
    sha256: &str,
    search: Search,
    find: impl FnOnce() -> Result<Option<Landmarks>, FaceError>,
) -> Result<Option<Landmarks>, FaceError> {
    let path = face_cache_path(dir, sha256, search);
    if let Some(face) = path.clone().and_then(read_cached_face) {
        return Ok(face);
    }
    let face = find()?;
    if let Some(p) = &path
        && let Ok(body) = serde_json::to_vec(&face)
    {
        // Best effort: a cache that cannot be written only costs the next run time.
        let _ = write_checked(p, body);
    }
    Ok(face)
}

/// SSD anchor centres of the short-range detector: 16×16 cells × 2 (stride 8), then 8×8 × 6
/// (stride 16).
fn anchors() -> Vec<[f32; 2]> {
    let mut out = Vec::with_capacity(896);
    for (grid, per) in [(16usize, 2usize), (8, 6)] {
        for y in 0..grid {
            for x in 0..grid {
                for _ in 0..per {
                    out.push([
                        (x as f32 + 0.5) / grid as f32,
                        (y as f32 + 0.5) / grid as f32,
                    ]);
                }
            }
        }
    }
    out
}

/// The process-wide models (loading takes a fraction of a second; done once). The first call
/// loads the detector and starts loading the larger landmark model on another thread, so that
/// a face is being found while its landmark model is still being optimised; the first
/// landmark call waits for it.
pub fn models() -> Result<&'static FaceModels, &'static FaceError> {
    static M: OnceLock<Result<FaceModels, FaceError>> = OnceLock::new();
    M.get_or_init(|| {
        // Without a thread to spare, the landmark model loads on first use instead.
        preload_landmarks();
        Ok(FaceModels {
            detector: load(&DETECTOR)?,
            anchors: anchors(),
        })
    })
    .as_ref()
}

/// The landmark model, loaded once (by whichever thread asks first; the others wait).
fn mesh() -> Result<&'static Plan, FaceError> {
    static MESH_PLAN: OnceLock<Result<Plan, FaceError>> = OnceLock::new();
    MESH_PLAN
        .get_or_init(|| load(&MESH))
        .as_ref()
        .map_err(Clone::clone)
}

/// How small a face the detector looks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Search {
    /// Only a face that frames the shot: one found in the whole frame or in a window of the
    /// frame's short side. Measured on faces pasted into a 1080p scene: found from about a
    /// seventh of the short side wide (≈ 150 px), often from 80 px. Four detector runs on a
    /// 1080p frame without a face.
    Framing,
    /// Also windows of half the short side: found from about a sixteenth of the short side
    /// (≈ 70 px at 1080p). What must not miss a face (de-identification) or was told a face
    /// is there uses it; 25 detector runs on a 1080p frame without a face.
    Small,
}

/// A detected face in image pixels.
#[derive(Clone, Debug)]
pub struct Detection {
    pub score: f32,
    /// Centre and size of the box.
    pub centre: [f32; 2],
    pub size: [f32; 2],
    /// Right eye, left eye, nose tip, mouth, right ear, left ear (the subject's sides).
    pub keypoints: [[f32; 2]; 6],
}

/// 468 landmarks: x, y in image pixels, z in the same units (larger is further from the camera).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Landmarks {
    pub points: Vec<[f32; 3]>,
    pub presence: f32,
}

impl Landmarks {
    /// The landmarks' bounding box in image pixels: [x0, y0, x1, y1].
    pub fn bounds(&self) -> [f32; 4] {
        self.points.iter().fold(
            [f32::MAX, f32::MAX, f32::MIN, f32::MIN],
            |[x0, y0, x1, y1], p| [x0.min(p[0]), y0.min(p[1]), x1.max(p[0]), y1.max(p[1])],
        )
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x.clamp(-80.0, 80.0)).exp())
}

/// Bilinear sample of an RGB image (zero outside).
#[inline]
fn sample_rgb(img: &RgbImage, x: f32, y: f32) -> [f32; 3] {
    let (w, h) = (img.width() as i32, img.height() as i32);
    let (x0, y0) = (x.floor() as i32, y.floor() as i32);
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let px = |xx: i32, yy: i32| {
        if xx < 0 || yy < 0 || xx >= w || yy >= h {
            [0f32; 3]
        } else {
            img.get_pixel(xx as u32, yy as u32).0.map(f32::from)
        }
    };
    let (a, b, c, d) = (
        px(x0, y0),
        px(x0 + 1, y0),
        px(x0, y0 + 1),
        px(x0 + 1, y0 + 1),
    );
    std::array::from_fn(|k| {
        (a[k] * (1.0 - fx) + b[k] * fx) * (1.0 - fy) + (c[k] * (1.0 - fx) + d[k] * fx) * fy
    })
}

impl FaceModels {
    /// The most prominent face (largest confident detection), if any, down to the smallest
    /// the detector finds ([`Search::Small`]). See [`FaceModels::detect_down_to`].
    pub fn detect(&self, img: &RgbImage) -> Result<Option<Detection>, FaceError> {
        self.detect_down_to(img, Search::Small)
    }

    /// The most prominent face, searched down to `search`'s size. The whole frame is searched
    /// first; when the face is too small for the detector's 128-pixel input there (a
    /// head-and-shoulders framing in a wide frame), overlapping square windows of the short side
    /// and then (for [`Search::Small`]) half of it are searched ([`windows`]), on every core:
    /// the windows of one size are independent, and the best-scoring face among them is kept
    /// (the first on a tie, so the answer does not depend on the number of cores).
    pub fn detect_down_to(
        &self,
        img: &RgbImage,
        search: Search,
    ) -> Result<Option<Detection>, FaceError> {
        use rayon::prelude::*;
        let (w, h) = img.dimensions();
        if let Some(d) = self.detect_in(img, [0, 0, w, h])? {
            return Ok(Some(d));
        }
        let short = w.min(h);
        let sides = match search {
            Search::Framing => &[short][..],
            Search::Small => &[short, short / 2][..],
        };
        for &side in sides {
            if side < 96 {
                break;
            }
            let found = windows(w, h, side)
                .par_iter()
                .map(|&win| self.detect_in(img, win))
                .collect::<Result<Vec<_>, _>>()?;
            let best = found
                .into_iter()
                .flatten()
                .reduce(|best, d| if d.score > best.score { d } else { best });
            if best.is_some() {
                return Ok(best);
            }
        }
        Ok(None)
    }

    /// The most prominent face within the window `[x, y, w, h]`, in image coordinates.
    fn detect_in(&self, img: &RgbImage, win: [u32; 4]) -> Result<Option<Detection>, FaceError> {
        let (ox, oy) = (win[0] as f32, win[1] as f32);
        let (w, h) = (win[2] as f32, win[3] as f32);
        // Letterbox into 128×128.
        let scale = 128.0 / w.max(h);
        let (pad_x, pad_y) = ((128.0 - w * scale) / 2.0, (128.0 - h * scale) / 2.0);
        let mut input = vec![-1f32; 128 * 128 * 3];
        for y in 0..128 {
            for x in 0..128 {
                let sx = (x as f32 + 0.5 - pad_x) / scale - 0.5;
                let sy = (y as f32 + 0.5 - pad_y) / scale - 0.5;
                if sx < -0.5 || sy < -0.5 || sx > w - 0.5 || sy > h - 0.5 {
                    continue;
                }
                let p = sample_rgb(img, sx + ox, sy + oy);
                let i = (y * 128 + x) * 3;
                for k in 0..3 {
                    input[i + k] = p[k] / 127.5 - 1.0;
                }
            }
        }
        let out = run(&self.detector, "face detection", input, [1, 128, 128, 3])?;
        let (reg, cls) = (&out[0], &out[1]);
        // Outputs may come in either order; the regressors have 16 values per anchor.
        let (reg, cls) = if reg.len() == 896 * 16 {
            (reg, cls)
        } else {
            (cls, reg)
        };
        let mut dets: Vec<Detection> = Vec::new();
        for (i, anchor) in self.anchors.iter().enumerate() {
            let score = sigmoid(cls[i]);
            if score < 0.5 {
                continue;
            }
            let r = &reg[i * 16..i * 16 + 16];
            let to_img = |nx: f32, ny: f32| {
                [
                    (nx * 128.0 - pad_x) / scale + ox,
                    (ny * 128.0 - pad_y) / scale + oy,
                ]
            };
            let centre = to_img(r[0] / 128.0 + anchor[0], r[1] / 128.0 + anchor[1]);
            let size = [r[2] / scale, r[3] / scale];
            let keypoints = std::array::from_fn(|k| {
                to_img(
                    r[4 + 2 * k] / 128.0 + anchor[0],
                    r[5 + 2 * k] / 128.0 + anchor[1],
                )
            });
            dets.push(Detection {
                score,
                centre,
                size,
                keypoints,
            });
        }
        // Non-maximum suppression, then the largest face.
        dets.sort_by(|a, b| b.score.total_cmp(&a.score));
        let mut kept: Vec<Detection> = Vec::new();
        for d in dets {
            if kept.iter().all(|k| iou(k, &d) < 0.3) {
                kept.push(d);
            }
        }
        Ok(kept
            .into_iter()
            .max_by(|a, b| (a.size[0] * a.size[1]).total_cmp(&(b.size[0] * b.size[1]))))
    }

    /// Landmarks inside a region of interest: centre, side length and rotation (radians,
    /// clockwise on screen turns the crop so the eyes are level). See [`landmarks`].
    pub fn landmarks(
        &self,
        img: &RgbImage,
        centre: [f32; 2],
        side: f32,
        angle: f32,
    ) -> Result<Landmarks, FaceError> {
        landmarks(img, centre, side, angle)
    }

    /// Detect the face and its landmarks, refining the crop once from the first landmarks.
    pub fn face(&self, img: &RgbImage) -> Result<Option<Landmarks>, FaceError> {
        self.face_down_to(img, Search::Small)
    }

    /// [`FaceModels::face`], searched down to `search`'s size.
    pub fn face_down_to(
        &self,
        img: &RgbImage,
        search: Search,
    ) -> Result<Option<Landmarks>, FaceError> {
        let Some(det) = self.detect_down_to(img, search)? else {
            return Ok(None);
        };
        let [re, le] = [det.keypoints[0], det.keypoints[1]];
        let angle = (le[1] - re[1]).atan2(le[0] - re[0]);
        let side = det.size[0].max(det.size[1]) * 1.5;
        let first = self.landmarks(img, det.centre, side, angle)?;
        if first.presence < 0.5 {
            return Ok(None);
        }
        Ok(Some(track(img, &first)?))
    }

    /// Landmarks from the crop that the previous landmarks imply (tracking between frames).
    pub fn track(&self, img: &RgbImage, prev: &Landmarks) -> Result<Landmarks, FaceError> {
        track(img, prev)
    }
}

/// Landmarks inside a region of interest: centre, side length and rotation (radians,
/// clockwise on screen turns the crop so the eyes are level). Needs only the landmark
/// model (the detector is not loaded).
pub fn landmarks(
    img: &RgbImage,
    centre: [f32; 2],
    side: f32,
    angle: f32,
) -> Result<Landmarks, FaceError> {
    let (c, s) = (angle.cos(), angle.sin());
    let k = side / 192.0;
    let mut input = vec![0f32; 192 * 192 * 3];
    for y in 0..192 {
        for x in 0..192 {
            let (u, v) = ((x as f32 + 0.5 - 96.0) * k, (y as f32 + 0.5 - 96.0) * k);
            let sx = centre[0] + c * u - s * v - 0.5;
            let sy = centre[1] + s * u + c * v - 0.5;
            let p = sample_rgb(img, sx, sy);
            let i = (y * 192 + x) * 3;
            for ch in 0..3 {
                input[i + ch] = p[ch] / 255.0;
            }
        }
    }
    let out = run(mesh()?, "face landmark", input, [1, 192, 192, 3])?;
    let (pts, pres) = if out[0].len() == 1404 {
        (&out[0], &out[1])
    } else {
        (&out[1], &out[0])
    };
    let points = (0..468)
        .map(|i| {
            let (u, v, z) = (
                (pts[i * 3] - 96.0) * k,
                (pts[i * 3 + 1] - 96.0) * k,
                pts[i * 3 + 2] * k,
            );
            [centre[0] + c * u - s * v, centre[1] + s * u + c * v, z]
        })
        .collect();
    Ok(Landmarks {
        points,
        presence: sigmoid(pres.first().copied().unwrap_or(-10.0)),
    })
}

/// Landmarks from the crop that the previous landmarks imply (tracking between frames, or a
/// follow-up from its baseline's face). Needs only the landmark model.
pub fn track(img: &RgbImage, prev: &Landmarks) -> Result<Landmarks, FaceError> {
    let (centre, side, angle) = roi_from_landmarks(prev);
    landmarks(img, centre, side, angle)
}

/// Start loading the landmark model on another thread (once: later calls do nothing).
pub fn preload_landmarks() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("face-landmark-model".into())
            .spawn(|| {
                let _ = mesh();
            });
    });
}

#[cfg(not(feature = "face-model"))]
fn run(
    _plan: &Plan,
    model: &'static str,
    _data: Vec<f32>,
    _shape: [usize; 4],
) -> Result<Vec<Vec<f32>>, FaceError> {
    Err(FaceError::Run {
        model,
        message: "this build has no face model".into(),
    })
}

#[cfg(feature = "face-model")]
fn run(
    plan: &Plan,
    model: &'static str,
    data: Vec<f32>,
    shape: [usize; 4],
) -> Result<Vec<Vec<f32>>, FaceError> {
    let err = |e: TractError| FaceError::Run {
        model,
        message: e.to_string(),
    };
    let tensor = Tensor::from_shape(&shape, &data).map_err(err)?;
    let outs = plan.run(tvec!(tensor.into())).map_err(err)?;
    outs.iter()
        .map(|t| {
            t.to_plain_array_view::<f32>()
                .map(|v| v.iter().copied().collect())
                .map_err(err)
        })
        .collect()
}

/// The square crop around landmarks: centre of their box, 1.5 × the long side, eyes level.
pub fn roi_from_landmarks(l: &Landmarks) -> ([f32; 2], f32, f32) {
    let [x0, y0, x1, y1] = l.bounds();
    let (re, le) = (l.points[33], l.points[263]);
    let angle = (le[1] - re[1]).atan2(le[0] - re[0]);
    (
        [(x0 + x1) / 2.0, (y0 + y1) / 2.0],
        (x1 - x0).max(y1 - y0) * 1.5,
        angle,
    )
}

/// Square windows of `side` pixels over a `w`×`h` image, in rows, each overlapping its
/// neighbours by half; the last of a row or column is moved in to end at the image's edge, so
/// the windows cover every pixel. `side` must not exceed `w` or `h`.
fn windows(w: u32, h: u32, side: u32) -> Vec<[u32; 4]> {
    let starts = |len: u32| {
        let step = (side / 2).max(1);
        let mut out = vec![0];
        while out[out.len() - 1] + side < len {
            out.push((out[out.len() - 1] + step).min(len - side));
        }
        out
    };
    let xs = starts(w);
    starts(h)
        .into_iter()
        .flat_map(|y| xs.iter().map(move |&x| [x, y, side, side]))
        .collect()
}

fn iou(a: &Detection, b: &Detection) -> f32 {
    let r = |d: &Detection| {
        [
            d.centre[0] - d.size[0] / 2.0,
            d.centre[1] - d.size[1] / 2.0,
            d.centre[0] + d.size[0] / 2.0,
            d.centre[1] + d.size[1] / 2.0,
        ]
    };
    let (p, q) = (r(a), r(b));
    let iw = (p[2].min(q[2]) - p[0].max(q[0])).max(0.0);
    let ih = (p[3].min(q[3]) - p[1].max(q[1])).max(0.0);
    let inter = iw * ih;
    inter / (a.size[0] * a.size[1] + b.size[0] * b.size[1] - inter).max(1e-6)
}

#[cfg(all(test, feature = "face-model"))]
mod cache_tests {
    use super::*;

    #[test]
    fn a_cached_model_is_read_back_and_a_damaged_one_remade() {
        let dir = tempfile::tempdir().unwrap();
        let load = || decluttered_in(Some(dir.path()), &DETECTOR).unwrap();
        let (parsed, from_cache) = load();
        assert!(!from_cache);
        let (cached, from_cache) = load();
        assert!(from_cache, "the second load did not use the cache");
        // The same answers from either.
        let run = |m: TypedModel| {
            let plan = m.into_optimized().unwrap().into_runnable().unwrap();
            let input: Vec<f32> = (0..128 * 128 * 3)
                .map(|i| ((i % 255) as f32 / 127.5) - 1.0)
                .collect();
            let t = Tensor::from_shape(&[1, 128, 128, 3], &input).unwrap();
            plan.run(tvec!(t.into())).unwrap()[0]
                .to_plain_array_view::<f32>()
                .unwrap()
                .iter()
                .copied()
                .collect::<Vec<f32>>()
        };
        let (a, b) = (run(parsed), run(cached));
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| (x - y).abs() < 1e-4));
        let tar = std::fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "tar"))
            .unwrap();
        let mut bytes = std::fs::read(&tar).unwrap();
        let last = bytes.len() - 1;
        bytes[last / 3] ^= 1;
        std::fs::write(&tar, &bytes).unwrap();
        assert!(!load().1, "a damaged copy was used");
        assert!(load().1, "the damaged copy was not remade");
    }

    /// Every line of both cached graphs is read by the direct reader (none is left to tract's
    /// slower parser), as tract's parser reads it.
    #[test]
    fn the_cached_graphs_are_read_line_by_line_as_tract_reads_them() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        for model in [&DETECTOR, &MESH] {
            decluttered_in(Some(dir.path()), model).unwrap();
        }
        let mut graphs = 0;
        for tar in std::fs::read_dir(dir.path()).unwrap().flatten() {
            if tar.path().extension().is_none_or(|e| e != "tar") {
                continue;
            }
            let bytes = std::fs::read(tar.path()).unwrap();
            let mut archive = tar::Archive::new(bytes.as_slice());
            let mut text = String::new();
            for entry in archive.entries().unwrap() {
                let mut entry = entry.unwrap();
                if entry.path().unwrap().ends_with("graph.nnef") {
                    entry.read_to_string(&mut text).unwrap();
                }
            }
            // The lines the reader is given: the graph is laid out one assignment a line.
            let (_, lines) = super::super::nnef_read::split_body(&text).unwrap();
            assert!(lines.len() > 100, "{} lines", lines.len());
            for line in lines {
                let ours = super::super::nnef_read::assignment(line);
                assert!(ours.is_some(), "left to tract: {line}");
                let theirs = tract_nnef::ast::parse::parse_assignments(line).unwrap();
                assert_eq!(vec![ours.unwrap()], theirs, "{line}");
            }
            graphs += 1;
        }
        assert_eq!(graphs, 2);
    }
}

#[cfg(test)]
mod face_cache_tests {
    use super::*;

    #[test]
    fn the_models_hash_as_recorded() {
        for model in [&DETECTOR, &MESH] {
            assert_eq!(
                crate::ids::sha256_hex(model.bytes),
                model.sha256,
                "{}",
                model.name
            );
        }
    }

    fn face(x: f32) -> Landmarks {
        Landmarks {
            points: vec![[x, 2.0, 3.0]; 468],
            presence: 0.9,
        }
    }

    #[test]
    fn a_baseline_face_is_found_once_and_a_damaged_copy_found_again() {
        let dir = tempfile::tempdir().unwrap();
        let sha = "ab".repeat(32);
        let get = |x: f32| {
            let mut called = false;
            let got = cached_face_in(Some(dir.path()), &sha, Search::Small, || {
                called = true;
                Ok(Some(face(x)))
            })
            .unwrap()
            .unwrap();
            (got.points[0][0], called)
        };
        assert_eq!(get(1.0), (1.0, true));
        // Read back: `find` is not asked again, and the first answer stands.
        assert_eq!(get(5.0), (1.0, false));
        let path = face_cache_path(Some(dir.path()), &sha, Search::Small).unwrap();
        let mut body = std::fs::read(&path).unwrap();
        body[10] ^= 1;
        std::fs::write(&path, &body).unwrap();
        assert_eq!(get(7.0), (7.0, true), "a damaged copy was used");
        assert_eq!(get(9.0), (7.0, false), "the damaged copy was not remade");
        // No face is an answer too; a name that is not a hash is never a path.
        let none = "cd".repeat(32);
        let mut calls = 0;
        for _ in 0..2 {
            let got = cached_face_in(Some(dir.path()), &none, Search::Framing, || {
                calls += 1;
                Ok(None)
            });
            assert!(got.unwrap().is_none());
        }
        assert_eq!(calls, 1);
        // A framing search's "no face" does not answer a search for small faces.
        let small = cached_face_in(Some(dir.path()), &none, Search::Small, || {
            Ok(Some(face(3.0)))
        });
        assert_eq!(small.unwrap().unwrap().points[0][0], 3.0);
        assert!(face_cache_path(Some(dir.path()), "../../etc/passwd", Search::Small).is_none());
        // What a purge of the photo deletes: its face and the checksum, nothing else.
        let mut files = cached_face_files(dir.path(), &sha);
        files.sort();
        assert_eq!(files.len(), 2, "{files:?}");
        assert!(files[0].to_string_lossy().ends_with(".json"));
        assert!(files[1].to_string_lossy().ends_with(".sha256"));
        assert_eq!(cached_face_files(dir.path(), &none).len(), 4);
    }
}

#[cfg(test)]
mod window_tests {
    use super::windows;
    use proptest::prelude::*;

    #[test]
    fn a_1080p_frame_is_searched_in_3_then_21_windows() {
        assert_eq!(windows(1920, 1080, 1080).len(), 3);
        assert_eq!(windows(1920, 1080, 540).len(), 21);
        assert_eq!(windows(1080, 1080, 1080), vec![[0, 0, 1080, 1080]]);
    }

    proptest! {
        /// Every pixel lies in a window, every window lies in the image, and neighbouring
        /// windows overlap by at least half (a face cut by one window's edge is whole in the next).
        #[test]
        fn windows_cover_the_image_with_half_overlap(w in 96u32..3000, h in 96u32..3000, k in 1u32..4) {
            let side = (w.min(h) / k).max(96);
            let wins = windows(w, h, side);
            for win in &wins {
                prop_assert!(win[0] + win[2] <= w && win[1] + win[3] <= h);
            }
            let starts = |i: usize| {
                let mut v: Vec<u32> = wins.iter().map(|win| win[i]).collect();
                v.sort_unstable();
                v.dedup();
                v
            };
            for (i, len) in [(0, w), (1, h)] {
                let s = starts(i);
                prop_assert_eq!(s[0], 0);
                prop_assert_eq!(s[s.len() - 1] + side, len);
                for pair in s.windows(2) {
                    prop_assert!(pair[1] - pair[0] <= side / 2);
                }
            }
        }
    }
}
