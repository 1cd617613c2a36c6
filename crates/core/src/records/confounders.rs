//! Confounders per capture: the checklist from `calibration/confounders.toml`, each ticked item
//! with optional text, plus the capture's free-text note. Time of day is derived from the
//! capture time, not ticked.

use rusqlite::params;
use serde::Serialize;

use super::RecordError;
use crate::calibration::ConfounderDef;
use crate::store::Store;

/// A ticked confounder as given on the command line (`KEY` or `KEY=TEXT`) or in the app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfounderInput {
    pub key: String,
    pub text: Option<String>,
}

impl std::str::FromStr for ConfounderInput {
    type Err = String;
    /// `KEY` or `KEY=TEXT`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (key, text) = match s.split_once('=') {
            Some((k, t)) => (k, Some(t.trim().to_string()).filter(|t| !t.is_empty())),
            None => (s, None),
        };
        let key = key.trim().to_string();
        if key.is_empty() {
            return Err(format!("confounder {s:?} has no key"));
        }
        Ok(ConfounderInput { key, text })
    }
}

/// A recorded confounder, with its label from the checklist (or the bare key when the clinic
/// has since removed it from the file).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ConfounderEntry {
    pub key: String,
    pub label: String,
    pub text: Option<String>,
    pub disclose: bool,
}

/// Check every key against the checklist; duplicates are merged (last text wins).
pub fn validate(
    inputs: &[ConfounderInput],
    checklist: &[ConfounderDef],
) -> Result<Vec<ConfounderInput>, RecordError> {
    let mut out: Vec<ConfounderInput> = Vec::new();
    for i in inputs {
        if !checklist.iter().any(|d| d.key == i.key) {
            return Err(RecordError::UnknownConfounder {
                key: i.key.clone(),
                known: checklist
                    .iter()
                    .map(|d| d.key.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        match out.iter_mut().find(|o| o.key == i.key) {
            Some(o) => o.text = i.text.clone().or(o.text.take()),
            None => out.push(i.clone()),
        }
    }
    Ok(out)
}

impl Store {
    /// The confounders recorded on a capture.
    pub fn confounders_of(&self, capture_id: &str) -> Result<Vec<ConfounderEntry>, RecordError> {
        let checklist = self.calibration().confounders()?;
        let mut stmt = self.conn().prepare(
            "SELECT key, text FROM capture_confounder WHERE capture_id = ?1 ORDER BY key",
        )?;
        let rows = stmt.query_map([capture_id], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (key, text) = row?;
            let def = checklist.iter().find(|d| d.key == key);
            out.push(ConfounderEntry {
                label: def.map(|d| d.label.clone()).unwrap_or_else(|| key.clone()),
                disclose: def.is_none_or(|d| d.disclose),
                key,
                text,
            });
        }
        Ok(out)
    }

    /// Add or update confounders (and optionally the note) of an existing capture — the
    /// station lets staff fill the checklist after a sequence. Audited.
    pub fn set_confounders(
        &self,
        capture_id: &str,
        inputs: &[ConfounderInput],
        note: Option<&str>,
    ) -> Result<Vec<ConfounderEntry>, RecordError> {
        self.write_confounders(capture_id, inputs, note, false)
    }

    /// Make the capture's checklist exactly `inputs` (items not listed are unticked), as the
    /// station's confounder panel does. Audited with the keys removed.
    pub fn replace_confounders(
        &self,
        capture_id: &str,
        inputs: &[ConfounderInput],
        note: Option<&str>,
    ) -> Result<Vec<ConfounderEntry>, RecordError> {
        self.write_confounders(capture_id, inputs, note, true)
    }

    fn write_confounders(
        &self,
        capture_id: &str,
        inputs: &[ConfounderInput],
        note: Option<&str>,
        replace: bool,
    ) -> Result<Vec<ConfounderEntry>, RecordError> {
        let cap = self.capture(capture_id)?;
        let checked = validate(inputs, &self.calibration().confounders()?)?;
        let tx = self.write_tx()?;
        let mut removed = Vec::new();
        if replace {
            for old in &cap.confounders {
                if !checked.iter().any(|c| c.key == old.key) {
                    tx.execute(
                        "DELETE FROM capture_confounder WHERE capture_id = ?1 AND key = ?2",
                        params![cap.id, old.key],
                    )?;
                    removed.push(old.key.clone());
                }
            }
        }
        for c in &checked {
            tx.execute(
                "INSERT INTO capture_confounder (capture_id, key, text) VALUES (?1, ?2, ?3)
                 ON CONFLICT(capture_id, key) DO UPDATE SET text = excluded.text",
                params![cap.id, c.key, c.text],
            )?;
        }
        if let Some(n) = note {
            tx.execute(
                "UPDATE capture SET note = ?2 WHERE id = ?1",
                params![cap.id, Some(n.trim()).filter(|n| !n.is_empty())],
            )?;
        }
        self.audit(
            &tx,
            "capture.confounders",
            serde_json::json!({ "capture": cap.id, "sha256": cap.sha256 }),
            serde_json::json!({
                "keys": checked.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(),
                "removed": removed,
                "note_changed": note.is_some(),
            }),
        )?;
        tx.commit()?;
        self.confounders_of(&cap.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_key_and_text() {
        let c: ConfounderInput = "makeup_present=light foundation".parse().unwrap();
        assert_eq!(c.key, "makeup_present");
        assert_eq!(c.text.as_deref(), Some("light foundation"));
        let c: ConfounderInput = "recent_sun_exposure".parse().unwrap();
        assert_eq!(c.text, None);
        assert!("=x".parse::<ConfounderInput>().is_err());
    }

    #[test]
    fn unknown_keys_are_named() {
        let list = vec![ConfounderDef {
            key: "a".into(),
            label: "A".into(),
            disclose: true,
        }];
        let e = validate(
            &[ConfounderInput {
                key: "b".into(),
                text: None,
            }],
            &list,
        )
        .unwrap_err();
        assert!(e.to_string().contains("\"b\"") && e.to_string().contains("known: a"));
    }
}
