//! The shared backend's blob store: a bucket (and prefix) on S3 or any S3-compatible server
//! (MinIO, Ceph, Garage, …).
//!
//! Objects are written with a conditional put (`If-None-Match: *`), so two stations writing
//! the same address never overwrite each other; the server must support it (AWS S3 and the
//! common S3-compatible servers do; a server that does not is refused at `init`). The bucket
//! only ever receives sealed bytes.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig,
};

use sameframe_core::ids::is_sha256_hex;
use sameframe_core::store::repo::{BlobKind, Listed};
use sameframe_core::store::{BackendError, BlobError, BlobKey, BlobStore, FailureKind, Put};

/// Where a store's objects are, and the credentials to reach them.
#[derive(Clone)]
pub struct S3Config {
    pub bucket: String,
    /// Folder inside the bucket ("" for the whole bucket), without slashes at either end.
    pub prefix: String,
    /// The server (`http://127.0.0.1:9000`); AWS when absent.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.location())
    }
}

impl S3Config {
    /// Parse `s3://bucket/prefix`.
    pub fn parse_url(url: &str) -> Result<(String, String), String> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| format!("{url:?} is not an s3://bucket/prefix address"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(format!("{url:?} names no bucket"));
        }
        if bucket.contains('@') || bucket.contains(':') {
            return Err(
                "the address holds credentials: give them in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the credentials file instead"
                    .into(),
            );
        }
        Ok((bucket.to_string(), prefix.trim_matches('/').to_string()))
    }

    /// What messages call the bucket.
    pub fn location(&self) -> String {
        format!(
            "S3 bucket {}{}{}",
            self.bucket,
            if self.prefix.is_empty() {
                String::new()
            } else {
                format!(" (prefix {}/)", self.prefix)
            },
            self.endpoint
                .as_ref()
                .map(|e| format!(" at {e}"))
                .unwrap_or_default()
        )
    }
}

/// A bucket as a blob store.
pub struct S3 {
    cfg: S3Config,
    store: Arc<AmazonS3>,
    rt: tokio::runtime::Runtime,
}

impl std::fmt::Debug for S3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.cfg.location())
    }
}

impl S3 {
    /// A client for the bucket (no request is made yet).
    pub fn new(cfg: S3Config) -> Result<Self, BlobError> {
        let mut b = AmazonS3Builder::new()
            .with_bucket_name(&cfg.bucket)
            .with_region(&cfg.region)
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(120))
                    .with_allow_http(
                        cfg.endpoint
                            .as_deref()
                            .is_some_and(|e| e.starts_with("http://")),
                    ),
            )
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 3,
                retry_timeout: Duration::from_secs(30),
            });
        if let Some(e) = &cfg.endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(k) = &cfg.access_key_id {
            b = b.with_access_key_id(k);
        }
        if let Some(k) = &cfg.secret_access_key {
            b = b.with_secret_access_key(k);
        }
        if let Some(t) = &cfg.session_token {
            b = b.with_token(t);
        }
        let location = cfg.location();
        let store = b
            .build()
            .map_err(|e| fail(&location, "configure the client", e))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("sameframe-s3")
            .enable_all()
            .build()
            .map_err(|e| {
                BlobError::Backend(BackendError {
                    location: location.clone(),
                    op: "start the network runtime".into(),
                    kind: FailureKind::Unexpected,
                    detail: e.to_string(),
                })
            })?;
        Ok(Self {
            cfg,
            store: Arc::new(store),
            rt,
        })
    }

    fn path(&self, key: &BlobKey) -> ObjPath {
        ObjPath::from(self.full(&key.path()))
    }

    fn full(&self, rel: &str) -> String {
        if self.cfg.prefix.is_empty() {
            rel.to_string()
        } else {
            format!("{}/{rel}", self.cfg.prefix)
        }
    }

    fn rel<'a>(&self, full: &'a str) -> &'a str {
        if self.cfg.prefix.is_empty() {
            full
        } else {
            full.strip_prefix(&format!("{}/", self.cfg.prefix))
                .unwrap_or(full)
        }
    }

    fn fail(&self, op: &str, e: object_store::Error) -> BlobError {
        fail(&self.cfg.location(), op, e)
    }

    /// Objects under the store's prefix (any kind), for the checks `init` makes.
    pub fn any_object(&self) -> Result<Option<String>, BlobError> {
        let prefix = (!self.cfg.prefix.is_empty()).then(|| ObjPath::from(self.cfg.prefix.as_str()));
        let store = self.store.clone();
        let first = self.rt.block_on(async move {
            let mut s = store.list(prefix.as_ref());
            s.next().await
        });
        match first {
            None => Ok(None),
            Some(Ok(m)) => Ok(Some(m.location.to_string())),
            Some(Err(e)) => Err(self.fail("list the bucket", e)),
        }
    }
}

