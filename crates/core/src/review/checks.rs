//! The review of one published image: its sources and every check, as findings with a
//! severity, and the verdict.

use std::path::{Path, PathBuf};

use image::RgbImage;
use serde::{Deserialize, Serialize};

use super::edits::{self, EditKind};
use super::matching::{self, Affine, SourceMatch};
use crate::publish::provenance::{ManifestReading, ProvenanceReader};
use crate::records::publication::Publication;
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
    /// What to do about it, in one line (warnings and failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
}

/// A consent's scope as a reviewer sees it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ScopeSummary {
    pub scope: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn_at: Option<String>,
}

/// A source as reported.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SourceReport {
    pub capture_id: String,
    pub patient_ref: String,
    /// Where it is in the published image: "left", "right", "top", "bottom", or "whole".
    #[serde(default)]
    pub position: String,
    /// x, y, w, h in the published image.
    pub panel: [u32; 4],
    /// 0 (identical after alignment) to 1.
    pub distance: f64,
    pub consent_id: String,
    #[serde(default)]
    pub consent_signed_on: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent_expires_on: Option<String>,
    #[serde(default)]
    pub consent_scopes: Vec<ScopeSummary>,
    pub area: String,
    pub view: String,
    pub role: String,
    pub captured_at: String,
    /// Captures this panel could equally have come from (see
    /// [`SourceMatch::alternatives`]); empty when the panel names its capture exactly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub could_also_be: Vec<String>,
}

/// A region the edit check flags, in the published file's pixels.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct EditBox {
    /// x, y, w, h.
    pub bbox: [u32; 4],
    /// "smoothing", "local_change" or "overlay".
    pub kind: String,
    pub severity: Severity,
    pub capture_id: String,
    /// The region's evidence in units of the panel's noise threshold (summed over its blocks).
    #[serde(default)]
    pub evidence: f64,
}

/// The verdict on a published image.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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
    /// What to do, in one line: the most serious finding's action, or "no action".
    #[serde(default)]
    pub action: String,
    pub findings: Vec<Finding>,
    #[serde(default)]
    pub edits: Vec<EditBox>,
    pub caption: Option<String>,
    /// Comparability grade of a before/after pair, when there is one.
    pub pair_grade: Option<char>,
    /// A small JPEG of the published image for the HTML report (not serialised).
    #[serde(skip)]
    pub thumbnail: Option<Vec<u8>>,
}

impl ImageReport {
    /// The verdict and the action from the findings.
    pub fn conclude(&mut self) {
        self.verdict = match self.findings.iter().map(|f| f.severity).max() {
            Some(Severity::Fail) => Verdict::Fail,
            Some(Severity::Warn) => Verdict::Warn,
            _ => Verdict::Pass,
        };
        let worst = self
            .findings
            .iter()
            .filter(|f| f.severity != Severity::Info && f.action.is_some())
            // The first of equals: `max_by_key` keeps the last.
            .rev()
            .max_by_key(|f| (f.severity, std::cmp::Reverse(kind_rank(&f.kind))));
        self.action = match worst {
            Some(f) => f.action.clone().unwrap_or_default(),
            None if self.verdict == Verdict::Pass => "no action".into(),
            None => "check the findings".into(),
        };
    }
}

/// Which of two findings of the same severity names the action (take-downs first).
fn kind_rank(kind: &str) -> usize {
    [
        "takedown",
        "consent",
        "source",
        "file",
        "pairing",
        "edit",
        "comparability",
        "caption",
        "disclosure",
    ]
    .iter()
    .position(|k| *k == kind)
    .unwrap_or(usize::MAX / 2)
}

fn finding(kind: &str, severity: Severity, message: String) -> Finding {
    Finding {
        kind: kind.into(),
        severity,
        message,
        action: None,
    }
}

fn act(kind: &str, severity: Severity, message: String, action: String) -> Finding {
    Finding {
        kind: kind.into(),
        severity,
        message,
        action: Some(action),
    }
}

