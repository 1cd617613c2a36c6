//! `sameframe capture …`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;

use super::{Ctx, one_line, read_input};
use sameframe::records::capture::{ImportOutcome, ImportRequest};
use sameframe::records::confounders::ConfounderInput;
use sameframe::records::{Area, Capture, Scope, View};

#[derive(Debug, Subcommand)]
pub enum CaptureCmd {
    /// Import photos (JPEG, PNG or TIFF) as immutable captures. With several files each is
    /// checked and reported on its own (one failing file never blocks the others; the exit
    /// status is non-zero if any failed), in the order given, the work spread over the cores.
    Import {
        /// The image files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        #[arg(long = "patient", value_name = "REF")]
        patient: String,
        /// The consent it is taken under (needs an active clinical scope).
        #[arg(long = "consent", value_name = "ID")]
        consent: String,
        /// Treatment area: face, neck, scalp, hands, decollete, body.
        #[arg(long)]
        area: Area,
        /// View: frontal, oblique_left_45, oblique_right_45, lateral_left_90, lateral_right_90,
        /// scalp_vertex, scalp_frontal, scalp_crown, other.
        #[arg(long)]
        view: View,
        /// The visit it belongs to.
        #[arg(long = "visit", value_name = "ID")]
        visit: Option<String>,
        /// The baseline capture it follows (default: the series' baseline, or none: it becomes
        /// the baseline).
        #[arg(long = "baseline", value_name = "CAPTURE_ID")]
        baseline: Option<String>,
        /// Start a new baseline for this area and view (a new course of treatment).
        #[arg(long, conflicts_with = "baseline")]
        new_baseline: bool,
        /// A confounder from the checklist, with optional text: KEY or KEY=TEXT (repeatable).
        #[arg(long = "confounder", value_name = "KEY[=TEXT]")]
        confounders: Vec<ConfounderInput>,
        /// Free-text note.
        #[arg(long)]
        note: Option<String>,
        /// When the photo was taken (YYYY-MM-DDTHH:MM:SS[±HH:MM]); default EXIF, then file time.
        #[arg(long, value_name = "TIME")]
        captured_at: Option<String>,
        /// Make the preview, thumbnail and fingerprint now. By default they are left to
        /// `sameframe fingerprint backfill` or the next review (both count what is pending),
        /// so an import costs little more than a copy of the file.
        #[arg(long)]
        derive_now: bool,
    },
    /// Show a capture with EXIF, confounders and station measurements.
    Show {
        #[arg(value_name = "ID")]
        id: String,
    },
    /// List captures.
    List {
        #[arg(long = "patient", value_name = "REF")]
        patient: Option<String>,
    },
    /// Write the original bytes to a file, for a use the consent allows.
    Export {
        #[arg(value_name = "ID")]
        id: String,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        /// The use: clinical (default), teaching or publication.
        #[arg(long, default_value = "clinical")]
        purpose: Scope,
        /// Overwrite an existing file.
        #[arg(long)]
        force: bool,
    },
    /// Tick confounders or change the note after capture.
    Confounders {
        #[arg(value_name = "ID")]
        id: String,
        #[arg(long = "confounder", value_name = "KEY[=TEXT]")]
        confounders: Vec<ConfounderInput>,
        #[arg(long)]
        note: Option<String>,
        /// Make the checklist exactly the given items (untick the others), as the station does.
        #[arg(long)]
        replace: bool,
    },
}

fn human(c: &Capture) -> String {
    let mut s = format!(
        "capture {} — {} {}/{} ({})\n  sha256 {}\n  patient {} consent {}{}\n  captured {} ({}, from {})\n  {}×{} {}\n",
        c.id,
        c.role,
        c.area,
        c.view,
        c.baseline_id
            .as_ref()
            .map(|b| format!("follows {b}"))
            .unwrap_or_else(|| "series start".into()),
        c.sha256,
        c.patient_ref,
        c.consent_id,
        c.visit_id
            .as_ref()
            .map(|v| format!(" visit {v}"))
            .unwrap_or_default(),
        c.captured_at,
        c.time_of_day.as_deref().unwrap_or("?"),
        c.captured_at_source,
        c.width,
        c.height,
        c.format.label(),
    );
    if let Some(e) = &c.exif {
        s += &format!(
            "  camera {} {} lens {} f/{} {}s ISO {} focal {} mm\n",
            e.make.as_deref().unwrap_or("-"),
            e.model.as_deref().unwrap_or("-"),
            e.lens.as_deref().unwrap_or("-"),
            e.f_number.map(|f| format!("{f:.1}")).unwrap_or("-".into()),
            e.exposure_time_s
                .map(|t| format!("{t}"))
                .unwrap_or("-".into()),
            e.iso.map(|i| i.to_string()).unwrap_or("-".into()),
            e.focal_length_mm
                .map(|f| format!("{f:.0}"))
                .unwrap_or("-".into()),
        );
    }
    if let Some(e) = &c.exif_error {
        s += &format!("  EXIF problem: {e}\n");
    }
    for k in &c.confounders {
        s += &format!(
            "  confounder {}{}\n",
            k.label,
            k.text
                .as_ref()
                .map(|t| format!(": {}", one_line(t)))
                .unwrap_or_default()
        );
    }
    if let Some(n) = &c.note {
        s += &format!("  note: {}\n", one_line(n));
    }
    s
}

