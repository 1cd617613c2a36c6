//! The core worker: a thread named `sameframe-core` that owns the store and executes the UI's
//! commands one at a time, so disk, decryption and decoding never block the UI thread. Every
//! store change goes through the same library calls the CLI makes.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender};
use std::thread::JoinHandle;

use zeroize::Zeroizing;

mod treatment;
pub use treatment::ACTION as TREATMENT_ACTION;

use super::commands::{
    ConsentForm, CoreCommand, CoreEvent, DisplayImage, Focus, InitEncryption, PatientView,
    StoreInfo, VisitForm,
};
use super::display_image;
use sameframe_core::analysis::frame::fit_within;
use sameframe_core::records::consent::NewConsent;
use sameframe_core::records::{ImportRequest, NewVisit, RecordError, Scope, protocol};
use sameframe_core::store::crypto::KdfParams;
use sameframe_core::store::{Encryption, KeySource, OpenOptions, Store, StoreError};
use sameframe_core::timefmt;

/// Where and how to open the store.
#[derive(Clone, Debug)]
pub struct StoreConfig {
    pub data_dir: PathBuf,
    pub actor: String,
    pub key_file: Option<PathBuf>,
    pub passphrase: Option<Zeroizing<String>>,
    pub calibration_dir: Option<PathBuf>,
}

/// The handle the UI keeps.
pub struct CoreWorker {
    tx: Sender<CoreCommand>,
    join: Option<JoinHandle<()>>,
}

impl CoreWorker {
    /// Start the worker; events go to `events`, and `wake` is called after each (to repaint).
    pub fn spawn(
        cfg: StoreConfig,
        events: Sender<CoreEvent>,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::channel();
        let join = std::thread::Builder::new()
            .name("sameframe-core".into())
            .spawn(move || Worker::new(cfg, events, wake).run(&rx))?;
        Ok(Self {
            tx,
            join: Some(join),
        })
    }

    /// Queue a command.
    pub fn send(&self, cmd: CoreCommand) {
        let _ = self.tx.send(cmd);
    }
}

impl Drop for CoreWorker {
    fn drop(&mut self) {
        // Closing the channel ends the worker after the command in hand (a capture being
        // written completes).
        let (dead, _) = std::sync::mpsc::channel();
        drop(std::mem::replace(&mut self.tx, dead));
        if let Some(j) = self.join.take() {
            let _ = j.join();
        }
    }
}

struct Worker {
    cfg: StoreConfig,
    store: Option<Store>,
    events: Sender<CoreEvent>,
    wake: Arc<dyn Fn() + Send + Sync>,
}

/// What failed, for the notification.
fn failed(action: &str, e: impl std::fmt::Display) -> CoreEvent {
    CoreEvent::Failed {
        action: action.into(),
        message: e.to_string(),
    }
}

impl Worker {
    fn prepare_publication(&mut self, job: &super::commands::PublishJob) {
        const ACTION: &str = "prepare the publication copy";
        let Some(s) = self.store(ACTION) else {
            return;
        };
        let identity = match s.signing_identity() {
            Ok(Some(id)) => id,
            Ok(None) => {
                self.emit(failed(
                    ACTION,
                    "this store has no signing identity for provenance manifests: run `sameframe publish keys init`",
                ));
                return;
            }
            Err(e) => {
                self.emit(failed(ACTION, e));
                return;
            }
        };
        let signer = sameframe_interop::provenance::ClinicSigner::new(identity);
        let req = sameframe_core::publish::PrepareRequest {
            capture_ids: &job.capture_ids,
            channel: &job.channel,
            layout: None,
            deidentify: job.deidentify,
            zone: job.zone.as_deref(),
            burn_in: true,
            grade_override: job.override_reason.as_deref(),
            out: &job.out,
        };
        let event = match s.prepare_publication(&req, &signer) {
            Ok(p) => CoreEvent::PublicationPrepared {
                publication_id: p.publication_id,
                file: p.file,
                grade: p.grade,
                deidentified: p.deidentified,
            },
            Err(e) => failed(ACTION, e),
        };
        self.emit(event);
    }

