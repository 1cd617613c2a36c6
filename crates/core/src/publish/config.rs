//! `calibration/publication.toml`: the variability note, the minimum grade, the channels and
//! the treated zones used for de-identification.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::calibration::{Calibration, CalibrationError};
use crate::vocab::{Area, Scope};

/// The clinic's publication rules.
#[derive(Clone, Debug, Deserialize)]
pub struct PublishConfig {
    pub publication: Rules,
    pub channel: BTreeMap<String, ChannelRule>,
    pub zone: BTreeMap<String, Zone>,
    #[serde(default)]
    pub default_zone: BTreeMap<String, String>,
}

/// `[publication]`.
#[derive(Clone, Debug, Deserialize)]
pub struct Rules {
    pub variability_note: String,
    pub min_grade: char,
    pub jpeg_quality: u8,
    pub zone_margin_iod: f32,
}

/// One `[channel.NAME]`.
#[derive(Clone, Debug, Deserialize)]
pub struct ChannelRule {
    pub scope: Scope,
    pub long_side: u32,
    #[serde(default)]
    pub deidentify: bool,
}

/// One `[zone.NAME]`: what counts as the treated skin.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Zone {
    /// Groups of FaceMesh landmark indices; the zone is the union of their hulls.
    #[serde(default)]
    pub landmarks: Vec<Vec<usize>>,
    /// Everything below the chin.
    #[serde(default)]
    pub below_chin: bool,
    /// The whole frame.
    #[serde(default)]
    pub whole_frame: bool,
}

impl PublishConfig {
    /// Load and check the clinic's file.
    pub fn load(cal: &Calibration) -> Result<Self, CalibrationError> {
        let c: PublishConfig = cal.load("publication.toml")?;
        c.check().map_err(|message| CalibrationError::Parse {
            origin: "publication.toml".into(),
            message,
        })?;
        Ok(c)
    }

    fn check(&self) -> Result<(), String> {
        let r = &self.publication;
        if !('A'..='F').contains(&r.min_grade) {
            return Err(format!("min_grade {:?}: expected A to F", r.min_grade));
        }
        if r.variability_note.trim().is_empty() {
            return Err("variability_note is empty".into());
        }
        if !(1..=100).contains(&r.jpeg_quality) {
            return Err(format!(
                "jpeg_quality {}: expected 1 to 100",
                r.jpeg_quality
            ));
        }
        for (name, c) in &self.channel {
            if c.scope == Scope::Clinical {
                return Err(format!(
                    "channel {name}: a publication needs scope publication or teaching"
                ));
            }
            if !(64..=16_384).contains(&c.long_side) {
                return Err(format!(
                    "channel {name}: long_side {} is not 64 to 16384",
                    c.long_side
                ));
            }
        }
        for (name, z) in &self.zone {
            let kinds = usize::from(!z.landmarks.is_empty())
                + usize::from(z.below_chin)
                + usize::from(z.whole_frame);
            if kinds != 1 {
                return Err(format!(
                    "zone {name}: give exactly one of landmarks, below_chin, whole_frame"
                ));
            }
            if z.landmarks.iter().flatten().any(|&i| i >= 468)
                || z.landmarks.iter().any(|g| g.len() < 3)
            {
                return Err(format!(
                    "zone {name}: landmark groups need 3 or more indices below 468"
                ));
            }
        }
        Ok(())
    }

    /// A channel's rule, or the list of known channels.
    pub fn channel(&self, name: &str) -> Result<&ChannelRule, String> {
        self.channel.get(name).ok_or_else(|| {
            format!(
                "unknown channel {name:?} (known: {})",
                self.channel.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// A zone by name, or the list of known zones.
    pub fn zone(&self, name: &str) -> Result<&Zone, String> {
        self.zone.get(name).ok_or_else(|| {
            format!(
                "unknown zone {name:?} (known: {})",
                self.zone.keys().cloned().collect::<Vec<_>>().join(", ")
            )
        })
    }

    /// The zone a treatment area uses when none is named.
    pub fn default_zone(&self, area: Area) -> Option<&str> {
        self.default_zone.get(area.as_str()).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_file_loads_and_names_every_channel() {
        let c = PublishConfig::load(&Calibration::default()).unwrap();
        for ch in ["website", "social", "print", "teaching"] {
            assert!(c.channel(ch).is_ok(), "{ch}");
        }
        assert_eq!(c.channel("teaching").unwrap().scope, Scope::Teaching);
        assert!(c.channel("tiktok").unwrap_err().contains("website"));
        assert!(c.zone("cheeks").unwrap().landmarks.len() == 2);
        assert_eq!(c.default_zone(Area::Scalp), Some("scalp"));
        assert_eq!(c.default_zone(Area::Face), None);
    }
}
