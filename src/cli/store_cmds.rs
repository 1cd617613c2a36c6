//! Store-level verbs: `init`, `status`, `verify`, `gc`, `config`, `encrypt`, `migrate`.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::json;
use zeroize::Zeroizing;

use super::Ctx;
use sameframe::backends::{SharedSpec, Target};
use sameframe::store::crypto::KdfParams;
use sameframe::store::{Encryption, SETTINGS};

/// Where a shared store is. Credentials never go here: the database password comes from
/// SAMEFRAME_DATABASE_PASSWORD (or PGPASSWORD), the bucket's keys from AWS_ACCESS_KEY_ID and
/// AWS_SECRET_ACCESS_KEY, or both from --credentials-file.
#[derive(Debug, Args, Default)]
pub struct SharedArgs {
    /// PostgreSQL for rows and the audit chain: postgres://USER@HOST:PORT/DATABASE.
    #[arg(long, value_name = "URL", requires = "blob_url")]
    database_url: Option<String>,
    /// S3-compatible bucket (and prefix) for sealed blobs: s3://BUCKET/PREFIX.
    #[arg(long, value_name = "URL", requires = "database_url")]
    blob_url: Option<String>,
    /// The S3 server, for MinIO, Ceph, Garage or a test server (default: AWS).
    #[arg(long, value_name = "URL")]
    s3_endpoint: Option<String>,
    /// The bucket's region (default: AWS_REGION, else us-east-1).
    #[arg(long, value_name = "REGION")]
    s3_region: Option<String>,
    /// A file (mode 600) with database_password, s3_access_key_id, s3_secret_access_key.
    #[arg(long, value_name = "FILE")]
    credentials_file: Option<std::path::PathBuf>,
    /// The CA certificate (PEM) of the database server's TLS certificate, when the system
    /// does not already trust it. (Add `?sslmode=require` to the address to refuse a server
    /// without TLS; `sslmode=disable` for none.)
    #[arg(long, value_name = "FILE")]
    database_ca: Option<std::path::PathBuf>,
}

