//! Captures: immutable photos addressed by SHA-256, linked to patient, consent, visit and the
//! baseline they follow, with their EXIF summary, confounders and (for station captures) the
//! lighting and pose numbers at capture time.
//!
//! Import order, so a crash never leaves a row without its blob:
//! validate the header → hash → (decode ‖ seal + write + fsync the blob) → one transaction with
//! the rows and the audit entry.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::{Value, json};

use super::confounders::{ConfounderEntry, ConfounderInput, validate as validate_confounders};
use super::{Area, RecordError, Role, Scope, View};
use crate::ids::{new_id, sha256_hex};
use crate::ingest::{self, ExifSummary, ImageKind};
use crate::store::Store;
use crate::store::blobs::Put;

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
    pub analysis: Option<Value>,
    pub imported_at: String,
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
    pub analysis: Option<Value>,
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
const THUMB_SIDE: u32 = crate::review::fingerprint::SIDE;

impl Capture {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        let area: String = r.get("area")?;
        let view: String = r.get("view")?;
        let role: String = r.get("role")?;
        let format: String = r.get("format")?;
        let exif: Option<String> = r.get("exif")?;
        let analysis: Option<String> = r.get("analysis")?;
        let captured_at: String = r.get("captured_at")?;
        Ok(Capture {
            id: r.get("id")?,
            sha256: r.get("sha256")?,
            patient_id: r.get("patient_id")?,
            patient_ref: r.get("patient_ref")?,
            consent_id: r.get("consent_id")?,
            visit_id: r.get("visit_id")?,
            area: area.parse().unwrap_or(Area::Body),
            view: view.parse().unwrap_or(View::Other),
            role: role.parse().unwrap_or(Role::FollowUp),
            baseline_id: r.get("baseline_id")?,
            time_of_day: crate::timefmt::time_of_day(&captured_at).map(str::to_string),
            captured_at,
            captured_at_source: r.get("captured_at_source")?,
            width: r.get("width")?,
            height: r.get("height")?,
            format: ImageKind::parse(&format).unwrap_or(ImageKind::Jpeg),
            size: r.get::<_, i64>("size")?.try_into().unwrap_or(0),
            exif: exif.and_then(|e| serde_json::from_str(&e).ok()),
            exif_error: r.get("exif_error")?,
            note: r.get("note")?,
            confounders: Vec::new(),
            analysis: analysis.and_then(|a| serde_json::from_str(&a).ok()),
            imported_at: r.get("imported_at")?,
        })
    }

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

const CAPTURE_SELECT: &str = "SELECT capture.*, patient.ref AS patient_ref FROM capture JOIN patient ON patient.id = capture.patient_id";

fn resolve_captured_at(
    req: &ImportRequest<'_>,
    exif: Option<&ExifSummary>,
) -> Result<CapturedAt, RecordError> {
    if let Some(given) = req.captured_at {
        if crate::timefmt::parse_capture_time(given).is_none() {
            return Err(RecordError::Invalid {
                what: format!("capture time {given:?}"),
                why: "expected YYYY-MM-DDTHH:MM:SS, optionally with ±HH:MM".into(),
            });
        }
        return Ok(CapturedAt {
            value: given.to_string(),
            source: "given",
        });
    }
    if let Some(d) = exif.and_then(|e| e.capture_date.clone()) {
        return Ok(CapturedAt {
            value: d,
            source: "exif",
        });
    }
    if let Some(m) = req.file_modified {
        let local: chrono::DateTime<chrono::Local> = m.into();
        return Ok(CapturedAt {
            value: crate::timefmt::fmt_local(local),
            source: "file_mtime",
        });
    }
    Ok(CapturedAt {
        value: crate::timefmt::fmt_local(chrono::Local::now()),
        source: "import_time",
    })
}

/// Work done on the decoded preview while the blob is written.
struct Derived {
    thumbnail_jpeg: Vec<u8>,
    fingerprint: crate::review::fingerprint::Fingerprint,
    /// The thumbnail reduced for verifying published images against it.
    small: Option<image::GrayImage>,
}

