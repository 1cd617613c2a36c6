//! Opaque identifiers and SHA-256 helpers.
//!
//! Internal IDs are random and carry no patient information: `pat_`, `con_`, `vis_`, `cap_`
//! followed by 16 lowercase hex digits. Logs, errors and the audit chain name these IDs and
//! content hashes, never a patient's name.

use sha2::{Digest, Sha256};

/// Failure to draw random bytes from the operating system (or to seal a buffer).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RandomError(String);

impl RandomError {
    /// Also used for the (practically impossible) failure of an AEAD over an oversized buffer.
    pub(crate) fn new(message: &str) -> Self {
        Self(message.to_string())
    }
}

/// Fill `buf` with cryptographically secure random bytes.
pub fn random_bytes(buf: &mut [u8]) -> Result<(), RandomError> {
    getrandom::fill(buf).map_err(|e| {
        RandomError(format!(
            "the operating system's random number generator failed: {e}"
        ))
    })
}

/// A new opaque ID with the given prefix, e.g. `cap_1f0c9a7e55b3d210`.
pub fn new_id(prefix: &str) -> Result<String, RandomError> {
    let mut b = [0u8; 8];
    random_bytes(&mut b)?;
    Ok(format!("{prefix}_{}", hex(&b)))
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

/// Parse lowercase or uppercase hex into bytes; `None` when malformed.
pub fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Lowercase hex SHA-256 of `bytes`.
///
/// ```
/// assert_eq!(
///     sameframe_core::ids::sha256_hex(b"abc"),
///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// );
/// ```
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// True when `s` looks like a lowercase hex SHA-256.
pub fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The first 12 hex digits of a hash, for human-readable output.
pub fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_prefixed_and_unique() {
        let a = new_id("cap").unwrap();
        let b = new_id("cap").unwrap();
        assert!(a.starts_with("cap_") && a.len() == 20);
        assert_ne!(a, b);
    }

    #[test]
    fn hex_round_trips() {
        let bytes = [0u8, 1, 0xab, 0xff];
        assert_eq!(hex(&bytes), "0001abff");
        assert_eq!(unhex("0001abff").unwrap(), bytes);
        assert!(unhex("0g").is_none());
        assert!(unhex("abc").is_none());
    }
}
