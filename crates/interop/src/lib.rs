//! sameframe's records in standard formats. [`dicom`]: a capture as a DICOM VL Photographic
//! Image, its JPEG original encapsulated unchanged.
//!
//! Everything is read through the core's store API: consent rules, purged captures and
//! decryption are the core's, never re-implemented here.

pub mod dicom;

pub use dicom::{DicomError, DicomExport, export_captures};
