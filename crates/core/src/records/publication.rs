//! Publications: where a clinic image went out (channel, address, date, purpose) and which
//! captures it shows, recorded so that a withdrawal can list every take-down.

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::RecordError;
use crate::store::repo::PublicationRow;
use crate::store::seal::check_column;
use crate::store::{Store, StoreError};

/// One capture a publication shows.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PublicationSource {
    pub capture_id: String,
    pub consent_id: String,
    pub patient_id: String,
    pub sha256: String,
    /// Which part of the published image it fills (JSON of the panel), when known.
    #[serde(default)]
    pub panel: Option<serde_json::Value>,
    #[serde(default)]
    pub distance: Option<f64>,
}

/// A recorded publication (also what its row's body holds).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Publication {
    #[serde(rename = "publication_id")]
    pub id: String,
    pub file_sha256: String,
    pub channel: String,
    #[serde(default)]
    pub url: Option<String>,
    pub date: String,
    /// "publication" or "teaching".
    pub purpose: String,
    pub recorded_at: String,
    pub actor: String,
    #[serde(default)]
    pub sources: Vec<PublicationSource>,
}

impl Publication {
    /// The IDs of the captures it shows.
    pub fn capture_ids(&self) -> Vec<String> {
        self.sources.iter().map(|s| s.capture_id.clone()).collect()
    }
}

/// A new publication.
#[derive(Clone, Debug)]
pub struct NewPublication<'a> {
    pub file_sha256: &'a str,
    pub channel: &'a str,
    pub url: Option<&'a str>,
    pub date: &'a str,
    pub purpose: &'a str,
    /// (capture ID, panel as JSON, distance) of each source.
    pub sources: Vec<(String, Option<serde_json::Value>, Option<f64>)>,
}

impl Store {
    /// The publication a row holds, checked.
    pub(crate) fn publication_of(&self, row: PublicationRow) -> Result<Publication, StoreError> {
        let p: Publication = self.seal().open("publication", &row.id, &row.body)?;
        check_column("publication", &row.id, "ID", &row.id, &p.id)?;
        check_column(
            "publication",
            &row.id,
            "file hash",
            &row.file_sha256,
            &p.file_sha256,
        )?;
        Ok(p)
    }

    /// Record where a published image went out, with its sources at that moment.
    pub fn record_publication(&self, new: NewPublication<'_>) -> Result<String, RecordError> {
        for (what, text) in [("--channel", Some(new.channel)), ("--url", new.url)] {
            if let Some(t) = text {
                super::consent::check_text(what, t)?;
            }
        }
        let mut sources = Vec::new();
        for (id, panel, distance) in &new.sources {
            let cap = self.capture(id)?;
            if sources
                .iter()
                .any(|s: &PublicationSource| s.capture_id == cap.id)
            {
                continue;
            }
            sources.push(PublicationSource {
                capture_id: cap.id,
                consent_id: cap.consent_id,
                patient_id: cap.patient_id,
                sha256: cap.sha256,
                panel: panel.clone(),
                distance: *distance,
            });
        }
        let p = Publication {
            id: crate::ids::new_id("pub")?,
            file_sha256: new.file_sha256.to_string(),
            channel: new.channel.to_string(),
            url: new.url.map(str::to_string),
            date: new.date.to_string(),
            purpose: new.purpose.to_string(),
            recorded_at: crate::timefmt::now_utc(),
            actor: self.actor().to_string(),
            sources,
        };
        let row = PublicationRow {
            id: p.id.clone(),
            file_sha256: p.file_sha256.clone(),
            body: self.seal().seal("publication", &p.id, &p)?,
            recorded_at: p.recorded_at.clone(),
        };
        self.write(|tx| {
            tx.insert_publication(&row)?;
            tx.audit(
                "publication.record",
                json!({ "publication": p.id, "sha256": p.file_sha256, "captures": p.capture_ids() }),
                json!({ "channel": p.channel, "date": p.date, "purpose": p.purpose }),
            )?;
            Ok::<_, StoreError>(())
        })?;
        Ok(p.id)
    }

    /// The publications rows hold, checked, by date.
    pub(crate) fn publications_in(
        &self,
        rows: Vec<PublicationRow>,
    ) -> Result<Vec<Publication>, RecordError> {
        let mut out = rows
            .into_iter()
            .map(|r| self.publication_of(r))
            .collect::<Result<Vec<_>, _>>()?;
        out.sort_by(|a, b| (&a.date, &a.id).cmp(&(&b.date, &b.id)));
        Ok(out)
    }

    /// Every recorded publication, by date.
    pub fn publications(&self) -> Result<Vec<Publication>, RecordError> {
        self.publications_in(self.read(|r| r.publications())?)
    }

    /// Publications of the file with SHA-256 `sha`, by date.
    pub fn publications_of_file(&self, sha: &str) -> Result<Vec<Publication>, RecordError> {
        self.publications_in(self.read(|r| r.publications_of_file(sha))?)
    }

    /// Publications showing a capture of `consent_id` for one of `purposes`, by date.
    pub fn publications_of_consent(
        &self,
        consent_id: &str,
        purposes: &[&str],
    ) -> Result<Vec<Publication>, RecordError> {
        Ok(of_consent(self.publications()?, consent_id, purposes))
    }
}

/// The publications among `pubs` that show a capture of `consent_id` for one of `purposes`.
pub fn of_consent(pubs: Vec<Publication>, consent_id: &str, purposes: &[&str]) -> Vec<Publication> {
    pubs.into_iter()
        .filter(|p| purposes.contains(&p.purpose.as_str()))
        .filter(|p| p.sources.iter().any(|s| s.consent_id == consent_id))
        .collect()
}
