//! # sameframe-station
//!
//! The capture station: an eframe/egui app over the core library, and the cameras it reads
//! frames from (nokhwa devices, a replay folder, the built-in demo sequence).
//!
//! Only this crate depends on eframe, egui and nokhwa; the core (`sameframe-core`) knows
//! nothing of them. The app's panels send commands; a core worker applies them through the
//! same library calls the CLI makes.

pub mod app;
pub mod camera;
