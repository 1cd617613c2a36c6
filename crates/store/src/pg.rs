//! The shared backend's rows: a PostgreSQL database every station of a clinic connects to.
//!
//! Every unit of work takes one transaction-scoped advisory lock before it reads what it will
//! change, so writers from every station are serialised exactly as SQLite serialises local
//! ones: the audit chain stays one chain, a series gets one baseline, a withdrawal and an
//! import of the same consent cannot interleave. Readers never wait.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls, Statement};

use crate::sql::{Sql, SqlConn, SqlError, SqlRow, Val, backend_error};
use sameframe_core::store::repo::{Backend, RepoResult, Work};
use sameframe_core::store::{FailureKind, StoreError};

/// The advisory lock every writer of a store's database takes ("sameframe").
const WRITE_LOCK: i64 = 0x5341_4d45_4652_4d45;
/// Units of work retried after a transient conflict or a dropped connection.
const RETRIES: usize = 5;
/// The schema version this build writes.
const LATEST: i64 = 2;

/// A transaction holding the store's write lock (what failed, and how, if it could not).
fn locked(client: &mut Client) -> Result<postgres::Transaction<'_>, (&'static str, SqlError)> {
    let mut tx = client.transaction().map_err(|e| ("begin", classify(e)))?;
    tx.query_one("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
        .map_err(|e| ("take the store's write lock", classify(e)))?;
    Ok(tx)
}

/// Changes to the schema after version 1, in order: (version after, statements). Run by
/// `sameframe init` after [`SCHEMA`], and on first open of an older store.
const UPGRADES: &[(i64, &str)] = &[(
    2,
    // Treatment records of visits (area maps, products and lots, skin response, pain,
    // outcomes, adverse events), each sealed, with the consent whose clinical record holds it.
    r#"
CREATE TABLE treatment (
    id         TEXT PRIMARY KEY,
    kind       TEXT NOT NULL,
    patient_id TEXT NOT NULL REFERENCES patient(id),
    visit_id   TEXT NOT NULL REFERENCES visit(id),
    consent_id TEXT REFERENCES consent(id),
    body       BYTEA NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX treatment_visit ON treatment(visit_id);
CREATE INDEX treatment_patient ON treatment(patient_id);
CREATE INDEX treatment_consent ON treatment(consent_id);
CREATE INDEX treatment_kind ON treatment(kind);
"#,
)];

/// The schema at version 1, created in an empty database by `sameframe init`.
const SCHEMA: &str = r#"
CREATE TABLE sameframe_schema (version BIGINT NOT NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE setting (key TEXT PRIMARY KEY, body BYTEA NOT NULL);
CREATE TABLE keyring (
    id                BIGINT PRIMARY KEY CHECK (id = 1),
    mode              TEXT NOT NULL CHECK (mode IN ('passphrase', 'keyfile')),
    kdf               TEXT,
    salt              BYTEA,
    wrapped_master    BYTEA,
    key_file          TEXT,
    check_value       BYTEA NOT NULL,
    migration_pending BIGINT NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL
);
CREATE TABLE patient (
    id         TEXT PRIMARY KEY,
    ref_key    TEXT NOT NULL UNIQUE,
    body       BYTEA NOT NULL,
    created_at TEXT NOT NULL
);
CREATE TABLE consent (
    id         TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patient(id),
    body       BYTEA NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX consent_patient ON consent(patient_id);
CREATE TABLE data_key (
    id           TEXT PRIMARY KEY,
    consent_id   TEXT NOT NULL UNIQUE REFERENCES consent(id),
    wrapped      BYTEA,
    created_at   TEXT NOT NULL,
    destroyed_at TEXT,
    destroyed_by TEXT
);
CREATE TABLE blob (
    sha256     TEXT PRIMARY KEY,
    size       BIGINT NOT NULL,
    kind       TEXT NOT NULL CHECK (kind IN ('capture', 'document')),
    consent_id TEXT NOT NULL REFERENCES consent(id),
    key_id     TEXT REFERENCES data_key(id),
    created_at TEXT NOT NULL
);
CREATE INDEX blob_key ON blob(key_id);
CREATE INDEX blob_consent ON blob(consent_id);
CREATE TABLE visit (
    id         TEXT PRIMARY KEY,
    patient_id TEXT NOT NULL REFERENCES patient(id),
    body       BYTEA NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX visit_patient ON visit(patient_id);
CREATE TABLE capture (
    id          TEXT PRIMARY KEY,
    sha256      TEXT NOT NULL UNIQUE REFERENCES blob(sha256),
    patient_id  TEXT NOT NULL REFERENCES patient(id),
    consent_id  TEXT NOT NULL REFERENCES consent(id),
    visit_id    TEXT REFERENCES visit(id),
    area        TEXT NOT NULL,
    view        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('baseline', 'follow_up')),
    baseline_id TEXT REFERENCES capture(id),
    captured_at TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    body        BYTEA NOT NULL
);
CREATE INDEX capture_series ON capture(patient_id, area, view, role);
CREATE INDEX capture_consent ON capture(consent_id);
CREATE INDEX capture_baseline ON capture(baseline_id);
CREATE INDEX capture_order ON capture(imported_at, id);
CREATE TABLE fingerprint (
    capture_id  TEXT PRIMARY KEY REFERENCES capture(id),
    version     BIGINT NOT NULL,
    phash       BIGINT NOT NULL,
    dhash       BIGINT NOT NULL,
    width       BIGINT NOT NULL,
    height      BIGINT NOT NULL,
    keypoints   BYTEA NOT NULL,
    descriptors BYTEA NOT NULL,
    created_at  TEXT NOT NULL,
    small       BYTEA
);
CREATE TABLE fingerprint_index (
    capture_id  TEXT PRIMARY KEY,
    phash       BIGINT NOT NULL,
    dhash       BIGINT NOT NULL,
    keypoints   BYTEA NOT NULL,
    descriptors BYTEA NOT NULL
);
CREATE TABLE export (
    id           TEXT PRIMARY KEY,
    capture_id   TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    purpose      TEXT NOT NULL,
    path         TEXT NOT NULL,
    inside_store BIGINT NOT NULL,
    at           TEXT NOT NULL,
    actor        TEXT NOT NULL,
    station      TEXT NOT NULL DEFAULT '',
    purge_job    TEXT
);
CREATE INDEX export_capture ON export(capture_id);
CREATE TABLE publication (
    id          TEXT PRIMARY KEY,
    file_sha256 TEXT NOT NULL,
    body        BYTEA NOT NULL,
    recorded_at TEXT NOT NULL
);
CREATE INDEX publication_file ON publication(file_sha256);
CREATE TABLE lighting_profile (
    name         TEXT PRIMARY KEY,
    profile      TEXT NOT NULL,
    image_sha256 TEXT NOT NULL,
    exif         TEXT,
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL
);
CREATE TABLE purge_job (
    id                 TEXT PRIMARY KEY,
    consent_id         TEXT NOT NULL REFERENCES consent(id),
    scopes             TEXT NOT NULL,
    purge_originals    BIGINT NOT NULL,
    retention_override BIGINT NOT NULL,
    reason             TEXT NOT NULL,
    actor              TEXT NOT NULL,
    started_at         TEXT NOT NULL,
    committed_at       TEXT,
    completed_at       TEXT,
    certificate_sha256 TEXT
);
CREATE INDEX purge_job_consent ON purge_job(consent_id);
CREATE TABLE purge_item (
    job_id     TEXT NOT NULL REFERENCES purge_job(id),
    seq        BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    subject_id TEXT,
    sha256     TEXT,
    path       TEXT,
    detail     TEXT,
    PRIMARY KEY (job_id, seq)
);
CREATE TABLE tombstone (
    id         BIGINT PRIMARY KEY,
    kind       TEXT NOT NULL,
    sha256     TEXT,
    subject_id TEXT,
    consent_id TEXT NOT NULL,
    job_id     TEXT NOT NULL,
    purged_at  TEXT NOT NULL,
    purged_by  TEXT NOT NULL,
    reason     TEXT NOT NULL
);
CREATE INDEX tombstone_sha ON tombstone(sha256);
CREATE INDEX tombstone_consent ON tombstone(consent_id);
CREATE TABLE audit (
    seq       BIGINT PRIMARY KEY,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    subjects  TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
"#;

/// Where a store's database is, and how to log in (the password never leaves this struct).
#[derive(Clone)]
pub struct DbConfig {
    config: postgres::Config,
    location: String,
    /// A CA certificate (PEM) the server's certificate is checked against, besides the
    /// system's.
    ca_file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for DbConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.location)
    }
}

impl DbConfig {
    /// Parse `postgres://user@host:port/db`; the password comes separately.
    pub fn new(url: &str, password: Option<&str>) -> Result<Self, String> {
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e| format!("not a PostgreSQL address ({e})"))?;
        if config.get_password().is_some() {
            return Err(
                "the address holds a password: give it in SAMEFRAME_DATABASE_PASSWORD (or PGPASSWORD) or the credentials file instead"
                    .into(),
            );
        }
        if let Some(p) = password {
            config.password(p);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        config.application_name("sameframe");
        let host = config
            .get_hosts()
            .first()
            .map(|h| match h {
                postgres::config::Host::Tcp(t) => t.clone(),
                #[cfg(unix)]
                postgres::config::Host::Unix(p) => p.display().to_string(),
            })
            .unwrap_or_else(|| "localhost".into());
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let db = config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or("postgres")
            .to_string();
        let user = config.get_user().unwrap_or("(default user)").to_string();
        Ok(Self {
            location: format!("PostgreSQL {user}@{host}:{port}/{db}"),
            config,
            ca_file: None,
        })
    }

    /// Check the server's certificate against this CA (PEM) too.
    pub fn with_ca_file(mut self, ca: Option<std::path::PathBuf>) -> Self {
        self.ca_file = ca;
        self
    }

    /// What messages call the database.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Connect: over TLS unless the address says `sslmode=disable` (with the default,
    /// `prefer`, a server without TLS is reached in clear; a server with TLS must present a
    /// certificate for its host name that the system's roots or the configured CA sign).
    fn connect(&self) -> Result<Client, SqlError> {
        if self.config.get_ssl_mode() == postgres::config::SslMode::Disable {
            return self.config.connect(NoTls).map_err(classify);
        }
        self.config.connect(self.tls()?).map_err(|e| {
            let mut e = classify(e);
            if e.detail.contains("certificate") {
                e.detail += " (give the server's CA certificate with --database-ca, or `database_ca_file` in sameframe.toml)";
            }
            e
        })
    }

    fn tls(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, SqlError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(c);
        }
        if let Some(f) = &self.ca_file {
            let certs = CertificateDer::pem_file_iter(f)
                .map_err(|e| SqlError::unexpected(format!("CA file {}: {e}", f.display())))?;
            for c in certs {
                let c =
                    c.map_err(|e| SqlError::unexpected(format!("CA file {}: {e}", f.display())))?;
                roots
                    .add(c)
                    .map_err(|e| SqlError::unexpected(format!("CA file {}: {e}", f.display())))?;
            }
        }
        let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SqlError::unexpected(format!("TLS: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }
}

/// A driver error, classified; the detail never holds a password (the driver does not echo
/// it, and the address shown is built without it).
fn classify(e: postgres::Error) -> SqlError {
    let kind = match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION => FailureKind::Duplicate,
        Some(c)
            if *c == SqlState::FOREIGN_KEY_VIOLATION
                || *c == SqlState::CHECK_VIOLATION
                || *c == SqlState::NOT_NULL_VIOLATION =>
        {
            FailureKind::Constraint
        }
        Some(c)
            if *c == SqlState::T_R_SERIALIZATION_FAILURE
                || *c == SqlState::T_R_DEADLOCK_DETECTED =>
        {
            FailureKind::Retry
        }
        Some(c)
            if *c == SqlState::INVALID_PASSWORD
                || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION =>
        {
            FailureKind::Auth
        }
        Some(c) if *c == SqlState::LOCK_NOT_AVAILABLE || *c == SqlState::QUERY_CANCELED => {
            FailureKind::Busy
        }
        Some(c) if c.code().starts_with("08") || c.code().starts_with("57P") => {
            FailureKind::Unreachable
        }
        Some(_) => FailureKind::Unexpected,
        None if e.is_closed() => FailureKind::Unreachable,
        None => FailureKind::Unreachable,
    };
    let detail = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut s = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(c) = src {
                let t = c.to_string();
                if !s.contains(&t) {
                    s = format!("{s}: {t}");
                }
                src = c.source();
            }
            s
        }
    };
    SqlError { kind, detail }
}

const SCHEMA_EXISTS: &str = "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'sameframe_schema' AND table_schema = current_schema()";

fn schema_in(c: &mut Client) -> Result<bool, SqlError> {
    let n: i64 = c.query_one(SCHEMA_EXISTS, &[]).map_err(classify)?.get(0);
    Ok(n > 0)
}

fn schema_in_tx(c: &mut postgres::Transaction<'_>) -> Result<bool, SqlError> {
    let n: i64 = c.query_one(SCHEMA_EXISTS, &[]).map_err(classify)?.get(0);
    Ok(n > 0)
}

/// `?1`-style placeholders as PostgreSQL's `$1`.
fn dollar(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c == '?' && !quoted && chars.peek().is_some_and(char::is_ascii_digit) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

struct Conn {
    client: Client,
    location: String,
    statements: HashMap<String, Statement>,
}

impl Conn {
    fn statement(&mut self, sql: &str) -> Result<Statement, SqlError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let st = self.client.prepare(&dollar(sql)).map_err(classify)?;
        self.statements.insert(sql.to_string(), st.clone());
        Ok(st)
    }
}

/// A parameter as the statement's type needs it.
fn param<'a>(v: &Val<'a>, ty: &Type) -> Result<Box<dyn ToSql + Sync + 'a>, SqlError> {
    let mismatch = || SqlError::unexpected(format!("a {v:?} for a {ty} parameter"));
    Ok(match (*v, ty) {
        (Val::Null, t) if *t == Type::INT8 => Box::new(None::<i64>),
        (Val::Null, t) if *t == Type::INT4 => Box::new(None::<i32>),
        (Val::Null, t) if *t == Type::BYTEA => Box::new(None::<&[u8]>),
        (Val::Null, t) if *t == Type::FLOAT8 => Box::new(None::<f64>),
        (Val::Null, t) if *t == Type::BOOL => Box::new(None::<bool>),
        (Val::Null, _) => Box::new(None::<&str>),
        (Val::Int(i), t) if *t == Type::INT8 => Box::new(i),
        (Val::Int(i), t) if *t == Type::INT4 => Box::new(i32::try_from(i).map_err(|_| mismatch())?),
        (Val::Int(i), t) if *t == Type::BOOL => Box::new(i != 0),
        (Val::Int(i), t) if *t == Type::FLOAT8 => Box::new(i as f64),
        (Val::Int(i), t) if *t == Type::TEXT => Box::new(i.to_string()),
        (Val::Real(r), t) if *t == Type::FLOAT8 => Box::new(r),
        (Val::Text(s), t) if *t == Type::TEXT || *t == Type::VARCHAR => Box::new(s),
        (Val::Text(s), t) if *t == Type::BYTEA => Box::new(s.as_bytes()),
        (Val::Blob(b), t) if *t == Type::BYTEA => Box::new(b),
        _ => return Err(mismatch()),
    })
}

