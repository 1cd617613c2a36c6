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
//!
//! In an encrypted store each entry is also **sealed** (`details.seal`, a MAC under a key
//! derived from the store key; see [`super::seal`]), so the chain cannot be rewritten and
//! re-hashed by someone without the key; once one entry is sealed, every later one must be.
//! Entries that change rows the rules read carry those rows' MACs (see [`super::state`]).

use serde::Serialize;
use serde_json::Value;

use super::StoreError;
use super::repo::{AuditRepo, AuditRow};
use super::seal::RecordSeal;
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
    /// The first sealed entry (`None`: no entry is sealed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed_from: Option<i64>,
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

/// The hash of an entry: SHA-256 of its fields and the previous hash, as a JSON array of the
/// stored text (an audit pack is checked with it, offline).
pub fn entry_hash(
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

/// What an entry's seal covers.
fn seal_text(
    seq: i64,
    at: &str,
    actor: &str,
    action: &str,
    subjects: &str,
    details_unsealed: &str,
    prev: &str,
) -> Vec<u8> {
    serde_json::json!([seq, at, actor, action, subjects, details_unsealed, prev])
        .to_string()
        .into_bytes()
}

/// Append an entry, sealed with `seal` when the store is encrypted. Call inside the unit of
/// work that makes the change, so the change and its record commit together; the backend
/// holds the store's write lock, so the chain stays one chain whichever station writes.
pub fn append(
    repo: &mut (impl AuditRepo + ?Sized),
    store_id: &str,
    actor: &str,
    action: &str,
    subjects: Value,
    details: Value,
    seal: Option<&RecordSeal>,
) -> Result<AuditEntry, StoreError> {
    let (seq, prev_hash) = match repo.audit_head()? {
        Some((s, h)) => (s + 1, h),
        None => (1, genesis(store_id)),
    };
    let at = crate::timefmt::now_utc();
    let subjects_text = subjects.to_string();
    let mut details = match details {
        Value::Object(m) => Value::Object(m),
        Value::Null => Value::Object(Default::default()),
        other => serde_json::json!({ "value": other }),
    };
    let unsealed = details.to_string();
    let mac = seal.and_then(|s| {
        s.entry_seal(&seal_text(
            seq,
            &at,
            actor,
            action,
            &subjects_text,
            &unsealed,
            &prev_hash,
        ))
    });
    if let (Some(mac), Some(m)) = (mac, details.as_object_mut()) {
        m.insert("seal".into(), Value::String(mac));
    }
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
    repo.insert_audit(&AuditRow {
        seq,
        at: at.clone(),
        actor: actor.to_string(),
        action: action.to_string(),
        subjects: subjects_text,
        details: details_text,
        prev_hash: prev_hash.clone(),
        hash: hash.clone(),
    })?;
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

fn entry_of(r: AuditRow) -> AuditEntry {
    AuditEntry {
        seq: r.seq,
        subjects: serde_json::from_str(&r.subjects).unwrap_or(Value::String(r.subjects)),
        details: serde_json::from_str(&r.details).unwrap_or(Value::String(r.details)),
        at: r.at,
        actor: r.actor,
        action: r.action,
        prev_hash: r.prev_hash,
        hash: r.hash,
    }
}

/// Read entries in order.
pub fn read(
    repo: &mut (impl AuditRepo + ?Sized),
    filter: &LogFilter,
) -> Result<Vec<AuditEntry>, StoreError> {
    let mut out = Vec::new();
    repo.each_audit(&mut |r| {
        let e = entry_of(r);
        let action_ok = filter
            .action_prefix
            .as_ref()
            .is_none_or(|p| e.action.starts_with(p.as_str()));
        let subject_ok = filter
            .subject
            .as_ref()
            .is_none_or(|s| mentions(&e.subjects, s));
        if action_ok && subject_ok {
            out.push(e);
        }
        Ok(())
    })?;
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

/// Recompute every hash from the stored text and report the first entry that does not fit;
/// with `seal` (an encrypted store), check every seal too.
pub fn verify(
    repo: &mut (impl AuditRepo + ?Sized),
    store_id: &str,
    seal: Option<&RecordSeal>,
) -> Result<ChainCheck, StoreError> {
    verify_each(repo, store_id, seal, &mut |_| {})
}

/// [`verify`], handing each entry that fits to `each` in order (to replay the state).
pub fn verify_each(
    repo: &mut (impl AuditRepo + ?Sized),
    store_id: &str,
    seal: Option<&RecordSeal>,
    each: &mut dyn FnMut(&AuditRow),
) -> Result<ChainCheck, StoreError> {
    let mut expected_prev = genesis(store_id);
    let mut expected_seq = 1i64;
    let mut entries = 0i64;
    let mut head = None;
    let mut broken: Option<BrokenEntry> = None;
    let mut sealed_from: Option<i64> = None;
    repo.each_audit(&mut |r| {
        if broken.is_some() {
            return Ok(());
        }
        entries += 1;
        let fail = |reason: String| Some(BrokenEntry { seq: r.seq, reason });
        if r.seq != expected_seq {
            broken = fail(format!(
                "entry {expected_seq} is missing (next entry is {})",
                r.seq
            ));
        } else if r.prev_hash != expected_prev {
            broken = fail(
                "its previous-hash does not match the entry before it (an entry was removed or replaced)"
                    .into(),
            );
        } else if entry_hash(
            r.seq,
            &r.at,
            &r.actor,
            &r.action,
            &r.subjects,
            &r.details,
            &r.prev_hash,
        ) != r.hash
        {
            broken = fail("its content does not match its hash (the entry was edited)".into());
        } else if let Some(why) = seal.and_then(|s| seal_problem(&r, s, &mut sealed_from)) {
            broken = fail(why);
        } else {
            expected_prev = r.hash.clone();
            expected_seq += 1;
            each(&r);
            head = Some(r.hash);
        }
        Ok(())
    })?;
    Ok(match broken {
        Some(b) => ChainCheck {
            entries,
            ok: false,
            head_hash: None,
            first_broken: Some(b),
            sealed_from,
        },
        None => ChainCheck {
            entries,
            ok: true,
            head_hash: head,
            first_broken: None,
            sealed_from,
        },
    })
}

/// What is wrong with entry `r`'s seal, if anything. Entries before the first sealed one are
/// from before entries were sealed; after it, every entry must carry a seal that fits.
fn seal_problem(r: &AuditRow, seal: &RecordSeal, sealed_from: &mut Option<i64>) -> Option<String> {
    let mut details: Value = serde_json::from_str(&r.details).ok()?;
    let mac = details
        .as_object_mut()
        .and_then(|m| m.remove("seal"))
        .and_then(|v| v.as_str().map(str::to_string));
    let Some(mac) = mac else {
        return sealed_from.map(|first| {
            format!("it is not sealed, though every entry from {first} on must be (rewritten without the store key)")
        });
    };
    let want = seal.entry_seal(&seal_text(
        r.seq,
        &r.at,
        &r.actor,
        &r.action,
        &r.subjects,
        &details.to_string(),
        &r.prev_hash,
    ));
    if want.as_deref() != Some(mac.as_str()) {
        return Some(
            "its seal does not fit (written without the store key, or by another store)".into(),
        );
    }
    sealed_from.get_or_insert(r.seq);
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::repo::RepoResult;
    use serde_json::json;

    /// The chain's rows in memory.
    #[derive(Default)]
    struct Rows(Vec<AuditRow>);

    impl AuditRepo for Rows {
        fn audit_head(&mut self) -> RepoResult<Option<(i64, String)>> {
            Ok(self.0.last().map(|r| (r.seq, r.hash.clone())))
        }
        fn insert_audit(&mut self, row: &AuditRow) -> RepoResult<()> {
            self.0.push(row.clone());
            Ok(())
        }
        fn each_audit(&mut self, f: &mut dyn FnMut(AuditRow) -> RepoResult<()>) -> RepoResult<()> {
            self.0.iter().cloned().try_for_each(f)
        }
    }

    #[test]
    fn chain_detects_edit_delete_and_reorder() {
        let mut c = Rows::default();
        for i in 0..5 {
            append(
                &mut c,
                "s1",
                "ana",
                "capture.import",
                json!({"capture": format!("cap_{i}")}),
                json!({}),
                None,
            )
            .unwrap();
        }
        let ok = verify(&mut c, "s1", None).unwrap();
        assert!(ok.ok && ok.entries == 5);
        assert!(
            !verify(&mut c, "s2", None).unwrap().ok,
            "a chain is bound to its store"
        );
        c.0[2].actor = "mallory".into();
        let bad = verify(&mut c, "s1", None).unwrap();
        assert_eq!(bad.first_broken.unwrap().seq, 3);

        let mut c = Rows::default();
        for i in 0..4 {
            append(&mut c, "s1", "ana", "x", json!({"n": i}), json!({}), None).unwrap();
        }
        c.0.remove(1);
        let bad = verify(&mut c, "s1", None).unwrap();
        assert_eq!(bad.first_broken.unwrap().seq, 3);

        let mut c = Rows::default();
        for i in 0..3 {
            append(&mut c, "s1", "ana", "x", json!({"n": i}), json!({}), None).unwrap();
        }
        c.0.swap(1, 2);
        assert!(!verify(&mut c, "s1", None).unwrap().ok, "reordered entries");
    }

    #[test]
    fn filters_select_by_subject_and_action() {
        let mut c = Rows::default();
        append(
            &mut c,
            "s",
            "a",
            "consent.grant",
            json!({"consent": "con_1"}),
            json!({}),
            None,
        )
        .unwrap();
        append(
            &mut c,
            "s",
            "a",
            "capture.import",
            json!({"consent": "con_1", "capture": "cap_1"}),
            json!({}),
            None,
        )
        .unwrap();
        append(
            &mut c,
            "s",
            "a",
            "capture.import",
            json!({"consent": "con_2"}),
            json!({}),
            None,
        )
        .unwrap();
        let f = LogFilter {
            subject: Some("con_1".into()),
            ..Default::default()
        };
        assert_eq!(read(&mut c, &f).unwrap().len(), 2);
        let f = LogFilter {
            action_prefix: Some("capture.".into()),
            tail: Some(1),
            ..Default::default()
        };
        let r = read(&mut c, &f).unwrap();
        assert_eq!((r.len(), r[0].seq), (1, 3));
    }

    #[test]
    fn sealed_entries_cannot_be_rewritten_without_the_key() {
        let key = crate::store::crypto::SecretKey::generate().unwrap();
        let seal = RecordSeal::keyed("s1", &key);
        let mut c = Rows::default();
        append(
            &mut c,
            "s1",
            "ana",
            "store.init",
            json!({}),
            json!({}),
            None,
        )
        .unwrap();
        for i in 0..4 {
            let details = json!({"n": i, "f": 0.1 * f64::from(i)});
            append(
                &mut c,
                "s1",
                "ana",
                "x",
                json!({"n": i}),
                details,
                Some(&seal),
            )
            .unwrap();
        }
        let ok = verify(&mut c, "s1", Some(&seal)).unwrap();
        assert!(ok.ok, "{ok:?}");
        assert_eq!(ok.sealed_from, Some(2));
        // Rewrite entry 3's details and re-hash the chain from there: the seal gives it away.
        let mut forged = c.0[..2].to_vec();
        let mut tail = Rows(forged.clone());
        for (k, r) in c.0[2..].iter().enumerate() {
            let d = if k == 0 {
                json!({"n": 99})
            } else {
                serde_json::from_str(&r.details).unwrap()
            };
            append(
                &mut tail,
                "s1",
                &r.actor,
                &r.action,
                json!({"n": k}),
                d,
                None,
            )
            .unwrap();
        }
        forged = tail.0;
        let mut f = Rows(forged);
        let bad = verify(&mut f, "s1", Some(&seal)).unwrap();
        assert_eq!(bad.first_broken.unwrap().seq, 3);
        // Another store's key: the first sealed entry fails.
        let other = RecordSeal::keyed("s1", &crate::store::crypto::SecretKey::generate().unwrap());
        assert_eq!(
            verify(&mut c, "s1", Some(&other))
                .unwrap()
                .first_broken
                .unwrap()
                .seq,
            2
        );
    }
}
