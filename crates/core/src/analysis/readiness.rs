//! Is this frame comparable? The station's traffic light, from the live lighting and pose
//! reports: green when both are within tolerance, amber when close, red otherwise — and the
//! stability count behind auto-capture.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::lighting::{LightingReport, Verdict};
use super::pose::PoseReport;

/// Traffic-light state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Light {
    Green,
    Amber,
    Red,
}

/// What the live analysis says about the current frame.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Readiness {
    pub light: Light,
    pub lighting_ok: bool,
    pub pose_ok: bool,
    /// Why it is not green, most important first; phrased for the person at the camera.
    pub reasons: Vec<String>,
}

impl Readiness {
    /// Green: the frame may be captured without an override.
    pub fn ready(&self) -> bool {
        self.light == Light::Green
    }
}

/// The inputs of [`assess`].
#[derive(Clone, Copy, Debug)]
pub struct Inputs<'a> {
    pub lighting: Option<&'a LightingReport>,
    pub pose: Option<&'a PoseReport>,
    /// Whether the view has a baseline to compare with (the first capture of a view becomes the
    /// baseline, so only lighting applies to it).
    pub has_baseline: bool,
    /// How old the analysis is.
    pub age: Duration,
    /// Whether the camera is delivering frames.
    pub camera_ok: bool,
}

/// Analysis older than this no longer describes the frame on screen.
pub const STALE_AFTER: Duration = Duration::from_millis(1500);

/// Below this pose score a follow-up is red rather than amber.
pub const AMBER_POSE_SCORE: f64 = 60.0;

/// Assess one frame.
///
/// ```
/// use std::time::Duration;
/// use sameframe_core::analysis::readiness::{assess, Inputs, Light};
/// let r = assess(Inputs { lighting: None, pose: None, has_baseline: false,
///                         age: Duration::ZERO, camera_ok: false });
/// assert_eq!(r.light, Light::Red);
/// assert!(r.reasons[0].contains("camera"));
/// ```
pub fn assess(i: Inputs<'_>) -> Readiness {
    let mut reasons = Vec::new();
    if !i.camera_ok {
        return Readiness {
            light: Light::Red,
            lighting_ok: false,
            pose_ok: false,
            reasons: vec!["camera not delivering frames".into()],
        };
    }
    let Some(lighting) = i.lighting else {
        return Readiness {
            light: Light::Red,
            lighting_ok: false,
            pose_ok: false,
            reasons: vec!["waiting for the first analysis".into()],
        };
    };
    if i.age > STALE_AFTER {
        return Readiness {
            light: Light::Red,
            lighting_ok: false,
            pose_ok: false,
            reasons: vec![format!(
                "analysis is {:.1} s old: the frame on screen is not checked",
                i.age.as_secs_f64()
            )],
        };
    }
    let mut light = Light::Green;
    let lighting_ok = lighting.verdict == Verdict::Pass;
    match lighting.verdict {
        Verdict::Pass => {}
        Verdict::Warn => light = Light::Amber,
        Verdict::Fail => light = Light::Red,
    }
    if !lighting_ok {
        if lighting.reasons.is_empty() {
            reasons.push(format!("lighting: {:?}", lighting.verdict).to_lowercase());
        }
        reasons.extend(lighting.reasons.iter().map(|r| format!("lighting: {r}")));
    }
    let pose_ok = if !i.has_baseline {
        true
    } else {
        match i.pose {
            None => {
                light = Light::Red;
                reasons.push("pose: not yet compared with the baseline".into());
                false
            }
            Some(p) if p.within_tolerance => true,
            Some(p) => {
                if p.score < AMBER_POSE_SCORE || (p.hints.is_empty() && !p.reasons.is_empty()) {
                    light = Light::Red;
                } else if light == Light::Green {
                    light = Light::Amber;
                }
                if p.hints.is_empty() {
                    reasons.extend(p.reasons.iter().map(|r| format!("pose: {r}")));
                } else {
                    reasons.extend(p.hints.iter().map(|h| format!("pose: {h}")));
                }
                if reasons.is_empty() {
                    reasons.push(format!("pose: score {:.0} is out of tolerance", p.score));
                }
                false
            }
        }
    };
    Readiness {
        light,
        lighting_ok,
        pose_ok,
        reasons,
    }
}

/// Counts consecutive in-tolerance analyses for auto-capture. Fires once when `needed` distinct
/// frames in a row are green, then waits for [`Stability::rearm`] (the next view).
#[derive(Clone, Debug)]
pub struct Stability {
    needed: u32,
    count: u32,
    last_seq: Option<u64>,
    fired: bool,
}

impl Stability {
    /// Fire after `needed` consecutive green frames (at least 1).
    pub fn new(needed: u32) -> Self {
        Self {
            needed: needed.max(1),
            count: 0,
            last_seq: None,
            fired: false,
        }
    }

    /// Change the count needed; progress restarts.
    pub fn set_needed(&mut self, needed: u32) {
        if needed.max(1) != self.needed {
            self.needed = needed.max(1);
            self.count = 0;
        }
    }

    /// The number of consecutive green frames so far.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The count needed.
    pub fn needed(&self) -> u32 {
        self.needed
    }