fn params<'a>(
    st: &Statement,
    vals: &[Val<'a>],
) -> Result<Vec<Box<dyn ToSql + Sync + 'a>>, SqlError> {
    if st.params().len() != vals.len() {
        return Err(SqlError::unexpected(format!(
            "{} parameters for a statement of {}",
            vals.len(),
            st.params().len()
        )));
    }
    vals.iter()
        .zip(st.params())
        .map(|(v, t)| param(v, t))
        .collect()
}

struct Row<'r>(&'r postgres::Row);

impl SqlRow for Row<'_> {
    fn get(&self, i: usize) -> Result<Val<'_>, SqlError> {
        let ty = self
            .0
            .columns()
            .get(i)
            .map(|c| c.type_().clone())
            .ok_or_else(|| SqlError::unexpected(format!("no column {i}")))?;
        let g = |e: postgres::Error| SqlError::unexpected(format!("column {i}: {e}"));
        Ok(if ty == Type::INT8 {
            self.0
                .try_get::<_, Option<i64>>(i)
                .map_err(g)?
                .map_or(Val::Null, Val::Int)
        } else if ty == Type::INT4 {
            self.0
                .try_get::<_, Option<i32>>(i)
                .map_err(g)?
                .map_or(Val::Null, |v| Val::Int(i64::from(v)))
        } else if ty == Type::INT2 {
            self.0
                .try_get::<_, Option<i16>>(i)
                .map_err(g)?
                .map_or(Val::Null, |v| Val::Int(i64::from(v)))
        } else if ty == Type::BOOL {
            self.0
                .try_get::<_, Option<bool>>(i)
                .map_err(g)?
                .map_or(Val::Null, |v| Val::Int(i64::from(v)))
        } else if ty == Type::FLOAT8 {
            self.0
                .try_get::<_, Option<f64>>(i)
                .map_err(g)?
                .map_or(Val::Null, Val::Real)
        } else if ty == Type::BYTEA {
            self.0
                .try_get::<_, Option<&[u8]>>(i)
                .map_err(g)?
                .map_or(Val::Null, Val::Blob)
        } else {
            self.0
                .try_get::<_, Option<&str>>(i)
                .map_err(g)?
                .map_or(Val::Null, Val::Text)
        })
    }

    fn columns(&self) -> usize {
        self.0.len()
    }
}

