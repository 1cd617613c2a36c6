//! What the capture station measured when it took a photo: one typed record, written by the
//! station, kept with the capture, and read by `pair`, review and the audit entry of the
//! import — so every reader sees the same numbers, under the same names.

use serde::{Deserialize, Serialize};

use crate::analysis::lighting::LightingReport;
use crate::analysis::pose::PoseReport;
use crate::analysis::readiness::Readiness;
use crate::camera_info::CameraSettings;
use crate::vocab::View;

/// The station's numbers for one capture.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StationMeasurements {
    #[serde(default)]
    pub station: Option<StationInfo>,
    #[serde(default)]
    pub protocol: Option<ProtocolStep>,
    /// The traffic light and its reasons when the frame was taken.
    #[serde(default)]
    pub readiness: Option<Readiness>,
    /// Lighting of the very frame stored.
    #[serde(default)]
    pub lighting: Option<LightingReport>,
    /// Pose of the very frame stored, against `baseline_id`.
    #[serde(default)]
    pub pose: Option<PoseReport>,
    #[serde(default)]
    pub baseline_id: Option<String>,
    #[serde(default)]
    pub mm_per_px: Option<f64>,
    #[serde(default)]
    pub face_found: Option<bool>,
    #[serde(default)]
    pub camera: Option<CameraSettings>,
    /// Present when the frame was captured out of tolerance.
    #[serde(default, rename = "override")]
    pub override_: Option<Override>,
    /// The pose of the very frame stored against its baseline, re-checked as it was stored,
    /// by the measure `pair` uses (so the station, Compare and `pair` agree).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pose_at_commit: Option<crate::review::compare::PoseCheck>,
    /// The head's yaw in the frame (degrees; > 0: turned toward the patient's own left), from
    /// the face landmarks, when a face was found: what tells frontal from oblique and lateral.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_yaw_deg: Option<f64>,
}

/// Which station build took the frame, and how.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StationInfo {
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub frame_seq: u64,
    #[serde(default)]
    pub analysis_ms: f64,
    #[serde(default)]
    pub auto_capture: bool,
}

/// The protocol step the frame was taken for.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProtocolStep {
    pub key: String,
    pub step: usize,
    pub view: View,
}

/// A capture taken out of tolerance, and why the clinician took it anyway.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Override {
    pub reason: String,
    /// What was out of tolerance at that moment.
    #[serde(default)]
    pub out_of_tolerance: Vec<String>,
}

impl StationMeasurements {
    /// The override reason, if the frame was taken out of tolerance.
    pub fn override_reason(&self) -> Option<&str> {
        self.override_.as_ref().map(|o| o.reason.as_str())
    }

    /// Exposure (EV) and colour cast (a*, b*) as measured at the station.
    pub fn exposure_and_cast(&self) -> Option<(f64, [f64; 2])> {
        let l = self.lighting.as_ref()?;
        Some((l.exposure_ev?, l.cast_lab?))
    }
}

/// Read a stored measurement record leniently: a record some older station wrote with other
/// shapes is kept as absent rather than failing the whole capture.
pub(crate) fn lenient<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<StationMeasurements>, D::Error> {
    let v = Option::<serde_json::Value>::deserialize(d)?;
    Ok(v.and_then(|v| serde_json::from_value(v).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_override_reason_round_trips_under_its_station_name() {
        let m = StationMeasurements {
            override_: Some(Override {
                reason: "patient cannot hold the pose".into(),
                out_of_tolerance: vec!["pose score 61".into()],
            }),
            ..Default::default()
        };
        let json = serde_json::to_value(&m).unwrap();
        assert_eq!(json["override"]["reason"], "patient cannot hold the pose");
        let back: StationMeasurements = serde_json::from_value(json).unwrap();
        assert_eq!(back.override_reason(), Some("patient cannot hold the pose"));
    }
}