fn fail(location: &str, op: &str, e: object_store::Error) -> BlobError {
    let kind =
        match &e {
            object_store::Error::Unauthenticated { .. }
            | object_store::Error::PermissionDenied { .. } => FailureKind::Auth,
            object_store::Error::AlreadyExists { .. }
            | object_store::Error::Precondition { .. } => FailureKind::Duplicate,
            object_store::Error::NotImplemented { .. }
            | object_store::Error::NotSupported { .. } => FailureKind::Unexpected,
            _ => {
                let text = format!("{e:?}").to_ascii_lowercase();
                if text.contains("connect") || text.contains("dns") || text.contains("timed out") {
                    FailureKind::Unreachable
                } else if text.contains("nosuchbucket") || text.contains("no such bucket") {
                    FailureKind::Unexpected
                } else if text.contains("accessdenied")
                    || text.contains("signature")
                    || text.contains("invalidaccesskeyid")
                {
                    FailureKind::Auth
                } else {
                    FailureKind::Unexpected
                }
            }
        };
    let mut detail = e.to_string();
    let mut src = std::error::Error::source(&e);
    while let Some(c) = src {
        let t = c.to_string();
        if !detail.contains(&t) {
            detail = format!("{detail}: {t}");
        }
        src = c.source();
    }
    BlobError::Backend(BackendError {
        location: location.to_string(),
        op: op.to_string(),
        kind,
        detail,
    })
}

impl BlobStore for S3 {
    fn location(&self) -> String {
        self.cfg.location()
    }

    fn location_of(&self, key: &BlobKey) -> String {
        format!("s3://{}/{}", self.cfg.bucket, self.full(&key.path()))
    }

    fn is_local(&self) -> bool {
        false
    }

    fn put(&self, key: &BlobKey, bytes: &[u8]) -> Result<Put, BlobError> {
        let path = self.path(key);
        let store = self.store.clone();
        let payload = PutPayload::from(bytes.to_vec());
        let r = self.rt.block_on(async move {
            store
                .put_opts(&path, payload, PutOptions::from(PutMode::Create))
                .await
        });
        match r {
            Ok(_) => Ok(Put::Written),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(Put::AlreadyPresent),
            Err(e) => Err(self.fail(&format!("put object {}", key.path()), e)),
        }
    }

    fn replace(&self, key: &BlobKey, bytes: &[u8]) -> Result<(), BlobError> {
        let path = self.path(key);
        let store = self.store.clone();
        let payload = PutPayload::from(bytes.to_vec());
        self.rt
            .block_on(async move { store.put(&path, payload).await })
            .map(|_| ())
            .map_err(|e| self.fail(&format!("put object {}", key.path()), e))
    }

    fn get(&self, key: &BlobKey) -> Result<Vec<u8>, BlobError> {
        let path = self.path(key);
        let store = self.store.clone();
        let r = self.rt.block_on(async move {
            let got = store.get(&path).await?;
            got.bytes().await
        });
        match r {
            Ok(b) => Ok(b.to_vec()),
            Err(object_store::Error::NotFound { .. }) => Err(BlobError::Missing {
                hash: key.path(),
                location: self.location_of(key),
            }),
            Err(e) => Err(self.fail(&format!("get object {}", key.path()), e)),
        }
    }

    fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        let path = self.path(key);
        let store = self.store.clone();
        match self.rt.block_on(async move { store.delete(&path).await }) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail(&format!("delete object {}", key.path()), e)),
        }
    }

    fn exists(&self, key: &BlobKey) -> Result<bool, BlobError> {
        let path = self.path(key);
        let store = self.store.clone();
        match self.rt.block_on(async move { store.head(&path).await }) {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(self.fail(&format!("look for object {}", key.path()), e)),
        }
    }

    fn list(&self, kind: BlobKind) -> Result<Vec<Listed>, BlobError> {
        let folder = match kind {
            BlobKind::Blob => "blobs",
            BlobKind::Thumb => "cache/thumbs",
            BlobKind::Certificate => "certificates",
        };
        let prefix = ObjPath::from(self.full(folder));
        let store = self.store.clone();
        let metas = self.rt.block_on(async move {
            let s = store.list(Some(&prefix));
            s.collect::<Vec<_>>().await
        });
        let mut out = Vec::new();
        for m in metas {
            let m = m.map_err(|e| self.fail("list the bucket", e))?;
            let full = m.location.to_string();
            let rel = self.rel(&full);
            let key = match kind {
                BlobKind::Blob => rel
                    .strip_prefix("blobs/")
                    .map(|r| r.replace('/', ""))
                    .filter(|h| is_sha256_hex(h))
                    .map(BlobKey::Blob),
                BlobKind::Thumb => rel
                    .strip_prefix("cache/thumbs/")
                    .and_then(|r| r.strip_suffix(".thumb"))
                    .map(|h| BlobKey::Thumb(h.to_string())),
                BlobKind::Certificate => rel
                    .strip_prefix("certificates/")
                    .map(|n| BlobKey::Certificate(n.to_string())),
            };
            out.push(Listed {
                key,
                location: format!("s3://{}/{full}", self.cfg.bucket),
                size: m.size,
                modified: Some(SystemTime::from(m.last_modified)),
            });
        }
        out.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(out)
    }

    fn remove_leftover(&self, location: &str) -> Result<(), BlobError> {
        let full = location
            .strip_prefix(&format!("s3://{}/", self.cfg.bucket))
            .ok_or_else(|| BlobError::BadAddress(location.to_string()))?;
        let path = ObjPath::from(full);
        let store = self.store.clone();
        match self.rt.block_on(async move { store.delete(&path).await }) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.fail("delete a leftover object", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_refuse_credentials() {
        assert_eq!(
            S3Config::parse_url("s3://photos/clinic-a/").unwrap(),
            ("photos".into(), "clinic-a".into())
        );
        assert_eq!(
            S3Config::parse_url("s3://photos").unwrap(),
            ("photos".into(), "".into())
        );
        assert!(S3Config::parse_url("https://photos").is_err());
        let e = S3Config::parse_url("s3://AKIA:secret@photos/x").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
    }
}
