//! `sameframe visit …`

use std::process::ExitCode;

use anyhow::Result;
use chrono::NaiveDate;
use clap::Subcommand;

use super::{Ctx, parse_date};
use sameframe::records::{Area, NewVisit};

#[derive(Debug, Subcommand)]
pub enum VisitCmd {
    /// Record a treatment visit.
    Add {
        #[arg(long = "patient", value_name = "REF")]
        patient: String,
        /// Treatment area: face, neck, scalp, hands, decollete, body.
        #[arg(long)]
        area: Area,
        /// Visit date (YYYY-MM-DD; default today).
        #[arg(long, value_parser = parse_date)]
        date: Option<NaiveDate>,
        /// Product name.
        #[arg(long)]
        product: Option<String>,
        /// Product lot number.
        #[arg(long, requires = "product")]
        lot: Option<String>,
        /// Lot expiry date (YYYY-MM-DD).
        #[arg(long, value_parser = parse_date, requires = "lot")]
        lot_expiry: Option<NaiveDate>,
        /// Technique (e.g. "microbolus, 32G, 0.05 ml per point").
        #[arg(long)]
        technique: Option<String>,
        /// Treating clinician.
        #[arg(long)]
        clinician: Option<String>,
    },
    /// Show a visit.
    Show {
        #[arg(value_name = "ID")]
        id: String,
    },
}

pub fn run(ctx: &Ctx, cmd: VisitCmd) -> Result<ExitCode> {
    let store = ctx.open()?;
    match cmd {
        VisitCmd::Add {
            patient,
            area,
            date,
            product,
            lot,
            lot_expiry,
            technique,
            clinician,
        } => {
            let out = store.add_visit(NewVisit {
                patient_ref: &patient,
                area,
                date: date.unwrap_or_else(sameframe::timefmt::today),
                product: product.as_deref(),
                lot: lot.as_deref(),
                lot_expiry,
                technique: technique.as_deref(),
                clinician: clinician.as_deref(),
            })?;
            for w in &out.warnings {
                ctx.note(&format!("warning: {w}"));
            }
            ctx.emit(&out, || {
                format!(
                    "visit {} recorded ({} on {})",
                    out.visit.id, out.visit.area, out.visit.date
                )
            })?;
        }
        VisitCmd::Show { id } => {
            let v = store.visit(&id)?;
            ctx.emit(&v, || {
                format!(
                    "visit {} — patient {} — {} on {}\n  product {} lot {} (expires {})\n  technique {}\n  clinician {}",
                    v.id,
                    v.patient_id,
                    v.area,
                    v.date,
                    v.product.as_deref().unwrap_or("-"),
                    v.lot.as_deref().unwrap_or("-"),
                    v.lot_expiry.as_deref().unwrap_or("-"),
                    v.technique.as_deref().unwrap_or("-"),
                    v.clinician.as_deref().unwrap_or("-"),
                )
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