/// Where each panel sits, in reading order: two panels side by side are "left" and "right",
/// stacked "top" and "bottom"; one panel is "whole"; more are numbered.
pub fn panel_positions(panels: &[[u32; 4]]) -> Vec<String> {
    match panels {
        [_] => vec!["whole".into()],
        [a, b] => {
            let c = |p: &[u32; 4]| {
                (
                    f64::from(p[0]) + f64::from(p[2]) / 2.0,
                    f64::from(p[1]) + f64::from(p[3]) / 2.0,
                )
            };
            let ((ax, ay), (bx, by)) = (c(a), c(b));
            if (ax - bx).abs() >= (ay - by).abs() {
                let first_left = ax <= bx;
                vec![
                    if first_left { "left" } else { "right" }.into(),
                    if first_left { "right" } else { "left" }.into(),
                ]
            } else {
                let first_top = ay <= by;
                vec![
                    if first_top { "top" } else { "bottom" }.into(),
                    if first_top { "bottom" } else { "top" }.into(),
                ]
            }
        }
        _ => (1..=panels.len()).map(|i| format!("panel {i}")).collect(),
    }
}

/// Sort matches into reading order (left to right, or top to bottom when stacked).
fn reading_order(matches: &mut [SourceMatch]) {
    let spread = |f: fn(&[u32; 4]) -> u32| {
        let v: Vec<u32> = matches.iter().map(|m| f(&m.panel)).collect();
        v.iter().max().unwrap_or(&0) - v.iter().min().unwrap_or(&0)
    };
    if spread(|p| p[0]) >= spread(|p| p[1]) {
        matches.sort_by_key(|m| (m.panel[0], m.panel[1]));
    } else {
        matches.sort_by_key(|m| (m.panel[1], m.panel[0]));
    }
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
        out.push(act(
            "caption",
            Severity::Warn,
            "the caption has no variability statement (e.g. \"individual results vary\")".into(),
            "add a variability note to the caption (\"individual results vary\")".into(),
        ));
    }
    for said in CLAIMS.iter().filter_map(|c| claim_made(&lower, c)) {
        out.push(act(
            "caption",
            Severity::Fail,
            format!("the caption claims typical or guaranteed results (\"{said}\")"),
            format!("correct the caption: remove \"{said}\""),
        ));
    }
    for (label, words) in disclosures {
        if !words.iter().any(|w| lower.contains(w)) {
            out.push(act(
                "disclosure",
                Severity::Warn,
                format!("the caption does not disclose: {label}"),
                format!("add to the caption: {label}"),
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

/// What a review is asked to assume about the images it reads.
#[derive(Clone, Copy, Default)]
pub struct ReviewOptions<'a> {
    /// The images are not the clinic's own publications (a competitor's page, a web search):
    /// one with no source is a warning, not a failure for want of consent evidence.
    pub third_party: bool,
    /// Reads provenance manifests (C2PA, from `sameframe-interop`); without it they are not
    /// read.
    pub provenance: Option<&'a dyn ProvenanceReader>,
}

impl std::fmt::Debug for ReviewOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReviewOptions")
            .field("third_party", &self.third_party)
            .field("provenance", &self.provenance.is_some())
            .finish()
    }
}

/// What the checks of one image share.
struct Ctx<'a> {
    store: &'a Store,
    today: chrono::NaiveDate,
    findings: Vec<Finding>,
}

