//! Consents: which uses (scopes) a patient agreed to, when, for how long, with the signed form
//! as evidence, and the withdrawal record of each scope.
//!
//! A consent is valid for a scope on a day when the scope was granted, has not been withdrawn,
//! the consent was signed on or before that day, and the day is not after the expiry date
//! (`--expires` is the last day the consent covers).

use chrono::NaiveDate;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::json;

use super::{RecordError, Scope};
use crate::ids::{new_id, sha256_hex};
use crate::store::Store;
use crate::timefmt::{fmt_date, parse_date};

/// The state of one scope of a consent.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ScopeState {
    pub scope: Scope,
    /// "active" or "withdrawn".
    pub status: String,
    pub withdrawn_at: Option<String>,
    pub withdrawn_by: Option<String>,
    pub withdrawal_reason: Option<String>,
}

/// A consent record.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Consent {
    #[serde(rename = "consent_id")]
    pub id: String,
    pub patient_id: String,
    pub signed_by: String,
    pub signed_on: String,
    pub expires_on: Option<String>,
    pub document_sha256: Option<String>,
    pub scopes: Vec<ScopeState>,
    pub created_at: String,
}

/// Why a consent does not allow a use.
#[derive(Clone, Debug, PartialEq)]
pub enum Refusal {
    NotGranted,
    Withdrawn { at: String },
    Expired { on: String },
    NotYetSigned { on: String },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotGranted => f.write_str("the scope was not granted"),
            Refusal::Withdrawn { at } => write!(f, "the scope was withdrawn at {at}"),
            Refusal::Expired { on } => write!(f, "the consent expired after {on}"),
            Refusal::NotYetSigned { on } => write!(f, "the consent is only signed on {on}"),
        }
    }
}

impl Consent {
    /// The state of `scope`, if it was granted.
    pub fn scope(&self, scope: Scope) -> Option<&ScopeState> {
        self.scopes.iter().find(|s| s.scope == scope)
    }

    /// Whether the consent allows `scope` use on `day`.
    pub fn permits(&self, scope: Scope, day: NaiveDate) -> Result<(), Refusal> {
        let st = self.scope(scope).ok_or(Refusal::NotGranted)?;
        if st.status == "withdrawn" {
            return Err(Refusal::Withdrawn {
                at: st.withdrawn_at.clone().unwrap_or_default(),
            });
        }
        if let Some(signed) = parse_date(&self.signed_on)
            && day < signed
        {
            return Err(Refusal::NotYetSigned {
                on: self.signed_on.clone(),
            });
        }
        if let Some(exp) = self.expires_on.as_deref().and_then(parse_date)
            && day > exp
        {
            return Err(Refusal::Expired { on: fmt_date(exp) });
        }
        Ok(())
    }

    /// `permits` as a record error naming this consent.
    pub fn require(&self, scope: Scope, day: NaiveDate) -> Result<(), RecordError> {
        self.permits(scope, day)
            .map_err(|r| RecordError::ConsentRefused {
                consent: self.id.clone(),
                scope,
                why: r.to_string(),
            })
    }

    /// Scopes active on `day`.
    pub fn active_scopes(&self, day: NaiveDate) -> Vec<Scope> {
        Scope::ALL
            .iter()
            .copied()
            .filter(|s| self.permits(*s, day).is_ok())
            .collect()
    }
}

/// A new consent.
#[derive(Clone, Debug)]
pub struct NewConsent<'a> {
    pub patient_ref: &'a str,
    pub scopes: Vec<Scope>,
    pub signed_by: &'a str,
    pub signed_on: NaiveDate,
    pub expires_on: Option<NaiveDate>,
    /// The signed form (any file), stored as a blob under the consent's key.
    pub document: Option<(Vec<u8>, String)>,
}

