//! The patient's side of a visit: the immediate skin response, the pain reported, the outcome
//! at follow-up and adverse events.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Body, TreatmentRecord, invalid, line, note};
use crate::records::{Capture, RecordError, Visit};
use crate::store::Store;
use crate::timefmt::fmt_date;

/// How marked a response or event is.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    None,
    Mild,
    Moderate,
    Severe,
}

impl Severity {
    pub const ALL: [Severity; 4] = [
        Severity::None,
        Severity::Mild,
        Severity::Moderate,
        Severity::Severe,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::None => "none",
            Severity::Mild => "mild",
            Severity::Moderate => "moderate",
            Severity::Severe => "severe",
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Severity::ALL
            .into_iter()
            .find(|v| v.as_str() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| format!("unknown severity {s:?} (none, mild, moderate or severe)"))
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One observed response.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ResponseFinding {
    pub response: String,
    pub label: String,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_id: Option<String>,
    /// The clinic's warning for this response (blanching), when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// The immediate skin response at the end of a visit.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct SkinResponse {
    pub findings: Vec<ResponseFinding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl SkinResponse {
    /// The warnings of responses actually present (severity above none).
    pub fn warnings(&self) -> Vec<String> {
        self.findings
            .iter()
            .filter(|f| f.severity > Severity::None)
            .filter_map(|f| {
                f.warning
                    .as_ref()
                    .map(|w| format!("{} ({}): {w}", f.label, f.severity))
            })
            .collect()
    }
}

/// A response as given: `KEY=SEVERITY` or `KEY=SEVERITY:CAPTURE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FindingInput {
    pub response: String,
    pub severity: Severity,
    pub capture: Option<String>,
}

impl std::str::FromStr for FindingInput {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (key, rest) = s
            .split_once('=')
            .ok_or_else(|| format!("{s:?}: give KEY=SEVERITY (e.g. erythema=mild)"))?;
        let (sev, capture) = match rest.split_once(':') {
            Some((v, c)) => (v, Some(c.trim().to_string()).filter(|c| !c.is_empty())),
            None => (rest, None),
        };
        Ok(FindingInput {
            response: key.trim().to_string(),
            severity: sev.parse()?,
            capture,
        })
    }
}

/// When pain was reported.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PainWhen {
    During,
    End,
}

impl std::str::FromStr for PainWhen {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "during" => Ok(PainWhen::During),
            "end" | "end_of_session" => Ok(PainWhen::End),
            other => Err(format!("unknown time {other:?} (during or end)")),
        }
    }
}

impl std::fmt::Display for PainWhen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PainWhen::During => "during the session",
            PainWhen::End => "at the end of the session",
        })
    }
}

/// Pain the patient reported, on the 0–10 numeric rating scale.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PainReport {
    pub score: u8,
    pub when: PainWhen,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Global Aesthetic Improvement Scale, 1 (very much improved) to 5 (worse).
pub const GAIS: [&str; 5] = [
    "very much improved",
    "much improved",
    "improved",
    "no change",
    "worse",
];

/// A GAIS grade from its number (1–5) or its words.
pub fn parse_gais(s: &str) -> Result<u8, String> {
    let t = s.trim().to_ascii_lowercase().replace(['_', '-'], " ");
    if let Ok(n) = t.parse::<u8>()
        && (1..=5).contains(&n)
    {
        return Ok(n);
    }
    GAIS.iter()
        .position(|g| *g == t)
        .map(|i| i as u8 + 1)
        .ok_or_else(|| {
            format!(
                "{s:?} is not a GAIS grade (1 to 5, or: {})",
                GAIS.join(", ")
            )
        })
}

/// The outcome recorded at a follow-up.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Outcome {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_gais: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clinician_gais: Option<u8>,
    /// Patient satisfaction, 0 (not at all) to 10 (completely).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub satisfaction: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The clinic's definition of success when the outcome was recorded.
    pub success_definition: String,
}

/// GAIS words for a grade.
pub fn gais_label(g: u8) -> &'static str {
    GAIS.get(usize::from(g.saturating_sub(1)))
        .copied()
        .unwrap_or("?")
}

