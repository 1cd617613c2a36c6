//! What was done to the skin at a visit: the products and lots used, the area map with its
//! injection points, the immediate skin response, the pain the patient reported, the outcome
//! at follow-up, and adverse events.
//!
//! Each is a treatment record: a sealed row of the visit, bound to the audit chain, and
//! attributed to the consent whose clinical record holds it (the consent of the capture it
//! refers to, else of the photos taken at the visit, else the patient's consent in force on the
//! visit date). A withdrawal that purges that clinical record removes the maps, responses, pain
//! reports and outcomes with it; products and adverse events stay with the visit, as lot
//! recalls and pharmacovigilance need them.

pub mod care;
pub mod config;
pub mod map;
pub mod products;
pub mod summary;
pub mod trace;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Capture, RecordError, Visit};
use crate::ids::new_id;
use crate::records::Scope;
use crate::store::repo::TreatmentRow;
use crate::store::seal::check_column;
use crate::store::{Store, StoreError, Tx};

pub use care::{AdverseEvent, Outcome, PainReport, ResponseFinding, SkinResponse};
pub use config::TreatmentConfig;
pub use map::{InjectionPoint, MapZone, TreatmentMap};
pub use products::ProductUse;

/// The body of a treatment record, by kind.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Body {
    Product(ProductUse),
    Map(TreatmentMap),
    Response(SkinResponse),
    Pain(PainReport),
    Outcome(Outcome),
    Adverse(AdverseEvent),
}

impl Body {
    /// The kind as stored in the row.
    pub fn kind(&self) -> &'static str {
        match self {
            Body::Product(_) => "product",
            Body::Map(_) => "map",
            Body::Response(_) => "response",
            Body::Pain(_) => "pain",
            Body::Outcome(_) => "outcome",
            Body::Adverse(_) => "adverse",
        }
    }

    /// Whether a withdrawal that purges the consent's clinical record removes this record.
    pub fn purged_with_clinical_record(&self) -> bool {
        matches!(
            self,
            Body::Map(_) | Body::Response(_) | Body::Pain(_) | Body::Outcome(_)
        )
    }
}

/// A treatment record as stored.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TreatmentRecord {
    #[serde(rename = "record_id")]
    pub id: String,
    pub visit_id: String,
    pub patient_id: String,
    pub consent_id: Option<String>,
    pub recorded_at: String,
    pub recorded_by: String,
    #[serde(flatten)]
    pub body: Body,
}

/// Everything recorded about a visit's treatment.
#[derive(Clone, Debug, Default, Serialize)]
pub struct VisitTreatment {
    pub products: Vec<(String, ProductUse)>,
    pub maps: Vec<(String, TreatmentMap)>,
    pub responses: Vec<(String, SkinResponse)>,
    pub pain: Vec<(String, PainReport)>,
    pub outcomes: Vec<(String, Outcome)>,
    pub adverse: Vec<(String, AdverseEvent)>,
}

/// Text a person typed into a treatment record, trimmed and checked (one line).
pub(crate) fn line(what: &str, s: &str) -> Result<String, RecordError> {
    let t = s.trim();
    super::consent::check_text(what, t)?;
    if t.chars().count() > 500 {
        return Err(RecordError::Invalid {
            what: what.into(),
            why: "longer than 500 characters".into(),
        });
    }
    Ok(t.to_string())
}

/// An optional note (line breaks kept), trimmed and checked; empty is none.
pub(crate) fn note(what: &str, s: Option<&str>) -> Result<Option<String>, RecordError> {
    let Some(t) = s.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    super::consent::check_note(what, t)?;
    if t.chars().count() > 4000 {
        return Err(RecordError::Invalid {
            what: what.into(),
            why: "longer than 4000 characters".into(),
        });
    }
    Ok(Some(t.to_string()))
}

pub(crate) fn invalid(what: &str, why: impl Into<String>) -> RecordError {
    RecordError::Invalid {
        what: what.into(),
        why: why.into(),
    }
}

impl Store {
    /// The clinic's treatment-record rules.
    pub fn treatment_config(&self) -> Result<TreatmentConfig, RecordError> {
        Ok(TreatmentConfig::load(self.calibration())?)
    }

    /// A new record of `visit` (not yet written).
    pub(crate) fn new_treatment(
        &self,
        visit: &Visit,
        consent_id: Option<String>,
        body: Body,
    ) -> Result<TreatmentRecord, RecordError> {
        Ok(TreatmentRecord {
            id: new_id("trt")?,
            visit_id: visit.id.clone(),
            patient_id: visit.patient_id.clone(),
            consent_id,
            recorded_at: crate::timefmt::now_utc(),
            recorded_by: self.actor().to_string(),
            body,
        })
    }

    pub(crate) fn treatment_row(&self, r: &TreatmentRecord) -> Result<TreatmentRow, StoreError> {
        Ok(TreatmentRow {
            id: r.id.clone(),
            kind: r.body.kind().to_string(),
            patient_id: r.patient_id.clone(),
            visit_id: r.visit_id.clone(),
            consent_id: r.consent_id.clone(),
            body: self.seal().seal("treatment", &r.id, r)?,
            created_at: r.recorded_at.clone(),
        })
    }

