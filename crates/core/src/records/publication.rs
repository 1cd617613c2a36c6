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
    /// The published file's name when it was recorded (the file itself is never stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file_name: Option<String>,
    /// Marked as not a patient photo (stock, illustration): a review does not ask for its
    /// consent evidence.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_patient: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The take-down a withdrawal asked for, while it is open and once done. Kept after an
    /// erasure (no image data: the file's hash, channel and address) so the erasure can be
    /// honoured and proven.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub takedown: Option<TakedownState>,
    /// Set when the kit made the copy (`publish prepare`): how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prepared: Option<PreparedInfo>,
}

/// How a copy made by the kit was prepared.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PreparedInfo {
    pub layout: String,
    #[serde(default)]
    pub grade: Option<char>,
    /// The reason a grade below the clinic's minimum was accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade_override: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deidentified: Option<String>,
    pub burned_in: bool,
    /// The subject of the certificate that signed its provenance manifest.
    pub signer: String,
}

/// A take-down of a publication, from the withdrawal that asked for it to its evidence.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct TakedownState {
    /// When the withdrawal asked for it, and by which job.
    pub requested_at: String,
    pub job_id: String,
    pub consent_id: String,
    /// The day it is due (the withdrawal's date plus the `takedown.due_days` setting).
    pub due: String,
    /// "open" or "done".
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_by: Option<String>,
    /// The evidence file's name and SHA-256 (the file itself stays with the clinic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl TakedownState {
    pub fn is_open(&self) -> bool {
        self.status == "open"
    }

    /// Open and past its due day.
    pub fn is_overdue(&self, today: chrono::NaiveDate) -> bool {
        self.is_open() && crate::timefmt::parse_date(&self.due).is_some_and(|due| today > due)
    }
}

/// Channels that are printed matter: a take-down there is a recall, not a removal request.
pub fn is_print_channel(channel: &str) -> bool {
    let c = channel.to_lowercase();
    [
        "print",
        "brochure",
        "flyer",
        "leaflet",
        "poster",
        "magazine",
        "newspaper",
        "booklet",
        "catalogue",
        "catalog",
        "billboard",
    ]
    .iter()
    .any(|w| c.contains(w))
}

