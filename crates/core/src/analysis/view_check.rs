//! Does the frame show the view the protocol asks for? On faces the head's yaw from the
//! landmarks tells frontal (about 0°), oblique (about 45°) and lateral (about 90°) apart; the
//! tolerance is data (`[view_yaw]` in `calibration/tolerances.toml`).
//!
//! The side (left or right) is not checked: mirrored preview setups and camera placement make
//! it unreliable; the magnitude of the turn is.
//!
//! ```
//! use sameframe_core::analysis::view_check::{ViewYaw, check};
//! use sameframe_core::records::View;
//! let cfg = ViewYaw { tolerance_deg: 20.0 };
//! assert!(check(View::ObliqueLeft45, Some(2.0), &cfg).is_some()); // a frontal face
//! assert!(check(View::ObliqueLeft45, Some(-41.0), &cfg).is_none());
//! assert!(check(View::ScalpVertex, Some(0.0), &cfg).is_none()); // not a face view
//! ```

use serde::Deserialize;

use crate::calibration::{Calibration, CalibrationError};
use crate::vocab::View;

/// `[view_yaw]`: how far the measured turn may be from the view's.
#[derive(Clone, Debug, Deserialize)]
pub struct ViewYaw {
    pub tolerance_deg: f64,
}

impl Default for ViewYaw {
    fn default() -> Self {
        ViewYaw {
            tolerance_deg: 20.0,
        }
    }
}

/// A clinic's own tolerances file written before this section existed keeps the default.
#[derive(Deserialize)]
struct File {
    #[serde(default)]
    view_yaw: ViewYaw,
}

impl ViewYaw {
    pub fn load(cal: &Calibration) -> Result<Self, CalibrationError> {
        Ok(cal.load::<File>("tolerances.toml")?.view_yaw)
    }
}

/// Why the frame does not show `view`, if it does not: the head's `yaw_deg` (None when no face
/// was found: nothing to check) against the view's turn.
pub fn check(view: View, yaw_deg: Option<f64>, cfg: &ViewYaw) -> Option<String> {
    let want = view.head_turn_deg()?;
    let yaw = yaw_deg?;
    let off = (yaw.abs() - want).abs();
    (off > cfg.tolerance_deg).then(|| {
        format!(
            "the head is turned {:.0}° but the {} view needs about {want:.0}° (±{:.0}°): is this the right view?",
            yaw.abs(),
            view.label(),
            cfg.tolerance_deg
        )
    })
}