    fn new(cfg: StoreConfig, events: Sender<CoreEvent>, wake: Arc<dyn Fn() + Send + Sync>) -> Self {
        Self {
            cfg,
            store: None,
            events,
            wake,
        }
    }

    fn emit(&self, e: CoreEvent) {
        let _ = self.events.send(e);
        (self.wake)();
    }

    fn run(mut self, rx: &Receiver<CoreCommand>) {
        while let Ok(cmd) = rx.recv() {
            self.handle(cmd);
        }
    }

    fn options(&self, keys: KeySource) -> OpenOptions {
        OpenOptions {
            actor: self.cfg.actor.clone(),
            keys,
            calibration_dir: self.cfg.calibration_dir.clone(),
            ..Default::default()
        }
    }

    fn keys(&self) -> KeySource {
        if let Some(k) = &self.cfg.key_file {
            KeySource::KeyFile(k.clone())
        } else if let Some(p) = &self.cfg.passphrase {
            KeySource::Passphrase(p.clone())
        } else {
            KeySource::None
        }
    }

    /// Open with `keys` and check them now, so a wrong passphrase is reported at the dialog.
    fn open_with(&mut self, keys: KeySource) {
        use sameframe_core::store::crypto::KeyError;
        let path = self.cfg.data_dir.clone();
        match sameframe_store::open(&path, self.options(keys)) {
            Ok(s) => {
                self.store = Some(s);
                self.opened();
            }
            Err(StoreError::NotInitialized { path }) => {
                self.emit(CoreEvent::StoreMissing { path });
            }
            Err(StoreError::Key(KeyError::PassphraseNeeded { .. })) => {
                self.emit(CoreEvent::NeedsPassphrase { path, error: None });
            }
            Err(StoreError::Key(e @ KeyError::WrongPassphrase { .. })) => {
                self.emit(CoreEvent::NeedsPassphrase {
                    path,
                    error: Some(e.to_string()),
                });
            }
            Err(e) => self.emit(failed("open the store", e)),
        }
    }

    fn opened(&self) {
        let Some(s) = &self.store else { return };
        let cal = s.calibration();
        let info = (|| -> Result<StoreInfo, RecordError> {
            Ok(StoreInfo {
                path: s.root().to_path_buf(),
                shared: s
                    .is_shared()
                    .then(|| format!("{} + {}", s.location(), s.blob_location())),
                encryption: s.encryption_status().mode,
                confounders: cal.confounders()?,
                protocols: protocol::protocols(cal)?,
            })
        })();
        match info {
            Ok(i) => self.emit(CoreEvent::StoreOpened(i)),
            Err(e) => self.emit(failed("read the calibration files", e)),
        }
    }

    fn store(&self, action: &str) -> Option<&Store> {
        if self.store.is_none() {
            self.emit(failed(action, "the store is not open"));
        }
        self.store.as_ref()
    }

