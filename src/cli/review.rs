//! `sameframe review`, `sameframe pair`, `sameframe publish …`, `sameframe fingerprint …`.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use chrono::NaiveDate;
use clap::{Args, Subcommand};

use super::{Ctx, one_line, parse_date, read_input};
use sameframe::review::checks::Verdict;
use sameframe::review::matching;

#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// Published images, or folders of them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Folder of captions: NAME.txt for image NAME.* (default: a .txt beside each image).
    #[arg(long, value_name = "DIR")]
    caption_dir: Option<PathBuf>,
    /// Write an HTML report for the reviewer.
    #[arg(long, value_name = "OUT.html")]
    report: Option<PathBuf>,
    /// Exit with status 1 when any image's verdict is this bad or worse (for scripts).
    #[arg(long, value_name = "fail|warn")]
    fail_on: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum PublishCmd {
    /// Record where a published image went out, matched to its source captures now.
    Record {
        file: PathBuf,
        /// Where: "clinic website", "instagram", "brochure 2026"…
        #[arg(long)]
        channel: String,
        #[arg(long)]
        url: Option<String>,
        /// Publication date (default today).
        #[arg(long, value_parser = parse_date)]
        date: Option<NaiveDate>,
        /// publication (default) or teaching.
        #[arg(long, default_value = "publication")]
        purpose: String,
        /// Record even when no stored capture matches.
        #[arg(long)]
        force: bool,
    },
    /// List recorded publications.
    List,
}

#[derive(Debug, Subcommand)]
pub enum FingerprintCmd {
    /// Fingerprint captures imported before fingerprints existed (or with an older recipe).
    Backfill,
}

pub fn progress_bar(total_hint: u64) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new(total_hint);
    pb.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos}/{len} images {wide_bar} {eta}")
            .ok()?,
    );
    Some(pb)
}

pub fn review(ctx: &Ctx, a: ReviewArgs) -> Result<ExitCode> {
    let store = ctx.open()?;
    let threshold = match a.fail_on.as_deref() {
        None => None,
        Some("fail") => Some(Verdict::Fail),
        Some("warn") => Some(Verdict::Warn),
        Some(other) => bail!("--fail-on {other:?}: expected fail or warn"),
    };
    let pb = progress_bar(0);
    let tick = |done: usize, total: usize| {
        if let Some(pb) = &pb {
            pb.set_length(total as u64);
            pb.set_position(done as u64);
        }
    };
    let review = store.review(&a.paths, a.caption_dir.as_deref(), &tick)?;
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    if let Some(out) = &a.report {
        store.write_review_html(&review, out)?;
        ctx.note(&format!(
            "report written to {} (it contains patient photographs)",
            out.display()
        ));
    }
    ctx.emit(&review, || {
        let mut s = String::new();
        for i in &review.images {
            s += &format!(
                "{:<5} {}\n",
                format!("{:?}", i.verdict).to_uppercase(),
                one_line(&i.file)
            );
            for src in &i.sources {
                s += &format!(
                    "      source {} (patient {}) panel {:?}\n",
                    src.capture_id,
                    one_line(&src.patient_ref),
                    src.panel
                );
            }
            for f in i
                .findings
                .iter()
                .filter(|f| f.severity != sameframe::review::checks::Severity::Info)
            {
                s += &format!(
                    "      {:?} {}: {}\n",
                    f.severity,
                    f.kind,
                    one_line(&f.message)
                );
            }
        }
        let m = &review.summary;
        s += &format!(
            "{} images: {} pass, {} warn, {} fail; {} without a source; {} unreadable",
            m.images, m.pass, m.warn, m.fail, m.without_source, m.unreadable
        );
        if m.captures_to_backfill > 0 {
            s += &format!(
                "\n{} stored capture(s) have no current fingerprint and may be missed: run `sameframe fingerprint backfill`",
                m.captures_to_backfill
            );
        }
        s
    })?;
    let worst = review
        .images
        .iter()
        .map(|i| i.verdict)
        .max_by_key(|v| match v {
            Verdict::Pass => 0,
            Verdict::Warn => 1,
            Verdict::Fail => 2,
        });
    let rank = |v: Verdict| match v {
        Verdict::Pass => 0,
        Verdict::Warn => 1,
        Verdict::Fail => 2,
    };
    Ok(match (threshold, worst) {
        (Some(t), Some(w)) if rank(w) >= rank(t) => ExitCode::from(1),
        _ => ExitCode::SUCCESS,
    })
}