impl SharedArgs {
    /// The backend these flags choose (`None` when none was given).
    fn target(&self) -> Option<Target> {
        let (Some(db), Some(blob)) = (&self.database_url, &self.blob_url) else {
            return None;
        };
        Some(Target::Shared(SharedSpec {
            database_url: db.clone(),
            blob_url: blob.clone(),
            s3_endpoint: self.s3_endpoint.clone(),
            s3_region: self.s3_region.clone(),
            credentials_file: self
                .credentials_file
                .as_ref()
                .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
            database_ca_file: self
                .database_ca
                .as_ref()
                .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
        }))
    }
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Store photos unencrypted (demos only; `sameframe encrypt` can add encryption later).
    #[arg(long, conflicts_with = "passphrase_file")]
    no_encryption: bool,
    #[command(flatten)]
    shared: SharedArgs,
    /// Connect this station to the shared store already at --database-url (the key file or
    /// passphrase proves it may).
    #[arg(long, requires = "database_url")]
    join: bool,
    /// Argon2id memory for the passphrase, in MiB (at least 19).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(19..=4096))]
    kdf_memory_mib: u32,
    /// Argon2id passes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=20))]
    kdf_passes: u32,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Only remove orphans older than this many seconds (an import in progress writes its
    /// blob a moment before its row).
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    min_age: u64,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Objects no row names that are younger than this many seconds are reported as writes in
    /// flight, not as orphans (an import writes its blob a moment before its row).
    #[arg(long, default_value_t = 120, value_name = "SECONDS")]
    in_flight: u64,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The data directory of the copy: a new (or empty) folder, or the folder an interrupted
    /// migrate left (run the same command again to resume).
    #[arg(long, value_name = "DIR")]
    to: std::path::PathBuf,
    /// Copy into a shared store (else the copy is an embedded store in --to).
    #[command(flatten)]
    shared: SharedArgs,
}

#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// Argon2id memory for a passphrase, in MiB.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(19..=4096))]
    kdf_memory_mib: u32,
    /// Argon2id passes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=20))]
    kdf_passes: u32,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCmd {
    /// Print every setting with its value and meaning.
    Show,
    /// Change a setting (audited).
    Set { key: String, value: String },
}

/// Decide how a new (or newly encrypted) store is protected from the global flags.
fn choose_encryption(ctx: &Ctx, no_encryption: bool, kdf: KdfParams) -> Result<Encryption> {
    let pass = ctx.given_passphrase()?;
    match (&ctx.key_file, pass, no_encryption) {
        (Some(_), Some(_), _) => bail!("choose a key file or a passphrase, not both"),
        (Some(_), _, true) | (_, Some(_), true) => {
            bail!("--no-encryption cannot be combined with a key file or passphrase")
        }
        (_, _, true) => Ok(Encryption::None),
        (Some(path), None, false) => Ok(Encryption::KeyFile { path: path.clone() }),
        (None, Some(p), false) => Ok(Encryption::Passphrase { passphrase: p, kdf }),
        (None, None, false) => {
            if !std::io::stdin().is_terminal() {
                bail!(
                    "choose how to protect the store: --key-file FILE, a passphrase (SAMEFRAME_PASSPHRASE, --passphrase-file, or run in a terminal), or --no-encryption"
                );
            }
            let a = Zeroizing::new(rpassword::prompt_password("new store passphrase: ")?);
            let b = Zeroizing::new(rpassword::prompt_password("repeat the passphrase: ")?);
            if a != b {
                bail!("the two passphrases differ; nothing was created");
            }
            Ok(Encryption::Passphrase { passphrase: a, kdf })
        }
    }
}

pub fn init(ctx: &Ctx, a: InitArgs) -> Result<ExitCode> {
    let kdf = KdfParams {
        m_kib: a.kdf_memory_mib * 1024,
        t: a.kdf_passes,
        p: 1,
    };
    let target = a.shared.target().unwrap_or(Target::Embedded);
    let enc = if a.join {
        Encryption::None
    } else {
        choose_encryption(ctx, a.no_encryption, kdf)?
    };
    let opts = ctx.open_options()?;
    let opts = sameframe::store::OpenOptions {
        keys: match opts.keys {
            sameframe::store::KeySource::None => enc.key_source(),
            k => k,
        },
        ..opts
    };
    let store = sameframe::backends::init(&ctx.data_dir, &target, a.join, enc, opts)?;
    let st = store.encryption_status();
    if st.mode == "none" {
        ctx.note("warning: this store keeps photos unencrypted; run `sameframe encrypt` before real patient data");
    }
    let out = json!({
        "data_dir": store.root(),
        "store_id": store.store_id(),
        "station": store.station(),
        "rows": store.location(),
        "blobs": store.blob_location(),
        "shared": store.is_shared(),
        "joined": a.join,
        "encryption": st,
        "schema_version": store.schema_version()?,
    });
    ctx.emit(&out, || {
        format!(
            "{} store {} at {} (encryption: {}{})",
            if a.join { "joined" } else { "created" },
            store.store_id(),
            if store.is_shared() {
                format!("{} and {}", store.location(), store.blob_location())
            } else {
                store.root().display().to_string()
            },
            st.mode,
            st.key_file
                .as_ref()
                .map(|k| format!(", key file {k} — keep a copy somewhere safe"))
                .unwrap_or_default()
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct Status {
    data_dir: std::path::PathBuf,
    store_id: String,
    station: String,
    shared: bool,
    rows: String,
    blobs: String,
    schema_version: i64,
    encryption: sameframe::store::EncryptionStatus,
    counts: sameframe::store::repo::Counts,
    settings: serde_json::Value,
    unfinished_withdrawals: Vec<String>,
    /// Take-downs still open, and those of them past their due day.
    takedowns_open: usize,
    takedowns_overdue: Vec<String>,
    /// Captures whose preview and fingerprint are still to be made (deferred at import).
    derived_pending: usize,
}

pub fn status(ctx: &Ctx) -> Result<ExitCode> {
    let store = ctx.open()?;
    let mut settings = serde_json::Map::new();
    for (k, _, _) in SETTINGS {
        settings.insert((*k).to_string(), json!(store.setting(k)?));
    }
    let unfinished = store.unfinished_withdrawals()?;
    let today = sameframe::timefmt::today();
    let open = store.takedown_list(true)?;
    let overdue: Vec<String> = open
        .iter()
        .filter(|p| p.takedown.as_ref().is_some_and(|t| t.is_overdue(today)))
        .map(|p| p.id.clone())
        .collect();
    let st = Status {
        data_dir: store.root().to_path_buf(),
        store_id: store.store_id().to_string(),
        station: store.station().to_string(),
        shared: store.is_shared(),
        rows: store.location(),
        blobs: store.blob_location(),
        schema_version: store.schema_version()?,
        encryption: store.encryption_status(),
        counts: store.read(|r| r.counts())?,
        settings: serde_json::Value::Object(settings),
        unfinished_withdrawals: unfinished,
        takedowns_open: open.len(),
        takedowns_overdue: overdue,
        derived_pending: store.fingerprints_to_backfill()?,
    };
    ctx.emit(&st, || {
        let mut s = format!(
            "store {} ({})\n  rows   {}\n  blobs  {}\n  schema {}  encryption {}  station {}\n  {} patients, {} consents, {} visits, {} captures, {} blobs, {} audit entries\n  {}",
            st.store_id,
            if st.shared { "shared" } else { "embedded" },
            st.rows,
            st.blobs,
            st.schema_version,
            st.encryption.mode,
            st.station,
            st.counts.patients,
            st.counts.consents,
            st.counts.visits,
            st.counts.captures,
            st.counts.blobs,
            st.counts.audit_entries,
            st.settings
        );
        for u in &st.unfinished_withdrawals {
            s += &format!("\n  UNFINISHED WITHDRAWAL {u}: run `sameframe consent resume` to finish it");
        }
        if st.derived_pending > 0 {
            s += &format!(
                "\n  {} capture(s) wait for their preview and fingerprint (`sameframe fingerprint backfill`; a review makes them first)",
                st.derived_pending
            );
        }
        if st.takedowns_open > 0 {
            s += &format!(
                "\n  TAKE-DOWNS: {} open, {} overdue{} (`sameframe takedown list --open`)",
                st.takedowns_open,
                st.takedowns_overdue.len(),
                if st.takedowns_overdue.is_empty() {
                    String::new()
                } else {
                    format!(": {}", st.takedowns_overdue.join(", "))
                }
            );
        }
        s
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The human text of a verify report.
fn verify_text(r: &sameframe::records::integrity::VerifyReport) -> String {
    let mut s = format!(
        "checked {} blobs: {} ok; {} records: {} damaged",
        r.checked,
        r.ok,
        r.records_checked,
        r.records_damaged.len()
    );
    for c in &r.corrupt {
        s += &format!("\n  CORRUPT {} ({}): {}", c.sha256, c.kind, c.why);
    }
    for m in &r.missing {
        s += &format!("\n  MISSING {} ({})", m.sha256, m.kind);
    }
    for d in &r.records_damaged {
        s += &format!("\n  DAMAGED {}: {}", d.record, d.why);
    }
    if r.derived_pending > 0 {
        s += &format!(
            "\n  {} capture(s) wait for their preview and fingerprint (`sameframe fingerprint backfill`)",
            r.derived_pending
        );
    }
    for o in &r.orphans {
        s += &format!(
            "\n  orphan {} ({} bytes; `sameframe gc` removes it)",
            o.location, o.bytes
        );
    }
    for o in &r.in_flight {
        s += &format!(
            "\n  in flight {} ({} bytes, {} s old: probably an import under way)",
            o.location,
            o.bytes,
            o.age_seconds.unwrap_or(0)
        );
    }
    for u in &r.unsealed {
        s += &format!("\n  unsealed {u} (run `sameframe encrypt` to finish the migration)");
    }
    for w in &r.unfinished_withdrawals {
        s += &format!("\n  UNFINISHED WITHDRAWAL {w}: run `sameframe consent resume` to finish it");
    }
    for h in &r.history_problems {
        s += &format!("\n  HISTORY {h}");
    }
    s
}

pub fn verify(ctx: &Ctx, a: VerifyArgs) -> Result<ExitCode> {
    let store = ctx.open()?;
    let r = store.verify(std::time::Duration::from_secs(a.in_flight))?;
    ctx.emit(&r, || verify_text(&r))?;
    if r.is_clean() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: store {} is not intact: {} corrupt, {} missing, {} orphan, {} unsealed, {} damaged record(s), {} unfinished withdrawal(s), {} history problem(s)",
            store.location(),
            r.corrupt.len(),
            r.missing.len(),
            r.orphans.len(),
            r.unsealed.len(),
            r.records_damaged.len(),
            r.unfinished_withdrawals.len(),
            r.history_problems.len()
        );
        Ok(ExitCode::from(1))
    }
}

pub fn migrate(ctx: &Ctx, a: MigrateArgs) -> Result<ExitCode> {
    let from = ctx.open()?;
    let target = a.shared.target();
    let pb = super::review::progress_bar(0);
    let progress = |what: &str, done: usize, total: usize| {
        if let Some(pb) = &pb {
            pb.set_message(what.to_string());
            pb.set_length(total.max(done) as u64);
            pb.set_position(done as u64);
        }
    };
    let (to, report) = sameframe::backends::migrate(&from, &a.to, target.as_ref(), &progress)?;
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    // The copy must stand on its own: every blob and record, and the audit chain.
    let verified = to.verify(std::time::Duration::ZERO)?;
    let chain = to.check_history(None)?;
    let ok = verified.is_clean() && chain.ok;
    let out = json!({
        "report": report,
        "data_dir": a.to,
        "verify": verified,
        "audit": chain,
        "ok": ok,
    });
    ctx.emit(&out, || {
        format!(
            "{} store {} into {}\n  rows {} in {} tables, blobs {} copied + {} already there (each checked), {} previews, {} certificates\n  verify: {}\n  audit chain: {} entries, {}\n  next: point stations at it with `--data-dir {}` (or copy its sameframe.toml)",
            if report.resumed { "finished copying" } else { "copied" },
            from.store_id(),
            report.target,
            report.rows.values().sum::<usize>(),
            report.rows.len(),
            report.blobs_copied,
            report.blobs_present,
            report.previews,
            report.certificates,
            if verified.is_clean() { "intact".to_string() } else { verify_text(&verified) },
            chain.chain.entries,
            if chain.ok { "intact" } else { "BROKEN" },
            a.to.display()
        )
    })?;
    if ok {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("error: the copy in {} does not verify", a.to.display());
        Ok(ExitCode::from(1))
    }
}

pub fn gc(ctx: &Ctx, a: GcArgs) -> Result<ExitCode> {
    let store = ctx.open()?;
    let r = store.gc(std::time::Duration::from_secs(a.min_age))?;
    ctx.emit(&r, || {
        format!(
            "removed {} orphan file(s){}",
            r.removed.len(),
            if r.kept_recent.is_empty() {
                String::new()
            } else {
                format!(
                    "; kept {} younger than {} s (an import may be running)",
                    r.kept_recent.len(),
                    a.min_age
                )
            }
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn config(ctx: &Ctx, cmd: ConfigCmd) -> Result<ExitCode> {
    let store = ctx.open()?;
    match cmd {
        ConfigCmd::Show => {
            let mut items = Vec::new();
            for (k, d, meaning) in SETTINGS {
                items.push(json!({ "key": k, "value": store.setting(k)?, "default": d, "meaning": meaning }));
            }
            ctx.emit(&items, || {
                SETTINGS
                    .iter()
                    .map(|(k, _, m)| {
                        format!("{k} = {}\n    {m}", store.setting(k).unwrap_or_default())
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        ConfigCmd::Set { key, value } => {
            store.set_setting(&key, &value)?;
            let out = json!({ "key": key, "value": value });
            ctx.emit(&out, || format!("{key} = {value}"))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn encrypt(ctx: &Ctx, a: EncryptArgs) -> Result<ExitCode> {
    let mut store = ctx.open()?;
    let kdf = KdfParams {
        m_kib: a.kdf_memory_mib * 1024,
        t: a.kdf_passes,
        p: 1,
    };
    let enc = if store.is_encrypted() {
        Encryption::None // resuming: the keys come from the usual flags
    } else {
        choose_encryption(ctx, false, kdf)?
    };
    let r = store.encrypt_existing(enc)?;
    ctx.emit(&r, || {
        format!(
            "store encrypted ({}): {} blob(s) sealed now, {} already sealed",
            r.mode, r.sealed, r.already_sealed
        )
    })?;
    Ok(ExitCode::SUCCESS)
}
