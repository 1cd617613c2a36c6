//! Room calibration profiles: where the card sits for a fixed camera, and the exposure, gains
//! and sharpness measured when the room was calibrated.

use serde::Serialize;
use serde_json::json;

use super::RecordError;
use crate::analysis::lighting::{LightingProfile, LightingReport};
use crate::ingest::ExifSummary;
use crate::store::repo::ProfileRow;
use crate::store::{Store, StoreError};

/// A stored profile with its provenance.
#[derive(Clone, Debug, Serialize)]
pub struct StoredProfile {
    #[serde(flatten)]
    pub profile: LightingProfile,
    pub image_sha256: String,
    pub exif: Option<ExifSummary>,
    pub created_at: String,
    pub created_by: String,
}

impl Store {
    /// Save (or replace) the profile `name` from a lighting report of the calibration image.
    pub fn save_lighting_profile(
        &self,
        name: &str,
        report: &LightingReport,
        image_sha256: &str,
        exif: Option<&ExifSummary>,
    ) -> Result<StoredProfile, RecordError> {
        let name = name.trim();
        if name.is_empty() || name.len() > 64 {
            return Err(RecordError::Invalid {
                what: format!("profile name {name:?}"),
                why: "use 1 to 64 characters".into(),
            });
        }
        let (Some(kind), Some(quad), Some(exposure_ev), Some(wb_gains), Some(cast_lab)) = (
            report.card.kind.clone(),
            report.card.quad,
            report.exposure_ev,
            report.wb_gains,
            report.cast_lab,
        ) else {
            return Err(RecordError::Invalid {
                what: format!("calibration image for profile {name}"),
                why: format!(
                    "no card was measured ({})",
                    report.reasons.first().cloned().unwrap_or_default()
                ),
            });
        };
        let profile = LightingProfile {
            name: name.to_string(),
            card_kind: kind,
            quad,
            exposure_ev,
            wb_gains,
            cast_lab,
            sharpness: report.sharpness,
            width: report.width,
            height: report.height,
        };
        let row = ProfileRow {
            name: name.to_string(),
            profile: serde_json::to_string(&profile).unwrap_or_default(),
            image_sha256: image_sha256.to_string(),
            exif: exif.and_then(|e| serde_json::to_string(e).ok()),
            created_at: crate::timefmt::now_utc(),
            created_by: self.actor().to_string(),
        };
        self.write(|tx| {
            let replaced = tx.put_profile(&row)?;
            tx.audit(
                "calibration.save",
                json!({ "profile": name, "sha256": image_sha256 }),
                json!({ "replaced": replaced, "card": profile.card_kind, "exposure_ev": profile.exposure_ev, "wb_gains": profile.wb_gains }),
            )?;
            Ok::<_, StoreError>(())
        })?;
        self.stored_lighting_profile(name)
    }

    /// The profile `name`.
    pub fn lighting_profile(&self, name: &str) -> Result<LightingProfile, RecordError> {
        Ok(self.stored_lighting_profile(name)?.profile)
    }

    /// The profile `name` with provenance.
    pub fn stored_lighting_profile(&self, name: &str) -> Result<StoredProfile, RecordError> {
        let row = self.read(|r| r.profile(name.trim()))?;
        let row = row.map(|r| {
            (
                r.profile,
                r.image_sha256,
                r.exif,
                r.created_at,
                r.created_by,
            )
        });
        let (p, image_sha256, exif, created_at, created_by) =
            row.ok_or_else(|| RecordError::Invalid {
                what: format!("profile {}", name.trim()),
                why: "no such room profile (create it with `sameframe calibrate`)".into(),
            })?;
        let profile: LightingProfile =
            serde_json::from_str(&p).map_err(|e| RecordError::Invalid {
                what: format!("profile {}", name.trim()),
                why: format!("stored profile is unreadable: {e}"),
            })?;
        Ok(StoredProfile {
            profile,
            image_sha256,
            exif: exif.and_then(|e| serde_json::from_str(&e).ok()),
            created_at,
            created_by,
        })
    }

    /// Every profile's name.
    pub fn lighting_profile_names(&self) -> Result<Vec<String>, RecordError> {
        Ok(self.read(|r| r.profile_names())?)
    }
}
