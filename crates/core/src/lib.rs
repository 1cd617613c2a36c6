//! # sameframe
//!
//! A standardized clinical photography kit for aesthetic clinics: before/after photos that are
//! comparable (same light, distance, angle and expression, honest about confounders), linked to
//! the patient's consent, and removable when that consent is withdrawn.
//!
//! The crate is a pure core with thin shells:
//!
//! - [`analysis`]: lighting (grey card, ColorChecker, exposure, white balance, clipping,
//!   fall-off, focus) and pose against the baseline.
//! - [`store`]: the data directory — SQLite rows, content-addressed (SHA-256) blobs encrypted per
//!   consent, and a tamper-evident audit chain.
//! - [`records`]: patients, consents, visits, captures and confounders, with the rules for who
//!   may be photographed and what a consent scope allows.
//! - [`ingest`]: validation of image files (format, header dimensions, truncation, EXIF).
//! - [`purge`]: consent withdrawal, journaled crash-safe purge, deletion certificates and
//!   takedown lists.
//! - [`calibration`]: the data a clinic tunes (confounders, limits, cards, tolerances, protocols).
//!
//! - [`camera`]: frame sources behind one trait (nokhwa cameras, a replay folder, the built-in
//!   demo sequence) on their own thread.
//! - [`app`]: the capture station (eframe/egui), a thin shell over the above.
//!
//! The CLI (`sameframe …`) and the capture app call the same functions; nothing in the core
//! (`analysis`, `records`, `store`, `review`, `purge`) depends on egui, nokhwa or the app.

pub mod analysis;
pub mod calibration;
pub mod camera_info;
pub mod decode;
pub mod fsutil;
pub mod ids;
pub mod ingest;
pub mod publish;
pub mod purge;
pub mod records;
pub mod review;
pub mod store;
pub mod testkit;
pub mod text;
pub mod timefmt;
pub mod vocab;
