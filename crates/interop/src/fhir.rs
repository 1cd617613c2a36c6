//! `sameframe export fhir`: a patient's consents, photos and visits as a FHIR Bundle, R4B
//! (R4-compatible) or R5.
//!
//! The Patient carries the clinic reference only. Each consent is a Consent: active while any
//! scope is, inactive once every scope is withdrawn or it has expired; each scope is a nested
//! provision (permit, or deny once withdrawn) whose purpose is TREAT (clinical), TRAIN
//! (teaching) or HMARKT (publication) from v3 ActReason; the expiry is the provision's period;
//! the signed document is referenced by its SHA-256 (FHIR's own `Attachment.hash` is SHA-1).
//! Each capture is a Media (R4B) or DocumentReference (R5) with body site, view and its SHA-256
//! as an identifier; each visit a Procedure with its products and lots. No photo or name is
//! included.

use serde_json::{Value, json};

use sameframe_core::records::{Capture, Consent, RecordError, Scope, Visit};
use sameframe_core::store::Store;

/// The FHIR release to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FhirVersion {
    R4B,
    R5,
}

impl std::str::FromStr for FhirVersion {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "r4b" | "r4" => Ok(FhirVersion::R4B),
            "r5" => Ok(FhirVersion::R5),
            other => Err(format!("{other:?}: expected r4b or r5")),
        }
    }
}

/// Identifier systems of this kit (URNs: no server is implied).
const SYS_REF: &str = "urn:sameframe:patient-reference";
const SYS_ID: &str = "urn:sameframe:id";
const SYS_SHA256: &str = "urn:sameframe:sha256";
const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
const SCT: &str = "http://snomed.info/sct";

fn purpose(scope: Scope) -> (&'static str, &'static str) {
    match scope {
        Scope::Clinical => ("TREAT", "treatment"),
        Scope::Teaching => ("TRAIN", "training"),
        Scope::Publication => ("HMARKT", "healthcare marketing"),
    }
}

fn full_url(kind: &str, id: &str) -> String {
    format!("urn:sameframe:{kind}:{id}")
}

/// FHIR ids: letters, digits, '-' and '.', at most 64.
fn fhir_id(id: &str) -> String {
    id.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(64)
        .collect()
}

fn entry(kind: &str, id: &str, resource: Value) -> Value {
    json!({ "fullUrl": full_url(kind, id), "resource": resource })
}

/// A consent is active while some scope is active and it has not expired.
pub fn consent_status(c: &Consent, today: chrono::NaiveDate) -> &'static str {
    let any = c.scopes.iter().any(|s| s.status == "active");
    let expired = c
        .expires_on
        .as_deref()
        .and_then(sameframe_core::timefmt::parse_date)
        .is_some_and(|e| today > e);
    if any && !expired {
        "active"
    } else {
        "inactive"
    }
}

fn consent_resource(c: &Consent, patient: &str, v: FhirVersion, today: chrono::NaiveDate) -> Value {
    let provisions: Vec<Value> = c
        .scopes
        .iter()
        .map(|s| {
            let (code, display) = purpose(s.scope);
            json!({
                "type": if s.status == "active" { "permit" } else { "deny" },
                "purpose": [{ "system": ACT_REASON, "code": code, "display": display }],
            })
        })
        .collect();
    let mut provision = json!({ "provision": provisions });
    if let Some(e) = &c.expires_on {
        provision["period"] = json!({ "start": c.signed_on, "end": e });
    }
    let subject = json!({ "reference": full_url("Patient", patient) });
    let category = json!([{ "coding": [{ "system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent" }] }]);
    let mut r = match v {
        FhirVersion::R4B => {
            provision["type"] = json!("permit");
            json!({
                "resourceType": "Consent",
                "id": fhir_id(&c.id),
                "identifier": [{ "system": SYS_ID, "value": c.id }],
                "status": consent_status(c, today),
                "scope": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy" }] },
                "category": category,
                "patient": subject,
                "dateTime": format!("{}T00:00:00Z", c.signed_on),
                "policyRule": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN" }] },
                "provision": provision,
            })
        }
        FhirVersion::R5 => {
            // R5: the base decision is deny; a provision is an exception to it, so the active
            // scopes' purposes are the one provision that permits (a withdrawn scope is not in
            // it).
            let active: Vec<Value> = c
                .scopes
                .iter()
                .filter(|s| s.status == "active")
                .map(|s| {
                    let (code, display) = purpose(s.scope);
                    json!({ "system": ACT_REASON, "code": code, "display": display })
                })
                .collect();
            let mut permit = json!({ "purpose": active });
            if let Some(e) = &c.expires_on {
                permit["period"] = json!({ "start": c.signed_on, "end": e });
            }
            let mut r = json!({
                "resourceType": "Consent",
                "id": fhir_id(&c.id),
                "identifier": [{ "system": SYS_ID, "value": c.id }],
                "status": consent_status(c, today),
                "category": category,
                "subject": subject,
                "date": c.signed_on,
                "decision": "deny",
            });
            if !active.is_empty() {
                r["provision"] = json!([permit]);
            }
            r
        }
    };
    if let Some(doc) = &c.document_sha256 {
        let att = json!({ "contentType": "application/octet-stream", "url": format!("urn:sameframe:sha256:{doc}"), "title": "signed consent document" });
        match v {
            FhirVersion::R4B => r["sourceAttachment"] = att,
            FhirVersion::R5 => r["sourceAttachment"] = json!([att]),
        }
    }
    r
}

