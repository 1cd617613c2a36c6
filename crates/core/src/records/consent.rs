//! Consents: which uses (scopes) a patient agreed to, when, for how long, with the signed form
//! as evidence, and the withdrawal record of each scope.
//!
//! A consent is valid for a scope on a day when the scope was granted, has not been withdrawn,
//! the consent was signed on or before that day, and the day is not after the expiry date
//! (`--expires` is the last day the consent covers).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{RecordError, Scope};
use crate::ids::{new_id, sha256_hex};
use crate::store::repo::{BlobRow, ConsentRow};
use crate::store::seal::check_column;
use crate::store::{Store, StoreError, Tx};
use crate::timefmt::{fmt_date, parse_date};

/// The state of one scope of a consent.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ScopeState {
    pub scope: Scope,
    /// "active" or "withdrawn".
    pub status: String,
    #[serde(default)]
    pub withdrawn_at: Option<String>,
    #[serde(default)]
    pub withdrawn_by: Option<String>,
    #[serde(default)]
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
    /// The patient agreed that published or teaching photos may show them recognisably;
    /// without it, a copy the kit prepares for publication must be de-identified.
    pub identifiable: bool,
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
    /// See [`Consent::identifiable`].
    pub identifiable: bool,
}

/// What a consent row's body holds.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ConsentBody {
    pub patient_id: String,
    pub signed_by: String,
    pub signed_on: String,
    #[serde(default)]
    pub expires_on: Option<String>,
    #[serde(default)]
    pub document_sha256: Option<String>,
    #[serde(default)]
    pub scopes: Vec<ScopeState>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub identifiable: bool,
    pub created_at: String,
}

impl Consent {
    fn body(&self) -> ConsentBody {
        ConsentBody {
            patient_id: self.patient_id.clone(),
            signed_by: self.signed_by.clone(),
            signed_on: self.signed_on.clone(),
            expires_on: self.expires_on.clone(),
            document_sha256: self.document_sha256.clone(),
            scopes: self.scopes.clone(),
            identifiable: self.identifiable,
            created_at: self.created_at.clone(),
        }
    }
}

/// Check one line of text a person typed (a name, a lot, a channel, a reason): no control or
/// invisible characters, no line breaks.
pub fn check_text(what: &str, text: &str) -> Result<(), RecordError> {
    check_chars(what, text, false)
}

/// Check a note a person typed: like [`check_text`], but line breaks are kept.
pub fn check_note(what: &str, text: &str) -> Result<(), RecordError> {
    check_chars(what, text, true)
}

fn check_chars(what: &str, text: &str, lines: bool) -> Result<(), RecordError> {
    let bad = |c: char| (c.is_control() && !(lines && c == '\n')) || crate::text::is_invisible(c);
    if let Some(c) = text.chars().find(|&c| bad(c)) {
        return Err(RecordError::Invalid {
            what: what.to_string(),
            why: format!(
                "it contains the control or invisible character U+{:04X}",
                c as u32
            ),
        });
    }
    Ok(())
}

impl Store {
    /// The consent a row holds, checked.
    pub(crate) fn consent_of(&self, row: ConsentRow) -> Result<Consent, StoreError> {
        let b: ConsentBody = self.seal().open("consent", &row.id, &row.body)?;
        check_column(
            "consent",
            &row.id,
            "patient",
            &row.patient_id,
            &b.patient_id,
        )?;
        let mut scopes = b.scopes;
        scopes.sort_by_key(|s| s.scope);
        Ok(Consent {
            id: row.id,
            patient_id: b.patient_id,
            signed_by: b.signed_by,
            signed_on: b.signed_on,
            expires_on: b.expires_on,
            document_sha256: b.document_sha256,
            scopes,
            identifiable: b.identifiable,
            created_at: b.created_at,
        })
    }

