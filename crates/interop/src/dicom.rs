//! `sameframe export dicom`: one DICOM file per capture, VL Photographic Image Storage.
//!
//! A baseline JPEG original is encapsulated unchanged under JPEG Baseline, so the pixel data's
//! single fragment is the stored original and its SHA-256 is the capture's address; other
//! originals (PNG, TIFF, WebP, progressive JPEG) are written as uncompressed pixels, losslessly.
//! UIDs are derived from the store's ID and the record's ID (OID 2.25), so the same capture
//! always exports the same UIDs; one study per visit, one series per visit and protocol
//! series. The patient is named by the clinic's reference (the name only when asked for); the
//! view and area codes are data (`[dicom]` in `calibration/protocols.toml`); the confounders,
//! lighting and pose numbers go in the Acquisition Context Sequence.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use dicom_core::value::{DataSetSequence, PixelFragmentSequence};
use dicom_core::{DataElement, Length, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use sameframe_core::calibration::{Calibration, CalibrationError};
use sameframe_core::ingest::ImageKind;
use sameframe_core::records::{Capture, RecordError, Scope};
use sameframe_core::store::Store;

/// VL Photographic Image Storage.
pub const VL_PHOTOGRAPHIC_IMAGE: &str = "1.2.840.10008.5.1.4.1.1.77.1.4";
/// JPEG Baseline (Process 1).
pub const JPEG_BASELINE: &str = "1.2.840.10008.1.2.4.50";
/// Explicit VR Little Endian.
pub const EXPLICIT_VR_LE: &str = "1.2.840.10008.1.2.1";
/// This implementation's class UID (under 2.25, derived from its name).
const IMPLEMENTATION_NAME: &str = "SAMEFRAME_0_1";

/// Export failures; each names its capture or file.
#[derive(Debug, thiserror::Error)]
pub enum DicomError {
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Calibration(#[from] CalibrationError),
    #[error("{path} already exists: nothing was written (use --force to replace it)")]
    Exists { path: PathBuf },
    #[error("capture {capture}: could not build its DICOM file: {why}")]
    Build { capture: String, why: String },
}

/// What was written for one capture.
#[derive(Clone, Debug, Serialize)]
pub struct DicomExport {
    pub capture_id: String,
    pub path: PathBuf,
    pub sop_instance_uid: String,
    pub study_instance_uid: String,
    pub series_instance_uid: String,
    pub transfer_syntax: String,
    /// True when the original's bytes are the pixel data's only fragment.
    pub encapsulated: bool,
    /// SHA-256 of the pixel data (the fragment, or the uncompressed pixels).
    pub pixel_sha256: String,
}

/// How to export.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// Put the patient's recorded name in Patient's Name (else it is empty).
    pub with_name: bool,
    /// Replace files of the same name.
    pub force: bool,
    /// The use the copies are for: each capture's consent must allow it today.
    pub purpose: Scope,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            with_name: false,
            force: false,
            purpose: Scope::Clinical,
        }
    }
}

/// A code from the calibration data.
#[derive(Clone, Debug, Deserialize)]
struct Code {
    code: String,
    meaning: String,
}

#[derive(Debug, Default, Deserialize)]
struct Codes {
    #[serde(default)]
    view: BTreeMap<String, Code>,
    #[serde(default)]
    area: BTreeMap<String, Code>,
}

#[derive(Deserialize)]
struct CodesFile {
    #[serde(default)]
    dicom: Codes,
}

fn codes(cal: &Calibration) -> Result<Codes, CalibrationError> {
    Ok(cal.load::<CodesFile>("protocols.toml")?.dicom)
}

/// A UID under 2.25 from a SHA-256 of what it names (stable, unique per store and record).
pub fn derived_uid(store_id: &str, kind: &str, id: &str) -> String {
    let h = Sha256::digest(format!("sameframe:{store_id}:{kind}:{id}").as_bytes());
    let mut n = [0u8; 16];
    n.copy_from_slice(&h[..16]);
    format!("2.25.{}", u128::from_be_bytes(n))
}