pub fn pair(ctx: &Ctx, baseline: String, followup: String) -> Result<ExitCode> {
    let store = ctx.open()?;
    let g = store.grade_pair(&baseline, &followup)?;
    ctx.emit(&g, || {
        let mut s = format!(
            "comparability of {} → {}: grade {}\n",
            g.baseline_id, g.followup_id, g.grade
        );
        for a in &g.aspects {
            s += &format!(
                "  {:<12} {:<6} {}\n",
                a.aspect,
                format!("{:?}", a.level).to_lowercase(),
                a.message
            );
        }
        s
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn publish(ctx: &Ctx, cmd: PublishCmd) -> Result<ExitCode> {
    let store = ctx.open()?;
    match cmd {
        PublishCmd::Record {
            file,
            channel,
            url,
            date,
            purpose,
            force,
        } => {
            if purpose != "publication" && purpose != "teaching" {
                bail!("--purpose {purpose:?}: expected publication or teaching");
            }
            let bytes = read_input(&file, store.calibration())?;
            let limits = store.calibration().limits()?;
            let published = sameframe::review::report::decode_published(
                &bytes,
                &file.display().to_string(),
                &limits,
            )?;
            let index = store.review_index()?;
            let q = matching::prepare(&published.image);
            let sources = store.find_sources(&index, &q, &published.image)?;
            if sources.is_empty() && !force {
                bail!(
                    "{}: no stored capture matches this image; nothing recorded (use --force to record it anyway)",
                    file.display()
                );
            }
            let date = date.unwrap_or_else(sameframe::timefmt::today);
            let sha = sameframe::ids::sha256_hex(&bytes);
            let id = store.record_published(
                &sha,
                channel.trim(),
                url.as_deref(),
                &sameframe::timefmt::fmt_date(date),
                &purpose,
                &sources,
            )?;
            let scope = if purpose == "teaching" {
                sameframe::records::Scope::Teaching
            } else {
                sameframe::records::Scope::Publication
            };
            let mut warnings = Vec::new();
            for s in &sources {
                let cap = store.capture(&s.capture_id)?;
                if let Err(r) = store.consent(&cap.consent_id)?.permits(scope, date) {
                    warnings.push(format!(
                        "capture {}: consent {} does not allow {purpose} on {}: {r}",
                        cap.id,
                        cap.consent_id,
                        sameframe::timefmt::fmt_date(date)
                    ));
                }
            }
            for w in &warnings {
                ctx.note(&format!("warning: {w}"));
            }
            let out = serde_json::json!({
                "publication_id": id, "file_sha256": sha, "channel": channel, "url": url, "date": sameframe::timefmt::fmt_date(date), "purpose": purpose,
                "sources": sources.iter().map(|s| serde_json::json!({"capture_id": s.capture_id, "panel": s.panel, "distance": s.distance()})).collect::<Vec<_>>(),
                "warnings": warnings,
            });
            ctx.emit(&out, || {
                format!(
                    "recorded publication {id} on {channel} with {} source(s)",
                    sources.len()
                )
            })?;
        }
        PublishCmd::List => {
            let rows: Vec<serde_json::Value> = store
                .publications()?
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "publication_id": p.id, "channel": p.channel, "url": p.url,
                        "date": p.date, "purpose": p.purpose, "file_sha256": p.file_sha256,
                        "capture_ids": p.capture_ids(),
                    })
                })
                .collect();
            ctx.emit(&rows, || {
                rows.iter()
                    .map(|r| {
                        format!(
                            "{} {} {} {}",
                            r["date"].as_str().unwrap_or(""),
                            r["channel"].as_str().unwrap_or(""),
                            r["url"].as_str().unwrap_or("-"),
                            r["publication_id"].as_str().unwrap_or("")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn fingerprint(ctx: &Ctx, cmd: FingerprintCmd) -> Result<ExitCode> {
    let store = ctx.open()?;
    match cmd {
        FingerprintCmd::Backfill => {
            let pb = progress_bar(0);
            let r = store.backfill_fingerprints(&|done, total| {
                if let Some(pb) = &pb {
                    pb.set_length(total as u64);
                    pb.set_position(done as u64);
                }
            })?;
            if let Some(pb) = &pb {
                pb.finish_and_clear();
            }
            ctx.emit(&r, || {
                format!(
                    "fingerprinted {} capture(s); {} already had one; {} failed",
                    r.computed,
                    r.already,
                    r.failed.len()
                )
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
