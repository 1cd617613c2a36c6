//! `Store::prepare_publication`: the rules a publication copy must pass, then the copy itself.

use std::path::{Path, PathBuf};

use image::RgbImage;
use serde::Serialize;

use super::compose::{self, Layout, PanelIn};
use super::config::{ChannelRule, PublishConfig};
use super::deid::{self, Method};
use super::provenance::{ClaimedAction, ClaimedCapture, ProvenanceClaim, ProvenanceSigner, ToSign};
use super::strip;
use crate::records::publication::{NewPublication, PreparedInfo};
use crate::records::{Capture, RecordError};
use crate::store::Store;
use crate::vocab::Scope;

/// What to prepare.
#[derive(Clone, Debug)]
pub struct PrepareRequest<'a> {
    /// The captures, in any order (they are placed oldest first).
    pub capture_ids: &'a [String],
    pub channel: &'a str,
    /// Default: single for one capture, side by side for more.
    pub layout: Option<Layout>,
    /// De-identification and the treated zone it keeps (default: the area's zone).
    pub deidentify: Option<Method>,
    pub zone: Option<&'a str>,
    /// Write the variability note into the image as well as the caption.
    pub burn_in: bool,
    /// A reason to publish a pair graded below the clinic's minimum (audited).
    pub grade_override: Option<&'a str>,
    pub out: &'a Path,
}

/// A prepared copy, as recorded.
#[derive(Clone, Debug, Serialize)]
pub struct Prepared {
    pub publication_id: String,
    pub file: PathBuf,
    pub caption_file: PathBuf,
    pub sha256: String,
    pub channel: String,
    pub scope: Scope,
    pub layout: String,
    pub width: u32,
    pub height: u32,
    pub grade: Option<char>,
    pub grade_reasons: Vec<String>,
    pub grade_override: Option<String>,
    pub deidentified: Option<String>,
    pub captures: Vec<ClaimedCapture>,
    pub caption: String,
    pub signer: String,
}

/// The caption file of a copy: its name with `.txt` (where a review looks for it).
pub fn caption_path(out: &Path) -> PathBuf {
    out.with_extension("txt")
}

fn invalid(what: impl Into<String>, why: impl Into<String>) -> RecordError {
    RecordError::Invalid {
        what: what.into(),
        why: why.into(),
    }
}

/// The captures asked for, each once, of one patient, oldest first.
fn captures_of(store: &Store, ids: &[String]) -> Result<Vec<Capture>, RecordError> {
    if ids.is_empty() || ids.len() > 4 {
        return Err(invalid(
            "captures",
            format!("give 1 to 4 captures (got {})", ids.len()),
        ));
    }
    let mut caps: Vec<Capture> = Vec::new();
    for id in ids {
        let c = store.capture(id)?;
        if caps.iter().any(|k| k.id == c.id) {
            return Err(invalid(c.id, "named twice"));
        }
        if let Some(first) = caps.first()
            && first.patient_id != c.patient_id
        {
            return Err(invalid(
                c.id.clone(),
                format!(
                    "it is a photo of another patient than {}: a publication shows one patient",
                    first.id
                ),
            ));
        }
        caps.push(c);
    }
    caps.sort_by(|a, b| a.captured_at.cmp(&b.captured_at));
    Ok(caps)
}

/// Where the copy goes: a .jpg, .jpeg or .png outside the data directory that does not exist.
fn check_out(store: &Store, out: &Path) -> Result<&'static str, RecordError> {
    let ext = out
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default();
    let format = match ext.as_str() {
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        _ => {
            return Err(invalid(
                out.display().to_string(),
                "name the copy .jpg, .jpeg or .png",
            ));
        }
    };
    let folder = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !folder.is_dir() {
        return Err(invalid(
            out.display().to_string(),
            format!("its folder {} does not exist", folder.display()),
        ));
    }
    if out.symlink_metadata().is_ok() || caption_path(out).symlink_metadata().is_ok() {
        return Err(invalid(
            out.display().to_string(),
            "it (or its caption .txt) already exists: choose another name",
        ));
    }
    if crate::records::capture::path_is_inside(out, store.root()) {
        return Err(invalid(
            out.display().to_string(),
            "it is inside the data directory: write publication copies elsewhere",
        ));
    }
    Ok(format)
}

