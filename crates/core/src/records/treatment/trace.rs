//! The recall query: every patient, visit, map point and capture that used a lot.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Body;
use crate::records::RecordError;
use crate::store::Store;

/// A map point that used the lot.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TracedPoint {
    pub map_record: String,
    pub capture_id: String,
    /// 1-based position of the point in its map.
    pub point: usize,
    pub zone: Option<String>,
    pub x: f64,
    pub y: f64,
}

/// One visit that used the lot.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LotUse {
    pub patient_id: String,
    pub patient_ref: String,
    pub visit_id: String,
    pub visit_date: String,
    pub area: String,
    pub product: String,
    pub expiry: Option<String>,
    /// The product records naming the lot (empty when only the visit's own product field does).
    pub product_records: Vec<String>,
    pub map_points: Vec<TracedPoint>,
    /// Photos taken at the visit.
    pub captures: Vec<String>,
    /// Adverse events linked to the lot at this visit.
    pub adverse_events: Vec<String>,
}

/// `sameframe lot trace`.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LotTrace {
    pub lot: String,
    pub patients: usize,
    pub visits: usize,
    pub uses: Vec<LotUse>,
}

/// The same lot, as people type it: surrounding spaces and letter case do not matter.
pub fn same_lot(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

impl Store {
    /// Every use of `lot`, by visit, oldest first.
    pub fn trace_lot(&self, lot: &str) -> Result<LotTrace, RecordError> {
        let lot = lot.trim();
        if lot.is_empty() {
            return Err(super::invalid("lot", "give a lot number"));
        }
        let mut uses: BTreeMap<String, LotUse> = BTreeMap::new();
        fn entry(
            s: &Store,
            uses: &mut BTreeMap<String, LotUse>,
            visit_id: &str,
        ) -> Result<(), RecordError> {
            if !uses.contains_key(visit_id) {
                let v = s.visit(visit_id)?;
                let p = s.patient_by_id(&v.patient_id)?;
                uses.insert(
                    visit_id.to_string(),
                    LotUse {
                        patient_id: v.patient_id.clone(),
                        patient_ref: p.reference,
                        visit_id: v.id.clone(),
                        visit_date: v.date.clone(),
                        area: v.area.to_string(),
                        product: String::new(),
                        expiry: None,
                        product_records: Vec::new(),
                        map_points: Vec::new(),
                        captures: Vec::new(),
                        adverse_events: Vec::new(),
                    },
                );
            }
            Ok(())
        }
        for row in self.read(|r| r.visits())? {
            let v = self.visit_of(row)?;
            if v.lot.as_deref().is_some_and(|l| same_lot(l, lot)) {
                entry(self, &mut uses, &v.id)?;
                if let Some(u) = uses.get_mut(&v.id) {
                    u.product = v.product.clone().unwrap_or_default();
                    u.expiry = v.lot_expiry.clone();
                }
            }
        }
        for row in self.read(|r| r.treatments(None))? {
            let rec = self.treatment_of(row)?;
            let hit = match &rec.body {
                Body::Product(p) => same_lot(&p.lot, lot),
                Body::Map(m) => m.points.iter().any(|p| same_lot(&p.lot, lot)),
                Body::Adverse(a) => a.lot.as_deref().is_some_and(|l| same_lot(l, lot)),
                _ => false,
            };
            if !hit {
                continue;
            }
            entry(self, &mut uses, &rec.visit_id)?;
            let Some(u) = uses.get_mut(&rec.visit_id) else {
                continue;
            };
            match &rec.body {
                Body::Product(p) => {
                    u.product = p.product.clone();
                    u.expiry = Some(p.expiry.clone());
                    u.product_records.push(rec.id.clone());
                }
                Body::Map(m) => {
                    for (i, p) in m
                        .points
                        .iter()
                        .enumerate()
                        .filter(|(_, p)| same_lot(&p.lot, lot))
                    {
                        if u.product.is_empty() {
                            u.product = p.product.clone();
                        }
                        u.map_points.push(TracedPoint {
                            map_record: rec.id.clone(),
                            capture_id: m.capture_id.clone(),
                            point: i + 1,
                            zone: p.zone.clone(),
                            x: p.x,
                            y: p.y,
                        });
                    }
                }
                Body::Adverse(_) => u.adverse_events.push(rec.id.clone()),
                _ => {}
            }
        }
        for u in uses.values_mut() {
            let rows = self.read(|r| r.captures(Some(&u.patient_id)))?;
            u.captures = rows
                .into_iter()
                .filter(|c| c.visit_id.as_deref() == Some(&u.visit_id))
                .map(|c| c.id)
                .collect();
        }
        let mut uses: Vec<LotUse> = uses.into_values().collect();
        uses.sort_by(|a, b| (&a.visit_date, &a.visit_id).cmp(&(&b.visit_date, &b.visit_id)));
        let patients = uses
            .iter()
            .map(|u| u.patient_id.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        Ok(LotTrace {
            lot: lot.to_string(),
            patients,
            visits: uses.len(),
            uses,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lots_match_whole_not_by_prefix() {
        assert!(same_lot(" l2311 ", "L2311"));
        assert!(!same_lot("L231", "L2311"));
        assert!(!same_lot("L2311A", "L2311"));
    }
}
