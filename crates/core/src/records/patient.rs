//! Patients: the clinic's own reference (unique, whatever its case or Unicode spelling) and an
//! optional display name.
//!
//! Both are kept in the patient's sealed body; the store finds a patient by a keyed hash of
//! the folded reference. The display name is shown only where staff need it (the station's
//! patient picker, `patient show`); logs, errors and the audit chain use the opaque ID.

use serde::{Deserialize, Serialize};
use serde_json::json;
use unicode_normalization::UnicodeNormalization;

use super::RecordError;
use crate::ids::new_id;
use crate::store::repo::{PatientRepo, PatientRow};
use crate::store::seal::{RecordSeal, check_column};
use crate::store::{FailureKind, Store, StoreError};

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

/// What a patient row's body holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PatientBody {
    #[serde(rename = "ref")]
    pub reference: String,
    #[serde(default)]
    pub display_name: Option<String>,
}

pub use crate::text::is_invisible;

/// Check a clinic reference and give its stored form: Unicode NFKC, trimmed, printable, no
/// invisible or direction-changing characters, at most 64 characters.
pub fn validate_ref(reference: &str) -> Result<String, RecordError> {
    let r: String = reference.nfkc().collect::<String>().trim().to_string();
    let bad = |why: &str| RecordError::Invalid {
        what: format!("patient reference {:?}", reference.trim()),
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
    if r.chars().any(is_invisible) {
        return Err(bad(
            "it contains invisible or text-direction characters (zero-width, bidirectional overrides)",
        ));
    }
    Ok(r)
}

/// The form references are compared in: NFKC, trimmed, lower case.
pub fn fold_ref(reference: &str) -> String {
    reference.nfkc().collect::<String>().trim().to_lowercase()
}

/// The lookup key of a reference in this store.
pub fn ref_key(seal: &RecordSeal, reference: &str) -> String {
    seal.lookup_key("patient ref", &fold_ref(reference))
}

impl Store {
    /// The patient a row holds, checked.
    pub(crate) fn patient_of(&self, row: PatientRow) -> Result<Patient, StoreError> {
        let body: PatientBody = self.seal().open("patient", &row.id, &row.body)?;
        check_column(
            "patient",
            &row.id,
            "reference key",
            &row.ref_key,
            &ref_key(self.seal(), &body.reference),
        )?;
        Ok(Patient {
            id: row.id,
            reference: body.reference,
            display_name: body.display_name,
            created_at: row.created_at,
        })
    }

    /// Register a patient by the clinic's reference.
    pub fn add_patient(
        &self,
        reference: &str,
        display_name: Option<&str>,
    ) -> Result<Patient, RecordError> {
        let reference = validate_ref(reference)?;
        let display_name = display_name
            .map(|n| n.nfkc().collect::<String>().trim().to_string())
            .filter(|n| !n.is_empty());
        if let Some(n) = &display_name
            && n.chars().any(|c| c.is_control() || is_invisible(c))
        {
            return Err(RecordError::Invalid {
                what: "display name".into(),
                why: "it contains control or invisible characters".into(),
            });
        }
        let p = Patient {
            id: new_id("pat")?,
            reference: reference.clone(),
            display_name: display_name.clone(),
            created_at: crate::timefmt::now_utc(),
        };
        let row = PatientRow {
            id: p.id.clone(),
            ref_key: ref_key(self.seal(), &reference),
            body: self.seal().seal(
                "patient",
                &p.id,
                &PatientBody {
                    reference: reference.clone(),
                    display_name,
                },
            )?,
            created_at: p.created_at.clone(),
        };
        let added = self.write(|tx| {
            if tx.patient_by_ref_key(&row.ref_key)?.is_some() {
                return Err(RecordError::DuplicatePatient(reference.clone()));
            }
            tx.insert_patient(&row)?;
            tx.audit("patient.create", json!({ "patient": p.id }), json!({}))?;
            Ok(())
        });
        match added {
            // Another station registered the same reference at the same moment.
            Err(RecordError::Store(e)) if e.kind() == Some(FailureKind::Duplicate) => {
                Err(RecordError::DuplicatePatient(reference))
            }
            other => other.map(|()| p),
        }
    }

    /// The patient with clinic reference `reference` (any case or Unicode spelling of it).
    pub fn patient_by_ref(&self, reference: &str) -> Result<Patient, RecordError> {
        let key = ref_key(self.seal(), reference);
        let row = self.read(|r| r.patient_by_ref_key(&key))?;
        let row = row.ok_or_else(|| RecordError::UnknownPatient(reference.trim().to_string()))?;
        Ok(self.patient_of(row)?)
    }

    /// The patient with opaque ID `id`.
    pub fn patient_by_id(&self, id: &str) -> Result<Patient, RecordError> {
        let row = self.read(|r| r.patient(id.trim()))?;
        let row = row.ok_or_else(|| RecordError::UnknownPatient(id.trim().to_string()))?;
        Ok(self.patient_of(row)?)
    }

    /// A patient by reference or by ID (`pat_…`).
    pub fn find_patient(&self, ref_or_id: &str) -> Result<Patient, RecordError> {
        match self.patient_by_ref(ref_or_id) {
            Err(RecordError::UnknownPatient(_)) if ref_or_id.trim().starts_with("pat_") => {
                self.patient_by_id(ref_or_id)
            }
            other => other,
        }
    }

    /// Patients whose reference or display name contains `query` (case-insensitive), by
    /// reference; all when `query` is empty. (Names are sealed, so the search runs here, on
    /// the opened records.)
    pub fn search_patients(&self, query: &str, limit: usize) -> Result<Vec<Patient>, RecordError> {
        let q = fold_ref(query);
        let rows = self.read(|r| r.patients())?;
        let mut out = Vec::new();
        for row in rows {
            let p = self.patient_of(row)?;
            let hit = q.is_empty()
                || fold_ref(&p.reference).contains(&q)
                || p.display_name
                    .as_deref()
                    .is_some_and(|n| fold_ref(n).contains(&q));
            if hit {
                out.push(p);
            }
        }
        out.sort_by(|a, b| a.reference.cmp(&b.reference));
        out.truncate(limit);
        Ok(out)
    }
}

/// Look a patient up by ID inside a unit of work.
pub(crate) fn patient_in(
    store: &Store,
    repo: &mut dyn PatientRepo,
    id: &str,
) -> Result<Patient, RecordError> {
    let row = repo
        .patient(id)?
        .ok_or_else(|| RecordError::UnknownPatient(id.to_string()))?;
    Ok(store.patient_of(row)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn look_alike_references_fold_together_or_are_refused() {
        assert_eq!(validate_ref("  P-0042 ").unwrap(), "P-0042");
        // Full-width digits and compatibility forms are NFKC-normalised.
        assert_eq!(validate_ref("P-００４２").unwrap(), "P-0042");
        assert_eq!(fold_ref("p-0042"), fold_ref("P-0042"));
        for bad in [
            "P-0042\u{200B}",
            "\u{202E}2400-P",
            "P\u{2066}-0042",
            "P-00\u{FEFF}42",
            "P-\u{7}42",
            "",
        ] {
            assert!(validate_ref(bad).is_err(), "{bad:?} was accepted");
        }
        let seal = RecordSeal::plain("s");
        assert_eq!(ref_key(&seal, "p-0042"), ref_key(&seal, "P-0042"));
        assert_eq!(ref_key(&seal, "P-００４２"), ref_key(&seal, "P-0042"));
    }
}