    /// The record a row holds, checked against its columns.
    pub(crate) fn treatment_of(&self, row: TreatmentRow) -> Result<TreatmentRecord, StoreError> {
        let r: TreatmentRecord = self.seal().open("treatment", &row.id, &row.body)?;
        check_column("treatment", &row.id, "ID", &row.id, &r.id)?;
        check_column(
            "treatment",
            &row.id,
            "kind",
            &row.kind,
            &r.body.kind().to_string(),
        )?;
        check_column("treatment", &row.id, "visit", &row.visit_id, &r.visit_id)?;
        check_column(
            "treatment",
            &row.id,
            "patient",
            &row.patient_id,
            &r.patient_id,
        )?;
        let consent = r.consent_id.clone().unwrap_or_default();
        let col = row.consent_id.clone().unwrap_or_default();
        check_column("treatment", &row.id, "consent", &col, &consent)?;
        Ok(r)
    }

    /// The consent whose clinical record holds a record of `visit` (about `capture`, if any).
    pub(crate) fn clinical_consent(
        &self,
        visit: &Visit,
        capture: Option<&Capture>,
    ) -> Result<Option<String>, RecordError> {
        if let Some(c) = capture {
            return Ok(Some(c.consent_id.clone()));
        }
        let rows = self.read(|r| r.captures(Some(&visit.patient_id)))?;
        if let Some(c) = rows
            .iter()
            .rev()
            .find(|c| c.visit_id.as_deref() == Some(&visit.id))
        {
            return Ok(Some(c.consent_id.clone()));
        }
        let day = crate::timefmt::parse_date(&visit.date).unwrap_or_else(crate::timefmt::today);
        let mut consents = self.consents_of_patient_id(&visit.patient_id)?;
        consents.sort_by(|a, b| b.signed_on.cmp(&a.signed_on));
        Ok(consents
            .into_iter()
            .find(|c| c.permits(Scope::Clinical, day).is_ok())
            .map(|c| c.id))
    }

    /// Record a new treatment record of `visit`, with its audit entry, in one unit of work.
    pub(crate) fn add_treatment(
        &self,
        visit: &Visit,
        consent_id: Option<String>,
        body: Body,
        audit_details: serde_json::Value,
    ) -> Result<TreatmentRecord, RecordError> {
        let rec = self.new_treatment(visit, consent_id, body)?;
        let row = self.treatment_row(&rec)?;
        self.write(|tx| {
            tx.insert_treatment(&row)?;
            audit_treatment(tx, "treatment.add", &rec, audit_details.clone())?;
            Ok::<_, StoreError>(())
        })?;
        Ok(rec)
    }

    /// Replace the body of an existing record (a map drawn again, a response corrected).
    pub(crate) fn replace_treatment(
        &self,
        old: &TreatmentRecord,
        consent_id: Option<String>,
        body: Body,
        audit_details: serde_json::Value,
    ) -> Result<TreatmentRecord, RecordError> {
        let rec = TreatmentRecord {
            consent_id,
            recorded_at: crate::timefmt::now_utc(),
            recorded_by: self.actor().to_string(),
            body,
            ..old.clone()
        };
        let mut row = self.treatment_row(&rec)?;
        row.created_at = old.recorded_at.clone();
        self.write(|tx| {
            tx.update_treatment(&row)?;
            audit_treatment(tx, "treatment.replace", &rec, audit_details.clone())?;
            Ok::<_, StoreError>(())
        })?;
        Ok(rec)
    }

    /// The treatment records of a visit, oldest first.
    pub fn treatment_records(&self, visit_id: &str) -> Result<Vec<TreatmentRecord>, RecordError> {
        let rows = self.read(|r| r.treatments_of_visit(visit_id))?;
        Ok(rows
            .into_iter()
            .map(|r| self.treatment_of(r))
            .collect::<Result<_, _>>()?)
    }

    /// Everything recorded about a visit's treatment, by kind.
    pub fn visit_treatment(&self, visit_id: &str) -> Result<VisitTreatment, RecordError> {
        let visit = self.visit(visit_id)?;
        let mut t = VisitTreatment::default();
        for r in self.treatment_records(&visit.id)? {
            match r.body {
                Body::Product(p) => t.products.push((r.id, p)),
                Body::Map(m) => t.maps.push((r.id, m)),
                Body::Response(x) => t.responses.push((r.id, x)),
                Body::Pain(p) => t.pain.push((r.id, p)),
                Body::Outcome(o) => t.outcomes.push((r.id, o)),
                Body::Adverse(a) => t.adverse.push((r.id, a)),
            }
        }
        Ok(t)
    }

    /// Every record of a kind in the store (the recall and adverse-event lists).
    pub fn treatment_records_of_kind(
        &self,
        kind: &str,
    ) -> Result<Vec<TreatmentRecord>, RecordError> {
        let rows = self.read(|r| r.treatments(Some(kind)))?;
        Ok(rows
            .into_iter()
            .map(|r| self.treatment_of(r))
            .collect::<Result<_, _>>()?)
    }
}

fn audit_treatment(
    tx: &mut Tx<'_>,
    action: &str,
    rec: &TreatmentRecord,
    mut details: serde_json::Value,
) -> Result<(), StoreError> {
    if let Some(m) = details.as_object_mut() {
        m.insert("kind".into(), json!(rec.body.kind()));
    }
    tx.audit(
        action,
        json!({ "record": rec.id, "visit": rec.visit_id, "patient": rec.patient_id,
                "consent": rec.consent_id }),
        details,
    )
}