impl Store {
    /// Review one published image already decoded, prepared and matched (`matches`, from
    /// [`Store::find_sources`]).
    #[allow(clippy::too_many_arguments)]
    pub fn review_matched(
        &self,
        file: &str,
        sha256: Option<String>,
        published: &super::report::Published,
        caption: Option<String>,
        mut matches: Vec<SourceMatch>,
        opts: &ReviewOptions,
    ) -> Result<ImageReport, RecordError> {
        reading_order(&mut matches);
        let mut caps: Vec<Capture> = Vec::new();
        for m in &matches {
            caps.push(self.capture(&m.capture_id)?);
        }
        let positions = panel_positions(&matches.iter().map(|m| m.panel).collect::<Vec<_>>());
        let recorded = match &sha256 {
            Some(sha) => self.publications_of_file(sha)?,
            None => Vec::new(),
        };
        let mut cx = Ctx {
            store: self,
            today: crate::timefmt::today(),
            findings: Vec::new(),
        };
        let mut sources = Vec::new();
        for ((m, c), pos) in matches.iter().zip(&caps).zip(&positions) {
            sources.push(self.source_report(m, c, pos)?);
        }
        if matches.is_empty() {
            cx.unmatched(&recorded, opts)?;
        }
        // A file recorded only as teaching material is checked against the teaching scope.
        let scope = if !recorded.is_empty() && recorded.iter().all(|p| p.purpose == "teaching") {
            Scope::Teaching
        } else {
            Scope::Publication
        };
        // A panel that could be one of several captures is allowed out only if each of them
        // may be published.
        let mut possible = caps.clone();
        for m in &matches {
            for id in &m.alternatives {
                if !possible.iter().any(|c| &c.id == id) {
                    possible.push(self.capture(id)?);
                }
            }
        }
        cx.undecided(&matches, &positions);
        cx.consents(&possible, scope, &recorded)?;
        cx.provenance(&published.manifest, &caps)?;
        let pair_grade = cx.pairing(&caps, &positions)?;
        let disclosures = disclosures_of(&caps);
        cx.disclosure(&disclosures, caption.is_some());
        let edits = cx.edits(&matches, &caps, published)?;
        match &caption {
            Some(text) => cx.findings.extend(check_caption(text, &disclosures)),
            None if !caps.is_empty() => cx.findings.push(act(
                "caption",
                Severity::Warn,
                "no caption: the image carries no variability note".into(),
                "add a caption with a variability note (\"individual results vary\")".into(),
            )),
            None => {}
        }
        let mut report = ImageReport {
            file: file.to_string(),
            sha256,
            width: published.width,
            height: published.height,
            sources,
            verdict: Verdict::Pass,
            action: String::new(),
            findings: cx.findings,
            edits,
            caption,
            pair_grade,
            thumbnail: Some(matching::thumbnail_jpeg(&published.image, 360)),
        };
        report.conclude();
        Ok(report)
    }

    fn source_report(
        &self,
        m: &SourceMatch,
        c: &Capture,
        position: &str,
    ) -> Result<SourceReport, RecordError> {
        let consent = self.consent(&c.consent_id)?;
        Ok(SourceReport {
            capture_id: c.id.clone(),
            patient_ref: c.patient_ref.clone(),
            position: position.to_string(),
            panel: m.panel,
            distance: (m.distance() * 1000.0).round() / 1000.0,
            consent_id: c.consent_id.clone(),
            consent_signed_on: consent.signed_on.clone(),
            consent_expires_on: consent.expires_on.clone(),
            consent_scopes: consent
                .scopes
                .iter()
                .map(|s| ScopeSummary {
                    scope: s.scope.to_string(),
                    status: s.status.clone(),
                    withdrawn_at: s.withdrawn_at.clone(),
                })
                .collect(),
            area: c.area.to_string(),
            view: c.view.to_string(),
            role: c.role.to_string(),
            captured_at: c.captured_at.clone(),
            could_also_be: m.alternatives.clone(),
        })
    }
    /// Local edits of a matched panel, compared at the published resolution: the source is
    /// resampled to the panel's scale first (the capture's original when the preview is
    /// coarser than the panel, so that no detail is missing from it; an area average when it
    /// is finer, so that none is aliased into it).
    fn edits_of(
        &self,
        m: &SourceMatch,
        c: &Capture,
        original: &RgbImage,
    ) -> Result<edits::EditCheck, RecordError> {
        let preview = self.preview(&c.id)?;
        // Published pixels per preview pixel.
        let zoom = m.transform.scale();
        let (source, pre) = if zoom > 1.05 {
            let full = self.capture_image(&c.id)?.to_rgb8();
            let k = f64::from(full.width()) / f64::from(preview.width());
            let pre = zoom.min(k);
            (edits::register::resize_by(&full, pre / k), pre)
        } else if zoom < 0.95 {
            (edits::register::resize_by(&preview, zoom), zoom)
        } else {
            (preview, 1.0)
        };
        // Source pixels → preview → published.
        let t = Affine {
            m: m.transform.m.map(|r| r.map(|v| v / pre)),
            t: m.transform.t,
        };
        Ok(edits::register::check(&source, original, t, &m.panel))
    }
}

