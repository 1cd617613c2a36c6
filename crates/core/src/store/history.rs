//! Is the store's history whole? One check over the three things that say so:
//!
//! - the audit chain: every hash, and every seal (see [`super::audit`]);
//! - the rows the rules read, replayed from the chain and compared (see [`super::state`]);
//! - the deletion certificates: each records the audit entry its withdrawal committed as (its
//!   **anchor**); a store that no longer has that entry lost committed history (restored from
//!   an older copy, or a database that lost its last writes), however consistent it looks.
//!
//! A chain head recorded outside the store (printed by `audit verify`, on every certificate)
//! is checked with `--expect-head`: entries removed from the end are found that way.

use serde::{Deserialize, Serialize};

use super::audit::{self, BrokenEntry, ChainCheck};
use super::repo::{AuditRow, BlobKey, BlobKind};
use super::state::{self, Replay, StateCheck};
use super::{Store, StoreError};

/// A point of the chain, as recorded outside it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Anchor {
    pub seq: i64,
    pub hash: String,
}

/// A certificate that does not fit the chain.
#[derive(Clone, Debug, Serialize)]
pub struct CertificateProblem {
    pub certificate: String,
    pub problem: String,
}

/// The whole check. In JSON, the chain's figures are at the top (`entries`, `head_hash`,
/// `first_broken`, `sealed_from`), and `ok` is true only when the chain, the rows and the
/// certificates all are.
#[derive(Clone, Debug, Serialize)]
pub struct HistoryCheck {
    pub ok: bool,
    pub entries: i64,
    pub head_hash: Option<String>,
    pub first_broken: Option<BrokenEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed_from: Option<i64>,
    #[serde(skip)]
    pub chain: ChainCheck,
    pub state: StateCheck,
    pub certificates_checked: usize,
    pub certificate_problems: Vec<CertificateProblem>,
    /// Entries after the expected head, when one was given and found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entries_after_expected_head: Option<i64>,
}

impl HistoryCheck {
    /// Every problem as one line, naming the entry, row or certificate.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(b) = &self.chain.first_broken {
            out.push(format!("audit entry {}: {}", b.seq, b.reason));
        }
        for p in &self.state.problems {
            out.push(format!("{} {} {}", p.table, p.id, p.problem));
        }
        for p in &self.certificate_problems {
            out.push(format!("certificate {} {}", p.certificate, p.problem));
        }
        out
    }
}

impl Store {
    /// The chain head now.
    pub fn audit_anchor(&self) -> Result<Option<Anchor>, StoreError> {
        Ok(self
            .read(|r| r.audit_head())?
            .map(|(seq, hash)| Anchor { seq, hash }))
    }

    /// Check the chain, the rows against it, and the certificates against it; with
    /// `expect_head`, also that the chain still holds that entry.
    pub fn check_history(&self, expect_head: Option<&str>) -> Result<HistoryCheck, StoreError> {
        let seal = self.seal();
        let keyed = seal.is_keyed().then_some(seal);
        let mut entries: Vec<(i64, String, String, String)> = Vec::new();
        let (chain, st) = self.read(|r| {
            let mut replay = Replay::default();
            let chain = audit::verify_each(r, self.store_id(), keyed, &mut |row: &AuditRow| {
                replay.apply(row);
                entries.push((
                    row.seq,
                    row.hash.clone(),
                    row.action.clone(),
                    row.details.clone(),
                ));
            })?;
            let st = state::check(r, seal, &replay)?;
            Ok::<_, StoreError>((chain, st))
        })?;
        let mut chain = chain;
        if chain.ok && keyed.is_some() && chain.sealed_from.is_none() && chain.entries > 1 {
            chain.ok = false;
            chain.first_broken = Some(BrokenEntry {
                seq: chain.entries,
                reason: "no entry is sealed, though the store is encrypted (the log was rewritten without the store key)".into(),
            });
        }
        let mut after_head = None;
        if let Some(want) = expect_head {
            match entries.iter().find(|e| e.1 == want) {
                Some(e) => after_head = Some(chain.entries - e.0),
                None if chain.ok => {
                    chain.ok = false;
                    chain.first_broken = Some(BrokenEntry {
                        seq: chain.entries + 1,
                        reason: format!(
                            "the expected head {want} is not in the chain (entries were removed)"
                        ),
                    });
                }
                None => {}
            }
        }
        let (checked, problems) = self.check_certificates(&entries)?;
        Ok(HistoryCheck {
            ok: chain.ok && st.ok() && problems.is_empty(),
            entries: chain.entries,
            head_hash: chain.head_hash.clone(),
            first_broken: chain.first_broken.clone(),
            sealed_from: chain.sealed_from,
            chain,
            state: st,
            certificates_checked: checked,
            certificate_problems: problems,
            entries_after_expected_head: after_head,
        })
    }

    /// Every deletion certificate the store keeps, against the chain's entries.
    fn check_certificates(
        &self,
        entries: &[(i64, String, String, String)],
    ) -> Result<(usize, Vec<CertificateProblem>), StoreError> {
        let mut problems = Vec::new();
        let mut checked = 0;
        for listed in self.blobs().list(BlobKind::Certificate)? {
            let Some(BlobKey::Certificate(name)) = &listed.key else {
                continue;
            };
            if !name.ends_with(".json") {
                continue;
            }
            checked += 1;
            let bytes = self.blobs().get(&BlobKey::Certificate(name.clone()))?;
            let problem = |p: String| CertificateProblem {
                certificate: name.clone(),
                problem: p,
            };
            let cert: crate::purge::Certificate = match serde_json::from_slice(&bytes) {
                Ok(c) => c,
                Err(e) => {
                    problems.push(problem(format!("is not a deletion certificate: {e}")));
                    continue;
                }
            };
            if cert.store_id != self.store_id() {
                continue;
            }
            if let Some(a) = &cert.audit_anchor
                && !entries.iter().any(|e| e.0 == a.seq && e.1 == a.hash)
            {
                problems.push(problem(format!(
                    "records the withdrawal of consent {} as audit entry {} ({}), which the chain no longer has: the store lost committed history (put back from an older copy, or its last writes were lost)",
                    cert.consent_id, a.seq, a.hash
                )));
                continue;
            }
            let sha = crate::ids::sha256_hex(&bytes);
            let recorded = entries
                .iter()
                .any(|e| e.2 == "purge.complete" && e.3.contains(&sha));
            let pending = self
                .read(|r| r.pending_purge_job(&cert.consent_id))?
                .is_some_and(|j| j.id == cert.job_id);
            if !recorded && !pending {
                problems.push(problem(format!(
                    "is not recorded in the audit chain (purge.complete with its SHA-256 {sha}) and its withdrawal of consent {} is not pending: the store lost committed history, or the certificate was altered",
                    cert.consent_id
                )));
            }
        }
        Ok((checked, problems))
    }
}