/// Export each capture into `out` as `<capture ID>.dcm`. Every capture is checked (known, not
/// purged, its consent allowing the purpose today) and every target name is checked before
/// anything is written; each file written is recorded as an export of its capture for that
/// purpose, so a withdrawal of that use lists it.
pub fn export_captures(
    store: &Store,
    ids: &[String],
    out: &Path,
    opts: &Options,
) -> Result<Vec<DicomExport>, DicomError> {
    let today = sameframe_core::timefmt::today();
    let mut caps = Vec::new();
    for id in ids {
        let c = store.capture(id)?;
        store.consent(&c.consent_id)?.require(opts.purpose, today)?;
        let path = out.join(format!("{}.dcm", c.id));
        if path.exists() && !opts.force {
            return Err(DicomError::Exists { path });
        }
        caps.push((c, path));
    }
    std::fs::create_dir_all(out).map_err(|source| RecordError::WriteFile {
        path: out.to_path_buf(),
        source,
    })?;
    let codes = codes(store.calibration())?;
    let mut done = Vec::new();
    for (c, path) in caps {
        let (bytes, export) = build(store, &c, &codes, opts, &path)?;
        sameframe_core::records::capture::write_file_atomic(&path, &bytes)?;
        store.record_derived_export(&c.id, &path, opts.purpose, "dicom", bytes.len() as u64)?;
        done.push(export);
    }
    Ok(done)
}

/// The pixels of a capture as DICOM has them.
struct Pixels {
    rows: u16,
    columns: u16,
    samples: u16,
    photometric: &'static str,
    bits: u16,
    value: dicom_core::value::Value<InMemDicomObject>,
    transfer_syntax: &'static str,
    encapsulated: bool,
    lossy: bool,
    sha256: String,
}

/// The start-of-frame marker of a JPEG (0xC0 baseline, 0xC1 extended, 0xC2 progressive…),
/// with its height, width and component count.
fn jpeg_frame(bytes: &[u8]) -> Option<(u8, u16, u16, u8)> {
    let mut i = 2;
    while i + 9 < bytes.len() {
        if bytes[i] != 0xFF {
            return None;
        }
        let marker = bytes[i + 1];
        let len = usize::from(u16::from_be_bytes([bytes[i + 2], bytes[i + 3]]));
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            let h = u16::from_be_bytes([bytes[i + 5], bytes[i + 6]]);
            let w = u16::from_be_bytes([bytes[i + 7], bytes[i + 8]]);
            return Some((marker, h, w, bytes[i + 9]));
        }
        i += 2 + len;
    }
    None
}

fn pixels(store: &Store, c: &Capture) -> Result<Pixels, DicomError> {
    let build = |why: String| DicomError::Build {
        capture: c.id.clone(),
        why,
    };
    if c.format == ImageKind::Jpeg {
        let original = store.capture_bytes(&c.id)?;
        // 8-bit baseline only: anything else (progressive, 12-bit) is written uncompressed.
        if let Some((0xC0, rows, columns, comps @ (1 | 3))) = jpeg_frame(&original) {
            let sha256 = sameframe_core::ids::sha256_hex(&original);
            let mut fragment = original;
            if fragment.len() % 2 == 1 {
                // Fragments have even lengths; a JPEG may end with padding after EOI.
                fragment.push(0);
            }
            return Ok(Pixels {
                rows,
                columns,
                samples: u16::from(comps),
                photometric: if comps == 3 {
                    "YBR_FULL_422"
                } else {
                    "MONOCHROME2"
                },
                bits: 8,
                value: PixelFragmentSequence::new(Vec::<u32>::new(), vec![fragment]).into(),
                transfer_syntax: JPEG_BASELINE,
                encapsulated: true,
                lossy: true,
                sha256,
            });
        }
    }
    let img = store.capture_image(&c.id)?;
    let (columns, rows) = (img.width(), img.height());
    let (rows, columns) = (
        u16::try_from(rows).map_err(|_| build(format!("{rows} rows: more than DICOM allows")))?,
        u16::try_from(columns)
            .map_err(|_| build(format!("{columns} columns: more than DICOM allows")))?,
    );
    let sixteen = matches!(
        img.color(),
        image::ColorType::L16
            | image::ColorType::La16
            | image::ColorType::Rgb16
            | image::ColorType::Rgba16
    );
    let grey = !img.color().has_color();
    let (samples, photometric) = if grey { (1, "MONOCHROME2") } else { (3, "RGB") };
    let data: Vec<u8> = match (grey, sixteen) {
        (true, false) => img.to_luma8().into_raw(),
        (false, false) => img.to_rgb8().into_raw(),
        (true, true) => img
            .to_luma16()
            .into_raw()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        (false, true) => img
            .to_rgb16()
            .into_raw()
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
    };
    let mut data = data;
    if data.len() % 2 == 1 {
        data.push(0);
    }
    let sha256 = sameframe_core::ids::sha256_hex(&data);
    Ok(Pixels {
        rows,
        columns,
        samples,
        photometric,
        bits: if sixteen { 16 } else { 8 },
        value: PrimitiveValue::U8(data.into()).into(),
        transfer_syntax: EXPLICIT_VR_LE,
        encapsulated: false,
        lossy: false,
        sha256,
    })
}

