//! The capture station: an eframe app joining the camera, the live lighting and pose checks and
//! the records core. Threads: the UI (this module and [`panels`]), `sameframe-camera` (frames
//! and preview textures), `sameframe-analysis` (lighting, pose, guides) and `sameframe-core`
//! (the store). Panels only read [`state::State`] and push [`state::UiCommand`]s, which
//! [`StationApp`] applies once per frame; only the core worker writes to disk.

pub mod bench;
pub mod commands;
pub mod core;
pub mod live;
pub mod panels;
pub mod prefs;
pub mod state;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use egui::{ColorImage, TextureOptions};

use self::commands::{CaptureJob, CoreCommand, CoreEvent, DisplayImage, Focus, TreatmentCmd};
use self::core::{CoreWorker, StoreConfig};
use self::live::{FrameSlot, LiveBaseline, LiveCmd, LiveWorker};
use self::prefs::Prefs;
use self::state::{
    BaselineState, CameraView, CompareState, ConfounderDraft, Forms, Gate, LoadedPair, State,
    StoreState, UiCommand,
};
use crate::camera::{self, CameraStatus, CameraThread, SourceSpec};
use sameframe_core::analysis::frame::fit_within;
use sameframe_core::analysis::readiness::{self, Inputs, Stability};
use sameframe_core::calibration::{Calibration, store_calibration_dir};
use sameframe_core::records::measurements::{
    Override, ProtocolStep, StationInfo, StationMeasurements,
};

/// Images shown in the UI (ghost, compare) are reduced to this long side.
pub const DISPLAY_SIDE: u32 = 1600;

/// Reduce an image for display.
pub fn display_image(img: &image::RgbImage) -> DisplayImage {
    let (w, h) = img.dimensions();
    let src = fit_within(img, DISPLAY_SIDE);
    DisplayImage {
        image: ColorImage::from_rgb([src.width() as usize, src.height() as usize], src.as_raw()),
        width: w,
        height: h,
    }
}

/// A frame-time benchmark run (`sameframe app --bench-frames N`).
#[derive(Clone, Debug, PartialEq)]
pub struct BenchSpec {
    pub frames: Option<u64>,
    pub seconds: Option<f64>,
    /// Where to write the JSON summary (stdout when None).
    pub out: Option<PathBuf>,
}

/// How the station starts.
#[derive(Clone, Debug)]
pub struct AppOptions {
    pub store: StoreConfig,
    /// Camera index to use (default: the first found).
    pub camera: Option<u32>,
    /// Play this folder instead of a camera.
    pub replay: Option<PathBuf>,
    /// Use the built-in demo sequence even when a camera is present.
    pub demo: bool,
    /// Camera or replay frame rate.
    pub fps: Option<f64>,
    /// Live analyses per second at most.
    pub analysis_hz: f64,
    pub bench: Option<BenchSpec>,
    /// Initial window size in points.
    pub window: Option<[f32; 2]>,
    /// Skip the camera query (tests: there is never a camera).
    pub no_camera_query: bool,
    /// Open with this patient (and protocol and visit) selected, e.g. when launched from the
    /// practice-management system.
    pub start: Option<Focus>,
}

impl AppOptions {
    /// Defaults for a data directory.
    pub fn new(store: StoreConfig) -> Self {
        Self {
            store,
            camera: None,
            replay: None,
            demo: false,
            fps: None,
            analysis_hz: 15.0,
            bench: None,
            window: None,
            no_camera_query: false,
            start: None,
        }
    }
}

/// What can stop the station from starting.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("could not open the station window: {0}")]
    Window(String),
    #[error("could not start the {what} thread: {source}")]
    Thread {
        what: &'static str,
        source: std::io::Error,
    },
}

/// Open the station window and run until it is closed.
pub fn run(opts: AppOptions) -> Result<(), AppError> {
    let size = opts.window.unwrap_or([1366.0, 768.0]);
    let mut native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("sameframe — capture station")
            .with_inner_size(size)
            .with_min_inner_size([1024.0, 640.0])
            .with_app_id("sameframe"),
        ..Default::default()
    };
    if opts.bench.is_some() {
        // Measure what the station can do, not the display's refresh rate.
        native.glow_options.vsync = false;
        native.persist_window = false;
    }
    let mut startup_error = None;
    let result = eframe::run_native(
        "sameframe",
        native,
        Box::new(|cc| match StationApp::new(cc, opts) {
            Ok(app) => Ok(Box::new(app)),
            Err(e) => {
                startup_error = Some(e.to_string());
                Err(Box::new(e))
            }
        }),
    );
    match (result, startup_error) {
        (_, Some(e)) => Err(AppError::Window(e)),
        (Ok(()), None) => Ok(()),
        (Err(e), None) => Err(AppError::Window(e.to_string())),
    }
}