/// An adverse event after treatment.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct AdverseEvent {
    pub onset: String,
    pub description: String,
    pub severity: Severity,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    pub escalated: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lot: Option<String>,
    #[serde(default)]
    pub capture_ids: Vec<String>,
}

/// An adverse event to record.
#[derive(Clone, Debug)]
pub struct NewAdverse<'a> {
    pub visit_id: &'a str,
    pub onset: NaiveDate,
    pub description: &'a str,
    pub severity: Severity,
    pub action: Option<&'a str>,
    pub escalated: bool,
    pub lot: Option<&'a str>,
    pub captures: &'a [String],
}

impl Store {
    /// A capture of the visit's patient, or a clear refusal.
    pub(crate) fn capture_of_patient(
        &self,
        visit: &Visit,
        id: &str,
    ) -> Result<Capture, RecordError> {
        let c = self.capture(id)?;
        if c.patient_id != visit.patient_id {
            return Err(invalid(
                &format!("capture {}", c.id),
                format!("it is a photo of another patient than visit {}'s", visit.id),
            ));
        }
        Ok(c)
    }

    /// Record (or replace) the immediate skin response of a visit.
    pub fn record_response(
        &self,
        visit_id: &str,
        findings: &[FindingInput],
        note_text: Option<&str>,
    ) -> Result<TreatmentRecord, RecordError> {
        let visit = self.visit(visit_id)?;
        let cfg = self.treatment_config()?;
        if findings.is_empty() {
            return Err(invalid(
                "skin response",
                "give at least one response (e.g. erythema=mild, or erythema=none)",
            ));
        }
        let mut out: Vec<ResponseFinding> = Vec::new();
        let mut capture = None;
        for f in findings {
            let def = cfg
                .response(&f.response)
                .map_err(|why| invalid("skin response", why))?;
            if let Some(c) = &f.capture {
                capture = Some(self.capture_of_patient(&visit, c)?);
            }
            let finding = ResponseFinding {
                response: def.key.clone(),
                label: def.label.clone(),
                severity: f.severity,
                capture_id: f
                    .capture
                    .as_ref()
                    .and(capture.as_ref().map(|c| c.id.clone())),
                warning: def.warning.then(|| {
                    def.warning_text
                        .clone()
                        .unwrap_or_else(|| format!("{} is a warning sign", def.label))
                }),
            };
            match out.iter_mut().find(|o| o.response == finding.response) {
                Some(o) => *o = finding,
                None => out.push(finding),
            }
        }
        let body = SkinResponse {
            findings: out,
            note: note("--note", note_text)?,
        };
        let details = json!({
            "findings": body.findings.iter().map(|f| json!({"response": f.response, "severity": f.severity})).collect::<Vec<_>>(),
            "warning": !body.warnings().is_empty(),
        });
        let consent = self.clinical_consent(&visit, capture.as_ref())?;
        let old = self
            .treatment_records(&visit.id)?
            .into_iter()
            .find(|r| matches!(r.body, Body::Response(_)));
        match old {
            Some(o) => self.replace_treatment(&o, consent, Body::Response(body), details),
            None => self.add_treatment(&visit, consent, Body::Response(body), details),
        }
    }

    /// Record the pain a patient reported at a visit (0–10).
    pub fn record_pain(
        &self,
        visit_id: &str,
        score: i64,
        when: PainWhen,
        comment: Option<&str>,
    ) -> Result<TreatmentRecord, RecordError> {
        let visit = self.visit(visit_id)?;
        if !(0..=10).contains(&score) {
            return Err(invalid(
                "pain score",
                format!("{score} is outside the 0–10 numeric rating scale"),
            ));
        }
        let body = PainReport {
            score: score as u8,
            when,
            comment: note("--comment", comment)?,
        };
        let consent = self.clinical_consent(&visit, None)?;
        let details = json!({ "score": body.score, "when": body.when });
        self.add_treatment(&visit, consent, Body::Pain(body), details)
    }

