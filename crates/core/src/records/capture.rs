//! Captures: immutable photos addressed by SHA-256, linked to patient, consent, visit and the
//! baseline they follow, with their EXIF summary, confounders and (for station captures) the
//! lighting and pose numbers at capture time.
//!
//! Import order, so a crash never leaves a row without its blob and a race never leaves a
//! series with two baselines or a withdrawn consent with a new photo:
//! validate the header → hash → (decode ‖ seal + write the blob) → one unit of work that checks
//! the consent and the series again under the store's write lock, then writes the rows and the
//! audit entry. A refusal at that point removes the blob it wrote.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::confounders::{ConfounderEntry, ConfounderInput, validate as validate_confounders};
use super::measurements::StationMeasurements;
use super::{Area, RecordError, Role, Scope, View};
use crate::analysis::fingerprint::{self, Fingerprint};
use crate::ids::{new_id, sha256_hex};
use crate::ingest::{self, ExifSummary, ImageKind};
use crate::store::repo::{BlobRow, CaptureRow, ExportRow, Repos};
use crate::store::seal::check_column;
use crate::store::{BlobKey, Put, Store, StoreError, Tx};

/// A stored capture.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Capture {
    #[serde(rename = "capture_id")]
    pub id: String,
    pub sha256: String,
    pub patient_id: String,
    pub patient_ref: String,
    pub consent_id: String,
    pub visit_id: Option<String>,
    pub area: Area,
    pub view: View,
    pub role: Role,
    pub baseline_id: Option<String>,
    pub captured_at: String,
    /// Where `captured_at` came from: "given", "exif", "file_mtime" or "import_time".
    pub captured_at_source: String,
    /// Derived from `captured_at`: morning, afternoon, evening or night.
    pub time_of_day: Option<String>,
    pub width: u32,
    pub height: u32,
    pub format: ImageKind,
    pub size: u64,
    pub exif: Option<ExifSummary>,
    pub exif_error: Option<String>,
    pub note: Option<String>,
    pub confounders: Vec<ConfounderEntry>,
    /// Lighting and pose numbers, camera settings and any override reason recorded by the
    /// capture station.
    pub analysis: Option<StationMeasurements>,
    pub imported_at: String,
    /// Set when this photo is found to be an earlier capture's pixels moved (see
    /// [`crate::analysis::copy_check`]): not a new photo.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_of: Option<CopyOf>,
}

/// What an import says of a photo found to be a copy.
pub fn copy_warning(copy: &CopyOf) -> String {
    format!(
        "this photo is {}: it is not a new photo of the patient (recorded with the capture)",
        copy.describe()
    )
}

/// An earlier capture of the same series whose pixels this capture is, rotated, scaled or
/// shifted (with a gain change and noise).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CopyOf {
    pub capture_id: String,
    pub rotation_deg: f64,
    pub scale: f64,
    /// Correlation of the two photos' fine detail once aligned (a new photo: about 0).
    pub detail_correlation: f64,
}

impl CopyOf {
    /// "the pixels of cap_…, rotated 4.8° and scaled 0.92"
    pub fn describe(&self) -> String {
        format!(
            "the pixels of {}, rotated {:.1}° and scaled {:.2} (fine-detail correlation {:.2}; a new photo has about 0)",
            self.capture_id, self.rotation_deg, self.scale, self.detail_correlation
        )
    }
}

/// A confounder as kept in the capture's record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct StoredConfounder {
    pub key: String,
    #[serde(default)]
    pub text: Option<String>,
}

/// What a capture row's body holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct CaptureBody {
    pub sha256: String,
    pub patient_id: String,
    pub consent_id: String,
    #[serde(default)]
    pub visit_id: Option<String>,
    pub area: Area,
    pub view: View,
    pub role: Role,
    #[serde(default)]
    pub baseline_id: Option<String>,
    pub captured_at: String,
    pub captured_at_source: String,
    pub width: u32,
    pub height: u32,
    pub format: String,
    pub size: u64,
    #[serde(default)]
    pub exif: Option<ExifSummary>,
    #[serde(default)]
    pub exif_error: Option<String>,
    #[serde(default)]
    pub note: Option<String>,
    #[serde(default)]
    pub confounders: Vec<StoredConfounder>,
    #[serde(default, deserialize_with = "super::measurements::lenient")]
    pub analysis: Option<StationMeasurements>,
    pub imported_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub copy_of: Option<CopyOf>,
}

/// When a photo was taken, and how we know.
#[derive(Clone, Debug, PartialEq)]
pub struct CapturedAt {
    pub value: String,
    pub source: &'static str,
}

/// A request to import a photo.
#[derive(Clone, Debug)]
pub struct ImportRequest<'a> {
    pub bytes: &'a [u8],
    /// The file name or label used in messages (never stored).
    pub subject: &'a str,
    pub patient_ref: &'a str,
    pub consent_id: &'a str,
    pub area: Area,
    pub view: View,
    pub visit_id: Option<&'a str>,
    pub baseline_id: Option<&'a str>,
    /// Start a new baseline even if the series already has one (a new course of treatment).
    pub new_baseline: bool,
    pub confounders: Vec<ConfounderInput>,
    pub note: Option<&'a str>,
    /// An explicit capture time (`YYYY-MM-DDTHH:MM:SS[±HH:MM]`).
    pub captured_at: Option<&'a str>,
    /// The file's modification time, used when neither an explicit time nor EXIF gives one.
    pub file_modified: Option<SystemTime>,
    /// Station measurements to keep with the capture.
    pub analysis: Option<StationMeasurements>,
    /// Leave the preview, thumbnail and fingerprint of a JPEG to later (`fingerprint
    /// backfill`, or the next review): the import is then the checks (the JPEG's structure
    /// walked to its end marker), the sealed original and its row. PNG and TIFF files are
    /// decoded at import whatever this says: their decode is their check.
    pub derive_later: bool,
}