impl SqlConn for Conn {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn execute(&mut self, sql: &str, vals: &[Val<'_>]) -> Result<u64, SqlError> {
        let st = self.statement(sql)?;
        let boxed = params(&st, vals)?;
        let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| b.as_ref()).collect();
        self.client.execute(&st, &refs).map_err(classify)
    }

    fn query(
        &mut self,
        sql: &str,
        vals: &[Val<'_>],
        f: &mut dyn FnMut(&dyn SqlRow) -> Result<(), SqlError>,
    ) -> Result<(), SqlError> {
        let st = self.statement(sql)?;
        let boxed = params(&st, vals)?;
        let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| b.as_ref()).collect();
        let mut rows = self.client.query_raw(&st, refs).map_err(classify)?;
        while let Some(r) = rows.next().map_err(classify)? {
            f(&Row(&r))?;
        }
        Ok(())
    }
}

/// The shared backend's rows.
pub struct Postgres {
    db: DbConfig,
    conn: RefCell<Option<Conn>>,
}

impl Postgres {
    fn connect(db: &DbConfig) -> Result<Conn, StoreError> {
        let client = db
            .connect()
            .map_err(|e| StoreError::Backend(backend_error(db.location.clone(), "connect", e)))?;
        Ok(Conn {
            client,
            location: db.location.clone(),
            statements: HashMap::new(),
        })
    }

