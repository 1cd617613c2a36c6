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
    /// The images are not the clinic's own publications (a competitor's page, a web search):
    /// an image with no source is a warning, not a failure for want of consent evidence.
    #[arg(long)]
    third_party: bool,
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
        /// Mark the image as not a patient photo (stock, illustration): a review then does
        /// not ask for its consent evidence. Refused when it shows a stored capture.
        #[arg(long)]
        not_patient: bool,
        /// A note kept with the record (where a stock image was licensed from…).
        #[arg(long)]
        note: Option<String>,
    },
    /// List recorded publications.
    List,
    /// Make a publication copy: consent-gated, graded, de-identified as asked, labelled, with
    /// the variability note and no metadata, signed with a provenance manifest, and recorded.
    Prepare(super::publish::PrepareArgs),
    /// The clinic's provenance signing identity.
    #[command(subcommand)]
    Keys(super::publish::KeysCmd),
}

#[derive(Debug, Subcommand)]
pub enum FingerprintCmd {
    /// Fingerprint captures imported before fingerprints existed (or with an older recipe).
    Backfill,
}

pub fn progress_bar(total_hint: u64) -> Option<indicatif::ProgressBar> {
    progress_bar_of(total_hint, "images")
}

/// A progress bar on stderr counting `what`, when stderr is a terminal.
pub fn progress_bar_of(total_hint: u64, what: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let pb = indicatif::ProgressBar::new(total_hint);
    pb.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{spinner}} {{pos}}/{{len}} {what} {{wide_bar}} {{eta}} {{msg}}"
        ))
        .ok()?,
    );
    Some(pb)
}

