//! sameframe's records in standard formats. [`dicom`]: a capture as a DICOM VL Photographic
//! Image, its JPEG original encapsulated unchanged; [`fhir`]: a patient's consents, photos and
//! visits as a FHIR R4B or R5 Bundle; [`provenance`]: signed C2PA provenance manifests of publication
//! copies.
//!
//! Everything is read through the core's store API: consent rules, purged captures and
//! decryption are the core's, never re-implemented here.

pub mod dicom;
pub mod fhir;
pub mod pack;
pub mod provenance;

pub use dicom::{DicomError, DicomExport, export_captures};