/// The station.
pub struct StationApp {
    state: State,
    opts: AppOptions,
    core: CoreWorker,
    events: Receiver<CoreEvent>,
    camera: Option<CameraThread>,
    slot: FrameSlot,
    ghost: live::Ghost,
    live: LiveWorker,
    stability: Stability,
    bench: Option<bench::Bench>,
    last_result_seq: u64,
    /// Readiness as shown, and since when the live readiness has disagreed with it.
    shown_ready: bool,
    disagree_since: Option<Instant>,
    /// How far the head's turn may be from the view's (read once, not every frame).
    view_yaw: sameframe_core::analysis::view_check::ViewYaw,
}

/// How long the live readiness must hold before the shown one follows: quickly to "ready"
/// (the patient is holding still), slower to "not ready" (one noisy frame does not disable
/// the button under the clinician's finger).
const TO_READY: Duration = Duration::from_millis(400);
const TO_NOT_READY: Duration = Duration::from_millis(1200);

impl StationApp {
    /// Start the workers and the camera.
    pub fn new(cc: &eframe::CreationContext<'_>, opts: AppOptions) -> Result<Self, AppError> {
        let ctx = cc.egui_ctx.clone();
        let prefs = Prefs::load(cc.storage);
        let (etx, erx) = std::sync::mpsc::channel();
        let wake_ctx = ctx.clone();
        let core = CoreWorker::spawn(
            opts.store.clone(),
            etx,
            Arc::new(move || wake_ctx.request_repaint()),
        )
        .map_err(|source| AppError::Thread {
            what: "core",
            source,
        })?;
        core.send(CoreCommand::Open);

        let preview = ctx.load_texture(
            "camera-preview",
            ColorImage::filled([16, 9], egui::Color32::from_gray(20)),
            live::PREVIEW_TEXTURE,
        );
        let slot = FrameSlot::default();
        let mut dirs = Vec::new();
        if let Some(d) = &opts.store.calibration_dir {
            dirs.push(d.clone());
        }
        dirs.push(store_calibration_dir(&opts.store.data_dir));
        let live = LiveWorker::spawn(
            ctx.clone(),
            slot.clone(),
            Calibration::with_dirs(dirs),
            opts.analysis_hz,
        )
        .map_err(|source| AppError::Thread {
            what: "analysis",
            source,
        })?;
        live.send(LiveCmd::Edges(prefs.show_edges));

        let cameras = if opts.no_camera_query || opts.replay.is_some() || opts.demo {
            Ok(Vec::new())
        } else {
            camera::native::list()
        };
        let camera_index = opts.camera.or(prefs.camera_index);
        let fps = opts.fps.or(Some(if opts.replay.is_some() || opts.demo {
            prefs.replay_fps
        } else {
            f64::from(prefs.camera_fps)
        }));
        let (mut spec, mut banner) = if opts.demo {
            (
                SourceSpec::Demo {
                    fps: fps.unwrap_or(30.0),
                },
                Some("demo mode".to_string()),
            )
        } else {
            camera::choose_source(camera_index, opts.replay.clone(), fps, &cameras)
        };
        if let SourceSpec::Camera { width, height, .. } = &mut spec {
            *width = prefs.resolution[0];
            *height = prefs.resolution[1];
        }
        if spec.is_replay() && banner.is_none() {
            banner = Some("replay camera".into());
        }
        let state = State {
            forms: Forms::new(&opts.store.actor),
            prefs,
            store: StoreState::Opening,
            confounder_defs: Vec::new(),
            protocols: Vec::new(),
            patients: Vec::new(),
            patient: None,
            visit_id: None,
            protocol: None,
            step: 0,
            draft: ConfounderDraft::default(),
            baseline: None,
            baseline_loading: None,
            live: None,
            readiness: None,
            gate: Gate {
                refusal: Some("starting".into()),
                ready: false,
                reasons: Vec::new(),
            },
            capture_pending: false,
            capture_pending_step: None,
            step_failures: Default::default(),
            last_capture: None,
            key_backup: None,
            thumbs: Default::default(),
            resume: None,
            resume_step: None,
            discard: None,
            auto_count: (0, 0),
            notices: Vec::new(),
            camera: CameraView {
                spec: spec.clone(),
                banner,
                status: CameraStatus::Starting,
                settings: None,
                cameras: cameras.unwrap_or_default(),
                frames: 0,
                window_open: false,
            },
            compare: CompareState {
                wipe: 0.5,
                ..Default::default()
            },
            treatment: Default::default(),
            preview,
            analysis_hz: opts.analysis_hz,
            cmds: Vec::new(),
            started: Instant::now(),
        };
        let stability = Stability::new(state.prefs.auto_frames);
        let bench = opts.bench.clone().map(bench::Bench::new);
        let mut app = Self {
            state,
            opts,
            core,
            events: erx,
            camera: None,
            slot,
            ghost: live::Ghost::default(),
            live,
            stability,
            bench,
            last_result_seq: 0,
            shown_ready: false,
            disagree_since: None,
            view_yaw: Default::default(),
        };
        match sameframe_core::analysis::view_check::ViewYaw::load(&app.calibration()) {
            Ok(v) => app.view_yaw = v,
            Err(e) => app.state.notify(
                format!("the view check uses its default tolerance: {e}"),
                true,
            ),
        }
        app.start_camera(&ctx, spec)?;
        Ok(app)
    }

