//! `calibration/treatment.toml`: the clinic's definition of success, the injection depths and
//! techniques it uses, the immediate skin responses it records, and the zone templates per
//! treatment area.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::calibration::{Calibration, CalibrationError};
use crate::publish::config::PublishConfig;
use crate::vocab::Area;

/// The clinic's treatment-record rules.
#[derive(Clone, Debug, Deserialize)]
pub struct TreatmentConfig {
    pub treatment: Rules,
    pub response: Vec<ResponseDef>,
    pub area: BTreeMap<String, AreaTemplate>,
    pub zone: BTreeMap<String, ZoneTemplate>,
}

/// `[treatment]`.
#[derive(Clone, Debug, Deserialize)]
pub struct Rules {
    pub success: String,
    pub depths: Vec<String>,
    pub techniques: Vec<String>,
}

/// One `[[response]]`: an immediate skin response the clinic records.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
pub struct ResponseDef {
    pub key: String,
    pub label: String,
    #[serde(default)]
    pub warning: bool,
    #[serde(default)]
    pub warning_text: Option<String>,
}

/// One `[area.NAME]`: the zones a map of this area may use.
#[derive(Clone, Debug, Deserialize)]
pub struct AreaTemplate {
    pub zones: Vec<String>,
}

/// One `[zone.NAME]`: how the zone is placed on a capture.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ZoneTemplate {
    pub label: String,
    /// FaceMesh landmark groups (hull of each).
    #[serde(default)]
    pub landmarks: Vec<Vec<usize>>,
    /// A polygon in frame coordinates (0–1).
    #[serde(default)]
    pub frame: Vec<[f64; 2]>,
}

fn invalid(message: String) -> CalibrationError {
    CalibrationError::Parse {
        origin: "treatment.toml".into(),
        message,
    }
}

impl TreatmentConfig {
    /// Load and check the clinic's file; face zones without landmarks take them from
    /// `publication.toml`.
    pub fn load(cal: &Calibration) -> Result<Self, CalibrationError> {
        let mut c: TreatmentConfig = cal.load("treatment.toml")?;
        let publish = PublishConfig::load(cal)?;
        for (name, z) in &mut c.zone {
            if z.landmarks.is_empty()
                && z.frame.is_empty()
                && let Some(p) = publish.zone.get(name)
            {
                z.landmarks = p.landmarks.clone();
            }
        }
        c.check().map_err(invalid)?;
        Ok(c)
    }

    fn check(&self) -> Result<(), String> {
        if self.treatment.success.trim().is_empty() {
            return Err("treatment.success is empty".into());
        }
        for (area, t) in &self.area {
            area.parse::<Area>()
                .map_err(|e| format!("[area.{area}]: {e}"))?;
            for z in &t.zones {
                if !self.zone.contains_key(z) {
                    return Err(format!(
                        "[area.{area}] names zone {z:?}, which has no [zone.{z}]"
                    ));
                }
            }
        }
        for (name, z) in &self.zone {
            let kinds = usize::from(!z.landmarks.is_empty()) + usize::from(!z.frame.is_empty());
            if kinds != 1 {
                return Err(format!("zone {name}: give exactly one of landmarks, frame"));
            }
            if z.landmarks.iter().flatten().any(|&i| i >= 468)
                || z.landmarks.iter().any(|g| g.len() < 3)
            {
                return Err(format!(
                    "zone {name}: landmark groups need 3 or more indices below 468"
                ));
            }
            if !z.frame.is_empty()
                && (z.frame.len() < 3 || z.frame.iter().flatten().any(|v| !(0.0..=1.0).contains(v)))
            {
                return Err(format!(
                    "zone {name}: a frame polygon needs 3 or more points from 0 to 1"
                ));
            }
        }
        let mut keys = std::collections::BTreeSet::new();
        for r in &self.response {
            if !keys.insert(r.key.as_str()) {
                return Err(format!("response {:?} is listed twice", r.key));
            }
        }
        Ok(())
    }

    /// The zones a map of `area` may use.
    pub fn zones_of(&self, area: Area) -> &[String] {
        self.area
            .get(area.as_str())
            .map_or(&[], |t| t.zones.as_slice())
    }

    /// A response by key, or the list of known keys.
    pub fn response(&self, key: &str) -> Result<&ResponseDef, String> {
        self.response.iter().find(|r| r.key == key).ok_or_else(|| {
            format!(
                "unknown skin response {key:?} (known: {})",
                self.response
                    .iter()
                    .map(|r| r.key.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_file_loads_with_face_zones_from_publication() {
        let c = TreatmentConfig::load(&Calibration::default()).unwrap();
        assert!(!c.zone["cheeks"].landmarks.is_empty());
        assert_eq!(c.zones_of(Area::Face).len(), 7);
        assert!(c.response("blanching").unwrap().warning);
        assert!(c.response("rash").unwrap_err().contains("erythema"));
        for a in [
            Area::Neck,
            Area::Scalp,
            Area::Hands,
            Area::Decollete,
            Area::Body,
        ] {
            assert!(!c.zones_of(a).is_empty(), "{a}");
        }
    }
}
