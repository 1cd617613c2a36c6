//! `sameframe export dicom`: captures as DICOM VL Photographic Images.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, bail};
use clap::{Args, Subcommand};

use super::{Ctx, one_line};

#[derive(Debug, Subcommand)]
pub enum ExportCmd {
    /// One DICOM file per capture (VL Photographic Image; a baseline JPEG original is
    /// encapsulated unchanged), into a folder.
    Dicom(DicomArgs),
    /// A patient's consents, photos (metadata and SHA-256, no pixels) and visits as a FHIR
    /// Bundle (R4B, or R5 with --fhir-version r5).
    Fhir {
        /// The patient's clinic reference.
        #[arg(long)]
        patient: String,
        #[arg(long, default_value = "r4b", value_name = "r4b|r5")]
        fhir_version: sameframe_interop::fhir::FhirVersion,
        /// The bundle file to write.
        #[arg(long)]
        out: PathBuf,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Args)]
pub struct DicomArgs {
    /// Capture IDs (or use --patient, --visit or --series).
    captures: Vec<String>,
    /// Every capture of this patient (clinic reference).
    #[arg(long)]
    patient: Option<String>,
    /// Every capture of this visit.
    #[arg(long)]
    visit: Option<String>,
    /// A protocol series: this baseline capture and its follow-ups.
    #[arg(long, value_name = "BASELINE_ID")]
    series: Option<String>,
    /// The folder the files go into (created if absent).
    #[arg(long)]
    out: PathBuf,
    /// Put the patient's recorded name in Patient's Name (else only the clinic reference).
    #[arg(long)]
    with_name: bool,
    /// Replace files of the same names.
    #[arg(long)]
    force: bool,
    /// The use: clinical (default), teaching or publication; each consent must allow it.
    #[arg(long, default_value = "clinical")]
    purpose: sameframe::records::Scope,
}

pub fn run(ctx: &Ctx, cmd: ExportCmd) -> Result<ExitCode> {
    match cmd {
        ExportCmd::Dicom(a) => dicom(ctx, a),
        ExportCmd::Fhir {
            patient,
            fhir_version,
            out,
            force,
        } => {
            let store = ctx.open()?;
            if out.exists() && !force {
                bail!(
                    "{} already exists: nothing was written (use --force to replace it)",
                    out.display()
                );
            }
            let bundle = sameframe_interop::fhir::patient_bundle(&store, &patient, fhir_version)?;
            let text = serde_json::to_vec_pretty(&bundle)?;
            sameframe::records::capture::write_file_atomic(&out, &text)?;
            let entries = bundle["entry"].as_array().map_or(0, Vec::len);
            let summary = serde_json::json!({ "out": out, "entries": entries, "fhir_version": format!("{fhir_version:?}") });
            ctx.emit(&summary, || {
                format!("wrote {} ({entries} resources)", out.display())
            })?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn dicom(ctx: &Ctx, a: DicomArgs) -> Result<ExitCode> {
    let store = ctx.open()?;
    let mut ids = a.captures.clone();
    if let Some(p) = &a.patient {
        ids.extend(store.list_captures(Some(p))?.into_iter().map(|c| c.id));
    }
    if let Some(v) = &a.visit {
        let visit = store.visit(v)?;
        let patient = store.patient_by_id(&visit.patient_id)?;
        ids.extend(
            store
                .list_captures(Some(&patient.reference))?
                .into_iter()
                .filter(|c| c.visit_id.as_deref() == Some(visit.id.as_str()))
                .map(|c| c.id),
        );
    }
    if let Some(b) = &a.series {
        let base = store.capture(b)?;
        ids.push(base.id.clone());
        ids.extend(
            store
                .list_captures(Some(&base.patient_ref))?
                .into_iter()
                .filter(|c| c.baseline_id.as_deref() == Some(base.id.as_str()))
                .map(|c| c.id),
        );
    }
    let mut seen = std::collections::HashSet::new();
    ids.retain(|id| seen.insert(id.trim().to_string()));
    if ids.is_empty() {
        bail!("no captures to export: name capture IDs, or use --patient, --visit or --series");
    }
    let opts = sameframe_interop::dicom::Options {
        with_name: a.with_name,
        force: a.force,
        purpose: a.purpose,
    };
    let done = sameframe_interop::export_captures(&store, &ids, &a.out, &opts)?;
    ctx.emit(&done, || {
        done.iter()
            .map(|d| {
                format!(
                    "{}  {}  {}",
                    d.capture_id,
                    one_line(&d.path.display().to_string()),
                    if d.encapsulated {
                        "JPEG original encapsulated unchanged"
                    } else {
                        "uncompressed pixels (lossless)"
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    Ok(ExitCode::SUCCESS)
}