    fn start_camera(&mut self, ctx: &egui::Context, spec: SourceSpec) -> Result<(), AppError> {
        // Stop the old source first (a camera can only be opened once).
        self.camera = None;
        let s = spec.clone();
        let opener: camera::Opener = Box::new(move || s.open());
        let sink = live::preview_sink(
            self.state.preview.clone(),
            self.slot.clone(),
            self.ghost.clone(),
            ctx.clone(),
        );
        self.camera =
            Some(
                CameraThread::spawn(opener, sink).map_err(|source| AppError::Thread {
                    what: "camera",
                    source,
                })?,
            );
        if let SourceSpec::Camera {
            index,
            width,
            height,
            fps,
        } = &spec
        {
            self.state.prefs.camera_index = Some(*index);
            self.state.prefs.camera_name = self
                .state
                .camera
                .cameras
                .iter()
                .find(|c| c.index == *index)
                .map(|c| c.name.clone());
            self.state.prefs.resolution = [*width, *height];
            self.state.prefs.camera_fps = *fps;
            self.state.camera.banner = None;
        } else if let SourceSpec::Replay { fps, .. } | SourceSpec::Demo { fps } = &spec {
            self.state.prefs.replay_fps = *fps;
            if self.state.camera.banner.is_none() {
                self.state.camera.banner = Some("replay camera".into());
            }
        }
        self.state.camera.spec = spec;
        Ok(())
    }

    /// The panels' state (tests read it).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The current patient's focus for reloads.
    fn focus(&self) -> Option<Focus> {
        Some(Focus {
            patient_ref: self.state.patient.as_ref()?.patient.reference.clone(),
            protocol: self.state.protocol.clone(),
            visit_id: self.state.visit_id.clone(),
        })
    }

    fn drain_events(&mut self, ctx: &egui::Context) {
        while let Ok(ev) = self.events.try_recv() {
            self.apply_event(ctx, ev);
        }
    }