impl<'a> ImportRequest<'a> {
    /// A request with only the required fields set.
    pub fn new(
        bytes: &'a [u8],
        subject: &'a str,
        patient_ref: &'a str,
        consent_id: &'a str,
        area: Area,
        view: View,
    ) -> Self {
        Self {
            bytes,
            subject,
            patient_ref,
            consent_id,
            area,
            view,
            visit_id: None,
            baseline_id: None,
            new_baseline: false,
            confounders: Vec::new(),
            note: None,
            captured_at: None,
            file_modified: None,
            analysis: None,
            derive_later: false,
        }
    }
}

/// The result of an import.
#[derive(Clone, Debug, Serialize)]
pub struct ImportOutcome {
    #[serde(flatten)]
    pub capture: Capture,
    /// True when these bytes were already stored for this patient (nothing new was written).
    pub existing: bool,
    pub warnings: Vec<String>,
    /// The preview and fingerprint are still to be made (the import deferred them).
    #[serde(default)]
    pub derived_pending: bool,
}

/// A capture summary for lists.
#[derive(Clone, Debug, Serialize)]
pub struct CaptureSummary {
    pub capture_id: String,
    pub sha256: String,
    pub patient_ref: String,
    pub consent_id: String,
    pub area: Area,
    pub view: View,
    pub role: Role,
    pub baseline_id: Option<String>,
    pub captured_at: String,
    pub width: u32,
    pub height: u32,
}

/// A recorded export.
#[derive(Clone, Debug, Serialize)]
pub struct ExportRecord {
    pub export_id: String,
    pub capture_id: String,
    pub sha256: String,
    pub purpose: Scope,
    pub path: PathBuf,
    pub inside_store: bool,
    pub bytes: u64,
}

/// Long side of the cached preview (the station's lists, the review's sources, fingerprints).
const THUMB_SIDE: u32 = fingerprint::SIDE;

impl Capture {
    /// The summary shown in lists.
    pub fn summary(&self) -> CaptureSummary {
        CaptureSummary {
            capture_id: self.id.clone(),
            sha256: self.sha256.clone(),
            patient_ref: self.patient_ref.clone(),
            consent_id: self.consent_id.clone(),
            area: self.area,
            view: self.view,
            role: self.role,
            baseline_id: self.baseline_id.clone(),
            captured_at: self.captured_at.clone(),
            width: self.width,
            height: self.height,
        }
    }
}

/// When the photo was taken: the time given, else the EXIF date, else the file's time, else
/// now. A given time must be a real, plausible one; an EXIF or file time that is not (a camera
/// clock never set, a file from 1970) is passed over, with a warning.
fn resolve_captured_at(
    req: &ImportRequest<'_>,
    exif: Option<&ExifSummary>,
) -> Result<(CapturedAt, Option<String>), RecordError> {
    let plausible = |t: &str| {
        crate::timefmt::parse_capture_time(t)
            .ok_or_else(|| "not a date and time".to_string())
            .and_then(|dt| crate::timefmt::check_not_future(dt.date()))
    };
    if let Some(given) = req.captured_at {
        if crate::timefmt::parse_capture_time(given).is_none() {
            return Err(RecordError::Invalid {
                what: format!("capture time {given:?}"),
                why: "expected YYYY-MM-DDTHH:MM:SS, optionally with ±HH:MM".into(),
            });
        }
        plausible(given).map_err(|why| RecordError::Invalid {
            what: format!("capture time {given:?}"),
            why,
        })?;
        return Ok((
            CapturedAt {
                value: given.to_string(),
                source: "given",
            },
            None,
        ));
    }
    let mut passed_over = None;
    if let Some(d) = exif.and_then(|e| e.capture_date.clone()) {
        match plausible(&d) {
            Ok(()) => {
                return Ok((
                    CapturedAt {
                        value: d,
                        source: "exif",
                    },
                    None,
                ));
            }
            Err(why) => {
                passed_over = Some(format!(
                    "the camera's date {d:?} was not used ({why}); check the camera's clock"
                ));
            }
        }
    }
    if let Some(m) = req.file_modified {
        let local: chrono::DateTime<chrono::Local> = m.into();
        let value = crate::timefmt::fmt_local(local);
        if plausible(&value).is_ok() {
            return Ok((
                CapturedAt {
                    value,
                    source: "file_mtime",
                },
                passed_over,
            ));
        }
    }
    Ok((
        CapturedAt {
            value: crate::timefmt::fmt_local(chrono::Local::now()),
            source: "import_time",
        },
        passed_over,
    ))
}

/// Work done on the decoded preview while the blob is written.
pub(crate) struct Derived {
    pub(crate) thumbnail_jpeg: Vec<u8>,
    pub(crate) fingerprint: Fingerprint,
    /// The thumbnail reduced for verifying published images against it.
    pub(crate) small: Option<image::GrayImage>,
}

/// The preview a capture of `img` (upright) stores: its thumbnail, as the JPEG kept.
fn thumbnail_of(img: &image::DynamicImage) -> (image::RgbImage, Vec<u8>) {
    let thumb = img.thumbnail(THUMB_SIDE, THUMB_SIDE).to_rgb8();
    let mut thumbnail_jpeg = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut thumbnail_jpeg, 88);
    let _ = thumb.write_with_encoder(enc);
    (thumb, thumbnail_jpeg)
}

