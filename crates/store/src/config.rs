//! A station's configuration: `<data dir>/sameframe.toml`.
//!
//! ```toml
//! [station]
//! id = "sta_3f9c…"                 # which disk a copy is on (made on first use)
//! key_file = "/media/key/clinic.key"  # optional: this station's copy of the store key file
//!
//! [store]                          # absent: the embedded store in this folder
//! database_url = "postgres://sameframe@db.clinic.lan:5432/sameframe"
//! blob_url = "s3://clinic-photos/sameframe"
//! s3_endpoint = "http://minio.clinic.lan:9000"   # absent: AWS S3
//! s3_region = "eu-west-1"
//! credentials_file = "/etc/sameframe/credentials" # optional, readable by its owner only
//! database_ca_file = "/etc/sameframe/db-ca.pem"   # optional: the database server's CA
//! ```
//!
//! The file holds no secret. Passwords and access keys come from the environment
//! (`SAMEFRAME_DATABASE_PASSWORD` or `PGPASSWORD`, `AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) or from the credentials file:
//!
//! ```toml
//! database_password = "…"
//! s3_access_key_id = "…"
//! s3_secret_access_key = "…"
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use sameframe_core::store::StoreError;

use crate::pg::DbConfig;
use crate::s3::S3Config;

/// The configuration file's name in a data directory.
pub const CONFIG_FILE: &str = "sameframe.toml";

/// A station's configuration.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct StationConfig {
    #[serde(default)]
    pub station: Station,
    /// The shared store this station uses; absent for the embedded store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<SharedSpec>,
}

/// This station.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Station {
    #[serde(default)]
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
}

/// Where a shared store is (no credentials).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SharedSpec {
    pub database_url: String,
    pub blob_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<PathBuf>,
    /// A CA certificate (PEM) the database server's certificate is checked against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database_ca_file: Option<PathBuf>,
}

/// Secrets, from the environment or the credentials file.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    database_password: Option<String>,
    s3_access_key_id: Option<String>,
    s3_secret_access_key: Option<String>,
    s3_session_token: Option<String>,
}

fn bad(path: &Path, why: impl Into<String>) -> StoreError {
    StoreError::Config {
        path: path.to_path_buf(),
        why: why.into(),
    }
}

/// The largest configuration or credentials file read.
const CONFIG_MAX_BYTES: u64 = 64 * 1024;

impl StationConfig {
    /// The configuration in `data_dir`, if it has one.
    pub fn load(data_dir: &Path) -> Result<Option<Self>, StoreError> {
        let path = data_dir.join(CONFIG_FILE);
        let text = match sameframe_core::fsutil::read_text_capped(&path, CONFIG_MAX_BYTES) {
            Ok(t) => t,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => {
                return Err(StoreError::Io {
                    path,
                    source: std::io::Error::other(e.to_string()),
                });
            }
        };
        toml::from_str(&text)
            .map(Some)
            .map_err(|e| bad(&path, e.to_string()))
    }

    /// Write the configuration into `data_dir` (owner-only, atomically).
    pub fn save(&self, data_dir: &Path) -> Result<(), StoreError> {
        let path = data_dir.join(CONFIG_FILE);
        let text = format!(
            "# sameframe station configuration (no secrets: see `sameframe init --help`)\n{}",
            toml::to_string(self).map_err(|e| bad(&path, e.to_string()))?
        );
        let tmp = data_dir.join(format!(".{CONFIG_FILE}.{}.tmp", std::process::id()));
        crate::private_file(&tmp, text.as_bytes())?;
        std::fs::rename(&tmp, &path).map_err(StoreError::io(&path))?;
        sameframe_core::fsutil::sync_dir(data_dir)
    }
}

impl SharedSpec {
    /// Check the addresses (a password or key in them is refused, never echoed).
    pub fn validate(&self, path: &Path) -> Result<(), StoreError> {
        DbConfig::new(&self.database_url, None)
            .map_err(|why| bad(path, format!("database_url: {why}")))?;
        S3Config::parse_url(&self.blob_url).map_err(|why| bad(path, format!("blob_url: {why}")))?;
        if let Some(e) = &self.s3_endpoint
            && (e.contains('@') || !(e.starts_with("http://") || e.starts_with("https://")))
        {
            return Err(bad(
                path,
                "s3_endpoint: expected http(s)://host:port, without credentials",
            ));
        }
        Ok(())
    }