/// The pair grades (each follow-up against the first capture) and the worst.
fn grade(
    store: &Store,
    caps: &[Capture],
    cfg: &PublishConfig,
    override_reason: Option<&str>,
) -> Result<(Option<char>, Vec<String>), RecordError> {
    let mut worst: Option<char> = None;
    let mut reasons = Vec::new();
    for f in caps.iter().skip(1) {
        let g = store.grade_pair(&caps[0].id, &f.id)?;
        worst = Some(worst.map_or(g.grade, |w| w.max(g.grade)));
        reasons.extend(g.reasons().into_iter().map(|r| format!("{}: {r}", f.id)));
    }
    let min = cfg.publication.min_grade;
    if let Some(w) = worst
        && w > min
        && override_reason.is_none()
    {
        return Err(invalid(
            format!("{} → {}", caps[0].id, caps[caps.len() - 1].id),
            format!(
                "comparability grade {w} is below the clinic's minimum {min} for publication: {} (choose a better-matched pair, or give --override-grade REASON)",
                if reasons.is_empty() {
                    "no reason recorded".to_string()
                } else {
                    reasons.join("; ")
                }
            ),
        ));
    }
    Ok((worst, reasons))
}

/// Whether the copy must be de-identified, and why.
fn deid_required(
    channel: &str,
    rule: &ChannelRule,
    consents: &[crate::records::Consent],
) -> Option<String> {
    if rule.deidentify {
        return Some(format!(
            "the {channel} channel requires de-identified photos"
        ));
    }
    consents.iter().find(|c| !c.identifiable).map(|c| {
        format!(
            "consent {} does not allow the patient to be recognisable in a publication",
            c.id
        )
    })
}

/// A capture made ready for its panel: de-identified when asked, with what was done.
struct PanelPlan {
    image: RgbImage,
    crop: [u32; 4],
    deid: Option<String>,
}

fn panel_of(
    store: &Store,
    cap: &Capture,
    cfg: &PublishConfig,
    method: Option<Method>,
    zone: Option<&str>,
    must: bool,
) -> Result<PanelPlan, RecordError> {
    let img = store.capture_image(&cap.id)?.to_rgb8();
    let (w, h) = img.dimensions();
    let Some(method) = method else {
        return Ok(PanelPlan {
            image: img,
            crop: [0, 0, w, h],
            deid: None,
        });
    };
    let name = zone.or_else(|| cfg.default_zone(cap.area)).ok_or_else(|| {
        invalid(
            cap.id.clone(),
            format!(
                "name the treated zone with --zone (one of: {})",
                cfg.zone.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )
    })?;
    let z = cfg.zone(name).map_err(|why| invalid("--zone", why))?;
    let d = deid::apply(&img, method, name, z, cfg.publication.zone_margin_iod)
        .map_err(|e| invalid(cap.id.clone(), e.to_string()))?;
    if must
        && let Some(why) =
            deid::recognisable_face(&d).map_err(|e| invalid(cap.id.clone(), e.to_string()))?
    {
        return Err(invalid(
            cap.id.clone(),
            format!("{why}: choose a smaller zone, or mask instead of cropping"),
        ));
    }
    Ok(PanelPlan {
        image: d.image,
        crop: d.crop,
        deid: Some(d.description),
    })
}

/// The day a capture was taken (YYYY-MM-DD).
fn day(c: &Capture) -> String {
    c.captured_at
        .get(..10)
        .unwrap_or(&c.captured_at)
        .to_string()
}

/// The labels of the panels: BEFORE and AFTER with their dates for a series, the date alone
/// for one photo.
fn labels(caps: &[Capture]) -> Vec<(String, String)> {
    match caps.len() {
        1 => vec![("single".into(), day(&caps[0]))],
        _ => caps
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i == 0 {
                    ("before".into(), format!("BEFORE - {}", day(c)))
                } else {
                    ("after".into(), format!("AFTER - {}", day(c)))
                }
            })
            .collect(),
    }
}