    /// The row holding `c`, sealed.
    pub(crate) fn consent_row(&self, c: &Consent) -> Result<ConsentRow, StoreError> {
        Ok(ConsentRow {
            id: c.id.clone(),
            patient_id: c.patient_id.clone(),
            body: self.seal().seal("consent", &c.id, &c.body())?,
            created_at: c.created_at.clone(),
        })
    }

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
        check_text("--signed-by", signed_by)?;
        crate::timefmt::check_not_future(new.signed_on).map_err(|why| RecordError::Invalid {
            what: "signing date".into(),
            why,
        })?;
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
        let doc_hash = new.document.as_ref().map(|(b, _)| sha256_hex(b));
        if let (Some((_, name)), Some(hash)) = (&new.document, &doc_hash)
            && let Some(other) = self.read(|r| r.blob_row(hash))?
        {
            return Err(RecordError::Invalid {
                what: name.clone(),
                why: format!(
                    "this file is already stored for consent {}",
                    other.consent_id
                ),
            });
        }
        let consent = Consent {
            id: id.clone(),
            patient_id: patient.id.clone(),
            signed_by: signed_by.to_string(),
            signed_on: fmt_date(new.signed_on),
            expires_on: new.expires_on.map(fmt_date),
            document_sha256: doc_hash.clone(),
            scopes: new
                .scopes
                .iter()
                .map(|s| ScopeState {
                    scope: *s,
                    status: "active".into(),
                    withdrawn_at: None,
                    withdrawn_by: None,
                    withdrawal_reason: None,
                })
                .collect(),
            identifiable: new.identifiable,
            created_at: now.clone(),
        };
        let row = self.consent_row(&consent)?;
        // The consent's data key is made with it; the document is sealed and durable before
        // the rows that name it commit (an interrupted grant leaves at most an orphan).
        let key = self.new_consent_key(&id)?;
        if let (Some((bytes, _)), Some(hash)) = (&new.document, &doc_hash) {
            self.put_sealed_blob(bytes, hash, key.as_ref().map(|(_, k)| k))?;
        }
        self.write(|tx| {
            tx.insert_consent(&row)?;
            if let Some((key_row, _)) = &key {
                tx.insert_data_key(key_row)?;
            }
            if let (Some((bytes, _)), Some(hash)) = (&new.document, &doc_hash) {
                tx.insert_blob(&BlobRow {
                    sha256: hash.clone(),
                    size: bytes.len() as i64,
                    kind: "document".into(),
                    consent_id: id.clone(),
                    key_id: key.as_ref().map(|(r, _)| r.id.clone()),
                    created_at: now.clone(),
                })?;
            }
            tx.audit(
                "consent.grant",
                json!({ "consent": id, "patient": patient.id, "sha256": doc_hash }),
                json!({
                    "scopes": new.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
                    "signed_on": fmt_date(new.signed_on),
                    "expires_on": new.expires_on.map(fmt_date),
                }),
            )?;
            Ok::<_, RecordError>(())
        })?;
        Ok(consent)
    }

    /// Replace a consent's record inside a unit of work (scope withdrawals, purges).
    pub(crate) fn update_consent_in(&self, tx: &mut Tx<'_>, c: &Consent) -> Result<(), StoreError> {
        let row = self.consent_row(c)?;
        tx.update_consent(&row)
    }

    /// The consent with ID `id`.
    pub fn consent(&self, id: &str) -> Result<Consent, RecordError> {
        let row = self.read(|r| r.consent(id.trim()))?;
        let row = row.ok_or_else(|| RecordError::UnknownConsent(id.trim().to_string()))?;
        Ok(self.consent_of(row)?)
    }

    /// The consent with ID `id`, read inside a unit of work (the state the change sees).
    pub(crate) fn consent_in(&self, tx: &mut Tx<'_>, id: &str) -> Result<Consent, RecordError> {
        let row = tx
            .consent(id)?
            .ok_or_else(|| RecordError::UnknownConsent(id.to_string()))?;
        Ok(self.consent_of(row)?)
    }

    /// Consents of a patient, newest first.
    pub fn consents_of(&self, patient_ref: &str) -> Result<Vec<Consent>, RecordError> {
        let p = self.patient_by_ref(patient_ref)?;
        self.consents_of_patient_id(&p.id)
    }

    /// Consents of the patient with opaque ID `patient_id`, newest first.
    pub fn consents_of_patient_id(&self, patient_id: &str) -> Result<Vec<Consent>, RecordError> {
        let rows = self.read(|r| r.consents_of_patient(patient_id))?;
        let mut out = rows
            .into_iter()
            .map(|r| self.consent_of(r))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| {
            (&b.signed_on, &b.created_at, &b.id).cmp(&(&a.signed_on, &a.created_at, &a.id))
        });
        Ok(out)
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
            identifiable: false,
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
