//! UI preferences, persisted in eframe's storage between sessions. Never patient data: no
//! references, names, consents or captures are kept here.

use serde::{Deserialize, Serialize};

/// What the station remembers about how it is set up.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Prefs {
    /// The last camera used (by index and name, so a re-ordered device list is noticed).
    pub camera_index: Option<u32>,
    pub camera_name: Option<String>,
    pub resolution: [u32; 2],
    pub camera_fps: u32,
    pub replay_fps: f64,
    pub show_ghost: bool,
    pub ghost_opacity: f32,
    pub show_thirds: bool,
    pub show_midline: bool,
    pub show_frankfort: bool,
    pub show_edges: bool,
    pub show_card: bool,
    /// Height of the Frankfort guide (fraction of the frame) when the baseline has no face.
    pub frankfort_fraction: f32,
    pub auto_capture: bool,
    /// Consecutive in-tolerance analyses before an auto-capture.
    pub auto_frames: u32,
    /// Move to the next view after a capture.
    pub advance_after_capture: bool,
    pub last_protocol: Option<String>,
    pub show_session_panel: bool,
    pub show_meters_panel: bool,
}

impl Default for Prefs {
    fn default() -> Self {
        Self {
            camera_index: None,
            camera_name: None,
            resolution: [1920, 1080],
            camera_fps: 30,
            replay_fps: 30.0,
            show_ghost: true,
            ghost_opacity: 0.35,
            show_thirds: true,
            show_midline: true,
            show_frankfort: true,
            show_edges: false,
            show_card: true,
            frankfort_fraction: 0.42,
            auto_capture: false,
            auto_frames: 8,
            advance_after_capture: true,
            last_protocol: None,
            show_session_panel: true,
            show_meters_panel: true,
        }
    }
}

impl Prefs {
    /// The key in eframe's storage.
    pub const KEY: &'static str = "sameframe.prefs";

    /// Load from eframe storage (defaults when absent or unreadable).
    pub fn load(storage: Option<&dyn eframe::Storage>) -> Self {
        storage
            .and_then(|s| eframe::get_value::<Prefs>(s, Self::KEY))
            .unwrap_or_default()
            .sanitized()
    }

    /// Clamp values a hand-edited or old file may have out of range.
    pub fn sanitized(mut self) -> Self {
        self.ghost_opacity = self.ghost_opacity.clamp(0.0, 1.0);
        self.frankfort_fraction = self.frankfort_fraction.clamp(0.05, 0.95);
        self.auto_frames = self.auto_frames.clamp(1, 120);
        self.camera_fps = self.camera_fps.clamp(1, 120);
        if !self.replay_fps.is_finite() {
            self.replay_fps = 30.0;
        }
        self.replay_fps = self.replay_fps.clamp(0.2, 120.0);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_or_partial_prefs_fill_in_defaults_and_clamp() {
        let p: Prefs = serde_json::from_str(r#"{"ghost_opacity": 7.0, "auto_frames": 0}"#).unwrap();
        let p = p.sanitized();
        assert_eq!(p.ghost_opacity, 1.0);
        assert_eq!(p.auto_frames, 1);
        assert!(p.show_thirds);
    }

    #[test]
    fn prefs_hold_no_patient_fields() {
        let json = serde_json::to_string(&Prefs::default()).unwrap();
        for word in ["patient", "consent", "capture_id", "visit"] {
            assert!(!json.contains(word), "{word} in prefs: {json}");
        }
    }
}
