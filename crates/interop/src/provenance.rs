//! Provenance manifests in C2PA: the clinic's signing identity (created as a private clinic
//! CA and a signing certificate, or imported), the signer of publication copies and the reader
//! a review uses. The core decides what is claimed ([`ProvenanceClaim`]) and what a reading
//! means; this module only speaks the format.

use std::io::Cursor;

use c2pa::{Builder, Context, Reader, Settings, SigningAlg};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use sameframe_core::publish::SigningIdentity;
use sameframe_core::publish::provenance::{
    ASSERTION, ClaimedAction, ClaimedCapture, ManifestReading, ProvenanceClaim, ProvenanceReader,
    ProvenanceSigner, ToSign,
};
use serde_json::json;
use sha2::{Digest, Sha256};

/// Failures to create, import or use a signing identity; each names what failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    #[error("could not create the signing certificate: {0}")]
    Create(String),
    #[error("{what}: {why}")]
    Import { what: String, why: String },
}

/// The PEM blocks of `pem` of type CERTIFICATE, as DER.
fn certificates(pem: &str) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .filter_map(Result::ok)
        .filter(|p| p.label == "CERTIFICATE")
        .map(|p| p.contents)
        .collect()
}

fn dn(common: &str, org: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::CommonName, common);
    d.push(DnType::OrganizationName, org);
    d
}

/// A new identity for `clinic`: a private clinic CA (the trust anchor reviewers are given) and
/// a signing certificate it issues (C2PA refuses a self-signed signer).
pub fn create_identity(clinic: &str, now: &str) -> Result<SigningIdentity, ProvenanceError> {
    let err = |e: rcgen::Error| ProvenanceError::Create(e.to_string());
    let ca_key = KeyPair::generate().map_err(err)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca.distinguished_name = dn(&format!("{clinic} provenance CA"), clinic);
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca.not_after = rcgen::date_time_ymd(2046, 1, 1);
    let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca, &ca_key);
    let key = KeyPair::generate().map_err(err)?;
    let mut leaf = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    let subject = format!("{clinic} publication signing");
    leaf.distinguished_name = dn(&subject, clinic);
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::EmailProtection];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let cert = leaf.signed_by(&key, &issuer).map_err(err)?;
    Ok(SigningIdentity {
        cert_chain_pem: format!("{}{}", cert.pem(), ca_cert.pem()),
        private_key_pem: key.serialize_pem(),
        trust_anchor_pem: ca_cert.pem(),
        subject,
        leaf_sha256: sameframe_core::ids::hex(&Sha256::digest(cert.der())),
        origin: "created".into(),
        created_at: now.into(),
    })
}

/// An identity from the clinic's own certificate chain (signing certificate first), its
/// private key, and the root to trust (default: the chain's last certificate). Checked by
/// signing and verifying a test image.
pub fn import_identity(
    chain_pem: &str,
    key_pem: &str,
    anchor_pem: Option<&str>,
    now: &str,
) -> Result<SigningIdentity, ProvenanceError> {
    let bad = |what: &str, why: String| ProvenanceError::Import {
        what: what.into(),
        why,
    };
    let chain = certificates(chain_pem);
    let Some(leaf) = chain.first() else {
        return Err(bad("--cert", "no PEM certificate in it".into()));
    };
    let anchor = match anchor_pem {
        Some(a) => a.to_string(),
        None if chain.len() > 1 => last_pem_block(chain_pem),
        None => {
            return Err(bad(
                "--cert",
                "a single self-signed certificate cannot sign C2PA manifests: give the chain up to the clinic's CA, or --ca".into(),
            ));
        }
    };
    if certificates(&anchor).is_empty() {
        return Err(bad("--ca", "no PEM certificate in it".into()));
    }
    let subject = subject_of(chain_pem).unwrap_or_else(|| "imported certificate".into());
    let id = SigningIdentity {
        cert_chain_pem: chain_pem.to_string(),
        private_key_pem: key_pem.to_string(),
        trust_anchor_pem: anchor,
        subject,
        leaf_sha256: sameframe_core::ids::hex(&Sha256::digest(leaf)),
        origin: "imported".into(),
        created_at: now.into(),
    };
    self_test(&id).map_err(|why| bad("--cert/--key", why))?;
    Ok(id)
}

