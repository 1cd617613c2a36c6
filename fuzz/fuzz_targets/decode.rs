//! Image decoding within limits: the header checks, the container walks (JPEG segments, PNG
//! chunks, frame counts), the budgeted decode (whole, PNG reduced row by row, JPEG scaled) and
//! the import's validation, on any bytes. Limits are small so an input cannot exhaust memory;
//! a decode that succeeds must respect them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sameframe_core::calibration::Limits;
use sameframe_core::decode::{self, Request};
use sameframe_core::ingest;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_megapixels: 4.0,
        max_file_mib: 16,
        decode_memory_mib: 48,
    };
    let _ = ingest::validate(data, "fuzz", &limits);
    let Ok(format) = image::guess_format(data) else {
        return;
    };
    let _ = decode::frames::count(data, format);
    for req in [Request::FULL, Request::fit(64)] {
        if let Ok(d) = decode::decode(data, format, "fuzz", &limits, req) {
            let px = u64::from(d.width) * u64::from(d.height);
            assert!(px <= limits.max_pixels(), "decoded past the pixel limit");
            if let Some(side) = req.max_side {
                assert!(d.image.width().max(d.image.height()) <= side);
            }
        }
    }
});