fn derive(img: image::DynamicImage, orientation: Option<u32>) -> Derived {
    let img = ingest::apply_orientation(img, orientation);
    let thumb = img.thumbnail(THUMB_SIDE, THUMB_SIDE).to_rgb8();
    let mut thumbnail_jpeg = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut thumbnail_jpeg, 88);
    let _ = thumb.write_with_encoder(enc);
    let fingerprint = crate::review::fingerprint::Fingerprint::of(&thumb);
    // Reduced from the JPEG as stored, as a capture's thumbnail is read back.
    let small = crate::review::fingerprint::small_preview_of_jpeg(&thumbnail_jpeg).ok();
    Derived {
        thumbnail_jpeg,
        fingerprint,
        small,
    }
}

impl Store {
    /// Import a photo as a capture. Refuses (storing nothing) on an invalid image, unknown IDs,
    /// a consent that does not allow clinical use, an unknown confounder or a bad baseline.
    /// Importing the same bytes again for the same patient returns the existing capture.
    pub fn import_capture(&self, req: ImportRequest<'_>) -> Result<ImportOutcome, RecordError> {
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
        let confounders =
            validate_confounders(&req.confounders, &self.calibration().confounders()?)?;
        let limits = self.calibration().limits()?;

        // Cheap checks on the header first; nothing is written for a bad file.
        let (kind, width, height) = ingest::check_header(req.bytes, req.subject, &limits)?;
        ingest::check_structure(req.bytes, kind, req.subject)?;
        let (exif, exif_error) = ingest::read_exif(req.bytes);
        let hash = sha256_hex(req.bytes);

        if let Some(existing) = self.capture_by_sha(&hash)? {
            if existing.patient_id != patient.id {
                return Err(RecordError::ContentOfOtherPatient {
                    subject: req.subject.to_string(),
                    capture: existing.id,
                });
            }
            return Ok(ImportOutcome {
                capture: existing,
                existing: true,
                warnings: vec!["these bytes were already imported; nothing new was stored".into()],
            });
        }
        let (role, baseline_id) = self.resolve_role(
            &patient.id,
            req.area,
            req.view,
            req.baseline_id,
            req.new_baseline,
        )?;
        let captured_at = resolve_captured_at(&req, exif.as_ref())?;
        let mut warnings = Vec::new();
        if let Some(e) = &exif_error {
            warnings.push(format!(
                "{}: {e}; the image was imported without it",
                req.subject
            ));
        }

        // Make sure the consent's data key exists before any blob is sealed with it.
        let key = self.consent_key(&consent.id)?;
        let orientation = exif.as_ref().and_then(|e| e.orientation);
        let (decoded, put) = std::thread::scope(|s| {
            let decoder = s.spawn(|| {
                ingest::decode_preview(req.bytes, kind, req.subject, &limits)
                    .map(|img| derive(img, orientation))
            });
            let put = match &key {
                None => self
                    .blobs()
                    .put(req.bytes, &hash, crate::store::blobs::Sealing::Plain),
                Some((id, k)) => self.blobs().put(
                    req.bytes,
                    &hash,
                    crate::store::blobs::Sealing::Key { id, key: k },
                ),
            };
            let decoded = decoder.join().unwrap_or_else(|_| {
                Err(ingest::IngestError::Corrupt {
                    subject: req.subject.to_string(),
                    format: kind.label(),
                    message: "the decoder failed".into(),
                })
            });
            (decoded, put)
        });
        let put = put?;
        let derived = match decoded {
            Ok(d) => d,
            Err(e) => {
                if put == Put::Written && !self.blob_row_exists(&hash)? {
                    let _ = self.blobs().remove(&hash);
                }
                return Err(e.into());
            }
        };

        let id = new_id("cap")?;
        let now = crate::timefmt::now_utc();
        let key_id = key.as_ref().map(|(k, _)| crate::ids::hex(k));
        let tx = self.write_tx()?;
        tx.execute(
            "INSERT INTO blob (sha256, size, kind, consent_id, key_id, created_at)
             VALUES (?1, ?2, 'capture', ?3, ?4, ?5)
             ON CONFLICT(sha256) DO NOTHING",
            params![hash, req.bytes.len() as i64, consent.id, key_id, now],
        )?;
        tx.execute(
            "INSERT INTO capture (id, sha256, patient_id, consent_id, visit_id, area, view, role,
                baseline_id, captured_at, captured_at_source, width, height, format, size, exif,
                exif_error, note, analysis, imported_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
            params![
                id,
                hash,
                patient.id,
                consent.id,
                req.visit_id.map(str::trim),
                req.area.as_str(),
                req.view.as_str(),
                role.as_str(),
                baseline_id,
                captured_at.value,
                captured_at.source,
                width,
                height,
                kind.as_str(),
                req.bytes.len() as i64,
                exif.as_ref().and_then(|e| serde_json::to_string(e).ok()),
                exif_error,
                req.note.map(str::trim).filter(|n| !n.is_empty()),
                req.analysis.as_ref().map(Value::to_string),
                now,
            ],
        )?;
        for c in &confounders {
            tx.execute(
                "INSERT INTO capture_confounder (capture_id, key, text) VALUES (?1, ?2, ?3)",
                params![id, c.key, c.text],
            )?;
        }
        self.put_fingerprint_in(
            &tx,
            &id,
            &consent.id,
            &derived.fingerprint,
            derived.small.as_ref(),
        )?;
        self.audit(
            &tx,
            "capture.import",
            json!({
                "capture": id, "sha256": hash, "patient": patient.id,
                "consent": consent.id, "visit": req.visit_id, "baseline": baseline_id,
            }),
            json!({
                "area": req.area, "view": req.view, "role": role,
                "width": width, "height": height, "bytes": req.bytes.len(),
                "confounders": confounders.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(),
                "override_reason": req.analysis.as_ref().and_then(|a| a.get("override_reason")).cloned(),
            }),
        )?;
        tx.commit()?;

        if let Err(e) = self.write_thumbnail(&hash, &consent.id, &derived.thumbnail_jpeg) {
            warnings.push(format!(
                "thumbnail not cached ({e}); it will be regenerated"
            ));
        }
        Ok(ImportOutcome {
            capture: self.capture(&id)?,
            existing: false,
            warnings,
        })
    }

