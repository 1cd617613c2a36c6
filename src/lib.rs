//! # sameframe
//!
//! The `sameframe` command and the crates it is built from, under one name:
//!
//! - [`sameframe_core`] (re-exported here): analysis, records, review, purge and the store
//!   behind traits — no GUI, camera or database driver types;
//! - [`sameframe_station`]: the capture station ([`app`]) and its cameras ([`camera`]).
//!
//! `src/main.rs` and `src/cli/` are the thin binary: parse, call, print.

pub use sameframe_core::*;
pub use sameframe_station::{app, camera};

/// The storage backends, and opening a data directory's store with whichever it uses.
pub use sameframe_store as backends;