    fn handle(&mut self, cmd: CoreCommand) {
        match cmd {
            CoreCommand::Open => {
                let keys = self.keys();
                self.open_with(keys);
            }
            CoreCommand::Unlock(pass) => self.open_with(KeySource::Passphrase(pass)),
            CoreCommand::Init(enc) => self.init(enc),
            CoreCommand::SearchPatients(q) => {
                let Some(s) = self.store("search patients") else {
                    return;
                };
                match s.search_patients(&q, 50) {
                    Ok(list) => self.emit(CoreEvent::Patients(list)),
                    Err(e) => self.emit(failed("search patients", e)),
                }
            }
            CoreCommand::AddPatient {
                reference,
                display_name,
            } => {
                let Some(s) = self.store("create the patient") else {
                    return;
                };
                match s.add_patient(&reference, display_name.as_deref()) {
                    Ok(p) => self.load(&Focus {
                        patient_ref: p.reference,
                        protocol: None,
                        visit_id: None,
                    }),
                    Err(e) => self.emit(failed("create the patient", e)),
                }
            }
            CoreCommand::LoadPatient(focus) => self.load(&focus),
            CoreCommand::GrantConsent { focus, form } => self.grant(&focus, form),
            CoreCommand::AddVisit { focus, form } => self.add_visit(focus, form),
            CoreCommand::LoadBaseline { capture_id, view } => {
                let Some(s) = self.store("load the baseline") else {
                    return;
                };
                match s.capture_image(&capture_id) {
                    Ok(img) => {
                        self.emit(CoreEvent::Baseline {
                            capture_id,
                            view,
                            image: Arc::new(img.to_rgb8()),
                        });
                    }
                    Err(e) => self.emit(failed(&format!("load baseline {capture_id}"), e)),
                }
            }
            CoreCommand::Capture(job) => self.capture(*job),
            CoreCommand::SaveConfounders {
                focus,
                capture_ids,
                confounders,
                note,
            } => {
                let Some(s) = self.store("save the confounders") else {
                    return;
                };
                let mut done = 0;
                for id in &capture_ids {
                    if let Err(e) = s.replace_confounders(id, &confounders, note.as_deref()) {
                        self.emit(failed(&format!("save the confounders of {id}"), e));
                        break;
                    }
                    done += 1;
                }
                self.emit(CoreEvent::ConfoundersSaved { captures: done });
                self.load(&focus);
            }
            CoreCommand::LoadPair {
                baseline_id,
                followup_id,
            } => self.pair(&baseline_id, &followup_id),
            CoreCommand::LoadThumbnails(ids) => {
                let Some(s) = self.store.as_ref() else { return };
                let thumbs = ids
                    .into_iter()
                    .filter_map(|id| {
                        let p = s.preview(&id).ok()?;
                        Some((id, display_image(&fit_within(&p, 128))))
                    })
                    .collect();
                self.emit(CoreEvent::Thumbnails(thumbs));
            }
            CoreCommand::PreparePublication(job) => self.prepare_publication(&job),
            CoreCommand::FindResume => {
                let offer = self
                    .store
                    .as_ref()
                    .and_then(|s| resume_offer(s, &self.cfg.actor));
                self.emit(CoreEvent::Resume(offer));
            }
            CoreCommand::Treatment(cmd) => self.treatment(*cmd),
        }
    }

    fn init(&mut self, enc: InitEncryption) {
        let encryption = match enc {
            InitEncryption::Passphrase(p) => Encryption::Passphrase {
                passphrase: p,
                kdf: KdfParams::default(),
            },
            InitEncryption::KeyFile(path) => Encryption::KeyFile { path },
            InitEncryption::None => Encryption::None,
        };
        let keys = encryption.key_source();
        match sameframe_store::init(
            &self.cfg.data_dir,
            &sameframe_store::Target::Embedded,
            false,
            encryption,
            self.options(keys),
        ) {
            Ok(s) => {
                self.store = Some(s);
                self.opened();
            }
            Err(e) => self.emit(failed("create the store", e)),
        }
    }

    fn patient_view(&self, s: &Store, focus: &Focus) -> Result<PatientView, RecordError> {
        let patient = s.patient_by_ref(&focus.patient_ref)?;
        let today = timefmt::today();
        let consents = s
            .consents_of_patient_id(&patient.id)?
            .into_iter()
            .map(|c| {
                let clinical = c
                    .permits(Scope::Clinical, today)
                    .map_err(|r| format!("consent {}: {r}", c.id));
                super::commands::ConsentView {
                    consent: c,
                    clinical,
                }
            })
            .collect();
        let visits = s.visits_of_patient_id(&patient.id)?;
        let captures = s.list_captures(Some(&patient.reference))?;
        let protocol = match &focus.protocol {
            Some(p) => Some(s.protocol_status(&patient.reference, p, focus.visit_id.as_deref())?),
            None => None,
        };
        Ok(PatientView {
            patient,
            consents,
            visits,
            captures,
            protocol,
            visit_id: focus.visit_id.clone(),
        })
    }

    fn load(&self, focus: &Focus) {
        let Some(s) = self.store("load the patient") else {
            return;
        };
        match self.patient_view(s, focus) {
            Ok(v) => self.emit(CoreEvent::PatientLoaded(Box::new(v))),
            Err(e) => self.emit(failed(&format!("load patient {}", focus.patient_ref), e)),
        }
    }