    fn fail(&self, op: &str, e: SqlError) -> StoreError {
        StoreError::Backend(backend_error(self.db.location.clone(), op, e))
    }

    /// Connect to the store in `db`; its schema must exist (see [`Postgres::create`]).
    pub fn open(db: DbConfig) -> Result<Self, StoreError> {
        let pg = Self {
            conn: RefCell::new(Some(Self::connect(&db)?)),
            db,
        };
        let found = pg.schema_version()?;
        if found == 0 {
            return Err(StoreError::Tampered {
                what: pg.db.location.clone(),
                why: "it holds no sameframe store (create one with `sameframe init --database-url …`)"
                    .into(),
            });
        }
        if found > LATEST {
            return Err(StoreError::TooNew {
                location: pg.db.location.clone(),
                found,
                supported: LATEST,
            });
        }
        if found < LATEST {
            pg.upgrade()?;
        }
        Ok(pg)
    }

    /// True when the database has the sameframe schema (a store, or one being made).
    pub fn schema_exists(db: &DbConfig) -> Result<bool, StoreError> {
        let mut c = Self::connect(db)?;
        schema_in(&mut c.client).map_err(|e| {
            StoreError::Backend(backend_error(db.location.clone(), "look for a store", e))
        })
    }

    /// True when the database holds a store (its schema and a store ID).
    pub fn holds_store(db: &DbConfig) -> Result<bool, StoreError> {
        let mut c = Self::connect(db)?;
        let fail =
            |e| StoreError::Backend(backend_error(db.location.clone(), "look for a store", e));
        if !schema_in(&mut c.client).map_err(fail)? {
            return Ok(false);
        }
        let n: i64 = c
            .client
            .query_one("SELECT COUNT(*) FROM meta WHERE key = 'store_id'", &[])
            .map_err(|e| fail(classify(e)))?
            .get(0);
        Ok(n > 0)
    }

