//! The clinic's signing identity for provenance manifests: a certificate chain, its private
//! key and the trust anchor a reviewer checks it against. Kept in the store (sealed like every
//! record body, so an encrypted store never holds the key in the clear, and shared by every
//! station of a shared store); changes are audited by the certificate's digest, never the key.

use serde::{Deserialize, Serialize};

use crate::records::RecordError;
use crate::store::{Store, StoreError};

/// The row the identity is kept in.
const ROW: &str = "provenance.signing_identity";

/// A signing identity.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct SigningIdentity {
    /// The signing certificate first, then its issuers (PEM).
    pub cert_chain_pem: String,
    /// The signing certificate's private key (PKCS#8 PEM).
    pub private_key_pem: String,
    /// The root a reviewer trusts (PEM).
    pub trust_anchor_pem: String,
    /// The signing certificate's subject, for messages.
    pub subject: String,
    /// SHA-256 of the signing certificate (DER), hex.
    pub leaf_sha256: String,
    /// "created" (by `publish keys init`) or "imported".
    pub origin: String,
    pub created_at: String,
}

impl std::fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("subject", &self.subject)
            .field("leaf_sha256", &self.leaf_sha256)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// The clinic's signing identity, when one was set up.
    pub fn signing_identity(&self) -> Result<Option<SigningIdentity>, RecordError> {
        let Some(body) = self.read(|r| r.setting(ROW))? else {
            return Ok(None);
        };
        Ok(Some(self.seal().open("setting", ROW, &body)?))
    }

    /// Keep `id` as the clinic's signing identity. An existing one is replaced only when
    /// `replace` is set (copies signed before stay verifiable against the old anchor).
    pub fn set_signing_identity(
        &self,
        id: &SigningIdentity,
        replace: bool,
    ) -> Result<(), RecordError> {
        let old = self.signing_identity()?;
        if let (Some(old), false) = (&old, replace) {
            return Err(RecordError::Invalid {
                what: "signing identity".into(),
                why: format!(
                    "this store already has one ({}, certificate sha256 {}): give --replace to change it",
                    old.subject, old.leaf_sha256
                ),
            });
        }
        let body = self.seal().seal("setting", ROW, id)?;
        self.write(|tx| {
            tx.set_setting(ROW, &body)?;
            tx.audit(
                "provenance.identity",
                serde_json::json!({ "certificate_sha256": id.leaf_sha256 }),
                serde_json::json!({
                    "subject": id.subject, "origin": id.origin,
                    "replaced": old.as_ref().map(|o| &o.leaf_sha256),
                }),
            )?;
            Ok::<_, StoreError>(())
        })?;
        Ok(())
    }
}
