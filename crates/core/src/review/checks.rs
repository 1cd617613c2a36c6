//! The review of one published image: its sources and every check, as findings with a
//! severity, and the verdict.

use std::path::{Path, PathBuf};

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::edits::{self, EditKind};
use super::matching::{self, Affine, Query, SourceMatch};
use crate::records::{Capture, RecordError, Scope};
use crate::store::Store;

/// How serious a finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warn,
    Fail,
}

/// One finding.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Finding {
    /// consent, takedown, pairing, comparability, disclosure, edit, caption, source, file.
    pub kind: String,
    pub severity: Severity,
    pub message: String,
}

/// A source as reported.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SourceReport {
    pub capture_id: String,
    pub patient_ref: String,
    /// x, y, w, h in the published image.
    pub panel: [u32; 4],
    /// 0 (identical after alignment) to 1.
    pub distance: f64,
    pub consent_id: String,
    pub area: String,
    pub view: String,
    pub role: String,
    pub captured_at: String,
}

/// The verdict on a published image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

/// A reviewed published image.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ImageReport {
    pub file: String,
    pub sha256: Option<String>,
    pub width: u32,
    pub height: u32,
    pub sources: Vec<SourceReport>,
    pub verdict: Verdict,
    pub findings: Vec<Finding>,
    pub caption: Option<String>,
    /// Comparability grade of a before/after pair, when there is one.
    pub pair_grade: Option<char>,
    /// A small JPEG of the published image for the HTML report (not serialised).
    #[serde(skip)]
    pub thumbnail: Option<Vec<u8>>,
}

fn finding(kind: &str, severity: Severity, message: String) -> Finding {
    Finding {
        kind: kind.into(),
        severity,
        message,
    }
}

/// Refine `sim` (source → published pixels) by direct alignment over the panel.
fn refine_at(
    source: &RgbImage,
    published: &RgbImage,
    t: Affine,
    panel: &[u32; 4],
) -> Option<Affine> {
    let pg = crate::analysis::pose::refine::GradImage::new(&crate::analysis::fingerprint::luma(
        published,
    ));
    super::matching::refine_onto(source, &pg, t, panel, 4000, 30, 0.6)
}

/// The longest caption file read.
const CAPTION_MAX_BYTES: u64 = 64 * 1024;

/// The caption of a published image: `NAME.txt` beside it, or in `caption_dir`.
pub fn caption_for(file: &Path, caption_dir: Option<&Path>) -> Option<String> {
    let stem = file.file_stem()?.to_string_lossy().to_string();
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(d) = caption_dir {
        candidates.push(d.join(format!("{stem}.txt")));
    }
    candidates.push(file.with_extension("txt"));
    // A caption is a few lines: anything that is not a small text file is not one.
    candidates
        .iter()
        .find_map(|p| crate::fsutil::read_text_capped(p, CAPTION_MAX_BYTES).ok())
        .map(|s| s.trim().to_string())
}

/// Words that state results vary.
const VARIABILITY: &[&str] = &[
    "results may vary",
    "results vary",
    "individual results",
    "results can vary",
    "results will vary",
    "may differ",
    "not typical",
    "varies from person to person",
    "vary from person to person",
    "outcomes vary",
];

/// Claims a caption must not make.
const CLAIMS: &[&str] = &[
    "guarantee",
    "typical result",
    "results are typical",
    "100%",
    "100 %",
    "permanent result",
    "always works",
    "works for everyone",
    "risk-free",
    "risk free",
];

/// Words that, just before a claim, deny it ("results not guaranteed", "we cannot
/// guarantee").
const DENIALS: &[&str] = &[
    "not", "no", "cannot", "never", "can't", "don't", "won't", "doesn't",
];

/// Where `claim` is made in `lower` (a lowercased caption), not denied: the claim's words as
/// written, to the end of the last word ("guaranteed" for the claim "guarantee").
fn claim_made<'a>(lower: &'a str, claim: &str) -> Option<&'a str> {
    lower.match_indices(claim).find_map(|(at, _)| {
        let before = lower[..at].split_whitespace().last().unwrap_or("");
        let before = before.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'');
        if DENIALS.contains(&before) {
            return None;
        }
        let end = at + claim.len();
        let word_end = lower[end..]
            .find(|c: char| !c.is_alphanumeric())
            .map_or(lower.len(), |k| end + k);
        Some(&lower[at..word_end])
    })
}

/// Caption findings.
pub fn check_caption(caption: &str, disclosures: &[(String, Vec<String>)]) -> Vec<Finding> {
    let lower = caption.to_lowercase();
    let mut out = Vec::new();
    if !VARIABILITY.iter().any(|v| lower.contains(v)) {
        out.push(finding(
            "caption",
            Severity::Warn,
            "the caption has no variability statement (e.g. \"individual results vary\")".into(),
        ));
    }
    for said in CLAIMS.iter().filter_map(|c| claim_made(&lower, c)) {
        out.push(finding(
            "caption",
            Severity::Fail,
            format!("the caption claims typical or guaranteed results (\"{said}\")"),
        ));
    }
    for (label, words) in disclosures {
        if !words.iter().any(|w| lower.contains(w)) {
            out.push(finding(
                "disclosure",
                Severity::Warn,
                format!("the caption does not disclose: {label}"),
            ));
        }
    }
    out
}

