//! View protocols: the ordered views the station captures for a treatment area, defined as
//! data in `calibration/protocols.toml`, and where a patient's visit stands in one.

use serde::{Deserialize, Serialize};

use super::{Area, RecordError, View};
use crate::calibration::{Calibration, CalibrationError};
use crate::store::Store;

/// One view of a protocol.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Step {
    pub view: View,
    /// How to position the patient, shown at the station.
    #[serde(default)]
    pub instructions: String,
}

/// A view sequence for one treatment area.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct Protocol {
    pub key: String,
    pub label: String,
    pub area: Area,
    #[serde(rename = "step")]
    pub steps: Vec<Step>,
}

#[derive(Deserialize)]
struct ProtocolFile {
    #[serde(default)]
    protocol: Vec<Protocol>,
}

/// The protocols, validated: keys unique and snake_case, at least one step each, no view twice
/// in one protocol (a step's baseline is the patient's baseline for that area and view).
///
/// ```
/// use sameframe_core::calibration::Calibration;
/// let all = sameframe_core::records::protocol::protocols(&Calibration::builtin()).unwrap();
/// let face = all.iter().find(|p| p.key == "face").unwrap();
/// assert_eq!(face.steps.len(), 5);
/// ```
pub fn protocols(cal: &Calibration) -> Result<Vec<Protocol>, CalibrationError> {
    let (_, origin) = cal.text("protocols.toml")?;
    let file: ProtocolFile = cal.load("protocols.toml")?;
    let bad = |message: String| CalibrationError::Parse {
        origin: origin.clone(),
        message,
    };
    let mut keys = std::collections::HashSet::new();
    for p in &file.protocol {
        let snake = !p.key.is_empty()
            && p.key
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !snake {
            return Err(bad(format!("protocol key {:?} must be snake_case", p.key)));
        }
        if !keys.insert(p.key.clone()) {
            return Err(bad(format!("protocol key {:?} appears twice", p.key)));
        }
        if p.steps.is_empty() {
            return Err(bad(format!("protocol {:?} has no steps", p.key)));
        }
        let mut views = std::collections::HashSet::new();
        for s in &p.steps {
            if !views.insert(s.view) {
                return Err(bad(format!(
                    "protocol {:?} lists view {} twice",
                    p.key, s.view
                )));
            }
        }
    }
    if file.protocol.is_empty() {
        return Err(bad("no [[protocol]] defined".into()));
    }
    Ok(file.protocol)
}

/// Find a protocol by key.
pub fn protocol(cal: &Calibration, key: &str) -> Result<Protocol, RecordError> {
    let all = protocols(cal)?;
    let known = all
        .iter()
        .map(|p| p.key.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    all.iter()
        .find(|p| p.key == key.trim())
        .cloned()
        .ok_or_else(|| RecordError::Invalid {
            what: format!("protocol {key:?}"),
            why: format!("no such protocol (known: {known})"),
        })
}

/// Where one step stands for a patient (and visit).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StepStatus {
    pub view: View,
    pub instructions: String,
    /// The patient's baseline for this area and view: a new capture follows it.
    pub baseline_id: Option<String>,
    /// Captures of this view taken at the visit (newest last).
    pub captured: Vec<String>,
}

/// A patient's progress through a protocol.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ProtocolStatus {
    pub protocol: String,
    pub label: String,
    pub area: Area,
    pub patient_ref: String,
    pub visit_id: Option<String>,
    pub steps: Vec<StepStatus>,
    /// The first step not yet captured at this visit (None when all are).
    pub next_step: Option<usize>,
}

impl Store {
    /// The patient's progress through `protocol_key`: each view's baseline and the captures
    /// taken at `visit_id`.
    pub fn protocol_status(
        &self,
        patient_ref: &str,
        protocol_key: &str,
        visit_id: Option<&str>,
    ) -> Result<ProtocolStatus, RecordError> {
        let patient = self.patient_by_ref(patient_ref)?;
        let proto = protocol(self.calibration(), protocol_key)?;
        if let Some(v) = visit_id {
            let visit = self.visit(v)?;
            if visit.patient_id != patient.id {
                return Err(RecordError::VisitOfOtherPatient {
                    visit: visit.id,
                    patient: patient.reference,
                });
            }
        }
        let mut steps = Vec::with_capacity(proto.steps.len());
        for s in &proto.steps {
            let baseline_id = self.series_baseline(&patient.id, proto.area, s.view)?;
            let captured = match visit_id {
                Some(v) => {
                    self.read(|r| r.captures_at_visit(&patient.id, v.trim(), proto.area, s.view))?
                }
                None => Vec::new(),
            };
            steps.push(StepStatus {
                view: s.view,
                instructions: s.instructions.clone(),
                baseline_id,
                captured,
            });
        }
        let next_step = steps.iter().position(|s| s.captured.is_empty());
        Ok(ProtocolStatus {
            protocol: proto.key,
            label: proto.label,
            area: proto.area,
            patient_ref: patient.reference,
            visit_id: visit_id.map(str::to_string),
            steps,
            next_step,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_protocols_cover_the_areas() {
        let all = protocols(&Calibration::builtin()).unwrap();
        let views = |k: &str| -> Vec<View> {
            all.iter()
                .find(|p| p.key == k)
                .unwrap()
                .steps
                .iter()
                .map(|s| s.view)
                .collect()
        };
        assert_eq!(
            views("face"),
            vec![
                View::Frontal,
                View::ObliqueLeft45,
                View::ObliqueRight45,
                View::LateralLeft90,
                View::LateralRight90
            ]
        );
        assert_eq!(
            views("scalp"),
            vec![View::ScalpVertex, View::ScalpFrontal, View::ScalpCrown]
        );
        assert!(!views("neck").is_empty() && !views("hands").is_empty());
        assert!(
            all.iter()
                .all(|p| p.steps.iter().all(|s| !s.instructions.is_empty()))
        );
    }

    #[test]
    fn a_view_twice_is_rejected_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("protocols.toml"),
            "[[protocol]]\nkey = \"x\"\nlabel = \"X\"\narea = \"face\"\n[[protocol.step]]\nview = \"frontal\"\n[[protocol.step]]\nview = \"frontal\"\n",
        )
        .unwrap();
        let e = protocols(&Calibration::with_dirs(vec![dir.path().to_path_buf()])).unwrap_err();
        let m = e.to_string();
        assert!(m.contains("twice") && m.contains("protocols.toml"), "{m}");
    }

    #[test]
    fn unknown_views_and_areas_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("protocols.toml"),
            "[[protocol]]\nkey = \"x\"\nlabel = \"X\"\narea = \"face\"\n[[protocol.step]]\nview = \"sideways\"\n",
        )
        .unwrap();
        let e = protocols(&Calibration::with_dirs(vec![dir.path().to_path_buf()])).unwrap_err();
        assert!(e.to_string().contains("sideways"), "{e}");
    }
}