/// A code sequence item: (value, scheme, meaning).
fn code_item(value: &str, scheme: &str, meaning: &str) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        DataElement::new(tags::CODE_VALUE, VR::SH, PrimitiveValue::from(value)),
        DataElement::new(
            tags::CODING_SCHEME_DESIGNATOR,
            VR::SH,
            PrimitiveValue::from(scheme),
        ),
        DataElement::new(tags::CODE_MEANING, VR::LO, PrimitiveValue::from(meaning)),
    ])
}

fn sequence(tag: Tag, items: Vec<InMemDicomObject>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::SQ, DataSetSequence::new(items, Length::UNDEFINED))
}

/// One Acquisition Context item: a text value under a code of this kit's private scheme.
fn context_text(code: &str, meaning: &str, text: &str) -> InMemDicomObject {
    InMemDicomObject::from_element_iter([
        DataElement::new(tags::VALUE_TYPE, VR::CS, PrimitiveValue::from("TEXT")),
        sequence(
            tags::CONCEPT_NAME_CODE_SEQUENCE,
            vec![code_item(code, "99SAMEFRAME", meaning)],
        ),
        DataElement::new(tags::TEXT_VALUE, VR::UT, PrimitiveValue::from(text)),
    ])
}

/// The confounders, lighting and pose numbers recorded with the capture.
fn acquisition_context(c: &Capture) -> Vec<InMemDicomObject> {
    let mut items = Vec::new();
    for k in &c.confounders {
        let text = match &k.text {
            Some(t) => format!("{}: {t}", k.label),
            None => k.label.clone(),
        };
        items.push(context_text("CONFOUNDER", "Confounder", &text));
    }
    if let Some(a) = &c.analysis {
        if let Some((ev, cast)) = a.exposure_and_cast() {
            items.push(context_text(
                "LIGHTING",
                "Lighting on the grey card",
                &format!(
                    "exposure {ev:+.2} EV; cast a* {:+.1} b* {:+.1}",
                    cast[0], cast[1]
                ),
            ));
        }
        if let Some(p) = a.pose_at_commit.as_ref().and_then(|p| p.score) {
            items.push(context_text(
                "POSE",
                "Pose score against the baseline",
                &format!("{p:.0}/100"),
            ));
        }
        if let Some(o) = a.override_reason() {
            items.push(context_text("OVERRIDE", "Captured out of tolerance", o));
        }
    }
    if let Some(t) = &c.time_of_day {
        items.push(context_text("TIMEOFDAY", "Time of day", t));
    }
    items
}

/// DICOM date and time (DA, TM) from the capture's `YYYY-MM-DDTHH:MM:SS…`.
fn da_tm(at: &str) -> (String, String) {
    let digits = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
    let date = at.get(..10).map(digits).unwrap_or_default();
    let time = at.get(11..19).map(digits).unwrap_or_default();
    (date, time)
}

fn text(tag: Tag, vr: VR, value: impl Into<String>) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, vr, PrimitiveValue::from(value.into()))
}

fn u16_el(tag: Tag, v: u16) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::US, PrimitiveValue::from(v))
}