impl Store {
    /// The preview pixels the photo `bytes` will have once imported: what [`Store::preview`]
    /// gives back for it, made by the import's own decode, reduction and JPEG, so a check
    /// made before the capture is stored sees what `pair` sees after.
    pub fn stored_preview_of(
        &self,
        bytes: &[u8],
        subject: &str,
    ) -> Result<image::RgbImage, RecordError> {
        let kind = ingest::sniff(bytes, subject)?;
        let limits = self.calibration().limits()?;
        let orientation = ingest::read_exif(bytes).0.and_then(|e| e.orientation);
        let img = ingest::decode_preview(bytes, kind, subject, &limits)?;
        let derived = derive(img, orientation);
        super::fingerprints::preview_of(subject, &derived.thumbnail_jpeg)
    }
}

fn derive(img: image::DynamicImage, orientation: Option<u32>) -> Derived {
    let img = ingest::apply_orientation(img, orientation);
    let (thumb, thumbnail_jpeg) = thumbnail_of(&img);
    let fingerprint = Fingerprint::of(&thumb);
    // Reduced from the JPEG as stored, as a capture's thumbnail is read back.
    let small = fingerprint::small_preview_of_jpeg(&thumbnail_jpeg).ok();
    Derived {
        thumbnail_jpeg,
        fingerprint,
        small,
    }
}

/// An import prepared by [`Store::prepare_import`].
pub enum Prepared {
    /// These bytes are stored already: the answer, nothing written.
    Done(Box<ImportOutcome>),
    /// Checked, blob written, derived data made: to record with [`Store::finish_import`].
    Ready(Box<PreparedImport>),
}

/// The work of an import done before its unit of work.
pub struct PreparedImport {
    id: String,
    checked: Checked,
    key_id: Option<String>,
    /// `None` when deferred.
    derived: Option<Derived>,
    small: Option<Vec<u8>>,
    put: Put,
    warnings: Vec<String>,
}

/// What the checks before the blob is written found.
struct Checked {
    patient_id: String,
    patient_ref: String,
    confounders: Vec<ConfounderInput>,
    kind: ImageKind,
    width: u32,
    height: u32,
    exif: Option<ExifSummary>,
    exif_error: Option<String>,
    hash: String,
    captured_at: CapturedAt,
    /// Why the camera's date was passed over, if it was.
    time_warning: Option<String>,
}

impl Store {
    /// The capture a row holds, checked (`patient_ref` is the patient's reference).
    pub(crate) fn capture_of(
        &self,
        row: CaptureRow,
        patient_ref: String,
    ) -> Result<Capture, StoreError> {
        let b: CaptureBody = self.seal().open("capture", &row.id, &row.body)?;
        let id = row.id.as_str();
        check_column("capture", id, "sha256", &row.sha256, &b.sha256)?;
        check_column("capture", id, "patient", &row.patient_id, &b.patient_id)?;
        check_column("capture", id, "consent", &row.consent_id, &b.consent_id)?;
        check_column("capture", id, "visit", &row.visit_id, &b.visit_id)?;
        check_column("capture", id, "area", &row.area, &b.area)?;
        check_column("capture", id, "view", &row.view, &b.view)?;
        check_column("capture", id, "role", &row.role, &b.role)?;
        check_column("capture", id, "baseline", &row.baseline_id, &b.baseline_id)?;
        check_column(
            "capture",
            id,
            "capture time",
            &row.captured_at,
            &b.captured_at,
        )?;
        let checklist = self.calibration().confounders().unwrap_or_default();
        let mut stored = b.confounders;
        stored.sort_by(|x, y| x.key.cmp(&y.key));
        let confounders = stored
            .into_iter()
            .map(|c| {
                let def = checklist.iter().find(|d| d.key == c.key);
                ConfounderEntry {
                    label: def
                        .map(|d| d.label.clone())
                        .unwrap_or_else(|| c.key.clone()),
                    disclose: def.is_none_or(|d| d.disclose),
                    key: c.key,
                    text: c.text,
                }
            })
            .collect();
        Ok(Capture {
            id: row.id,
            sha256: b.sha256,
            patient_id: b.patient_id,
            patient_ref,
            consent_id: b.consent_id,
            visit_id: b.visit_id,
            area: b.area,
            view: b.view,
            role: b.role,
            baseline_id: b.baseline_id,
            time_of_day: crate::timefmt::time_of_day(&b.captured_at).map(str::to_string),
            captured_at: b.captured_at,
            captured_at_source: b.captured_at_source,
            width: b.width,
            height: b.height,
            format: ImageKind::parse(&b.format).unwrap_or(ImageKind::Jpeg),
            size: b.size,
            exif: b.exif,
            exif_error: b.exif_error,
            note: b.note,
            confounders,
            analysis: b.analysis,
            imported_at: b.imported_at,
            copy_of: b.copy_of,
        })
    }

    /// The row that holds `c`, sealed.
    pub(crate) fn capture_row(&self, c: &Capture) -> Result<CaptureRow, StoreError> {
        let body = CaptureBody {
            sha256: c.sha256.clone(),
            patient_id: c.patient_id.clone(),
            consent_id: c.consent_id.clone(),
            visit_id: c.visit_id.clone(),
            area: c.area,
            view: c.view,
            role: c.role,
            baseline_id: c.baseline_id.clone(),
            captured_at: c.captured_at.clone(),
            captured_at_source: c.captured_at_source.clone(),
            width: c.width,
            height: c.height,
            format: c.format.as_str().to_string(),
            size: c.size,
            exif: c.exif.clone(),
            exif_error: c.exif_error.clone(),
            note: c.note.clone(),
            confounders: c
                .confounders
                .iter()
                .map(|e| StoredConfounder {
                    key: e.key.clone(),
                    text: e.text.clone(),
                })
                .collect(),
            analysis: c.analysis.clone(),
            imported_at: c.imported_at.clone(),
            copy_of: c.copy_of.clone(),
        };
        Ok(CaptureRow {
            id: c.id.clone(),
            sha256: c.sha256.clone(),
            patient_id: c.patient_id.clone(),
            consent_id: c.consent_id.clone(),
            visit_id: c.visit_id.clone(),
            area: c.area,
            view: c.view,
            role: c.role,
            baseline_id: c.baseline_id.clone(),
            captured_at: c.captured_at.clone(),
            imported_at: c.imported_at.clone(),
            body: self.seal().seal("capture", &c.id, &body)?,
        })
    }

