//! The rows the rules read, bound to the audit chain.
//!
//! Sealed bodies stop a row being edited or moved (see [`super::seal`]), but not being
//! deleted, inserted, or put back as an older copy of itself (a consent from before its
//! withdrawal). So each unit of work that changes a **bound** row (patients, consents, visits,
//! treatment records, captures, exports, publications, settings, tombstones, data keys) records the row's MAC in
//! its audit entry, under `details.state` (`"table/id"` → MAC, or `null` once the row is gone),
//! and the entry itself is sealed. `audit verify` replays the chain into the state it
//! describes and compares every bound row with it: a row the chain does not know, a row that
//! differs from its last recorded MAC, and a row the chain says exists but is missing are each
//! reported, with the table and the ID.
//!
//! Tombstones (the record of what a withdrawal purged) are only ever added, and have no ID of
//! their own: the table is bound as a whole (`"tombstone/*"`, a MAC over every row in order).
//!
//! A store written before rows were bound is bound once, in full (`details.state_full`), when
//! it is first opened with its key.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Map, Value};

use super::StoreError;
use super::repo::{AuditRow, Cell, Repos};
use super::seal::RecordSeal;

/// The tables whose rows are bound to the chain.
pub const BOUND: &[&str] = &[
    "patient",
    "consent",
    "visit",
    "treatment",
    "capture",
    "export",
    "publication",
    "setting",
    "tombstone",
    "data_key",
];

/// The tables bound as a whole, and the ID that stands for "the whole table".
const WHOLE: &[&str] = &["tombstone"];
pub const WHOLE_TABLE: &str = "*";

