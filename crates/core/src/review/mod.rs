//! Compliance review of published images: trace each to its source captures, then check
//! consent, pairing, comparability, disclosures, edits and captions.

pub mod checks;
pub mod claimed;
pub mod compare;
pub mod edits;
pub mod index;
pub mod matching;
mod pixels;
pub mod report;