/// A short reason for the action line: "withdrawn on 2026-11-02", "not granted"…
fn refusal_short(r: &crate::records::consent::Refusal) -> String {
    use crate::records::consent::Refusal;
    match r {
        Refusal::NotGranted => "not granted".into(),
        Refusal::Withdrawn { at } => format!("withdrawn on {}", at.get(..10).unwrap_or(at)),
        Refusal::Expired { on } => format!("expired after {on}"),
        Refusal::NotYetSigned { on } => format!("only signed on {on}"),
    }
}

/// The confounders the captures' records ask to disclose: (label, caption keywords).
fn disclosures_of(caps: &[Capture]) -> Vec<(String, Vec<String>)> {
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    for c in caps {
        for k in c.confounders.iter().filter(|k| k.disclose) {
            if !out.iter().any(|(l, _)| *l == k.label) {
                out.push((k.label.clone(), keywords(&k.label, &k.key)));
            }
        }
    }
    out
}

impl Ctx<'_> {
    fn push(&mut self, f: Finding) {
        self.findings.push(f);
    }

    /// What the file's provenance manifest says, checked against the pixels' sources.
    fn provenance(&mut self, m: &ManifestReading, caps: &[Capture]) -> Result<(), RecordError> {
        let found: Vec<&str> = caps.iter().map(|c| c.id.as_str()).collect();
        let f = match m {
            ManifestReading::None => return Ok(()),
            ManifestReading::Invalid { altered: true, why } => act(
                "provenance",
                Severity::Fail,
                format!(
                    "file altered after signing: its provenance manifest no longer matches its pixels ({why})"
                ),
                "take down: publish the copy the kit prepared, unaltered (or prepare a new one)"
                    .into(),
            ),
            ManifestReading::Invalid {
                altered: false,
                why,
            } => act(
                "provenance",
                Severity::Fail,
                format!("its provenance manifest does not verify ({why})"),
                "take down: publish a copy prepared and signed by the kit".into(),
            ),
            ManifestReading::Valid {
                signer,
                ours: false,
                ..
            } => act(
                "provenance",
                Severity::Warn,
                format!("signed by {signer}, not by this clinic's certificate"),
                "check who made this copy".into(),
            ),
            ManifestReading::Valid {
                signer,
                claim: None,
                ..
            } => act(
                "provenance",
                Severity::Warn,
                format!("signed by {signer} (this clinic), but its manifest names no captures"),
                "prepare the copy with `sameframe publish prepare`".into(),
            ),
            ManifestReading::Valid {
                signer,
                claim: Some(c),
                ..
            } => {
                let named: Vec<&str> = c.captures.iter().map(|k| k.capture_id.as_str()).collect();
                let missing: Vec<&str> = named
                    .iter()
                    .copied()
                    .filter(|n| !found.contains(n))
                    .collect();
                let extra: Vec<&str> = found
                    .iter()
                    .copied()
                    .filter(|n| !named.contains(n))
                    .collect();
                if c.store_id != self.store.store_id() {
                    act(
                        "provenance",
                        Severity::Warn,
                        format!(
                            "signed by {signer} for another store ({}), not this one",
                            c.store_id
                        ),
                        "review it against the store it was prepared from".into(),
                    )
                } else if missing.is_empty() && extra.is_empty() {
                    Finding {
                        kind: "provenance".into(),
                        severity: Severity::Info,
                        message: format!(
                            "signed by {signer}: prepared as publication {} for {} from {}; the pixels agree",
                            c.publication_id,
                            c.channel,
                            named.join(", ")
                        ),
                        action: None,
                    }
                } else {
                    let mut why = Vec::new();
                    if !missing.is_empty() {
                        why.push(format!(
                            "manifest says {}, pixels do not match",
                            missing.join(", ")
                        ));
                    }
                    if !extra.is_empty() {
                        why.push(format!(
                            "pixels show {}, which the manifest does not name",
                            extra.join(", ")
                        ));
                    }
                    act(
                        "provenance",
                        Severity::Fail,
                        why.join("; "),
                        "take down: the copy is not what the kit prepared".into(),
                    )
                }
            }
        };
        self.push(f);
        Ok(())
    }

    /// An image no stored capture matches: a file recorded as not a patient photo, the exact
    /// file of a recorded publication whose patient's photos are gone (erased after a
    /// withdrawal), or an image with no consent evidence.
    fn unmatched(
        &mut self,
        recorded: &[Publication],
        opts: &ReviewOptions,
    ) -> Result<(), RecordError> {
        if let Some(p) = recorded.iter().find(|p| p.not_patient) {
            self.push(finding(
                "source",
                Severity::Info,
                format!(
                    "marked as not a patient photo (publication {}{})",
                    p.id,
                    p.note
                        .as_ref()
                        .map(|n| format!(": {n}"))
                        .unwrap_or_default()
                ),
            ));
            return Ok(());
        }
        let shown: Vec<&Publication> = recorded.iter().filter(|p| !p.sources.is_empty()).collect();
        if !shown.is_empty() {
            for p in shown {
                self.recorded_use_without_captures(p)?;
            }
            return Ok(());
        }
        if opts.third_party {
            self.push(act(
                "source",
                Severity::Warn,
                "no source: no stored capture matches this image (not a clinic photo, or not imported)".into(),
                "check where the image comes from".into(),
            ));
        } else {
            self.push(act(
                "source",
                Severity::Fail,
                "no consent evidence: no stored capture and no recorded publication matches this image of the clinic's".into(),
                "find the patient's consent and import the source photo, or take the image down; if it is not a patient photo, mark it (`sameframe publish record FILE --not-patient --note …`)".into(),
            ));
        }
        Ok(())
    }

    /// A recorded publication whose captures are no longer in the store.
    fn recorded_use_without_captures(&mut self, p: &Publication) -> Result<(), RecordError> {
        let scope = if p.purpose == "teaching" {
            Scope::Teaching
        } else {
            Scope::Publication
        };
        let mut seen = Vec::new();
        for src in &p.sources {
            if seen.contains(&&src.consent_id) {
                continue;
            }
            seen.push(&src.consent_id);
            let consent = self.store.consent(&src.consent_id)?;
            let who = self
                .store
                .patient_by_id(&src.patient_id)
                .map_or_else(|_| src.patient_id.clone(), |pt| pt.reference);
            match consent.permits(scope, self.today) {
                Err(r) => self.push(act(
                    "takedown",
                    Severity::Fail,
                    format!(
                        "this is the exact file of publication {} ({} on {}), which shows patient {who}; consent {} for {scope}: {r}; the patient's photos are no longer in the store",
                        p.id, p.channel, p.date, consent.id
                    ),
                    format!("take down: {scope} consent for {who} {}", refusal_short(&r)),
                )),
                Ok(()) => self.push(act(
                    "source",
                    Severity::Warn,
                    format!(
                        "this is the exact file of publication {} ({} on {}), but its captures are no longer in the store",
                        p.id, p.channel, p.date
                    ),
                    "run `sameframe verify`: the store lost captures a publication names".into(),
                )),
            }
        }
        self.takedown_state(p);
        Ok(())
    }

    /// The take-down of a recorded publication, as a finding.
    fn takedown_state(&mut self, p: &Publication) {
        let place = format!(
            "{}{}",
            p.channel,
            p.url
                .as_ref()
                .map(|u| format!(" ({u})"))
                .unwrap_or_default()
        );
        let (message, action) = match &p.takedown {
            Some(t) if t.is_open() => (
                format!(
                    "take down from {place}, published {}: take-down {} open since {}, due {}{}",
                    p.date,
                    p.id,
                    t.requested_at.get(..10).unwrap_or(&t.requested_at),
                    t.due,
                    if t.is_overdue(self.today) {
                        " — OVERDUE"
                    } else {
                        ""
                    }
                ),
                crate::records::publication::takedown_instruction(p),
            ),
            Some(t) => (
                format!(
                    "take-down {} from {place} was closed on {} by {}, yet this file is being reviewed: check it is gone",
                    p.id,
                    t.done_at.as_deref().unwrap_or("?"),
                    t.done_by.as_deref().unwrap_or("?")
                ),
                format!("check the image is gone from {place}"),
            ),
            None => (
                format!("take down from {place}, published {}", p.date),
                crate::records::publication::takedown_instruction(p),
            ),
        };
        self.push(act("takedown", Severity::Fail, message, action));
    }

    /// Each source's consent must cover `scope` today; one about to expire is a warning.
    /// Panels whose pixels fit several captures equally: named with their doubt, never as
    /// a confident attribution (the dates, order and grade that follow are the named one's).
    fn undecided(&mut self, matches: &[SourceMatch], positions: &[String]) {
        for (m, pos) in matches.iter().zip(positions) {
            if m.alternatives.is_empty() {
                continue;
            }
            let all: Vec<&str> = std::iter::once(m.capture_id.as_str())
                .chain(m.alternatives.iter().map(String::as_str))
                .collect();
            self.push(act(
                "source",
                Severity::Warn,
                format!(
                    "cannot tell which capture the {pos} panel comes from: one of {} (their pixels differ too little in this image to tell them apart); dates, order and grade are given for {} and may be another's",
                    all.join(", "),
                    m.capture_id
                ),
                format!(
                    "check which of {} was published; publication copies made with `publish prepare` carry a signed manifest naming it",
                    all.join(", ")
                ),
            ));
        }
    }

    fn consents(
        &mut self,
        caps: &[Capture],
        scope: Scope,
        recorded: &[Publication],
    ) -> Result<(), RecordError> {
        let warn_days = self
            .store
            .setting_u32("review.consent_expiry_warning_days")?;
        let mut failed = false;
        for c in caps {
            let consent = self.store.consent(&c.consent_id)?;
            match consent.permits(scope, self.today) {
                Ok(()) => {
                    self.push(finding(
                        "consent",
                        Severity::Info,
                        format!("capture {}: consent {} allows {scope}", c.id, consent.id),
                    ));
                    self.expiry(&consent, warn_days);
                }
                Err(refusal) => {
                    let other = self
                        .store
                        .consents_of_patient_id(&c.patient_id)?
                        .into_iter()
                        .find(|o| o.id != consent.id && o.permits(scope, self.today).is_ok());
                    if let Some(o) = other {
                        self.push(finding(
                            "consent",
                            Severity::Info,
                            format!("capture {}: consent {} does not allow {scope} ({refusal}), but the patient's consent {} does", c.id, consent.id, o.id),
                        ));
                        continue;
                    }
                    failed = true;
                    self.push(act(
                        "consent",
                        Severity::Fail,
                        format!("capture {} of patient {}: consent {} does not allow {scope}: {refusal}", c.id, c.patient_ref, consent.id),
                        format!("take down: no {scope} consent for {} ({})", c.patient_ref, refusal_short(&refusal)),
                    ));
                }
            }
        }
        if failed {
            for p in recorded {
                self.takedown_state(p);
            }
        }
        Ok(())
    }

    /// A consent that expires within `days` of today.
    fn expiry(&mut self, consent: &crate::records::Consent, days: u32) {
        let Some(exp) = consent
            .expires_on
            .as_deref()
            .and_then(crate::timefmt::parse_date)
        else {
            return;
        };
        let left = (exp - self.today).num_days();
        if (0..=i64::from(days)).contains(&left) {
            self.push(act(
                "consent",
                Severity::Warn,
                format!("consent {} expires on {} (in {left} day(s)); the image must come down then unless it is renewed", consent.id, crate::timefmt::fmt_date(exp)),
                format!("renew consent {} before {}, or plan the take-down", consent.id, crate::timefmt::fmt_date(exp)),
            ));
        }
    }

    /// Before/after panels: the same patient, area and view, in date order, comparable.
    fn pairing(
        &mut self,
        caps: &[Capture],
        positions: &[String],
    ) -> Result<Option<char>, RecordError> {
        let ([a, b, ..], [pa, pb, ..]) = (caps, positions) else {
            return Ok(None);
        };
        if a.patient_id != b.patient_id {
            self.push(act(
                "pairing",
                Severity::Fail,
                format!("the {pa} panel ({}, patient {}) and the {pb} panel ({}, patient {}) show different patients", a.id, a.patient_ref, b.id, b.patient_ref),
                "take down: a before/after must show one patient".into(),
            ));
            return Ok(None);
        }
        if a.area != b.area || a.view != b.view {
            self.push(act(
                "pairing",
                Severity::Warn,
                format!(
                    "the {pa} panel is {}/{}, the {pb} panel {}/{}: different areas or views",
                    a.area, a.view, b.area, b.view
                ),
                "pair photos of the same area and view".into(),
            ));
        }
        let (da, db) = (
            a.captured_at.get(..10).unwrap_or(&a.captured_at),
            b.captured_at.get(..10).unwrap_or(&b.captured_at),
        );
        if a.captured_at > b.captured_at {
            self.push(act(
                "pairing",
                Severity::Warn,
                format!("the {pa} panel ({}, taken {da}) is the later photo and the {pb} panel ({}, taken {db}) the earlier: \"after\" is shown first, where readers look for \"before\"", a.id, b.id),
                format!("swap the panels or label them: the {pb} panel is the before photo"),
            ));
        } else if da == db {
            self.push(act(
                "pairing",
                Severity::Warn,
                format!("both panels were taken on {da}: not a before/after over time"),
                "pair the baseline with a follow-up from a later visit".into(),
            ));
        } else {
            self.push(finding(
                "pairing",
                Severity::Info,
                format!(
                    "before: {pa} panel {} ({da}); after: {pb} panel {} ({db}); same patient",
                    a.id, b.id
                ),
            ));
        }
        let (first, second) = if a.captured_at <= b.captured_at {
            (a, b)
        } else {
            (b, a)
        };
        let g = self.store.grade_pair(&first.id, &second.id)?;
        let fail_at = super::compare::ComparabilityTolerances::load(self.store.calibration())?
            .published_fail_grade;
        let reasons = g.reasons();
        let why = if reasons.is_empty() {
            String::new()
        } else {
            format!(": {}", reasons.join("; "))
        };
        let f = if g.grade >= fail_at {
            act(
                "comparability",
                Severity::Fail,
                format!(
                    "comparability grade {} (fails from {fail_at}){why}",
                    g.grade
                ),
                format!(
                    "take down or replace: the before/after is not comparable (grade {})",
                    g.grade
                ),
            )
        } else if g.grade > 'B' {
            act(
                "comparability",
                Severity::Warn,
                format!("comparability grade {}{why}", g.grade),
                format!(
                    "disclose the differences or choose a better-matched pair (grade {})",
                    g.grade
                ),
            )
        } else {
            finding(
                "comparability",
                Severity::Info,
                format!("comparability grade {}{why}", g.grade),
            )
        };
        self.push(f);
        if caps.len() > 2 {
            self.push(finding(
                "pairing",
                Severity::Info,
                format!("{} panels; the first two are compared", caps.len()),
            ));
        }
        Ok(Some(g.grade))
    }

    /// What the records ask to disclose.
    fn disclosure(&mut self, disclosures: &[(String, Vec<String>)], captioned: bool) {
        if disclosures.is_empty() {
            return;
        }
        let labels = disclosures
            .iter()
            .map(|(l, _)| l.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        if captioned {
            self.push(finding(
                "disclosure",
                Severity::Info,
                format!("the publication must disclose: {labels}"),
            ));
        } else {
            self.push(act(
                "disclosure",
                Severity::Warn,
                format!("the publication must disclose: {labels}, and it has no caption"),
                format!("add to the caption: {labels}"),
            ));
        }
    }

    /// Local edits of each panel, as findings and as boxes in the file's pixels: a failure
    /// when the evidence is beyond what honest copies show, a warning to look when it is not,
    /// and a note of what the check could not see.
    fn edits(
        &mut self,
        matches: &[SourceMatch],
        caps: &[Capture],
        published: &super::report::Published,
    ) -> Result<Vec<EditBox>, RecordError> {
        let mut boxes = Vec::new();
        for (m, c) in matches.iter().zip(caps) {
            let check = self.store.edits_of(m, c, &published.image)?;
            for region in &check.regions {
                let b = region
                    .bbox
                    .map(|v| (f64::from(v) * published.scale()).round() as u32);
                let sev = match region.kind {
                    EditKind::Overlay => Severity::Info,
                    _ if region.certain => Severity::Fail,
                    _ => Severity::Warn,
                };
                let n = boxes.len() + 1;
                self.push(edit_finding(region.kind, sev, &c.id, n));
                boxes.push(EditBox {
                    bbox: b,
                    kind: edit_kind_name(region.kind).into(),
                    severity: sev,
                    capture_id: c.id.clone(),
                    evidence: (region.strength * 10.0).round() / 10.0,
                });
            }
            if let Some(note) = coverage_note(&check.coverage, &c.id) {
                self.push(finding("edit", Severity::Info, note));
            }
        }
        Ok(boxes)
    }
}