    /// Create the schema in an empty database, all or nothing (an empty schema an interrupted
    /// `init` left is used as it is).
    pub fn create(db: DbConfig) -> Result<Self, StoreError> {
        let mut c = Self::connect(&db)?;
        let fail = |op: &str, e| StoreError::Backend(backend_error(db.location.clone(), op, e));
        let mut tx = locked(&mut c.client).map_err(|(op, e)| fail(op, e))?;
        if schema_in_tx(&mut tx).map_err(|e| fail("look for a store", e))? {
            let n: i64 = tx
                .query_one("SELECT COUNT(*) FROM meta WHERE key = 'store_id'", &[])
                .map_err(|e| fail("look for a store", classify(e)))?
                .get(0);
            if n > 0 {
                return Err(StoreError::AlreadyInitialized {
                    what: db.location.clone(),
                    hint: " (pass --join to connect this station to it)".into(),
                });
            }
        } else {
            tx.batch_execute(SCHEMA)
                .map_err(|e| fail("create the schema", classify(e)))?;
            for (_, sql) in UPGRADES {
                tx.batch_execute(sql)
                    .map_err(|e| fail("create the schema", classify(e)))?;
            }
            tx.execute(
                "INSERT INTO sameframe_schema (version) VALUES ($1)",
                &[&LATEST],
            )
            .map_err(|e| fail("create the schema", classify(e)))?;
        }
        tx.commit()
            .map_err(|e| fail("commit the schema", classify(e)))?;
        drop(c);
        Self::open(db)
    }

