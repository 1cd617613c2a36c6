//! Store-level verbs: `init`, `status`, `verify`, `gc`, `config`, `encrypt`.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use serde::Serialize;
use serde_json::json;
use zeroize::Zeroizing;

use super::Ctx;
use sameframe::store::crypto::KdfParams;
use sameframe::store::{Encryption, SETTINGS, Store, db};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Store photos unencrypted (demos only; `sameframe encrypt` can add encryption later).
    #[arg(long, conflicts_with = "passphrase_file")]
    no_encryption: bool,
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
    let enc = choose_encryption(ctx, a.no_encryption, kdf)?;
    let store = Store::init(&ctx.data_dir, enc, ctx.open_options()?)?;
    let st = store.encryption_status();
    if st.mode == "none" {
        ctx.note("warning: this store keeps photos unencrypted; run `sameframe encrypt` before real patient data");
    }
    let out = json!({
        "data_dir": store.root(),
        "store_id": store.store_id(),
        "encryption": st,
        "schema_version": db::latest(),
    });
    ctx.emit(&out, || {
        format!(
            "created store {} at {} (encryption: {}{})",
            store.store_id(),
            store.root().display(),
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
    schema_version: i64,
    encryption: sameframe::store::EncryptionStatus,
    counts: serde_json::Value,
    settings: serde_json::Value,
}

pub fn status(ctx: &Ctx) -> Result<ExitCode> {
    let store = ctx.open()?;
    let count = |t: &str| -> Result<i64> {
        Ok(store
            .conn()
            .query_row(&format!("SELECT COUNT(*) FROM {t}"), [], |r| r.get(0))?)
    };
    let mut settings = serde_json::Map::new();
    for (k, _, _) in SETTINGS {
        settings.insert((*k).to_string(), json!(store.setting(k)?));
    }
    let st = Status {
        data_dir: store.root().to_path_buf(),
        store_id: store.store_id().to_string(),
        schema_version: db::version(store.conn())?,
        encryption: store.encryption_status(),
        counts: json!({
            "patients": count("patient")?,
            "consents": count("consent")?,
            "visits": count("visit")?,
            "captures": count("capture")?,
            "blobs": count("blob")?,
            "audit_entries": count("audit")?,
        }),
        settings: serde_json::Value::Object(settings),
    };
    ctx.emit(&st, || {
        format!(
            "store {} at {}\n  schema {}  encryption {}\n  {}\n  {}",
            st.store_id,
            st.data_dir.display(),
            st.schema_version,
            st.encryption.mode,
            st.counts,
            st.settings
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn verify(ctx: &Ctx) -> Result<ExitCode> {
    let store = ctx.open()?;
    let r = store.verify()?;
    ctx.emit(&r, || {
        let mut s = format!("checked {} blobs: {} ok", r.checked, r.ok);
        for c in &r.corrupt {
            s += &format!("\n  CORRUPT {} ({}): {}", c.sha256, c.kind, c.why);
        }
        for m in &r.missing {
            s += &format!("\n  MISSING {} ({})", m.sha256, m.kind);
        }
        for o in &r.orphans {
            s += &format!(
                "\n  orphan {} ({} bytes; `sameframe gc` removes it)",
                o.path.display(),
                o.bytes
            );
        }
        for u in &r.unsealed {
            s += &format!("\n  unsealed {u} (run `sameframe encrypt` to finish the migration)");
        }
        s
    })?;
    if r.is_clean() {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: store at {} is not intact: {} corrupt, {} missing, {} orphan, {} unsealed",
            store.root().display(),
            r.corrupt.len(),
            r.missing.len(),
            r.orphans.len(),
            r.unsealed.len()
        );
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