/// The machine's cores (for work spread over threads).
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
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
    let reader = sameframe_interop::provenance::ClinicReader::new(store.signing_identity()?);
    let opts = sameframe::review::checks::ReviewOptions {
        third_party: a.third_party,
        provenance: Some(&reader),
    };
    let review = store.review(&a.paths, a.caption_dir.as_deref(), &opts, &tick)?;
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
        for i in sameframe::review::report::worst_first(&review.images) {
            s += &format!(
                "{:<5} {}\n      -> {}\n",
                format!("{:?}", i.verdict).to_uppercase(),
                one_line(&i.file),
                one_line(&i.action)
            );
            for src in &i.sources {
                s += &format!(
                    "      {} panel: capture {}{} (patient {}, taken {})\n",
                    src.position,
                    src.capture_id,
                    if src.could_also_be.is_empty() {
                        String::new()
                    } else {
                        format!(", or one of {}: cannot tell", src.could_also_be.join(", "))
                    },
                    one_line(&src.patient_ref),
                    src.captured_at.get(..10).unwrap_or(&src.captured_at)
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
        if m.derived_before_review > 0 {
            s += &format!(
                "\n{} capture(s) imported without their preview and fingerprint were fingerprinted first",
                m.derived_before_review
            );
        }
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
    let cmd = match cmd {
        PublishCmd::Prepare(a) => return super::publish::prepare(ctx, a),
        PublishCmd::Keys(k) => return super::publish::keys(ctx, k),
        other => other,
    };
    let store = ctx.open()?;
    match cmd {
        PublishCmd::Record {
            file,
            channel,
            url,
            date,
            purpose,
            force,
            not_patient,
            note,
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
            if sources.is_empty() && !force && !not_patient {
                bail!(
                    "{}: no stored capture matches this image; nothing recorded (use --force to record it anyway)",
                    file.display()
                );
            }
            let date = date.unwrap_or_else(sameframe::timefmt::today);
            let sha = sameframe::ids::sha256_hex(&bytes);
            let date_text = sameframe::timefmt::fmt_date(date);
            let file_name = file.file_name().map(|n| n.to_string_lossy().to_string());
            let id = store.record_published(
                sameframe::records::publication::NewPublication {
                    id: None,
                    prepared: None,
                    file_sha256: &sha,
                    channel: channel.trim(),
                    url: url.as_deref(),
                    date: &date_text,
                    purpose: &purpose,
                    sources: Vec::new(),
                    file_name: file_name.as_deref(),
                    not_patient,
                    note: note.as_deref(),
                },
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
        // Handled above, before the store is opened.
        PublishCmd::Prepare(_) | PublishCmd::Keys(_) => {}
        PublishCmd::List => {
            let rows: Vec<serde_json::Value> = store
                .publications()?
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "publication_id": p.id, "channel": p.channel, "url": p.url,
                        "date": p.date, "purpose": p.purpose, "file_sha256": p.file_sha256,
                        "file_name": p.file_name, "not_patient": p.not_patient, "note": p.note,
                        "capture_ids": p.capture_ids(), "takedown": p.takedown, "prepared": p.prepared,
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
            let r = store.backfill_fingerprints(cores(), &|done, total| {
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

#[derive(Debug, Subcommand)]
pub enum TakedownCmd {
    /// Take-downs that withdrawals asked for: channel, address, file, due date, status.
    List {
        /// Open ones only.
        #[arg(long)]
        open: bool,
    },
    /// Close a take-down with its evidence, audited.
    Done {
        /// The take-down's ID (its publication's ID, as `takedown list` shows).
        id: String,
        /// A file that shows it is gone (a screenshot, the platform's confirmation): its name
        /// and SHA-256 are kept, the file stays with the clinic.
        #[arg(long, value_name = "FILE", required_unless_present = "note")]
        evidence: Option<PathBuf>,
        /// What was done, by whom, when.
        #[arg(long)]
        note: Option<String>,
    },
}

/// One take-down as `takedown list` shows it.
fn takedown_json(p: &sameframe::records::publication::Publication) -> serde_json::Value {
    let today = sameframe::timefmt::today();
    let t = p.takedown.as_ref();
    serde_json::json!({
        "takedown_id": p.id, "channel": p.channel, "url": p.url, "file_name": p.file_name,
        "file_sha256": p.file_sha256, "published": p.date, "purpose": p.purpose,
        "consent_id": t.map(|t| &t.consent_id), "requested_at": t.map(|t| &t.requested_at),
        "due": t.map(|t| &t.due), "status": t.map(|t| &t.status),
        "overdue": t.is_some_and(|t| t.is_overdue(today)),
        "print": sameframe::records::publication::is_print_channel(&p.channel),
        "instruction": sameframe::records::publication::takedown_instruction(p),
        "done_at": t.and_then(|t| t.done_at.as_ref()), "done_by": t.and_then(|t| t.done_by.as_ref()),
        "evidence_name": t.and_then(|t| t.evidence_name.as_ref()),
        "evidence_sha256": t.and_then(|t| t.evidence_sha256.as_ref()),
        "note": t.and_then(|t| t.note.as_ref()),
    })
}

pub fn takedown(ctx: &Ctx, cmd: TakedownCmd) -> Result<ExitCode> {
    let store = ctx.open()?;
    match cmd {
        TakedownCmd::List { open } => {
            let rows: Vec<serde_json::Value> = store
                .takedown_list(open)?
                .iter()
                .map(takedown_json)
                .collect();
            ctx.emit(&rows, || {
                if rows.is_empty() {
                    return if open {
                        "no open take-downs"
                    } else {
                        "no take-downs"
                    }
                    .to_string();
                }
                rows.iter()
                    .map(|r| {
                        let s = |k: &str| one_line(r[k].as_str().unwrap_or("-"));
                        let status = if r["overdue"] == true {
                            "OVERDUE".to_string()
                        } else {
                            s("status").to_uppercase()
                        };
                        format!(
                            "{}  {status}  due {}  {}  {}  file {} ({})\n    {}",
                            s("takedown_id"),
                            s("due"),
                            s("channel"),
                            s("url"),
                            s("file_name"),
                            s("file_sha256"),
                            if r["status"] == "done" {
                                format!(
                                    "done {} by {}: {}",
                                    s("done_at"),
                                    s("done_by"),
                                    if r["evidence_sha256"].is_string() {
                                        format!(
                                            "evidence {} ({})",
                                            s("evidence_name"),
                                            s("evidence_sha256")
                                        )
                                    } else {
                                        s("note")
                                    }
                                )
                            } else {
                                s("instruction")
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        TakedownCmd::Done { id, evidence, note } => {
            let ev = match &evidence {
                Some(f) => {
                    let bytes = read_input(f, store.calibration())?;
                    let name = f.file_name().map_or_else(
                        || f.display().to_string(),
                        |n| n.to_string_lossy().to_string(),
                    );
                    Some((name, sameframe::ids::sha256_hex(&bytes)))
                }
                None => None,
            };
            let p = store.takedown_done(
                &id,
                ev.as_ref().map(|(n, h)| (n.as_str(), h.as_str())),
                note.as_deref(),
            )?;
            let out = takedown_json(&p);
            ctx.emit(&out, || {
                format!(
                    "take-down {} on {} closed{}",
                    p.id,
                    one_line(&p.channel),
                    ev.as_ref()
                        .map(|(n, h)| format!(" with evidence {} ({h})", one_line(n)))
                        .unwrap_or_default()
                )
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