/// Keywords that count as disclosing a confounder in a caption: words of its label and key.
fn keywords(label: &str, key: &str) -> Vec<String> {
    let mut w: Vec<String> = label
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric() && c != '-')
        .filter(|w| {
            w.len() >= 5
                && ![
                    "since", "after", "other", "change", "present", "recent", "months", "weeks",
                ]
                .contains(w)
        })
        .map(str::to_string)
        .collect();
    w.extend(key.split('_').filter(|p| p.len() >= 5).map(str::to_string));
    w.sort();
    w.dedup();
    w
}

impl Store {
    /// Review one published image already decoded, prepared and matched (`matches`, from
    /// [`Store::find_sources`]).
    pub fn review_matched(
        &self,
        file: &str,
        sha256: Option<String>,
        published: &super::report::Published,
        q: &Query,
        caption: Option<String>,
        matches: Vec<SourceMatch>,
    ) -> Result<ImageReport, RecordError> {
        let original = &published.image;
        let mut findings = Vec::new();
        let mut caps: Vec<Capture> = Vec::new();
        for m in &matches {
            caps.push(self.capture(&m.capture_id)?);
        }
        let sources: Vec<SourceReport> = matches
            .iter()
            .zip(&caps)
            .map(|(m, c)| SourceReport {
                capture_id: c.id.clone(),
                patient_ref: c.patient_ref.clone(),
                panel: m.panel,
                distance: (m.distance() * 1000.0).round() / 1000.0,
                consent_id: c.consent_id.clone(),
                area: c.area.to_string(),
                view: c.view.to_string(),
                role: c.role.to_string(),
                captured_at: c.captured_at.clone(),
            })
            .collect();
        if matches.is_empty() {
            findings.push(finding(
                "source",
                Severity::Warn,
                "no source: no stored capture matches this image (not a clinic photo, or not imported)".into(),
            ));
        }
        let today = crate::timefmt::today();
        // Consent, and take-down of recorded publications.
        let mut consent_failed = false;
        for c in &caps {
            let consent = self.consent(&c.consent_id)?;
            match consent.permits(Scope::Publication, today) {
                Ok(()) => findings.push(finding(
                    "consent",
                    Severity::Info,
                    format!(
                        "capture {}: consent {} allows publication",
                        c.id, consent.id
                    ),
                )),
                Err(refusal) => {
                    let other = self
                        .consents_of_patient_id(&c.patient_id)?
                        .into_iter()
                        .find(|o| {
                            o.id != consent.id && o.permits(Scope::Publication, today).is_ok()
                        });
                    match other {
                        Some(o) => findings.push(finding(
                            "consent",
                            Severity::Info,
                            format!("capture {}: consent {} does not allow publication ({refusal}), but the patient's consent {} does", c.id, consent.id, o.id),
                        )),
                        None => {
                            consent_failed = true;
                            findings.push(finding(
                                "consent",
                                Severity::Fail,
                                format!("capture {}: consent {} does not allow publication: {refusal}", c.id, consent.id),
                            ));
                        }
                    }
                }
            }
        }
        if consent_failed && let Some(sha) = &sha256 {
            for p in self.publications_of_file(sha)? {
                findings.push(finding(
                    "takedown",
                    Severity::Fail,
                    format!(
                        "take down: published on {}{} on {}",
                        p.channel,
                        p.url.map(|u| format!(" ({u})")).unwrap_or_default(),
                        p.date
                    ),
                ));
            }
        }
        // Pairing and comparability of before/after panels.
        let mut pair_grade = None;
        if caps.len() >= 2 {
            let (a, b) = (&caps[0], &caps[1]);
            if a.patient_id != b.patient_id {
                findings.push(finding(
                    "pairing",
                    Severity::Fail,
                    format!("the panels show different patients ({} and {})", a.id, b.id),
                ));
            } else {
                if a.area != b.area || a.view != b.view {
                    findings.push(finding(
                        "pairing",
                        Severity::Warn,
                        format!(
                            "the panels are different areas or views ({}/{} and {}/{})",
                            a.area, a.view, b.area, b.view
                        ),
                    ));
                }
                if a.captured_at > b.captured_at {
                    findings.push(finding(
                        "pairing",
                        Severity::Warn,
                        format!("the first panel ({}, {}) was taken after the second ({}, {}): is \"after\" shown as \"before\"?", a.id, a.captured_at, b.id, b.captured_at),
                    ));
                } else {
                    findings.push(finding(
                        "pairing",
                        Severity::Info,
                        format!(
                            "before {} ({}) and after {} ({}) of the same patient",
                            a.id, a.captured_at, b.id, b.captured_at
                        ),
                    ));
                }
                let g = self.grade_pair(&a.id, &b.id)?;
                pair_grade = Some(g.grade);
                let sev = if g.grade <= 'B' {
                    Severity::Info
                } else {
                    Severity::Warn
                };
                let reasons = g.reasons();
                findings.push(finding(
                    "comparability",
                    sev,
                    format!(
                        "comparability grade {}{}",
                        g.grade,
                        if reasons.is_empty() {
                            String::new()
                        } else {
                            format!(": {}", reasons.join("; "))
                        }
                    ),
                ));
            }
            if caps.len() > 2 {
                findings.push(finding(
                    "pairing",
                    Severity::Info,
                    format!("{} panels; only the first two are compared", caps.len()),
                ));
            }
        }
        // Disclosures.
        let mut disclosures: Vec<(String, Vec<String>)> = Vec::new();
        for c in &caps {
            for k in c.confounders.iter().filter(|k| k.disclose) {
                if !disclosures.iter().any(|(l, _)| *l == k.label) {
                    disclosures.push((k.label.clone(), keywords(&k.label, &k.key)));
                }
            }
        }
        if !disclosures.is_empty() {
            findings.push(finding(
                "disclosure",
                if caption.is_some() {
                    Severity::Info
                } else {
                    Severity::Warn
                },
                format!(
                    "the publication must disclose: {}",
                    disclosures
                        .iter()
                        .map(|(l, _)| l.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ));
        }
        // Edits.
        for (m, c) in matches.iter().zip(&caps) {
            for region in self.edits_of(m, c, q, original)? {
                // In the file's own pixels.
                let b = region
                    .bbox
                    .map(|v| (f64::from(v) * published.scale()).round() as u32);
                let (sev, what) = match region.kind {
                    EditKind::Smoothing => (Severity::Fail, "local smoothing (detail removed)"),
                    EditKind::LocalChange => (
                        Severity::Fail,
                        "local change (cloning, liquify or retouching)",
                    ),
                    EditKind::Overlay => (Severity::Info, "overlay (text, logo or watermark)"),
                };
                findings.push(finding(
                    "edit",
                    sev,
                    format!(
                        "{what} at x {} y {} w {} h {} (source {})",
                        b[0], b[1], b[2], b[3], c.id
                    ),
                ));
            }
        }
        // Caption.
        if let Some(text) = &caption {
            findings.extend(check_caption(text, &disclosures));
        }
        let verdict = match findings.iter().map(|f| f.severity).max() {
            Some(Severity::Fail) => Verdict::Fail,
            Some(Severity::Warn) => Verdict::Warn,
            _ => Verdict::Pass,
        };
        let thumb = matching::thumbnail_jpeg(original, 360);
        Ok(ImageReport {
            file: file.to_string(),
            sha256,
            width: published.width,
            height: published.height,
            sources,
            verdict,
            findings,
            caption,
            pair_grade,
            thumbnail: Some(thumb),
        })
    }

    /// Local edits of a matched panel, compared at the published resolution (the capture's
    /// original is used when the preview is coarser than the published panel).
    fn edits_of(
        &self,
        m: &SourceMatch,
        c: &Capture,
        q: &Query,
        original: &RgbImage,
    ) -> Result<Vec<edits::EditRegion>, RecordError> {
        let preview = self.preview(&c.id)?;
        let _ = q;
        // Published pixels per preview pixel.
        let zoom = m.transform.scale();
        let (source, pre) = if zoom > 1.3 {
            let full = self.capture_image(&c.id)?.to_rgb8();
            let k = f64::from(full.width()) / f64::from(preview.width());
            let pre = zoom.min(k);
            let (w, h) = (
                (f64::from(preview.width()) * pre).round().max(1.0) as u32,
                (f64::from(preview.height()) * pre).round().max(1.0) as u32,
            );
            (crate::analysis::fingerprint::resize_rgb(&full, w, h), pre)
        } else {
            (preview, 1.0)
        };
        // Source pixels → preview → published, then refined at this resolution: a fraction of a
        // pixel of misalignment would look like texture changes everywhere.
        let t = Affine {
            m: m.transform.m.map(|r| r.map(|v| v / pre)),
            t: m.transform.t,
        };
        let t = refine_at(&source, original, t, &m.panel).unwrap_or(t);
        Ok(edits::detect(&source, original, &t, &m.panel))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(caption: &str) -> Vec<String> {
        check_caption(caption, &[])
            .into_iter()
            .filter(|f| f.severity == Severity::Fail)
            .map(|f| f.message)
            .collect()
    }

    #[test]
    fn each_claim_is_reported_once_as_written() {
        assert_eq!(
            claims("Amazing results after 2 sessions - guaranteed!"),
            ["the caption claims typical or guaranteed results (\"guaranteed\")"]
        );
        assert_eq!(
            claims("Typical results. Risk-free."),
            [
                "the caption claims typical or guaranteed results (\"typical results\")",
                "the caption claims typical or guaranteed results (\"risk-free\")"
            ]
        );
    }

    #[test]
    fn a_denied_claim_is_no_claim() {
        for caption in [
            "Results not guaranteed; individual results vary.",
            "We cannot guarantee results.",
            "These are not typical results.",
            "No guarantee is given.",
        ] {
            assert!(claims(caption).is_empty(), "{caption}");
        }
        // Denied once, made again later.
        assert_eq!(claims("Results not guaranteed. Guaranteed glow!").len(), 1);
    }
}
