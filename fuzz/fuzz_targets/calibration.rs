//! Calibration files: the input as each TOML file a clinic can override, read by every
//! loader (cards and tolerances, pose tolerances, protocols, confounders, limits, review
//! comparison). Errors are fine; panics are not.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use sameframe_core::calibration::Calibration;

static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();

const FILES: [&str; 5] = [
    "cards.toml",
    "tolerances.toml",
    "protocols.toml",
    "confounders.toml",
    "limits.toml",
];

fuzz_target!(|data: &[u8]| {
    let dir = DIR
        .get_or_init(|| tempfile::tempdir().expect("temp dir"))
        .path();
    // The first byte picks the file; the rest is its text.
    let Some((&pick, text)) = data.split_first() else {
        return;
    };
    for f in FILES {
        let _ = std::fs::remove_file(dir.join(f));
    }
    if std::fs::write(dir.join(FILES[usize::from(pick) % FILES.len()]), text).is_err() {
        return;
    }
    let cal = Calibration::with_dirs(vec![dir.to_path_buf()]);
    let _ = sameframe_core::analysis::lighting::LightingConfig::load(&cal);
    let _ = sameframe_core::analysis::pose::PoseConfig::load(&cal);
    let _ = sameframe_core::records::protocol::protocols(&cal);
    let _ = cal.confounders();
    let _ = cal.limits();
    let _ = sameframe_core::review::compare::ComparabilityTolerances::load(&cal);
});