    /// A capture read inside a unit of work (or any repositories), with its patient's reference.
    pub(crate) fn capture_in(&self, r: &mut dyn Repos, id: &str) -> Result<Capture, RecordError> {
        let row = r
            .capture(id)?
            .ok_or_else(|| RecordError::UnknownCapture(id.to_string()))?;
        let p = super::patient::patient_in(self, r, &row.patient_id)?;
        Ok(self.capture_of(row, p.reference)?)
    }

    /// Replace a capture's record inside a unit of work.
    pub(crate) fn update_capture_in(&self, tx: &mut Tx<'_>, c: &Capture) -> Result<(), StoreError> {
        let row = self.capture_row(c)?;
        tx.update_capture(&row)
    }

    /// Import a photo as a capture. Refuses (storing nothing) on an invalid image, unknown IDs,
    /// a consent that does not allow clinical use, an unknown confounder or a bad baseline.
    /// Importing the same bytes again for the same patient returns the existing capture.
    pub fn import_capture(&self, req: ImportRequest<'_>) -> Result<ImportOutcome, RecordError> {
        match self.prepare_import(&req)? {
            Prepared::Done(out) => Ok(*out),
            Prepared::Ready(p) => self.finish_import(&req, *p),
        }
    }

    /// An import's work before its unit of work: the checks, the sealed blob written, the
    /// preview, thumbnail and fingerprint made. Runs on any handle of the store (a worker's
    /// [`Store::reader`]); [`Store::finish_import`] records it.
    pub fn prepare_import(&self, req: &ImportRequest<'_>) -> Result<Prepared, RecordError> {
        let checked = self.check_import(req)?;
        if let Some(existing) = self.capture_by_sha(&checked.hash)? {
            return self
                .already_imported(req, &checked, existing)
                .map(|o| Prepared::Done(Box::new(o)));
        }
        let limits = self.calibration().limits()?;
        let mut warnings: Vec<String> = checked.time_warning.iter().cloned().collect();
        if let Some(e) = &checked.exif_error {
            warnings.push(format!(
                "{}: {e}; the image was imported without it",
                req.subject
            ));
        }
        // Make sure the consent's data key exists before any blob is sealed with it. A key
        // destroyed since the checks means a withdrawal purged the consent meanwhile.
        let key = match self.consent_key(req.consent_id.trim()) {
            Err(StoreError::Key(crate::store::crypto::KeyError::DataKeyDestroyed { .. })) => {
                let consent = self.consent(req.consent_id)?;
                consent.require(Scope::Clinical, crate::timefmt::today())?;
                return Err(RecordError::ConsentRefused {
                    consent: consent.id,
                    scope: Scope::Clinical,
                    why: "its photos were purged by a withdrawal".into(),
                });
            }
            other => other?,
        };
        let orientation = checked.exif.as_ref().and_then(|e| e.orientation);
        // Only a JPEG's derived data waits: its structure walk has checked every segment and
        // scan to the end marker. A PNG's or TIFF's decode is its check (chunks, pages,
        // frames), so those are derived now.
        let defer = req.derive_later && checked.kind == ImageKind::Jpeg;
        let (decoded, put) = std::thread::scope(|s| {
            let decoder = s.spawn(|| {
                if defer {
                    return Ok(None);
                }
                ingest::decode_preview(req.bytes, checked.kind, req.subject, &limits)
                    .map(|img| Some(derive(img, orientation)))
            });
            let put = self.put_sealed_blob(req.bytes, &checked.hash, key.as_ref());
            let decoded = decoder.join().unwrap_or_else(|_| {
                Err(ingest::IngestError::Corrupt {
                    subject: req.subject.to_string(),
                    format: checked.kind.label(),
                    message: "the decoder failed".into(),
                })
            });
            (decoded, put)
        });
        let put = put?;
        let derived = match decoded {
            Ok(d) => d,
            Err(e) => {
                self.drop_unclaimed_blob(&checked.hash, put);
                return Err(e.into());
            }
        };
        let key_id = key.as_ref().map(|(k, _)| crate::ids::hex(k));
        let id = new_id("cap")?;
        let small = derived
            .as_ref()
            .and_then(|d| d.small.as_ref())
            .map(|g| self.seal_small(&id, req.consent_id.trim(), g))
            .transpose()?;
        Ok(Prepared::Ready(Box::new(PreparedImport {
            id,
            checked,
            key_id,
            derived,
            small,
            put,
            warnings,
        })))
    }