/// Rows a unit of work changed: (table, ID).
#[derive(Clone, Debug, Default)]
pub struct Touched(BTreeSet<(&'static str, String)>);

impl Touched {
    /// Note a change to row `id` of `table`.
    pub fn add(&mut self, table: &'static str, id: &str) {
        self.0.insert((table, id.to_string()));
    }

    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Page size when reading whole tables.
const PAGE: usize = 1000;

/// Call `f` with every row of bound table `table`: its ID and cells.
fn each_row(
    r: &mut dyn Repos,
    table: &'static str,
    f: &mut dyn FnMut(String, &[Cell]),
) -> Result<(), StoreError> {
    let at = r.transfer_id_index(table).unwrap_or(0);
    let mut after: Option<Vec<Cell>> = None;
    loop {
        let rows = r.transfer_rows(table, after.as_deref(), PAGE)?;
        for row in &rows {
            let id = match row.get(at) {
                Some(Cell::Text(t)) => t.clone(),
                Some(Cell::Int(i)) => i.to_string(),
                other => format!("{other:?}"),
            };
            f(id, row);
        }
        match rows.last() {
            Some(last) if rows.len() == PAGE => after = Some(last.clone()),
            _ => return Ok(()),
        }
    }
}

/// Every bound row, to bind a store in full.
pub fn all_rows(r: &mut dyn Repos) -> Result<Touched, StoreError> {
    let mut t = Touched::default();
    for table in BOUND {
        if WHOLE.contains(table) {
            t.add(table, WHOLE_TABLE);
        } else {
            each_row(r, table, &mut |id, _| t.add(table, &id))?;
        }
    }
    Ok(t)
}

/// The MAC of a table bound as a whole: every row's cells, in order (`None`: no rows).
fn whole_mac(
    r: &mut dyn Repos,
    seal: &RecordSeal,
    table: &'static str,
) -> Result<Option<String>, StoreError> {
    let mut cells = Vec::new();
    let mut rows = 0usize;
    each_row(r, table, &mut |_, row| {
        rows += 1;
        cells.extend_from_slice(row);
    })?;
    Ok((rows > 0).then(|| seal.row_mac(table, WHOLE_TABLE, &cells)))
}

/// The MACs of the changed rows as they are now (`null` for a row that is gone).
pub fn state_of(
    r: &mut dyn Repos,
    seal: &RecordSeal,
    touched: &Touched,
) -> Result<Map<String, Value>, StoreError> {
    let mut out = Map::new();
    for (table, id) in &touched.0 {
        let mac = if id == WHOLE_TABLE {
            whole_mac(r, seal, table)?
        } else {
            r.transfer_row(table, id)?
                .map(|cells| seal.row_mac(table, id, &cells))
        };
        out.insert(
            format!("{table}/{id}"),
            mac.map_or(Value::Null, Value::String),
        );
    }
    Ok(out)
}

/// True when some entry of the chain records row state (the store is bound).
pub fn chain_is_bound(r: &mut dyn Repos) -> Result<bool, StoreError> {
    let mut bound = false;
    r.each_audit(&mut |row| {
        bound = bound
            || serde_json::from_str::<Value>(&row.details).is_ok_and(|d| d.get("state").is_some());
        Ok(())
    })?;
    Ok(bound)
}

/// The state an audit chain describes: `"table/id"` → the row's last MAC (`None`: gone).
#[derive(Clone, Debug, Default)]
pub struct Replay {
    pub rows: BTreeMap<String, Option<String>>,
    /// True once any entry recorded state.
    pub bound: bool,
}

impl Replay {
    /// Apply one entry, in chain order.
    pub fn apply(&mut self, row: &AuditRow) {
        let Ok(details) = serde_json::from_str::<Value>(&row.details) else {
            return;
        };
        let Some(state) = details.get("state").and_then(Value::as_object) else {
            return;
        };
        if details.get("state_full").and_then(Value::as_bool) == Some(true) {
            self.rows.clear();
        }
        self.bound = true;
        for (k, v) in state {
            self.rows.insert(k.clone(), v.as_str().map(str::to_string));
        }
    }
}

/// One row that is not as the chain says.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct StateProblem {
    pub table: String,
    pub id: String,
    pub problem: String,
}

/// The bound rows compared with the chain.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StateCheck {
    /// False for a store not yet bound (written before rows were bound, not yet opened with
    /// its key since).
    pub bound: bool,
    pub rows_checked: usize,
    pub problems: Vec<StateProblem>,
}

impl StateCheck {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Compare every bound row with the state `replay` describes.
pub fn check(
    r: &mut dyn Repos,
    seal: &RecordSeal,
    replay: &Replay,
) -> Result<StateCheck, StoreError> {
    let mut out = StateCheck {
        bound: replay.bound,
        ..Default::default()
    };
    if !replay.bound {
        return Ok(out);
    }
    let mut seen = BTreeSet::new();
    for table in BOUND {
        if WHOLE.contains(table) {
            let key = format!("{table}/{WHOLE_TABLE}");
            let now = whole_mac(r, seal, table)?;
            let recorded = replay.rows.get(&key).cloned().flatten();
            if now != recorded {
                out.problems.push(StateProblem {
                    table: table.to_string(),
                    id: WHOLE_TABLE.into(),
                    problem: "is not as the audit log last recorded it (rows added, removed or edited outside sameframe)".into(),
                });
            }
            seen.insert(key);
            continue;
        }
        each_row(r, table, &mut |id, cells| {
            out.rows_checked += 1;
            let key = format!("{table}/{id}");
            let problem = match replay.rows.get(&key) {
                None => Some("is not in the audit log (added outside sameframe)"),
                Some(None) => Some("was deleted, yet is here (put back outside sameframe)"),
                Some(Some(mac)) if *mac != seal.row_mac(table, &id, cells) => Some(
                    "is not as the audit log last recorded it (edited outside sameframe, or put back from an older copy)",
                ),
                Some(Some(_)) => None,
            };
            if let Some(p) = problem {
                out.problems.push(StateProblem {
                    table: table.to_string(),
                    id: id.clone(),
                    problem: p.into(),
                });
            }
            seen.insert(key);
        })?;
    }
    for (key, mac) in &replay.rows {
        if mac.is_some() && !seen.contains(key) {
            let (table, id) = key.split_once('/').unwrap_or((key, ""));
            out.problems.push(StateProblem {
                table: table.to_string(),
                id: id.to_string(),
                problem: "is missing: the audit log records it and no deletion (removed outside sameframe)".into(),
            });
        }
    }
    Ok(out)
}
