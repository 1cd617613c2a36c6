//! `sameframe consent …`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use chrono::NaiveDate;
use clap::Subcommand;

use super::{Ctx, one_line, parse_date, read_input};
use sameframe::purge::{WithdrawOutcome, WithdrawRequest, WithdrawScope};
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
        /// The patient agreed to be recognisable in published or teaching photos. Without it,
        /// `publish prepare` only makes de-identified copies.
        #[arg(long)]
        identifiable: bool,
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
    /// Withdraw a scope (publication, teaching, or all) and purge what it covers; prints the
    /// takedown list and writes a deletion certificate. Re-run to finish an interrupted one.
    Withdraw {
        #[arg(value_name = "ID")]
        id: String,
        /// publication, teaching or all.
        #[arg(long)]
        scope: WithdrawScope,
        /// Why (recorded with the withdrawal).
        #[arg(long)]
        reason: String,
        /// With --scope all: also purge the original clinical photos, overriding the
        /// clinical-record retention setting.
        #[arg(long)]
        purge_clinical_record: bool,
        /// Confirm an irreversible purge of the clinical record.
        #[arg(long)]
        confirm: bool,
    },
    /// Finish every withdrawal that was interrupted (`status` and `verify` list them).
    Resume,
    /// Write the consent's evidence document to a file.
    Document {
        #[arg(value_name = "ID")]
        id: String,
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
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
    s += if c.identifiable {
        "  may be recognisable in publications\n"
    } else {
        "  publications must be de-identified\n"
    };
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
            identifiable,
        } => {
            let doc = match &document {
                Some(p) => Some((read_input(p, store.calibration())?, p.display().to_string())),
                None => None,
            };
            let scopes: Vec<Scope> =
                parse_scopes(&scope.join(",")).map_err(|e| anyhow::anyhow!("--scope: {e}"))?;
            let c = store.grant_consent(NewConsent {
                identifiable,
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
        ConsentCmd::Withdraw {
            id,
            scope,
            reason,
            purge_clinical_record,
            confirm,
        } => {
            let out = store.withdraw_consent(&WithdrawRequest {
                consent_id: &id,
                scope,
                reason: &reason,
                purge_clinical_record,
                confirm,
            })?;
            ctx.emit(&out, || withdrawal_text(&out))?;
        }
        ConsentCmd::Resume => {
            let done = store.finish_withdrawals()?;
            ctx.emit(&done, || {
                if done.is_empty() {
                    "no unfinished withdrawals".to_string()
                } else {
                    done.iter()
                        .map(withdrawal_text)
                        .collect::<Vec<_>>()
                        .join("\n")
                }
            })?;
        }
        ConsentCmd::Document { id, out } => {
            let bytes = store.consent_document(&id)?;
            sameframe::records::capture::write_file_atomic(&out, &bytes)?;
            let v = serde_json::json!({ "consent_id": id, "out": out, "bytes": bytes.len() });
            ctx.emit(&v, || {
                format!("wrote {} ({} bytes)", out.display(), bytes.len())
            })?;
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

fn withdrawal_text(o: &WithdrawOutcome) -> String {
    let c = &o.certificate;
    let mut s = format!(
        "{}consent {} (patient {}): withdrawn {}\n  purged {} item(s), kept {} (each with the rule that keeps it, in the certificate)\n  certificate {} (sha256 {})\n",
        if o.resumed {
            "resumed an interrupted withdrawal — "
        } else {
            ""
        },
        o.consent_id,
        one_line(&o.patient_ref),
        if o.scopes_withdrawn.is_empty() {
            "(already)".to_string()
        } else {
            o.scopes_withdrawn.join(", ")
        },
        c.purged.len(),
        c.retained.len(),
        o.certificate_text.display(),
        o.certificate_sha256,
    );
    if !c.outside_copies.is_empty() {
        s += "copies outside the data directory — delete them:\n";
        // One file can hold several captures (a before/after): each path once.
        let mut seen = std::collections::HashSet::new();
        for p in c
            .outside_copies
            .iter()
            .map(|i| i.path.as_deref().unwrap_or("?"))
        {
            if seen.insert(p) {
                s += &format!("  {p}\n");
            }
        }
    }
    if o.takedown.is_empty() {
        s += "takedown list: no recorded publications\n";
    } else {
        s += "takedown list (notify each publisher; track with `sameframe takedown list`):\n";
        for t in &o.takedown {
            s += &format!(
                "  {}  due {}  {}  {}  file {} (sha256 {})\n    {}\n",
                t.publication_id,
                t.due,
                one_line(&t.channel),
                one_line(t.url.as_deref().unwrap_or("-")),
                one_line(t.file_name.as_deref().unwrap_or("-")),
                t.file_sha256,
                one_line(&t.instruction)
            );
        }
    }
    s
}