    /// Record a prepared import in one unit of work (the consent and the series read again
    /// under the write lock), then cache its thumbnail.
    pub fn finish_import(
        &self,
        req: &ImportRequest<'_>,
        p: PreparedImport,
    ) -> Result<ImportOutcome, RecordError> {
        let PreparedImport {
            id,
            checked,
            key_id,
            derived,
            small,
            put,
            mut warnings,
        } = p;
        let committed = self.write(|tx| {
            self.commit_import(
                tx,
                &id,
                req,
                &checked,
                key_id.as_deref(),
                derived.as_ref().map(|d| &d.fingerprint),
                small.as_deref(),
            )
        });
        let (capture, existing) = match committed {
            Ok(c) => c,
            Err(e) => {
                self.drop_unclaimed_blob(&checked.hash, put);
                return Err(e);
            }
        };
        let mut capture = capture;
        if existing {
            warnings.push("these bytes were already imported; nothing new was stored".into());
        } else if let Some(d) = &derived {
            if let Err(e) =
                self.write_thumbnail(&checked.hash, &capture.consent_id, &d.thumbnail_jpeg)
            {
                warnings.push(format!(
                    "thumbnail not cached ({e}); it will be regenerated"
                ));
            }
            // The capture is stored: what fails after its commit is a warning, never the
            // import's failure (a server gone at this moment must not report a stored photo
            // as not stored).
            match self.copy_check_of(&capture, &d.thumbnail_jpeg) {
                Ok(Some(copy)) => {
                    warnings.push(copy_warning(&copy));
                    capture.copy_of = Some(copy);
                }
                Ok(None) => {}
                Err(e) => warnings.push(format!(
                    "not checked whether this photo is a copy of an earlier one ({e})"
                )),
            }
        }
        Ok(ImportOutcome {
            capture,
            derived_pending: derived.is_none() && !existing,
            existing,
            warnings,
        })
    }

    /// Everything about an import that can be checked before a byte is written.
    fn check_import(&self, req: &ImportRequest<'_>) -> Result<Checked, RecordError> {
        let patient = self.patient_by_ref(req.patient_ref)?;
        let consent = self.consent(req.consent_id)?;
        if consent.patient_id != patient.id {
            return Err(RecordError::ConsentOfOtherPatient {
                consent: consent.id,
                patient: patient.reference,
            });
        }
        consent.require(Scope::Clinical, crate::timefmt::today())?;
        if let Some(v) = req.visit_id {
            let visit = self.visit(v)?;
            if visit.patient_id != patient.id {
                return Err(RecordError::VisitOfOtherPatient {
                    visit: visit.id,
                    patient: patient.reference,
                });
            }
        }
        if let Some(n) = req.note {
            super::consent::check_note("--note", n)?;
        }
        let confounders =
            validate_confounders(&req.confounders, &self.calibration().confounders()?)?;
        for c in &confounders {
            if let Some(t) = &c.text {
                super::consent::check_text(&format!("confounder {}", c.key), t)?;
            }
        }
        let limits = self.calibration().limits()?;
        // Cheap checks on the header first; nothing is written for a bad file.
        let (kind, width, height) = ingest::check_header(req.bytes, req.subject, &limits)?;
        ingest::check_structure(req.bytes, kind, req.subject)?;
        let (exif, exif_error) = ingest::read_exif(req.bytes);
        let (captured_at, time_warning) = resolve_captured_at(req, exif.as_ref())?;
        if req.new_baseline && req.baseline_id.is_some() {
            return Err(RecordError::Invalid {
                what: "--new-baseline".into(),
                why: "cannot be combined with --baseline".into(),
            });
        }
        Ok(Checked {
            patient_id: patient.id,
            patient_ref: patient.reference,
            confounders,
            kind,
            width,
            height,
            exif,
            exif_error,
            hash: sha256_hex(req.bytes),
            captured_at,
            time_warning,
        })
    }

    /// The answer when these bytes are stored already.
    fn already_imported(
        &self,
        req: &ImportRequest<'_>,
        checked: &Checked,
        existing: Capture,
    ) -> Result<ImportOutcome, RecordError> {
        if existing.patient_id != checked.patient_id {
            return Err(RecordError::ContentOfOtherPatient {
                subject: req.subject.to_string(),
                capture: existing.id,
            });
        }
        Ok(ImportOutcome {
            capture: existing,
            existing: true,
            warnings: vec!["these bytes were already imported; nothing new was stored".into()],
            derived_pending: false,
        })
    }

