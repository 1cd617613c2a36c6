//! Publication copies made by the kit (`sameframe publish prepare`): consent-gated, graded,
//! de-identified as asked, labelled, with the clinic's variability note, no metadata, and a
//! signed provenance manifest naming their source captures. The copy is recorded as a
//! publication as it is made, so review and withdrawal know it.

pub mod compose;
pub mod config;
pub mod deid;
pub mod identity;
pub mod lettering;
mod prepare;
pub mod provenance;
pub mod strip;

pub use identity::SigningIdentity;
pub use prepare::{PrepareRequest, Prepared, caption_path};
