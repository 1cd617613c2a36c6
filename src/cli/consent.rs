//! `sameframe consent …`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use chrono::NaiveDate;
use clap::Subcommand;

use super::{Ctx, parse_date, read_input};
use sameframe::records::consent::NewConsent;
use sameframe::records::{Consent, Scope, parse_scopes};

#[derive(Debug, Subcommand)]
pub enum ConsentCmd {
    /// Record a signed consent.
    Grant {
        /// The patient's reference.
        #[arg(long = "patient", value_name = "REF")]
        patient: String,
        /// Comma-separated scopes: clinical, teaching, publication (repeatable).
        #[arg(long, required = true)]
        scope: Vec<String>,
        /// Who signed (the patient or their representative).
        #[arg(long)]
        signed_by: String,
        /// Date of signature (YYYY-MM-DD).
        #[arg(long, value_parser = parse_date)]
        signed_on: NaiveDate,
        /// Last day the consent covers (YYYY-MM-DD).
        #[arg(long, value_parser = parse_date)]
        expires: Option<NaiveDate>,
        /// The signed form (PDF or scan), stored encrypted as evidence.
        #[arg(long, value_name = "FILE")]
        document: Option<PathBuf>,
    },
    /// Show a consent and the state of each scope.
    Show {
        #[arg(value_name = "ID")]
        id: String,
    },
    /// List a patient's consents.
    List {
        #[arg(long = "patient", value_name = "REF")]
        patient: String,
    },
}

fn human(c: &Consent) -> String {
    let today = sameframe::timefmt::today();
    let mut s = format!(
        "consent {} (patient {}) signed by {} on {}{}\n",
        c.id,
        c.patient_id,
        c.signed_by,
        c.signed_on,
        c.expires_on
            .as_ref()
            .map(|e| format!(", covers until {e}"))
            .unwrap_or_default()
    );
    for st in &c.scopes {
        let state = match c.permits(st.scope, today) {
            Ok(()) => "active".to_string(),
            Err(r) => format!("not usable: {r}"),
        };
        s += &format!("  {:<12} {}\n", st.scope.as_str(), state);
        if let Some(reason) = &st.withdrawal_reason {
            s += &format!(
                "  {:<12} withdrawn by {} — {}\n",
                "",
                st.withdrawn_by.as_deref().unwrap_or("?"),
                reason
            );
        }
    }
    if let Some(d) = &c.document_sha256 {
        s += &format!("  document sha256 {d}\n");
    }
    s
}

pub fn run(ctx: &Ctx, cmd: ConsentCmd) -> Result<ExitCode> {
    let store = ctx.open()?;
    match cmd {
        ConsentCmd::Grant {
            patient,
            scope,
            signed_by,
            signed_on,
            expires,
            document,
        } => {
            let doc = match &document {
                Some(p) => Some((read_input(p)?, p.display().to_string())),
                None => None,
            };
            let scopes: Vec<Scope> =
                parse_scopes(&scope.join(",")).map_err(|e| anyhow::anyhow!("--scope: {e}"))?;
            let c = store.grant_consent(NewConsent {
                patient_ref: &patient,
                scopes,
                signed_by: &signed_by,
                signed_on,
                expires_on: expires,
                document: doc,
            })?;
            ctx.emit(&c, || human(&c))?;
        }
        ConsentCmd::Show { id } => {
            let c = store.consent(&id)?;
            ctx.emit(&c, || human(&c))?;
        }
        ConsentCmd::List { patient } => {
            let list = store.consents_of(&patient)?;
            ctx.emit(&list, || {
                list.iter().map(human).collect::<Vec<_>>().join("\n")
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