    fn apply_event(&mut self, ctx: &egui::Context, ev: CoreEvent) {
        let st = &mut self.state;
        match ev {
            CoreEvent::StoreOpened(info) => {
                st.confounder_defs = info.confounders.clone();
                st.protocols = info.protocols.clone();
                st.draft.items = st
                    .confounder_defs
                    .iter()
                    .map(|d| (d.key.clone(), (false, String::new())))
                    .collect();
                st.notify(
                    match &info.shared {
                        Some(at) => {
                            format!("shared store open: {at} (encryption: {})", info.encryption)
                        }
                        None => format!(
                            "store open at {} (encryption: {})",
                            info.path.display(),
                            info.encryption
                        ),
                    },
                    false,
                );
                st.key_backup = st.forms.pending_key_backup.take();
                st.store = StoreState::Open(info);
                st.forms.passphrase = Default::default();
                st.forms.passphrase_again = Default::default();
                self.core.send(CoreCommand::SearchPatients(String::new()));
                st.forms.errors.store = None;
                if self.opts.start.is_none() {
                    self.core.send(CoreCommand::FindResume);
                }
                if let Some(f) = self.opts.start.take() {
                    self.state.protocol = f.protocol.clone();
                    self.state.visit_id = f.visit_id.clone();
                    self.core.send(CoreCommand::LoadPatient(f));
                }
            }
            CoreEvent::StoreMissing { path } => st.store = StoreState::Missing { path },
            CoreEvent::NeedsPassphrase { path, error } => {
                st.store = StoreState::Locked { path, error };
            }
            CoreEvent::Patients(list) => st.patients = list,
            CoreEvent::PatientLoaded(view) => {
                let same = st
                    .patient
                    .as_ref()
                    .is_some_and(|p| p.patient.id == view.patient.id);
                if let Some(old) = st.patient.as_ref().filter(|_| same) {
                    // A form that succeeded: its error goes.
                    if view.consents.len() > old.consents.len() {
                        st.forms.errors.consent = None;
                    }
                    if view.visits.len() > old.visits.len() {
                        st.forms.errors.visit = None;
                    }
                }
                if !same {
                    st.forms.errors.patient = None;
                }
                if !same {
                    st.visit_id = None;
                    st.step = 0;
                    st.step_failures.clear();
                    st.draft.dirty = false;
                    for v in st.draft.items.values_mut() {
                        *v = (false, String::new());
                    }
                    st.draft.note.clear();
                    st.forms.consent.signed_by.clear();
                    st.forms.errors = Default::default();
                }
                // A visit just created is selected; a visit that no longer exists is not.
                if let Some(v) = view.visit_id.clone()
                    && view.visits.iter().any(|x| x.id == v)
                {
                    st.visit_id = Some(v);
                }
                if st
                    .visit_id
                    .as_ref()
                    .is_some_and(|v| !view.visits.iter().any(|x| &x.id == v))
                {
                    st.visit_id = None;
                }
                if let Some(p) = &view.protocol
                    && st.step >= p.steps.len()
                {
                    st.step = p.steps.len().saturating_sub(1);
                }
                if !st.patients.iter().any(|p| p.id == view.patient.id) {
                    st.patients.push(view.patient.clone());
                }
                // The protocol status must be about the selected protocol and visit.
                let stale = st.protocol.is_some()
                    && view.protocol.as_ref().is_none_or(|p| {
                        Some(&p.protocol) != st.protocol.as_ref() || p.visit_id != st.visit_id
                    });
                if let Some(step) = st.resume_step.take() {
                    st.step = step;
                }
                st.patient = Some(*view);
                st.load_saved_confounders();
                let missing: Vec<String> = st
                    .visit_captures()
                    .iter()
                    .map(|c| c.id.clone())
                    .filter(|id| !st.thumbs.contains_key(id))
                    .collect();
                if !missing.is_empty() {
                    self.core.send(CoreCommand::LoadThumbnails(missing));
                }
                if stale {
                    self.reload();
                }
                self.sync_baseline();
            }
            CoreEvent::Resume(offer) => st.resume = offer,
            CoreEvent::Thumbnails(list) => {
                for (id, img) in list {
                    let t =
                        ctx.load_texture(format!("thumb-{id}"), img.image, TextureOptions::LINEAR);
                    st.thumbs.insert(id, t);
                }
            }
            CoreEvent::CaptureFailed { view, message } => {
                st.capture_pending = false;
                let step = st.capture_pending_step.take().unwrap_or(st.step);
                st.step_failures.insert(step, message.clone());
                st.forms.errors.capture = Some(format!("{}: {message}", view.label()));
                st.notify(format!("{} not captured: {message}", view.label()), true);
            }
            CoreEvent::Baseline {
                capture_id,
                view,
                image,
            } => {
                if st.baseline_loading.as_deref() != Some(capture_id.as_str()) {
                    return; // the step changed meanwhile
                }
                st.baseline_loading = None;
                let size = [image.width(), image.height()];
                let area = st
                    .protocol_def()
                    .map(|p| p.area)
                    .unwrap_or(sameframe_core::records::Area::Face);
                self.ghost.set_baseline(Some(image.clone()));
                self.live.send(LiveCmd::Baseline(Some(LiveBaseline {
                    capture_id: capture_id.clone(),
                    image,
                    area,
                })));
                st.baseline = Some(BaselineState {
                    capture_id,
                    view,
                    size,
                });
                st.live = None;
            }
            CoreEvent::Captured {
                capture,
                existing,
                warnings,
                thumbnail,
            } => {
                st.capture_pending = false;
                let step = st.capture_pending_step.take().unwrap_or(st.step);
                if existing {
                    // Nothing new was stored: this view is not taken, and the protocol stays.
                    let why = format!(
                        "these exact pixels are already stored as capture {} ({}); nothing new was stored — take the photo again",
                        capture.id,
                        capture.view.label()
                    );
                    st.step_failures.insert(step, why.clone());
                    st.forms.errors.capture = Some(why.clone());
                    st.notify(why, true);
                    return;
                }
                st.step_failures.remove(&step);
                st.forms.errors.capture = None;
                // The checklist went with the capture: it is saved.
                st.draft.dirty = false;
                let msg = {
                    format!(
                        "saved {} ({}) as {}{}",
                        capture.view.label(),
                        capture.role.label(),
                        capture.id,
                        capture
                            .baseline_id
                            .as_ref()
                            .map(|b| format!(", follows {b}"))
                            .unwrap_or_default()
                    )
                };
                st.notify(msg, false);
                for w in warnings {
                    st.notify(w, true);
                }
                let score = capture
                    .analysis
                    .as_ref()
                    .and_then(|a| a.pose_at_commit.as_ref())
                    .and_then(|p| p.score);
                st.last_capture = Some(state::SavedCapture {
                    thumbnail: thumbnail
                        .map(|t| ctx.load_texture("last-capture", t.image, TextureOptions::LINEAR)),
                    capture: *capture,
                    score,
                });
                self.stability.rearm();
                // Advance only past the step just taken, to the next view still missing.
                if st.prefs.advance_after_capture
                    && st.step == step
                    && let Some(p) = st.protocol_def()
                    && st.step + 1 < p.steps.len()
                {
                    st.step += 1;
                }
            }
            CoreEvent::ConfoundersSaved { captures } => {
                st.draft.dirty = false;
                st.forms.errors.confounders = None;
                st.notify(
                    format!("confounders saved to {captures} capture(s) of this visit"),
                    false,
                );
            }
            CoreEvent::Pair {
                grade,
                baseline,
                followup,
                baseline_capture,
                followup_capture,
                maps,
            } => {
                let b =
                    ctx.load_texture("compare-baseline", baseline.image, TextureOptions::LINEAR);
                let f =
                    ctx.load_texture("compare-followup", followup.image, TextureOptions::LINEAR);
                st.compare.loaded = Some(LoadedPair {
                    grade: *grade,
                    baseline: b,
                    followup: f,
                    baseline_capture: *baseline_capture,
                    followup_capture: *followup_capture,
                    maps: *maps,
                });
            }
            CoreEvent::Treatment { view, saved } => {
                panels::treatment_ui::loaded(ctx, st, *view, saved);
            }
            CoreEvent::MapTemplate { capture_id, zones } => {
                let t = &mut st.treatment;
                t.busy = false;
                if t.draft
                    .map_of
                    .as_ref()
                    .is_some_and(|(_, c)| *c == capture_id)
                {
                    let names: Vec<String> = zones.iter().map(|z| z.zone.clone()).collect();
                    t.draft.zones.retain(|z| !names.contains(&z.zone));
                    t.draft.zones.extend(zones);
                    t.draft.map_dirty = true;
                }
            }
            CoreEvent::PublicationPrepared {
                publication_id,
                file,
                grade,
                deidentified,
            } => {
                let p = &mut st.compare.publish;
                p.busy = false;
                p.error = None;
                let mut text = format!("Prepared {} (publication {publication_id}", file.display());
                if let Some(g) = grade {
                    text += &format!(", grade {g}");
                }
                if let Some(d) = deidentified {
                    text += &format!(", {d}");
                }
                text += "): signed, recorded for the take-down list, caption beside it";
                p.done = Some(text.clone());
                st.notify(text, false);
            }
            CoreEvent::Failed { action, message } => {
                if action.starts_with("load baseline") {
                    st.baseline_loading = None;
                }
                if action == self::core::TREATMENT_ACTION {
                    st.treatment.busy = false;
                    st.treatment.done = None;
                }
                if action == "prepare the publication copy" {
                    st.compare.publish.busy = false;
                    st.compare.publish.done = None;
                }
                let message = state::station_language(&message);
                let slot = match action.as_str() {
                    "create the store" | "open the store" => Some(&mut st.forms.errors.store),
                    "create the patient" => Some(&mut st.forms.errors.patient),
                    "record the consent" => Some(&mut st.forms.errors.consent),
                    "start the visit" | "check the visit" => Some(&mut st.forms.errors.visit),
                    a if a.starts_with("save the confounders") => {
                        Some(&mut st.forms.errors.confounders)
                    }
                    "prepare the publication copy" => Some(&mut st.compare.publish.error),
                    a if a == self::core::TREATMENT_ACTION => Some(&mut st.treatment.error),
                    _ => None,
                };
                match slot {
                    Some(slot) => {
                        *slot = Some(message.clone());
                        st.log_field_error(format!("could not {action}: {message}"));
                    }
                    None => st.notify(format!("could not {action}: {message}"), true),
                }
            }
        }
    }

