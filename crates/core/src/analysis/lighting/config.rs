//! Card definitions and tolerances, loaded from `cards.toml` and `tolerances.toml`.

use serde::Deserialize;

use crate::analysis::color::srgb_to_linear;
use crate::calibration::{Calibration, CalibrationError};

/// A neutral grey card.
#[derive(Clone, Debug, Deserialize)]
pub struct GreyCardDef {
    pub id: String,
    pub label: String,
    pub reflectance: f64,
    pub width_mm: f64,
    pub height_mm: f64,
    pub min_area_fraction: f64,
    pub max_saturation: f64,
    /// The largest standard uncertainty of the card's exposure its pixel noise may leave
    /// (EV); a card whose pixels cannot do better is refused, with the numbers.
    #[serde(default = "default_max_uncertainty")]
    pub max_exposure_uncertainty_ev: f64,
}

fn default_max_uncertainty() -> f64 {
    0.02
}

/// One ColorChecker patch.
#[derive(Clone, Debug, Deserialize)]
pub struct PatchDef {
    pub name: String,
    pub srgb: [u8; 3],
}

/// The ColorChecker Classic 24.
#[derive(Clone, Debug, Deserialize)]
pub struct CheckerDef {
    pub label: String,
    pub patches: Vec<PatchDef>,
    pub neutral_lstar: [f64; 6],
}

impl CheckerDef {
    /// Linear RGB of each patch.
    pub fn linear(&self) -> Vec<[f32; 3]> {
        self.patches
            .iter()
            .map(|p| p.srgb.map(|v| srgb_to_linear(f32::from(v) / 255.0)))
            .collect()
    }

    /// Nominal luminance factor Y of the six neutrals, white to black.
    pub fn neutral_y(&self) -> [f64; 6] {
        self.neutral_lstar.map(|l| ((l + 16.0) / 116.0).powi(3))
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct CardsFile {
    pub grey: Vec<GreyCardDef>,
    pub colorchecker: CheckerDef,
}

/// Lighting tolerances.
#[derive(Clone, Debug, Deserialize)]
pub struct LightingTolerances {
    pub exposure_pass_ev: f64,
    pub exposure_warn_ev: f64,
    pub cast_pass_delta_e: f64,
    pub cast_warn_delta_e: f64,
    pub falloff_warn_ev: f64,
    pub falloff_fail_ev: f64,
    pub clipped_highlights_warn: f64,
    pub clipped_highlights_fail: f64,
    pub clipped_shadows_warn: f64,
    pub subject_clipped_warn: f64,
    pub sharpness_warn_below: f64,
    pub profile_exposure_warn_ev: f64,
    pub profile_gain_warn: f64,
}

#[derive(Deserialize)]
struct TolerancesFile {
    lighting: LightingTolerances,
}

/// The grey card's physical size, for the pose check's centimetre scale.
pub fn grey_card_size_mm(cal: &Calibration) -> Result<(f64, f64), CalibrationError> {
    let cards: CardsFile = cal.load("cards.toml")?;
    cards
        .grey
        .first()
        .map(|g| (g.width_mm, g.height_mm))
        .ok_or_else(|| CalibrationError::Parse {
            origin: "cards.toml".into(),
            message: "define at least one [[grey]] card".into(),
        })
}

/// Everything the lighting check reads from `calibration/`.
#[derive(Clone, Debug)]
pub struct LightingConfig {
    pub grey: GreyCardDef,
    pub checker: CheckerDef,
    pub tolerances: LightingTolerances,
}

impl LightingConfig {
    /// Load from the calibration folders (first grey card definition is used).
    pub fn load(cal: &Calibration) -> Result<Self, CalibrationError> {
        let cards: CardsFile = cal.load("cards.toml")?;
        let tol: TolerancesFile = cal.load("tolerances.toml")?;
        let grey = cards
            .grey
            .into_iter()
            .next()
            .ok_or_else(|| CalibrationError::Parse {
                origin: "cards.toml".into(),
                message: "define at least one [[grey]] card".into(),
            })?;
        if cards.colorchecker.patches.len() != 24 {
            return Err(CalibrationError::Parse {
                origin: "cards.toml".into(),
                message: format!(
                    "the ColorChecker needs 24 patches, found {}",
                    cards.colorchecker.patches.len()
                ),
            });
        }
        Ok(Self {
            grey,
            checker: cards.colorchecker,
            tolerances: tol.lighting,
        })
    }

    /// The built-in defaults.
    pub fn builtin() -> Result<Self, CalibrationError> {
        Self::load(&Calibration::builtin())
    }
}