    fn credentials(&self) -> Result<Credentials, StoreError> {
        let mut c = match &self.credentials_file {
            None => Credentials::default(),
            Some(f) => read_credentials(f)?,
        };
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(p) = env("SAMEFRAME_DATABASE_PASSWORD").or_else(|| env("PGPASSWORD")) {
            c.database_password = Some(p);
        }
        if let Some(k) = env("AWS_ACCESS_KEY_ID") {
            c.s3_access_key_id = Some(k);
        }
        if let Some(k) = env("AWS_SECRET_ACCESS_KEY") {
            c.s3_secret_access_key = Some(k);
        }
        if let Some(k) = env("AWS_SESSION_TOKEN") {
            c.s3_session_token = Some(k);
        }
        Ok(c)
    }

    /// The database's connection settings, with its password.
    pub fn database(&self, path: &Path) -> Result<DbConfig, StoreError> {
        let c = self.credentials()?;
        Ok(
            DbConfig::new(&self.database_url, c.database_password.as_deref())
                .map_err(|why| bad(path, format!("database_url: {why}")))?
                .with_ca_file(self.database_ca_file.clone()),
        )
    }

    /// The bucket's settings, with its keys.
    pub fn bucket(&self, path: &Path) -> Result<S3Config, StoreError> {
        let c = self.credentials()?;
        let (bucket, prefix) = S3Config::parse_url(&self.blob_url)
            .map_err(|why| bad(path, format!("blob_url: {why}")))?;
        Ok(S3Config {
            bucket,
            prefix,
            endpoint: self.s3_endpoint.clone(),
            region: self
                .s3_region
                .clone()
                .or_else(|| std::env::var("AWS_REGION").ok())
                .unwrap_or_else(|| "us-east-1".into()),
            access_key_id: c.s3_access_key_id,
            secret_access_key: c.s3_secret_access_key,
            session_token: c.s3_session_token,
        })
    }
}

/// Read a credentials file, refusing one that others can read.
fn read_credentials(f: &Path) -> Result<Credentials, StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(f).map_err(StoreError::io(f))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(bad(
                f,
                format!(
                    "the credentials file can be read by other users (mode {:o}): run `chmod 600 {}`",
                    meta.permissions().mode() & 0o777,
                    f.display()
                ),
            ));
        }
    }
    let text = sameframe_core::fsutil::read_text_capped(f, CONFIG_MAX_BYTES).map_err(|e| {
        StoreError::Io {
            path: f.to_path_buf(),
            source: std::io::Error::other(e.to_string()),
        }
    })?;
    // The parser's message could quote a line of the file: name the file and the line only.
    toml::from_str(&text).map_err(|e| {
        let at = e
            .span()
            .map(|s| format!(" near byte {}", s.start))
            .unwrap_or_default();
        bad(
            f,
            format!("not a credentials file{at} (expected database_password, s3_access_key_id, s3_secret_access_key)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_round_trips_and_keeps_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let c = StationConfig {
            station: Station {
                id: "sta_1".into(),
                key_file: None,
            },
            store: Some(SharedSpec {
                database_url: "postgres://sf@db:5432/sf".into(),
                blob_url: "s3://photos/a".into(),
                s3_endpoint: Some("http://minio:9000".into()),
                s3_region: None,
                credentials_file: None,
                database_ca_file: None,
            }),
        };
        c.save(dir.path()).unwrap();
        assert_eq!(StationConfig::load(dir.path()).unwrap(), Some(c));
        assert!(
            StationConfig::load(&dir.path().join("none"))
                .unwrap()
                .is_none()
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_credentials_file_others_can_read_is_refused_without_quoting_it() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("creds");
        std::fs::write(&f, "database_password = \"hunter22\"\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_credentials(&f).err().unwrap().to_string();
        assert!(e.contains("chmod 600") && !e.contains("hunter22"), "{e}");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            read_credentials(&f).unwrap().database_password.as_deref(),
            Some("hunter22")
        );
        std::fs::write(&f, "database_password = hunter22\n").unwrap();
        let e = read_credentials(&f).err().unwrap().to_string();
        assert!(!e.contains("hunter22"), "{e}");
    }
}
