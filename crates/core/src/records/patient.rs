//! Patients: the clinic's own reference (unique) and an optional display name.
//!
//! The display name is shown only where staff need it (the station's patient picker, `patient
//! show`); logs, errors and the audit chain use the opaque ID.

use rusqlite::{OptionalExtension, Row, params};
use serde::Serialize;
use serde_json::json;

use super::RecordError;
use crate::ids::new_id;
use crate::store::Store;

/// A patient.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Patient {
    #[serde(rename = "patient_id")]
    pub id: String,
    #[serde(rename = "ref")]
    pub reference: String,
    pub display_name: Option<String>,
    pub created_at: String,
}

impl Patient {
    pub(crate) fn from_row(r: &Row<'_>) -> rusqlite::Result<Self> {
        Ok(Patient {
            id: r.get("id")?,
            reference: r.get("ref")?,
            display_name: r.get("display_name")?,
            created_at: r.get("created_at")?,
        })
    }
}

/// Check a clinic reference: non-empty, printable, at most 64 characters.
pub fn validate_ref(reference: &str) -> Result<String, RecordError> {
    let r = reference.trim();
    let bad = |why: &str| RecordError::Invalid {
        what: format!("patient reference {r:?}"),
        why: why.to_string(),
    };
    if r.is_empty() {
        return Err(bad("it is empty"));
    }
    if r.chars().count() > 64 {
        return Err(bad("it is longer than 64 characters"));
    }
    if r.chars().any(char::is_control) {
        return Err(bad("it contains control characters"));
    }
    Ok(r.to_string())
}

impl Store {
    /// Register a patient by the clinic's reference.
    pub fn add_patient(
        &self,
        reference: &str,
        display_name: Option<&str>,
    ) -> Result<Patient, RecordError> {
        let reference = validate_ref(reference)?;
        let display_name = display_name.map(str::trim).filter(|n| !n.is_empty());
        let tx = self.write_tx()?;
        let exists: Option<String> = tx
            .query_row("SELECT id FROM patient WHERE ref = ?1", [&reference], |r| {
                r.get(0)
            })
            .optional()?;
        if exists.is_some() {
            return Err(RecordError::DuplicatePatient(reference));
        }
        let p = Patient {
            id: new_id("pat")?,
            reference,
            display_name: display_name.map(str::to_string),
            created_at: crate::timefmt::now_utc(),
        };
        tx.execute(
            "INSERT INTO patient (id, ref, display_name, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![p.id, p.reference, p.display_name, p.created_at],
        )?;
        self.audit(&tx, "patient.create", json!({ "patient": p.id }), json!({}))?;
        tx.commit()?;
        Ok(p)
    }

    /// The patient with clinic reference `reference`.
    pub fn patient_by_ref(&self, reference: &str) -> Result<Patient, RecordError> {
        self.conn()
            .query_row(
                "SELECT * FROM patient WHERE ref = ?1",
                [reference.trim()],
                Patient::from_row,
            )
            .optional()?
            .ok_or_else(|| RecordError::UnknownPatient(reference.trim().to_string()))
    }

    /// The patient with opaque ID `id`.
    pub fn patient_by_id(&self, id: &str) -> Result<Patient, RecordError> {
        self.conn()
            .query_row(
                "SELECT * FROM patient WHERE id = ?1",
                [id],
                Patient::from_row,
            )
            .optional()?
            .ok_or_else(|| RecordError::UnknownPatient(id.to_string()))
    }

    /// A patient by reference or by ID (`pat_…`).
    pub fn find_patient(&self, ref_or_id: &str) -> Result<Patient, RecordError> {
        match self.patient_by_ref(ref_or_id) {
            Err(RecordError::UnknownPatient(_)) if ref_or_id.starts_with("pat_") => {
                self.patient_by_id(ref_or_id)
            }
            other => other,
        }
    }

    /// Patients whose reference or display name contains `query` (case-insensitive), by
    /// reference; all when `query` is empty.
    pub fn search_patients(&self, query: &str, limit: usize) -> Result<Vec<Patient>, RecordError> {
        let pattern = format!("%{}%", query.trim().replace('%', "\\%").replace('_', "\\_"));
        let mut stmt = self.conn().prepare(
            "SELECT * FROM patient
             WHERE ref LIKE ?1 ESCAPE '\\' OR COALESCE(display_name, '') LIKE ?1 ESCAPE '\\'
             ORDER BY ref LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![pattern, limit as i64], Patient::from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
