//! Messages between the UI and the core worker. The UI never touches the store: it sends a
//! [`CoreCommand`], the worker (which owns the store) executes it and answers with
//! [`CoreEvent`]s, which the UI applies once per frame.

use std::path::PathBuf;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::camera::CameraFrame;
use sameframe_core::calibration::ConfounderDef;
use sameframe_core::records::confounders::ConfounderInput;
use sameframe_core::records::measurements::StationMeasurements;
use sameframe_core::records::protocol::{Protocol, ProtocolStatus};
use sameframe_core::records::treatment::VisitTreatment;
use sameframe_core::records::treatment::care::{FindingInput, PainWhen};
use sameframe_core::records::treatment::config::ResponseDef;
use sameframe_core::records::treatment::map::{MapInput, MapZone, PlacedMap};
use sameframe_core::records::{Area, Capture, Consent, Patient, Scope, View, Visit};
use sameframe_core::review::compare::PairGrade;

/// How a new store protects its photos.
#[derive(Clone, Debug)]
pub enum InitEncryption {
    Passphrase(Zeroizing<String>),
    KeyFile(PathBuf),
    None,
}

/// Which patient (and protocol step context) to reload after a change.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Focus {
    pub patient_ref: String,
    pub protocol: Option<String>,
    pub visit_id: Option<String>,
}

/// A new consent from the consent form.
#[derive(Clone, Debug)]
pub struct ConsentForm {
    pub scopes: Vec<Scope>,
    pub signed_by: String,
    pub signed_on: String,
    pub expires_on: Option<String>,
}

/// A new visit from the visit form.
#[derive(Clone, Debug)]
pub struct VisitForm {
    pub date: String,
    pub area: Area,
    pub product: Option<String>,
    pub lot: Option<String>,
    pub lot_expiry: Option<String>,
    pub technique: Option<String>,
    pub clinician: Option<String>,
}

/// Everything needed to store a station capture.
#[derive(Clone, Debug)]
pub struct CaptureJob {
    /// The analysed frame: the numbers recorded are those of these pixels.
    pub frame: Arc<CameraFrame>,
    pub focus: Focus,
    pub consent_id: String,
    pub visit_id: String,
    pub area: Area,
    pub view: View,
    pub baseline_id: Option<String>,
    pub confounders: Vec<ConfounderInput>,
    pub note: Option<String>,
    /// Lighting, pose, camera settings, readiness and any override reason.
    pub analysis: StationMeasurements,
}

/// A publication copy to prepare.
#[derive(Clone, Debug)]
pub struct PublishJob {
    pub capture_ids: Vec<String>,
    pub channel: String,
    pub deidentify: Option<sameframe_core::publish::deid::Method>,
    pub zone: Option<String>,
    pub override_reason: Option<String>,
    pub out: PathBuf,
}

/// A change to (or a read of) a visit's treatment record.
#[derive(Clone, Debug)]
pub enum TreatmentCmd {
    /// Load the visit's record and the capture to draw the map on (`None`: the map's own
    /// capture, else the visit's series baseline).
    Load {
        visit_id: String,
        map_capture: Option<String>,
    },
    AddProduct {
        visit_id: String,
        product: String,
        lot: String,
        expiry: String,
        quantity: Option<f64>,
        unit: Option<String>,
        expired_reason: Option<String>,
    },
    /// The area template's zones placed on a capture.
    PlaceTemplate { capture_id: String },
    SetMap {
        visit_id: String,
        capture_id: String,
        input: MapInput,
    },
    Response {
        visit_id: String,
        findings: Vec<FindingInput>,
        note: Option<String>,
    },
    Pain {
        visit_id: String,
        score: i64,
        when: PainWhen,
        comment: Option<String>,
    },
    Outcome {
        visit_id: String,
        patient_gais: Option<u8>,
        clinician_gais: Option<u8>,
        satisfaction: Option<i64>,
        text: Option<String>,
    },
}

/// A visit's treatment record as the treatment window shows it.
#[derive(Clone, Debug)]
pub struct TreatmentView {
    pub visit_id: String,
    pub record: VisitTreatment,
    /// (product, lot) the visit used, for the map's points.
    pub products: Vec<(String, String)>,
    pub responses: Vec<ResponseDef>,
    pub depths: Vec<String>,
    pub techniques: Vec<String>,
    /// Zones of the visit's area: (key, label).
    pub zones: Vec<(String, String)>,
    pub success: String,
    /// The capture the map is drawn on, and its picture.
    pub map_capture: Option<(String, DisplayImage)>,
}

