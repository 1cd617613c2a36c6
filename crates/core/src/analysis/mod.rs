//! Image analyses used live by the capture station and offline by the CLI: lighting against a
//! grey card or ColorChecker, pose against the baseline, overlay geometry, and the perceptual fingerprint a capture is traced by. Pure functions on
//! pixels — no GUI or camera types.

pub mod color;
pub mod copy_check;
pub mod fingerprint;
pub mod frame;
pub mod geometry;
pub mod guides;
pub mod lighting;
pub mod pose;
pub mod readiness;
pub mod view_check;