fn edit_kind_name(kind: EditKind) -> &'static str {
    match kind {
        EditKind::Smoothing => "smoothing",
        EditKind::LocalChange => "local_change",
        EditKind::Overlay => "overlay",
    }
}

/// The finding for one edit region (box `n` of the report).
fn edit_finding(kind: EditKind, sev: Severity, capture: &str, n: usize) -> Finding {
    let what = match kind {
        EditKind::Smoothing => "local smoothing (detail removed)",
        EditKind::LocalChange => "local change (cloning, liquify or retouching)",
        EditKind::Overlay => "overlay (text, logo or watermark)",
    };
    let message = format!("{what} in the panel of {capture} (box {n} in the report)");
    match sev {
        Severity::Fail => act(
            "edit",
            sev,
            message,
            "take down: altered beyond crop, resize and whole-frame colour".into(),
        ),
        Severity::Warn => act(
            "edit",
            sev,
            format!(
                "possible {message}: the difference is above the copy's noise but not beyond what honest copies show"
            ),
            format!("compare box {n} with the capture by eye"),
        ),
        Severity::Info => finding("edit", sev, message),
    }
}

/// "cannot tell" for the parts of a panel whose pixels carry no evidence, when they matter.
fn coverage_note(c: &edits::Coverage, capture: &str) -> Option<String> {
    let pct = |n: u32| (100.0 * f64::from(n) / f64::from(c.blocks.max(1))).round();
    let mut parts = Vec::new();
    for (n, what) in [
        (c.overlay, "under overlays"),
        (c.clipped, "clipped"),
        (c.edge, "outside the capture or at the border"),
    ] {
        if pct(n) >= 5.0 {
            parts.push(format!("{} % {what}", pct(n)));
        }
    }
    if pct(c.flat) >= 25.0 {
        parts.push(format!(
            "smoothing cannot show in its flat {} %",
            pct(c.flat)
        ));
    }
    let overlaid = if c.overlaid() {
        "; an overlay lies across it, so its other findings are only worth a look"
    } else {
        ""
    };
    (!parts.is_empty()).then(|| {
        format!(
            "edit check of the panel of {capture}: cannot tell in {}{overlaid}",
            parts.join(", ")
        )
    })
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