    fn blob_row_exists(&self, hash: &str) -> Result<bool, RecordError> {
        Ok(self
            .conn()
            .query_row("SELECT 1 FROM blob WHERE sha256 = ?1", [hash], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Decide baseline or follow-up, and which baseline is followed.
    fn resolve_role(
        &self,
        patient_id: &str,
        area: Area,
        view: View,
        baseline: Option<&str>,
        new_baseline: bool,
    ) -> Result<(Role, Option<String>), RecordError> {
        if new_baseline {
            if baseline.is_some() {
                return Err(RecordError::Invalid {
                    what: "--new-baseline".into(),
                    why: "cannot be combined with --baseline".into(),
                });
            }
            return Ok((Role::Baseline, None));
        }
        if let Some(b) = baseline {
            let base = self.capture(b)?;
            let bad = |why: String| RecordError::BadBaseline {
                baseline: base.id.clone(),
                why,
            };
            if base.patient_id != patient_id {
                return Err(bad("it belongs to another patient".into()));
            }
            if base.area != area || base.view != view {
                return Err(bad(format!(
                    "it is {}/{}, this capture is {}/{}",
                    base.area, base.view, area, view
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
            return Ok((Role::FollowUp, Some(base.id)));
        }
        Ok(match self.series_baseline(patient_id, area, view)? {
            Some(b) => (Role::FollowUp, Some(b)),
            None => (Role::Baseline, None),
        })
    }

    /// The latest baseline of a patient's area/view series (the one new follow-ups follow).
    pub fn series_baseline(
        &self,
        patient_id: &str,
        area: Area,
        view: View,
    ) -> Result<Option<String>, RecordError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT id FROM capture WHERE patient_id = ?1 AND area = ?2 AND view = ?3 AND role = 'baseline'
                 ORDER BY imported_at DESC, captured_at DESC LIMIT 1",
                params![patient_id, area.as_str(), view.as_str()],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The capture with ID `id`, with its confounders.
    pub fn capture(&self, id: &str) -> Result<Capture, RecordError> {
        let mut c = self
            .conn()
            .query_row(
                &format!("{CAPTURE_SELECT} WHERE capture.id = ?1"),
                [id.trim()],
                Capture::from_row,
            )
            .optional()?
            .ok_or_else(|| RecordError::UnknownCapture(id.trim().to_string()))?;
        c.confounders = self.confounders_of(&c.id)?;
        Ok(c)
    }

    /// The capture stored with content hash `sha256`, if any.
    pub fn capture_by_sha(&self, sha256: &str) -> Result<Option<Capture>, RecordError> {
        let id: Option<String> = self
            .conn()
            .query_row("SELECT id FROM capture WHERE sha256 = ?1", [sha256], |r| {
                r.get(0)
            })
            .optional()?;
        id.map(|i| self.capture(&i)).transpose()
    }

    /// Captures, oldest first; of one patient when `patient_ref` is given.
    pub fn list_captures(&self, patient_ref: Option<&str>) -> Result<Vec<Capture>, RecordError> {
        let (sql, arg) = match patient_ref {
            Some(r) => {
                let p = self.patient_by_ref(r)?;
                (
                    format!(
                        "{CAPTURE_SELECT} WHERE capture.patient_id = ?1 ORDER BY capture.captured_at, capture.imported_at"
                    ),
                    Some(p.id),
                )
            }
            None => (
                format!("{CAPTURE_SELECT} ORDER BY capture.captured_at, capture.imported_at"),
                None,
            ),
        };
        let mut stmt = self.conn().prepare(&sql)?;
        let rows = match &arg {
            Some(a) => stmt
                .query_map([a], Capture::from_row)?
                .collect::<Result<Vec<_>, _>>()?,
            None => stmt
                .query_map([], Capture::from_row)?
                .collect::<Result<Vec<_>, _>>()?,
        };
        let mut out = Vec::with_capacity(rows.len());
        for mut c in rows {
            c.confounders = self.confounders_of(&c.id)?;
            out.push(c);
        }
        Ok(out)
    }

    /// The original bytes of a capture (decrypted and hash-checked).
    pub fn capture_bytes(&self, id: &str) -> Result<Vec<u8>, RecordError> {
        let c = self.capture(id)?;
        Ok(self.read_blob(&c.sha256)?)
    }

    /// The decoded original, upright (EXIF orientation applied).
    pub fn capture_image(&self, id: &str) -> Result<image::DynamicImage, RecordError> {
        let c = self.capture(id)?;
        let bytes = self.read_blob(&c.sha256)?;
        let limits = self.calibration().limits()?;
        let img = ingest::decode(&bytes, c.format, &c.id, &limits)?;
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
        let abs = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
        let (recorded, inside_store) = self.export_location(&abs);
        let export_id = new_id("exp")?;
        let tx = self.write_tx()?;
        tx.execute(
            "INSERT INTO export (id, capture_id, sha256, purpose, path, inside_store, at, actor)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                export_id,
                cap.id,
                cap.sha256,
                purpose.as_str(),
                recorded,
                inside_store,
                crate::timefmt::now_utc(),
                self.actor()
            ],
        )?;
        self.audit(
            &tx,
            "capture.export",
            json!({ "capture": cap.id, "sha256": cap.sha256, "consent": cap.consent_id, "export": export_id }),
            json!({ "purpose": purpose, "inside_store": inside_store, "bytes": bytes.len() }),
        )?;
        tx.commit()?;
        Ok(ExportRecord {
            export_id,
            capture_id: cap.id,
            sha256: cap.sha256,
            purpose,
            path: abs,
            inside_store,
            bytes: bytes.len() as u64,
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

    fn thumb_path(&self, sha256: &str) -> PathBuf {
        self.root()
            .join("cache")
            .join("thumbs")
            .join(format!("{sha256}.thumb"))
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
        let path = self.thumb_path(sha256);
        self.blobs().write_atomic(&path, &sealed)?;
        Ok(())
    }

    /// A small upright JPEG of the capture (cached, sealed like the original).
    pub fn thumbnail(&self, id: &str) -> Result<Vec<u8>, RecordError> {
        let cap = self.capture(id)?;
        let path = self.thumb_path(&cap.sha256);
        if let Ok(file) = std::fs::read(&path)
            && let Ok(jpeg) = self.open_cache(file, &format!("thumb:{}", cap.sha256))
        {
            return Ok(jpeg);
        }
        let img = self.capture_image(&cap.id)?;
        let derived = derive(img, None);
        self.write_thumbnail(&cap.sha256, &cap.consent_id, &derived.thumbnail_jpeg)?;
        Ok(derived.thumbnail_jpeg)
    }
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

/// Write a file through a temp file in the same folder and a rename.
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
        let mut f = std::fs::File::create(&tmp)?;
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