    fn grant(&self, focus: &Focus, form: ConsentForm) {
        let Some(s) = self.store("record the consent") else {
            return;
        };
        let parse = |what: &str, v: &str| {
            timefmt::parse_date(v).ok_or_else(|| format!("{what} {v:?} is not a date (YYYY-MM-DD)"))
        };
        let result = (|| -> Result<(), String> {
            let signed_on = parse("signed on", &form.signed_on)?;
            let expires_on = match form.expires_on.as_deref().map(str::trim) {
                Some(e) if !e.is_empty() => Some(parse("expires on", e)?),
                _ => None,
            };
            s.grant_consent(NewConsent {
                identifiable: false,
                patient_ref: &focus.patient_ref,
                scopes: form.scopes.clone(),
                signed_by: &form.signed_by,
                signed_on,
                expires_on,
                document: None,
            })
            .map_err(|e| e.to_string())?;
            Ok(())
        })();
        match result {
            Ok(()) => self.load(focus),
            Err(e) => self.emit(failed("record the consent", e)),
        }
    }

    fn add_visit(&self, mut focus: Focus, form: VisitForm) {
        let Some(s) = self.store("start the visit") else {
            return;
        };
        let result = (|| -> Result<sameframe_core::records::visit::VisitOutcome, String> {
            let date = timefmt::parse_date(&form.date)
                .ok_or_else(|| format!("visit date {:?} is not a date (YYYY-MM-DD)", form.date))?;
            let lot_expiry = match form.lot_expiry.as_deref().map(str::trim) {
                Some(e) if !e.is_empty() => Some(
                    timefmt::parse_date(e)
                        .ok_or_else(|| format!("lot expiry {e:?} is not a date (YYYY-MM-DD)"))?,
                ),
                _ => None,
            };
            s.add_visit(NewVisit {
                patient_ref: &focus.patient_ref,
                area: form.area,
                date,
                product: form.product.as_deref(),
                lot: form.lot.as_deref(),
                lot_expiry,
                technique: form.technique.as_deref(),
                clinician: form.clinician.as_deref(),
                expired_lot_reason: None,
            })
            .map_err(|e| e.to_string())
        })();
        match result {
            Ok(v) => {
                for w in &v.warnings {
                    self.emit(failed("check the visit", w));
                }
                focus.visit_id = Some(v.visit.id);
                self.load(&focus);
            }
            Err(e) => self.emit(failed("start the visit", e)),
        }
    }

    fn capture(&self, mut job: super::commands::CaptureJob) {
        let Some(s) = self.store("store the capture") else {
            return;
        };
        let refuse = |message: String| {
            self.emit(CoreEvent::CaptureFailed {
                view: job.view,
                message,
            });
        };
        let png;
        let bytes: &[u8] = match &job.frame.encoded {
            Some(b) => b,
            None => {
                png = match encode_png(&job.frame.image) {
                    Ok(p) => p,
                    Err(e) => {
                        self.emit(failed("encode the frame", e));
                        return;
                    }
                };
                &png
            }
        };
        let subject = format!("station frame {}", job.frame.seq);
        // The pose of the very frame stored, re-checked against the baseline by the measure
        // `pair` and Compare use: a follow-up out of tolerance is stored only with the override.
        if let Some(b) = &job.baseline_id {
            let checked = s
                .stored_preview_of(bytes, &subject)
                .and_then(|preview| s.pose_check(b, &preview, job.area));
            match checked {
                Ok(check) => {
                    if let Some(problem) = check.problem() {
                        match job.analysis.override_.as_mut() {
                            Some(o) => o.out_of_tolerance.push(format!("as stored: {problem}")),
                            None => {
                                refuse(format!(
                                    "not stored: re-checked as stored, {problem}. Retake it, or capture with the override and a reason"
                                ));
                                return;
                            }
                        }
                    }
                    job.analysis.pose_at_commit = Some(check);
                }
                Err(e) => {
                    refuse(format!("not stored: the pose could not be re-checked: {e}"));
                    return;
                }
            }
        }
        let at = timefmt::fmt_local(job.frame.captured_at);
        let req = ImportRequest {
            bytes,
            subject: &subject,
            patient_ref: &job.focus.patient_ref,
            consent_id: &job.consent_id,
            area: job.area,
            view: job.view,
            visit_id: Some(&job.visit_id),
            baseline_id: job.baseline_id.as_deref(),
            new_baseline: false,
            confounders: job.confounders.clone(),
            note: job.note.as_deref(),
            captured_at: Some(&at),
            file_modified: None,
            analysis: Some(job.analysis.clone()),
            // The station shows what was stored at once, and the next view's ghost needs it.
            derive_later: false,
        };
        match s.import_capture(req) {
            Ok(out) => {
                self.emit(CoreEvent::Captured {
                    capture: Box::new(out.capture),
                    existing: out.existing,
                    warnings: out.warnings,
                    thumbnail: Some(display_image(&fit_within(&job.frame.image, 320))),
                });
                self.load(&job.focus);
            }
            Err(e) => refuse(format!("not stored: {e}")),
        }
    }

