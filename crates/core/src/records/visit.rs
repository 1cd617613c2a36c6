//! Visits: one treatment session — date, area, product and lot, technique, clinician.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Area, RecordError};
use crate::ids::new_id;
use crate::store::repo::VisitRow;
use crate::store::seal::check_column;
use crate::store::{Store, StoreError};
use crate::timefmt::fmt_date;

/// A visit (also what a visit row's body holds).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Visit {
    #[serde(rename = "visit_id")]
    pub id: String,
    pub patient_id: String,
    pub date: String,
    pub area: Area,
    pub product: Option<String>,
    pub lot: Option<String>,
    pub lot_expiry: Option<String>,
    pub technique: Option<String>,
    pub clinician: Option<String>,
    pub created_at: String,
}

/// A new visit.
#[derive(Clone, Debug)]
pub struct NewVisit<'a> {
    pub patient_ref: &'a str,
    pub area: Area,
    pub date: NaiveDate,
    pub product: Option<&'a str>,
    pub lot: Option<&'a str>,
    pub lot_expiry: Option<NaiveDate>,
    pub technique: Option<&'a str>,
    pub clinician: Option<&'a str>,
    /// Record an expired lot anyway, for this reason (audited).
    pub expired_lot_reason: Option<&'a str>,
}

/// A visit as recorded, with anything staff should look at.
#[derive(Clone, Debug, Serialize)]
pub struct VisitOutcome {
    #[serde(flatten)]
    pub visit: Visit,
    pub warnings: Vec<String>,
}

fn clean(s: Option<&str>) -> Option<String> {
    s.map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl Store {
    /// Record a visit.
    pub fn add_visit(&self, new: NewVisit<'_>) -> Result<VisitOutcome, RecordError> {
        let patient = self.patient_by_ref(new.patient_ref)?;
        if new.lot.is_some() && new.product.is_none() {
            return Err(RecordError::Invalid {
                what: "--lot".into(),
                why: "a lot needs its product (--product)".into(),
            });
        }
        if new.lot_expiry.is_some() && new.lot.is_none() {
            return Err(RecordError::Invalid {
                what: "--lot-expiry".into(),
                why: "a lot expiry needs its lot (--lot)".into(),
            });
        }
        crate::timefmt::check_not_future(new.date).map_err(|why| RecordError::Invalid {
            what: "visit date".into(),
            why,
        })?;
        let mut warnings = Vec::new();
        if new.lot.is_some() && new.lot_expiry.is_none() {
            warnings.push(
                "no lot expiry given: the lot is traceable, but its expiry is not on record".into(),
            );
        }
        let v = Visit {
            id: new_id("vis")?,
            patient_id: patient.id.clone(),
            date: fmt_date(new.date),
            area: new.area,
            product: clean(new.product),
            lot: clean(new.lot),
            lot_expiry: new.lot_expiry.map(fmt_date),
            technique: clean(new.technique),
            clinician: clean(new.clinician),
            created_at: crate::timefmt::now_utc(),
        };
        for (what, text) in [
            ("--product", &v.product),
            ("--lot", &v.lot),
            ("--technique", &v.technique),
            ("--clinician", &v.clinician),
        ] {
            if let Some(t) = text {
                super::consent::check_text(what, t)?;
            }
        }
        // The product with its lot and expiry is also the visit's first product record.
        let product = match (new.product, new.lot, new.lot_expiry) {
            (Some(product), Some(lot), Some(expiry)) => {
                let p = super::treatment::products::check(
                    &super::treatment::products::NewProduct {
                        visit_id: &v.id,
                        product,
                        lot,
                        expiry,
                        quantity: None,
                        unit: None,
                        expired_reason: new.expired_lot_reason,
                    },
                    &v.date,
                )?;
                let consent = self.clinical_consent(&v, None)?;
                let rec = self.new_treatment(&v, consent, super::treatment::Body::Product(p))?;
                Some(self.treatment_row(&rec)?)
            }
            _ => None,
        };
        let row = self.visit_row(&v)?;
        self.write(|tx| {
            tx.insert_visit(&row)?;
            if let Some(p) = &product {
                tx.insert_treatment(p)?;
            }
            tx.audit(
                "visit.create",
                json!({ "visit": v.id, "patient": v.patient_id }),
                json!({ "area": v.area, "date": v.date, "lot": v.lot,
                        "expired_lot_override": new.expired_lot_reason.filter(|_| new.lot_expiry.is_some_and(|e| e < new.date)) }),
            )?;
            Ok::<_, StoreError>(())
        })?;
        Ok(VisitOutcome { visit: v, warnings })
    }

    fn visit_row(&self, v: &Visit) -> Result<VisitRow, StoreError> {
        Ok(VisitRow {
            id: v.id.clone(),
            patient_id: v.patient_id.clone(),
            body: self.seal().seal("visit", &v.id, v)?,
            created_at: v.created_at.clone(),
        })
    }

    pub(crate) fn visit_of(&self, row: VisitRow) -> Result<Visit, StoreError> {
        let v: Visit = self.seal().open("visit", &row.id, &row.body)?;
        check_column("visit", &row.id, "ID", &row.id, &v.id)?;
        check_column("visit", &row.id, "patient", &row.patient_id, &v.patient_id)?;
        Ok(v)
    }

    /// The visit with ID `id`.
    pub fn visit(&self, id: &str) -> Result<Visit, RecordError> {
        let row = self.read(|r| r.visit(id.trim()))?;
        let row = row.ok_or_else(|| RecordError::UnknownVisit(id.trim().to_string()))?;
        Ok(self.visit_of(row)?)
    }

    /// Visits of a patient, newest first.
    pub fn visits_of_patient_id(&self, patient_id: &str) -> Result<Vec<Visit>, RecordError> {
        let rows = self.read(|r| r.visits_of_patient(patient_id))?;
        let mut out = rows
            .into_iter()
            .map(|r| self.visit_of(r))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| (&b.date, &b.created_at, &b.id).cmp(&(&a.date, &a.created_at, &a.id)));
        Ok(out)
    }
}