fn last_pem_block(pem: &str) -> String {
    match pem.rfind("-----BEGIN CERTIFICATE-----") {
        Some(i) => pem[i..].to_string(),
        None => String::new(),
    }
}

/// Sign a small image and read it back against the identity's anchor.
fn self_test(id: &SigningIdentity) -> Result<(), String> {
    let img = image::RgbImage::from_pixel(16, 16, image::Rgb([128, 128, 128]));
    let jpeg = sameframe_core::publish::strip::jpeg(&img, 80)?;
    let claim = ProvenanceClaim {
        store_id: String::new(),
        publication_id: "self-test".into(),
        channel: String::new(),
        scope: String::new(),
        layout: "single".into(),
        captures: vec![ClaimedCapture {
            capture_id: "self-test".into(),
            sha256: sameframe_core::ids::hex(&Sha256::digest(&jpeg)),
            label: "single".into(),
            taken: String::new(),
            panel: [0, 0, 16, 16],
            crop: [0, 0, 16, 16],
        }],
        consents: Vec::new(),
        checked_on: String::new(),
        grade: None,
        grade_override: None,
        deidentified: None,
        actions: vec![ClaimedAction {
            action: "c2pa.opened".into(),
            description: "self-test".into(),
            capture_id: Some("self-test".into()),
        }],
    };
    let signer = ClinicSigner::new(id.clone());
    let signed = signer.sign(&ToSign {
        image: &jpeg,
        format: "image/jpeg",
        title: "self-test.jpg",
        claim: &claim,
    })?;
    match ClinicReader::new(Some(id.clone())).read(&signed) {
        ManifestReading::Valid { ours: true, .. } => Ok(()),
        other => Err(format!("a test signature does not verify: {other:?}")),
    }
}

/// The subject common name of the first certificate.
fn subject_of(chain_pem: &str) -> Option<String> {
    let der = certificates(chain_pem).into_iter().next()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_string)
}

/// Signs publication copies with the clinic's identity.
pub struct ClinicSigner {
    id: SigningIdentity,
}

impl ClinicSigner {
    pub fn new(id: SigningIdentity) -> Self {
        ClinicSigner { id }
    }
}

fn ingredient_label(i: usize) -> String {
    format!("capture_{i}")
}

impl ProvenanceSigner for ClinicSigner {
    fn sign(&self, what: &ToSign<'_>) -> Result<Vec<u8>, String> {
        let signer = c2pa::create_signer::from_keys(
            self.id.cert_chain_pem.as_bytes(),
            self.id.private_key_pem.as_bytes(),
            SigningAlg::Es256,
            None,
        )
        .map_err(|e| format!("the signing certificate or key is unusable: {e}"))?;
        let def = json!({
            "title": what.title,
            "format": what.format,
            "claim_generator_info": [{ "name": "sameframe", "version": env!("CARGO_PKG_VERSION") }],
        });
        let mut b = Builder::from_context(Context::new())
            .with_definition(def.to_string())
            .map_err(|e| e.to_string())?;
        let claim = what.claim;
        for (i, c) in claim.captures.iter().enumerate() {
            let mut ing = c2pa::Ingredient::new_v2(
                format!("capture {}", c.capture_id),
                "image/jpeg".to_string(),
            );
            ing.set_instance_id(format!("sha256:{}", c.sha256));
            ing.set_document_id(c.capture_id.clone());
            ing.set_label(ingredient_label(i));
            ing.set_relationship(if i == 0 {
                c2pa::Relationship::ParentOf
            } else {
                c2pa::Relationship::ComponentOf
            });
            b.add_ingredient(ing);
        }
        for a in &claim.actions {
            let mut action = json!({ "action": a.action, "description": a.description });
            if let Some(i) = a
                .capture_id
                .as_ref()
                .and_then(|id| claim.captures.iter().position(|c| &c.capture_id == id))
                && (a.action == "c2pa.opened" || a.action == "c2pa.placed")
            {
                action["parameters"] = json!({ "ingredientIds": [ingredient_label(i)] });
            }
            b.add_action(action).map_err(|e| e.to_string())?;
        }
        b.add_assertion(ASSERTION, claim)
            .map_err(|e| e.to_string())?;
        let mut out = Cursor::new(Vec::new());
        b.sign(
            signer.as_ref(),
            what.format,
            &mut Cursor::new(what.image),
            &mut out,
        )
        .map_err(|e| format!("could not sign the copy: {e}"))?;
        Ok(out.into_inner())
    }

