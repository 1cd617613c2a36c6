//! `sameframe audit …`

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use super::Ctx;
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
}

pub fn run(ctx: &Ctx, cmd: AuditCmd) -> Result<ExitCode> {
    let store = ctx.open()?;
    match cmd {
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
