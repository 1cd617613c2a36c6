//! Confounders per capture: the checklist from `calibration/confounders.toml`, each ticked item
//! with optional text, plus the capture's free-text note. Time of day is derived from the
//! capture time, not ticked.

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

/// The recorded form of a checked input, with its label from the checklist.
pub fn entry(i: &ConfounderInput, checklist: &[ConfounderDef]) -> ConfounderEntry {
    let def = checklist.iter().find(|d| d.key == i.key);
    ConfounderEntry {
        key: i.key.clone(),
        label: def
            .map(|d| d.label.clone())
            .unwrap_or_else(|| i.key.clone()),
        text: i.text.clone(),
        disclose: def.is_none_or(|d| d.disclose),
    }
}

impl Store {
    /// The confounders recorded with a capture, labelled from the checklist.
    pub fn confounders_of(&self, capture_id: &str) -> Result<Vec<ConfounderEntry>, RecordError> {
        Ok(self.capture(capture_id)?.confounders)
    }

    /// Tick confounders on a capture after the fact (text of an already ticked item is
    /// replaced); optionally replace its note. Audited.
    pub fn set_confounders(
        &self,
        capture_id: &str,
        inputs: &[ConfounderInput],
        note: Option<&str>,
    ) -> Result<Vec<ConfounderEntry>, RecordError> {
        self.write_confounders(capture_id, inputs, note, false)
    }

    /// Make the capture's confounders exactly `inputs` (the station's checklist after an edit).
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
        let checklist = self.calibration().confounders()?;
        let checked = validate(inputs, &checklist)?;
        for c in &checked {
            if let Some(t) = &c.text {
                super::consent::check_text(&format!("confounder {}", c.key), t)?;
            }
        }
        if let Some(n) = note {
            super::consent::check_note("--note", n)?;
        }
        self.write(|tx| {
            let mut cap = self.capture_in(tx.repos(), capture_id.trim())?;
            let mut removed = Vec::new();
            if replace {
                cap.confounders.retain(|old| {
                    let keep = checked.iter().any(|c| c.key == old.key);
                    if !keep {
                        removed.push(old.key.clone());
                    }
                    keep
                });
            }
            for c in &checked {
                match cap.confounders.iter_mut().find(|e| e.key == c.key) {
                    Some(e) => e.text = c.text.clone(),
                    None => cap.confounders.push(entry(c, &checklist)),
                }
            }
            cap.confounders.sort_by(|a, b| a.key.cmp(&b.key));
            if let Some(n) = note {
                cap.note = Some(n.trim().to_string()).filter(|n| !n.is_empty());
            }
            self.update_capture_in(tx, &cap)?;
            tx.audit(
                "capture.confounders",
                serde_json::json!({ "capture": cap.id, "sha256": cap.sha256 }),
                serde_json::json!({
                    "keys": checked.iter().map(|c| c.key.as_str()).collect::<Vec<_>>(),
                    "removed": removed,
                    "note_changed": note.is_some(),
                }),
            )?;
            Ok(cap.confounders)
        })
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