    fn signer_name(&self) -> String {
        self.id.subject.clone()
    }
}

/// Reads manifests, knowing the clinic's identity (when it has one).
pub struct ClinicReader {
    id: Option<SigningIdentity>,
}

impl ClinicReader {
    pub fn new(id: Option<SigningIdentity>) -> Self {
        ClinicReader { id }
    }

    fn context(&self) -> Option<std::sync::Arc<Context>> {
        let id = self.id.as_ref()?;
        let settings = Settings::new()
            .with_json(
                &json!({ "trust": { "user_anchors": id.trust_anchor_pem }, "verify": { "verify_trust": true } })
                    .to_string(),
            )
            .ok()?;
        Some(Context::new().with_settings(settings).ok()?.into_shared())
    }
}

/// Whether the file has a place a C2PA manifest lives (a JPEG APP11 segment or a PNG `caBX`
/// chunk) holding a JUMBF box: then a manifest the reader cannot find was damaged, not absent.
fn carries_manifest_box(bytes: &[u8]) -> bool {
    let jumbf = |seg: &[u8]| seg.windows(4).any(|w| w == b"jumb" || w == b"c2pa");
    if bytes.starts_with(&[0xFF, 0xD8]) {
        return sameframe_core::publish::strip::header_segments(bytes)
            .into_iter()
            .any(|(marker, r)| marker == 0xEB && jumbf(&bytes[r]));
    }
    bytes.windows(4).any(|w| w == b"caBX")
}

/// The image format of `bytes` by its signature.
fn format_of(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(&[0xFF, 0xD8]) {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG") {
        Some("image/png")
    } else {
        None
    }
}

impl ProvenanceReader for ClinicReader {
    /// A panic in the format library on a malformed manifest is a reading of its own, not the
    /// end of the review.
    fn read(&self, bytes: &[u8]) -> ManifestReading {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.read_unguarded(bytes)))
            .unwrap_or_else(|_| ManifestReading::Invalid {
                altered: false,
                why: "its manifest is malformed (the C2PA reader could not parse it)".into(),
            })
    }
}