/// Build the file's bytes.
fn build(
    store: &Store,
    c: &Capture,
    codes: &Codes,
    opts: &Options,
    path: &Path,
) -> Result<(Vec<u8>, DicomExport), DicomError> {
    let fail = |why: String| DicomError::Build {
        capture: c.id.clone(),
        why,
    };
    let sid = store.store_id();
    let visit = match &c.visit_id {
        Some(v) => Some(store.visit(v)?),
        None => None,
    };
    let study_key = c
        .visit_id
        .clone()
        .unwrap_or_else(|| format!("capture:{}", c.id));
    let series_root = c.baseline_id.clone().unwrap_or_else(|| c.id.clone());
    let sop = derived_uid(sid, "capture", &c.id);
    let study = derived_uid(sid, "study", &study_key);
    let series = derived_uid(sid, "series", &format!("{study_key}:{series_root}"));
    let patient = store.patient_by_id(&c.patient_id)?;
    let px = pixels(store, c)?;
    let (date, time) = da_tm(&c.captured_at);
    let exif = c.exif.clone().unwrap_or_default();
    let mut obj = InMemDicomObject::new_empty();
    let mut put = |e: DataElement<InMemDicomObject>| {
        obj.put(e);
    };
    // SOP Common.
    put(text(tags::SPECIFIC_CHARACTER_SET, VR::CS, "ISO_IR 192"));
    put(text(tags::SOP_CLASS_UID, VR::UI, VL_PHOTOGRAPHIC_IMAGE));
    put(text(tags::SOP_INSTANCE_UID, VR::UI, sop.clone()));
    // Patient.
    let name = match (&patient.display_name, opts.with_name) {
        (Some(n), true) => n.clone(),
        _ => String::new(),
    };
    put(text(tags::PATIENT_NAME, VR::PN, name));
    put(text(tags::PATIENT_ID, VR::LO, patient.reference.clone()));
    put(text(tags::PATIENT_BIRTH_DATE, VR::DA, ""));
    put(text(tags::PATIENT_SEX, VR::CS, ""));
    // General Study (one per visit).
    put(text(tags::STUDY_INSTANCE_UID, VR::UI, study.clone()));
    let study_date = visit
        .as_ref()
        .map_or(date.clone(), |v| v.date.replace('-', ""));
    put(text(tags::STUDY_DATE, VR::DA, study_date));
    put(text(tags::STUDY_TIME, VR::TM, time.clone()));
    put(text(tags::REFERRING_PHYSICIAN_NAME, VR::PN, ""));
    put(text(
        tags::STUDY_ID,
        VR::SH,
        study_key
            .chars()
            .rev()
            .take(16)
            .collect::<String>()
            .chars()
            .rev()
            .collect::<String>(),
    ));
    put(text(tags::ACCESSION_NUMBER, VR::SH, ""));
    if let Some(v) = &visit {
        let desc = match &v.product {
            Some(p) => format!("{} treatment, {p}", v.area.label()),
            None => format!("{} treatment", v.area.label()),
        };
        put(text(tags::STUDY_DESCRIPTION, VR::LO, desc));
    }
    // General Series and VL Photographic Series.
    put(text(tags::MODALITY, VR::CS, "XC"));
    put(text(tags::SERIES_INSTANCE_UID, VR::UI, series.clone()));
    put(text(tags::SERIES_NUMBER, VR::IS, "1"));
    put(text(
        tags::SERIES_DESCRIPTION,
        VR::LO,
        format!("{} {}", c.area.label(), c.view.label()),
    ));
    // General Equipment and VL Photographic Equipment.
    put(text(
        tags::MANUFACTURER,
        VR::LO,
        exif.make.clone().unwrap_or_default(),
    ));
    if let Some(m) = &exif.model {
        put(text(tags::MANUFACTURER_MODEL_NAME, VR::LO, m.clone()));
    }
    put(text(
        tags::SOFTWARE_VERSIONS,
        VR::LO,
        format!("sameframe {}", env!("CARGO_PKG_VERSION")),
    ));
    // General Acquisition and General Image.
    put(text(
        tags::ACQUISITION_DATE_TIME,
        VR::DT,
        format!("{date}{time}"),
    ));
    put(text(tags::CONTENT_DATE, VR::DA, date.clone()));
    put(text(tags::CONTENT_TIME, VR::TM, time.clone()));
    put(text(tags::INSTANCE_NUMBER, VR::IS, "1"));
    put(text(tags::PATIENT_ORIENTATION, VR::CS, ""));
    put(text(tags::IMAGE_TYPE, VR::CS, "ORIGINAL\\PRIMARY"));
    put(text(
        tags::LOSSY_IMAGE_COMPRESSION,
        VR::CS,
        if px.lossy { "01" } else { "00" },
    ));
    if px.lossy {
        put(text(
            tags::LOSSY_IMAGE_COMPRESSION_METHOD,
            VR::CS,
            "ISO_10918_1",
        ));
    }
    // VL Image: anatomy, laterality (the face, neck, scalp and chest are unpaired; a hands
    // photograph shows both) and view.
    put(text(
        tags::IMAGE_LATERALITY,
        VR::CS,
        if c.area == sameframe_core::records::Area::Hands {
            "B"
        } else {
            "U"
        },
    ));
    if let Some(a) = codes.area.get(c.area.as_str()) {
        put(sequence(
            tags::ANATOMIC_REGION_SEQUENCE,
            vec![code_item(&a.code, "SCT", &a.meaning)],
        ));
    }
    if let Some(v) = codes.view.get(c.view.as_str()) {
        put(sequence(
            tags::VIEW_CODE_SEQUENCE,
            vec![code_item(&v.code, "SCT", &v.meaning)],
        ));
    }
    // Acquisition Context.
    put(sequence(
        tags::ACQUISITION_CONTEXT_SEQUENCE,
        acquisition_context(c),
    ));
    // Image Pixel.
    put(u16_el(tags::SAMPLES_PER_PIXEL, px.samples));
    put(text(
        tags::PHOTOMETRIC_INTERPRETATION,
        VR::CS,
        px.photometric,
    ));
    if px.samples > 1 {
        put(u16_el(tags::PLANAR_CONFIGURATION, 0));
    }
    put(u16_el(tags::ROWS, px.rows));
    put(u16_el(tags::COLUMNS, px.columns));
    put(u16_el(tags::BITS_ALLOCATED, px.bits));
    put(u16_el(tags::BITS_STORED, px.bits));
    put(u16_el(tags::HIGH_BIT, px.bits - 1));
    put(u16_el(tags::PIXEL_REPRESENTATION, 0));
    let pixel_vr = if px.encapsulated || px.bits == 8 {
        VR::OB
    } else {
        VR::OW
    };
    put(DataElement::new(tags::PIXEL_DATA, pixel_vr, px.value));
    let meta = FileMetaTableBuilder::new()
        .transfer_syntax(px.transfer_syntax)
        .implementation_class_uid(derived_uid(
            "sameframe",
            "implementation",
            IMPLEMENTATION_NAME,
        ))
        .implementation_version_name(IMPLEMENTATION_NAME);
    let file = obj
        .with_meta(meta)
        .map_err(|e| fail(format!("file meta: {e}")))?;
    let mut bytes = Vec::new();
    file.write_all(&mut bytes)
        .map_err(|e| fail(format!("encoding: {e}")))?;
    Ok((
        bytes,
        DicomExport {
            capture_id: c.id.clone(),
            path: path.to_path_buf(),
            sop_instance_uid: sop,
            study_instance_uid: study,
            series_instance_uid: series,
            transfer_syntax: px.transfer_syntax.to_string(),
            encapsulated: px.encapsulated,
            pixel_sha256: px.sha256,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_stable_valid_and_distinct() {
        let a = derived_uid("sto_1", "capture", "cap_1");
        assert_eq!(a, derived_uid("sto_1", "capture", "cap_1"));
        assert_ne!(a, derived_uid("sto_2", "capture", "cap_1"));
        assert_ne!(a, derived_uid("sto_1", "study", "cap_1"));
        assert!(a.len() <= 64 && a.starts_with("2.25."));
        assert!(a[5..].bytes().all(|b| b.is_ascii_digit()) && !a[5..].starts_with('0'));
    }

    #[test]
    fn the_frame_header_of_a_baseline_jpeg_is_found() {
        let img = image::RgbImage::from_fn(40, 24, |x, y| image::Rgb([x as u8, y as u8, 9]));
        let mut jpeg = Vec::new();
        img.write_with_encoder(image::codecs::jpeg::JpegEncoder::new_with_quality(
            &mut jpeg, 90,
        ))
        .unwrap();
        assert_eq!(jpeg_frame(&jpeg), Some((0xC0, 24, 40, 3)));
        assert_eq!(jpeg_frame(b"\xFF\xD8 not a jpeg"), None);
    }
}
