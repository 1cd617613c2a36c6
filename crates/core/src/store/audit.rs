//! The tamper-evident audit chain.
//!
//! Every create, withdrawal, export, purge and failed verification appends an entry whose hash
//! covers the previous entry's hash:
//!
//! ```text
//! hash_n = SHA-256( JSON [seq, at, actor, action, subjects, details, hash_{n-1}] )
//! ```
//!
//! where `subjects` and `details` are the JSON texts exactly as stored and `hash_0` is derived
//! from the store ID. Editing, inserting, reordering or deleting an entry breaks the chain at
//! that entry; `audit verify` reports the first break. Entries name opaque IDs and hashes, never
//! a patient's name.

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;

use crate::ids::sha256_hex;

/// One entry of the chain.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub subjects: Value,
    pub details: Value,
    pub prev_hash: String,
    pub hash: String,
}

/// The outcome of checking the whole chain.
#[derive(Clone, Debug, Serialize)]
pub struct ChainCheck {
    pub entries: i64,
    pub ok: bool,
    pub head_hash: Option<String>,
    pub first_broken: Option<BrokenEntry>,
}

/// Where and why the chain breaks.
#[derive(Clone, Debug, Serialize)]
pub struct BrokenEntry {
    pub seq: i64,
    pub reason: String,
}

/// The hash that precedes the first entry of the store `store_id`.
pub fn genesis(store_id: &str) -> String {
    sha256_hex(format!("sameframe audit genesis {store_id}").as_bytes())
}

fn entry_hash(
    seq: i64,
    at: &str,
    actor: &str,
    action: &str,
    subjects: &str,
    details: &str,
    prev: &str,
) -> String {
    let canonical = serde_json::json!([seq, at, actor, action, subjects, details, prev]);
    sha256_hex(canonical.to_string().as_bytes())
}

/// Append an entry. Call inside the transaction that makes the change, so the change and its
/// record commit together; the caller holds the write lock (`BEGIN IMMEDIATE`).
pub fn append(
    conn: &Connection,
    store_id: &str,
    actor: &str,
    action: &str,
    subjects: Value,
    details: Value,
) -> rusqlite::Result<AuditEntry> {
    let last: Option<(i64, String)> = conn
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (seq, prev_hash) = match last {
        Some((s, h)) => (s + 1, h),
        None => (1, genesis(store_id)),
    };
    let at = crate::timefmt::now_utc();
    let subjects_text = subjects.to_string();
    let details_text = details.to_string();
    let hash = entry_hash(
        seq,
        &at,
        actor,
        action,
        &subjects_text,
        &details_text,
        &prev_hash,
    );
    conn.execute(
        "INSERT INTO audit (seq, at, actor, action, subjects, details, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            seq,
            at,
            actor,
            action,
            subjects_text,
            details_text,
            prev_hash,
            hash
        ],
    )?;
    Ok(AuditEntry {
        seq,
        at,
        actor: actor.to_string(),
        action: action.to_string(),
        subjects,
        details,
        prev_hash,
        hash,
    })
}

/// A filter for reading the log.
#[derive(Clone, Debug, Default)]
pub struct LogFilter {
    /// Only entries whose subjects mention this ID or hash.
    pub subject: Option<String>,
    /// Only entries whose action starts with this prefix (e.g. `consent.`).
    pub action_prefix: Option<String>,
    /// The last N entries.
    pub tail: Option<usize>,
}

/// Read entries in order.
pub fn read(conn: &Connection, filter: &LogFilter) -> rusqlite::Result<Vec<AuditEntry>> {
    let mut stmt = conn.prepare(
        "SELECT seq, at, actor, action, subjects, details, prev_hash, hash FROM audit ORDER BY seq",
    )?;
    let rows = stmt.query_map([], |r| {
        let subjects: String = r.get(4)?;
        let details: String = r.get(5)?;
        Ok(AuditEntry {
            seq: r.get(0)?,
            at: r.get(1)?,
            actor: r.get(2)?,
            action: r.get(3)?,
            subjects: serde_json::from_str(&subjects).unwrap_or(Value::String(subjects)),
            details: serde_json::from_str(&details).unwrap_or(Value::String(details)),
            prev_hash: r.get(6)?,
            hash: r.get(7)?,
        })
    })?;
    let mut out = Vec::new();
    for e in rows {
        let e = e?;
        if let Some(p) = &filter.action_prefix
            && !e.action.starts_with(p.as_str())
        {
            continue;
        }
        if let Some(s) = &filter.subject
            && !mentions(&e.subjects, s)
        {
            continue;
        }
        out.push(e);
    }
    if let Some(n) = filter.tail {
        let skip = out.len().saturating_sub(n);
        out.drain(..skip);
    }
    Ok(out)
}