/// The caption: the dates, the variability note, and what the records ask to disclose.
fn caption(caps: &[Capture], labels: &[(String, String)], note: &str) -> String {
    let mut s = labels
        .iter()
        .map(|(_, l)| l.clone())
        .collect::<Vec<_>>()
        .join(" / ");
    s += "\n";
    s += note.trim();
    s += "\n";
    let mut told: Vec<String> = Vec::new();
    for c in caps {
        for k in c.confounders.iter().filter(|k| k.disclose) {
            let line = match &k.text {
                Some(t) => format!("{} ({t})", k.label),
                None => k.label.clone(),
            };
            if !told.contains(&line) {
                told.push(line);
            }
        }
    }
    if !told.is_empty() {
        s += &format!("Disclosures: {}.\n", told.join("; "));
    }
    s
}

impl Store {
    /// Prepare a publication copy of `req.capture_ids` for `req.channel`, signed by `signer`,
    /// and record it as a publication. Refused, with nothing written, when a consent does not
    /// allow the channel's scope today, the captures are not one patient's, the pair's grade is
    /// below the clinic's minimum (unless overridden with a reason), or de-identification is
    /// required and not given or not enough.
    pub fn prepare_publication(
        &self,
        req: &PrepareRequest<'_>,
        signer: &dyn ProvenanceSigner,
    ) -> Result<Prepared, RecordError> {
        let cfg = PublishConfig::load(self.calibration())?;
        let rule = cfg
            .channel(req.channel)
            .map_err(|why| invalid("--channel", why))?;
        let format = check_out(self, req.out)?;
        if let Some(r) = req.grade_override {
            crate::records::consent::check_note("--override-grade", r)?;
        }
        let caps = captures_of(self, req.capture_ids)?;
        let layout = req.layout.unwrap_or(if caps.len() == 1 {
            Layout::Single
        } else {
            Layout::SideBySide
        });
        if (layout == Layout::Single) != (caps.len() == 1) {
            return Err(invalid(
                "--layout",
                format!("{} does not fit {} capture(s)", layout.as_str(), caps.len()),
            ));
        }
        let today = crate::timefmt::today();
        let mut consents: Vec<crate::records::Consent> = Vec::new();
        for c in &caps {
            let consent = self.consent(&c.consent_id)?;
            consent.require(rule.scope, today)?;
            if !consents.iter().any(|k| k.id == consent.id) {
                consents.push(consent);
            }
        }
        let must = deid_required(req.channel, rule, &consents);
        if let (Some(why), None) = (&must, req.deidentify) {
            return Err(invalid(
                caps[0].id.clone(),
                format!(
                    "{why}: give --deidentify crop or --deidentify mask (with --zone for face photos)"
                ),
            ));
        }
        let (grade, grade_reasons) = grade(self, &caps, &cfg, req.grade_override)?;
        let plans = caps
            .iter()
            .map(|c| panel_of(self, c, &cfg, req.deidentify, req.zone, must.is_some()))
            .collect::<Result<Vec<_>, _>>()?;
        let labels = labels(&caps);
        let note = cfg.publication.variability_note.trim().to_string();
        let panels: Vec<PanelIn<'_>> = plans
            .iter()
            .zip(&labels)
            .map(|(p, (_, l))| PanelIn {
                image: &p.image,
                label: l.clone(),
            })
            .collect();
        let composed = compose::compose(
            &panels,
            layout,
            rule.long_side,
            req.burn_in.then_some(note.as_str()),
        );
        let encoded = match format {
            "image/png" => strip::png(&composed.image),
            _ => strip::jpeg(&composed.image, cfg.publication.jpeg_quality),
        }
        .map_err(|why| invalid(req.out.display().to_string(), why))?;
        let publication_id = crate::ids::new_id("pub")?;
        let claimed: Vec<ClaimedCapture> = caps
            .iter()
            .zip(&plans)
            .zip(&labels)
            .zip(&composed.panels)
            .map(|(((c, p), (label, _)), panel)| ClaimedCapture {
                capture_id: c.id.clone(),
                sha256: c.sha256.clone(),
                label: label.clone(),
                taken: day(c),
                panel: *panel,
                crop: p.crop,
            })
            .collect();
        let deidentified = plans.iter().find_map(|p| p.deid.clone());
        let claim = ProvenanceClaim {
            store_id: self.store_id().to_string(),
            publication_id: publication_id.clone(),
            channel: req.channel.to_string(),
            scope: rule.scope.as_str().to_string(),
            layout: layout.as_str().to_string(),
            captures: claimed.clone(),
            consents: consents.iter().map(|c| c.id.clone()).collect(),
            checked_on: crate::timefmt::fmt_date(today),
            grade,
            grade_override: req.grade_override.map(str::to_string),
            deidentified: deidentified.clone(),
            actions: actions(&caps, &plans, &composed, req.burn_in),
        };
        let title = req
            .out
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "publication".into());
        let signed = signer
            .sign(&ToSign {
                image: &encoded,
                format,
                title: &title,
                claim: &claim,
            })
            .map_err(|why| invalid("provenance manifest", why))?;
        let sha256 = crate::ids::sha256_hex(&signed);
        let caption = caption(&caps, &labels, &note);
        let info = PreparedInfo {
            layout: layout.as_str().to_string(),
            grade,
            grade_override: req.grade_override.map(str::to_string),
            deidentified: deidentified.clone(),
            burned_in: req.burn_in,
            signer: signer.signer_name(),
        };
        self.record_publication(NewPublication {
            id: Some(publication_id.clone()),
            file_sha256: &sha256,
            channel: req.channel,
            url: None,
            date: &crate::timefmt::fmt_date(today),
            purpose: rule.scope.as_str(),
            sources: claimed
                .iter()
                .map(|c| {
                    (
                        c.capture_id.clone(),
                        serde_json::to_value(c.panel).ok(),
                        None,
                    )
                })
                .collect(),
            file_name: Some(&title),
            not_patient: false,
            note: None,
            prepared: Some(info),
        })?;
        // The copy on this station's disk is a copy of each capture outside the store: recorded
        // before it is written, so a withdrawal always lists it for deletion.
        for c in &caps {
            self.record_derived_export(
                &c.id,
                req.out,
                rule.scope,
                "publication copy",
                signed.len() as u64,
            )?;
        }
        let caption_file = caption_path(req.out);
        crate::records::capture::write_file_atomic(req.out, &signed)?;
        crate::records::capture::write_file_atomic(&caption_file, caption.as_bytes())?;
        Ok(Prepared {
            publication_id,
            file: req.out.to_path_buf(),
            caption_file,
            sha256,
            channel: req.channel.to_string(),
            scope: rule.scope,
            layout: layout.as_str().to_string(),
            width: composed.image.width(),
            height: composed.image.height(),
            grade,
            grade_reasons,
            grade_override: req.grade_override.map(str::to_string),
            deidentified,
            captures: claimed,
            caption,
            signer: signer.signer_name(),
        })
    }
}

