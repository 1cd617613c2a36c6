//! Sealed record bodies and keyed lookups: how patient text stays private and rows stay honest
//! in any backend.
//!
//! A record about a patient (the patient, their consents and visits, captures, publications)
//! and each setting is stored as a few plain columns that queries need (opaque IDs, hashes,
//! the series) and a **body**: the whole record as JSON, sealed with XChaCha20-Poly1305 under
//! the store's record key, with the store, the table and the row's ID as associated data:
//!
//! ```text
//! body = "SFREC\0\x01\0" || nonce || ciphertext || tag      AAD = store_id \0 table \0 id
//! record key = HMAC-SHA256(master key, "sameframe record key v1" \0 store_id)
//! ```
//!
//! So a database (or a server's administrator) never sees a name, a reference, a signer or a
//! note in clear, and a body cannot be edited, or moved to another row, without failing to
//! open. The plain columns are checked against the body on every read, so moving a capture to
//! another consent by editing a column is caught too.
//!
//! A lookup by value (the patient reference) uses a keyed hash of its normalised form:
//! `HMAC-SHA256(lookup key, value)`, with the lookup key derived like the record key.
//!
//! The same master key authenticates the store's history (see [`super::state`]): each row a
//! rule reads has a **row MAC** that the audit entry recording its change carries, and each
//! audit entry a **seal**, so neither can be rewritten without the key:
//!
//! ```text
//! row MAC    = HMAC-SHA256(state key, table \0 id \0 cells)[..16]
//! entry seal = HMAC-SHA256(audit key, [seq, at, actor, action, subjects, details, prev_hash])
//! ```
//!
//! Stores created without encryption keep bodies as plain JSON (and their lookups and row
//! MACs as plain SHA-256, their audit entries unsealed): nothing to hide them with, and
//! nothing to authenticate them with either.

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::crypto::SecretKey;
use super::error::StoreError;
use super::repo::Cell;
use crate::ids::{hex, sha256_hex};

/// The first bytes of a sealed body: `SFREC`, NUL, format 1, NUL.
pub const RECORD_MAGIC: &[u8; 8] = b"SFREC\x00\x01\x00";

/// Seals and opens record bodies, and computes lookup keys, for one store.
#[derive(Clone, Debug)]
pub struct RecordSeal {
    store_id: String,
    /// `None` in a store without encryption.
    record: Option<SecretKey>,
    lookup: Option<SecretKey>,
    state: Option<SecretKey>,
    audit: Option<SecretKey>,
    /// Plain (legacy or unencrypted) bodies are accepted: in stores without encryption, and
    /// while an encrypted store's older rows are being sealed.
    accept_plain: bool,
}

impl RecordSeal {
    /// The seal of a store without encryption.
    pub fn plain(store_id: &str) -> Self {
        Self {
            store_id: store_id.to_string(),
            record: None,
            lookup: None,
            state: None,
            audit: None,
            accept_plain: true,
        }
    }

    /// The seal of an encrypted store whose master key is `master`.
    pub fn keyed(store_id: &str, master: &SecretKey) -> Self {
        let ctx = |what: &str| format!("sameframe {what} v1\0{store_id}").into_bytes();
        Self {
            store_id: store_id.to_string(),
            record: Some(master.derive(&ctx("record key"))),
            lookup: Some(master.derive(&ctx("lookup key"))),
            state: Some(master.derive(&ctx("state key"))),
            audit: Some(master.derive(&ctx("audit key"))),
            accept_plain: false,
        }
    }

    /// Accept plain bodies too (while older rows are sealed).
    pub fn accepting_plain(mut self, yes: bool) -> Self {
        self.accept_plain = yes || self.record.is_none();
        self
    }

    /// True when bodies are sealed.
    pub fn is_keyed(&self) -> bool {
        self.record.is_some()
    }

    fn aad(&self, table: &str, id: &str) -> Vec<u8> {
        format!("{}\0{table}\0{id}", self.store_id).into_bytes()
    }

    /// The body of row `id` of `table` holding `value`.
    pub fn seal<T: Serialize>(
        &self,
        table: &str,
        id: &str,
        value: &T,
    ) -> Result<Vec<u8>, StoreError> {
        let json = serde_json::to_vec(value).map_err(|e| StoreError::Tampered {
            what: format!("{table} {id}"),
            why: format!("could not encode the record: {e}"),
        })?;
        self.seal_bytes(table, id, &json)
    }

    /// Seal already-encoded JSON.
    pub fn seal_bytes(&self, table: &str, id: &str, json: &[u8]) -> Result<Vec<u8>, StoreError> {
        let Some(key) = &self.record else {
            return Ok(json.to_vec());
        };
        let mut out = RECORD_MAGIC.to_vec();
        out.extend(key.wrap(json, &self.aad(table, id))?);
        Ok(out)
    }

    /// The JSON inside a body, checked.
    pub fn open_bytes(&self, table: &str, id: &str, body: &[u8]) -> Result<Vec<u8>, StoreError> {
        let tampered = |why: &str| StoreError::Tampered {
            what: format!("{table} {id}"),
            why: why.to_string(),
        };
        match body.strip_prefix(RECORD_MAGIC.as_slice()) {
            Some(sealed) => {
                let key = self
                    .record
                    .as_ref()
                    .ok_or_else(|| tampered("a sealed row in a store without encryption"))?;
                key.unwrap_bytes(sealed, &self.aad(table, id))
                    .map(|b| b.to_vec())
                    .ok_or_else(|| {
                        tampered("its sealed body does not authenticate (edited, or moved from another row)")
                    })
            }
            None if self.accept_plain => Ok(body.to_vec()),
            None => Err(tampered("an unsealed row in an encrypted store")),
        }
    }

