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
    /// Shown at a form instead (kept in the message log only, not in the status line, so it
    /// goes from view once the form is fixed).
    pub at_field: bool,
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
    /// Open Compare on the current pair.
    OpenCompare,
    /// Open the treatment window on the current visit.
    OpenTreatment,
    /// Drop the unsaved input and do this.
    Discard(Box<UiCommand>),
    /// Take up today's open session.
    Resume(ResumeOffer),
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
    /// What was out of tolerance when the override dialog was opened (shown and recorded as
    /// they were then, not as the live frame changes).
    pub override_reasons: Vec<String>,
    /// Errors shown at the form they belong to, cleared when the form is edited or succeeds.
    pub errors: FieldErrors,
    /// The key file of a store being created: once it opens, the station asks to back it up.
    pub pending_key_backup: Option<std::path::PathBuf>,
}

/// An error per form, shown where the clinician is looking.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FieldErrors {
    pub store: Option<String>,
    pub patient: Option<String>,
    pub consent: Option<String>,
    pub visit: Option<String>,
    pub confounders: Option<String>,
    pub capture: Option<String>,
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
            override_reasons: Vec::new(),
            errors: FieldErrors::default(),
            pending_key_backup: None,
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
    pub publish: PublishDraft,
}

/// The "Prepare for publication" form of the compare window.
#[derive(Clone, Debug, Default)]
pub struct PublishDraft {
    /// A channel of `calibration/publication.toml` (website, social, print, teaching).
    pub channel: String,
    /// 0: none, 1: crop to the zone, 2: mask outside it.
    pub deidentify: usize,
    pub zone: String,
    pub override_reason: String,
    /// Where the copy is written.
    pub out: String,
    /// A copy is being prepared.
    pub busy: bool,
    pub error: Option<String>,
    /// The last copy prepared: what to tell the user.
    pub done: Option<String>,
}

/// A pair shown in the compare window.
pub struct LoadedPair {
    pub grade: PairGrade,
    pub baseline: TextureHandle,
    pub followup: TextureHandle,
    pub baseline_capture: Capture,
    pub followup_capture: Capture,
    pub maps: [Option<sameframe_core::records::treatment::map::PlacedMap>; 2],
}

/// The treatment window: the visit's record as loaded, and what is being entered.
#[derive(Default)]
pub struct TreatmentState {
    pub open: bool,
    pub loaded: Option<LoadedTreatment>,
    pub draft: TreatmentDraft,
    pub busy: bool,
    pub error: Option<String>,
    pub done: Option<String>,
}

/// A loaded treatment record with the map's picture on the GPU.
pub struct LoadedTreatment {
    pub view: crate::app::commands::TreatmentView,
    /// The capture the map is drawn on, its texture and its full-resolution size.
    pub picture: Option<(String, TextureHandle, [u32; 2])>,
}