/// The edits, as C2PA actions: the first capture opened, the others placed, then crops,
/// de-identification, resizing and the text bands.
fn actions(
    caps: &[Capture],
    plans: &[PanelPlan],
    composed: &compose::Composed,
    burn_in: bool,
) -> Vec<ClaimedAction> {
    let act = |action: &str, description: String, capture: Option<&Capture>| ClaimedAction {
        action: action.into(),
        description,
        capture_id: capture.map(|c| c.id.clone()),
    };
    let mut out = Vec::new();
    for (i, c) in caps.iter().enumerate() {
        let (a, what) = if i == 0 {
            ("c2pa.opened", "opened")
        } else {
            ("c2pa.placed", "placed beside it")
        };
        out.push(act(a, format!("capture {} {what}", c.id), Some(c)));
    }
    for (c, p) in caps.iter().zip(plans) {
        if let Some(d) = &p.deid {
            let kind = if d.contains("cropped") {
                "c2pa.cropped"
            } else {
                "c2pa.edited"
            };
            out.push(act(kind, d.clone(), Some(c)));
        }
    }
    if composed.resized {
        out.push(act(
            "c2pa.resized",
            "resized to the channel's size".into(),
            None,
        ));
    }
    let text = if burn_in {
        "labels and the variability note"
    } else {
        "labels"
    };
    out.push(act(
        "c2pa.drawing",
        format!("text added in white bands outside the photos: {text}"),
        None,
    ));
    out
}
