//! Runtime state of the station: what the panels read and the forms they edit. Rebuilt from the
//! core's events; nothing here is persisted (preferences live in [`super::prefs`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use egui::TextureHandle;
use zeroize::Zeroizing;

use super::commands::{CoreCommand, PatientView, StoreInfo};
use super::live::LiveResult;
use super::prefs::Prefs;
use crate::camera::{CameraDesc, CameraSettings, CameraStatus, ControlKind, SourceSpec};
use sameframe_core::analysis::readiness::Readiness;
use sameframe_core::calibration::ConfounderDef;
use sameframe_core::records::protocol::{Protocol, StepStatus};
use sameframe_core::records::{Area, Capture, Patient, View};
use sameframe_core::review::compare::PairGrade;

/// The store as seen by the UI.
#[derive(Clone, Debug)]
pub enum StoreState {
    Opening,
    Missing {
        path: std::path::PathBuf,
    },
    Locked {
        path: std::path::PathBuf,
        error: Option<String>,
    },
    Open(StoreInfo),
    Failed(String),
}

/// A message in the notifications (each error is shown once, here).
#[derive(Clone, Debug)]
pub struct Notice {
    pub at: String,
    pub text: String,
    pub error: bool,
}

/// Actions the panels ask for; applied once per frame by the app.
#[derive(Clone, Debug)]
pub enum UiCommand {
    Core(CoreCommand),
    SelectPatient(String),
    SelectVisit(Option<String>),
    SelectProtocol(Option<String>),
    GoToStep(usize),
    NextStep,
    PrevStep,
    Capture {
        override_reason: Option<String>,
        auto: bool,
    },
    SaveConfounders,
    SetEdges(bool),
    SwitchCamera(SourceSpec),
    SetLock(ControlKind, bool),
    Compare {
        baseline_id: String,
        followup_id: String,
    },
}

/// The baseline of the current step, loaded for the ghost.
pub struct BaselineState {
    pub capture_id: String,
    pub view: View,
    pub size: [u32; 2],
}

/// The consent form.
#[derive(Clone, Debug)]
pub struct ConsentDraft {
    pub clinical: bool,
    pub teaching: bool,
    pub publication: bool,
    pub signed_by: String,
    pub signed_on: String,
    pub expires_on: String,
}

/// The visit form.
#[derive(Clone, Debug)]
pub struct VisitDraft {
    pub date: String,
    pub area: Area,
    pub product: String,
    pub lot: String,
    pub lot_expiry: String,
    pub technique: String,
    pub clinician: String,
}

/// How the first-run dialog protects a new store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitMode {
    Passphrase,
    KeyFile,
    None,
}

/// Text the user is typing.
pub struct Forms {
    pub patient_query: String,
    pub new_ref: String,
    pub new_name: String,
    pub consent: ConsentDraft,
    pub visit: VisitDraft,
    pub passphrase: Zeroizing<String>,
    pub passphrase_again: Zeroizing<String>,
    pub init_mode: InitMode,
    pub key_file: String,
    pub override_reason: String,
    pub override_open: bool,
}

impl Forms {
    pub fn new(actor: &str) -> Self {
        let today = sameframe_core::timefmt::fmt_date(sameframe_core::timefmt::today());
        Self {
            patient_query: String::new(),
            new_ref: String::new(),
            new_name: String::new(),
            consent: ConsentDraft {
                clinical: true,
                teaching: false,
                publication: false,
                signed_by: String::new(),
                signed_on: today.clone(),
                expires_on: String::new(),
            },
            visit: VisitDraft {
                date: today,
                area: Area::Face,
                product: String::new(),
                lot: String::new(),
                lot_expiry: String::new(),
                technique: String::new(),
                clinician: actor.to_string(),
            },
            passphrase: Zeroizing::new(String::new()),
            passphrase_again: Zeroizing::new(String::new()),
            init_mode: InitMode::Passphrase,
            key_file: String::new(),
            override_reason: String::new(),
            override_open: false,
        }
    }
}

/// The confounder checklist being filled for the visit.
#[derive(Clone, Debug, Default)]
pub struct ConfounderDraft {
    /// key → (ticked, text)
    pub items: BTreeMap<String, (bool, String)>,
    pub note: String,
    /// Edited since last saved to the visit's captures.
    pub dirty: bool,
}

