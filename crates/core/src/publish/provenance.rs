//! What a publication copy's provenance manifest says, and the two seams through which the
//! standard format (C2PA, in `sameframe-interop`) signs and reads it. The core decides what is
//! claimed and what a reading means; it never sees the format's types.

use serde::{Deserialize, Serialize};

/// The label of the clinic's own assertion in the manifest.
pub const ASSERTION: &str = "org.sameframe.publication";

/// One source capture as the manifest names it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClaimedCapture {
    pub capture_id: String,
    pub sha256: String,
    /// "before", "after" or "single".
    pub label: String,
    /// The day it was taken (YYYY-MM-DD).
    pub taken: String,
    /// Where it sits in the copy: [x, y, w, h] in the copy's pixels.
    pub panel: [u32; 4],
    /// Which part of the capture it shows: [x, y, w, h] in the capture's pixels.
    pub crop: [u32; 4],
}

/// One edit, as a C2PA action (`c2pa.opened`, `c2pa.placed`, `c2pa.cropped`, `c2pa.resized`,
/// `c2pa.drawing`, `c2pa.redacted`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClaimedAction {
    pub action: String,
    pub description: String,
    /// The capture it applies to, when one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture_id: Option<String>,
}

/// The clinic's assertion: everything a reviewer needs to trace the copy.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProvenanceClaim {
    /// The store the captures are in (opaque).
    pub store_id: String,
    pub publication_id: String,
    pub channel: String,
    /// The consent scope the publication relies on.
    pub scope: String,
    pub layout: String,
    pub captures: Vec<ClaimedCapture>,
    /// The consents relied on, with the day they were checked.
    pub consents: Vec<String>,
    pub checked_on: String,
    /// The pair's comparability grade, when a pair.
    #[serde(default)]
    pub grade: Option<char>,
    /// The reason a grade below the clinic's minimum was accepted, when it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade_override: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deidentified: Option<String>,
    pub actions: Vec<ClaimedAction>,
}

/// An image to sign and what to claim about it.
pub struct ToSign<'a> {
    /// The encoded copy, with no metadata.
    pub image: &'a [u8],
    /// "image/jpeg" or "image/png".
    pub format: &'a str,
    pub title: &'a str,
    pub claim: &'a ProvenanceClaim,
}

/// Signs a copy with the clinic's identity (implemented by `sameframe-interop`).
pub trait ProvenanceSigner {
    /// The signed file's bytes.
    fn sign(&self, what: &ToSign<'_>) -> Result<Vec<u8>, String>;
    /// Who signs, for messages: the certificate's subject.
    fn signer_name(&self) -> String;
}

/// What a file's manifest says.
#[derive(Clone, Debug, PartialEq)]
pub enum ManifestReading {
    /// The file carries no manifest (stripped by a platform, or never signed).
    None,
    /// A manifest whose signature and content hash verify.
    Valid {
        /// The signer's certificate subject.
        signer: String,
        /// True when it is signed by this clinic's certificate.
        ours: bool,
        /// The clinic's assertion, when the manifest has one.
        claim: Option<Box<ProvenanceClaim>>,
    },
    /// A manifest that does not verify: `altered` when the pixels changed after signing.
    Invalid { altered: bool, why: String },
}

impl ManifestReading {
    /// The captures a valid manifest signed by this clinic names (none otherwise).
    pub fn our_captures(&self) -> Vec<String> {
        match self {
            ManifestReading::Valid {
                ours: true,
                claim: Some(c),
                ..
            } => c.captures.iter().map(|c| c.capture_id.clone()).collect(),
            _ => Vec::new(),
        }
    }
}

/// Reads a file's manifest (implemented by `sameframe-interop`).
pub trait ProvenanceReader: Sync {
    fn read(&self, bytes: &[u8]) -> ManifestReading;
}
