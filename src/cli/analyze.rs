//! `sameframe analyze …` and `sameframe calibrate`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use super::{Ctx, one_line};
use sameframe::analysis::frame::Frame;
use sameframe::analysis::lighting::{self, LightingConfig, LightingOptions, Rect, Verdict};
use sameframe::analysis::pose::{self, PoseConfig, PoseOptions};
use sameframe::calibration::Calibration;
use sameframe::records::Area;

#[derive(Debug, Subcommand)]
pub enum AnalyzeCmd {
    /// Check lighting against a grey card or ColorChecker.
    Lighting {
        /// The photo or frame.
        image: PathBuf,
        /// The card's position x,y,w,h (skips detection).
        #[arg(long, value_name = "X,Y,W,H")]
        card: Option<Rect>,
        /// The subject region x,y,w,h (clipping and focus are measured there too).
        #[arg(long, value_name = "X,Y,W,H")]
        subject: Option<Rect>,
        /// A saved room profile: report the differences against it.
        #[arg(long, value_name = "NAME")]
        profile: Option<String>,
        /// Write a copy with the white balance and exposure corrected (PNG).
        #[arg(long, value_name = "OUT.png")]
        corrected: Option<PathBuf>,
        /// Write a copy with the detected card outlined (PNG).
        #[arg(long, value_name = "OUT.png")]
        annotate: Option<PathBuf>,
    },
    /// Score a frame's pose against the baseline (position, distance, roll, head turn, chin
    /// height, expression).
    Pose {
        /// The baseline photo (a file, or a capture ID from the store).
        #[arg(long, value_name = "FILE|CAPTURE_ID")]
        baseline: String,
        /// The new frame (a file, or a capture ID); several score many frames against one
        /// baseline in one process (`--frame a.jpg b.jpg c.jpg`).
        #[arg(long, value_name = "FILE|CAPTURE_ID", num_args = 1.., required = true)]
        frame: Vec<String>,
        /// Treatment area (face and neck use face landmarks; default: face when one is found).
        #[arg(long)]
        area: Option<Area>,
    },
}

#[derive(Debug, clap::Args)]
pub struct CalibrateArgs {
    /// A photo of the room's set-up with the grey card or ColorChecker in place.
    #[arg(long)]
    image: PathBuf,
    /// The profile's name (the room or station).
    #[arg(long)]
    name: String,
    /// The card's position x,y,w,h (default: detected).
    #[arg(long, value_name = "X,Y,W,H")]
    card: Option<Rect>,
}