impl Store {
    /// Record a consent; returns it with its ID.
    pub fn grant_consent(&self, new: NewConsent<'_>) -> Result<Consent, RecordError> {
        let patient = self.patient_by_ref(new.patient_ref)?;
        let signed_by = new.signed_by.trim();
        if signed_by.is_empty() {
            return Err(RecordError::Invalid {
                what: "--signed-by".into(),
                why: "name who signed the consent".into(),
            });
        }
        if new.scopes.is_empty() {
            return Err(RecordError::Invalid {
                what: "--scope".into(),
                why: "give at least one scope".into(),
            });
        }
        if let Some(exp) = new.expires_on
            && exp < new.signed_on
        {
            return Err(RecordError::Invalid {
                what: "--expires".into(),
                why: format!(
                    "{} is before the signing date {}",
                    fmt_date(exp),
                    fmt_date(new.signed_on)
                ),
            });
        }
        if let Some((bytes, name)) = &new.document
            && bytes.is_empty()
        {
            return Err(RecordError::Invalid {
                what: name.clone(),
                why: "the consent document is empty".into(),
            });
        }
        let id = new_id("con")?;
        let now = crate::timefmt::now_utc();
        let tx = self.write_tx()?;
        tx.execute(
            "INSERT INTO consent (id, patient_id, signed_by, signed_on, expires_on, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                id,
                patient.id,
                signed_by,
                fmt_date(new.signed_on),
                new.expires_on.map(fmt_date),
                now
            ],
        )?;
        for s in &new.scopes {
            tx.execute(
                "INSERT INTO consent_scope (consent_id, scope, status) VALUES (?1, ?2, 'active')",
                params![id, s.as_str()],
            )?;
        }
        let mut doc_hash = None;
        if let Some((bytes, name)) = &new.document {
            let hash = sha256_hex(bytes);
            let used: Option<String> = tx
                .query_row(
                    "SELECT consent_id FROM blob WHERE sha256 = ?1",
                    [&hash],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(other) = used {
                return Err(RecordError::Invalid {
                    what: name.clone(),
                    why: format!("this file is already stored for consent {other}"),
                });
            }
            // The consent row is in this (uncommitted) transaction, so the data key row is
            // written in it too; the blob is durable before anything commits.
            let key_id = self.document_key_in(&tx, &id)?;
            match &key_id {
                None => {
                    self.blobs()
                        .put(bytes, &hash, crate::store::blobs::Sealing::Plain)?;
                }
                Some((kid, key)) => {
                    self.blobs().put(
                        bytes,
                        &hash,
                        crate::store::blobs::Sealing::Key { id: kid, key },
                    )?;
                }
            }
            tx.execute(
                "INSERT INTO blob (sha256, size, kind, consent_id, key_id, created_at)
                 VALUES (?1, ?2, 'document', ?3, ?4, ?5)",
                params![
                    hash,
                    bytes.len() as i64,
                    id,
                    key_id.as_ref().map(|(k, _)| crate::ids::hex(k)),
                    now
                ],
            )?;
            tx.execute(
                "UPDATE consent SET document_sha256 = ?2 WHERE id = ?1",
                params![id, hash],
            )?;
            doc_hash = Some(hash);
        }
        self.audit(
            &tx,
            "consent.grant",
            json!({ "consent": id, "patient": patient.id, "sha256": doc_hash }),
            json!({
                "scopes": new.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                "signed_on": fmt_date(new.signed_on),
                "expires_on": new.expires_on.map(fmt_date),
            }),
        )?;
        tx.commit()?;
        self.consent(&id)
    }

    /// A data key for a consent created inside `tx` (same transaction as the consent row).
    fn document_key_in(
        &self,
        tx: &rusqlite::Transaction<'_>,
        consent_id: &str,
    ) -> Result<Option<([u8; 16], crate::store::crypto::SecretKey)>, RecordError> {
        if !self.is_encrypted() {
            return Ok(None);
        }
        let master = self.master_key()?.clone();
        let raw = crate::store::crypto::new_key_id()?;
        let kid = crate::ids::hex(&raw);
        let key = crate::store::crypto::SecretKey::generate()?;
        let wrapped = master.wrap_key(&key, &crate::store::crypto::data_key_aad(&kid))?;
        tx.execute(
            "INSERT INTO data_key (id, consent_id, wrapped, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![kid, consent_id, wrapped, crate::timefmt::now_utc()],
        )?;
        Ok(Some((raw, key)))
    }