    /// The record inside a body.
    pub fn open<T: DeserializeOwned>(
        &self,
        table: &str,
        id: &str,
        body: &[u8],
    ) -> Result<T, StoreError> {
        let json = self.open_bytes(table, id, body)?;
        serde_json::from_slice(&json).map_err(|e| StoreError::Tampered {
            what: format!("{table} {id}"),
            why: format!("its body is not a {table} record: {e}"),
        })
    }

    /// True when `body` is sealed (not plain JSON).
    pub fn is_sealed(body: &[u8]) -> bool {
        body.starts_with(RECORD_MAGIC)
    }

    /// The lookup key of a normalised value in the lookup space `space` ("patient ref").
    pub fn lookup_key(&self, space: &str, normalised: &str) -> String {
        let msg = format!("{space}\0{normalised}");
        match &self.lookup {
            Some(k) => hex(&k.mac(msg.as_bytes())),
            None => sha256_hex(format!("sameframe lookup v1\0{}\0{msg}", self.store_id).as_bytes()),
        }
    }
}

impl RecordSeal {
    /// The MAC of row `id` of `table` as stored (`cells`, every column): 32 hex digits.
    pub fn row_mac(&self, table: &str, id: &str, cells: &[Cell]) -> String {
        let mut msg = format!("{table}\0{id}\0").into_bytes();
        for c in cells {
            encode_cell(c, &mut msg);
        }
        let full = match &self.state {
            Some(k) => hex(&k.mac(&msg)),
            None => {
                let mut plain = format!("sameframe row v1\0{}\0", self.store_id).into_bytes();
                plain.extend(msg);
                sha256_hex(&plain)
            }
        };
        full[..32].to_string()
    }

    /// The seal of an audit entry's canonical text; `None` in a store without encryption.
    pub fn entry_seal(&self, canonical: &[u8]) -> Option<String> {
        self.audit.as_ref().map(|k| hex(&k.mac(canonical)))
    }
}

/// A cell as the row MAC covers it: a type tag, then its value (lengths where they vary).
fn encode_cell(c: &Cell, out: &mut Vec<u8>) {
    match c {
        Cell::Null => out.push(b'n'),
        Cell::Int(i) => {
            out.push(b'i');
            out.extend(i.to_be_bytes());
        }
        Cell::Real(r) => {
            out.push(b'r');
            out.extend(r.to_bits().to_be_bytes());
        }
        Cell::Text(t) => {
            out.push(b't');
            out.extend((t.len() as u64).to_be_bytes());
            out.extend(t.as_bytes());
        }
        Cell::Bytes(b) => {
            out.push(b'b');
            out.extend((b.len() as u64).to_be_bytes());
            out.extend(b);
        }
    }
}

/// A column checked against the body it is a copy of.
pub fn check_column<T: PartialEq + std::fmt::Debug>(
    table: &str,
    id: &str,
    column: &str,
    stored: &T,
    in_body: &T,
) -> Result<(), StoreError> {
    if stored == in_body {
        return Ok(());
    }
    Err(StoreError::Tampered {
        what: format!("{table} {id}"),
        why: format!(
            "its {column} column ({stored:?}) differs from its sealed record ({in_body:?})"
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, serde::Deserialize, PartialEq, Debug)]
    struct P {
        name: String,
    }

    #[test]
    fn sealed_bodies_hide_text_and_refuse_edits_and_moves() {
        let master = SecretKey::generate().unwrap();
        let s = RecordSeal::keyed("store_1", &master);
        let body = s
            .seal(
                "patient",
                "pat_1",
                &P {
                    name: "Jane Roe".into(),
                },
            )
            .unwrap();
        assert!(RecordSeal::is_sealed(&body));
        assert!(!body.windows(4).any(|w| w == b"Jane"));
        let p: P = s.open("patient", "pat_1", &body).unwrap();
        assert_eq!(p.name, "Jane Roe");
        // Moved to another row or table: refused.
        assert!(s.open::<P>("patient", "pat_2", &body).is_err());
        assert!(s.open::<P>("consent", "pat_1", &body).is_err());
        // Edited: refused.
        let mut bad = body.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(s.open::<P>("patient", "pat_1", &bad).is_err());
        // Another store's key: refused.
        let other = RecordSeal::keyed("store_1", &SecretKey::generate().unwrap());
        assert!(other.open::<P>("patient", "pat_1", &body).is_err());
        // A plain body in an encrypted store: refused unless sealing is pending.
        let plain = serde_json::to_vec(&P { name: "x".into() }).unwrap();
        assert!(s.open::<P>("patient", "pat_1", &plain).is_err());
        assert!(
            s.clone()
                .accepting_plain(true)
                .open::<P>("patient", "pat_1", &plain)
                .is_ok()
        );
    }

    #[test]
    fn lookups_are_keyed_per_store_and_space() {
        let master = SecretKey::generate().unwrap();
        let a = RecordSeal::keyed("s", &master);
        assert_eq!(a.lookup_key("ref", "p-1"), a.lookup_key("ref", "p-1"));
        assert_ne!(a.lookup_key("ref", "p-1"), a.lookup_key("ref", "p-2"));
        assert_ne!(a.lookup_key("ref", "p-1"), a.lookup_key("other", "p-1"));
        let b = RecordSeal::keyed("s", &SecretKey::generate().unwrap());
        assert_ne!(a.lookup_key("ref", "p-1"), b.lookup_key("ref", "p-1"));
        let plain = RecordSeal::plain("s");
        assert_eq!(plain.lookup_key("ref", "p-1").len(), 64);
    }
}
