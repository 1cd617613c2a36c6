//! Products and lots used at a visit, each with its expiry. An expired lot is refused unless
//! the clinician gives a reason, which is kept and audited.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Body, TreatmentRecord, invalid, line};
use crate::records::RecordError;
use crate::store::Store;
use crate::timefmt::{fmt_date, parse_date};

/// A product and lot used at a visit.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProductUse {
    pub product: String,
    pub lot: String,
    /// `YYYY-MM-DD`.
    pub expiry: String,
    /// Amount used, in `unit` (ml, U, vials…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// Why an expired lot was used anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expired_override: Option<String>,
}

/// A product to record at a visit.
#[derive(Clone, Debug)]
pub struct NewProduct<'a> {
    pub visit_id: &'a str,
    pub product: &'a str,
    pub lot: &'a str,
    pub expiry: NaiveDate,
    pub quantity: Option<f64>,
    pub unit: Option<&'a str>,
    /// Record an expired lot anyway, for this reason.
    pub expired_reason: Option<&'a str>,
}

/// Check a product use against the visit date; the record to keep.
pub fn check(new: &NewProduct<'_>, visit_date: &str) -> Result<ProductUse, RecordError> {
    let product = line("--product", new.product)?;
    let lot = line("--lot", new.lot)?;
    if product.is_empty() {
        return Err(invalid("--product", "the product name is empty"));
    }
    if lot.is_empty() {
        return Err(invalid("--lot", "the lot number is empty"));
    }
    if let Some(q) = new.quantity
        && !(q.is_finite() && q > 0.0 && q < 10_000.0)
    {
        return Err(invalid(
            "--quantity",
            format!("{q} is not an amount (more than 0, less than 10000)"),
        ));
    }
    let unit = new.unit.map(|u| line("--unit", u)).transpose()?;
    let reason = new
        .expired_reason
        .map(|r| line("--expired-lot-reason", r))
        .transpose()?
        .filter(|r| !r.is_empty());
    let day = parse_date(visit_date).unwrap_or_else(crate::timefmt::today);
    if new.expiry < day && reason.is_none() {
        return Err(invalid(
            &format!("lot {lot}"),
            format!(
                "{product} lot {lot} expired on {}, before the visit date {}: an expired lot is not recorded (if it was really used, say why with --expired-lot-reason)",
                fmt_date(new.expiry),
                fmt_date(day)
            ),
        ));
    }
    Ok(ProductUse {
        product,
        lot,
        expiry: fmt_date(new.expiry),
        quantity: new.quantity,
        unit,
        expired_override: if new.expiry < day { reason } else { None },
    })
}

impl Store {
    /// Record a product and lot used at a visit.
    pub fn add_product(&self, new: NewProduct<'_>) -> Result<TreatmentRecord, RecordError> {
        let visit = self.visit(new.visit_id)?;
        let p = check(&new, &visit.date)?;
        let t = self.visit_treatment(&visit.id)?;
        if t.products
            .iter()
            .any(|(_, q)| q.product == p.product && q.lot == p.lot)
        {
            return Err(invalid(
                &format!("lot {}", p.lot),
                format!(
                    "{} lot {} is already recorded at visit {}",
                    p.product, p.lot, visit.id
                ),
            ));
        }
        let consent = self.clinical_consent(&visit, None)?;
        let details = json!({ "lot": p.lot, "expiry": p.expiry,
                              "expired_override": p.expired_override });
        self.add_treatment(&visit, consent, Body::Product(p), details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new<'a>(expiry: &str, reason: Option<&'a str>) -> NewProduct<'a> {
        NewProduct {
            visit_id: "vis_1",
            product: " Profhilo ",
            lot: "L2311",
            expiry: parse_date(expiry).unwrap(),
            quantity: Some(2.0),
            unit: Some("ml"),
            expired_reason: reason,
        }
    }

    #[test]
    fn an_expired_lot_is_refused_unless_a_reason_is_given() {
        let e = check(&new("2026-01-31", None), "2026-02-01").unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("L2311") && m.contains("expired on 2026-01-31"),
            "{m}"
        );
        let p = check(&new("2026-01-31", Some("recall checked")), "2026-02-01").unwrap();
        assert_eq!(p.expired_override.as_deref(), Some("recall checked"));
        let p = check(&new("2026-02-01", None), "2026-02-01").unwrap();
        assert_eq!((p.product.as_str(), p.expired_override), ("Profhilo", None));
    }

    #[test]
    fn amounts_must_be_amounts() {
        for q in [0.0, -1.0, f64::NAN, 1e9] {
            let mut n = new("2027-01-01", None);
            n.quantity = Some(q);
            assert!(check(&n, "2026-02-01").is_err(), "{q}");
        }
    }
}