pub fn calibrate(ctx: &Ctx, a: CalibrateArgs) -> Result<ExitCode> {
    let store = ctx.open()?;
    let cfg = LightingConfig::load(store.calibration())?;
    let Loaded {
        image: img,
        exif,
        sha256,
    } = load_image(ctx, &a.image, store.calibration(), 1)?;
    let report = lighting::analyze(
        &Frame::from_dynamic(&img),
        &cfg,
        &LightingOptions {
            card: a.card,
            ..Default::default()
        },
    );
    let saved = store.save_lighting_profile(&a.name, &report, &sha256, exif.as_ref())?;
    let out = serde_json::json!({ "profile": saved, "lighting": report });
    ctx.emit(&out, || {
        format!(
            "saved room profile {} ({} at {:?})\n{}",
            saved.profile.name,
            saved.profile.card_kind,
            saved.profile.quad.map(|p| [p[0].round(), p[1].round()]),
            lighting_text(&report)
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

/// An image file decoded for analysis.
pub struct Loaded {
    pub image: image::DynamicImage,
    pub exif: Option<sameframe::ingest::ExifSummary>,
    pub sha256: String,
}

/// Decode an image file for analysis, upright, with a clear error naming the file. `share` of the decode memory limit is used (two images decoded for one
/// analysis each get half). An image too large to decode whole within it is analysed
/// reduced, and the user is told.
pub fn load_image(ctx: &Ctx, path: &Path, calibration: &Calibration, share: u64) -> Result<Loaded> {
    let limits = shared_limits(calibration, share)?;
    let bytes = sameframe::ingest::read_file(path, &limits)?;
    let sha256 = sameframe::ids::sha256_hex(&bytes);
    decode_read(ctx, &bytes, sha256, &path.display().to_string(), &limits)
}

/// The calibration's limits with `share` of the decode memory.
fn shared_limits(calibration: &Calibration, share: u64) -> Result<sameframe::calibration::Limits> {
    let mut limits = calibration.limits()?;
    limits.decode_memory_mib /= share.max(1);
    Ok(limits)
}

/// [`load_image`] of a file already read (its `bytes`, hashing to `sha256`).
fn decode_read(
    ctx: &Ctx,
    bytes: &[u8],
    sha256: String,
    subject: &str,
    limits: &sameframe::calibration::Limits,
) -> Result<Loaded> {
    let (kind, _, _) = sameframe::ingest::check_header(bytes, subject, limits)?;
    let req = sameframe::decode::Request {
        max_side: None,
        keep_16_bit: true,
    };
    let d = sameframe::ingest::decode(bytes, kind, subject, limits, req)?;
    if d.reduction() > 1.0 {
        ctx.note(&format!(
            "note: {subject} ({}×{}) is analysed at {}×{}: decoding it whole would need more memory than decode_memory_mib allows",
            d.width,
            d.height,
            d.image.width(),
            d.image.height()
        ));
    }
    let (exif, _) = sameframe::ingest::read_exif(bytes);
    let orientation = exif.as_ref().and_then(|e| e.orientation);
    Ok(Loaded {
        image: sameframe::ingest::apply_orientation(d.image, orientation),
        exif,
        sha256,
    })
}

fn calibration_without_store(ctx: &Ctx) -> Calibration {
    let mut dirs = Vec::new();
    if let Some(d) = &ctx.calibration_dir {
        dirs.push(d.clone());
    }
    dirs.push(sameframe::calibration::store_calibration_dir(&ctx.data_dir));
    Calibration::with_dirs(dirs)
}

/// A file, or a capture ID from the store (opened once, when first needed, into `store`).
fn load_image_or_capture(
    ctx: &Ctx,
    arg: &str,
    cal: &Calibration,
    share: u64,
    store: &mut Option<sameframe::store::Store>,
) -> Result<image::DynamicImage> {
    let path = Path::new(arg);
    if !path.exists() && arg.starts_with("cap_") {
        if store.is_none() {
            *store = Some(ctx.open()?);
        }
        let s = store.as_ref().context("the store is open")?;
        return Ok(s.capture_image(arg)?);
    }
    Ok(load_image(ctx, path, cal, share)?.image)
}

/// One frame's pose against the baseline, as `analyze pose` reports it for several frames.
#[derive(serde::Serialize)]
struct FramePose {
    frame: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<pose::PoseReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `analyze pose`: the baseline is prepared once (per frame size) and each frame compared
/// with it; a frame that cannot be read is reported on its own and the others go on. One
/// frame prints its report as before; several print a list.
fn pose_frames(
    ctx: &Ctx,
    baseline: &str,
    frames: &[String],
    area: Option<Area>,
) -> Result<ExitCode> {
    let cal = calibration_without_store(ctx);
    let cfg = PoseConfig::load(&cal)?;
    let mut store = None;
    let out = std::thread::scope(|s| -> Result<Vec<FramePose>> {
        // The face models load on other cores while the images decode, when the area may need
        // them (a scalp or body area never loads them). A baseline file's face is kept in the
        // data directory's cache by the file's hash and a follow-up is tracked from it with
        // the landmark model alone: the detector loads only for a baseline not seen before
        // (or a frame that cannot be tracked), and neither model for a baseline known to show
        // no face.
        // A baseline file is read once, within the limits, for its hash and its pixels.
        let limits = shared_limits(&cal, 2)?;
        let mut base_file = match Path::new(baseline).is_file() {
            true => Some(sameframe::ingest::read_file(Path::new(baseline), &limits)?),
            false => None,
        };
        let base_sha = base_file.as_deref().map(sameframe::ids::sha256_hex);
        // What the first frame's reader waits for before its card search and registration
        // inputs, which the comparison needs last: for a baseline not seen before, the
        // detector, which its face search needs first (measured: the first comparison of a
        // face pair 7-12 ms sooner on 2 cores, a texture pair no slower; with a cached face
        // waiting for the landmark model made it slower, so nothing is waited for).
        let mut first_waits_for: fn() = || {};
        // The cache is read once: its answer also goes to the baseline's preparation.
        let faces = pose::face_area(area);
        let known = faces
            .then(|| {
                let search = pose::face_search(area);
                base_sha
                    .as_deref()
                    .and_then(|sha| pose::face::cached_face_state(sha, search))
            })
            .flatten();
        if faces {
            match &known {
                // A baseline known to show no face needs neither model.
                Some(None) => {}
                Some(Some(_)) => pose::face::preload_landmarks(),
                None => {
                    pose::face::preload_landmarks();
                    s.spawn(|| {
                        let _ = pose::face::models();
                    });
                    first_waits_for = || {
                        let _ = pose::face::models();
                    };
                }
            }
        }
        // Each frame that is a file is read (decoded, its card measured) on the other core
        // while the one before is compared; captures come through the one store handle. The
        // first frame's pixels are also handed, once decoded, to the baseline's preparation,
        // which tracks the frame's face from the baseline's.
        let (decoded, first_decoded) = std::sync::mpsc::sync_channel(1);
        let mut decoded = Some(decoded);
        let read_file = |f: &String, first: bool, decoded: Option<Decoded>| {
            let f = f.clone();
            let cal = &cal;
            let wait: fn() = if first { first_waits_for } else { || {} };
            Path::new(&f)
                .exists()
                .then(|| s.spawn(move || read_frame(ctx, &f, cal, &mut None, wait, decoded)))
        };
        let mut next = frames
            .first()
            .and_then(|f| read_file(f, true, decoded.take()));
        // Without a reader thread for the first frame, nothing is handed over; the first
        // preparation that tracks a face takes it.
        let mut first_decoded = next.is_some().then_some(first_decoded);
        let base = match (base_file.take(), &base_sha) {
            (Some(bytes), Some(sha)) => {
                decode_read(ctx, &bytes, sha.clone(), baseline, &limits)?.image
            }
            _ => load_image_or_capture(ctx, baseline, &cal, 2, &mut store)?,
        }
        .into_rgb8();
        let opts = PoseOptions {
            area,
            mm_per_px: None,
            subject: None,
        };
        let base_long = base.width().max(base.height());
        let mut prepare = |long: u32| {
            pose::Baseline::prepare_with_frame(
                &base,
                &opts,
                long,
                base_sha.as_deref(),
                known.clone(),
                || first_decoded.take()?.recv().ok(),
            )
        };
        let (first, mut frame_face) = prepare(base_long);
        let mut prepared = (base_long, first);
        let mut out = Vec::with_capacity(frames.len());
        for (i, f) in frames.iter().enumerate() {
            let this = next.take();
            next = frames.get(i + 1).and_then(|f| read_file(f, false, None));
            let read = match this {
                Some(h) => h
                    .join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("{f}: reading the frame failed"))),
                None => read_frame(ctx, f, &cal, &mut store, || {}, None),
            };
            let report = read.map(|(img, mm_per_px, frame_prep)| {
                let frame_prep = frame_prep.with_face(frame_face.take());
                let opts = PoseOptions {
                    mm_per_px,
                    ..opts.clone()
                };
                let long = img.width().max(img.height());
                if prepared.0 != long {
                    prepared = (long, prepare(long).0);
                }
                pose::compare_prepared(&prepared.1, &img, frame_prep, &cfg, &opts)
            });
            out.push(match report {
                Ok(report) => FramePose {
                    frame: f.clone(),
                    report: Some(report),
                    error: None,
                },
                Err(e) => FramePose {
                    frame: f.clone(),
                    report: None,
                    error: Some(format!("{e:#}")),
                },
            });
        }
        Ok(out)
    })?;
    if let [only] = out.as_slice() {
        return match (&only.report, &only.error) {
            (Some(r), _) => {
                ctx.emit(r, || pose_text(r))?;
                Ok(ExitCode::SUCCESS)
            }
            (None, Some(e)) => bail!("{e}"),
            (None, None) => bail!("{}: no result", only.frame),
        };
    }
    let failed = out.iter().filter(|f| f.error.is_some()).count();
    ctx.emit(&out, || {
        out.iter()
            .map(|f| match (&f.report, &f.error) {
                (Some(r), _) => format!("{}\n{}", one_line(&f.frame), pose_text(r)),
                (None, e) => format!(
                    "{}\n  could not compare: {}",
                    one_line(&f.frame),
                    one_line(e.as_deref().unwrap_or("?"))
                ),
            })
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    Ok(if failed > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Where a frame reader hands the frame's 8-bit pixels on as soon as they are decoded.
type Decoded = std::sync::mpsc::SyncSender<Arc<image::RgbImage>>;

/// A frame to compare (each of two images in hand within half the decode memory), its
/// millimetres per pixel from a grey card in it, when there is one, and its registration
/// inputs made ahead (this runs on another thread while the baseline is prepared). The
/// decoded pixels go to `decoded` at once; the card search and registration inputs wait for
/// `wait` to return: the comparison needs them last.
fn read_frame(
    ctx: &Ctx,
    f: &str,
    cal: &Calibration,
    store: &mut Option<sameframe::store::Store>,
    wait: fn(),
    decoded: Option<Decoded>,
) -> Result<(Arc<image::RgbImage>, Option<f64>, pose::PreparedFrame)> {
    // An 8-bit frame is measured on the pixels it shares; a deeper one keeps its depth for
    // the card (as `Frame::from_dynamic` does).
    let (img, deep) = match load_image_or_capture(ctx, f, cal, 2, store)? {
        image::DynamicImage::ImageRgb8(img) => (Arc::new(img), None),
        deep if Frame::is_deep(&deep) => (Arc::new(deep.to_rgb8()), Some(deep)),
        other => (Arc::new(other.into_rgb8()), None),
    };
    if let Some(decoded) = decoded {
        // The baseline's preparation may not want it (no face): that is no error.
        let _ = decoded.send(Arc::clone(&img));
    }
    wait();
    let mm_per_px = match deep {
        Some(deep) => card_scale(&Frame::from_dynamic(&deep), cal),
        None => card_scale(&Frame::rgb8(&img), cal),
    };
    let prepared = pose::PreparedFrame::new(&img);
    Ok((img, mm_per_px, prepared))
}

/// Millimetres per pixel from a grey card in the frame, when there is one.
fn card_scale(frame: &Frame<'_>, cal: &Calibration) -> Option<f64> {
    let cfg = LightingConfig::load(cal).ok()?;
    let loc = lighting::locate(frame, &cfg)?;
    let size = sameframe::analysis::lighting::config::grey_card_size_mm(cal).ok()?;
    lighting::card_mm_per_px(loc.kind, &loc.quad, size)
}

pub fn run(ctx: &Ctx, cmd: AnalyzeCmd) -> Result<ExitCode> {
    match cmd {
        AnalyzeCmd::Pose {
            baseline,
            frame,
            area,
        } => pose_frames(ctx, &baseline, &frame, area),
        AnalyzeCmd::Lighting {
            image,
            card,
            subject,
            profile,
            corrected,
            annotate,
        } => {
            let (cal, profile) = match &profile {
                Some(name) => {
                    let store = ctx.open()?;
                    let p = store.lighting_profile(name)?;
                    (store.calibration().clone(), Some(p))
                }
                None => (calibration_without_store(ctx), None),
            };
            let cfg = LightingConfig::load(&cal)?;
            let img = load_image(ctx, &image, &cal, 1)?.image;
            let frame = Frame::from_dynamic(&img);
            let report = lighting::analyze(
                &frame,
                &cfg,
                &LightingOptions {
                    card,
                    subject,
                    profile,
                },
            );
            if let Some(out) = &corrected {
                if std::fs::canonicalize(out).ok() == std::fs::canonicalize(&image).ok() {
                    bail!(
                        "--corrected must not overwrite the analysed image {}",
                        image.display()
                    );
                }
                let Some(fixed) = lighting::corrected(&frame, &report) else {
                    bail!(
                        "no card was measured, so there is nothing to correct {} with",
                        image.display()
                    );
                };
                fixed
                    .save_with_format(out, image::ImageFormat::Png)
                    .with_context(|| format!("could not write {}", out.display()))?;
            }
            if let Some(out) = &annotate {
                if std::fs::canonicalize(out).ok() == std::fs::canonicalize(&image).ok() {
                    bail!(
                        "--annotate must not overwrite the analysed image {}",
                        image.display()
                    );
                }
                lighting::annotate(&frame, &report)
                    .save_with_format(out, image::ImageFormat::Png)
                    .with_context(|| format!("could not write {}", out.display()))?;
            }
            ctx.emit(&report, || lighting_text(&report))?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Human-readable lighting report.
pub fn lighting_text(r: &lighting::LightingReport) -> String {
    let mut s = format!(
        "{} — {}\n",
        match r.verdict {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        },
        if r.card.found {
            format!(
                "{} {}",
                r.card.kind.as_deref().unwrap_or("card"),
                r.card.source.as_deref().unwrap_or("")
            )
        } else {
            "no card".into()
        }
    );
    if let Some(e) = r.exposure_ev {
        s += &format!("  exposure   {e:+.2} EV\n");
    }
    if let (Some(n), Some(u)) = (r.card.measured_pixels, r.card.exposure_uncertainty_ev) {
        s += &format!("  measured   on {n} card pixels (exposure ±{u:.3} EV from their noise)\n");
    }
    if let Some(g) = r.wb_gains {
        s += &format!("  wb gains   R {:.3}  G 1  B {:.3}\n", g[0], g[2]);
    }
    if let (Some(c), Some(d)) = (r.cast_lab, r.cast_delta_e) {
        s += &format!("  cast       a* {:+.1} b* {:+.1} (ΔE {d:.1})\n", c[0], c[1]);
    }
    if let Some(f) = r.falloff_ev {
        s += &format!("  fall-off   {f:+.2} EV across the card\n");
    }
    s += &format!(
        "  clipping   {:.2} % highlights, {:.2} % shadows\n  sharpness  {:.1}\n",
        r.clipped_highlights * 100.0,
        r.clipped_shadows * 100.0,
        r.sharpness
    );
    for reason in &r.reasons {
        s += &format!("  - {reason}\n");
    }
    s
}

/// Human-readable pose report.
pub fn pose_text(r: &pose::PoseReport) -> String {
    let mut s = format!(
        "{} — score {:.0}/100, confidence {:.2} ({})\n",
        if r.within_tolerance {
            "ALIGNED"
        } else {
            "NOT ALIGNED"
        },
        r.score,
        r.confidence,
        r.method
    );
    for a in &r.axes {
        s += &format!(
            "  {:<20} {:+8.2} {:<4} (tolerance {:.2}){}\n",
            a.name,
            a.value,
            a.unit,
            a.tolerance,
            if a.ratio > 1.0 { "  ✗" } else { "" }
        );
    }
    for h in &r.hints {
        s += &format!("  → {h}\n");
    }
    for reason in &r.reasons {
        s += &format!("  - {reason}\n");
    }
    s
}