    fn pair(&self, baseline_id: &str, followup_id: &str) {
        let Some(s) = self.store("compare the pair") else {
            return;
        };
        let result = (|| -> Result<CoreEvent, RecordError> {
            let grade = s.grade_pair(baseline_id, followup_id)?;
            let img = |id: &str| -> Result<DisplayImage, RecordError> {
                Ok(display_image(&s.capture_image(id)?.to_rgb8()))
            };
            Ok(CoreEvent::Pair {
                grade: Box::new(grade),
                baseline: img(baseline_id)?,
                followup: img(followup_id)?,
                baseline_capture: Box::new(s.capture(baseline_id)?),
                followup_capture: Box::new(s.capture(followup_id)?),
                // No map, or a photo the map cannot be aligned with: shown without one.
                maps: Box::new([
                    s.map_on_capture(baseline_id).ok(),
                    s.map_on_capture(followup_id).ok(),
                ]),
            })
        })();
        match result {
            Ok(e) => self.emit(e),
            Err(e) => self.emit(failed(
                &format!("compare {baseline_id} with {followup_id}"),
                e,
            )),
        }
    }
}

/// Today's open session at this station: the last capture `actor` took today, when its
/// protocol still has views to take at that visit.
fn resume_offer(s: &Store, actor: &str) -> Option<super::state::ResumeOffer> {
    use sameframe_core::store::audit::{LogFilter, read};
    let today = timefmt::fmt_date(timefmt::today());
    let entries = s
        .read(|r| {
            read(
                r,
                &LogFilter {
                    action_prefix: Some("capture.import".into()),
                    ..Default::default()
                },
            )
        })
        .ok()?;
    let entry = entries.iter().rev().find(|e| e.actor == actor)?;
    let capture = s.capture(entry.subjects["capture"].as_str()?).ok()?;
    if !capture.captured_at.starts_with(&today) {
        return None;
    }
    let visit_id = capture.visit_id.clone()?;
    let protocol = capture.analysis.as_ref()?.protocol.as_ref()?.key.clone();
    let status = s
        .protocol_status(&capture.patient_ref, &protocol, Some(&visit_id))
        .ok()?;
    let next = status.next_step?;
    Some(super::state::ResumeOffer {
        label: format!(
            "{} — {}, next: {}",
            capture.patient_ref,
            status.label,
            status.steps.get(next).map_or("", |st| st.view.label())
        ),
        patient_ref: capture.patient_ref,
        visit_id,
        protocol,
        step: next,
    })
}

/// A lossless PNG of a frame (fast compression: the station stores it while the patient waits).
pub fn encode_png(img: &image::RgbImage) -> Result<Vec<u8>, image::ImageError> {
    use image::ImageEncoder;
    let mut out = Vec::with_capacity(img.as_raw().len() / 2);
    image::codecs::png::PngEncoder::new_with_quality(
        &mut out,
        image::codecs::png::CompressionType::Fast,
        image::codecs::png::FilterType::Adaptive,
    )
    .write_image(
        img.as_raw(),
        img.width(),
        img.height(),
        image::ExtendedColorType::Rgb8,
    )?;
    Ok(out)
}