/// UI → core.
#[derive(Clone, Debug)]
pub enum CoreCommand {
    /// Open the store with the keys given on the command line or in the environment.
    Open,
    Init(InitEncryption),
    Unlock(Zeroizing<String>),
    SearchPatients(String),
    AddPatient {
        reference: String,
        display_name: Option<String>,
    },
    LoadPatient(Focus),
    GrantConsent {
        focus: Focus,
        form: ConsentForm,
    },
    AddVisit {
        focus: Focus,
        form: VisitForm,
    },
    /// Decode a baseline capture for the ghost and the pose tracker.
    LoadBaseline {
        capture_id: String,
        view: View,
    },
    Capture(Box<CaptureJob>),
    /// Make the checklist of each capture exactly `confounders` (and set the note).
    SaveConfounders {
        focus: Focus,
        capture_ids: Vec<String>,
        confounders: Vec<ConfounderInput>,
        note: Option<String>,
    },
    LoadPair {
        baseline_id: String,
        followup_id: String,
    },
    /// Previews of these captures, for the series strip.
    LoadThumbnails(Vec<String>),
    /// Make a publication copy of a pair (see `Store::prepare_publication`).
    PreparePublication(Box<PublishJob>),
    /// Look for today's open session at this station (the last capture taken today, by this
    /// user, whose protocol is not complete).
    FindResume,
    Treatment(Box<TreatmentCmd>),
}

/// A consent with what it means for capturing today.
#[derive(Clone, Debug)]
pub struct ConsentView {
    pub consent: Consent,
    /// `Ok` when it allows clinical photos today, else why not.
    pub clinical: Result<(), String>,
}

/// A patient with their records.
#[derive(Clone, Debug)]
pub struct PatientView {
    pub patient: Patient,
    pub consents: Vec<ConsentView>,
    pub visits: Vec<Visit>,
    pub captures: Vec<Capture>,
    pub protocol: Option<ProtocolStatus>,
    /// The visit the reload was about (a visit just created, for instance).
    pub visit_id: Option<String>,
}

/// The store as the UI shows it.
#[derive(Clone, Debug)]
pub struct StoreInfo {
    pub path: PathBuf,
    /// Where the rows are, when the store is shared ("PostgreSQL user@host:port/db").
    pub shared: Option<String>,
    pub encryption: String,
    pub confounders: Vec<ConfounderDef>,
    pub protocols: Vec<Protocol>,
}

/// A decoded image for display (reduced to at most [`super::DISPLAY_SIDE`]).
#[derive(Clone)]
pub struct DisplayImage {
    pub image: egui::ColorImage,
    /// Full-resolution size of the original.
    pub width: u32,
    pub height: u32,
}

impl std::fmt::Debug for DisplayImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DisplayImage({}×{})", self.width, self.height)
    }
}

/// Core → UI.
#[derive(Clone, Debug)]
pub enum CoreEvent {
    StoreOpened(StoreInfo),
    /// No store yet: the first-run dialog offers to create one.
    StoreMissing {
        path: PathBuf,
    },
    /// The store is encrypted with a passphrase: the unlock dialog asks for it.
    NeedsPassphrase {
        path: PathBuf,
        error: Option<String>,
    },
    Patients(Vec<Patient>),
    PatientLoaded(Box<PatientView>),
    Baseline {
        capture_id: String,
        view: View,
        image: Arc<image::RgbImage>,
    },
    Captured {
        capture: Box<Capture>,
        existing: bool,
        warnings: Vec<String>,
        /// What was stored, reduced for the confirmation.
        thumbnail: Option<DisplayImage>,
    },
    /// Previews for the series strip: (capture ID, image).
    Thumbnails(Vec<(String, DisplayImage)>),
    /// Today's open session, if any.
    Resume(Option<super::state::ResumeOffer>),
    /// A capture that was not stored (the step stays where it is).
    CaptureFailed {
        view: View,
        message: String,
    },
    ConfoundersSaved {
        captures: usize,
    },
    Pair {
        grade: Box<PairGrade>,
        baseline: DisplayImage,
        followup: DisplayImage,
        baseline_capture: Box<Capture>,
        followup_capture: Box<Capture>,
        /// The series' area map placed on each photo, when one was drawn.
        maps: Box<[Option<PlacedMap>; 2]>,
    },
    /// Something the user asked for failed; shown once, in the notifications.
    Failed {
        action: String,
        message: String,
    },
    /// A visit's treatment record, loaded or reloaded after a change (`saved` says what).
    Treatment {
        view: Box<TreatmentView>,
        saved: Option<String>,
    },
    /// The area template placed on the map's capture.
    MapTemplate {
        capture_id: String,
        zones: Vec<MapZone>,
    },
    /// A publication copy was written and recorded.
    PublicationPrepared {
        publication_id: String,
        file: PathBuf,
        grade: Option<char>,
        deidentified: Option<String>,
    },
}