    /// Load (or drop) the baseline of the current step.
    fn sync_baseline(&mut self) {
        let want = self.state.step_status().and_then(|s| s.baseline_id.clone());
        let area = self.state.protocol_def().map(|p| p.area);
        self.live.send(LiveCmd::Area(area));
        match want {
            Some(id) => {
                let have = self
                    .state
                    .baseline
                    .as_ref()
                    .is_some_and(|b| b.capture_id == id);
                if !have && self.state.baseline_loading.as_deref() != Some(id.as_str()) {
                    let view = self
                        .state
                        .step_status()
                        .map(|s| s.view)
                        .unwrap_or(sameframe_core::records::View::Other);
                    self.state.baseline_loading = Some(id.clone());
                    self.core.send(CoreCommand::LoadBaseline {
                        capture_id: id,
                        view,
                    });
                }
            }
            None => {
                self.state.baseline_loading = None;
                if self.state.baseline.take().is_some() {
                    self.ghost.set_baseline(None);
                    self.live.send(LiveCmd::Baseline(None));
                    self.state.live = None;
                }
            }
        }
    }

    /// Why a capture cannot be taken at all (no override possible), if so.
    fn refusal(&self) -> Option<String> {
        let st = &self.state;
        if !matches!(st.store, StoreState::Open(_)) {
            return Some("the store is not open".into());
        }
        let Some(p) = &st.patient else {
            return Some("choose or create a patient".into());
        };
        if st.capture_consent().is_none() {
            let why = if p.consents.is_empty() {
                format!(
                    "capture refused: patient {} has no consent on record — record a consent with the clinical scope",
                    p.patient.reference
                )
            } else {
                format!(
                    "capture refused: no valid clinical-scope consent ({})",
                    p.consents
                        .iter()
                        .filter_map(|c| c.clinical.as_ref().err().cloned())
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            };
            return Some(why);
        }
        if st.visit_id.is_none() {
            return Some("choose or start a visit".into());
        }
        if st.protocol.is_none() || st.step_status().is_none() {
            return Some("choose a protocol".into());
        }
        if let (Some(v), Some(p)) = (st.visit(), st.protocol_def())
            && v.area != p.area
        {
            return Some(format!(
                "this visit treats the {}, but the {} protocol photographs the {}: choose a {} protocol or another visit",
                v.area.label().to_lowercase(),
                p.label,
                p.area.label().to_lowercase(),
                v.area.label().to_lowercase()
            ));
        }
        if !matches!(st.camera.status, CameraStatus::Running) {
            return Some("the camera is not delivering frames".into());
        }
        if st.baseline_loading.is_some() || self.live.preparing() {
            return Some("loading the baseline of this view…".into());
        }
        if st
            .step_status()
            .and_then(|s| s.baseline_id.as_ref())
            .is_some()
            && st.baseline.is_none()
        {
            return Some("the baseline of this view could not be loaded".into());
        }
        if st.capture_pending {
            return Some("storing the last capture…".into());
        }
        if st.live.is_none() {
            return Some("waiting for the live analysis…".into());
        }
        None
    }

    fn update_live(&mut self) {
        let cam = self.camera.as_ref();
        self.state.camera.status = cam.map(|c| c.status()).unwrap_or(CameraStatus::Stopped);
        self.state.camera.settings = cam.and_then(|c| c.settings());
        self.state.camera.frames = cam.map(|c| c.frames()).unwrap_or(0);
        if let Some(e) = cam.and_then(|c| c.take_error()) {
            self.state.notify(e, true);
        }
        let live = self.live.latest().filter(|r| {
            // Only results about the current baseline describe the pose.
            r.baseline_id == self.state.baseline.as_ref().map(|b| b.capture_id.clone())
        });
        self.state.live = live;
        let has_baseline = self.state.baseline.is_some();
        let r = self.state.live.as_ref();
        let readiness = readiness::assess(Inputs {
            lighting: r.map(|r| &r.lighting),
            pose: r.and_then(|r| r.pose.as_ref()),
            has_baseline,
            age: r.map(|r| r.at.elapsed()).unwrap_or(Duration::MAX),
            camera_ok: matches!(self.state.camera.status, CameraStatus::Running),
        });
        let refusal = self.refusal();
        let mut reasons = readiness.reasons.clone();
        let view_problem = self.view_problem();
        reasons.extend(view_problem.clone());
        let live_ready = readiness.ready() && view_problem.is_none();
        let ready = self.hysteresis(live_ready);
        self.state.gate = Gate {
            refusal: refusal.clone(),
            ready,
            reasons,
        };
        // Auto-capture: N distinct in-tolerance analyses in a row.
        self.stability.set_needed(self.state.prefs.auto_frames);
        if let Some(r) = &self.state.live
            && r.frame.seq != self.last_result_seq
        {
            self.last_result_seq = r.frame.seq;
            let green = live_ready && refusal.is_none();
            let fire = self.stability.update(r.frame.seq, green);
            if fire && self.state.prefs.auto_capture {
                self.state.cmds.push(UiCommand::Capture {
                    override_reason: None,
                    auto: true,
                });
            }
        }
        self.state.auto_count = (self.stability.count(), self.stability.needed());
        self.state.readiness = Some(readiness);
    }

    /// The shown readiness: it follows the live one once that has held long enough.
    fn hysteresis(&mut self, live_ready: bool) -> bool {
        if live_ready == self.shown_ready {
            self.disagree_since = None;
            return self.shown_ready;
        }
        let since = *self.disagree_since.get_or_insert_with(Instant::now);
        let hold = if live_ready { TO_READY } else { TO_NOT_READY };
        if since.elapsed() >= hold {
            self.shown_ready = live_ready;
            self.disagree_since = None;
        }
        self.shown_ready
    }

    /// Why the live frame does not show the step's view (faces: the head's turn), if so.
    fn view_problem(&self) -> Option<String> {
        let st = &self.state;
        let view = st.step_status()?.view;
        let yaw = st.live.as_ref()?.head_yaw_deg;
        sameframe_core::analysis::view_check::check(view, yaw, &self.view_yaw)
    }

    /// The calibration the station reads (the command line's folder, then the store's).
    fn calibration(&self) -> Calibration {
        let mut dirs = Vec::new();
        if let Some(d) = &self.opts.store.calibration_dir {
            dirs.push(d.clone());
        }
        dirs.push(store_calibration_dir(&self.opts.store.data_dir));
        Calibration::with_dirs(dirs)
    }

    fn capture(&mut self, override_reason: Option<String>, auto: bool) {
        let st = &mut self.state;
        if let Some(why) = &st.gate.refusal {
            st.notify(format!("not captured: {why}"), true);
            return;
        }
        let reason = override_reason
            .map(|r| r.trim().to_string())
            .filter(|r| !r.is_empty());
        if !st.gate.ready && reason.is_none() {
            st.notify(
                "not captured: the frame is out of tolerance — give an override reason",
                true,
            );
            return;
        }
        let Some(live) = st.live.clone() else {
            st.notify("not captured: no analysed frame yet", true);
            return;
        };
        let (Some(consent), Some(visit_id), Some(proto), Some(step)) = (
            st.capture_consent().map(|c| c.consent.id.clone()),
            st.visit_id.clone(),
            st.protocol_def().cloned(),
            st.step_status().cloned(),
        ) else {
            st.notify(
                "not captured: choose the consent, visit and protocol step",
                true,
            );
            return;
        };
        let Some(focus) = self.focus() else { return };
        let st = &mut self.state;
        let analysis = StationMeasurements {
            station: Some(StationInfo {
                version: env!("CARGO_PKG_VERSION").to_string(),
                frame_seq: live.frame.seq,
                analysis_ms: live.took.as_secs_f64() * 1e3,
                auto_capture: auto,
            }),
            protocol: Some(ProtocolStep {
                key: proto.key.clone(),
                step: st.step,
                view: step.view,
            }),
            readiness: st.readiness.clone(),
            lighting: Some(live.lighting.clone()),
            pose: live.pose.clone(),
            baseline_id: live.baseline_id.clone(),
            mm_per_px: live.mm_per_px,
            face_found: live.face_found,
            camera: st.camera.settings.clone(),
            override_: reason.as_ref().map(|r| Override {
                reason: r.clone(),
                // As the clinician saw them when the dialog opened, then what else was out of
                // tolerance for the frame actually stored.
                out_of_tolerance: {
                    let mut r = st.forms.override_reasons.clone();
                    for now in &st.gate.reasons {
                        if !r.contains(now) {
                            r.push(format!("at capture: {now}"));
                        }
                    }
                    r
                },
            }),
            pose_at_commit: None,
            head_yaw_deg: live.head_yaw_deg,
        };
        let job = CaptureJob {
            frame: live.frame.clone(),
            focus,
            consent_id: consent,
            visit_id,
            area: proto.area,
            view: step.view,
            baseline_id: step.baseline_id.clone(),
            confounders: st.confounder_inputs(),
            note: Some(st.draft.note.clone()).filter(|n| !n.trim().is_empty()),
            analysis,
        };
        st.capture_pending = true;
        st.capture_pending_step = Some(st.step);
        st.forms.errors.capture = None;
        st.forms.override_reason.clear();
        st.forms.override_reasons.clear();
        st.forms.override_open = false;
        self.core.send(CoreCommand::Capture(Box::new(job)));
    }

    fn apply_commands(&mut self, ctx: &egui::Context) {
        let cmds = std::mem::take(&mut self.state.cmds);
        for cmd in cmds {
            match cmd {
                UiCommand::Core(c) => self.core.send(c),
                UiCommand::SelectPatient(_) | UiCommand::SelectVisit(_)
                    if self.state.draft.dirty =>
                {
                    self.state.discard = Some(state::DiscardPrompt {
                        what: "the confounder ticks and note of this visit are not saved".into(),
                        then: cmd,
                    });
                }
                UiCommand::Discard(then) => {
                    self.state.draft.dirty = false;
                    self.state.discard = None;
                    // Applied with the next batch (this frame's second pass).
                    self.state.cmds.push(*then);
                }
                UiCommand::SelectPatient(r) => self.core.send(CoreCommand::LoadPatient(Focus {
                    patient_ref: r,
                    protocol: None,
                    visit_id: None,
                })),
                UiCommand::SelectVisit(v) => {
                    self.state.visit_id = v;
                    self.state.step = 0;
                    self.state.step_failures.clear();
                    self.state.draft.dirty = false;
                    self.reload();
                }
                UiCommand::Resume(offer) => {
                    self.state.resume = None;
                    self.state.resume_step = Some(offer.step);
                    self.state.protocol = Some(offer.protocol.clone());
                    self.state.prefs.last_protocol = Some(offer.protocol.clone());
                    self.state.visit_id = Some(offer.visit_id.clone());
                    self.state.step = offer.step;
                    self.core.send(CoreCommand::LoadPatient(Focus {
                        patient_ref: offer.patient_ref,
                        protocol: Some(offer.protocol),
                        visit_id: Some(offer.visit_id),
                    }));
                }
                UiCommand::SelectProtocol(p) => {
                    self.state.step_failures.clear();
                    self.state.protocol = p.clone();
                    if p.is_some() {
                        self.state.prefs.last_protocol = p;
                    }
                    self.state.step = 0;
                    self.reload();
                }
                UiCommand::GoToStep(i) => self.go_to_step(i),
                UiCommand::NextStep => self.go_to_step(self.state.step + 1),
                UiCommand::PrevStep => self.go_to_step(self.state.step.saturating_sub(1)),
                UiCommand::Capture {
                    override_reason,
                    auto,
                } => self.capture(override_reason, auto),
                UiCommand::SaveConfounders => {
                    let ids: Vec<String> = self
                        .state
                        .visit_captures()
                        .iter()
                        .map(|c| c.id.clone())
                        .collect();
                    if let Some(focus) = self.focus() {
                        if ids.is_empty() {
                            self.state.notify(
                                "the checklist will be stored with each capture of this visit",
                                false,
                            );
                            self.state.draft.dirty = false;
                        } else {
                            self.core.send(CoreCommand::SaveConfounders {
                                focus,
                                capture_ids: ids,
                                confounders: self.state.confounder_inputs(),
                                note: Some(self.state.draft.note.clone()),
                            });
                        }
                    }
                }
                UiCommand::SetEdges(on) => {
                    self.state.prefs.show_edges = on;
                    self.live.send(LiveCmd::Edges(on));
                }
                UiCommand::SwitchCamera(spec) => {
                    if let Err(e) = self.start_camera(ctx, spec) {
                        self.state.notify(e.to_string(), true);
                    }
                }
                UiCommand::SetLock(c, on) => {
                    if let Some(cam) = &self.camera {
                        cam.set_locked(c, on);
                    }
                }
                UiCommand::OpenCompare => {
                    self.state.compare.open = true;
                    if let Some((b, f)) = self.state.current_pair() {
                        self.state.compare.baseline_id = Some(b.clone());
                        self.state.compare.followup_id = Some(f.clone());
                        self.state.compare.loaded = None;
                        self.core.send(CoreCommand::LoadPair {
                            baseline_id: b,
                            followup_id: f,
                        });
                    }
                }
                UiCommand::OpenTreatment => {
                    if let Some(v) = self.state.visit_id.clone() {
                        let t = &mut self.state.treatment;
                        t.open = true;
                        t.error = None;
                        t.done = None;
                        t.busy = true;
                        self.core
                            .send(CoreCommand::Treatment(Box::new(TreatmentCmd::Load {
                                visit_id: v,
                                map_capture: None,
                            })));
                    }
                }
                UiCommand::Compare {
                    baseline_id,
                    followup_id,
                } => {
                    self.state.compare.open = true;
                    self.state.compare.loaded = None;
                    self.core.send(CoreCommand::LoadPair {
                        baseline_id,
                        followup_id,
                    });
                }
            }
        }
    }

    fn go_to_step(&mut self, i: usize) {
        let n = self
            .state
            .protocol_def()
            .map(|p| p.steps.len())
            .unwrap_or(0);
        if n == 0 {
            return;
        }
        let i = i.min(n - 1);
        if i != self.state.step {
            self.state.step = i;
            self.stability.rearm();
            self.sync_baseline();
        }
    }

    fn reload(&mut self) {
        if let Some(f) = self.focus() {
            self.core.send(CoreCommand::LoadPatient(f));
        }
    }

    /// Single-key shortcuts act only when no widget holds the keyboard (a text field, a
    /// dialog): typing a name never moves the protocol, and Enter never captures.
    fn shortcuts(&mut self, ctx: &egui::Context) {
        let typing = ctx.egui_wants_keyboard_input() || ctx.memory(|m| m.focused().is_some());
        if typing
            || self.state.forms.override_open
            || self.state.discard.is_some()
            || self.state.key_backup.is_some()
            || self.state.compare.open
        {
            return;
        }
        use egui::Key;
        let (capture, next, prev, ghost, edges) = ctx.input(|i| {
            if !i.modifiers.is_none() {
                return (false, false, false, false, false);
            }
            (
                i.key_pressed(Key::Space),
                i.key_pressed(Key::N) || i.key_pressed(Key::ArrowRight),
                i.key_pressed(Key::P) || i.key_pressed(Key::ArrowLeft),
                i.key_pressed(Key::G),
                i.key_pressed(Key::E),
            )
        });
        if capture && self.state.gate.refusal.is_none() && self.state.gate.ready {
            self.state.cmds.push(UiCommand::Capture {
                override_reason: None,
                auto: false,
            });
        }
        if next {
            self.state.cmds.push(UiCommand::NextStep);
        }
        if prev {
            self.state.cmds.push(UiCommand::PrevStep);
        }
        if ghost {
            self.state.prefs.show_ghost = !self.state.prefs.show_ghost;
        }
        if edges {
            let on = !self.state.prefs.show_edges;
            self.state.cmds.push(UiCommand::SetEdges(on));
        }
    }
}

impl eframe::App for StationApp {
    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        // The panels are unfilled (see `panels::show`): the clear is their background.
        visuals.panel_fill.to_normalized_gamma_f32()
    }

    fn logic(&mut self, ctx: &egui::Context, _frame: &mut eframe::Frame) {
        self.drain_events(ctx);
        let prefs = &self.state.prefs;
        self.ghost.set_opacity(if prefs.show_ghost {
            prefs.ghost_opacity
        } else {
            0.0
        });
        self.update_live();
        self.shortcuts(ctx);
        self.apply_commands(ctx);
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let t0 = Instant::now();
        panels::show(ui, &mut self.state);
        // Commands issued by the panels this frame are applied now, once.
        let ctx = ui.ctx().clone();
        self.apply_commands(&ctx);
        if let Some(b) = &mut self.bench {
            let done = b.frame(t0.elapsed(), self.live.results(), self.state.camera.frames);
            ctx.request_repaint();
            if done {
                b.finish();
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            }
        }
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        if self.opts.bench.is_none() {
            eframe::set_value(storage, Prefs::KEY, &self.state.prefs);
        }
    }
}
