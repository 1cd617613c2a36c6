//! `sameframe publish prepare` and `sameframe publish keys …`: publication copies made by the
//! kit, signed with the clinic's provenance certificate.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, bail};
use clap::{Args, Subcommand};

use super::{Ctx, one_line, read_input};
use sameframe::publish::compose::Layout;
use sameframe::publish::deid::Method;
use sameframe::publish::{PrepareRequest, SigningIdentity};
use sameframe_interop::provenance::{ClinicSigner, create_identity, import_identity};

#[derive(Debug, Args)]
pub struct PrepareArgs {
    /// The captures to show (one, or a before and its afters; placed oldest first).
    #[arg(required = true, value_name = "CAPTURE")]
    captures: Vec<String>,
    /// Where it goes out: a channel of calibration/publication.toml (website, social, print,
    /// teaching).
    #[arg(long)]
    channel: String,
    /// The copy to write (.jpg, .jpeg or .png); its caption is written beside it as .txt.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// single, side-by-side or stacked (default: single for one capture, side-by-side for more).
    #[arg(long, value_parser = |s: &str| s.parse::<Layout>())]
    layout: Option<Layout>,
    /// De-identify: crop to the treated zone, or mask everything outside it.
    #[arg(long, value_parser = |s: &str| s.parse::<Method>())]
    deidentify: Option<Method>,
    /// The treated zone kept by --deidentify (a zone of calibration/publication.toml; face
    /// photos must name one).
    #[arg(long)]
    zone: Option<String>,
    /// Keep the variability note out of the image (it is still in the caption).
    #[arg(long)]
    no_burn_in: bool,
    /// Publish a pair graded below the clinic's minimum, for this reason (audited).
    #[arg(long, value_name = "REASON")]
    override_grade: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum KeysCmd {
    /// Create the clinic's provenance CA and signing certificate, or import its own.
    Init {
        /// The clinic's name, as the certificates show it (when creating).
        #[arg(long, default_value = "Clinic")]
        clinic: String,
        /// Import this certificate chain (PEM, signing certificate first) instead of creating.
        #[arg(long, value_name = "CHAIN.pem", requires = "key")]
        cert: Option<PathBuf>,
        /// The signing certificate's private key (PKCS#8 PEM), with --cert.
        #[arg(long, value_name = "KEY.pem", requires = "cert")]
        key: Option<PathBuf>,
        /// The root reviewers trust (PEM; default: the chain's last certificate).
        #[arg(long, value_name = "CA.pem", requires = "cert")]
        ca: Option<PathBuf>,
        /// Replace an existing identity.
        #[arg(long)]
        replace: bool,
    },
    /// Show the signing certificate's subject and digest.
    Show,
    /// Write the trust anchor (the clinic's CA certificate) for reviewers and validators.
    ExportCa {
        #[arg(value_name = "OUT.pem")]
        out: PathBuf,
    },
}

fn identity_json(id: &SigningIdentity) -> serde_json::Value {
    serde_json::json!({
        "subject": id.subject, "certificate_sha256": id.leaf_sha256,
        "origin": id.origin, "created_at": id.created_at,
    })
}

fn read_pem(store: &sameframe::store::Store, p: &Path) -> Result<String> {
    let bytes = read_input(p, store.calibration())?;
    String::from_utf8(bytes).with_context(|| format!("{}: not a PEM text file", p.display()))
}

pub fn keys(ctx: &Ctx, cmd: KeysCmd) -> Result<ExitCode> {
    let store = ctx.open()?;
    match cmd {
        KeysCmd::Init {
            clinic,
            cert,
            key,
            ca,
            replace,
        } => {
            sameframe::records::consent::check_text("--clinic", &clinic)?;
            let now = sameframe::timefmt::now_utc();
            let id = match (&cert, &key) {
                (Some(c), Some(k)) => {
                    let anchor = ca.as_ref().map(|a| read_pem(&store, a)).transpose()?;
                    import_identity(
                        &read_pem(&store, c)?,
                        &read_pem(&store, k)?,
                        anchor.as_deref(),
                        &now,
                    )?
                }
                _ => create_identity(clinic.trim(), &now)?,
            };
            store.set_signing_identity(&id, replace)?;
            let out = identity_json(&id);
            ctx.emit(&out, || {
                format!(
                    "signing identity {}: {} (certificate sha256 {})\nreviewers and validators trust it through `sameframe publish keys export-ca FILE`",
                    id.origin, one_line(&id.subject), id.leaf_sha256
                )
            })?;
        }
        KeysCmd::Show => {
            let Some(id) = store.signing_identity()? else {
                bail!("no signing identity: run `sameframe publish keys init`");
            };
            let out = identity_json(&id);
            ctx.emit(&out, || {
                format!(
                    "{} (certificate sha256 {}, {})",
                    one_line(&id.subject),
                    id.leaf_sha256,
                    id.origin
                )
            })?;
        }
        KeysCmd::ExportCa { out } => {
            let Some(id) = store.signing_identity()? else {
                bail!("no signing identity: run `sameframe publish keys init`");
            };
            std::fs::write(&out, &id.trust_anchor_pem)
                .with_context(|| format!("could not write {}", out.display()))?;
            ctx.emit(&serde_json::json!({ "written": out }), || {
                format!("trust anchor written to {}", out.display())
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub fn prepare(ctx: &Ctx, a: PrepareArgs) -> Result<ExitCode> {
    let store = ctx.open()?;
    let Some(id) = store.signing_identity()? else {
        bail!(
            "no signing identity to sign the copy's provenance manifest: run `sameframe publish keys init` first"
        );
    };
    let signer = ClinicSigner::new(id);
    let req = PrepareRequest {
        capture_ids: &a.captures,
        channel: a.channel.trim(),
        layout: a.layout,
        deidentify: a.deidentify,
        zone: a.zone.as_deref(),
        burn_in: !a.no_burn_in,
        grade_override: a.override_grade.as_deref(),
        out: &a.out,
    };
    let p = store.prepare_publication(&req, &signer)?;
    ctx.note(&format!(
        "{} contains patient photographs: it is recorded as publication {} for the take-down list",
        p.file.display(),
        p.publication_id
    ));
    ctx.emit(&p, || {
        let mut s = format!(
            "prepared {} ({}×{}, {}, {} channel) as publication {}\n  sha256 {}\n  caption {}\n",
            p.file.display(),
            p.width,
            p.height,
            p.layout,
            p.channel,
            p.publication_id,
            p.sha256,
            p.caption_file.display()
        );
        for c in &p.captures {
            s += &format!("  {:<6} {} taken {}\n", c.label, c.capture_id, c.taken);
        }
        if let Some(g) = p.grade {
            s += &format!("  comparability grade {g}");
            if let Some(r) = &p.grade_override {
                s += &format!(" (below the minimum; overridden: {})", one_line(r));
            }
            s += "\n";
        }
        if let Some(d) = &p.deidentified {
            s += &format!("  {d}\n");
        }
        s += &format!("  signed by {}", one_line(&p.signer));
        s
    })?;
    Ok(ExitCode::SUCCESS)
}
