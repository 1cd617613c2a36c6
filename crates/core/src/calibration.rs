//! Data a clinic tunes, loaded from TOML: confounders, import limits, cards, tolerances,
//! view protocols.
//!
//! Each file is looked up, in order, in an explicit calibration folder (`--calibration-dir` or
//! `SAMEFRAME_CALIBRATION_DIR`), in `<data dir>/calibration/`, and finally in the defaults
//! compiled into the binary from the repository's `calibration/` folder. A clinic customises a
//! file by copying it into the data directory's `calibration/` folder and editing it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The defaults compiled in from `calibration/`.
const EMBEDDED: &[(&str, &str)] = &[
    (
        "confounders.toml",
        include_str!("../../../calibration/confounders.toml"),
    ),
    (
        "limits.toml",
        include_str!("../../../calibration/limits.toml"),
    ),
    (
        "cards.toml",
        include_str!("../../../calibration/cards.toml"),
    ),
    (
        "tolerances.toml",
        include_str!("../../../calibration/tolerances.toml"),
    ),
    (
        "protocols.toml",
        include_str!("../../../calibration/protocols.toml"),
    ),
    (
        "publication.toml",
        include_str!("../../../calibration/publication.toml"),
    ),
    (
        "treatment.toml",
        include_str!("../../../calibration/treatment.toml"),
    ),
];

/// A calibration file that could not be read or parsed.
#[derive(Debug, thiserror::Error)]
pub enum CalibrationError {
    #[error("could not read calibration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("calibration file {origin} is invalid: {message}")]
    Parse { origin: String, message: String },
    #[error("no calibration file named {0} (not in the calibration folders nor built in)")]
    Unknown(String),
}

/// Where calibration files are looked up.
#[derive(Clone, Debug, Default)]
pub struct Calibration {
    dirs: Vec<PathBuf>,
}

/// One item of the confounder checklist.
#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq)]
pub struct ConfounderDef {
    pub key: String,
    pub label: String,
    /// Whether a publication that uses a photo with this confounder must disclose it.
    #[serde(default = "yes")]
    pub disclose: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct ConfounderFile {
    confounder: Vec<ConfounderDef>,
}

/// The largest calibration file read (the largest built-in one is a few kilobytes).
pub const CALIBRATION_MAX_BYTES: u64 = 1024 * 1024;

/// Limits on imported files, checked before decoding.
#[derive(Clone, Debug, Deserialize)]
pub struct Limits {
    pub max_megapixels: f64,
    pub max_file_mib: u64,
    /// Memory one decode may hold at its peak; larger images are decoded reduced, or refused
    /// when their format cannot be (see [`crate::decode`]).
    #[serde(default = "default_decode_memory_mib")]
    pub decode_memory_mib: u64,
}

fn default_decode_memory_mib() -> u64 {
    Limits::default().decode_memory_mib
}

impl Limits {
    /// Largest accepted pixel count.
    pub fn max_pixels(&self) -> u64 {
        (self.max_megapixels * 1_000_000.0) as u64
    }
    /// Largest accepted file size in bytes.
    pub fn max_file_bytes(&self) -> u64 {
        self.max_file_mib.saturating_mul(1024 * 1024)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_megapixels: 100.0,
            max_file_mib: 128,
            decode_memory_mib: 224,
        }
    }
}

impl Calibration {
    /// Only the built-in defaults.
    pub fn builtin() -> Self {
        Self { dirs: Vec::new() }
    }

    /// Look in `dirs` (first match wins), then the built-in defaults.
    pub fn with_dirs(dirs: Vec<PathBuf>) -> Self {
        Self { dirs }
    }

    /// The folders searched before the built-in defaults.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The text of calibration file `name` and where it came from (a file of at most
    /// [`CALIBRATION_MAX_BYTES`]).
    pub fn text(&self, name: &str) -> Result<(String, String), CalibrationError> {
        for dir in &self.dirs {
            let p = dir.join(name);
            match crate::fsutil::read_text_capped(&p, CALIBRATION_MAX_BYTES) {
                Ok(t) => return Ok((t, p.display().to_string())),
                Err(e) if e.is_not_found() => {}
                Err(e) => {
                    return Err(CalibrationError::Read {
                        path: p,
                        source: std::io::Error::other(e.to_string()),
                    });
                }
            }
        }
        EMBEDDED
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, t)| ((*t).to_string(), format!("built-in {name}")))
            .ok_or_else(|| CalibrationError::Unknown(name.to_string()))
    }

    /// Parse calibration file `name` as `T`.
    pub fn load<T: for<'de> Deserialize<'de>>(&self, name: &str) -> Result<T, CalibrationError> {
        let (text, origin) = self.text(name)?;
        toml::from_str(&text).map_err(|e| CalibrationError::Parse {
            origin,
            message: e.to_string(),
        })
    }

    /// The confounder checklist, validated: keys unique and snake_case.
    pub fn confounders(&self) -> Result<Vec<ConfounderDef>, CalibrationError> {
        let (_, origin) = self.text("confounders.toml")?;
        let file: ConfounderFile = self.load("confounders.toml")?;
        let mut seen = std::collections::HashSet::new();
        for c in &file.confounder {
            let ok = !c.key.is_empty()
                && c.key
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                return Err(CalibrationError::Parse {
                    origin,
                    message: format!("confounder key {:?} must be snake_case", c.key),
                });
            }
            if !seen.insert(c.key.clone()) {
                return Err(CalibrationError::Parse {
                    origin,
                    message: format!("confounder key {:?} appears twice", c.key),
                });
            }
        }
        Ok(file.confounder)
    }

    /// Import limits.
    pub fn limits(&self) -> Result<Limits, CalibrationError> {
        self.load("limits.toml")
    }
}

/// The per-store calibration folder inside a data directory.
pub fn store_calibration_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("calibration")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_confounders_have_the_required_keys() {
        let c = Calibration::builtin().confounders().unwrap();
        for k in [
            "recent_sun_exposure",
            "active_dermatitis",
            "concurrent_treatment",
            "makeup_present",
            "post_procedure_swelling",
            "recent_other_procedure",
            "skincare_change",
        ] {
            assert!(c.iter().any(|d| d.key == k), "missing {k}");
        }
    }

    #[test]
    fn a_clinic_file_overrides_the_builtin() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("confounders.toml"),
            "[[confounder]]\nkey = \"pregnancy\"\nlabel = \"Pregnant\"\n",
        )
        .unwrap();
        let c = Calibration::with_dirs(vec![dir.path().to_path_buf()])
            .confounders()
            .unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].key, "pregnancy");
        assert!(c[0].disclose);
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("confounders.toml"),
            "[[confounder]]\nkey = \"a\"\nlabel = \"A\"\n[[confounder]]\nkey = \"a\"\nlabel = \"B\"\n",
        )
        .unwrap();
        let e = Calibration::with_dirs(vec![dir.path().to_path_buf()])
            .confounders()
            .unwrap_err();
        assert!(e.to_string().contains("appears twice"), "{e}");
    }
}