fn mentions(v: &Value, needle: &str) -> bool {
    match v {
        Value::String(s) => s == needle,
        Value::Array(a) => a.iter().any(|x| mentions(x, needle)),
        Value::Object(o) => o.values().any(|x| mentions(x, needle)),
        _ => false,
    }
}

/// Recompute every hash from the stored text and report the first entry that does not fit.
pub fn verify(conn: &Connection, store_id: &str) -> rusqlite::Result<ChainCheck> {
    let mut stmt = conn.prepare(
        "SELECT seq, at, actor, action, subjects, details, prev_hash, hash FROM audit ORDER BY seq",
    )?;
    let mut rows = stmt.query([])?;
    let mut expected_prev = genesis(store_id);
    let mut expected_seq = 1i64;
    let mut entries = 0i64;
    let mut head = None;
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(0)?;
        let at: String = r.get(1)?;
        let actor: String = r.get(2)?;
        let action: String = r.get(3)?;
        let subjects: String = r.get(4)?;
        let details: String = r.get(5)?;
        let prev: String = r.get(6)?;
        let hash: String = r.get(7)?;
        entries += 1;
        let broken = |reason: String| ChainCheck {
            entries,
            ok: false,
            head_hash: None,
            first_broken: Some(BrokenEntry { seq, reason }),
        };
        if seq != expected_seq {
            return Ok(broken(format!(
                "entry {expected_seq} is missing (next entry is {seq})"
            )));
        }
        if prev != expected_prev {
            return Ok(broken(
                "its previous-hash does not match the entry before it (an entry was removed or replaced)"
                    .into(),
            ));
        }
        let recomputed = entry_hash(seq, &at, &actor, &action, &subjects, &details, &prev);
        if recomputed != hash {
            return Ok(broken(
                "its content does not match its hash (the entry was edited)".into(),
            ));
        }
        expected_prev = hash.clone();
        expected_seq += 1;
        head = Some(hash);
    }
    Ok(ChainCheck {
        entries,
        ok: true,
        head_hash: head,
        first_broken: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn db() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch(
            "CREATE TABLE audit (seq INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL,
             action TEXT NOT NULL, subjects TEXT NOT NULL, details TEXT NOT NULL,
             prev_hash TEXT NOT NULL, hash TEXT NOT NULL)",
        )
        .unwrap();
        c
    }

    #[test]
    fn chain_detects_edit_delete_and_reorder() {
        let c = db();
        for i in 0..5 {
            append(
                &c,
                "s1",
                "ana",
                "capture.import",
                json!({"capture": format!("cap_{i}")}),
                json!({}),
            )
            .unwrap();
        }
        let ok = verify(&c, "s1").unwrap();
        assert!(ok.ok && ok.entries == 5);
        assert!(
            !verify(&c, "s2").unwrap().ok,
            "a chain is bound to its store"
        );

        c.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 3", [])
            .unwrap();
        let bad = verify(&c, "s1").unwrap();
        assert_eq!(bad.first_broken.unwrap().seq, 3);

        let c = db();
        for i in 0..4 {
            append(&c, "s1", "ana", "x", json!({"n": i}), json!({})).unwrap();
        }
        c.execute("DELETE FROM audit WHERE seq = 2", []).unwrap();
        let bad = verify(&c, "s1").unwrap();
        assert_eq!(bad.first_broken.unwrap().seq, 3);
    }

    #[test]
    fn filters_select_by_subject_and_action() {
        let c = db();
        append(
            &c,
            "s",
            "a",
            "consent.grant",
            json!({"consent": "con_1"}),
            json!({}),
        )
        .unwrap();
        append(
            &c,
            "s",
            "a",
            "capture.import",
            json!({"consent": "con_1", "capture": "cap_1"}),
            json!({}),
        )
        .unwrap();
        append(
            &c,
            "s",
            "a",
            "capture.import",
            json!({"consent": "con_2"}),
            json!({}),
        )
        .unwrap();
        let f = LogFilter {
            subject: Some("con_1".into()),
            ..Default::default()
        };
        assert_eq!(read(&c, &f).unwrap().len(), 2);
        let f = LogFilter {
            action_prefix: Some("capture.".into()),
            tail: Some(1),
            ..Default::default()
        };
        let r = read(&c, &f).unwrap();
        assert_eq!((r.len(), r[0].seq), (1, 3));
    }
}
