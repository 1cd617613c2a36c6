//! Room calibration profiles: where the card sits for a fixed camera, and the exposure, gains
//! and sharpness measured when the room was calibrated.

use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde_json::json;

use super::RecordError;
use crate::analysis::lighting::{LightingProfile, LightingReport};
use crate::ingest::ExifSummary;
use crate::store::Store;

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
        let now = crate::timefmt::now_utc();
        let tx = self.write_tx()?;
        let replaced: bool = tx
            .query_row(
                "SELECT 1 FROM lighting_profile WHERE name = ?1",
                [name],
                |_| Ok(()),
            )
            .optional()?
            .is_some();
        tx.execute(
            "INSERT INTO lighting_profile (name, profile, image_sha256, exif, created_at, created_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(name) DO UPDATE SET profile = excluded.profile, image_sha256 = excluded.image_sha256,
               exif = excluded.exif, created_at = excluded.created_at, created_by = excluded.created_by",
            params![
                name,
                serde_json::to_string(&profile).unwrap_or_default(),
                image_sha256,
                exif.and_then(|e| serde_json::to_string(e).ok()),
                now,
                self.actor()
            ],
        )?;
        self.audit(
            &tx,
            "calibration.save",
            json!({ "profile": name, "sha256": image_sha256 }),
            json!({ "replaced": replaced, "card": profile.card_kind, "exposure_ev": profile.exposure_ev, "wb_gains": profile.wb_gains }),
        )?;
        tx.commit()?;
        self.stored_lighting_profile(name)
    }

    /// The profile `name`.
    pub fn lighting_profile(&self, name: &str) -> Result<LightingProfile, RecordError> {
        Ok(self.stored_lighting_profile(name)?.profile)
    }

    /// The profile `name` with provenance.
    pub fn stored_lighting_profile(&self, name: &str) -> Result<StoredProfile, RecordError> {
        let row: Option<(String, String, Option<String>, String, String)> = self
            .conn()
            .query_row(
                "SELECT profile, image_sha256, exif, created_at, created_by FROM lighting_profile WHERE name = ?1",
                [name.trim()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()?;
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
        let mut stmt = self
            .conn()
            .prepare("SELECT name FROM lighting_profile ORDER BY name")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