/// What to do to take a publication down, by channel.
pub fn takedown_instruction(p: &Publication) -> String {
    if is_print_channel(&p.channel) {
        format!(
            "printed matter ({}): stop distributing it, withdraw and destroy remaining copies, remove the image from the print files, and do not reprint",
            p.channel
        )
    } else if let Some(url) = &p.url {
        format!(
            "remove the image from {url} ({}), and ask the platform to clear cached and shared copies",
            p.channel
        )
    } else {
        format!(
            "remove the image from {} (no address was recorded: find every place it appears there)",
            p.channel
        )
    }
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
    /// The ID to record it under (a prepared copy's manifest names it before it is recorded).
    pub id: Option<String>,
    pub file_sha256: &'a str,
    pub channel: &'a str,
    pub url: Option<&'a str>,
    pub date: &'a str,
    pub purpose: &'a str,
    /// (capture ID, panel as JSON, distance) of each source.
    pub sources: Vec<(String, Option<serde_json::Value>, Option<f64>)>,
    pub file_name: Option<&'a str>,
    pub not_patient: bool,
    pub note: Option<&'a str>,
    pub prepared: Option<PreparedInfo>,
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
        for (what, text) in [
            ("--channel", Some(new.channel)),
            ("--url", new.url),
            ("file name", new.file_name),
        ] {
            if let Some(t) = text {
                super::consent::check_text(what, t)?;
            }
        }
        if let Some(n) = new.note {
            super::consent::check_note("--note", n)?;
        }
        if new.not_patient && !new.sources.is_empty() {
            return Err(RecordError::Invalid {
                what: new.file_sha256.to_string(),
                why: format!(
                    "it is marked as not a patient photo, but it shows {} stored capture(s): it is a patient photo",
                    new.sources.len()
                ),
            });
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
            id: match new.id {
                Some(id) => id,
                None => crate::ids::new_id("pub")?,
            },
            file_sha256: new.file_sha256.to_string(),
            channel: new.channel.to_string(),
            url: new.url.map(str::to_string),
            date: new.date.to_string(),
            purpose: new.purpose.to_string(),
            recorded_at: crate::timefmt::now_utc(),
            actor: self.actor().to_string(),
            sources,
            file_name: new.file_name.map(str::to_string),
            not_patient: new.not_patient,
            note: new.note.map(str::to_string),
            takedown: None,
            prepared: new.prepared,
        };
        let row = self.publication_row(&p)?;
        self.write(|tx| {
            tx.insert_publication(&row)?;
            tx.audit(
                "publication.record",
                json!({ "publication": p.id, "sha256": p.file_sha256, "captures": p.capture_ids() }),
                json!({ "channel": p.channel, "date": p.date, "purpose": p.purpose, "not_patient": p.not_patient, "prepared": p.prepared }),
            )?;
            Ok::<_, StoreError>(())
        })?;
        Ok(p.id)
    }

    /// The row holding `p`, sealed.
    pub(crate) fn publication_row(&self, p: &Publication) -> Result<PublicationRow, StoreError> {
        Ok(PublicationRow {
            id: p.id.clone(),
            file_sha256: p.file_sha256.clone(),
            body: self.seal().seal("publication", &p.id, p)?,
            recorded_at: p.recorded_at.clone(),
        })
    }

    /// One recorded publication.
    pub fn publication(&self, id: &str) -> Result<Publication, RecordError> {
        let id = id.trim();
        self.publications()?
            .into_iter()
            .find(|p| p.id == id)
            .ok_or_else(|| RecordError::NotFound {
                what: "publication or take-down",
                id: id.to_string(),
            })
    }

    /// Publications with a take-down (open ones only with `open_only`), oldest due first.
    pub fn takedown_list(&self, open_only: bool) -> Result<Vec<Publication>, RecordError> {
        let mut out: Vec<Publication> = self
            .publications()?
            .into_iter()
            .filter(|p| {
                p.takedown
                    .as_ref()
                    .is_some_and(|t| !open_only || t.is_open())
            })
            .collect();
        out.sort_by(|a, b| {
            let key = |p: &Publication| {
                p.takedown
                    .as_ref()
                    .map(|t| (!t.is_open(), t.due.clone()))
                    .unwrap_or_default()
            };
            key(a).cmp(&key(b)).then(a.id.cmp(&b.id))
        });
        Ok(out)
    }

    /// Close a take-down with its evidence (a file's name and hash, or a note), audited.
    pub fn takedown_done(
        &self,
        id: &str,
        evidence: Option<(&str, &str)>,
        note: Option<&str>,
    ) -> Result<Publication, RecordError> {
        if evidence.is_none() && note.is_none_or(|n| n.trim().is_empty()) {
            return Err(RecordError::Invalid {
                what: id.to_string(),
                why: "a take-down is closed with its evidence: --evidence FILE (a screenshot, the platform's confirmation) or --note TEXT".into(),
            });
        }
        if let Some(n) = note {
            super::consent::check_note("--note", n)?;
        }
        if let Some((name, _)) = evidence {
            super::consent::check_text("--evidence", name)?;
        }
        let mut p = self.publication(id)?;
        let Some(t) = p.takedown.as_mut() else {
            return Err(RecordError::Invalid {
                what: p.id.clone(),
                why: "no take-down was asked for this publication (a withdrawal asks for one)"
                    .into(),
            });
        };
        if !t.is_open() {
            return Err(RecordError::Invalid {
                what: p.id.clone(),
                why: format!(
                    "this take-down was closed on {} by {}",
                    t.done_at.as_deref().unwrap_or("?"),
                    t.done_by.as_deref().unwrap_or("?")
                ),
            });
        }
        t.status = "done".into();
        t.done_at = Some(crate::timefmt::now_utc());
        t.done_by = Some(self.actor().to_string());
        t.evidence_name = evidence.map(|(n, _)| n.to_string());
        t.evidence_sha256 = evidence.map(|(_, h)| h.to_string());
        t.note = note.map(|n| n.trim().to_string());
        let due = t.due.clone();
        let row = self.publication_row(&p)?;
        self.write(|tx| {
            tx.update_publication(&row)?;
            tx.audit(
                "takedown.done",
                json!({ "publication": p.id, "sha256": p.file_sha256 }),
                json!({ "channel": p.channel, "due": due,
                        "evidence_sha256": evidence.map(|(_, h)| h), "note": note.is_some() }),
            )?;
            Ok::<_, StoreError>(())
        })?;
        Ok(p)
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