    /// The consent with ID `id`.
    pub fn consent(&self, id: &str) -> Result<Consent, RecordError> {
        let base = self
            .conn()
            .query_row(
                "SELECT id, patient_id, signed_by, signed_on, expires_on, document_sha256, created_at
                 FROM consent WHERE id = ?1",
                [id.trim()],
                |r| {
                    Ok(Consent {
                        id: r.get(0)?,
                        patient_id: r.get(1)?,
                        signed_by: r.get(2)?,
                        signed_on: r.get(3)?,
                        expires_on: r.get(4)?,
                        document_sha256: r.get(5)?,
                        scopes: Vec::new(),
                        created_at: r.get(6)?,
                    })
                },
            )
            .optional()?;
        let mut c = base.ok_or_else(|| RecordError::UnknownConsent(id.trim().to_string()))?;
        let mut stmt = self.conn().prepare(
            "SELECT scope, status, withdrawn_at, withdrawn_by, withdrawal_reason
             FROM consent_scope WHERE consent_id = ?1",
        )?;
        let rows = stmt.query_map([&c.id], |r| {
            let scope: String = r.get(0)?;
            Ok((
                scope,
                r.get::<_, String>(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
            ))
        })?;
        for row in rows {
            let (scope, status, withdrawn_at, withdrawn_by, withdrawal_reason) = row?;
            if let Ok(scope) = scope.parse() {
                c.scopes.push(ScopeState {
                    scope,
                    status,
                    withdrawn_at,
                    withdrawn_by,
                    withdrawal_reason,
                });
            }
        }
        c.scopes.sort_by_key(|s| s.scope);
        Ok(c)
    }

    /// Consents of a patient, newest first.
    pub fn consents_of(&self, patient_ref: &str) -> Result<Vec<Consent>, RecordError> {
        let p = self.patient_by_ref(patient_ref)?;
        self.consents_of_patient_id(&p.id)
    }

    /// Consents of the patient with opaque ID `patient_id`, newest first.
    pub fn consents_of_patient_id(&self, patient_id: &str) -> Result<Vec<Consent>, RecordError> {
        let ids: Vec<String> = {
            let mut stmt = self.conn().prepare(
                "SELECT id FROM consent WHERE patient_id = ?1 ORDER BY signed_on DESC, created_at DESC",
            )?;
            stmt.query_map([patient_id], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        ids.iter().map(|id| self.consent(id)).collect()
    }

    /// The consent's evidence document.
    pub fn consent_document(&self, consent_id: &str) -> Result<Vec<u8>, RecordError> {
        let c = self.consent(consent_id)?;
        let hash = c.document_sha256.ok_or_else(|| RecordError::Invalid {
            what: format!("consent {consent_id}"),
            why: "no document was stored with it".into(),
        })?;
        Ok(self.read_blob(&hash)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consent(scopes: &[(Scope, &str)], expires: Option<&str>) -> Consent {
        Consent {
            id: "con_x".into(),
            patient_id: "pat_x".into(),
            signed_by: "Pat".into(),
            signed_on: "2026-01-10".into(),
            expires_on: expires.map(str::to_string),
            document_sha256: None,
            scopes: scopes
                .iter()
                .map(|(s, st)| ScopeState {
                    scope: *s,
                    status: st.to_string(),
                    withdrawn_at: (*st == "withdrawn").then(|| "2026-02-01T10:00:00Z".into()),
                    withdrawn_by: None,
                    withdrawal_reason: None,
                })
                .collect(),
            created_at: String::new(),
        }
    }

    fn d(s: &str) -> NaiveDate {
        parse_date(s).unwrap()
    }

    #[test]
    fn permits_follows_scope_withdrawal_and_dates() {
        let c = consent(
            &[
                (Scope::Clinical, "active"),
                (Scope::Publication, "withdrawn"),
            ],
            Some("2026-12-31"),
        );
        assert!(c.permits(Scope::Clinical, d("2026-06-01")).is_ok());
        assert_eq!(
            c.permits(Scope::Teaching, d("2026-06-01")),
            Err(Refusal::NotGranted)
        );
        assert!(matches!(
            c.permits(Scope::Publication, d("2026-06-01")),
            Err(Refusal::Withdrawn { .. })
        ));
        // The expiry day itself is still covered; the day after is not.
        assert!(c.permits(Scope::Clinical, d("2026-12-31")).is_ok());
        assert!(matches!(
            c.permits(Scope::Clinical, d("2027-01-01")),
            Err(Refusal::Expired { .. })
        ));
        assert!(matches!(
            c.permits(Scope::Clinical, d("2026-01-09")),
            Err(Refusal::NotYetSigned { .. })
        ));
        assert_eq!(c.active_scopes(d("2026-06-01")), vec![Scope::Clinical]);
    }
}