/// What the clinician is entering in the treatment window.
#[derive(Clone, Debug, Default)]
pub struct TreatmentDraft {
    /// The visit and capture the map draft belongs to.
    pub map_of: Option<(String, String)>,
    pub product: String,
    pub lot: String,
    pub expiry: String,
    pub quantity: String,
    pub unit: String,
    pub expired_reason: String,
    pub zones: Vec<sameframe_core::records::treatment::MapZone>,
    pub points: Vec<sameframe_core::records::treatment::InjectionPoint>,
    /// Unsaved changes to the map.
    pub map_dirty: bool,
    /// The zone being drawn: its template index and the corners so far.
    pub drawing: Option<(usize, Vec<[f64; 2]>)>,
    pub zone_pick: usize,
    pub point_product: usize,
    pub depth: usize,
    pub technique: usize,
    pub volume: String,
    pub gauge: String,
    /// Per response of the clinic's list: 0 none … 3 severe.
    pub severities: Vec<usize>,
    pub response_note: String,
    pub pain: u8,
    pub pain_at_end: bool,
    pub pain_comment: String,
    /// 0: not given, 1–5: GAIS.
    pub patient_gais: usize,
    pub clinician_gais: usize,
    /// 0–10, or none.
    pub satisfaction: Option<u8>,
    pub outcome_text: String,
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

/// The capture just stored, as the station confirms it.
pub struct SavedCapture {
    pub capture: Capture,
    pub thumbnail: Option<TextureHandle>,
    /// The pose score re-checked as stored (the number `pair` gives), when a follow-up.
    pub score: Option<f64>,
}

/// Today's session at this station, offered for resumption after a restart.
#[derive(Clone, Debug, PartialEq)]
pub struct ResumeOffer {
    pub patient_ref: String,
    pub visit_id: String,
    pub protocol: String,
    pub step: usize,
    /// "P-0042 — Face protocol, next: Oblique left 45°"
    pub label: String,
}

/// An action that would drop unsaved input, held until the clinician confirms.
#[derive(Clone, Debug)]
pub struct DiscardPrompt {
    pub what: String,
    pub then: UiCommand,
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
    /// The protocol step a pending capture is for.
    pub capture_pending_step: Option<usize>,
    /// Steps of the current visit and protocol whose last capture failed, and why.
    pub step_failures: BTreeMap<usize, String>,
    pub last_capture: Option<SavedCapture>,
    /// Shown until dismissed after a key-file store is created: where the key is.
    pub key_backup: Option<std::path::PathBuf>,
    /// Previews of the visit's captures for the series strip, by capture ID.
    pub thumbs: BTreeMap<String, TextureHandle>,
    pub resume: Option<ResumeOffer>,
    /// The step a resumed session continues at, applied when its patient has loaded.
    pub resume_step: Option<usize>,
    pub discard: Option<DiscardPrompt>,
    pub auto_count: (u32, u32),
    pub forms: Forms,
    pub notices: Vec<Notice>,
    pub camera: CameraView,
    pub compare: CompareState,
    pub treatment: TreatmentState,
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
            at_field: false,
        });
        if self.notices.len() > 200 {
            self.notices.remove(0);
        }
    }

    /// Log an error that is shown at its form.
    pub fn log_field_error(&mut self, text: impl Into<String>) {
        self.notify(text, true);
        if let Some(n) = self.notices.last_mut() {
            n.at_field = true;
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

    /// Whether `view`'s step is captured at this visit, failed, or still missing.
    pub fn step_state(&self, i: usize) -> StepState {
        let captured = self
            .patient
            .as_ref()
            .and_then(|p| p.protocol.as_ref())
            .and_then(|p| p.steps.get(i))
            .is_some_and(|s| !s.captured.is_empty());
        if captured {
            StepState::Captured
        } else if self.step_failures.contains_key(&i) {
            StepState::Failed
        } else {
            StepState::Missing
        }
    }

    /// True when every step of the protocol is captured at this visit.
    pub fn series_complete(&self) -> bool {
        let n = self.protocol_def().map_or(0, |p| p.steps.len());
        self.visit_id.is_some()
            && n > 0
            && (0..n).all(|i| self.step_state(i) == StepState::Captured)
    }

    /// The pair Compare opens on: the capture just taken when it is a follow-up, else this
    /// view's latest follow-up at the visit.
    pub fn current_pair(&self) -> Option<(String, String)> {
        if let Some(c) = self.last_capture.as_ref().map(|s| &s.capture)
            && let Some(b) = &c.baseline_id
        {
            return Some((b.clone(), c.id.clone()));
        }
        let step = self.step_status()?;
        let baseline = step.baseline_id.clone()?;
        let latest = step.captured.last().filter(|l| **l != baseline)?.clone();
        Some((baseline, latest))
    }

    /// Show the checklist saved with the visit's captures (the newest), unless the clinician
    /// has unsaved ticks.
    pub fn load_saved_confounders(&mut self) {
        if self.draft.dirty {
            return;
        }
        let saved = self
            .visit_captures()
            .last()
            .map(|c| (c.confounders.clone(), c.note.clone()));
        for v in self.draft.items.values_mut() {
            *v = (false, String::new());
        }
        self.draft.note.clear();
        if let Some((items, note)) = saved {
            for k in items {
                if let Some(v) = self.draft.items.get_mut(&k.key) {
                    *v = (true, k.text.unwrap_or_default());
                }
            }
            self.draft.note = note.unwrap_or_default();
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

/// A protocol step at this visit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepState {
    Captured,
    Missing,
    Failed,
}

/// A message from the records core in the station's words: the command line's flag names
/// become the labels of the station's fields.
pub fn station_language(message: &str) -> String {
    const FIELDS: &[(&str, &str)] = &[
        (
            "give --deidentify crop or --deidentify mask (with --zone for face photos)",
            "choose Crop or Mask, and name the Treated zone",
        ),
        ("name the treated zone with --zone", "name the Treated zone"),
        (
            "give --override-grade REASON",
            "give a Grade override reason",
        ),
        (
            "`sameframe publish keys init`",
            "`sameframe publish keys init` at the command line",
        ),
        ("--zone", "Treated zone"),
        ("--channel", "Channel"),
        ("--lot-expiry", "Lot expiry"),
        ("--signed-by", "Signed by"),
        ("--signed-on", "Signed on"),
        ("--expires", "Expires on"),
        ("--scope", "Scopes"),
        ("--product", "Product"),
        ("--lot", "Lot"),
        ("--technique", "Technique"),
        ("--clinician", "Clinician"),
        ("--note", "Note"),
        ("--new-baseline", "New baseline"),
        ("--ref", "Clinic reference"),
        ("--name", "Name"),
    ];
    let mut out = message.to_string();
    for (flag, label) in FIELDS {
        out = out.replace(flag, label);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publication_refusals_name_the_form_fields() {
        let m = station_language(
            "cap_1: consent con_1 does not allow the patient to be recognisable in a publication: give --deidentify crop or --deidentify mask (with --zone for face photos)",
        );
        assert!(
            m.ends_with("choose Crop or Mask, and name the Treated zone"),
            "{m}"
        );
        assert!(
            !station_language("cap_1: name the treated zone with --zone (one of: cheeks)")
                .contains("--")
        );
    }

    #[test]
    fn messages_use_the_fields_labels_not_flags() {
        assert_eq!(
            station_language("--expires: 2026-01-01 is before the signing date"),
            "Expires on: 2026-01-01 is before the signing date"
        );
        assert_eq!(
            station_language("a lot expiry needs its lot (--lot)"),
            "a lot expiry needs its lot (Lot)"
        );
        assert!(!station_language("--lot-expiry: bad").contains("--"));
    }
}
