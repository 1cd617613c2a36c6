//! Visits: one treatment session — date, area, product and lot, technique, clinician.

use chrono::NaiveDate;
use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::json;

use super::{Area, RecordError};
use crate::ids::new_id;
use crate::store::Store;
use crate::timefmt::fmt_date;

/// A visit.
#[derive(Clone, Debug, Serialize, PartialEq)]
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

impl Visit {
    fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        let area: String = r.get("area")?;
        Ok(Visit {
            id: r.get("id")?,
            patient_id: r.get("patient_id")?,
            date: r.get("date")?,
            area: area.parse().unwrap_or(Area::Body),
            product: r.get("product")?,
            lot: r.get("lot")?,
            lot_expiry: r.get("lot_expiry")?,
            technique: r.get("technique")?,
            clinician: r.get("clinician")?,
            created_at: r.get("created_at")?,
        })
    }
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
        let mut warnings = Vec::new();
        if let Some(exp) = new.lot_expiry
            && exp < new.date
        {
            warnings.push(format!(
                "lot expired on {} before the visit date {}",
                fmt_date(exp),
                fmt_date(new.date)
            ));
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
        let tx = self.write_tx()?;
        tx.execute(
            "INSERT INTO visit (id, patient_id, date, area, product, lot, lot_expiry, technique, clinician, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                v.id,
                v.patient_id,
                v.date,
                v.area.as_str(),
                v.product,
                v.lot,
                v.lot_expiry,
                v.technique,
                v.clinician,
                v.created_at
            ],
        )?;
        self.audit(
            &tx,
            "visit.create",
            json!({ "visit": v.id, "patient": v.patient_id }),
            json!({ "area": v.area, "date": v.date, "lot": v.lot }),
        )?;
        tx.commit()?;
        Ok(VisitOutcome { visit: v, warnings })
    }

    /// The visit with ID `id`.
    pub fn visit(&self, id: &str) -> Result<Visit, RecordError> {
        self.conn()
            .query_row(
                "SELECT * FROM visit WHERE id = ?1",
                [id.trim()],
                Visit::from_row,
            )
            .optional()?
            .ok_or_else(|| RecordError::UnknownVisit(id.trim().to_string()))
    }

    /// Visits of a patient, newest first.
    pub fn visits_of_patient_id(&self, patient_id: &str) -> Result<Vec<Visit>, RecordError> {
        let mut stmt = self.conn().prepare(
            "SELECT * FROM visit WHERE patient_id = ?1 ORDER BY date DESC, created_at DESC",
        )?;
        let rows = stmt.query_map([patient_id], Visit::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