    /// The import's unit of work: the consent and the series are read again under the write
    /// lock, so a withdrawal or another station's capture that committed meanwhile is seen.
    #[allow(clippy::too_many_arguments)]
    fn commit_import(
        &self,
        tx: &mut Tx<'_>,
        id: &str,
        req: &ImportRequest<'_>,
        checked: &Checked,
        key_id: Option<&str>,
        fp: Option<&Fingerprint>,
        small: Option<&[u8]>,
    ) -> Result<(Capture, bool), RecordError> {
        let consent = self.consent_in(tx, req.consent_id.trim())?;
        consent.require(Scope::Clinical, crate::timefmt::today())?;
        if let Some(row) = tx.capture_by_sha(&checked.hash)? {
            // Another station stored the same bytes meanwhile.
            let existing = self.capture_in(tx.repos(), &row.id)?;
            if existing.patient_id != checked.patient_id {
                return Err(RecordError::ContentOfOtherPatient {
                    subject: req.subject.to_string(),
                    capture: existing.id,
                });
            }
            return Ok((existing, true));
        }
        let (role, baseline_id) = resolve_role(
            self,
            tx.repos(),
            &checked.patient_id,
            req.area,
            req.view,
            req.baseline_id,
            req.new_baseline,
        )?;
        let now = crate::timefmt::now_utc();
        let checklist = self.calibration().confounders()?;
        let c = Capture {
            id: id.to_string(),
            sha256: checked.hash.clone(),
            patient_id: checked.patient_id.clone(),
            patient_ref: checked.patient_ref.clone(),
            consent_id: consent.id.clone(),
            visit_id: req.visit_id.map(|v| v.trim().to_string()),
            area: req.area,
            view: req.view,
            role,
            baseline_id: baseline_id.clone(),
            time_of_day: crate::timefmt::time_of_day(&checked.captured_at.value)
                .map(str::to_string),
            captured_at: checked.captured_at.value.clone(),
            captured_at_source: checked.captured_at.source.to_string(),
            width: checked.width,
            height: checked.height,
            format: checked.kind,
            size: req.bytes.len() as u64,
            exif: checked.exif.clone(),
            exif_error: checked.exif_error.clone(),
            note: req
                .note
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_string),
            confounders: checked
                .confounders
                .iter()
                .map(|i| super::confounders::entry(i, &checklist))
                .collect(),
            analysis: req.analysis.clone(),
            imported_at: now.clone(),
            copy_of: None,
        };
        tx.insert_blob(&BlobRow {
            sha256: c.sha256.clone(),
            size: req.bytes.len() as i64,
            kind: "capture".into(),
            consent_id: consent.id.clone(),
            key_id: key_id.map(str::to_string),
            created_at: now,
        })?;
        let row = self.capture_row(&c)?;
        tx.insert_capture(&row)?;
        if let Some(fp) = fp {
            self.put_fingerprint_in(tx, &c.id, fp, small)?;
        }
        tx.audit(
            "capture.import",
            json!({
                "capture": c.id, "sha256": c.sha256, "patient": c.patient_id,
                "consent": c.consent_id, "visit": c.visit_id, "baseline": baseline_id,
            }),
            json!({
                "area": c.area, "view": c.view, "role": role,
                "width": c.width, "height": c.height, "bytes": req.bytes.len(),
                "confounders": c.confounders.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
                "override_reason": c.analysis.as_ref().and_then(|a| a.override_reason()),
            }),
        )?;
        Ok((c, false))
    }

    /// Remove a blob this import wrote when no row came to name it.
    fn drop_unclaimed_blob(&self, hash: &str, put: Put) {
        if put == Put::Written && matches!(self.read(|r| r.blob_row(hash)), Ok(None)) {
            let _ = self.blobs().delete(&BlobKey::Blob(hash.to_string()));
        }
    }

    /// The latest baseline of a patient's area/view series (the one new follow-ups follow).
    pub fn series_baseline(
        &self,
        patient_id: &str,
        area: Area,
        view: View,
    ) -> Result<Option<String>, RecordError> {
        Ok(self.read(|r| r.series_baseline(patient_id, area, view))?)
    }

    /// The capture with ID `id`, with its confounders.
    pub fn capture(&self, id: &str) -> Result<Capture, RecordError> {
        self.read(|r| self.capture_in(r, id.trim()))
    }

    /// The capture stored with content hash `sha256`, if any.
    pub fn capture_by_sha(&self, sha256: &str) -> Result<Option<Capture>, RecordError> {
        self.read(|r| match r.capture_by_sha(sha256)? {
            None => Ok(None),
            Some(row) => self.capture_in(r, &row.id).map(Some),
        })
    }

    /// Captures, oldest first; of one patient when `patient_ref` is given.
    pub fn list_captures(&self, patient_ref: Option<&str>) -> Result<Vec<Capture>, RecordError> {
        let pid = patient_ref
            .map(|r| self.patient_by_ref(r).map(|p| p.id))
            .transpose()?;
        self.read(|r| {
            let rows = r.captures(pid.as_deref())?;
            let mut refs: std::collections::HashMap<String, String> = Default::default();
            let mut out = Vec::with_capacity(rows.len());
            for row in rows {
                let pref = match refs.get(&row.patient_id) {
                    Some(p) => p.clone(),
                    None => {
                        let p = super::patient::patient_in(self, r, &row.patient_id)?.reference;
                        refs.insert(row.patient_id.clone(), p.clone());
                        p
                    }
                };
                out.push(self.capture_of(row, pref)?);
            }
            Ok(out)
        })
    }

    /// The original bytes of a capture (decrypted and hash-checked).
    pub fn capture_bytes(&self, id: &str) -> Result<Vec<u8>, RecordError> {
        let c = self.capture(id)?;
        Ok(self.read_blob(&c.sha256)?)
    }

    /// The decoded original, upright (EXIF orientation applied): at full size, or reduced
    /// when a decode at full size would need more memory than the limits allow.
    pub fn capture_image(&self, id: &str) -> Result<image::DynamicImage, RecordError> {
        let c = self.capture(id)?;
        let bytes = self.read_blob(&c.sha256)?;
        let limits = self.calibration().limits()?;
        let req = crate::decode::Request {
            max_side: None,
            keep_16_bit: true,
        };
        let img = ingest::decode(&bytes, c.format, &c.id, &limits, req)?.image;
        Ok(ingest::apply_orientation(
            img,
            c.exif.as_ref().and_then(|e| e.orientation),
        ))
    }

    /// Export a capture's original bytes to `out` for `purpose`, which its consent must allow
    /// now. Recorded, so a later withdrawal can find the copy.
    pub fn export_capture(
        &self,
        id: &str,
        out: &Path,
        purpose: Scope,
        overwrite: bool,
    ) -> Result<ExportRecord, RecordError> {
        let cap = self.capture(id)?;
        let consent = self.consent(&cap.consent_id)?;
        consent.require(purpose, crate::timefmt::today())?;
        if out.exists() && !overwrite {
            return Err(RecordError::Invalid {
                what: out.display().to_string(),
                why: "the file exists (pass --force to overwrite)".into(),
            });
        }
        let bytes = self.read_blob(&cap.sha256)?;
        write_file_atomic(out, &bytes)?;
        let row = self.export_row(&cap, purpose.as_str(), out)?;
        let (export_id, inside_store) = (row.id.clone(), row.inside_store);
        self.write(|tx| {
            // The consent is read again under the lock: a withdrawal that committed meanwhile
            // refuses the export (the file just written is removed).
            self.consent_in(tx, &cap.consent_id)?
                .require(purpose, crate::timefmt::today())?;
            tx.insert_export(&row)?;
            tx.audit(
                "capture.export",
                json!({ "capture": cap.id, "sha256": cap.sha256, "consent": cap.consent_id, "export": export_id }),
                json!({ "purpose": purpose, "inside_store": inside_store, "bytes": bytes.len() }),
            )?;
            Ok::<_, RecordError>(())
        })
        .inspect_err(|_| {
            let _ = std::fs::remove_file(out);
        })?;
        Ok(ExportRecord {
            export_id,
            capture_id: cap.id,
            sha256: cap.sha256,
            purpose,
            path: std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf()),
            inside_store,
            bytes: bytes.len() as u64,
        })
    }

    /// Record a copy of a capture written in another format (a DICOM file, say) at `out` for
    /// `purpose`, so a later withdrawal lists it, and audit it. The caller wrote the file.
    pub fn record_derived_export(
        &self,
        capture_id: &str,
        out: &Path,
        purpose: Scope,
        format: &str,
        bytes: u64,
    ) -> Result<String, RecordError> {
        let cap = self.capture(capture_id)?;
        let row = self.export_row(&cap, purpose.as_str(), out)?;
        let inside = row.inside_store;
        self.write(|tx| {
            tx.insert_export(&row)?;
            tx.audit(
                "capture.export",
                json!({ "capture": cap.id, "sha256": cap.sha256, "consent": cap.consent_id, "export": row.id }),
                json!({ "purpose": purpose, "inside_store": inside, "bytes": bytes, "format": format }),
            )?;
            Ok::<_, StoreError>(())
        })?;
        Ok(row.id)
    }

    /// The record of a copy of `cap` written at `out` for `purpose` by this station, now.
    pub(crate) fn export_row(
        &self,
        cap: &Capture,
        purpose: &str,
        out: &Path,
    ) -> Result<ExportRow, RecordError> {
        let abs = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
        let (recorded, inside_store) = self.export_location(&abs);
        Ok(ExportRow {
            id: new_id("exp")?,
            capture_id: cap.id.clone(),
            sha256: cap.sha256.clone(),
            purpose: purpose.to_string(),
            path: recorded,
            inside_store,
            station: self.station().to_string(),
            at: crate::timefmt::now_utc(),
            actor: self.actor().to_string(),
            purge_job: None,
        })
    }

    /// How an export's location is recorded: inside the data directory, relative to it (so a
    /// moved or restored store still finds, and purges, its own copy); elsewhere, absolute.
    /// Returns (recorded path, inside the store).
    pub fn export_location(&self, abs: &Path) -> (String, bool) {
        match relative_to_root(abs, self.root()) {
            Some(rel) => (rel.display().to_string(), true),
            None => (abs.display().to_string(), false),
        }
    }

    fn write_thumbnail(
        &self,
        sha256: &str,
        consent_id: &str,
        jpeg: &[u8],
    ) -> Result<(), RecordError> {
        if jpeg.is_empty() {
            return Ok(());
        }
        let sealed = self.seal_cache(jpeg, &format!("thumb:{sha256}"), consent_id)?;
        self.blobs()
            .replace(&BlobKey::Thumb(sha256.to_string()), &sealed)?;
        Ok(())
    }

    /// A small upright JPEG of the capture (cached, sealed like the original).
    pub fn thumbnail(&self, id: &str) -> Result<Vec<u8>, RecordError> {
        let cap = self.capture(id)?;
        if let Ok(file) = self.blobs().get(&BlobKey::Thumb(cap.sha256.clone()))
            && let Ok(jpeg) = self.open_cache(file, &format!("thumb:{}", cap.sha256))
        {
            return Ok(jpeg);
        }
        Ok(self.derive_stored(&cap)?.thumbnail_jpeg)
    }

    /// Whether a capture whose thumbnail is `jpeg` is a copy of an earlier one; recorded when
    /// it is.
    pub(crate) fn copy_check_of(
        &self,
        cap: &Capture,
        jpeg: &[u8],
    ) -> Result<Option<CopyOf>, RecordError> {
        let Ok(preview) = image::load_from_memory(jpeg).map(|i| i.to_rgb8()) else {
            return Ok(None);
        };
        let copy = self.find_copy_of(cap, &preview)?;
        if let Some(c) = &copy {
            self.record_copy_of(&cap.id, c)?;
        }
        Ok(copy)
    }

    /// What an import makes of a capture (thumbnail, fingerprint, reduced preview), made from
    /// the stored original as the import would have (decoded reduced, then turned upright);
    /// the thumbnail is cached.
    pub(crate) fn derive_stored(&self, cap: &Capture) -> Result<Derived, RecordError> {
        let bytes = self.read_blob(&cap.sha256)?;
        let limits = self.calibration().limits()?;
        let img = ingest::decode_preview(&bytes, cap.format, &cap.id, &limits)?;
        let derived = derive(img, cap.exif.as_ref().and_then(|e| e.orientation));
        self.write_thumbnail(&cap.sha256, &cap.consent_id, &derived.thumbnail_jpeg)?;
        Ok(derived)
    }
}