    /// Bring an older store's schema up to [`LATEST`], under the write lock so two stations
    /// opening it at once upgrade it once.
    fn upgrade(&self) -> Result<(), StoreError> {
        self.with_conn(|c| {
            let fail = |op: &str, e| self.fail(op, e);
            let mut tx = locked(&mut c.client).map_err(|(op, e)| fail(op, e))?;
            let found: i64 = tx
                .query_one(
                    "SELECT COALESCE(MAX(version), 0) FROM sameframe_schema",
                    &[],
                )
                .map_err(|e| fail("read the schema version", classify(e)))?
                .get(0);
            for (version, sql) in UPGRADES.iter().filter(|(v, _)| *v > found) {
                tx.batch_execute(sql)
                    .map_err(|e| fail("upgrade the schema", classify(e)))?;
                tx.execute(
                    "INSERT INTO sameframe_schema (version) VALUES ($1)",
                    &[version],
                )
                .map_err(|e| fail("upgrade the schema", classify(e)))?;
            }
            tx.commit()
                .map_err(|e| fail("commit the schema upgrade", classify(e)))
        })
    }

    /// Run `f` on the connection, reconnecting first if it was lost.
    fn with_conn<T>(&self, f: impl FnOnce(&mut Conn) -> RepoResult<T>) -> RepoResult<T> {
        let mut slot = self.conn.borrow_mut();
        if slot.as_ref().is_none_or(|c| c.client.is_closed()) {
            *slot = Some(Self::connect(&self.db)?);
        }
        let conn = slot
            .as_mut()
            .unwrap_or_else(|| unreachable!("a connection was just made"));
        let r = f(conn);
        if matches!(
            r.as_ref().err().and_then(StoreError::kind),
            Some(FailureKind::Unreachable)
        ) {
            *slot = None;
        }
        r
    }
}

