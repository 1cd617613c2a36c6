//! `sameframe audit …`

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use super::{Ctx, one_line};
use sameframe::store::audit::{self, LogFilter};

#[derive(Debug, Subcommand)]
pub enum AuditCmd {
    /// Print the log, oldest first.
    Log {
        /// Only entries about this ID or hash.
        #[arg(long, value_name = "ID")]
        subject: Option<String>,
        /// Only actions starting with this prefix (e.g. `consent.`).
        #[arg(long, value_name = "PREFIX")]
        action: Option<String>,
        /// Only the last N entries.
        #[arg(long, value_name = "N")]
        tail: Option<usize>,
    },
    /// Recompute the hash chain; report the first broken entry (non-zero exit).
    Verify {
        /// Also require the chain to end at this hash (a head recorded elsewhere earlier
        /// detects truncation).
        #[arg(long, value_name = "HASH")]
        expect_head: Option<String>,
    },
    /// Everything about a patient's, a consent's or a publication's consent and photos in one
    /// zip an auditor checks offline (`audit pack verify FILE`).
    Pack(PackArgs),
}

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct PackArgs {
    #[command(subcommand)]
    verify: Option<PackSub>,
    /// The patient (clinic reference).
    #[arg(long, group = "about")]
    patient: Option<String>,
    #[arg(long, group = "about")]
    consent: Option<String>,
    #[arg(long, group = "about")]
    publication: Option<String>,
    /// The zip to write.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// Include the photographs, decrypted (the pack then holds clinical images).
    #[arg(long)]
    include_photos: bool,
    /// Replace the file if it exists.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, Subcommand)]
pub enum PackSub {
    /// Check a pack offline, without the store: every file's hash, nothing added or removed,
    /// the audit chain's hashes and links up to its head (non-zero exit on any problem).
    Verify { file: std::path::PathBuf },
}

fn pack(ctx: &Ctx, a: PackArgs) -> Result<ExitCode> {
    use sameframe_interop::pack::{PackScope, verify_pack, write_pack};
    if let Some(PackSub::Verify { file }) = a.verify {
        let c = verify_pack(&file)?;
        ctx.emit(&c, || {
            let mut s = format!(
                "{}: {} — {} files checked, chain of {} entries to head {} ({})",
                one_line(&file.display().to_string()),
                if c.ok { "intact" } else { "NOT INTACT" },
                c.files_checked,
                c.chain_entries,
                c.head_seq,
                c.head_hash
            );
            for p in &c.problems {
                s += &format!("\n  {}", one_line(p));
            }
            s
        })?;
        if !c.ok {
            eprintln!(
                "error: {} is not intact: {}",
                file.display(),
                c.problems.first().map(String::as_str).unwrap_or("")
            );
            return Ok(ExitCode::from(1));
        }
        return Ok(ExitCode::SUCCESS);
    }
    let scope = match (a.patient, a.consent, a.publication) {
        (Some(p), None, None) => PackScope::Patient(p),
        (None, Some(c), None) => PackScope::Consent(c),
        (None, None, Some(p)) => PackScope::Publication(p),
        _ => anyhow::bail!(
            "name what the pack is about: --patient REF, --consent ID or --publication ID"
        ),
    };
    let Some(out) = a.out else {
        anyhow::bail!("--out FILE.zip: where to write the pack");
    };
    let store = ctx.open()?;
    let r = write_pack(&store, &scope, &out, a.include_photos, a.force)?;
    ctx.emit(&r, || {
        format!(
            "wrote {}: {} files, audit chain of {} entries to head {} ({}){}",
            r.out.display(),
            r.files,
            r.chain_entries,
            r.head_seq,
            r.head_hash,
            if r.photos_included {
                "; it holds the photographs, decrypted"
            } else {
                ""
            }
        )
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn run(ctx: &Ctx, cmd: AuditCmd) -> Result<ExitCode> {
    if let AuditCmd::Pack(a) = cmd {
        return pack(ctx, a);
    }
    let store = ctx.open()?;
    match cmd {
        AuditCmd::Pack(a) => pack(ctx, a),
        AuditCmd::Log {
            subject,
            action,
            tail,
        } => {
            let filter = LogFilter {
                subject,
                action_prefix: action,
                tail,
            };
            let entries = store.read(|r| audit::read(r, &filter))?;
            ctx.emit(&entries, || {
                entries
                    .iter()
                    .map(|e| {
                        format!(
                            "{:>5} {} {:<10} {:<22} {} {}",
                            e.seq,
                            e.at,
                            e.actor,
                            e.action,
                            e.subjects,
                            brief(&e.details)
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Verify { expect_head } => {
            let check = store.check_history(expect_head.as_deref())?;
            if let Some(n) = check.entries_after_expected_head.filter(|n| *n > 0) {
                ctx.note(&format!(
                    "note: {n} entries were appended after the expected head"
                ));
            }
            ctx.emit(&check, || history_text(&check))?;
            if check.ok {
                Ok(ExitCode::SUCCESS)
            } else {
                let problems = check.problems();
                eprintln!(
                    "error: the store's history is not whole: {}{}",
                    problems.first().map(String::as_str).unwrap_or("?"),
                    if problems.len() > 1 {
                        format!(" (and {} more)", problems.len() - 1)
                    } else {
                        String::new()
                    }
                );
                Ok(ExitCode::from(1))
            }
        }
    }
}

/// Details as a person reads them: the seal left out, the rows' MACs counted.
fn brief(details: &serde_json::Value) -> serde_json::Value {
    let mut d = details.clone();
    if let Some(m) = d.as_object_mut() {
        m.remove("seal");
        m.remove("state_full");
        if let Some(rows) = m
            .remove("state")
            .and_then(|v| v.as_object().map(|o| o.len()))
        {
            m.insert("rows_recorded".into(), rows.into());
        }
    }
    d
}

fn history_text(c: &sameframe::store::history::HistoryCheck) -> String {
    let chain = &c.chain;
    let mut s = match &chain.first_broken {
        None => format!(
            "audit chain intact: {} entries, head {}{}",
            chain.entries,
            chain.head_hash.as_deref().unwrap_or("-"),
            chain
                .sealed_from
                .map(|n| format!(", sealed from entry {n}"))
                .unwrap_or_default()
        ),
        Some(b) => format!("audit chain BROKEN at entry {}: {}", b.seq, b.reason),
    };
    if c.state.bound {
        s += &format!(
            "\nrows: {} checked against the chain, {} not as it records them",
            c.state.rows_checked,
            c.state.problems.len()
        );
    } else {
        s += "\nrows: not yet bound to the chain (open the store once with its key)";
    }
    s += &format!(
        "\ncertificates: {} checked, {} that the chain does not account for",
        c.certificates_checked,
        c.certificate_problems.len()
    );
    for p in c.problems() {
        s += &format!("\n  {p}");
    }
    s
}