/// The compare window.
#[derive(Default)]
pub struct CompareState {
    pub open: bool,
    pub baseline_id: Option<String>,
    pub followup_id: Option<String>,
    pub loaded: Option<LoadedPair>,
    pub wipe: f32,
    pub side_by_side: bool,
}

/// A pair shown in the compare window.
pub struct LoadedPair {
    pub grade: PairGrade,
    pub baseline: TextureHandle,
    pub followup: TextureHandle,
    pub baseline_capture: Capture,
    pub followup_capture: Capture,
}

/// Camera state the panels show.
pub struct CameraView {
    pub spec: SourceSpec,
    /// Why the replay camera is running instead of a real one.
    pub banner: Option<String>,
    pub status: CameraStatus,
    pub settings: Option<CameraSettings>,
    pub cameras: Vec<CameraDesc>,
    pub frames: u64,
    pub window_open: bool,
}

/// Whether a capture may be taken now, and why not.
#[derive(Clone, Debug, PartialEq)]
pub struct Gate {
    /// Session preconditions (consent, visit, protocol, camera): when set, capture is refused
    /// outright and no override is possible.
    pub refusal: Option<String>,
    /// Within tolerance: capture without override.
    pub ready: bool,
    /// Why the frame is not within tolerance.
    pub reasons: Vec<String>,
}

/// Everything the panels read and edit.
pub struct State {
    pub prefs: Prefs,
    pub store: StoreState,
    pub confounder_defs: Vec<ConfounderDef>,
    pub protocols: Vec<Protocol>,
    pub patients: Vec<Patient>,
    pub patient: Option<PatientView>,
    pub visit_id: Option<String>,
    pub protocol: Option<String>,
    pub step: usize,
    pub draft: ConfounderDraft,
    pub baseline: Option<BaselineState>,
    /// The baseline being loaded (capture ID).
    pub baseline_loading: Option<String>,
    pub live: Option<Arc<LiveResult>>,
    pub readiness: Option<Readiness>,
    pub gate: Gate,
    pub capture_pending: bool,
    pub last_capture: Option<Capture>,
    pub auto_count: (u32, u32),
    pub forms: Forms,
    pub notices: Vec<Notice>,
    pub camera: CameraView,
    pub compare: CompareState,
    pub preview: TextureHandle,
    pub analysis_hz: f64,
    pub cmds: Vec<UiCommand>,
    pub started: Instant,
}

impl State {
    /// Record a notice (errors once, in red).
    pub fn notify(&mut self, text: impl Into<String>, error: bool) {
        let at = chrono::Local::now().format("%H:%M:%S").to_string();
        self.notices.push(Notice {
            at,
            text: text.into(),
            error,
        });
        if self.notices.len() > 200 {
            self.notices.remove(0);
        }
    }

    /// The selected protocol.
    pub fn protocol_def(&self) -> Option<&Protocol> {
        let key = self.protocol.as_deref()?;
        self.protocols.iter().find(|p| p.key == key)
    }

    /// The current step's status (from the store).
    pub fn step_status(&self) -> Option<&StepStatus> {
        self.patient
            .as_ref()?
            .protocol
            .as_ref()?
            .steps
            .get(self.step)
    }

    /// The consent the station captures under: the newest allowing clinical use today.
    pub fn capture_consent(&self) -> Option<&super::commands::ConsentView> {
        self.patient
            .as_ref()?
            .consents
            .iter()
            .rev()
            .find(|c| c.clinical.is_ok())
    }

    /// The selected visit.
    pub fn visit(&self) -> Option<&sameframe_core::records::Visit> {
        let id = self.visit_id.as_deref()?;
        self.patient.as_ref()?.visits.iter().find(|v| v.id == id)
    }

    /// The captures taken at the selected visit.
    pub fn visit_captures(&self) -> Vec<&Capture> {
        match (&self.patient, &self.visit_id) {
            (Some(p), Some(v)) => p
                .captures
                .iter()
                .filter(|c| c.visit_id.as_deref() == Some(v.as_str()))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The checklist as capture inputs.
    pub fn confounder_inputs(&self) -> Vec<sameframe_core::records::confounders::ConfounderInput> {
        self.draft
            .items
            .iter()
            .filter(|(_, (on, _))| *on)
            .map(
                |(k, (_, text))| sameframe_core::records::confounders::ConfounderInput {
                    key: k.clone(),
                    text: Some(text.trim().to_string()).filter(|t| !t.is_empty()),
                },
            )
            .collect()
    }
}