    /// Feed the analysis of frame `seq`; true exactly once when the run reaches `needed`.
    /// The same frame analysed twice counts once.
    ///
    /// ```
    /// use sameframe_core::analysis::readiness::Stability;
    /// let mut s = Stability::new(3);
    /// assert!(!s.update(1, true) && !s.update(2, true));
    /// assert!(s.update(3, true));
    /// assert!(!s.update(4, true)); // fired already: waits for rearm
    /// ```
    pub fn update(&mut self, seq: u64, green: bool) -> bool {
        if self.last_seq == Some(seq) {
            return false;
        }
        self.last_seq = Some(seq);
        if !green {
            self.count = 0;
            return false;
        }
        self.count = self.count.saturating_add(1);
        if self.count >= self.needed && !self.fired {
            self.fired = true;
            return true;
        }
        false
    }

    /// Allow the next auto-capture (after moving to the next view).
    pub fn rearm(&mut self) {
        self.fired = false;
        self.count = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::lighting::CardReport;

    fn lighting(verdict: Verdict, reasons: &[&str]) -> LightingReport {
        LightingReport {
            card: CardReport {
                found: true,
                kind: Some("grey18".into()),
                quad: None,
                mean_srgb: None,
                source: None,
                area_fraction: None,
                neutral_patches: None,
                patch_centres: None,
                measured_pixels: None,
                exposure_uncertainty_ev: None,
            },
            exposure_ev: Some(0.0),
            wb_gains: Some([1.0; 3]),
            cast_lab: Some([0.0; 2]),
            cast_delta_e: Some(0.0),
            clipped_highlights: 0.0,
            clipped_shadows: 0.0,
            subject_clipped_highlights: None,
            falloff_ev: Some(0.0),
            sharpness: 100.0,
            verdict,
            reasons: reasons.iter().map(|s| s.to_string()).collect(),
            profile: None,
            width: 100,
            height: 100,
        }
    }

    fn pose(score: f64, within: bool, hints: &[&str]) -> PoseReport {
        PoseReport {
            dx_px: 0.0,
            dy_px: 0.0,
            rotation_deg: 0.0,
            scale: 1.0,
            yaw_deg: None,
            pitch_deg: None,
            expression: None,
            score,
            within_tolerance: within,
            hints: hints.iter().map(|s| s.to_string()).collect(),
            inliers: 100,
            confidence: 1.0,
            method: "features".into(),
            reasons: Vec::new(),
            dx_cm: None,
            dy_cm: None,
            scale_source: None,
            frankfort_tilt_deg: None,
            frankfort_delta_deg: None,
            ncc: 1.0,
            axes: Vec::new(),
            frame_from_baseline: None,
        }
    }

    fn run(l: &LightingReport, p: Option<&PoseReport>, has_baseline: bool) -> Readiness {
        assess(Inputs {
            lighting: Some(l),
            pose: p,
            has_baseline,
            age: Duration::from_millis(100),
            camera_ok: true,
        })
    }

    #[test]
    fn green_only_when_lighting_and_pose_pass() {
        let pass = lighting(Verdict::Pass, &[]);
        assert!(run(&pass, Some(&pose(98.0, true, &[])), true).ready());
        // First capture of a view: lighting alone decides.
        assert!(run(&pass, None, false).ready());
        // A baseline exists but no pose yet: not ready.
        assert_eq!(run(&pass, None, true).light, Light::Red);
        let r = run(
            &pass,
            Some(&pose(80.0, false, &["tilt chin down 3°"])),
            true,
        );
        assert_eq!(r.light, Light::Amber);
        assert_eq!(r.reasons, vec!["pose: tilt chin down 3°".to_string()]);
        assert!(!r.pose_ok && r.lighting_ok);
        assert_eq!(
            run(&pass, Some(&pose(30.0, false, &["move closer"])), true).light,
            Light::Red
        );
    }

    #[test]
    fn lighting_verdicts_map_to_colours_with_reasons() {
        let warn = lighting(Verdict::Warn, &["exposure +0.5 EV"]);
        let r = run(&warn, Some(&pose(99.0, true, &[])), true);
        assert_eq!(r.light, Light::Amber);
        assert_eq!(r.reasons, vec!["lighting: exposure +0.5 EV".to_string()]);
        let fail = lighting(Verdict::Fail, &["no card"]);
        assert_eq!(run(&fail, None, false).light, Light::Red);
    }

    #[test]
    fn stale_analysis_is_red() {
        let pass = lighting(Verdict::Pass, &[]);
        let r = assess(Inputs {
            lighting: Some(&pass),
            pose: None,
            has_baseline: false,
            age: Duration::from_secs(3),
            camera_ok: true,
        });
        assert_eq!(r.light, Light::Red);
        assert!(r.reasons[0].contains("old"));
    }

    #[test]
    fn stability_needs_distinct_consecutive_frames() {
        let mut s = Stability::new(3);
        assert!(!s.update(1, true));
        assert!(!s.update(1, true)); // the same frame again
        assert!(!s.update(2, true));
        assert!(!s.update(3, false)); // broken run
        assert!(!s.update(4, true) && !s.update(5, true));
        assert!(s.update(6, true));
        assert!(!s.update(7, true));
        s.rearm();
        assert!(!s.update(8, true) && !s.update(9, true));
        assert!(s.update(10, true));
    }
}
