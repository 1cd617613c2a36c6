//! `sameframe visit …`

use std::process::ExitCode;

use anyhow::Result;
use chrono::NaiveDate;
use clap::Subcommand;

use std::path::PathBuf;

use super::{Ctx, one_line, parse_date};
use sameframe::records::treatment::care::{FindingInput, PainWhen};
use sameframe::records::treatment::products::NewProduct;
use sameframe::records::treatment::summary::check_output;
use sameframe::records::{Area, NewVisit, Scope};

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
        /// Record an expired lot anyway: why it was used (kept and audited).
        #[arg(long, value_name = "REASON", requires = "lot_expiry")]
        expired_lot_reason: Option<String>,
    },
    /// Show a visit with everything recorded about its treatment.
    Show {
        #[arg(value_name = "ID")]
        id: String,
        /// Write the visit summary (photos with the area map, products, response, pain,
        /// outcome, grade) as one HTML page.
        #[arg(long, value_name = "FILE.html")]
        html: Option<PathBuf>,
    },
    /// Products and lots used at a visit.
    #[command(subcommand)]
    Product(ProductCmd),
    /// Record the immediate skin response at the end of a visit (replaces an earlier one).
    Response {
        #[arg(value_name = "VISIT_ID")]
        visit: String,
        /// A response and its severity: KEY=none|mild|moderate|severe, optionally
        /// :CAPTURE_ID of a photo of it (e.g. erythema=mild, blanching=moderate:cap_…).
        #[arg(
            long = "finding",
            value_name = "KEY=SEVERITY[:CAPTURE]",
            required = true
        )]
        findings: Vec<FindingInput>,
        #[arg(long)]
        note: Option<String>,
    },
    /// Record the pain the patient reported (0–10 numeric rating scale).
    Pain {
        #[arg(value_name = "VISIT_ID")]
        visit: String,
        #[arg(long, allow_negative_numbers = true)]
        score: i64,
        /// during | end (of the session).
        #[arg(long, default_value = "end")]
        when: PainWhen,
        #[arg(long)]
        comment: Option<String>,
    },
    /// Record the outcome at a follow-up visit (GAIS 1 very much improved … 5 worse).
    Outcome {
        #[arg(value_name = "VISIT_ID")]
        visit: String,
        #[arg(long, value_parser = parse_gais)]
        patient_gais: Option<u8>,
        #[arg(long, value_parser = parse_gais)]
        clinician_gais: Option<u8>,
        /// Patient satisfaction, 0 (not at all) to 10 (completely).
        #[arg(long, allow_negative_numbers = true)]
        satisfaction: Option<i64>,
        #[arg(long)]
        text: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProductCmd {
    /// Record a product and lot used at a visit (an expired lot is refused).
    Add {
        #[arg(value_name = "VISIT_ID")]
        visit: String,
        #[arg(long)]
        product: String,
        #[arg(long)]
        lot: String,
        /// Lot expiry (YYYY-MM-DD).
        #[arg(long, value_parser = parse_date)]
        expiry: NaiveDate,
        /// Amount used (in --unit).
        #[arg(long)]
        quantity: Option<f64>,
        #[arg(long, requires = "quantity")]
        unit: Option<String>,
        /// Record an expired lot anyway: why it was used (kept and audited).
        #[arg(long, value_name = "REASON")]
        expired_lot_reason: Option<String>,
    },
    /// List the products and lots of a visit.
    List {
        #[arg(value_name = "VISIT_ID")]
        visit: String,
    },
}

fn parse_gais(s: &str) -> Result<u8, String> {
    sameframe::records::treatment::care::parse_gais(s)
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
            expired_lot_reason,
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
                expired_lot_reason: expired_lot_reason.as_deref(),
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
        VisitCmd::Show { id, html } => show(ctx, &store, &id, html)?,
        VisitCmd::Product(ProductCmd::Add {
            visit,
            product,
            lot,
            expiry,
            quantity,
            unit,
            expired_lot_reason,
        }) => {
            let r = store.add_product(NewProduct {
                visit_id: &visit,
                product: &product,
                lot: &lot,
                expiry,
                quantity,
                unit: unit.as_deref(),
                expired_reason: expired_lot_reason.as_deref(),
            })?;
            ctx.emit(&r, || {
                format!("product recorded as {} at visit {}", r.id, r.visit_id)
            })?;
        }
        VisitCmd::Product(ProductCmd::List { visit }) => {
            let t = store.visit_treatment(&visit)?;
            let list: Vec<_> = t
                .products
                .iter()
                .map(|(id, p)| serde_json::json!({"record_id": id, "product": p}))
                .collect();
            ctx.emit(&list, || {
                t.products
                    .iter()
                    .map(|(id, p)| {
                        one_line(&format!(
                            "{id}  {} lot {} (expires {})",
                            p.product, p.lot, p.expiry
                        ))
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            })?;
        }
        VisitCmd::Response {
            visit,
            findings,
            note,
        } => {
            let r = store.record_response(&visit, &findings, note.as_deref())?;
            let sameframe::records::treatment::Body::Response(resp) = &r.body else {
                anyhow::bail!("internal: not a response record");
            };
            for w in resp.warnings() {
                ctx.note(&format!("WARNING: {w}"));
            }
            ctx.emit(&r, || {
                format!("skin response recorded as {} at visit {}", r.id, r.visit_id)
            })?;
        }
        VisitCmd::Pain {
            visit,
            score,
            when,
            comment,
        } => {
            let r = store.record_pain(&visit, score, when, comment.as_deref())?;
            ctx.emit(&r, || {
                format!(
                    "pain {score}/10 {when} recorded as {} at visit {}",
                    r.id, r.visit_id
                )
            })?;
        }
        VisitCmd::Outcome {
            visit,
            patient_gais,
            clinician_gais,
            satisfaction,
            text,
        } => {
            let success = store.treatment_config()?.treatment.success;
            ctx.note(&format!("the clinic's definition of success: {success}"));
            let r = store.record_outcome(
                &visit,
                patient_gais,
                clinician_gais,
                satisfaction,
                text.as_deref(),
            )?;
            ctx.emit(&r, || {
                format!("outcome recorded as {} at visit {}", r.id, r.visit_id)
            })?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show(ctx: &Ctx, store: &sameframe::store::Store, id: &str, html: Option<PathBuf>) -> Result<()> {
    let v = store.visit(id)?;
    let t = store.visit_treatment(&v.id)?;
    if let Some(out) = &html {
        check_output(store, out)?;
        let (page, shown) = store.visit_summary_html(&v.id)?;
        sameframe::records::capture::write_file_atomic(out, page.as_bytes())?;
        // The page holds pictures of these captures: a copy a withdrawal must list.
        for c in &shown {
            store.record_derived_export(c, out, Scope::Clinical, "html", page.len() as u64)?;
        }
        ctx.note(&format!("visit summary written to {}", out.display()));
    }
    // The visit's own fields as before, with its treatment record beside them.
    let mut value = serde_json::to_value(&v)?;
    value["treatment"] = serde_json::to_value(&t)?;
    ctx.emit(&value, || {
        let mut lines = vec![format!(
            "visit {} — patient {} — {} on {}\n  technique {}\n  clinician {}",
            v.id,
            v.patient_id,
            v.area,
            v.date,
            v.technique.as_deref().unwrap_or("-"),
            v.clinician.as_deref().unwrap_or("-"),
        )];
        if let (Some(p), true) = (&v.product, t.products.is_empty()) {
            lines.push(format!(
                "  product {p} lot {} (expires {})",
                v.lot.as_deref().unwrap_or("-"),
                v.lot_expiry.as_deref().unwrap_or("-")
            ));
        }
        for (_, p) in &t.products {
            lines.push(format!(
                "  product {} lot {} (expires {})",
                p.product, p.lot, p.expiry
            ));
        }
        for (_, m) in &t.maps {
            lines.push(format!(
                "  map on {}: {} zones, {} injection points",
                m.capture_id,
                m.zones.len(),
                m.points.len()
            ));
        }
        for (_, r) in &t.responses {
            let f: Vec<String> = r
                .findings
                .iter()
                .map(|f| format!("{} {}", f.response, f.severity))
                .collect();
            lines.push(format!("  skin response: {}", f.join(", ")));
            for w in r.warnings() {
                lines.push(format!("  WARNING: {w}"));
            }
        }
        for (_, p) in &t.pain {
            lines.push(format!("  pain {}/10 {}", p.score, p.when));
        }
        for (_, o) in &t.outcomes {
            lines.push(format!(
                "  outcome: GAIS patient {:?} clinician {:?}, satisfaction {:?}",
                o.patient_gais, o.clinician_gais, o.satisfaction
            ));
        }
        for (id, a) in &t.adverse {
            lines.push(format!(
                "  adverse event {id}: {} ({}){}",
                a.description,
                a.severity,
                if a.escalated { ", escalated" } else { "" }
            ));
        }
        lines.join("\n")
    })
}
