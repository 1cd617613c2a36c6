//! How a capture's camera is described in its record: the source, its resolution and rate,
//! and which of the controls that matter for comparable photos were locked. Plain data: the
//! cameras themselves live in the station crate.

use serde::{Deserialize, Serialize};

/// What kind of source delivers the frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Camera,
    Replay,
    Demo,
}

/// A description of the running source, recorded with each capture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceInfo {
    pub kind: SourceKind,
    pub name: String,
    /// Backend, folder or format details.
    pub detail: String,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
}

/// The camera controls that matter for comparable photos.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ControlKind {
    Exposure,
    WhiteBalance,
    Focus,
}

impl ControlKind {
    pub const ALL: [ControlKind; 3] = [
        ControlKind::Exposure,
        ControlKind::WhiteBalance,
        ControlKind::Focus,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ControlKind::Exposure => "exposure",
            ControlKind::WhiteBalance => "white balance",
            ControlKind::Focus => "focus",
        }
    }
}

impl std::fmt::Display for ControlKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// Whether the source exposes a control and whether it is locked (manual, held at its value).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControlState {
    pub kind: ControlKind,
    pub available: bool,
    pub locked: bool,
    pub value: Option<String>,
    /// Why it is unavailable, or what the camera reported.
    pub note: Option<String>,
}

/// The source's description and controls at a moment (recorded with a capture).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CameraSettings {
    #[serde(flatten)]
    pub info: SourceInfo,
    pub controls: Vec<ControlState>,
}