fn body_site(c: &Capture) -> Value {
    json!({ "text": c.area.label() })
}

fn view(c: &Capture) -> Value {
    json!({ "text": c.view.label() })
}

fn capture_resource(c: &Capture, patient: &str, v: FhirVersion) -> Value {
    let identifiers = json!([
        { "system": SYS_ID, "value": c.id },
        { "system": SYS_SHA256, "value": c.sha256 },
    ]);
    let attachment = json!({
        "contentType": format!("image/{}", c.format.as_str()),
        "url": format!("urn:sameframe:sha256:{}", c.sha256),
        "size": c.size,
        "title": format!("{} {}", c.area.label(), c.view.label()),
        "creation": format!("{}Z", c.captured_at.get(..19).unwrap_or(&c.captured_at)),
    });
    let subject = json!({ "reference": full_url("Patient", patient) });
    match v {
        FhirVersion::R4B => json!({
            "resourceType": "Media",
            "id": fhir_id(&c.id),
            "identifier": identifiers,
            "status": "completed",
            "type": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/media-type", "code": "image" }] },
            "subject": subject,
            "createdDateTime": format!("{}Z", c.captured_at.get(..19).unwrap_or(&c.captured_at)),
            "bodySite": body_site(c),
            "view": view(c),
            "width": c.width,
            "height": c.height,
            "content": attachment,
        }),
        FhirVersion::R5 => json!({
            "resourceType": "DocumentReference",
            "id": fhir_id(&c.id),
            "identifier": identifiers,
            "status": "current",
            "type": { "coding": [{ "system": SCT, "code": "721987004", "display": "Photograph" }], "text": c.view.label() },
            "subject": subject,
            "bodySite": [{ "concept": body_site(c) }],
            "content": [{ "attachment": attachment }],
        }),
    }
}

/// Products used at a visit, as text: "product lot L" for every lot recorded (its own product
/// field, then each product record), or the bare product name when no lot was given.
fn products_used(store: &Store, visit: &Visit) -> Result<Vec<String>, RecordError> {
    let used: Vec<String> = store
        .products_of_visit(visit)?
        .into_iter()
        .map(|(p, l)| format!("{p} lot {l}"))
        .collect();
    if used.is_empty()
        && let Some(p) = &visit.product
    {
        return Ok(vec![p.clone()]);
    }
    Ok(used)
}

fn procedure_resource(visit: &Visit, used: &[String], patient: &str, v: FhirVersion) -> Value {
    let mut r = json!({
        "resourceType": "Procedure",
        "id": fhir_id(&visit.id),
        "identifier": [{ "system": SYS_ID, "value": visit.id }],
        "status": "completed",
        "code": { "text": format!("{} injectable treatment", visit.area.label()) },
        "subject": { "reference": full_url("Patient", patient) },
        "bodySite": [body_site_of_area(visit)],
    });
    match v {
        FhirVersion::R4B => {
            r["performedDateTime"] = json!(visit.date);
            if !used.is_empty() {
                r["usedCode"] = json!(
                    used.iter()
                        .map(|u| json!({ "text": u }))
                        .collect::<Vec<_>>()
                );
            }
        }
        FhirVersion::R5 => {
            r["occurrenceDateTime"] = json!(visit.date);
            if !used.is_empty() {
                r["used"] = json!(
                    used.iter()
                        .map(|u| json!({ "concept": { "text": u } }))
                        .collect::<Vec<_>>()
                );
            }
        }
    }
    r
}

fn body_site_of_area(v: &Visit) -> Value {
    json!({ "text": v.area.label() })
}

/// The Bundle of a patient's records.
pub fn patient_bundle(
    store: &Store,
    reference: &str,
    v: FhirVersion,
) -> Result<Value, RecordError> {
    let patient = store.patient_by_ref(reference)?;
    let pid = fhir_id(&patient.id);
    let today = sameframe_core::timefmt::today();
    let mut entries = vec![entry(
        "Patient",
        &pid,
        json!({
            "resourceType": "Patient",
            "id": pid,
            "identifier": [{ "system": SYS_REF, "value": patient.reference }],
        }),
    )];
    for c in store.consents_of_patient_id(&patient.id)? {
        entries.push(entry(
            "Consent",
            &fhir_id(&c.id),
            consent_resource(&c, &pid, v, today),
        ));
    }
    for visit in store.visits_of_patient_id(&patient.id)? {
        entries.push(entry(
            "Procedure",
            &fhir_id(&visit.id),
            procedure_resource(&visit, &products_used(store, &visit)?, &pid, v),
        ));
    }
    let kind = match v {
        FhirVersion::R4B => "Media",
        FhirVersion::R5 => "DocumentReference",
    };
    for c in store.list_captures(Some(&patient.reference))? {
        entries.push(entry(kind, &fhir_id(&c.id), capture_resource(&c, &pid, v)));
    }
    Ok(json!({
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": sameframe_core::timefmt::now_utc(),
        "entry": entries,
    }))
}