/// Decide baseline or follow-up, and which baseline is followed, from the rows as they are in
/// the unit of work.
fn resolve_role(
    store: &Store,
    r: &mut dyn Repos,
    patient_id: &str,
    area: Area,
    view: View,
    baseline: Option<&str>,
    new_baseline: bool,
) -> Result<(Role, Option<String>), RecordError> {
    let requested = match baseline.filter(|_| !new_baseline) {
        Some(b) => Some(store.capture_in(r, b.trim())?),
        None => None,
    };
    let latest = if new_baseline || requested.is_some() {
        None
    } else {
        r.series_baseline(patient_id, area, view)?
    };
    choose_role(
        &SeriesKey {
            patient_id,
            area,
            view,
        },
        requested.as_ref(),
        latest,
        new_baseline,
    )
}

/// A patient's area/view series.
pub struct SeriesKey<'a> {
    pub patient_id: &'a str,
    pub area: Area,
    pub view: View,
}

/// The role of a new capture of `series`: a new baseline when asked for (a new course of
/// treatment); a follow-up of the `requested` baseline, which must be a baseline of the same
/// series; else a follow-up of the series' `latest` baseline; else the series' first baseline.
pub fn choose_role(
    series: &SeriesKey<'_>,
    requested: Option<&Capture>,
    latest: Option<String>,
    new_baseline: bool,
) -> Result<(Role, Option<String>), RecordError> {
    if new_baseline {
        return Ok((Role::Baseline, None));
    }
    if let Some(base) = requested {
        let bad = |why: String| RecordError::BadBaseline {
            baseline: base.id.clone(),
            why,
        };
        if base.patient_id != series.patient_id {
            return Err(bad("it belongs to another patient".into()));
        }
        if base.area != series.area || base.view != series.view {
            return Err(bad(format!(
                "it is {}/{}, this capture is {}/{}",
                base.area, base.view, series.area, series.view
            )));
        }
        if base.role != Role::Baseline {
            return Err(bad(format!(
                "it is a follow-up{}",
                base.baseline_id
                    .as_ref()
                    .map(|b| format!(" of baseline {b}"))
                    .unwrap_or_default()
            )));
        }
        return Ok((Role::FollowUp, Some(base.id.clone())));
    }
    Ok(match latest {
        Some(b) => (Role::FollowUp, Some(b)),
        None => (Role::Baseline, None),
    })
}