fn imported_line(out: &ImportOutcome) -> String {
    format!(
        "{} capture {} ({} {}/{}, sha256 {})",
        if out.existing {
            "already stored as"
        } else {
            "imported"
        },
        out.capture.id,
        out.capture.role,
        out.capture.area,
        out.capture.view,
        sameframe::ids::short(&out.capture.sha256)
    )
}

fn import_one(
    ctx: &Ctx,
    store: &sameframe::store::Store,
    file: &std::path::Path,
    template: ImportRequest<'_>,
) -> Result<()> {
    let bytes = read_input(file, store.calibration())?;
    let subject = file.display().to_string();
    let req = ImportRequest {
        bytes: &bytes,
        subject: &subject,
        file_modified: std::fs::metadata(file).and_then(|m| m.modified()).ok(),
        ..template
    };
    let out = store.import_capture(req)?;
    for w in &out.warnings {
        ctx.note(&format!("warning: {w}"));
    }
    ctx.emit(&out, || imported_line(&out))
}

/// A batch: every file's result, a progress line on a terminal, non-zero if any failed.
fn import_many(
    ctx: &Ctx,
    store: &sameframe::store::Store,
    files: &[PathBuf],
    template: &ImportRequest<'_>,
) -> Result<ExitCode> {
    let n = files.len();
    let pb = super::review::progress_bar_of(n as u64, "files");
    let results = store.import_files(
        files,
        template,
        super::review::cores(),
        &mut |done, failed| {
            if let Some(pb) = &pb {
                pb.set_position(done as u64);
                if failed > 0 {
                    pb.set_message(format!("{failed} failed"));
                }
            }
        },
    );
    if let Some(pb) = &pb {
        pb.finish_and_clear();
    }
    let mut rows = Vec::with_capacity(n);
    let mut lines = Vec::with_capacity(n);
    let (mut imported, mut existing, mut failed) = (0, 0, 0);
    for r in &results {
        let file = r.file.display().to_string();
        match &r.outcome {
            Ok(out) => {
                if out.existing {
                    existing += 1
                } else {
                    imported += 1
                }
                for w in &out.warnings {
                    ctx.note(&format!("warning: {file}: {w}"));
                }
                lines.push(one_line(&format!("{file}: {}", imported_line(out))));
                rows.push(serde_json::json!({ "file": file, "ok": true, "capture": out }));
            }
            Err(e) => {
                failed += 1;
                let message = e.to_string();
                ctx.note(&format!("error: {message}"));
                lines.push(one_line(&format!("{file}: FAILED: {message}")));
                rows.push(serde_json::json!({ "file": file, "ok": false, "error": message }));
            }
        }
    }
    let summary = serde_json::json!({
        "files": n, "imported": imported, "existing": existing, "failed": failed, "results": rows,
    });
    ctx.emit(&summary, || {
        lines.push(format!(
            "{imported} imported, {existing} already stored, {failed} failed, of {n} files"
        ));
        lines.join("\n")
    })?;
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub fn run(ctx: &Ctx, cmd: CaptureCmd) -> Result<ExitCode> {
    let store = ctx.open()?;
    match cmd {
        CaptureCmd::Import {
            files,
            patient,
            consent,
            area,
            view,
            visit,
            baseline,
            new_baseline,
            confounders,
            note,
            captured_at,
            derive_now,
        } => {
            let mut req = ImportRequest::new(&[], "", &patient, &consent, area, view);
            req.derive_later = !derive_now;
            req.visit_id = visit.as_deref();
            req.baseline_id = baseline.as_deref();
            req.new_baseline = new_baseline;
            req.confounders = confounders;
            req.note = note.as_deref();
            req.captured_at = captured_at.as_deref();
            if let [file] = files.as_slice() {
                import_one(ctx, &store, file, req)?;
            } else {
                anyhow::ensure!(
                    captured_at.is_none(),
                    "--captured-at names one time: with several files each takes its own (EXIF, then the file's time)"
                );
                return import_many(ctx, &store, &files, &req);
            }
        }
        CaptureCmd::Show { id } => {
            let c = store.capture(&id)?;
            ctx.emit(&c, || human(&c))?;
        }
        CaptureCmd::List { patient } => {
            let list: Vec<_> = store
                .list_captures(patient.as_deref())?
                .iter()
                .map(|c| c.summary())
                .collect();
            ctx.emit(&list, || {
                list.iter()
                    .map(|c| {
                        format!(
                            "{}\t{}\t{}/{}\t{}\t{}",
                            c.capture_id, c.patient_ref, c.area, c.view, c.role, c.captured_at
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        CaptureCmd::Export {
            id,
            out,
            purpose,
            force,
        } => {
            let rec = store.export_capture(&id, &out, purpose, force)?;
            ctx.emit(&rec, || {
                format!(
                    "exported capture {} for {} use to {} ({} bytes)",
                    rec.capture_id,
                    rec.purpose,
                    rec.path.display(),
                    rec.bytes
                )
            })?;
        }
        CaptureCmd::Confounders {
            id,
            confounders,
            note,
            replace,
        } => {
            let list = if replace {
                store.replace_confounders(&id, &confounders, note.as_deref())?
            } else {
                store.set_confounders(&id, &confounders, note.as_deref())?
            };
            ctx.emit(&list, || {
                list.iter()
                    .map(|k| k.label.clone())
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
