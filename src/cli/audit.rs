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
                            e.seq, e.at, e.actor, e.action, e.subjects, e.details
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Verify { expect_head } => {
            let mut check = store.read(|r| audit::verify(r, store.store_id()))?;
            if check.ok
                && let Some(want) = expect_head
            {
                let entries = store.read(|r| audit::read(r, &LogFilter::default()))?;
                match entries.iter().find(|e| e.hash == want) {
                    None => {
                        check.ok = false;
                        check.first_broken = Some(audit::BrokenEntry {
                            seq: check.entries + 1,
                            reason: format!(
                                "the expected head {want} is not in the chain (entries were removed)"
                            ),
                        });
                    }
                    Some(e) => {
                        if e.seq != check.entries {
                            ctx.note(&format!(
                                "note: {} entries were appended after the expected head (entry {})",
                                check.entries - e.seq,
                                e.seq
                            ));
                        }
                    }
                }
            }
            ctx.emit(&check, || match &check.first_broken {
                None => format!(
                    "audit chain intact: {} entries, head {}",
                    check.entries,
                    check.head_hash.as_deref().unwrap_or("-")
                ),
                Some(b) => format!("audit chain BROKEN at entry {}: {}", b.seq, b.reason),
            })?;
            if check.ok {
                Ok(ExitCode::SUCCESS)
            } else {
                if let Some(b) = &check.first_broken {
                    eprintln!("error: audit chain broken at entry {}: {}", b.seq, b.reason);
                }
                Ok(ExitCode::from(1))
            }
        }
    }
}
