//! Key files: any bytes are a key (64 hex digits, or 32 raw bytes) or nothing, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sameframe_core::store::crypto::parse_key_file;

fuzz_target!(|data: &[u8]| {
    let key = parse_key_file(data);
    let hex_digits = data.iter().filter(|b| b.is_ascii_hexdigit()).count();
    if key.is_some() {
        assert!(
            data.len() == 32 || hex_digits == 64,
            "accepted {} bytes",
            data.len()
        );
    }
});