impl Backend for Postgres {
    fn location(&self) -> String {
        self.db.location.clone()
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn read(&self, work: &mut Work<'_>) -> RepoResult<()> {
        self.with_conn(|c| work(&mut Sql::new(c)))
    }

    fn write(&self, work: &mut Work<'_>) -> RepoResult<()> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let done = self.with_conn(|c| {
                c.client
                    .batch_execute("BEGIN")
                    .map_err(|e| self.fail("begin", classify(e)))?;
                let r = c
                    .client
                    .query_one("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
                    .map_err(|e| self.fail("take the store's write lock", classify(e)))
                    .and_then(|_| work(&mut Sql::new(c)));
                let r = match r {
                    Ok(()) => c
                        .client
                        .batch_execute("COMMIT")
                        .map_err(|e| self.fail("commit", classify(e))),
                    Err(e) => Err(e),
                };
                if r.is_err() && !c.client.is_closed() {
                    let _ = c.client.batch_execute("ROLLBACK");
                }
                r
            });
            match done {
                Err(e) if attempt < RETRIES && matches!(e.kind(), Some(FailureKind::Retry)) => {
                    std::thread::sleep(Duration::from_millis(20 * attempt as u64));
                }
                other => return other,
            }
        }
    }

    fn reader(&self) -> RepoResult<Box<dyn Backend>> {
        Ok(Box::new(Postgres {
            conn: RefCell::new(Some(Self::connect(&self.db)?)),
            db: self.db.clone(),
        }))
    }

    fn schema_version(&self) -> RepoResult<i64> {
        self.with_conn(|c| {
            if !schema_in(&mut c.client).map_err(|e| self.fail("read the schema version", e))? {
                return Ok(0);
            }
            let v: Option<i64> = c
                .client
                .query_opt("SELECT MAX(version) FROM sameframe_schema", &[])
                .map_err(|e| self.fail("read the schema version", classify(e)))?
                .and_then(|r| r.get(0));
            Ok(v.unwrap_or(0))
        })
    }

    fn compact(&self) -> RepoResult<()> {
        // Rewrite the table of wrapped keys so a destroyed key's old row version does not stay
        // in its pages until autovacuum gets round to it.
        self.with_conn(|c| {
            c.client
                .batch_execute("VACUUM (FULL) data_key")
                .map_err(|e| self.fail("compact the key table", classify(e)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_become_dollars_outside_quotes() {
        assert_eq!(dollar("SELECT ?1, '?2', ?10"), "SELECT $1, '?2', $10");
        assert_eq!(dollar("a ? b"), "a ? b");
    }

    #[test]
    fn a_password_in_the_address_is_refused_and_never_shown() {
        let e = DbConfig::new("postgres://ana:s3cret@db.clinic:5432/sameframe", None).unwrap_err();
        assert!(!e.contains("s3cret"), "{e}");
        let c = DbConfig::new("postgres://ana@db.clinic:5433/sf", Some("s3cret")).unwrap();
        assert_eq!(c.location(), "PostgreSQL ana@db.clinic:5433/sf");
        assert!(!format!("{c:?}").contains("s3cret"));
    }
}