/// `x` made absolute, symlinks resolved when it exists.
fn canonical(x: &Path) -> PathBuf {
    std::fs::canonicalize(x)
        .or_else(|_| std::path::absolute(x))
        .unwrap_or_else(|_| x.to_path_buf())
}

/// A file's path with its folder made canonical (the file itself need not exist).
fn canonical_file(p: &Path) -> PathBuf {
    match (p.parent(), p.file_name()) {
        (Some(parent), Some(name)) => canonical(parent).join(name),
        _ => canonical(p),
    }
}

/// `p` relative to `root`, when it is inside it.
fn relative_to_root(p: &Path, root: &Path) -> Option<PathBuf> {
    canonical_file(p)
        .strip_prefix(canonical(root))
        .ok()
        .map(Path::to_path_buf)
}

/// True when `p` is `root` or below it (both made absolute; symlinks resolved when possible).
pub fn path_is_inside(p: &Path, root: &Path) -> bool {
    canonical_file(p).starts_with(canonical(root))
}

/// Write a file through a temp file in the same folder and a rename, readable by its owner
/// only (exports, reports and certificates hold patient photographs and IDs).
pub fn write_file_atomic(out: &Path, bytes: &[u8]) -> Result<(), RecordError> {
    use std::io::Write;
    let werr = |source| RecordError::WriteFile {
        path: out.to_path_buf(),
        source,
    };
    let dir = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "export".into());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        // Patient photographs: readable by their owner only, whatever the umask.
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut f = o.open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, out)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(werr(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(id: &str, patient: &str, view: View, role: Role) -> Capture {
        Capture {
            id: id.into(),
            sha256: String::new(),
            patient_id: patient.into(),
            patient_ref: String::new(),
            consent_id: String::new(),
            visit_id: None,
            area: Area::Face,
            view,
            role,
            baseline_id: (role == Role::FollowUp).then(|| "cap_b".into()),
            captured_at: String::new(),
            captured_at_source: String::new(),
            time_of_day: None,
            width: 1,
            height: 1,
            format: ImageKind::Jpeg,
            size: 1,
            exif: None,
            exif_error: None,
            note: None,
            confounders: Vec::new(),
            analysis: None,
            imported_at: String::new(),
            copy_of: None,
        }
    }

    #[test]
    fn a_series_has_one_baseline_until_a_new_course_starts() {
        let series = SeriesKey {
            patient_id: "pat_1",
            area: Area::Face,
            view: View::Frontal,
        };
        // The first capture of a series is its baseline; later ones follow the latest.
        assert_eq!(
            choose_role(&series, None, None, false).unwrap(),
            (Role::Baseline, None)
        );
        assert_eq!(
            choose_role(&series, None, Some("cap_b".into()), false).unwrap(),
            (Role::FollowUp, Some("cap_b".into()))
        );
        // A new course starts a baseline whatever came before.
        assert_eq!(
            choose_role(&series, None, Some("cap_b".into()), true).unwrap(),
            (Role::Baseline, None)
        );
        // A chosen baseline must be a baseline of this patient's same area and view.
        let ok = capture("cap_x", "pat_1", View::Frontal, Role::Baseline);
        assert_eq!(
            choose_role(&series, Some(&ok), Some("cap_b".into()), false).unwrap(),
            (Role::FollowUp, Some("cap_x".into()))
        );
        for (bad, why) in [
            (
                capture("cap_y", "pat_2", View::Frontal, Role::Baseline),
                "another patient",
            ),
            (
                capture("cap_y", "pat_1", View::ObliqueLeft45, Role::Baseline),
                "face/oblique_left_45",
            ),
            (
                capture("cap_y", "pat_1", View::Frontal, Role::FollowUp),
                "follow-up of baseline cap_b",
            ),
        ] {
            let e = choose_role(&series, Some(&bad), None, false)
                .unwrap_err()
                .to_string();
            assert!(e.contains("cap_y") && e.contains(why), "{e}");
        }
    }
}
