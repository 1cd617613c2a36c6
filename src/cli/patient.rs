//! `sameframe patient …`

use std::process::ExitCode;

use anyhow::Result;
use clap::Subcommand;
use serde::Serialize;

use super::Ctx;
use sameframe::records::capture::CaptureSummary;
use sameframe::records::{Consent, Patient, Visit};

#[derive(Debug, Subcommand)]
pub enum PatientCmd {
    /// Register a patient by the clinic's reference.
    Add {
        /// The clinic's unique reference (e.g. the record number).
        #[arg(long = "ref", value_name = "REF")]
        reference: String,
        /// Display name, shown to staff only (never logged).
        #[arg(long)]
        name: Option<String>,
    },
    /// Show a patient with consents, visits and captures.
    Show {
        /// The clinic's reference (or the patient ID).
        #[arg(value_name = "REF")]
        reference: String,
    },
    /// List or search patients.
    List {
        /// Only references or names containing this text.
        #[arg(long, default_value = "")]
        search: String,
    },
}

#[derive(Serialize)]
struct PatientView {
    #[serde(flatten)]
    patient: Patient,
    consents: Vec<Consent>,
    visits: Vec<Visit>,
    captures: Vec<CaptureSummary>,
}

pub fn run(ctx: &Ctx, cmd: PatientCmd) -> Result<ExitCode> {
    let store = ctx.open()?;
    match cmd {
        PatientCmd::Add { reference, name } => {
            let p = store.add_patient(&reference, name.as_deref())?;
            ctx.emit(&p, || {
                format!("patient {} registered as {}", p.reference, p.id)
            })?;
        }
        PatientCmd::Show { reference } => {
            let patient = store.find_patient(&reference)?;
            let consents = store.consents_of_patient_id(&patient.id)?;
            let visits = store.visits_of_patient_id(&patient.id)?;
            let captures = store
                .list_captures(Some(&patient.reference))?
                .iter()
                .map(|c| c.summary())
                .collect();
            let view = PatientView {
                patient,
                consents,
                visits,
                captures,
            };
            ctx.emit(&view, || {
                let today = sameframe::timefmt::today();
                let mut s = format!(
                    "patient {} ({}){}\n",
                    view.patient.reference,
                    view.patient.id,
                    view.patient
                        .display_name
                        .as_ref()
                        .map(|n| format!(" — {n}"))
                        .unwrap_or_default()
                );
                for c in &view.consents {
                    let active: Vec<_> =
                        c.active_scopes(today).iter().map(|s| s.as_str()).collect();
                    s += &format!(
                        "  consent {} signed {} — active: {}\n",
                        c.id,
                        c.signed_on,
                        if active.is_empty() {
                            "none".to_string()
                        } else {
                            active.join(", ")
                        }
                    );
                }
                for v in &view.visits {
                    s += &format!("  visit {} {} {}\n", v.id, v.date, v.area);
                }
                for c in &view.captures {
                    s += &format!(
                        "  capture {} {}/{} {} {}\n",
                        c.capture_id, c.area, c.view, c.role, c.captured_at
                    );
                }
                s
            })?;
        }
        PatientCmd::List { search } => {
            let list = store.search_patients(&search, 10_000)?;
            ctx.emit(&list, || {
                list.iter()
                    .map(|p| format!("{}\t{}", p.reference, p.id))
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
