//! Real cameras through nokhwa (V4L2 on Linux, Media Foundation on Windows, AVFoundation on
//! macOS). Frames are requested as MJPEG at the closest offered format; a frame's JPEG bytes
//! are kept when they are a complete JPEG, so a capture stores what the camera sent.
//!
//! Locking exposure, white balance and focus: on Linux the UVC "auto" controls are switched
//! to manual, which holds the current value; elsewhere the current value is written back as a
//! manual setting. Which controls a camera exposes is shown, and a lock the camera refuses is
//! reported, never pretended.

use std::collections::HashMap;
use std::sync::Arc;

use nokhwa::Camera;
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::{
    ApiBackend, CameraFormat, CameraIndex, ControlValueSetter, FrameFormat, KnownCameraControl,
    RequestedFormat, RequestedFormatType, Resolution,
};

use super::{
    CameraDesc, CameraError, ControlKind, ControlState, FrameSource, RawFrame, SourceInfo,
    SourceKind,
};

/// The cameras nokhwa finds (an empty list on a machine without one).
pub fn list() -> Result<Vec<CameraDesc>, CameraError> {
    let infos = nokhwa::query(ApiBackend::Auto).map_err(|e| CameraError::Query(e.to_string()))?;
    Ok(infos
        .iter()
        .enumerate()
        .map(|(i, c)| CameraDesc {
            index: match c.index() {
                CameraIndex::Index(n) => *n,
                CameraIndex::String(s) => s.parse().unwrap_or(i as u32),
            },
            name: c.human_name(),
            description: c.description().to_string(),
        })
        .collect())
}

// V4L2 control IDs of the automatic modes (linux/v4l2-controls.h).
const V4L2_CID_EXPOSURE_AUTO: u128 = 0x009a_0901;
const V4L2_CID_AUTO_WHITE_BALANCE: u128 = 0x0098_090c;
const V4L2_CID_FOCUS_AUTO: u128 = 0x009a_090c;
const V4L2_EXPOSURE_MANUAL: i64 = 1;

fn known(kind: ControlKind) -> KnownCameraControl {
    match kind {
        ControlKind::Exposure => KnownCameraControl::Exposure,
        ControlKind::WhiteBalance => KnownCameraControl::WhiteBalance,
        ControlKind::Focus => KnownCameraControl::Focus,
    }
}

/// The Linux auto-mode control of `kind` and the value that means "manual".
fn linux_auto(kind: ControlKind) -> (KnownCameraControl, ControlValueSetter) {
    match kind {
        ControlKind::Exposure => (
            KnownCameraControl::Other(V4L2_CID_EXPOSURE_AUTO),
            ControlValueSetter::Integer(V4L2_EXPOSURE_MANUAL),
        ),
        ControlKind::WhiteBalance => (
            KnownCameraControl::Other(V4L2_CID_AUTO_WHITE_BALANCE),
            ControlValueSetter::Boolean(false),
        ),
        ControlKind::Focus => (
            KnownCameraControl::Other(V4L2_CID_FOCUS_AUTO),
            ControlValueSetter::Boolean(false),
        ),
    }
}

/// A nokhwa camera.
pub struct NativeCamera {
    cam: Camera,
    info: SourceInfo,
    locked: HashMap<ControlKind, ControlValueSetter>,
}

impl NativeCamera {
    /// Open camera `index` at the format closest to `width`×`height` at `fps`, and start it.
    pub fn open(index: u32, width: u32, height: u32, fps: u32) -> Result<Self, CameraError> {
        let name = format!("camera {index}");
        let err = |e: nokhwa::NokhwaError| CameraError::Open {
            name: name.clone(),
            message: e.to_string(),
        };
        let req =
            RequestedFormat::new::<RgbFormat>(RequestedFormatType::Closest(CameraFormat::new(
                Resolution::new(width, height),
                FrameFormat::MJPEG,
                fps.max(1),
            )));
        let mut cam = Camera::new(CameraIndex::Index(index), req).map_err(err)?;
        cam.open_stream().map_err(err)?;
        let fmt = cam.camera_format();
        let info = SourceInfo {
            kind: SourceKind::Camera,
            name: cam.info().human_name(),
            detail: format!(
                "{} via {:?}, {}",
                cam.info().description(),
                cam.backend(),
                fmt
            ),
            width: fmt.width(),
            height: fmt.height(),
            fps: f64::from(fmt.frame_rate()),
        };
        Ok(Self {
            cam,
            info,
            locked: HashMap::new(),
        })
    }

