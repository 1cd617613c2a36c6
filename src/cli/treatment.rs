//! `sameframe map …`, `sameframe lot …`, `sameframe adverse …`: the area map, the recall
//! query and adverse events.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use chrono::NaiveDate;
use clap::Subcommand;

use super::{Ctx, one_line, parse_date};
use sameframe::records::Scope;
use sameframe::records::treatment::care::{NewAdverse, Severity};
use sameframe::records::treatment::map::MapInput;
use sameframe::records::treatment::summary::{check_output, draw_map, map_svg};
use sameframe::records::treatment::{Body, TreatmentRecord};

/// The largest map file read.
const MAP_MAX_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, Subcommand)]
pub enum MapCmd {
    /// Record the area map of a visit drawn on a capture (zones and injection points in the
    /// capture's pixels, as JSON); replaces the visit's map on that capture.
    Set {
        #[arg(long, value_name = "VISIT_ID")]
        visit: String,
        #[arg(long, value_name = "CAPTURE_ID")]
        capture: String,
        /// {"zones": [{"zone": "cheeks", "polygon": [[x, y], …]}], "points": [{"x": …,
        /// "y": …, "zone": "cheeks", "lot": "L2311", "depth": "intradermal", "technique":
        /// "microbolus", "volume_ml": 0.05, "gauge": "32G"}]}
        #[arg(long, value_name = "MAP.json")]
        file: PathBuf,
    },
    /// The zones of the capture's area template placed on it (a start for `map set`).
    Template {
        #[arg(long, value_name = "CAPTURE_ID")]
        capture: String,
    },
    /// The map of a capture's series placed on that capture (moved by the pose transform
    /// when it was drawn on another capture); as JSON, SVG or PNG. A file written holds the
    /// capture's preview: it is recorded as a copy, so a withdrawal lists it.
    Show {
        #[arg(long, value_name = "CAPTURE_ID")]
        capture: String,
        /// Write an SVG (the capture's preview under the map).
        #[arg(long, value_name = "FILE.svg")]
        svg: Option<PathBuf>,
        /// Write a PNG (the capture's preview with the map drawn on it).
        #[arg(long, value_name = "FILE.png")]
        png: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum LotCmd {
    /// Every patient, visit, map point and capture that used a lot (the recall query).
    Trace {
        #[arg(value_name = "LOT")]
        lot: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdverseCmd {
    /// Record an adverse event linked to a visit (and its lot and photos).
    Add {
        #[arg(long, value_name = "VISIT_ID")]
        visit: String,
        /// When it started (YYYY-MM-DD).
        #[arg(long, value_parser = parse_date)]
        onset: NaiveDate,
        #[arg(long)]
        description: String,
        /// mild | moderate | severe.
        #[arg(long)]
        severity: Severity,
        /// What was done.
        #[arg(long)]
        action: Option<String>,
        /// Escalated (to a physician, an emergency service, the manufacturer).
        #[arg(long)]
        escalated: bool,
        /// The lot involved (one recorded at the visit).
        #[arg(long)]
        lot: Option<String>,
        /// Photos of it.
        #[arg(long = "capture", value_name = "CAPTURE_ID")]
        captures: Vec<String>,
    },
    /// Every adverse event, newest first (of one patient with --patient).
    List {
        #[arg(long, value_name = "REF")]
        patient: Option<String>,
    },
}

pub fn map(ctx: &Ctx, cmd: MapCmd) -> Result<ExitCode> {
    let store = ctx.open()?;
    match cmd {
        MapCmd::Set {
            visit,
            capture,
            file,
        } => {
            let text = sameframe::fsutil::read_text_capped(&file, MAP_MAX_BYTES)
                .with_context(|| format!("could not read map file {}", file.display()))?;
            let input: MapInput = serde_json::from_str(&text)
                .with_context(|| format!("map file {} is not a map", file.display()))?;
            let r = store.set_map(&visit, &capture, input)?;
            let (zones, points) = match &r.body {
                Body::Map(m) => (m.zones.len(), m.points.len()),
                _ => (0, 0),
            };
            ctx.emit(&r, || {
                format!(
                    "map {} recorded for visit {} on capture {capture}: {zones} zones, {points} injection points",
                    r.id, r.visit_id
                )
            })?;
        }
        MapCmd::Template { capture } => {
            let t = store.map_template(&capture)?;
            let mut out = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut out, &t)?;
            std::io::Write::write_all(&mut out, b"\n")?;
        }
        MapCmd::Show { capture, svg, png } => {
            let m = store.map_on_capture(&capture)?;
            for out in svg.iter().chain(png.iter()) {
                check_output(&store, out)?;
            }
            if let Some(out) = &svg {
                let thumb = store.thumbnail(&m.capture_id)?;
                let text = map_svg(&m, Some(&thumb));
                sameframe::records::capture::write_file_atomic(out, text.as_bytes())?;
                store.record_derived_export(
                    &m.capture_id,
                    out,
                    Scope::Clinical,
                    "svg",
                    text.len() as u64,
                )?;
                ctx.note(&format!("map written to {}", out.display()));
            }
            if let Some(out) = &png {
                let mut img = store.preview(&m.capture_id)?;
                draw_map(&mut img, &m);
                let mut bytes = Vec::new();
                img.write_to(
                    &mut std::io::Cursor::new(&mut bytes),
                    image::ImageFormat::Png,
                )?;
                sameframe::records::capture::write_file_atomic(out, &bytes)?;
                store.record_derived_export(
                    &m.capture_id,
                    out,
                    Scope::Clinical,
                    "png",
                    bytes.len() as u64,
                )?;
                ctx.note(&format!("map written to {}", out.display()));
            }
            ctx.emit(&m, || {
                format!(
                    "map {} (visit {}) drawn on {}, shown on {} (alignment confidence {:.2}): {} zones, {} injection points",
                    m.record_id,
                    m.visit_id,
                    m.drawn_on,
                    m.capture_id,
                    m.confidence,
                    m.zones.len(),
                    m.points.len()
                )
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn lot(ctx: &Ctx, cmd: LotCmd) -> Result<ExitCode> {
    let store = ctx.open()?;
    let LotCmd::Trace { lot } = cmd;
    let t = store.trace_lot(&lot)?;
    ctx.emit(&t, || {
        let mut lines = vec![format!(
            "lot {}: {} patient(s), {} visit(s)",
            t.lot, t.patients, t.visits
        )];
        for u in &t.uses {
            lines.push(one_line(&format!(
                "  {} {} visit {} ({}, {}): {} point(s) on the map, captures [{}]{}",
                u.visit_date,
                u.patient_ref,
                u.visit_id,
                u.area,
                u.product,
                u.map_points.len(),
                u.captures.join(", "),
                if u.adverse_events.is_empty() {
                    String::new()
                } else {
                    format!(", adverse events [{}]", u.adverse_events.join(", "))
                }
            )));
        }
        lines.join("\n")
    })?;
    Ok(ExitCode::SUCCESS)
}

pub fn adverse(ctx: &Ctx, cmd: AdverseCmd) -> Result<ExitCode> {
    let store = ctx.open()?;
    match cmd {
        AdverseCmd::Add {
            visit,
            onset,
            description,
            severity,
            action,
            escalated,
            lot,
            captures,
        } => {
            let r = store.add_adverse(NewAdverse {
                visit_id: &visit,
                onset,
                description: &description,
                severity,
                action: action.as_deref(),
                escalated,
                lot: lot.as_deref(),
                captures: &captures,
            })?;
            ctx.emit(&r, || {
                format!("adverse event recorded as {} at visit {}", r.id, r.visit_id)
            })?;
        }
        AdverseCmd::List { patient } => {
            let mut list: Vec<TreatmentRecord> = store.treatment_records_of_kind("adverse")?;
            if let Some(p) = patient {
                let p = store.patient_by_ref(&p)?;
                list.retain(|r| r.patient_id == p.id);
            }
            list.sort_by(|a, b| b.recorded_at.cmp(&a.recorded_at));
            ctx.emit(&list, || {
                list.iter()
                    .filter_map(|r| match &r.body {
                        Body::Adverse(a) => Some(one_line(&format!(
                            "{} {} visit {} patient {}: {} ({}){}{}",
                            r.id,
                            a.onset,
                            r.visit_id,
                            r.patient_id,
                            a.description,
                            a.severity,
                            a.lot
                                .as_deref()
                                .map(|l| format!(", lot {l}"))
                                .unwrap_or_default(),
                            if a.escalated { ", ESCALATED" } else { "" }
                        ))),
                        _ => None,
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