impl ClinicReader {
    fn read_unguarded(&self, bytes: &[u8]) -> ManifestReading {
        let Some(format) = format_of(bytes) else {
            return ManifestReading::None;
        };
        let read = match self.context() {
            Some(ctx) => Reader::from_shared_context(&ctx).with_stream(format, Cursor::new(bytes)),
            None => Reader::from_context(Context::new()).with_stream(format, Cursor::new(bytes)),
        };
        let reader = match read {
            Ok(r) => r,
            Err(c2pa::Error::JumbfNotFound | c2pa::Error::ProvenanceMissing)
                if !carries_manifest_box(bytes) =>
            {
                return ManifestReading::None;
            }
            Err(e) => {
                return ManifestReading::Invalid {
                    altered: false,
                    why: format!("its manifest cannot be read: {e}"),
                };
            }
        };
        let failures: Vec<String> = reader
            .validation_results()
            .and_then(|r| r.active_manifest())
            .map(|m| m.failure().iter().map(|s| s.code().to_string()).collect())
            .unwrap_or_default();
        let Some(m) = reader.active_manifest() else {
            return if carries_manifest_box(bytes) {
                ManifestReading::Invalid {
                    altered: false,
                    why: format!(
                        "its manifest is damaged ({})",
                        if failures.is_empty() {
                            "no active manifest".to_string()
                        } else {
                            failures.join(", ")
                        }
                    ),
                }
            } else {
                ManifestReading::None
            };
        };
        let real_failures: Vec<&String> = failures
            .iter()
            .filter(|c| c.as_str() != "signingCredential.untrusted")
            .collect();
        if !real_failures.is_empty() {
            let altered = real_failures
                .iter()
                .any(|c| c.contains("Hash.mismatch") || c.contains("hash.mismatch"));
            return ManifestReading::Invalid {
                altered,
                why: real_failures
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            };
        }
        let chain = m
            .signature_info()
            .map(|s| s.cert_chain().to_string())
            .unwrap_or_default();
        let signer = m
            .signature_info()
            .and_then(|s| s.common_name.clone().or_else(|| s.issuer.clone()))
            .unwrap_or_else(|| "an unnamed signer".into());
        let ours = self.id.as_ref().is_some_and(|id| {
            let mine = certificates(&id.cert_chain_pem);
            certificates(&chain)
                .first()
                .is_some_and(|leaf| mine.first() == Some(leaf))
        });
        ManifestReading::Valid {
            signer,
            ours,
            claim: m
                .find_assertion::<ProvenanceClaim>(ASSERTION)
                .ok()
                .map(Box::new),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_identity_signs_and_reads_back_as_ours_and_an_edit_is_caught() {
        let id = create_identity("Example Clinic", "2026-11-30T00:00:00Z").unwrap();
        assert!(id.subject.contains("Example Clinic"));
        self_test(&id).unwrap();
        let img =
            image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([x as u8 * 3, y as u8 * 3, 90]));
        let jpeg = sameframe_core::publish::strip::jpeg(&img, 90).unwrap();
        let claim = ProvenanceClaim {
            store_id: "st".into(),
            publication_id: "pub_1".into(),
            channel: "website".into(),
            scope: "publication".into(),
            layout: "single".into(),
            captures: vec![ClaimedCapture {
                capture_id: "cap_1".into(),
                sha256: "ab".repeat(32),
                label: "single".into(),
                taken: "2026-11-01".into(),
                panel: [0, 0, 64, 64],
                crop: [0, 0, 64, 64],
            }],
            consents: vec!["con_1".into()],
            checked_on: "2026-11-30".into(),
            grade: None,
            grade_override: None,
            deidentified: None,
            actions: vec![
                ClaimedAction {
                    action: "c2pa.opened".into(),
                    description: "capture cap_1 opened".into(),
                    capture_id: Some("cap_1".into()),
                },
                ClaimedAction {
                    action: "c2pa.drawing".into(),
                    description: "labels".into(),
                    capture_id: None,
                },
            ],
        };
        let signed = ClinicSigner::new(id.clone())
            .sign(&ToSign {
                image: &jpeg,
                format: "image/jpeg",
                title: "t.jpg",
                claim: &claim,
            })
            .unwrap();
        match ClinicReader::new(Some(id.clone())).read(&signed) {
            ManifestReading::Valid {
                ours: true,
                claim: Some(c),
                ..
            } => assert_eq!(*c, claim),
            other => panic!("{other:?}"),
        }
        let other = create_identity("Another Clinic", "2026-11-30T00:00:00Z").unwrap();
        assert!(matches!(
            ClinicReader::new(Some(other)).read(&signed),
            ManifestReading::Valid { ours: false, .. }
        ));
        let mut bad = signed.clone();
        let n = bad.len();
        bad[n - 200] ^= 0x10;
        assert!(matches!(
            ClinicReader::new(Some(id)).read(&bad),
            ManifestReading::Invalid { altered: true, .. }
        ));
        assert_eq!(ClinicReader::new(None).read(&jpeg), ManifestReading::None);
    }
}