    /// Record the outcome at a follow-up visit.
    pub fn record_outcome(
        &self,
        visit_id: &str,
        patient_gais: Option<u8>,
        clinician_gais: Option<u8>,
        satisfaction: Option<i64>,
        text: Option<&str>,
    ) -> Result<TreatmentRecord, RecordError> {
        let visit = self.visit(visit_id)?;
        for (what, g) in [
            ("patient GAIS", patient_gais),
            ("clinician GAIS", clinician_gais),
        ] {
            if let Some(g) = g
                && !(1..=5).contains(&g)
            {
                return Err(invalid(what, format!("{g} is not a GAIS grade (1 to 5)")));
            }
        }
        if patient_gais.is_none() && clinician_gais.is_none() {
            return Err(invalid(
                "outcome",
                "give the patient's or the clinician's GAIS grade",
            ));
        }
        if let Some(s) = satisfaction
            && !(0..=10).contains(&s)
        {
            return Err(invalid(
                "satisfaction",
                format!("{s} is outside 0 (not at all) to 10 (completely)"),
            ));
        }
        let body = Outcome {
            patient_gais,
            clinician_gais,
            satisfaction: satisfaction.map(|s| s as u8),
            text: note("--text", text)?,
            success_definition: self.treatment_config()?.treatment.success,
        };
        let consent = self.clinical_consent(&visit, None)?;
        let details = json!({ "patient_gais": patient_gais, "clinician_gais": clinician_gais,
                              "satisfaction": body.satisfaction });
        self.add_treatment(&visit, consent, Body::Outcome(body), details)
    }

    /// Record an adverse event linked to a visit (and a lot and captures of it).
    pub fn add_adverse(&self, new: NewAdverse<'_>) -> Result<TreatmentRecord, RecordError> {
        let visit = self.visit(new.visit_id)?;
        crate::timefmt::check_not_future(new.onset).map_err(|why| invalid("onset", why))?;
        if fmt_date(new.onset) < visit.date {
            return Err(invalid(
                "onset",
                format!(
                    "{} is before the visit date {}",
                    fmt_date(new.onset),
                    visit.date
                ),
            ));
        }
        let description = line("--description", new.description)?;
        if description.is_empty() {
            return Err(invalid("--description", "describe the event"));
        }
        let t = self.visit_treatment(&visit.id)?;
        let lot = match new.lot.map(str::trim).filter(|l| !l.is_empty()) {
            Some(l)
                if t.products.iter().any(|(_, p)| p.lot == l)
                    || visit.lot.as_deref() == Some(l) =>
            {
                Some(l.to_string())
            }
            Some(l) => {
                return Err(invalid(
                    &format!("lot {l}"),
                    format!("it was not recorded at visit {}", visit.id),
                ));
            }
            None => None,
        };
        let mut captures = Vec::new();
        for c in new.captures {
            captures.push(self.capture_of_patient(&visit, c)?.id);
        }
        let body = AdverseEvent {
            onset: fmt_date(new.onset),
            description,
            severity: new.severity,
            action: new.action.map(|a| line("--action", a)).transpose()?,
            escalated: new.escalated,
            lot,
            capture_ids: captures,
        };
        let details = json!({ "severity": body.severity, "escalated": body.escalated,
                              "lot": body.lot, "captures": body.capture_ids });
        self.add_treatment(&visit, None, Body::Adverse(body), details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_and_grades_parse_with_clear_errors() {
        let f: FindingInput = "blanching=moderate:cap_1".parse().unwrap();
        assert_eq!(f.severity, Severity::Moderate);
        assert_eq!(f.capture.as_deref(), Some("cap_1"));
        assert!(
            "erythema"
                .parse::<FindingInput>()
                .unwrap_err()
                .contains("KEY=SEVERITY")
        );
        assert!(
            "erythema=huge"
                .parse::<FindingInput>()
                .unwrap_err()
                .contains("huge")
        );
        assert_eq!(parse_gais("much improved"), Ok(2));
        assert_eq!(parse_gais("5"), Ok(5));
        assert!(parse_gais("6").is_err());
        assert_eq!(gais_label(3), "improved");
    }
}