    fn state(&self, kind: ControlKind) -> ControlState {
        match self.cam.camera_control(known(kind)) {
            Ok(c) => ControlState {
                kind,
                available: true,
                locked: self.locked.contains_key(&kind),
                value: Some(format!("{}", c.value())),
                note: Some(format!("{:?}", c.flag())),
            },
            Err(e) => ControlState {
                kind,
                available: false,
                locked: false,
                value: None,
                note: Some(format!("not exposed by this camera ({e})")),
            },
        }
    }
}

/// A JPEG frame is stored as sent only when it is a complete JPEG with its own Huffman tables
/// (many UVC cameras omit them, and such bytes are not a valid file).
fn storable_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8])
        && bytes.windows(2).any(|w| w == [0xFF, 0xC4])
        && bytes.ends_with(&[0xFF, 0xD9])
}

impl FrameSource for NativeCamera {
    fn info(&self) -> SourceInfo {
        self.info.clone()
    }

    fn next_frame(&mut self) -> Result<RawFrame, CameraError> {
        let lost = |e: nokhwa::NokhwaError| CameraError::Disconnected {
            name: self.info.name.clone(),
            message: e.to_string(),
        };
        let buf = self.cam.frame().map_err(lost)?;
        let encoded = (buf.source_frame_format() == FrameFormat::MJPEG
            && storable_jpeg(buf.buffer()))
        .then(|| Arc::new(buf.buffer().to_vec()));
        let img = buf.decode_image::<RgbFormat>().map_err(lost)?;
        Ok(RawFrame {
            image: Arc::new(img),
            encoded,
        })
    }

    fn controls(&self) -> Vec<ControlState> {
        ControlKind::ALL.iter().map(|&k| self.state(k)).collect()
    }

    fn set_locked(&mut self, kind: ControlKind, locked: bool) -> Result<(), CameraError> {
        let refuse = |message: String| CameraError::Control {
            camera: self.info.name.clone(),
            control: kind,
            message,
        };
        if cfg!(target_os = "linux") {
            let (auto, manual) = linux_auto(kind);
            if locked {
                let before = self
                    .cam
                    .camera_control(auto)
                    .map_err(|e| refuse(format!("no automatic mode to switch off ({e})")))?
                    .value();
                self.cam
                    .set_camera_control(auto, manual)
                    .map_err(|e| refuse(e.to_string()))?;
                self.locked.insert(kind, before);
            } else if let Some(before) = self.locked.remove(&kind) {
                self.cam
                    .set_camera_control(auto, before)
                    .map_err(|e| refuse(e.to_string()))?;
            }
            return Ok(());
        }
        let ctl = known(kind);
        let current = self
            .cam
            .camera_control(ctl)
            .map_err(|e| refuse(format!("not exposed by this camera ({e})")))?
            .value();
        if locked {
            self.cam
                .set_camera_control(ctl, current.clone())
                .map_err(|e| refuse(e.to_string()))?;
            self.locked.insert(kind, current);
        } else {
            self.locked.remove(&kind);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_complete_jpegs_are_kept_as_sent() {
        assert!(storable_jpeg(&[0xFF, 0xD8, 0xFF, 0xC4, 0, 0xFF, 0xD9]));
        // MJPEG without Huffman tables.
        assert!(!storable_jpeg(&[0xFF, 0xD8, 0xFF, 0xDB, 0, 0xFF, 0xD9]));
        assert!(!storable_jpeg(&[0xFF, 0xD8, 0xFF, 0xC4]));
    }

    #[test]
    fn listing_cameras_never_panics() {
        // No camera on CI machines: an empty list or a query error, both fine.
        let _ = list();
    }
}
